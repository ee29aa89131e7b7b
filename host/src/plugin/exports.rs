//! The handler exports called with arguments borrowed from the request: the
//! method, params and outcome are lowered straight from the message text into
//! the plugin's memory, with no copy in between (the generated bindings take
//! the params as `&String`). Checked against the component's types once per
//! instance.

use wasmtime::Store;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, Instance, Lower, TypedFunc,
};

use super::bindings;
use super::bindings::rpcnode::plugin::types::RpcError;
use super::store_state::StoreState;

/// `(method, params)`, the arguments of `handle` and `before-request`.
pub type RequestArgs<'a> = (&'a str, Option<&'a str>);
/// `(method, params, outcome)`, the arguments of `after-request`.
pub type AfterArgs<'a> = (&'a str, Option<&'a str>, &'a Result<String, RpcError>);
/// `(calls)`, the argument of `handle-batch`.
pub type BatchArgs<'a> = (&'a [BatchCall<'a>],);
/// One outcome per call, the result of `handle-batch`.
pub type BatchOutcomes = Vec<Result<String, RpcError>>;

/// The interface holding `handle-batch`, which plugins built against
/// contract 0.3.0 lack. The host's bindings cover the exports every plugin
/// has; this one is looked up by name (a semver-compatible later version
/// matches too).
const BATCH_INTERFACE: &str = "rpcnode:plugin/batch-handler@0.3.1";

/// One call of `handle-batch`: the WIT record `call`, borrowed from the
/// request.
#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
pub struct BatchCall<'a> {
    /// The method as the manifest spells it.
    pub method: &'a str,
    /// The params as JSON text.
    pub params: Option<&'a str>,
    /// The request's id as JSON text.
    #[component(name = "request-id")]
    pub request_id: Option<&'a str>,
}

/// One instance's typed exports that take borrowed arguments. The argument
/// types name `'static`, and a `TypedFunc` is covariant in them, so each call
/// passes arguments of any shorter lifetime.
pub struct BorrowingExports {
    pub handle: TypedFunc<RequestArgs<'static>, (Result<String, RpcError>,)>,
    pub before_request: TypedFunc<RequestArgs<'static>, (Result<(), RpcError>,)>,
    pub after_request: TypedFunc<AfterArgs<'static>, ()>,
    /// `handle-batch`, if the plugin has it.
    pub handle_batch: Option<TypedFunc<BatchArgs<'static>, (BatchOutcomes,)>>,
}

impl BorrowingExports {
    /// Type-check `guest`'s exports against the host's argument types;
    /// `batch` is where `handle-batch` is, if the component has it.
    pub fn new(
        store: &mut Store<StoreState>,
        instance: &Instance,
        guest: &bindings::SingleCalls,
        batch: Option<&ComponentExportIndex>,
    ) -> wasmtime::Result<Self> {
        let handler = guest.rpcnode_plugin_handler();
        let handle_batch = match batch {
            Some(index) => Some(instance.get_typed_func(&mut *store, index)?),
            None => None,
        };
        Ok(Self {
            handle: handler.func_handle().func().typed(&*store)?,
            before_request: handler.func_before_request().func().typed(&*store)?,
            after_request: handler.func_after_request().func().typed(&*store)?,
            handle_batch,
        })
    }
}

/// Where `component` exports `handle-batch`, if it does.
pub fn find_handle_batch(component: &Component) -> Option<ComponentExportIndex> {
    let (_, interface) = component.get_export(None, BATCH_INTERFACE)?;
    let (_, function) = component.get_export(Some(&interface), "handle-batch")?;
    Some(function)
}
