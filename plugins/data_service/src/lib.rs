//! A data service, as in the RpcNode seed: `updateData {id, value}` stores the
//! value in host state, broadcasts `dataUpdated {id, value}` to every
//! WebSocket client and answers `{"success": true, "clients_notified": n}`;
//! `getData {id}` answers `{id, data: {value}, timestamp}`, the time of the
//! update.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json, unix_time};
use serde::{Deserialize, Serialize};

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

/// What is kept per id.
#[derive(Serialize, Deserialize)]
struct Stored {
    value: Value,
    timestamp: f64,
}

fn key(id: &Value) -> String {
    format!("data:{id}")
}

fn update_data(request: &Request) -> Result<Value, RpcError> {
    let Update { id, value } = request.params()?;
    let stored = Stored {
        value,
        timestamp: unix_time(),
    };
    host::state_set(&key(&id), &stored).map_err(RpcError::internal)?;
    let notified = host::broadcast("dataUpdated", &json!({ "id": id, "value": stored.value }))
        .map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "clients_notified": notified }))
}

fn get_data(request: &Request) -> Result<Value, RpcError> {
    let Lookup { id } = request.params()?;
    let Stored { value, timestamp } = host::state_get(&key(&id))
        .ok_or_else(|| RpcError::new(NOT_FOUND, format!("no data for id {id}")))?;
    Ok(json!({ "id": id, "data": { "value": value }, "timestamp": timestamp }))
}

fn plugin() -> Plugin {
    let id = json!({ "description": "Any JSON value naming the data" });
    Plugin::new("data_service", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("updateData", update_data)
                .summary("Store a value and broadcast dataUpdated")
                .params_schema(json!({
                    "type": "object",
                    "properties": { "id": id, "value": { "description": "Any JSON value" } },
                    "required": ["id", "value"]
                })),
        )
        .method(
            Method::new("getData", get_data)
                .summary("Read a stored value")
                .params_schema(json!({
                    "type": "object",
                    "properties": { "id": id },
                    "required": ["id"]
                })),
        )
}

export!(plugin);
