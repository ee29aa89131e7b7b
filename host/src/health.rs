//! `GET /health`: a cheap status report for load balancers and operators.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::node::Node;

/// `"ok"`, or `"degraded"` when a plugin file failed to load (listed under
/// `failed` with the reason).
pub async fn report(State(node): State<Arc<Node>>) -> Json<Value> {
    let table = node.registry.current();
    let plugins: Vec<Value> = table
        .plugins
        .iter()
        .map(|plugin| {
            let methods: Vec<&str> = plugin
                .manifest
                .methods
                .iter()
                .map(|method| method.name.as_str())
                .collect();
            json!({ "name": plugin.name(), "version": plugin.manifest.version, "methods": methods })
        })
        .collect();
    let failed: Vec<Value> = table
        .failures
        .iter()
        .map(|failure| json!({ "file": failure.file.display().to_string(), "reason": failure.reason }))
        .collect();
    Json(json!({
        "status": if failed.is_empty() { "ok" } else { "degraded" },
        "node": node.config.node_name,
        "websocket_clients": node.clients.count(),
        "pending_requests": node.metrics.pending_requests.get(),
        "plugins": plugins,
        "failed": failed,
    }))
}
