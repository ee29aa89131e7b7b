//! The live dashboard (`--dashboard`): `GET /dashboard`, a page served from
//! the binary that reads `GET /dashboard/state` (plugins, methods with their
//! request counts and latency, clients with their subscriptions) every
//! second and `GET /dashboard/tail` (every notification delivered, as
//! server-sent events), and calls methods with the JavaScript client library
//! (`GET /dashboard/client.js`). With an admin token, the data needs it
//! (`Authorization: Bearer`); without one, the dashboard answers loopback
//! callers only.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::node::Node;
use crate::status::{admin_token_required, admitted};

/// The page.
const PAGE: &str = include_str!("dashboard.html");

/// The JavaScript client library, which the page calls methods with.
const CLIENT_JS: &str = include_str!("../../clients/js/index.js");

/// The dashboard's routes, each behind its access check.
pub fn routes(node: &Arc<Node>) -> Router<Arc<Node>> {
    let pages = Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/client.js", get(client_js))
        .route_layer(from_fn_with_state(Arc::clone(node), guard_page));
    let data = Router::new()
        .route("/dashboard/state", get(state))
        .route("/dashboard/tail", get(tail))
        .route_layer(from_fn_with_state(Arc::clone(node), guard_data));
    pages.merge(data)
}

/// Let a request for the page or its script through: these hold no data.
async fn guard_page(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match refusal(&node, peer, request.headers(), true) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// Let a request for the data through.
async fn guard_data(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match refusal(&node, peer, request.headers(), false) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// Why this caller may not see the dashboard, if it may not: with an admin
/// token set, the data needs it (the page does not); without one, only
/// loopback callers are answered.
fn refusal(node: &Node, peer: SocketAddr, headers: &HeaderMap, page: bool) -> Option<Response> {
    if node.config.admin_token.is_some() {
        return (!page && !admitted(node, headers)).then(admin_token_required);
    }
    if peer.ip().is_loopback() {
        return None;
    }
    let refusal = "the dashboard answers only loopback callers unless an admin token is set (--admin-token)\n";
    Some((StatusCode::FORBIDDEN, refusal).into_response())
}

async fn page() -> Response {
    let security = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:";
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, security),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        PAGE,
    )
        .into_response()
}

async fn client_js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], CLIENT_JS).into_response()
}

/// `GET /dashboard/state`: what the page shows, now.
async fn state(State(node): State<Arc<Node>>) -> Response {
    axum::Json(snapshot(&node)).into_response()
}

/// The node's plugins, methods, request counts and clients.
pub fn snapshot(node: &Node) -> Value {
    let table = node.registry.current();
    let plugins: Vec<Value> = table
        .plugins
        .iter()
        .map(|plugin| json!({"name": plugin.name(), "version": plugin.manifest.version, "file": plugin.file.display().to_string()}))
        .collect();
    let failed: Vec<Value> = table
        .failures
        .iter()
        .map(
            |failure| json!({"file": failure.file.display().to_string(), "reason": failure.reason}),
        )
        .collect();
    let methods: Vec<Value> = node.dispatcher.discover()["methods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|method| {
            json!({
                "name": method["name"],
                "summary": method["summary"],
                "plugin": method.get("x-plugin"),
                "notification": method.get("result").is_none(),
            })
        })
        .collect();
    let roster = node.clients.roster();
    let clients: Vec<Value> = roster
        .clients
        .iter()
        .map(|(id, _)| {
            let topics: Vec<&str> = roster
                .topics
                .iter()
                .filter(|(_, subscribers)| subscribers.contains(id))
                .map(|(topic, _)| topic.as_str())
                .collect();
            json!({
                "id": id,
                "connected": node.clients.is_connected(id),
                "session": node.clients.is_session(id),
                "topics": topics,
            })
        })
        .collect();
    json!({
        "node": node.config.node_name,
        "version": env!("CARGO_PKG_VERSION"),
        "plugins": plugins,
        "failed": failed,
        "methods": methods,
        "clients": clients,
        "requests": node.metrics.methods(),
    })
}

/// `GET /dashboard/tail`: every notification delivered from now on, as
/// server-sent events `{"stream", "notification"}`; a watcher that falls
/// behind gets a `lagged` event with how many it missed.
async fn tail(State(node): State<Arc<Node>>) -> Response {
    let watcher = node.clients.tail.watch();
    // A comment first, so that the browser knows at once the stream is open.
    let opening =
        stream::once(async { Ok::<_, std::convert::Infallible>(": watching\n\n".to_owned()) });
    let events = stream::unfold(watcher, |mut watcher| async move {
        let event = match watcher.receiver.recv().await {
            Ok(tailed) => format!(
                "data: {{\"stream\":{},\"notification\":{}}}\n\n",
                Value::from(tailed.stream.as_str()),
                tailed.text
            ),
            Err(RecvError::Lagged(missed)) => format!("event: lagged\ndata: {missed}\n\n"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), watcher))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(futures_util::StreamExt::chain(opening, events)),
    )
        .into_response()
}
