//! The `rpcnode` command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;

use crate::config::Config;

/// Serve JSON-RPC 2.0 over HTTP (POST /) and WebSocket (GET /ws) on one port,
/// with every method handled by a WebAssembly plugin from a folder.
#[derive(Debug, Parser)]
#[command(name = "rpcnode", version)]
pub struct Cli {
    /// Folder of plugin components (*.wasm) to load; a `NAME.toml` beside
    /// `NAME.wasm` configures that plugin.
    #[arg(long, value_name = "DIR")]
    pub plugins: PathBuf,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on; 0 picks a free port (printed on startup).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,

    /// Seconds a request may run before it fails with error -32000.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = positive_seconds)]
    pub request_timeout: f64,

    /// The node name reported by /health.
    #[arg(long, default_value = "rpcnode")]
    pub name: String,

    /// The most requests accepted in one batch.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_batch_size: u32,

    /// The largest HTTP body or WebSocket message accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 10 << 20, value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_message_bytes: u32,

    /// Messages queued per WebSocket client before it is disconnected as too slow.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub ws_queue_capacity: u32,

    /// Greet each WebSocket client with a `welcome` notification carrying its client_id.
    #[arg(long)]
    pub welcome: bool,

    /// Do not watch the plugins folder (by default plugins are reloaded when it changes).
    #[arg(long)]
    pub no_watch: bool,

    /// Folder for compiled plugins [default: $XDG_CACHE_HOME/rpcnode or ~/.cache/rpcnode].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Compile plugins on every start instead of caching the compiled code.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,

    /// Replace a plugin instance with a fresh one after this many calls (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub recycle_after_calls: u64,

    /// Linear memory each plugin instance may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub plugin_memory_mib: u32,
}

impl Cli {
    /// The server configuration these flags describe.
    pub fn into_config(self) -> anyhow::Result<Config> {
        if !self.plugins.is_dir() {
            bail!(
                "plugins folder {} does not exist; create it or pass --plugins DIR pointing at your .wasm files",
                self.plugins.display()
            );
        }
        let mut config = Config::new(self.plugins);
        config.host = self.host;
        config.port = self.port;
        config.node_name = self.name;
        config.request_timeout = Duration::from_secs_f64(self.request_timeout);
        config.max_batch_size = self.max_batch_size as usize;
        config.max_message_bytes = self.max_message_bytes as usize;
        config.ws_queue_capacity = self.ws_queue_capacity as usize;
        config.welcome = self.welcome;
        config.watch = !self.no_watch;
        config.cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir.or_else(default_cache_dir)
        };
        config.plugins.recycle_after_calls = self.recycle_after_calls;
        config.plugins.memory_limit = (self.plugin_memory_mib as usize) << 20;
        Ok(config)
    }
}

/// `$XDG_CACHE_HOME/rpcnode`, else `$HOME/.cache/rpcnode`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("rpcnode"))
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400"
        )),
    }
}
