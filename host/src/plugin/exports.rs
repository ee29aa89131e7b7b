//! The handler exports that receive a request context, called with
//! arguments borrowed from the request: the method, params and ids are
//! lowered straight from the message text and the connection into the
//! plugin's memory, with no copy or reference count in between. Checked
//! against the component's types once per instance.

use wasmtime::Store;
use wasmtime::component::{ComponentType, Lower, TypedFunc};

use super::bindings;
use super::bindings::rpcnode::plugin::types::{RpcError, Transport};
use super::instance::StoreState;

/// The WIT `request-context` record, borrowing its text.
#[derive(Debug, Clone, Copy, ComponentType, Lower)]
#[component(record)]
pub struct RequestContext<'a> {
    /// The request's `id` as JSON text; absent for notifications and for
    /// connection events.
    #[component(name = "request-id")]
    pub request_id: Option<&'a str>,
    /// The transport the call arrived on.
    pub transport: Transport,
    /// The WebSocket client id.
    #[component(name = "client-id")]
    pub client_id: Option<&'a str>,
    /// The peer's socket address.
    #[component(name = "remote-addr")]
    pub remote_addr: Option<&'a str>,
}

impl RequestContext<'static> {
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
pub type RequestArgs<'a> = (&'a str, Option<&'a str>, RequestContext<'a>);
/// `(method, params, ctx, outcome)`, the arguments of `after-request`.
pub type AfterArgs<'a> = (
    &'a str,
    Option<&'a str>,
    RequestContext<'a>,
    Result<String, RpcError>,
);

/// `(client-id, ctx)`, the arguments of `on-connect`.
pub type ConnectArgs<'a> = (&'a str, RequestContext<'a>);

/// One instance's typed exports that take a context. The argument types
/// name `'static`, and a `TypedFunc` is covariant in them, so each call
/// passes arguments of any shorter lifetime.
pub struct ContextExports {
    pub handle: TypedFunc<RequestArgs<'static>, (Result<String, RpcError>,)>,
    pub before_request: TypedFunc<RequestArgs<'static>, (Result<(), RpcError>,)>,
    pub after_request: TypedFunc<AfterArgs<'static>, ()>,
    pub on_connect: TypedFunc<ConnectArgs<'static>, ()>,
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
