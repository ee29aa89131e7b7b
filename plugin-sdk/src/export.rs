//! The component export: translates between the WIT bindings and the SDK's types.

use std::cell::RefCell;
use std::sync::OnceLock;

use serde_json::Value;

use bindings::exports::rpcnode::plugin::batch_handler::{self, Guest as BatchGuest};
use bindings::exports::rpcnode::plugin::handler::Guest;
use bindings::rpcnode::plugin::types as wit;

use crate::{Context, Plugin, Request, RpcError, Transport};

/// The generated bindings for the `rpcnode:plugin/plugin` world.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "rpcnode:plugin/plugin",
        pub_export_macro: true,
        export_macro_name: "__export_guest",
        default_bindings_module: "rpcnode_sdk::__private::bindings",
    });
}

/// Implemented by [`crate::export!`] for the type it exports.
pub trait PluginSource {
    /// Build the plugin description.
    fn build() -> Plugin;
}

static PLUGIN: OnceLock<Plugin> = OnceLock::new();

fn plugin<P: PluginSource>() -> &'static Plugin {
    PLUGIN.get_or_init(P::build)
}

impl<P: PluginSource> Guest for P {
    fn describe() -> wit::Manifest {
        let plugin = plugin::<P>();
        let mut hooks = Vec::new();
        if plugin.before_request.is_some() {
            hooks.push(wit::Hook::BeforeRequest);
        }
        if plugin.after_request.is_some() {
            hooks.push(wit::Hook::AfterRequest);
        }
        if plugin.on_connect.is_some() {
            hooks.push(wit::Hook::OnConnect);
        }
        if plugin.on_disconnect.is_some() {
            hooks.push(wit::Hook::OnDisconnect);
        }
        wit::Manifest {
            name: plugin.name.clone(),
            version: plugin.version.clone(),
            methods: plugin
                .methods
                .iter()
                .map(|method| wit::MethodInfo {
                    name: method.name.clone(),
                    summary: method.summary.clone(),
                    description: method.description.clone(),
                    params_schema: method.params_schema.as_ref().map(Value::to_string),
                    result_schema: method.result_schema.as_ref().map(Value::to_string),
                    notification: method.notification,
                    internal: method.internal,
                })
                .collect(),
            hooks,
            timers: plugin
                .timers
                .iter()
                .map(|(method, every_ms)| wit::Timer {
                    method: method.clone(),
                    every_ms: *every_ms,
                })
                .collect(),
        }
    }

    fn handle(method: String, params: Option<String>) -> Result<String, wit::RpcError> {
        let plugin = plugin::<P>();
        let request = Request::in_progress(method, params);
        let Some(found) = plugin.find(&request.method) else {
            return Err(RpcError::new(-32601, format!("no method `{}`", request.method)).into());
        };
        (found.handler)(&request)
            .map(|result| json_text(&result))
            .map_err(Into::into)
    }

    fn before_request(method: String, params: Option<String>) -> Result<(), wit::RpcError> {
        match plugin::<P>().before_request {
            Some(hook) => hook(&Request::in_progress(method, params)).map_err(Into::into),
            None => Ok(()),
        }
    }

    fn after_request(
        method: String,
        params: Option<String>,
        outcome: Result<String, wit::RpcError>,
    ) {
        let Some(hook) = plugin::<P>().after_request else {
            return;
        };
        let request = Request::in_progress(method, params);
        match outcome {
            Ok(result) => hook(&request, Ok(&parse(&result))),
            Err(error) => hook(&request, Err(&error.into())),
        }
    }

    fn on_connect(client_id: String) {
        if let Some(hook) = plugin::<P>().on_connect {
            hook(&client_id, &crate::host::call_context());
        }
    }

    fn on_disconnect(client_id: String) {
        if let Some(hook) = plugin::<P>().on_disconnect {
            hook(&client_id);
        }
    }
}

thread_local! {
    /// The request id of the batch call in progress, as JSON text: during
    /// `handle-batch` the host's `call-context` has none.
    static BATCH_REQUEST_ID: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

impl<P: PluginSource> BatchGuest for P {
    fn handle_batch(calls: Vec<batch_handler::Call>) -> Vec<Result<String, wit::RpcError>> {
        calls
            .into_iter()
            .map(|call| {
                BATCH_REQUEST_ID.set(Some(call.request_id));
                let outcome = <P as Guest>::handle(call.method, call.params);
                BATCH_REQUEST_ID.set(None);
                outcome
            })
            .collect()
    }
}

/// `value` as JSON text, written straight into a buffer (`to_string`
/// would go through the formatting machinery for every token).
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value always serialises")
}

/// The host only sends valid JSON; anything else reads as `null`.
fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// The WIT record as the SDK's [`Context`], with the request id of the
/// batch call in progress, if any.
pub(crate) fn context(ctx: wit::RequestContext) -> Context {
    let request_id = BATCH_REQUEST_ID
        .with_borrow(Option::clone)
        .unwrap_or(ctx.request_id);
    Context {
        request_id: request_id.as_deref().map(parse),
        transport: match ctx.transport {
            wit::Transport::Http => Transport::Http,
            wit::Transport::Websocket => Transport::WebSocket,
            wit::Transport::Background => Transport::Background,
        },
        client_id: ctx.client_id,
        remote_addr: ctx.remote_addr,
    }
}

impl From<RpcError> for wit::RpcError {
    fn from(error: RpcError) -> Self {
        Self {
            code: error.code,
            message: error.message,
            data: error.data.as_ref().map(json_text),
        }
    }
}

impl From<wit::RpcError> for RpcError {
    fn from(error: wit::RpcError) -> Self {
        Self {
            code: error.code,
            message: error.message,
            data: error.data.as_deref().map(parse),
        }
    }
}
