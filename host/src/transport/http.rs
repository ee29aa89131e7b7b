//! JSON-RPC over HTTP: `POST /` with a JSON body. Responses are `200` with a
//! JSON body, or `204` with none when only notifications were sent.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::dispatch::Caller;
use crate::jsonrpc::{self, INVALID_REQUEST, RpcError};
use crate::node::Node;
use crate::plugin::Transport;

/// Handle `POST /`.
pub async fn post(
    State(node): State<Arc<Node>>,
    ConnectInfo(remote_addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !is_json(&headers) {
        let error = RpcError::new(INVALID_REQUEST, "Content-Type must be application/json");
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::failure(None, &error),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let detail = format_args!("body rejected: {}", rejection.body_text());
            return reply(
                rejection.status(),
                jsonrpc::failure(None, &RpcError::new(INVALID_REQUEST, detail)),
            );
        }
    };
    let caller = Caller::new(
        Transport::Http,
        None,
        remote_addr,
        super::header_list(&headers),
    );
    match node.handle_message(&body, &caller).await {
        Some(answer) => reply(StatusCode::OK, answer),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

fn reply(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}
