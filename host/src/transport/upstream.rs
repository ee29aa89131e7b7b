//! `POST /webhook/NAME`: deliveries from an upstream node this node follows
//! (see [`crate::webhook::upstream`]). A confirmation is answered with its
//! challenge; an accepted notification is published to this node's
//! subscribers of the same topic (or broadcast) and, if configured, handed
//! to the plugins as a JSON-RPC notification. A notification this node
//! could not store is answered `503`, so the upstream retries it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::headers::RequestHeaders;
use crate::node::Node;
use crate::plugin::Transport;
use crate::rpc::Caller;
use crate::webhook::upstream::Received;

/// The body limit of the route: `max_message_bytes`.
pub fn body_limit(node: &Node) -> DefaultBodyLimit {
    DefaultBodyLimit::max(node.config.max_message_bytes)
}

/// Handle a delivery from upstream `name`.
pub async fn receive(
    State(node): State<Arc<Node>>,
    ConnectInfo(remote_addr): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = node.upstreams.receive(&name, &headers, &body);
    let (id, topic, text, relay, call_plugins) = match received {
        Received::Confirm(answer) => {
            return ([(header::CONTENT_TYPE, "application/json")], answer).into_response();
        }
        Received::Ignored => return StatusCode::NO_CONTENT.into_response(),
        Received::Refused(status, reason) => {
            tracing::warn!(upstream = name, %remote_addr, "refused a delivery: {reason}");
            return (status, reason).into_response();
        }
        Received::Notification {
            id,
            topic,
            body,
            relay,
            call_plugins,
        } => (id, topic, body, relay, call_plugins),
    };
    if relay {
        let published = match &topic {
            Some(topic) => node.broker.publish(topic, text.clone()).await,
            None => node.broker.broadcast(text.clone(), Vec::new()).await,
        };
        if let Err(error) = published {
            tracing::error!(upstream = name, "relaying a notification failed: {error}");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the notification could not be stored",
            )
                .into_response();
        }
    }
    if call_plugins {
        let caller = Caller::new(
            Transport::Http,
            None,
            remote_addr,
            RequestHeaders::new(headers),
        );
        // A notification has no answer; an error is the plugin's to log.
        let _ = node.dispatcher.handle_message(&text, &caller).await;
    }
    node.upstreams.remember(&name, id);
    StatusCode::NO_CONTENT.into_response()
}
