//! The handler exports that receive a request context, called with the
//! host's own [`RequestContext`]: the parts every request of a connection
//! shares (client id, address) sit behind `Arc`s, so building a request's
//! context copies nothing; wasmtime lowers it straight into the plugin's
//! memory. Checked against the component's types once per instance.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{ComponentType, Lower, TypedFunc};

use super::bindings;
use super::bindings::rpcnode::plugin::types::{RpcError, Transport};
use super::instance::StoreState;

/// The WIT `request-context` record.
#[derive(Debug, Clone, ComponentType, Lower)]
#[component(record)]
pub struct RequestContext {
    /// The request's `id` as JSON text; absent for notifications and for
    /// connection events.
    #[component(name = "request-id")]
    pub request_id: Option<Arc<str>>,
    /// The transport the call arrived on.
    pub transport: Transport,
    /// The WebSocket client id.
    #[component(name = "client-id")]
    pub client_id: Option<Arc<str>>,
    /// The peer's socket address.
    #[component(name = "remote-addr")]
    pub remote_addr: Option<Arc<str>>,
}

impl RequestContext {
    /// The context of a call no client made (a timer).
    pub fn background() -> Self {
        Self {
            request_id: None,
            transport: Transport::Background,
            client_id: None,
            remote_addr: None,
        }
    }
}

/// `(method, params, ctx)`, the arguments of `handle` and `before-request`.
pub type RequestArgs = (Arc<str>, Option<Arc<str>>, RequestContext);
/// `(method, params, ctx, outcome)`, the arguments of `after-request`.
type AfterArgs = (
    Arc<str>,
    Option<Arc<str>>,
    RequestContext,
    Result<String, RpcError>,
);

/// One instance's typed exports that take a context.
pub struct ContextExports {
    pub handle: TypedFunc<RequestArgs, (Result<String, RpcError>,)>,
    pub before_request: TypedFunc<RequestArgs, (Result<(), RpcError>,)>,
    pub after_request: TypedFunc<AfterArgs, ()>,
    pub on_connect: TypedFunc<(Arc<str>, RequestContext), ()>,
}

impl ContextExports {
    /// Type-check `guest`'s exports against the host's argument types.
    pub fn new(store: &Store<StoreState>, guest: &bindings::Plugin) -> wasmtime::Result<Self> {
        let handler = guest.rpcnode_plugin_handler();
        Ok(Self {
            handle: handler.func_handle().func().typed(store)?,
            before_request: handler.func_before_request().func().typed(store)?,
            after_request: handler.func_after_request().func().typed(store)?,
            on_connect: handler.func_on_connect().func().typed(store)?,
        })
    }
}
