//! Plugins: WebAssembly components loaded from a folder, each sandboxed in its
//! own stores, called through a pool of warm instances.

mod bindings;
mod engine;
mod host_api;
mod instance;
mod loaded;
mod loader;
mod registry;

pub use engine::PluginEngine;
pub use instance::CallError;
pub use loaded::LoadedPlugin;
pub use loader::{LoadFailure, PluginSettings, Shared, load_dir};
pub use registry::{MethodTable, Registry, Route};

/// The WIT types as the host sees them.
pub use bindings::rpcnode::plugin::types::{
    Hook, Manifest, MethodInfo, RequestContext, RpcError as GuestError, Transport,
};
