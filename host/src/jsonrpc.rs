//! The JSON-RPC 2.0 wire format: reading requests and batches, writing
//! responses and notifications, and the spec's error codes.
//!
//! Requests are read without building a JSON tree: ids and params stay as raw
//! JSON text, so an id is echoed byte for byte and params reach a plugin
//! without being re-serialised.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Invalid JSON was received.
pub const PARSE_ERROR: i32 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i32 = -32602;
/// Internal JSON-RPC error.
pub const INTERNAL_ERROR: i32 = -32603;
/// Server error: the request ran past `request_timeout`.
pub const REQUEST_TIMEOUT: i32 = -32000;
/// Server error: the method only works over a WebSocket connection.
pub const WEBSOCKET_REQUIRED: i32 = -32001;
/// Server error: the server is at `max_connections`.
pub const SERVER_BUSY: i32 = -32002;
/// Server error: the caller sent more requests than the rate limit allows.
pub const RATE_LIMITED: i32 = -32004;

/// A JSON-RPC error object as sent to a client.
#[derive(Debug, Clone, Serialize)]
pub struct RpcError {
    /// The error code.
    pub code: i32,
    /// A short description.
    pub message: String,
    /// Extra information, as raw JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl RpcError {
    /// An error with `code` and the spec's message for it, followed by `detail`.
    pub fn new(code: i32, detail: impl std::fmt::Display) -> Self {
        let standard = match code {
            PARSE_ERROR => "Parse error",
            INVALID_REQUEST => "Invalid Request",
            METHOD_NOT_FOUND => "Method not found",
            INVALID_PARAMS => "Invalid params",
            INTERNAL_ERROR => "Internal error",
            _ => "Server error",
        };
        Self {
            code,
            message: format!("{standard}: {detail}"),
            data: None,
        }
    }

    /// An error exactly as a plugin reported it, except that invalid-params
    /// messages get the spec's prefix ("Invalid params: <message>").
    pub fn from_plugin(code: i32, message: String, data: Option<Box<RawValue>>) -> Self {
        let message = if code == INVALID_PARAMS {
            format!("Invalid params: {message}")
        } else {
            message
        };
        Self {
            code,
            message,
            data,
        }
    }
}

/// One request read from a message: the parts the host needs, borrowed from
/// the message text.
#[derive(Debug)]
pub struct Request<'a> {
    /// The id as raw JSON (a string, a number or `null`); `None` makes the
    /// request a notification.
    pub id: Option<&'a RawValue>,
    /// The method name as the client sent it.
    pub method: Cow<'a, str>,
    /// The params as raw JSON: an object or an array, or absent.
    pub params: Option<&'a RawValue>,
}

/// A request object that could not be accepted, with the id to answer it
/// under (when it could be read) and the error to send.
#[derive(Debug)]
pub struct Rejected<'a> {
    /// The id to echo; `None` answers with `"id": null`.
    pub id: Option<&'a RawValue>,
    /// Why the request was rejected.
    pub error: RpcError,
}

/// One element of a message: a request or the reason it is not one.
pub type Item<'a> = Result<Request<'a>, Rejected<'a>>;

/// A whole HTTP body or WebSocket text frame.
#[derive(Debug)]
pub enum Message<'a> {
    /// A single request object (or something that should have been one).
    Single(Item<'a>),
    /// A non-empty batch.
    Batch(Vec<Item<'a>>),
}

/// The fields of a request object, all kept raw so that a field of the wrong
/// type is reported as an invalid request with the id still echoed.
#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

/// Reads a field that is present, even when it is `null` (serde's `Option`
/// would read `"id": null` as absent, making the request a notification).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// Read a message. `Err` is the single error to send back when the message is
/// not JSON at all, or is an empty batch, or is larger than `max_batch`.
pub fn parse(text: &[u8], max_batch: usize) -> Result<Message<'_>, RpcError> {
    let is_batch = text.trim_ascii_start().first() == Some(&b'[');
    if !is_batch {
        return match serde_json::from_slice::<RawRequest>(text) {
            Ok(raw) => Ok(Message::Single(validate(raw))),
            Err(error) if error.is_data() => Ok(Message::Single(Err(Rejected {
                id: None,
                error: RpcError::new(INVALID_REQUEST, "a request must be a JSON object"),
            }))),
            Err(error) => Err(RpcError::new(PARSE_ERROR, error)),
        };
    }
    let items: Vec<&RawValue> =
        serde_json::from_slice(text).map_err(|error| RpcError::new(PARSE_ERROR, error))?;
    if items.is_empty() {
        return Err(RpcError::new(INVALID_REQUEST, "empty batch"));
    }
    if items.len() > max_batch {
        return Err(RpcError::new(
            INVALID_REQUEST,
            format_args!(
                "batch of {} requests exceeds the limit of {max_batch}",
                items.len()
            ),
        ));
    }
    Ok(Message::Batch(items.into_iter().map(parse_item).collect()))
}

fn parse_item(item: &RawValue) -> Item<'_> {
    match serde_json::from_str::<RawRequest>(item.get()) {
        Ok(raw) => validate(raw),
        Err(_) => Err(Rejected {
            id: None,
            error: RpcError::new(INVALID_REQUEST, "a request must be a JSON object"),
        }),
    }
}

fn validate(raw: RawRequest<'_>) -> Item<'_> {
    let id = raw.id;
    if let Some(id) = id
        && !is_valid_id(id)
    {
        return Err(Rejected {
            id: None,
            error: RpcError::new(INVALID_REQUEST, "id must be a string, a number or null"),
        });
    }
    let reject = |detail: &str| {
        Err(Rejected {
            id,
            error: RpcError::new(INVALID_REQUEST, detail),
        })
    };
    let version = raw
        .jsonrpc
        .and_then(|raw| serde_json::from_str::<Cow<str>>(raw.get()).ok());
    if version.as_deref() != Some("2.0") {
        return reject(r#"jsonrpc must be exactly "2.0""#);
    }
    let Some(method) = raw
        .method
        .and_then(|raw| serde_json::from_str::<Cow<str>>(raw.get()).ok())
    else {
        return reject("method must be a string");
    };
    if let Some(params) = raw.params
        && !matches!(params.get().as_bytes().first(), Some(b'{' | b'['))
    {
        return reject("params must be an object or an array");
    }
    Ok(Request {
        id,
        method,
        params: raw.params,
    })
}

fn is_valid_id(id: &RawValue) -> bool {
    matches!(
        id.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9' | b'n')
    )
}

/// `{"jsonrpc":"2.0","result":<result>,"id":<id>}`; `result` must be valid JSON.
pub fn success(id: &RawValue, result: &str) -> String {
    // Pieces pushed into one exact allocation: every answer passes here.
    let (head, middle, tail) = (r#"{"jsonrpc":"2.0","result":"#, r#","id":"#, "}");
    let id = id.get();
    let mut answer =
        String::with_capacity(head.len() + result.len() + middle.len() + id.len() + tail.len());
    for piece in [head, result, middle, id, tail] {
        answer.push_str(piece);
    }
    answer
}

/// `{"jsonrpc":"2.0","error":{…},"id":<id or null>}`.
pub fn failure(id: Option<&RawValue>, error: &RpcError) -> String {
    let error = serde_json::to_string(error).expect("an error object always serialises");
    let id = id.map_or("null", RawValue::get);
    format!(r#"{{"jsonrpc":"2.0","error":{error},"id":{id}}}"#)
}

/// `{"jsonrpc":"2.0","method":<method>,"params":<params>}`; `params` must be
/// valid JSON when present.
pub fn notification(method: &str, params: Option<&str>) -> String {
    let method = serde_json::to_string(method).expect("a string always serialises");
    match params {
        Some(params) => format!(r#"{{"jsonrpc":"2.0","method":{method},"params":{params}}}"#),
        None => format!(r#"{{"jsonrpc":"2.0","method":{method}}}"#),
    }
}

/// Check that `text` is one JSON document; plugins are not trusted to write
/// valid JSON. Validates in place, without copying.
pub fn check_json(text: &str) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_str(text)
}

/// Batch responses joined into one JSON array; `None` when every request in
/// the batch was a notification.
pub fn batch(responses: Vec<String>) -> Option<String> {
    if responses.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(responses.iter().map(|r| r.len() + 1).sum::<usize>() + 1);
    out.push('[');
    for (index, response) in responses.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(response);
    }
    out.push(']');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(text: &str) -> Item<'_> {
        match parse(text.as_bytes(), 10).unwrap() {
            Message::Single(item) => item,
            Message::Batch(_) => panic!("expected a single request"),
        }
    }

    #[test]
    fn null_id_is_a_request_and_absent_id_a_notification() {
        let request = single(r#"{"jsonrpc":"2.0","method":"a","id":null}"#).unwrap();
        assert_eq!(request.id.map(RawValue::get), Some("null"));
        let request = single(r#"{"jsonrpc":"2.0","method":"a"}"#).unwrap();
        assert!(request.id.is_none());
    }

    #[test]
    fn ids_are_kept_byte_for_byte() {
        let request = single(r#"{"jsonrpc":"2.0","method":"a","id":1.50}"#).unwrap();
        assert_eq!(
            success(request.id.unwrap(), "1"),
            r#"{"jsonrpc":"2.0","result":1,"id":1.50}"#
        );
    }

    #[test]
    fn invalid_requests_keep_a_readable_id() {
        let rejected = single(r#"{"jsonrpc":"1.0","method":"a","id":"x"}"#).unwrap_err();
        assert_eq!(rejected.id.map(RawValue::get), Some(r#""x""#));
        let rejected = single(r#"{"jsonrpc":"2.0","method":"a","id":{}}"#).unwrap_err();
        assert!(rejected.id.is_none());
        let rejected =
            single(r#"{"jsonrpc":"2.0","method":"a","params":null,"id":3}"#).unwrap_err();
        assert_eq!(
            rejected.error.message,
            "Invalid Request: params must be an object or an array"
        );
    }

    #[test]
    fn batches_over_the_limit_are_one_error() {
        let text = format!("[{}]", ["1"; 11].join(","));
        let error = parse(text.as_bytes(), 10).unwrap_err();
        assert_eq!(
            error.message,
            "Invalid Request: batch of 11 requests exceeds the limit of 10"
        );
    }

    #[test]
    fn notifications_escape_the_method_name() {
        assert_eq!(
            notification("a\"b", Some("[1]")),
            r#"{"jsonrpc":"2.0","method":"a\"b","params":[1]}"#
        );
    }
}
