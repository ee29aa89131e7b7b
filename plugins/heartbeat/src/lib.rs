//! A heartbeat: every `interval_ms` (from `heartbeat.toml`, default 30000) the
//! host calls `beat`, which broadcasts `heartbeat {timestamp, clients, status}`.

use std::time::{SystemTime, UNIX_EPOCH};

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};

fn beat(_: &Request) -> Result<Value, RpcError> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    let params = json!({ "timestamp": timestamp, "clients": host::client_count(), "status": "ok" });
    host::broadcast("heartbeat", &params).map_err(RpcError::internal)?;
    Ok(Value::Null)
}

fn plugin() -> Plugin {
    let interval_ms = host::config("interval_ms").unwrap_or(30_000);
    Plugin::new("heartbeat", env!("CARGO_PKG_VERSION"))
        .method(Method::new("beat", beat).internal())
        .timer("beat", interval_ms)
}

export!(plugin);
