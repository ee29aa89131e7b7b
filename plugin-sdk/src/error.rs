//! The error a handler or hook returns to the client.

use serde_json::Value;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i32,
    /// A short description; for [`RpcError::INVALID_PARAMS`] the host sends it
    /// as `"Invalid params: <message>"`.
    pub message: String,
    /// Extra information for the client.
    pub data: Option<Value>,
}

impl RpcError {
    /// The params do not fit the method (-32602).
    pub const INVALID_PARAMS: i32 = -32602;
    /// The plugin failed for a reason of its own (-32603).
    pub const INTERNAL_ERROR: i32 = -32603;
    /// The method needs a WebSocket connection (-32001), as the host's
    /// `rpc.subscribe` does.
    pub const WEBSOCKET_REQUIRED: i32 = -32001;

    /// An error with any code.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An invalid-params error (-32602), such as "Cannot divide by zero".
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(Self::INVALID_PARAMS, message)
    }

    /// An internal error (-32603).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Self::INTERNAL_ERROR, message)
    }

    /// Attach `data` to the error.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}
