//! Plugins: WebAssembly components loaded from a folder, each sandboxed in its
//! own stores, called through a pool of warm instances.

mod bindings;
mod cache;
mod call_context;
mod engine;
mod exports;
mod flat_schema;
mod host_api;
mod instance;
mod library;
mod limiter;
mod loaded;
mod loader;
mod params;
mod plugin_file;
mod registry;
mod spawner;
mod stdio;
mod store_state;

pub use cache::CompileCache;
pub use call_context::CallContext;
pub use engine::PluginEngine;
pub use exports::BatchCall;
pub use instance::CallError;
pub use library::{Library, Refresh};
pub use limiter::MemoryBudget;
pub use loaded::{ConnectionEvent, LoadedPlugin};
pub use loader::{Shared, check_manifest};
pub use params::{ParamsSchema, Problem};
pub use plugin_file::{PluginFile, PluginSettings};
pub use registry::{LoadFailure, MethodTable, Registry, Route};
pub use spawner::{Schedule, Spawner};

/// The WIT types as the host sees them.
pub use bindings::rpcnode::plugin::types::{
    Hook, Manifest, MethodInfo, RpcError as GuestError, Timer, Transport,
};
