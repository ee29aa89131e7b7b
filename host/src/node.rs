//! The node: the state every transport shares (settings, plugins, clients,
//! plugin state, background work), and its start and stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::config::Config;
use crate::plugin::{MethodTable, PluginEngine, Registry, Shared, load_dir};
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
    pub state: StateStore,
    /// Spawned calls and timers.
    pub scheduler: Arc<Scheduler>,
    /// Cancelled when the node starts shutting down.
    pub stopping: CancellationToken,
    pending: AtomicUsize,
}

impl Node {
    /// Create the engine, load every plugin in `config.plugins_dir` and start
    /// their timers.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Self>> {
        let engine = PluginEngine::new()?;
        let registry = Arc::new(Registry::default());
        let stopping = CancellationToken::new();
        let scheduler = Arc::new(Scheduler::new(
            Arc::downgrade(&registry),
            stopping.child_token(),
            config.request_timeout,
            config.max_background_calls,
        ));
        let clients = Arc::new(Clients::new(config.ws_queue_capacity));
        let state = StateStore::default();
        let shared = Shared {
            clients: &clients,
            state: &state,
            scheduler: &scheduler,
        };
        let (plugins, failures) =
            load_dir(&engine, &config.plugins_dir, shared, &config.plugins).await?;
        let table = MethodTable::build(plugins, failures);
        for plugin in &table.plugins {
            scheduler.start_timers(plugin);
        }
        registry.replace(table);
        Ok(Arc::new(Self {
            config,
            registry,
            clients,
            state,
            scheduler,
            stopping,
            pending: AtomicUsize::new(0),
        }))
    }

    /// Requests being processed right now.
    pub fn pending_requests(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Count a request as pending until the guard drops.
    pub(crate) fn track_pending(&self) -> PendingGuard<'_> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        PendingGuard(&self.pending)
    }

    /// Close WebSocket connections, cancel background work and wait for the
    /// background calls already running.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        self.scheduler.shutdown().await;
    }
}

/// Decrements the pending-request count when dropped.
pub(crate) struct PendingGuard<'a>(&'a AtomicUsize);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
