//! Presence, as in the RpcNode seeds: greets each WebSocket client with
//! `welcome {message, client_id, server_version, server_time}` when it
//! connects; `listClients` answers `{clients, count}`.

use rpcnode_sdk::{Context, Method, Plugin, Request, RpcError, Value, export, host, json, unix_time};

fn on_connect(client_id: &str, _: &Context) {
    let params = json!({
        "message": format!("Welcome, {client_id}!"),
        "client_id": client_id,
        "server_version": env!("CARGO_PKG_VERSION"),
        "server_time": unix_time(),
    });
    // The client may already be gone; there is nobody to tell then.
    let _ = host::notify(client_id, "welcome", &params);
}

fn list_clients(_: &Request) -> Result<Value, RpcError> {
    let mut clients = host::clients();
    clients.sort();
    Ok(json!({ "count": clients.len(), "clients": clients }))
}

fn plugin() -> Plugin {
    Plugin::new("presence", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("listClients", list_clients)
                .summary("The connected WebSocket clients")
                .without_params(),
        )
        .on_connect(on_connect)
}

export!(plugin);
