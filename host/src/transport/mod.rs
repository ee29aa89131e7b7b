//! The two transports on one port: JSON-RPC over HTTP POST and over WebSocket.

pub mod http;
pub mod ws;

use std::sync::Arc;

use axum::http::HeaderMap;

/// Headers as the plugin context carries them: lowercase names, values that
/// are not UTF-8 left out.
fn header_list(headers: &HeaderMap) -> Arc<[(String, String)]> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}
