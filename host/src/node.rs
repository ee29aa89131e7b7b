//! The node, the composition root: it opens the backends, builds the parts
//! that run on them (clients, sessions, broker, plugins, scheduler,
//! dispatcher), wires each to the ones it needs, and runs the node's own
//! tasks: hot reload and housekeeping (ending sessions whose time is up,
//! trimming history).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::plugin::{
    CompileCache, ConnectionEvent, Library, PluginEngine, Refresh, Registry, Shared,
};
use crate::push::{Broker, Clients, Sessions};
use crate::ratelimit::RateLimiter;
use crate::rpc::openrpc::About;
use crate::rpc::{Caller, Dispatcher};
use crate::scheduler::Scheduler;
use crate::store::{Backends, Deliver};
use crate::webhook::{Upstreams, Webhooks};

/// How often sessions are checked for expiry and history for age.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// A running node's parts.
pub struct Node {
    /// The settings it was started with.
    pub config: Config,
    /// The plugins' methods and hooks.
    pub registry: Arc<Registry>,
    /// Requests through hooks to handlers.
    pub dispatcher: Arc<Dispatcher>,
    /// The clients of this node.
    pub clients: Arc<Clients>,
    /// Resumable sessions.
    pub sessions: Arc<Sessions>,
    /// Notifications, subscriptions and client metadata.
    pub broker: Arc<Broker>,
    /// Where state, streams and sessions are kept.
    pub backends: Backends,
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
    /// The upstream nodes this node follows.
    pub upstreams: Upstreams,
    library: tokio::sync::Mutex<Library>,
}

impl Node {
    /// Open the backends, take back stored sessions, create the engine, load
    /// every plugin in `config.plugins_dir`, start their timers and, if
    /// configured, watch the folder for changes.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Self>> {
        let mut clients = Clients::new(config.ws_queue_capacity);
        if config.cluster.is_some() {
            clients = clients.with_node_tag();
        }
        let clients = Arc::new(clients);
        let deliver: Arc<dyn Deliver> = Arc::clone(&clients) as _;
        let backends = Backends::open(
            config.data_dir.as_deref(),
            config.cluster.as_ref(),
            config.history,
            config.session_ttl,
            deliver,
        )
        .await?;
        let sessions = Arc::new(Sessions::new(
            Arc::clone(&clients),
            Arc::clone(&backends.streams),
            Arc::clone(&backends.sessions),
            config.session_ttl,
            config.max_sessions,
        ));
        let restored = sessions.restore().await?;
        if restored > 0 {
            tracing::info!(sessions = restored, "sessions restored");
        }
        let stopping = CancellationToken::new();
        let webhooks = Arc::new(Webhooks::new(
            backends.webhooks.clone(),
            config.webhooks.clone(),
            stopping.child_token(),
        ));
        let resumed = webhooks.resume().await?;
        if resumed > 0 {
            tracing::info!(subscriptions = resumed, "webhook subscriptions resumed");
        }
        let broker = Arc::new(Broker::new(
            Arc::clone(&clients),
            Arc::clone(&backends.streams),
            Arc::clone(&sessions),
            backends.presence.clone(),
            webhooks,
        ));
        let registry = Arc::new(Registry::default());
        let scheduler = Arc::new(Scheduler::new(
            Arc::downgrade(&registry),
            Arc::clone(&backends.leases),
            stopping.child_token(),
            config.request_timeout,
            config.max_background_calls,
        ));
        let metrics = Arc::new(Metrics::default());
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let about = About {
            title: config.node_name.clone(),
            url: format!("{scheme}://{}:{}", config.host, config.port),
        };
        let upstreams = Upstreams::new(config.upstreams.clone(), &about.url);
        let dispatcher = Arc::new(Dispatcher::new(
            Arc::clone(&registry),
            Arc::clone(&broker),
            about,
            Arc::clone(&metrics),
            config.rate_limit.map(RateLimiter::new),
            config.max_batch_size,
            config.request_timeout,
        ));
        let cache = Arc::new(CompileCache::open(
            config.cache_dir.clone(),
            config.cache_max_bytes,
        )?);
        let shared = Shared {
            engine: PluginEngine::new()?,
            cache: Arc::clone(&cache),
            settings: config.plugins.clone(),
            sections: config.plugin_sections.clone(),
            broker: Arc::clone(&broker),
            state: Arc::clone(&backends.state),
            scheduler: Arc::clone(&scheduler) as _,
            metrics: Arc::clone(&metrics),
        };
        let library = Library::new(config.plugins_dir.clone(), shared);
        let node = Arc::new(Self {
            config,
            registry,
            dispatcher,
            clients,
            sessions,
            broker,
            backends,
            scheduler,
            cache,
            stopping,
            websockets: TaskTracker::new(),
            metrics,
            upstreams,
            library: tokio::sync::Mutex::new(library),
        });
        node.reload().await?;
        if node.config.watch {
            let mut changes =
                crate::watcher::watch(&node.config.plugins_dir, node.stopping.child_token())?;
            let node = Arc::downgrade(&node);
            tokio::spawn(async move {
                while changes.recv().await.is_some() {
                    let Some(node) = node.upgrade() else { return };
                    if let Err(error) = node.reload().await {
                        tracing::error!("reloading plugins failed: {error:#}");
                    }
                }
            });
        }
        tokio::spawn(housekeeping(Arc::downgrade(&node)));
        node.upstreams.start(&node.stopping);
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

/// Once a second until the node stops (or is dropped): end the sessions
/// whose time is up (their clients' `on-disconnect` hooks run then), drop
/// history past its age and, in a cluster, publish this node's clients.
async fn housekeeping(node: Weak<Node>) {
    let mut ticks = tokio::time::interval(HOUSEKEEPING);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(node) = node.upgrade() else { return };
        if node.stopping.is_cancelled() {
            return;
        }
        for client_id in node.sessions.expire().await {
            tracing::debug!(client = client_id, "session ended");
            let caller = Caller::departed(client_id.into());
            node.dispatcher
                .connection_event(&caller, ConnectionEvent::Disconnected)
                .await;
        }
        if let Err(error) = node.backends.streams.trim_expired().await {
            tracing::error!("trimming history failed: {error}");
        }
        if let Err(error) = node.broker.refresh_presence().await {
            tracing::warn!("publishing this node's clients failed: {error}");
        }
    }
}
