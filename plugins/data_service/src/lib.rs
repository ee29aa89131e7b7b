//! A data service: `updateData {id, value}` stores the value in host state and
//! broadcasts `dataUpdated {id, value}` to every WebSocket client;
//! `getData {id}` reads it back.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::Deserialize;

/// The application error code for an id with no data.
const NOT_FOUND: i32 = 404;

#[derive(Deserialize)]
struct Update {
    id: Value,
    value: Value,
}

#[derive(Deserialize)]
struct Lookup {
    id: Value,
}

fn key(id: &Value) -> String {
    format!("data:{id}")
}

fn update_data(request: &Request) -> Result<Value, RpcError> {
    let Update { id, value } = request.params()?;
    host::state_set(&key(&id), &value).map_err(RpcError::internal)?;
    let notified = host::broadcast("dataUpdated", &json!({ "id": id, "value": value }))
        .map_err(RpcError::internal)?;
    Ok(json!({ "status": "updated", "id": id, "notified": notified }))
}

fn get_data(request: &Request) -> Result<Value, RpcError> {
    let Lookup { id } = request.params()?;
    let value: Value = host::state_get(&key(&id))
        .ok_or_else(|| RpcError::new(NOT_FOUND, format!("no data for id {id}")))?;
    Ok(json!({ "id": id, "value": value }))
}

fn plugin() -> Plugin {
    Plugin::new("data_service", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("updateData", update_data)
                .summary("Store a value and broadcast dataUpdated"),
        )
        .method(Method::new("getData", get_data).summary("Read a stored value"))
}

export!(plugin);
