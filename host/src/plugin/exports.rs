//! The handler exports called with arguments borrowed from the request: the
//! method, params and outcome are lowered straight from the message text into
//! the plugin's memory, with no copy in between (the generated bindings take
//! the params as `&String`). Checked against the component's types once per
//! instance.

use wasmtime::Store;
use wasmtime::component::TypedFunc;

use super::bindings;
use super::bindings::rpcnode::plugin::types::RpcError;
use super::store_state::StoreState;

/// `(method, params)`, the arguments of `handle` and `before-request`.
pub type RequestArgs<'a> = (&'a str, Option<&'a str>);
/// `(method, params, outcome)`, the arguments of `after-request`.
pub type AfterArgs<'a> = (&'a str, Option<&'a str>, &'a Result<String, RpcError>);

/// One instance's typed exports that take borrowed arguments. The argument
/// types name `'static`, and a `TypedFunc` is covariant in them, so each call
/// passes arguments of any shorter lifetime.
pub struct BorrowingExports {
    pub handle: TypedFunc<RequestArgs<'static>, (Result<String, RpcError>,)>,
    pub before_request: TypedFunc<RequestArgs<'static>, (Result<(), RpcError>,)>,
    pub after_request: TypedFunc<AfterArgs<'static>, ()>,
}

impl BorrowingExports {
    /// Type-check `guest`'s exports against the host's argument types.
    pub fn new(store: &Store<StoreState>, guest: &bindings::Plugin) -> wasmtime::Result<Self> {
        let handler = guest.rpcnode_plugin_handler();
        Ok(Self {
            handle: handler.func_handle().func().typed(store)?,
            before_request: handler.func_before_request().func().typed(store)?,
            after_request: handler.func_after_request().func().typed(store)?,
        })
    }
}
