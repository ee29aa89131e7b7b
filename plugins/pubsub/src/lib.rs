//! Publish/subscribe, as in the RpcNode seed: `subscribe {topics}` and
//! `unsubscribe {topics}` act on the calling WebSocket connection (a
//! `client_id` in the params, which the seed's clients send, is accepted and
//! not trusted: the connection is who calls); `publish {topic, message}`
//! sends the notification named after the topic, `{message, timestamp}`, to
//! its subscribers.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json, unix_time};
use serde::Deserialize;

/// The client metadata key holding the topics a connection subscribed to.
const TOPICS: &str = "pubsub_topics";

#[derive(Deserialize)]
struct Topics {
    topics: Vec<String>,
}

#[derive(Deserialize)]
struct Publication {
    topic: String,
    message: Value,
}

/// Answers `{"success": true, "subscribed": topics, "total_subscriptions": n}`,
/// `n` being how many topics the connection is now subscribed to through
/// this method.
fn subscribe(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?;
    let Topics { topics } = request.params()?;
    let mut all: Vec<String> = host::client_get(client_id, TOPICS).unwrap_or_default();
    for topic in &topics {
        host::subscribe(client_id, topic).map_err(RpcError::invalid_params)?;
        if !all.contains(topic) {
            all.push(topic.clone());
        }
    }
    // Topics left since (by `unsubscribe` or `rpc.unsubscribe`) are dropped.
    all.retain(|topic| host::subscribers(topic).iter().any(|id| id == client_id));
    host::client_set(client_id, TOPICS, &all).map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "subscribed": topics, "total_subscriptions": all.len() }))
}

/// Answers `{"success": true, "unsubscribed": topics}`, the topics the
/// connection was subscribed to.
fn unsubscribe(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?;
    let Topics { topics } = request.params()?;
    let left: Vec<&String> = topics
        .iter()
        .filter(|topic| host::unsubscribe(client_id, topic))
        .collect();
    Ok(json!({ "success": true, "unsubscribed": left }))
}

/// Answers `{"success": true, topic, "subscribers_notified": n}`.
fn publish(request: &Request) -> Result<Value, RpcError> {
    let Publication { topic, message } = request.params()?;
    let params = json!({ "message": message, "timestamp": unix_time() });
    let notified = host::publish(&topic, &topic, &params).map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "topic": topic, "subscribers_notified": notified }))
}

/// `{topics, client_id?}`, the seed's request.
fn topics_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "topics": { "type": "array", "items": { "type": "string" } },
            "client_id": { "type": "string", "description": "Accepted for the seed's clients; the connection is who calls" }
        },
        "required": ["topics"]
    })
}

fn plugin() -> Plugin {
    Plugin::new("pubsub", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("subscribe", subscribe)
                .summary("Subscribe this connection to topics")
                .params_schema(topics_schema()),
        )
        .method(
            Method::new("unsubscribe", unsubscribe)
                .summary("Unsubscribe this connection from topics")
                .params_schema(topics_schema()),
        )
        .method(
            Method::new("publish", publish)
                .summary("Send a message to a topic's subscribers")
                .params_schema(json!({
                    "type": "object",
                    "properties": {
                        "topic": { "type": "string" },
                        "message": { "description": "Any JSON value" }
                    },
                    "required": ["topic", "message"]
                })),
        )
}

export!(plugin);
