//! A heartbeat: every `interval_ms` (from `heartbeat.toml`, default 30000) the
//! host calls `beat`, which broadcasts `heartbeat {timestamp, clients, status}`
//! as the RpcNode seed does (`timestamp` in seconds since the Unix epoch).

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json, unix_time};

fn beat(_: &Request) -> Result<Value, RpcError> {
    let params = json!({ "timestamp": unix_time(), "clients": host::client_count(), "status": "ok" });
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
