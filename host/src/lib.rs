//! rpcnode: a JSON-RPC 2.0 server over HTTP and WebSocket on one port, whose
//! method handlers and lifecycle hooks are WebAssembly component plugins.
//!
//! From the wire inwards:
//! - [`server`]: the port, its routes, TLS ([`tls`]) and graceful stop;
//!   [`transport`]: HTTP `POST /` and WebSocket `GET /ws` with resumable
//!   sessions; [`status`]: `GET /health` and `GET /metrics`; [`cors`]: which
//!   other origins' browser pages may call; [`dashboard`]: the live page.
//! - [`rpc`]: the JSON-RPC wire format, dispatch through hooks to handlers,
//!   and the host's own `rpc.` methods; [`headers`]: the request headers
//!   plugins can read; [`ratelimit`]: optional per-client rate limiting.
//! - [`plugin`]: loading, sandboxing and calling plugins; [`scheduler`]:
//!   their background work; [`watcher`]: hot reload of the plugins folder.
//! - [`push`]: the clients, the broker that puts every notification in its
//!   stream and delivers it, and resumable sessions.
//! - [`webhook`]: notifications delivered over HTTP to subscribed callback
//!   URLs, confirmed, signed and retried.
//! - [`store`]: the backends (plugin state, notification streams, sessions,
//!   webhook queues) in memory, in the embedded durable store or in Redis.
//! - [`node`]: the composition root that builds and wires all of it;
//!   [`config`], [`cli`]: settings; [`metrics`]: counters; [`random`]:
//!   tokens, epochs and jitter.
//! - [`client`]: the `rpcnode call`, `listen` and `discover` commands.

pub mod cli;
pub mod client;
pub mod config;
pub mod cors;
pub mod dashboard;
pub mod headers;
pub mod metrics;
pub mod node;
pub mod plugin;
pub mod push;
pub mod random;
pub mod ratelimit;
pub mod rpc;
pub mod scheduler;
pub mod server;
pub mod status;
pub mod store;
pub mod tls;
pub mod transport;
pub mod watcher;
pub mod webhook;

pub use config::Config;
pub use node::Node;
pub use server::Server;
