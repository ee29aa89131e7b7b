//! The two transports on one port: JSON-RPC over HTTP POST and over WebSocket.

pub mod http;
pub mod ws;

use std::sync::Arc;

use axum::http::HeaderMap;

/// Headers as the plugin context carries them: lowercase names, values that
/// are not UTF-8 left out, and none of the [`is_transport_header`]s.
fn header_list(headers: &HeaderMap) -> Arc<[(String, String)]> {
    headers
        .iter()
        .filter(|(name, _)| !is_transport_header(name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Headers about the connection or the message framing rather than the
/// request: hop-by-hop headers (RFC 9110, section 7.6.1), the body's length
/// (plugins get params, not bodies) and the WebSocket handshake's own. Each
/// header is copied into the plugin's memory on every call, so these would
/// cost every call something and tell no plugin anything.
fn is_transport_header(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "sec-websocket-key"
            | "sec-websocket-version"
            | "sec-websocket-extensions"
    )
}
