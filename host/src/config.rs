//! Server settings, with the defaults a production JSON-RPC server needs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cors::CorsOrigins;
use crate::plugin::{PluginFile, PluginSettings};
pub use crate::ratelimit::RateLimit;
use crate::store::HistoryLimits;
use crate::tls::TlsFiles;
pub use crate::webhook::{Upstream, WebhookSettings};

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (an IP address or a host name).
    pub host: String,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Folder of plugin components (`*.wasm`).
    pub plugins_dir: PathBuf,
    /// The node's name, reported by `/health`.
    pub node_name: String,
    /// How long a request (hooks and handler) may run before it fails with
    /// -32000.
    pub request_timeout: Duration,
    /// The most requests in one batch.
    pub max_batch_size: usize,
    /// The largest HTTP body or WebSocket message, in bytes.
    pub max_message_bytes: usize,
    /// Outbound messages queued per WebSocket client before it is
    /// disconnected as too slow.
    pub ws_queue_capacity: usize,
    /// Requests one WebSocket connection may have in flight; further frames
    /// wait to be read.
    pub ws_max_in_flight: usize,
    /// Greet each WebSocket client with a `welcome` notification carrying its
    /// `client_id`.
    pub welcome: bool,
    /// Background calls (`spawn`) one plugin may have pending.
    pub max_background_calls: usize,
    /// Watch the plugins folder and reload plugins when it changes.
    pub watch: bool,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The most bytes the compile cache keeps; the entries used least
    /// recently go first.
    pub cache_max_bytes: u64,
    /// Serve HTTPS and WSS with these files instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// When set, `/health` and `/metrics` answer only requests carrying
    /// `Authorization: Bearer TOKEN`.
    pub admin_token: Option<String>,
    /// When set, `/health` and `/metrics` are served over plain HTTP on this
    /// port of `host` (0 picks one), and no longer on the public port.
    pub admin_port: Option<u16>,
    /// The most connections open at once; more are answered `503`.
    pub max_connections: usize,
    /// How long an HTTP connection with no request in flight may take to
    /// send its next request head (and a client to finish a TLS handshake).
    pub header_read_timeout: Duration,
    /// How long a stop waits for requests in flight.
    pub shutdown_grace: Duration,
    /// How often an idle WebSocket is pinged.
    pub ws_ping_interval: Duration,
    /// How long a WebSocket may stay silent (no frames, no pongs) before it is
    /// closed.
    pub ws_idle_timeout: Duration,
    /// Built-in rate limiting per client; off when `None`.
    pub rate_limit: Option<RateLimit>,
    /// Plugin configuration by file stem, used when `NAME.toml` is absent.
    pub plugin_sections: BTreeMap<String, PluginFile>,
    /// Limits applied to plugin instances.
    pub plugins: PluginSettings,
    /// Where the node keeps plugin state, stream history and sessions; in
    /// memory only (lost when the process ends) when `None`.
    pub data_dir: Option<PathBuf>,
    /// How much history each notification stream keeps.
    pub history: HistoryLimits,
    /// How long a session outlives its connection.
    pub session_ttl: Duration,
    /// The most sessions the node keeps, connected or away.
    pub max_sessions: usize,
    /// The cluster this node joins; a single node when `None`.
    pub cluster: Option<Cluster>,
    /// Webhook subscriptions and deliveries.
    pub webhooks: WebhookSettings,
    /// Upstream nodes whose topics this node follows over webhooks.
    pub upstreams: Vec<Upstream>,
    /// The origins whose browser pages may call `POST /` and read
    /// `GET /openrpc.json`; none by default (same origin only).
    pub cors_origins: CorsOrigins,
    /// Serve the live dashboard at `GET /dashboard`.
    pub dashboard: bool,
}

/// A cluster: every node using the same Redis and cluster name.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The Redis URL (`redis://HOST[:PORT][/DB]` or `unix:///PATH`).
    pub redis_url: String,
    /// The prefix of the cluster's keys and channel in Redis.
    pub name: String,
    /// How long a node's clients stay listed after it last published them
    /// (it does every second).
    pub presence_ttl: Duration,
}

impl Cluster {
    /// The cluster named `rpcnode` on the Redis at `redis_url`, with the
    /// default presence TTL (10 s).
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            name: "rpcnode".into(),
            presence_ttl: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Defaults, loading plugins from `plugins_dir`, listening on
    /// 127.0.0.1:8000, without watching the folder, caching compiled
    /// components or keeping data on disk (the `rpcnode` binary turns all
    /// three on).
    pub fn new(plugins_dir: impl Into<PathBuf>) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            plugins_dir: plugins_dir.into(),
            node_name: "rpcnode".into(),
            request_timeout: Duration::from_secs(30),
            max_batch_size: 1000,
            max_message_bytes: 10 << 20,
            ws_queue_capacity: 1024,
            ws_max_in_flight: 64,
            welcome: false,
            max_background_calls: 1000,
            watch: false,
            cache_dir: None,
            cache_max_bytes: 1 << 30,
            tls: None,
            admin_token: None,
            admin_port: None,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            rate_limit: None,
            plugin_sections: BTreeMap::new(),
            ws_ping_interval: Duration::from_secs(20),
            ws_idle_timeout: Duration::from_secs(60),
            plugins: PluginSettings::default(),
            data_dir: None,
            history: HistoryLimits {
                size: 1000,
                ttl: Duration::from_secs(300),
            },
            session_ttl: Duration::from_secs(300),
            max_sessions: 100_000,
            cluster: None,
            webhooks: WebhookSettings::default(),
            upstreams: Vec::new(),
            cors_origins: CorsOrigins::default(),
            dashboard: false,
        }
    }
}
