//! The node: the state every transport shares (settings, plugins, clients,
//! plugin state, background work), and its start, reload and stop.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clients::Clients;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::plugin::{CompileCache, Library, PluginEngine, Refresh, Registry, Shared};
use crate::ratelimit::RateLimiter;
use crate::scheduler::Scheduler;
use crate::state::StateStore;

/// A running node's shared state.
pub struct Node {
    /// The settings it was started with.
    pub config: Config,
    /// The plugins' methods and hooks.
    pub registry: Arc<Registry>,
    /// Connected WebSocket clients.
    pub clients: Arc<Clients>,
    /// Durable plugin state.
    pub state: Arc<StateStore>,
    /// Spawned calls and timers.
    pub scheduler: Arc<Scheduler>,
    /// Compiled components on disk.
    pub cache: Arc<CompileCache>,
    /// Cancelled when the node starts shutting down.
    pub stopping: CancellationToken,
    /// Open WebSocket sessions, so a stop can wait for each to answer its
    /// requests in flight and say goodbye.
    pub websockets: TaskTracker,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// Built-in rate limiting, when configured.
    pub rate_limiter: Option<RateLimiter>,
    library: tokio::sync::Mutex<Library>,
}

impl Node {
    /// Create the engine, load every plugin in `config.plugins_dir`, start
    /// their timers and, if configured, watch the folder for changes.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Self>> {
        let registry = Arc::new(Registry::default());
        let stopping = CancellationToken::new();
        let scheduler = Arc::new(Scheduler::new(
            Arc::downgrade(&registry),
            stopping.child_token(),
            config.request_timeout,
            config.max_background_calls,
        ));
        let clients = Arc::new(Clients::new(config.ws_queue_capacity));
        let state = Arc::new(StateStore::default());
        let cache = Arc::new(CompileCache::new(config.cache_dir.clone()));
        let metrics = Arc::new(Metrics::default());
        let shared = Shared {
            engine: PluginEngine::new()?,
            cache: Arc::clone(&cache),
            settings: config.plugins.clone(),
            sections: config.plugin_sections.clone(),
            clients: Arc::clone(&clients),
            state: Arc::clone(&state),
            scheduler: Arc::clone(&scheduler),
            metrics: Arc::clone(&metrics),
        };
        let library = Library::new(config.plugins_dir.clone(), shared);
        let rate_limit = config.rate_limit;
        let node = Arc::new(Self {
            config,
            registry,
            clients,
            state,
            scheduler,
            cache,
            stopping,
            websockets: TaskTracker::new(),
            metrics,
            rate_limiter: rate_limit.map(RateLimiter::new),
            library: tokio::sync::Mutex::new(library),
        });
        node.reload().await?;
        if node.config.watch {
            crate::watcher::watch(&node)?;
        }
        Ok(node)
    }

    /// Rescan the plugins folder and serve what it holds now. Calls in flight
    /// finish on the versions they started with.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let mut library = self.library.lock().await;
        let first = library.is_empty();
        let Refresh {
            table,
            added,
            removed,
            failed_loads,
        } = library.refresh().await?;
        if !first {
            self.metrics.plugin_reloads.inc();
        }
        self.metrics.plugin_loads.add(added.len() as u64);
        self.metrics.plugin_load_failures.add(failed_loads);
        self.registry.replace(table);
        for plugin in &removed {
            plugin.unloaded.cancel();
        }
        for plugin in &added {
            self.scheduler.start_timers(plugin);
        }
        Ok(())
    }

    /// Close WebSocket connections, stop watching, cancel background work and
    /// wait for the background calls already running.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        self.scheduler.shutdown().await;
    }
}
