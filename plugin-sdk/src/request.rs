//! What a handler receives: the method, its params and who called.

use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::RpcError;
use crate::host;

/// The transport a call arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// An HTTP POST.
    Http,
    /// A WebSocket text frame.
    WebSocket,
    /// Background work (`host::spawn` or a timer): no client is attached.
    Background,
}

/// Who made a call, and how ([`host::call_context`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// The request id; `None` for notifications and connection events.
    pub request_id: Option<Value>,
    /// The transport the call arrived on.
    pub transport: Transport,
    /// The WebSocket client id, for calls over WebSocket.
    pub client_id: Option<String>,
    /// The peer's socket address.
    pub remote_addr: Option<String>,
}

impl Context {
    /// The headers of the call in progress (the HTTP request's, or the
    /// WebSocket handshake's), lowercase names: [`host::request_headers`].
    pub fn headers(&self) -> Vec<(String, String)> {
        host::request_headers()
    }

    /// The first value of header `name` (case-insensitive) of the call in
    /// progress: [`host::request_header`].
    pub fn header(&self, name: &str) -> Option<String> {
        host::request_header(name)
    }
}

/// One call of a method.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method name as the plugin registered it.
    pub method: String,
    /// Who called: asked of the host on first use.
    context: OnceLock<Context>,
    /// The params as JSON text: an object (by name), an array (by position)
    /// or absent. Kept as text: most handlers deserialize them straight into
    /// their own type, with no `Value` in between.
    params: Option<String>,
    /// `params` as a `Value`, parsed on first use.
    parsed: OnceLock<Option<Value>>,
}

impl Request {
    /// A call of `method` with `params` (JSON text) from `context`.
    pub fn new(method: String, params: Option<String>, context: Context) -> Self {
        Self {
            method,
            context: OnceLock::from(context),
            params,
            parsed: OnceLock::new(),
        }
    }

    /// The call in progress, of `method` with `params`.
    pub(crate) fn in_progress(method: String, params: Option<String>) -> Self {
        Self {
            method,
            context: OnceLock::new(),
            params,
            parsed: OnceLock::new(),
        }
    }

    /// Who called, and how.
    pub fn context(&self) -> &Context {
        self.context.get_or_init(host::call_context)
    }

    /// Deserialize all params into `T`. A struct accepts both named params
    /// (`{"a":1,"b":2}`) and positional ones (`[1,2]`, in field order); absent
    /// params read as `{}`. A mismatch is an invalid-params error.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        serde_json::from_str(self.params.as_deref().unwrap_or("{}"))
            .map_err(|error| RpcError::invalid_params(without_position(&error)))
    }

    /// One param, by `name` when params are an object or by `position` when
    /// they are an array. Missing or mistyped is an invalid-params error.
    pub fn param<T: DeserializeOwned>(&self, position: usize, name: &str) -> Result<T, RpcError> {
        let value = match self.params_value() {
            Some(Value::Object(map)) => map.get(name),
            Some(Value::Array(items)) => items.get(position),
            _ => None,
        }
        .ok_or_else(|| RpcError::invalid_params(format!("missing parameter `{name}`")))?;
        T::deserialize(value)
            .map_err(|error| RpcError::invalid_params(format!("parameter `{name}`: {error}")))
    }

    /// The params as the client sent them, JSON text; `None` when absent.
    pub fn params_json(&self) -> Option<&str> {
        self.params.as_deref()
    }

    /// The params as a JSON value; `None` when absent.
    pub fn params_value(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| {
                self.params
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok())
            })
            .as_ref()
    }

    /// The WebSocket client id of the caller, if the call came over WebSocket.
    pub fn client_id(&self) -> Option<&str> {
        self.context().client_id.as_deref()
    }

    /// The caller's WebSocket client id, or a -32001 error saying the method
    /// needs a WebSocket connection.
    pub fn require_client(&self) -> Result<&str, RpcError> {
        self.client_id().ok_or_else(|| {
            RpcError::new(
                RpcError::WEBSOCKET_REQUIRED,
                format!("{} needs a WebSocket connection", self.method),
            )
        })
    }
}

/// A deserialization error as a client should read it: the params are the
/// client's own text, so the position in it adds nothing.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) if error.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(params: Option<Value>) -> Request {
        let context = Context {
            request_id: None,
            transport: Transport::Http,
            client_id: None,
            remote_addr: None,
        };
        Request::new(
            "add".into(),
            params.map(|params| params.to_string()),
            context,
        )
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Pair {
        a: f64,
        b: f64,
    }

    #[test]
    fn struct_params_by_name_and_by_position() {
        let named = request(Some(json!({"a": 1, "b": 2})));
        let positional = request(Some(json!([1, 2])));
        assert_eq!(named.params::<Pair>().unwrap(), Pair { a: 1.0, b: 2.0 });
        assert_eq!(
            positional.params::<Pair>().unwrap(),
            Pair { a: 1.0, b: 2.0 }
        );
    }

    #[test]
    fn params_as_text_and_as_a_value() {
        let named = request(Some(json!({"a": 1})));
        assert_eq!(named.params_json(), Some(r#"{"a":1}"#));
        assert_eq!(named.params_value(), Some(&json!({"a": 1})));
        assert_eq!(request(None).params_value(), None);
    }

    #[test]
    fn missing_or_mistyped_params_are_invalid_params() {
        let error = request(Some(json!({"a": 1}))).params::<Pair>().unwrap_err();
        assert_eq!(error.code, RpcError::INVALID_PARAMS);
        assert_eq!(error.message, "missing field `b`");
        let error = request(Some(json!({"a": "x", "b": 1})))
            .params::<Pair>()
            .unwrap_err();
        assert_eq!(error.message, r#"invalid type: string "x", expected f64"#);
        let error = request(None).param::<f64>(0, "a").unwrap_err();
        assert_eq!(error.message, "missing parameter `a`");
        let error = request(Some(json!(["x"])))
            .param::<f64>(0, "a")
            .unwrap_err();
        assert!(error.message.starts_with("parameter `a`: invalid type"));
    }
}
