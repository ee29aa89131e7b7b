//! Settings from the three places an operator sets them: a TOML file
//! (`--config`), command-line flags, and `RPCNODE_*` environment variables.
//! One struct is both the flag parser and the file schema, so every setting
//! has the same name everywhere (`--max-batch-size`, `max_batch_size = 100`,
//! `RPCNODE_MAX_BATCH_SIZE=100`). Flags override the file; environment
//! variables override both. Unknown keys and bad values are errors that name
//! the key and where it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use serde::Deserialize;

use crate::config::{Cluster, Config, RateLimit};
use crate::cors::CorsOrigins;
use crate::plugin::{MemoryBudget, PluginFile};
use crate::tls::TlsFiles;
use crate::webhook::{AllowList, Upstream, UpstreamFile};

/// The most notifications one stream may keep.
const MAX_HISTORY_SIZE: usize = 1_000_000;

/// The longest wait or give-up period of webhook retries: 30 days.
const MAX_WEBHOOK_SECONDS: f64 = 30.0 * 86_400.0;

/// The longest cluster name.
const MAX_CLUSTER_NAME_LEN: usize = 64;

/// The shortest admin token accepted: shorter ones can be guessed.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Serve JSON-RPC 2.0 over HTTP (POST /) and WebSocket (GET /ws) on one port,
/// with every method handled by a WebAssembly plugin from a folder.
///
/// Every flag can also be set in the --config file (as `snake_case = value`)
/// and in an RPCNODE_* environment variable (RPCNODE_MAX_BATCH_SIZE=100).
/// Flags override the file; environment variables override both.
#[derive(Debug, Default, Clone, Parser, Deserialize)]
#[command(
    name = "rpcnode",
    version,
    after_help = "Plugin projects:\n  rpcnode new NAME --lang rust|js|ts|python   start one (see `rpcnode new --help`)\n  rpcnode build DIR --out FOLDER [--watch]     build it into a plugins folder (see `rpcnode build --help`)\n\nClients:\n  rpcnode call URL METHOD [PARAMS...]          call a method (see `rpcnode call --help`)\n  rpcnode listen URL [--topics A,B]            print notifications as JSON lines\n  rpcnode discover URL [--json]                list the methods"
)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A TOML file with any of these settings, and `[plugin.NAME]` sections
    /// configuring plugins (see rpcnode.example.toml).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Folder of plugin components (*.wasm); a NAME.toml beside NAME.wasm
    /// configures that plugin. Required.
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1].
    #[arg(long)]
    pub host: Option<String>,

    /// Port to listen on; 0 picks a free port (printed on startup) [default: 8000].
    #[arg(long)]
    pub port: Option<u16>,

    /// The node name reported by /health [default: rpcnode].
    #[arg(long)]
    pub name: Option<String>,

    /// Seconds the before-request hooks and the handler of a request may run before it fails with
    /// error -32000; after-request hooks get as long again [default: 30].
    #[arg(long, value_name = "SECS")]
    pub request_timeout: Option<f64>,

    /// The most requests accepted in one batch [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_batch_size: Option<usize>,

    /// The largest HTTP body or WebSocket message accepted, in bytes [default: 10485760].
    #[arg(long, value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,

    /// The most connections open at once; more are answered 503 [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Seconds a client may take to send request headers or finish a TLS handshake [default: 10].
    #[arg(long, value_name = "SECS")]
    pub header_read_timeout: Option<f64>,

    /// Seconds a stop waits for requests in flight [default: 10].
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<f64>,

    /// Messages queued per WebSocket client before it is disconnected as too slow [default: 1024].
    #[arg(long, value_name = "N")]
    pub ws_queue_capacity: Option<usize>,

    /// Requests one WebSocket connection may have in flight [default: 64].
    #[arg(long, value_name = "N")]
    pub ws_max_in_flight: Option<usize>,

    /// Seconds between keepalive pings on a WebSocket [default: 20].
    #[arg(long, value_name = "SECS")]
    pub ws_ping_interval: Option<f64>,

    /// Seconds a WebSocket may stay silent (no frames, no pongs) before it is closed [default: 60].
    #[arg(long, value_name = "SECS")]
    pub ws_idle_timeout: Option<f64>,

    /// Greet each WebSocket client with a `welcome` notification carrying its client_id [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub welcome: Option<bool>,

    /// Requests per second allowed per client (WebSocket client, or remote IP over HTTP); off when unset.
    #[arg(long, value_name = "PER_SEC")]
    pub rate_limit: Option<f64>,

    /// Requests a client may send in a burst above the rate [default: the rate, at least 1].
    #[arg(long, value_name = "N")]
    pub rate_limit_burst: Option<u32>,

    /// Answer GET /health and GET /metrics only to requests with `Authorization: Bearer TOKEN`
    /// (at least 16 visible ASCII characters) [default: none; they are open to every client].
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,

    /// Serve GET /health and GET /metrics over plain HTTP on this port of --host (0 picks a free
    /// one, printed on startup) instead of on the public port [default: none].
    #[arg(long, value_name = "PORT")]
    pub admin_port: Option<u16>,

    /// Serve HTTPS and WSS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this PEM CA (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Watch the plugins folder and reload plugins when it changes [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub watch: Option<bool>,

    /// Cache compiled plugins on disk [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub cache: Option<bool>,

    /// Folder for compiled plugins, which must be this user's and writable by no one else
    /// [default: $XDG_CACHE_HOME/rpcnode or ~/.cache/rpcnode].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The most the compile cache keeps, in MiB; the entries used least recently go first
    /// [default: 1024].
    #[arg(long, value_name = "MIB")]
    pub cache_max_mib: Option<u64>,

    /// Linear memory each plugin instance may use, in MiB [default: 128].
    #[arg(long, value_name = "MIB")]
    pub plugin_memory_mib: Option<u32>,

    /// Linear memory all instances of all plugins may hold together, in MiB; a growth past it
    /// fails in the plugin as running out of memory does [default: 4096].
    #[arg(long, value_name = "MIB")]
    pub plugin_memory_budget_mib: Option<u64>,

    /// Instances of one plugin alive at once (its concurrency) [default: 64].
    #[arg(long, value_name = "N")]
    pub plugin_max_instances: Option<usize>,

    /// Replace a plugin instance with a fresh one after this many calls; 0 never [default: 0].
    #[arg(long, value_name = "N")]
    pub recycle_after_calls: Option<u64>,

    /// Background calls (spawn) one plugin may have pending [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_background_calls: Option<usize>,

    /// Folder for durable data: plugin state, notification history and
    /// sessions [default: $XDG_DATA_HOME/rpcnode or ~/.local/share/rpcnode].
    /// One node per folder: a second node on it is refused.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Keep plugin state, history and sessions in memory only: all of it is
    /// lost when the process ends [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub in_memory: Option<bool>,

    /// Notifications each stream (broadcast, a topic, a session client) keeps for clients that resume; 0 keeps none [default: 1000].
    #[arg(long, value_name = "N")]
    pub history_size: Option<usize>,

    /// Seconds a notification stays in its stream's history [default: 300].
    #[arg(long, value_name = "SECS")]
    pub history_ttl: Option<f64>,

    /// Seconds a session outlives its connection before it ends [default: 300].
    #[arg(long, value_name = "SECS")]
    pub session_ttl: Option<f64>,

    /// The most sessions kept at once, connected or away [default: 100000].
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    /// Join the cluster of every node using this Redis (redis://[:PASSWORD@]HOST[:PORT][/DB] or
    /// unix:///PATH): plugin state and notifications are shared through it (see docs/cluster.md)
    /// [default: none; a single node].
    #[arg(long = "redis", value_name = "URL")]
    pub redis_url: Option<String>,

    /// The cluster's name, the prefix of its keys and channel in Redis, so clusters can share one
    /// Redis [default: rpcnode].
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,

    /// Seconds a node's clients stay in the cluster's client list after the node last refreshed
    /// it (every second): how long the clients of a node that died stay listed [default: 10].
    #[arg(long, value_name = "SECS")]
    pub presence_ttl: Option<f64>,

    /// Hosts and networks webhook callbacks may reach besides public addresses, comma-separated
    /// (`127.0.0.1,10.0.0.0/8,hooks.internal`); loopback, private, link-local and reserved
    /// addresses are refused otherwise [default: none].
    #[arg(long, value_name = "LIST")]
    pub webhook_allow: Option<String>,

    /// Seconds to wait before each retry of a failing webhook delivery, comma-separated; the last
    /// repeats [default: 5,300,1800,7200,18000,36000,50400,72000,86400].
    #[arg(long, value_name = "SECS,...")]
    pub webhook_retry: Option<String>,

    /// Seconds a webhook subscription may fail continuously before it is dropped with its queue
    /// [default: the sum of the retry schedule, 272105].
    #[arg(long, value_name = "SECS")]
    pub webhook_give_up: Option<f64>,

    /// Seconds one webhook delivery may take, connecting included [default: 10].
    #[arg(long, value_name = "SECS")]
    pub webhook_timeout: Option<f64>,

    /// Seconds a webhook subscription waits for its receiver's confirmation [default: 600].
    #[arg(long, value_name = "SECS")]
    pub webhook_confirm_timeout: Option<f64>,

    /// Notifications queued for one webhook subscription; one more ends the subscription
    /// [default: 10000].
    #[arg(long, value_name = "N")]
    pub webhook_max_queue: Option<usize>,

    /// The most webhook subscriptions, confirmed or not [default: 10000].
    #[arg(long, value_name = "N")]
    pub webhook_max_subscriptions: Option<usize>,

    /// Origins whose browser pages may call POST / and GET /openrpc.json, comma-separated
    /// (`https://app.example.com,http://localhost:5173`), or `*` for any [default: none, same
    /// origin only].
    #[arg(long, value_name = "LIST")]
    pub cors_origins: Option<String>,

    /// Serve the live dashboard at GET /dashboard: to loopback callers only, or, with --admin-token,
    /// to callers with the token [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dashboard: Option<bool>,

    /// Log format on stderr; filter with RUST_LOG (such as RUST_LOG=rpcnode=debug) [default: text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Load every plugin once (compiling into the cache), print what loaded and
    /// what failed, and exit: status 0 when all loaded, 1 otherwise. Checks a
    /// plugins folder and warms the compile cache before a deployment.
    #[arg(long = "check")]
    #[serde(skip)]
    pub check_plugins: bool,

    /// Plugin configuration by file stem, used when NAME.toml is absent.
    #[arg(skip)]
    #[serde(default)]
    pub plugin: BTreeMap<String, PluginFile>,

    /// Upstream nodes to follow over webhooks, by name (config file only).
    #[arg(skip)]
    #[serde(default)]
    pub upstream: BTreeMap<String, UpstreamFile>,
}

/// Overlay `$over`'s settings that are set on `$base`'s.
macro_rules! overlay {
    ($base:ident, $over:ident, $($field:ident),* $(,)?) => {
        $( if $over.$field.is_some() { $base.$field = $over.$field; } )*
    };
}

impl Settings {
    /// The settings in effect: the `--config` file, then these flags, then
    /// the `RPCNODE_*` variables of `environment`.
    pub fn resolve(
        self,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        self.check().context("in the command-line flags")?;
        let mut settings = match &self.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        settings.check_plugins = self.check_plugins;
        settings.apply(self);
        settings.apply(Self::from_environment(environment)?);
        Ok(settings)
    }

    fn apply(&mut self, over: Self) {
        overlay!(
            self,
            over,
            config,
            plugins,
            host,
            port,
            name,
            request_timeout,
            max_batch_size,
            max_message_bytes,
            max_connections,
            header_read_timeout,
            shutdown_grace,
            ws_queue_capacity,
            ws_max_in_flight,
            ws_ping_interval,
            ws_idle_timeout,
            welcome,
            rate_limit,
            rate_limit_burst,
            admin_token,
            admin_port,
            tls_cert,
            tls_key,
            tls_client_ca,
            watch,
            cache,
            cache_dir,
            cache_max_mib,
            plugin_memory_mib,
            plugin_memory_budget_mib,
            plugin_max_instances,
            recycle_after_calls,
            max_background_calls,
            data_dir,
            in_memory,
            history_size,
            history_ttl,
            session_ttl,
            max_sessions,
            redis_url,
            cluster_name,
            presence_ttl,
            webhook_allow,
            webhook_retry,
            webhook_give_up,
            webhook_timeout,
            webhook_confirm_timeout,
            webhook_max_queue,
            webhook_max_subscriptions,
            cors_origins,
            dashboard,
            log_format,
        );
        self.plugin.extend(over.plugin);
        self.upstream.extend(over.upstream);
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Settings from the text of a config file, checked.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let settings: Self = toml::from_str(text)?;
        settings.check()?;
        Ok(settings)
    }

    /// Settings from `RPCNODE_*` variables: each value is read as TOML
    /// (`30`, `true`, `1.5`) or else as a string.
    fn from_environment(
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut table = toml::Table::new();
        let mut names = Vec::new();
        for (name, raw) in environment {
            let Some(key) = name.strip_prefix("RPCNODE_") else {
                continue;
            };
            let value = toml::from_str::<toml::Table>(&format!("value = {raw}"))
                .ok()
                .and_then(|mut parsed| parsed.remove("value"))
                .unwrap_or(toml::Value::String(raw));
            table.insert(key.to_lowercase(), value);
            names.push(name);
        }
        let context = || format!("in environment variables {}", names.join(", "));
        let settings = Self::deserialize(table).with_context(context)?;
        settings.check().with_context(context)?;
        Ok(settings)
    }

    /// Range checks, naming the setting.
    fn check(&self) -> anyhow::Result<()> {
        let seconds = [
            ("request_timeout", self.request_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("shutdown_grace", self.shutdown_grace),
            ("ws_ping_interval", self.ws_ping_interval),
            ("ws_idle_timeout", self.ws_idle_timeout),
            ("history_ttl", self.history_ttl),
            ("session_ttl", self.session_ttl),
            ("presence_ttl", self.presence_ttl),
            ("webhook_timeout", self.webhook_timeout),
            ("webhook_confirm_timeout", self.webhook_confirm_timeout),
        ];
        for (key, value) in seconds {
            if let Some(value) = value
                && !(value.is_finite() && value > 0.0 && value <= 86_400.0)
            {
                bail!("{key} must be a number of seconds above 0 and at most 86400, not {value}");
            }
        }
        let counts = [
            ("max_batch_size", self.max_batch_size),
            ("max_connections", self.max_connections),
            ("ws_queue_capacity", self.ws_queue_capacity),
            ("ws_max_in_flight", self.ws_max_in_flight),
            ("plugin_max_instances", self.plugin_max_instances),
            ("max_background_calls", self.max_background_calls),
            ("max_sessions", self.max_sessions),
            ("webhook_max_queue", self.webhook_max_queue),
            ("webhook_max_subscriptions", self.webhook_max_subscriptions),
        ];
        for (key, value) in counts {
            if value == Some(0) {
                bail!("{key} must be at least 1");
            }
        }
        if let Some(bytes) = self.max_message_bytes
            && bytes < 1024
        {
            bail!("max_message_bytes must be at least 1024, not {bytes}");
        }
        if let Some(mib) = self.plugin_memory_mib
            && !(1..=4096).contains(&mib)
        {
            bail!("plugin_memory_mib must be 1 to 4096, not {mib}");
        }
        if let Some(rate) = self.rate_limit
            && !(rate.is_finite() && rate > 0.0)
        {
            bail!("rate_limit must be a number of requests per second above 0, not {rate}");
        }
        if let Some(size) = self.history_size
            && size > MAX_HISTORY_SIZE
        {
            bail!("history_size must be at most {MAX_HISTORY_SIZE}, not {size}");
        }
        if let Some(mib) = self.plugin_memory_budget_mib
            && !(1..=1 << 30).contains(&mib)
        {
            bail!("plugin_memory_budget_mib must be 1 to 1073741824, not {mib}");
        }
        if let Some(mib) = self.cache_max_mib
            && !(1..=1 << 20).contains(&mib)
        {
            bail!("cache_max_mib must be 1 to 1048576, not {mib}");
        }
        if let Some(ttl) = self.presence_ttl
            && ttl < 2.0
        {
            bail!(
                "presence_ttl must be at least 2 seconds (nodes refresh every second), not {ttl}"
            );
        }
        if let Some(url) = &self.redis_url {
            crate::store::redis::check_url(url)?;
        }
        if let Some(list) = &self.webhook_allow {
            AllowList::parse(list).map_err(|error| anyhow::anyhow!("webhook_allow: {error}"))?;
        }
        if let Some(list) = &self.cors_origins {
            CorsOrigins::parse(list).map_err(anyhow::Error::msg)?;
        }
        if let Some(schedule) = &self.webhook_retry {
            retry_schedule(schedule)?;
        }
        if let Some(give_up) = self.webhook_give_up
            && !(give_up.is_finite() && give_up > 0.0 && give_up <= MAX_WEBHOOK_SECONDS)
        {
            bail!(
                "webhook_give_up must be a number of seconds above 0 and at most {MAX_WEBHOOK_SECONDS}, not {give_up}"
            );
        }
        if let Some(name) = &self.cluster_name
            && !valid_cluster_name(name)
        {
            bail!(
                "cluster_name must be 1 to {MAX_CLUSTER_NAME_LEN} letters, digits, '-', '_' or '.', not {name:?}"
            );
        }
        if self.rate_limit_burst == Some(0) {
            bail!("rate_limit_burst must be at least 1");
        }
        if let Some(token) = &self.admin_token
            && (token.len() < MIN_ADMIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            bail!(
                "admin_token must be at least {MIN_ADMIN_TOKEN_LEN} visible ASCII characters (no spaces), such as the output of `openssl rand -hex 16`"
            );
        }
        Ok(())
    }

    /// The server configuration these settings describe.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let Some(plugins) = self.plugins else {
            bail!(
                "no plugins folder: pass --plugins DIR (or set plugins in the config file or RPCNODE_PLUGINS)"
            );
        };
        if !plugins.is_dir() {
            bail!(
                "plugins folder {} does not exist; create it or pass --plugins DIR pointing at your .wasm files",
                plugins.display()
            );
        }
        let mut config = Config::new(plugins);
        let seconds = Duration::from_secs_f64;
        macro_rules! set {
            ($($field:ident => $target:expr),* $(,)?) => {
                $( if let Some(value) = self.$field { $target = value; } )*
            };
        }
        set! {
            host => config.host,
            port => config.port,
            name => config.node_name,
            max_batch_size => config.max_batch_size,
            max_message_bytes => config.max_message_bytes,
            max_connections => config.max_connections,
            ws_queue_capacity => config.ws_queue_capacity,
            ws_max_in_flight => config.ws_max_in_flight,
            welcome => config.welcome,
            dashboard => config.dashboard,
            plugin_max_instances => config.plugins.max_instances,
            recycle_after_calls => config.plugins.recycle_after_calls,
            max_background_calls => config.max_background_calls,
            history_size => config.history.size,
            max_sessions => config.max_sessions,
        }
        let durations = [
            (self.request_timeout, &mut config.request_timeout),
            (self.header_read_timeout, &mut config.header_read_timeout),
            (self.shutdown_grace, &mut config.shutdown_grace),
            (self.ws_ping_interval, &mut config.ws_ping_interval),
            (self.ws_idle_timeout, &mut config.ws_idle_timeout),
            (self.history_ttl, &mut config.history.ttl),
            (self.session_ttl, &mut config.session_ttl),
        ];
        for (value, target) in durations {
            if let Some(value) = value {
                *target = seconds(value);
            }
        }
        if let Some(mib) = self.cache_max_mib {
            config.cache_max_bytes = mib << 20;
        }
        if let Some(mib) = self.plugin_memory_budget_mib {
            config.plugins.memory_budget = Arc::new(MemoryBudget::new(mib << 20));
        }
        if let Some(mib) = self.plugin_memory_mib {
            config.plugins.memory_limit = (mib as usize) << 20;
        }
        config.watch = self.watch.unwrap_or(true);
        config.cluster = match (self.redis_url, self.cluster_name) {
            (Some(redis_url), name) => {
                let mut cluster = Cluster::new(redis_url);
                if let Some(name) = name {
                    cluster.name = name;
                }
                if let Some(ttl) = self.presence_ttl {
                    cluster.presence_ttl = seconds(ttl);
                }
                Some(cluster)
            }
            (None, Some(name)) => {
                bail!("cluster_name ({name}) is set without redis_url: a cluster needs --redis URL")
            }
            (None, None) => None,
        };
        config.data_dir = match (self.in_memory, self.data_dir) {
            (Some(true), Some(dir)) => bail!(
                "in_memory and data_dir ({}) are both set: keep data in memory or in a folder, not both",
                dir.display()
            ),
            (_, Some(dir)) if config.cluster.is_some() => bail!(
                "data_dir ({}) is set with redis_url: a cluster node keeps its data in Redis, not in a folder",
                dir.display()
            ),
            (Some(true), None) => None,
            (_, None) if config.cluster.is_some() => None,
            (_, Some(dir)) => Some(dir),
            (_, None) => Some(default_data_dir().context(
                "no data folder: set HOME or XDG_DATA_HOME, pass --data-dir DIR, or pass --in-memory",
            )?),
        };
        config.cache_dir = match self.cache {
            Some(false) => None,
            _ => self.cache_dir.or_else(default_cache_dir),
        };
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: self.tls_client_ca,
            }),
            (None, None) if self.tls_client_ca.is_none() => None,
            _ => bail!(
                "TLS needs both --tls-cert and --tls-key (and --tls-client-ca only with them)"
            ),
        };
        config.rate_limit = self.rate_limit.map(|per_second| RateLimit {
            per_second,
            burst: self
                .rate_limit_burst
                .unwrap_or_else(|| per_second.ceil().max(1.0) as u32),
        });
        let webhooks = &mut config.webhooks;
        if let Some(list) = &self.webhook_allow {
            webhooks.allow = AllowList::parse(list).map_err(anyhow::Error::msg)?;
        }
        if let Some(schedule) = &self.webhook_retry {
            webhooks.retry_schedule = retry_schedule(schedule)?;
            webhooks.give_up_after = webhooks.retry_schedule.iter().sum();
        }
        let webhook_durations = [
            (self.webhook_give_up, &mut webhooks.give_up_after),
            (self.webhook_timeout, &mut webhooks.timeout),
            (self.webhook_confirm_timeout, &mut webhooks.confirm_within),
        ];
        for (value, target) in webhook_durations {
            if let Some(value) = value {
                *target = seconds(value);
            }
        }
        set! {
            webhook_max_queue => webhooks.max_queue,
            webhook_max_subscriptions => webhooks.max_subscriptions,
        }
        if let Some(list) = &self.cors_origins {
            config.cors_origins = CorsOrigins::parse(list).map_err(anyhow::Error::msg)?;
        }
        config.admin_token = self.admin_token;
        config.admin_port = self.admin_port;
        config.plugin_sections = self.plugin;
        config.upstreams = self
            .upstream
            .into_iter()
            .map(|(name, file)| Upstream::from_file(&name, file))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

/// Read a retry schedule: comma-separated seconds, each above 0 and at most
/// [`MAX_WEBHOOK_SECONDS`].
fn retry_schedule(text: &str) -> anyhow::Result<Vec<Duration>> {
    let waits = text
        .split(',')
        .map(|wait| match wait.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= MAX_WEBHOOK_SECONDS => {
                Ok(Duration::from_secs_f64(secs))
            }
            _ => bail!(
                "webhook_retry must be comma-separated seconds, each above 0 and at most \
                 {MAX_WEBHOOK_SECONDS}, such as 5,300,1800; not {text:?}"
            ),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(waits)
}

/// A cluster name is a safe prefix for Redis keys.
fn valid_cluster_name(name: &str) -> bool {
    (1..=MAX_CLUSTER_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `$XDG_DATA_HOME/rpcnode`, else `$HOME/.local/share/rpcnode`.
fn default_data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(base.join("rpcnode"))
}

/// `$XDG_CACHE_HOME/rpcnode`, else `$HOME/.cache/rpcnode`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("rpcnode"))
}
