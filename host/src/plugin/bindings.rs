//! The one place the host generates bindings for the `rpcnode:plugin` world.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "rpcnode:plugin/plugin",
    exports: { default: async },
});
