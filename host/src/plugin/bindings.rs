//! The one place the host generates bindings for the `rpcnode:plugin` world.
//! The host functions that may reach a backend are async on the host side
//! (plugins still see them as blocking calls).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "rpcnode:plugin/single-calls",
    imports: {
        "rpcnode:plugin/host.broadcast-notification": async,
        "rpcnode:plugin/host.send-notification": async,
        "rpcnode:plugin/host.clients": async,
        "rpcnode:plugin/host.client-count": async,
        "rpcnode:plugin/host.client-get": async,
        "rpcnode:plugin/host.client-set": async,
        "rpcnode:plugin/host.subscribe": async,
        "rpcnode:plugin/host.unsubscribe": async,
        "rpcnode:plugin/host.publish": async,
        "rpcnode:plugin/host.subscribers": async,
        "rpcnode:plugin/host.state-get": async,
        "rpcnode:plugin/host.state-set": async,
        "rpcnode:plugin/host.state-delete": async,
        "rpcnode:plugin/host.state-increment": async,
    },
    exports: { default: async },
});
