//! rpcnode: a JSON-RPC 2.0 server over HTTP and WebSocket on one port, whose
//! method handlers and lifecycle hooks are WebAssembly component plugins.
//!
//! - [`jsonrpc`]: the wire format and the spec's error codes.
//! - [`dispatch`]: hooks, routing and responses, shared by both transports;
//!   [`headers`]: the request headers plugins can read.
//! - [`transport`]: HTTP `POST /` and WebSocket `GET /ws`; [`health`]: `GET /health`;
//!   [`metrics`]: `GET /metrics`; [`tls`]: HTTPS, WSS and mutual TLS.
//! - [`clients`]: WebSocket client tracking and notification fan-out;
//!   [`ratelimit`]: optional per-client rate limiting.
//! - [`builtin`]: the host's own `rpc.` methods.
//! - [`plugin`]: loading, sandboxing and calling plugins; [`state`]: their durable state;
//!   [`scheduler`]: their background work.
//! - [`watcher`]: hot reload of the plugins folder.
//! - [`server`], [`node`], [`config`], [`cli`]: putting it together.

pub mod builtin;
pub mod cli;
pub mod clients;
pub mod config;
pub mod dispatch;
pub mod headers;
pub mod health;
pub mod jsonrpc;
pub mod metrics;
pub mod node;
pub mod plugin;
pub mod ratelimit;
pub mod scheduler;
pub mod server;
pub mod state;
pub mod tls;
pub mod transport;
pub mod watcher;

pub use config::Config;
pub use node::Node;
pub use server::Server;
