//! The plugin description a plugin author builds: methods and hooks.

use serde_json::Value;

use crate::{Context, Request, RpcError};

/// A method handler: params in, JSON result or error out.
pub type Handler = fn(&Request) -> Result<Value, RpcError>;

/// One JSON-RPC method of a plugin, with the description the host publishes.
#[derive(Debug, Clone)]
pub struct Method {
    pub(crate) name: String,
    pub(crate) handler: Handler,
    pub(crate) summary: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) params_schema: Option<Value>,
    pub(crate) result_schema: Option<Value>,
    pub(crate) notification: bool,
    pub(crate) internal: bool,
}

impl Method {
    /// A method called `name` (use `_` between words: clients may also call it
    /// with `.`, `-` or `#` in their place).
    pub fn new(name: impl Into<String>, handler: Handler) -> Self {
        Self {
            name: name.into(),
            handler,
            summary: None,
            description: None,
            params_schema: None,
            result_schema: None,
            notification: false,
            internal: false,
        }
    }

    /// A method without a result (an OpenRPC notification): the handler's
    /// result is ignored and a caller that sends an id gets `null`.
    pub fn notification(name: impl Into<String>, handler: Handler) -> Self {
        Self {
            notification: true,
            ..Self::new(name, handler)
        }
    }

    /// Only this plugin's background work (`host::spawn`, timers) may call the
    /// method; clients get "method not found".
    pub fn internal(mut self) -> Self {
        self.internal = true;
        self
    }

    /// A one-line summary.
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }

    /// A longer description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The JSON Schema of the params.
    pub fn params_schema(mut self, schema: Value) -> Self {
        self.params_schema = Some(schema);
        self
    }

    /// Declare that the method takes no params: the host accepts none, `[]`
    /// or `{}` and refuses anything else.
    pub fn without_params(self) -> Self {
        self.params_schema(serde_json::json!({ "type": "object", "properties": {} }))
    }

    /// The JSON Schema of the result.
    pub fn result_schema(mut self, schema: Value) -> Self {
        self.result_schema = Some(schema);
        self
    }
}

/// Runs before a request's handler; an error rejects the request.
pub type BeforeRequest = fn(&Request) -> Result<(), RpcError>;
/// Sees every request's outcome.
pub type AfterRequest = fn(&Request, Result<&Value, &RpcError>);
/// A WebSocket client connected.
pub type OnConnect = fn(&str, &Context);
/// A WebSocket client disconnected.
pub type OnDisconnect = fn(&str);

/// A plugin: its name, version, methods and the hooks it implements.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) methods: Vec<Method>,
    pub(crate) before_request: Option<BeforeRequest>,
    pub(crate) after_request: Option<AfterRequest>,
    pub(crate) on_connect: Option<OnConnect>,
    pub(crate) on_disconnect: Option<OnDisconnect>,
    pub(crate) timers: Vec<(String, u32)>,
}

impl Plugin {
    /// A plugin with no methods and no hooks yet.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            methods: Vec::new(),
            before_request: None,
            after_request: None,
            on_connect: None,
            on_disconnect: None,
            timers: Vec::new(),
        }
    }

    /// Add a method.
    pub fn method(mut self, method: Method) -> Self {
        self.methods.push(method);
        self
    }

    /// Have the host call `method` (one of this plugin's, usually
    /// [`Method::internal`]) every `every_ms` milliseconds, with no params.
    pub fn timer(mut self, method: impl Into<String>, every_ms: u32) -> Self {
        self.timers.push((method.into(), every_ms));
        self
    }

    /// Run `hook` before every request the host receives, for any plugin's
    /// method; an error it returns is sent to the client instead.
    pub fn before_request(mut self, hook: BeforeRequest) -> Self {
        self.before_request = Some(hook);
        self
    }

    /// Run `hook` after every request with its outcome.
    pub fn after_request(mut self, hook: AfterRequest) -> Self {
        self.after_request = Some(hook);
        self
    }

    /// Run `hook` when a WebSocket client connects.
    pub fn on_connect(mut self, hook: OnConnect) -> Self {
        self.on_connect = Some(hook);
        self
    }

    /// Run `hook` when a WebSocket client disconnects.
    pub fn on_disconnect(mut self, hook: OnDisconnect) -> Self {
        self.on_disconnect = Some(hook);
        self
    }

    pub(crate) fn find(&self, method: &str) -> Option<&Method> {
        self.methods
            .iter()
            .find(|candidate| candidate.name == method)
    }
}
