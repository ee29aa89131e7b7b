//! The JSON-RPC 2.0 wire format: reading requests and batches, writing
//! responses and notifications, and the spec's error codes.
//!
//! Requests are read without building a JSON tree: ids and params stay as raw
//! JSON text, so an id is echoed byte for byte and params reach a plugin
//! without being re-serialised.

use std::borrow::Cow;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
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
/// Server error: no live session has the client id and token of a resume.
pub const SESSION_NOT_FOUND: i32 = -32005;
/// Server error: a `GET /ws?session` connection must open with `rpc.session`
/// (and only it may send `rpc.session`).
pub const SESSION_FIRST: i32 = -32006;

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
/// type is reported as an invalid request with the id still echoed. A field
/// present as `null` is kept (`"id": null` is a request, not a notification).
#[derive(Default)]
struct RawRequest<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
}

/// One element of a message as read: a request object's fields, or `None`
/// for anything that is not an object with distinct field names.
struct Element<'a>(Option<RawRequest<'a>>);

/// The names of a request object's fields.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Jsonrpc,
    Id,
    Method,
    Params,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Element<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

/// Reads an element in the same pass that reads the message, so a batch is
/// parsed once: an object field by field, any other value skipped.
struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut request = RawRequest::default();
        let mut distinct = true;
        while let Some(field) = map.next_key::<Field>()? {
            let slot = match field {
                Field::Jsonrpc => &mut request.jsonrpc,
                Field::Id => &mut request.id,
                Field::Method => &mut request.method,
                Field::Params => &mut request.params,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            distinct &= slot.replace(map.next_value()?).is_none();
        }
        Ok(Element(distinct.then_some(request)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Element(None))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Element(None))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Element(None))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Element(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Element(None))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Element(None))
    }
}

/// Read a message. `Err` is the single error to send back when the message is
/// not JSON at all, or is an empty batch, or is larger than `max_batch`.
pub fn parse(text: &str, max_batch: usize) -> Result<Message<'_>, RpcError> {
    let parse_error = |error| RpcError::new(PARSE_ERROR, error);
    // Read from `str`, whose UTF-8 is already checked, so the parser does
    // not check each raw field again.
    let is_batch = text.trim_ascii_start().starts_with('[');
    if !is_batch {
        let element: Element = serde_json::from_str(text).map_err(parse_error)?;
        return Ok(Message::Single(validate(element)));
    }
    let elements: Vec<Element> = serde_json::from_str(text).map_err(parse_error)?;
    if elements.is_empty() {
        return Err(RpcError::new(INVALID_REQUEST, "empty batch"));
    }
    if elements.len() > max_batch {
        return Err(RpcError::new(
            INVALID_REQUEST,
            format_args!(
                "batch of {} requests exceeds the limit of {max_batch}",
                elements.len()
            ),
        ));
    }
    Ok(Message::Batch(elements.into_iter().map(validate).collect()))
}

fn validate(element: Element<'_>) -> Item<'_> {
    let Element(Some(raw)) = element else {
        return Err(Rejected {
            id: None,
            error: RpcError::new(INVALID_REQUEST, "a request must be a JSON object"),
        });
    };
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
    if raw.jsonrpc.and_then(string).as_deref() != Some("2.0") {
        return reject(r#"jsonrpc must be exactly "2.0""#);
    }
    let Some(method) = raw.method.and_then(string) else {
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

/// The value of a JSON string, borrowed from the message unless it has
/// escapes; `None` if `raw` is not a string.
fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    match serde_json::from_str::<&str>(raw.get()) {
        Ok(text) => Some(Cow::Borrowed(text)),
        Err(_) => serde_json::from_str::<String>(raw.get())
            .ok()
            .map(Cow::Owned),
    }
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

/// Params of a built-in method read into `T`; the error says what is wrong
/// without pointing into the text by line and column.
pub fn params<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, RpcError> {
    serde_json::from_str(text).map_err(|error| {
        let message = error.to_string();
        let detail = match message.rfind(" at line ") {
            Some(at) if error.line() > 0 => &message[..at],
            _ => &message,
        };
        RpcError::new(INVALID_PARAMS, detail)
    })
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
        match parse(text, 10).unwrap() {
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
    fn method_names_are_borrowed_unless_escaped() {
        let request = single(r#"{"jsonrpc":"2.0","method":"add","id":1}"#).unwrap();
        assert!(matches!(request.method, Cow::Borrowed("add")));
        let request = single(r#"{"jsonrpc":"2\u002e0","method":"a\u002eb","id":1}"#).unwrap();
        assert_eq!(request.method, "a.b");
        let rejected = single(r#"{"jsonrpc":"2.0","method":7,"id":1}"#).unwrap_err();
        assert_eq!(
            rejected.error.message,
            "Invalid Request: method must be a string"
        );
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
    fn each_batch_element_is_judged_alone() {
        let text = r#"[1, [2], {"jsonrpc":"2.0","method":"a","id":1,"id":2},
            {"jsonrpc":"2.0","\u006dethod":"b","id":3,"extra":{"x":[1]}}, null, "c"]"#;
        let Message::Batch(items) = parse(text, 10).unwrap() else {
            panic!("expected a batch");
        };
        let outcomes: Vec<Result<&str, &str>> = items
            .iter()
            .map(|item| match item {
                Ok(request) => Ok(request.method.as_ref()),
                Err(rejected) => Err(rejected.error.message.as_str()),
            })
            .collect();
        let not_an_object = Err("Invalid Request: a request must be a JSON object");
        assert_eq!(
            outcomes,
            [
                not_an_object,
                not_an_object,
                not_an_object,
                Ok("b"),
                not_an_object,
                not_an_object
            ]
        );
    }

    #[test]
    fn batches_over_the_limit_are_one_error() {
        let text = format!("[{}]", ["1"; 11].join(","));
        let error = parse(&text, 10).unwrap_err();
        assert_eq!(
            error.message,
            "Invalid Request: batch of 11 requests exceeds the limit of 10"
        );
    }

    #[test]
    fn params_errors_do_not_point_into_the_text() {
        #[derive(Debug, Deserialize)]
        struct Topics {
            #[allow(dead_code)]
            topics: Vec<String>,
        }
        let error = params::<Topics>(r#"{"topics": "news"}"#).unwrap_err();
        assert_eq!(
            error.message,
            "Invalid params: invalid type: string \"news\", expected a sequence"
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
