//! Write [rpcnode](https://github.com/rpcnode/rpcnode) JSON-RPC plugins in plain Rust.
//!
//! A plugin is a function that builds a [`Plugin`] (its name, version, methods
//! and hooks) plus one [`export!`] line. Handlers are ordinary functions from a
//! [`Request`] to a JSON result or an [`RpcError`]; the SDK hides the
//! WebAssembly component bindings.
//!
//! ```ignore
//! use rpcnode_sdk::{export, json, Method, Plugin, Request, RpcError, Value};
//!
//! #[derive(serde::Deserialize)]
//! struct Pair { a: f64, b: f64 }
//!
//! fn add(request: &Request) -> Result<Value, RpcError> {
//!     let Pair { a, b } = request.params()?; // {"a":1,"b":2} or [1,2]
//!     Ok(json!({ "sum": a + b }))
//! }
//!
//! fn plugin() -> Plugin {
//!     Plugin::new("calculator", "0.1.0").method(Method::new("add", add))
//! }
//!
//! export!(plugin);
//! ```
#![deny(missing_docs)]

#[cfg(any(
    test,
    all(
        feature = "allocator",
        target_family = "wasm",
        not(target_feature = "atomics")
    )
))]
mod allocator;
mod error;
mod export;
pub mod host;
mod plugin;
mod request;
mod time;

pub use error::RpcError;
pub use plugin::{Method, Plugin};
pub use request::{Context, Request, Transport};
pub use serde_json::{Value, json};
pub use time::unix_time;

/// The SDK's allocator serves every allocation of a Rust plugin unless the
/// `allocator` feature is off. Wasm threads would make it unsound, so it
/// stands aside when the `atomics` feature is on.
#[cfg(all(
    feature = "allocator",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: allocator::FreeListAllocator = allocator::FreeListAllocator::new();

/// Implementation details used by [`export!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{PluginSource, bindings};
}

/// Export a plugin: `export!(build)` where `build` is a `fn() -> Plugin`.
///
/// The function runs once per plugin instance, on first use.
#[macro_export]
macro_rules! export {
    ($build:path) => {
        #[doc(hidden)]
        struct __RpcnodePlugin;

        impl $crate::__private::PluginSource for __RpcnodePlugin {
            fn build() -> $crate::Plugin {
                $build()
            }
        }

        $crate::__private::bindings::__export_guest!(__RpcnodePlugin with_types_in $crate::__private::bindings);
    };
}
