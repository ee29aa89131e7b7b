//! Publish/subscribe: `subscribe {topics}` and `unsubscribe {topics}` act on
//! the calling WebSocket connection; `publish {topic, message}` sends a
//! notification named after the topic, `{topic, message}`, to its subscribers
//! and answers `{"subscribers_notified": n}`.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Topics {
    topics: Vec<String>,
}

#[derive(Deserialize)]
struct Publication {
    topic: String,
    message: Value,
}

fn subscribe(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?;
    let Topics { topics } = request.params()?;
    for topic in &topics {
        host::subscribe(client_id, topic).map_err(RpcError::invalid_params)?;
    }
    Ok(json!({ "subscribed": topics }))
}

fn unsubscribe(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?;
    let Topics { topics } = request.params()?;
    let left: Vec<&String> = topics
        .iter()
        .filter(|topic| host::unsubscribe(client_id, topic))
        .collect();
    Ok(json!({ "unsubscribed": left }))
}

fn publish(request: &Request) -> Result<Value, RpcError> {
    let Publication { topic, message } = request.params()?;
    let params = json!({ "topic": topic, "message": message });
    let notified = host::publish(&topic, &topic, &params).map_err(RpcError::internal)?;
    Ok(json!({ "subscribers_notified": notified }))
}

fn plugin() -> Plugin {
    Plugin::new("pubsub", env!("CARGO_PKG_VERSION"))
        .method(Method::new("subscribe", subscribe).summary("Subscribe this connection to topics"))
        .method(
            Method::new("unsubscribe", unsubscribe)
                .summary("Unsubscribe this connection from topics"),
        )
        .method(Method::new("publish", publish).summary("Send a message to a topic's subscribers"))
}

export!(plugin);
