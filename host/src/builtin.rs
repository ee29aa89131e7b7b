//! The host's own methods, in the reserved `rpc.` namespace:
//! `rpc.subscribe` and `rpc.unsubscribe` (`{"topics": [...]}`), which act on
//! the calling WebSocket connection only.

use serde::Deserialize;
use serde_json::json;

use crate::dispatch::Caller;
use crate::jsonrpc::{INVALID_PARAMS, RpcError, WEBSOCKET_REQUIRED};
use crate::node::Node;

#[derive(Deserialize)]
struct Topics {
    topics: Vec<String>,
}

/// Whether `method` is one of the host's own.
pub fn is_builtin(method: &str) -> bool {
    matches!(method, "rpc.subscribe" | "rpc.unsubscribe")
}

/// Answer `method` if it is a built-in; `None` otherwise.
pub fn call(
    node: &Node,
    method: &str,
    params: Option<&str>,
    caller: &Caller,
) -> Option<Result<String, RpcError>> {
    let subscribe = match method {
        "rpc.subscribe" => true,
        "rpc.unsubscribe" => false,
        _ => return None,
    };
    Some(topics(node, method, subscribe, params, caller))
}

fn topics(
    node: &Node,
    method: &str,
    subscribe: bool,
    params: Option<&str>,
    caller: &Caller,
) -> Result<String, RpcError> {
    // The client is always the calling connection: no one can (un)subscribe
    // another client.
    let Some(client_id) = caller.client_id() else {
        return Err(RpcError::new(
            WEBSOCKET_REQUIRED,
            format_args!("{method} needs a WebSocket connection (GET /ws)"),
        ));
    };
    let Topics { topics } = serde_json::from_str(params.unwrap_or("{}"))
        .map_err(|error| RpcError::new(INVALID_PARAMS, error))?;
    if subscribe {
        for topic in &topics {
            node.clients
                .subscribe(client_id, topic)
                .map_err(|error| RpcError::new(INVALID_PARAMS, error))?;
        }
        Ok(json!({ "subscribed": topics }).to_string())
    } else {
        let left: Vec<&String> = topics
            .iter()
            .filter(|topic| node.clients.unsubscribe(client_id, topic))
            .collect();
        Ok(json!({ "unsubscribed": left }).to_string())
    }
}
