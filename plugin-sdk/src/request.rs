//! What a handler receives: the method, its params and who called.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::RpcError;
use crate::export::bindings::rpcnode::plugin::host;

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

/// Who made a call, and how.
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
    /// WebSocket handshake's), lowercase names. Asked of the host on each use.
    pub fn headers(&self) -> Vec<(String, String)> {
        host::request_headers()
    }

    /// The first value of header `name` (case-insensitive) of the call in
    /// progress. Asked of the host on each use.
    pub fn header(&self, name: &str) -> Option<String> {
        host::request_header(name)
    }
}

/// One call of a method.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method name as the plugin registered it.
    pub method: String,
    /// The params: an object (by name), an array (by position) or absent.
    pub params: Option<Value>,
    /// Who called.
    pub context: Context,
}

impl Request {
    /// Deserialize all params into `T`. A struct accepts both named params
    /// (`{"a":1,"b":2}`) and positional ones (`[1,2]`, in field order); absent
    /// params read as `{}`. A mismatch is an invalid-params error.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        let empty = Value::Object(Default::default());
        T::deserialize(self.params.as_ref().unwrap_or(&empty))
            .map_err(|error| RpcError::invalid_params(error.to_string()))
    }

    /// One param, by `name` when params are an object or by `position` when
    /// they are an array. Missing or mistyped is an invalid-params error.
    pub fn param<T: DeserializeOwned>(&self, position: usize, name: &str) -> Result<T, RpcError> {
        let value = match &self.params {
            Some(Value::Object(map)) => map.get(name),
            Some(Value::Array(items)) => items.get(position),
            _ => None,
        }
        .ok_or_else(|| RpcError::invalid_params(format!("missing parameter `{name}`")))?;
        T::deserialize(value)
            .map_err(|error| RpcError::invalid_params(format!("parameter `{name}`: {error}")))
    }

    /// The WebSocket client id of the caller, if the call came over WebSocket.
    pub fn client_id(&self) -> Option<&str> {
        self.context.client_id.as_deref()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(params: Option<Value>) -> Request {
        Request {
            method: "add".into(),
            params,
            context: Context {
                request_id: None,
                transport: Transport::Http,
                client_id: None,
                remote_addr: None,
            },
        }
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
    fn missing_or_mistyped_params_are_invalid_params() {
        let error = request(Some(json!({"a": 1}))).params::<Pair>().unwrap_err();
        assert_eq!(error.code, RpcError::INVALID_PARAMS);
        assert_eq!(error.message, "missing field `b`");
        let error = request(None).param::<f64>(0, "a").unwrap_err();
        assert_eq!(error.message, "missing parameter `a`");
        let error = request(Some(json!(["x"])))
            .param::<f64>(0, "a")
            .unwrap_err();
        assert!(error.message.starts_with("parameter `a`: invalid type"));
    }
}
