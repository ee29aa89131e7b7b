//! JSON-RPC over HTTP: `POST /` with a JSON body. Responses are `200` with a
//! JSON body, or `204` with none when only notifications were sent.
//!
//! `POST /` is the hot path, so it is answered straight from hyper's request,
//! before the router: no extractors, no copy of the header map, and a caller
//! built once per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::BoxError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::cors::CorsOrigins;
use crate::headers::RequestHeaders;
use crate::node::Node;
use crate::plugin::Transport;
use crate::rpc::Caller;
use crate::rpc::wire::{self, INVALID_REQUEST, PARSE_ERROR, RpcError};
use crate::transport::head_deadline::HeadDeadline;

/// An answer of `POST /`: its whole body at once (an axum `Body` would box
/// it, an allocation per request).
pub type Answer = Response<Full<Bytes>>;

/// What every request on one HTTP connection shares.
pub struct Connection {
    node: Arc<Node>,
    caller: Caller,
    /// When the next request head is due.
    pub head_deadline: HeadDeadline,
}

impl Connection {
    /// The HTTP connection from `remote_addr`.
    pub fn new(node: Arc<Node>, remote_addr: SocketAddr) -> Self {
        let caller = Caller::new(
            Transport::Http,
            None,
            remote_addr,
            RequestHeaders::default(),
        );
        let head_deadline = HeadDeadline::new(node.config.header_read_timeout);
        Self {
            node,
            caller,
            head_deadline,
        }
    }

    /// Answer `POST /`, with the CORS headers its origin gets.
    pub async fn post(&self, request: Request<Incoming>) -> Answer {
        let allowed = self.node.config.cors_origins.allowed(request.headers());
        let mut answer = self.answer(request).await;
        CorsOrigins::expose(allowed, &mut answer);
        answer
    }

    async fn answer(&self, request: Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        if !is_json(&parts.headers) {
            let error = RpcError::new(INVALID_REQUEST, "Content-Type must be application/json");
            return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, failure(&error));
        }
        let max = self.node.config.max_message_bytes;
        let body = match read_body(body, max).await {
            Ok(body) => body,
            Err(error) if error.is::<LengthLimitError>() => {
                let detail = format_args!("body larger than {max} bytes (max_message_bytes)");
                let error = RpcError::new(INVALID_REQUEST, detail);
                return reply(StatusCode::PAYLOAD_TOO_LARGE, failure(&error));
            }
            Err(error) => {
                let error =
                    RpcError::new(INVALID_REQUEST, format_args!("body unreadable: {error}"));
                return reply(StatusCode::BAD_REQUEST, failure(&error));
            }
        };
        let Ok(text) = std::str::from_utf8(&body) else {
            let error = RpcError::new(PARSE_ERROR, "the body is not UTF-8 text");
            return reply(StatusCode::OK, failure(&error));
        };
        let caller = self.caller.with_headers(RequestHeaders::new(parts.headers));
        match self.node.dispatcher.handle_message(text, &caller).await {
            Some(answer) => reply(StatusCode::OK, answer),
            None => empty(StatusCode::NO_CONTENT),
        }
    }
}

/// The body, at most `max` bytes. A body in one frame (the usual case) is
/// taken as it is, without the list `collect` keeps; one in several is joined.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, BoxError> {
    let mut body = Limited::new(body, max);
    let mut first = Bytes::new();
    let mut joined: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        // Trailers carry nothing a JSON-RPC request needs.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match &mut joined {
            None if first.is_empty() => first = data,
            None => joined = Some([&first[..], &data[..]].concat()),
            Some(joined) => joined.extend_from_slice(&data),
        }
    }
    Ok(joined.map_or(first, Bytes::from))
}

/// Whether `request` is for the JSON-RPC endpoint, `POST /`.
pub fn is_rpc(request: &Request<Incoming>) -> bool {
    request.method() == Method::POST && request.uri().path() == "/"
}

/// `GET /openrpc.json`: the OpenRPC document, as `rpc.discover` answers it.
pub async fn openrpc(State(node): State<Arc<Node>>, headers: HeaderMap) -> Answer {
    let mut answer = reply(StatusCode::OK, node.dispatcher.discover().to_string());
    CorsOrigins::expose(node.config.cors_origins.allowed(&headers), &mut answer);
    answer
}

/// `OPTIONS /`: a CORS preflight for `POST /`.
pub async fn preflight_rpc(State(node): State<Arc<Node>>, headers: HeaderMap) -> Answer {
    node.config.cors_origins.preflight(&headers, "POST")
}

/// `OPTIONS /openrpc.json`: a CORS preflight for `GET /openrpc.json`.
pub async fn preflight_openrpc(State(node): State<Arc<Node>>, headers: HeaderMap) -> Answer {
    node.config.cors_origins.preflight(&headers, "GET")
}

/// `/` answers only `POST`: `405` with a JSON-RPC error saying so.
pub async fn not_post() -> Answer {
    let error = RpcError::new(INVALID_REQUEST, "send JSON-RPC requests with POST");
    let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, failure(&error));
    let allow = HeaderValue::from_static("POST");
    response.headers_mut().insert(header::ALLOW, allow);
    response
}

fn failure(error: &RpcError) -> String {
    wire::failure(None, error)
}

fn reply(status: StatusCode, body: String) -> Answer {
    let mut response = empty(status);
    // The answer's text is one exact allocation, which `Bytes` takes over.
    *response.body_mut() = Full::new(Bytes::from(body));
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(header::CONTENT_TYPE, json);
    response
}

fn empty(status: StatusCode) -> Answer {
    let mut response = Response::new(Full::default());
    *response.status_mut() = status;
    response
}

/// `application/json`, with or without parameters such as `charset`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}
