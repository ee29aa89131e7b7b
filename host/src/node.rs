//! The node: the state every transport shares (settings, plugins, clients,
//! plugin state).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::clients::Clients;
use crate::config::Config;
use crate::plugin::{MethodTable, PluginEngine, Registry, Shared, load_dir};
use crate::state::StateStore;

/// A running node's shared state.
pub struct Node {
    /// The settings it was started with.
    pub config: Config,
    /// The plugins' methods and hooks.
    pub registry: Registry,
    /// Connected WebSocket clients.
    pub clients: Arc<Clients>,
    /// Durable plugin state.
    pub state: StateStore,
    pending: AtomicUsize,
}

impl Node {
    /// Create the engine and load every plugin in `config.plugins_dir`.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Self>> {
        let engine = PluginEngine::new()?;
        let clients = Arc::new(Clients::new(config.ws_queue_capacity));
        let state = StateStore::default();
        let shared = Shared {
            clients: &clients,
            state: &state,
        };
        let (plugins, failures) =
            load_dir(&engine, &config.plugins_dir, shared, &config.plugins).await?;
        Ok(Arc::new(Self {
            config,
            registry: Registry::new(MethodTable::build(plugins, failures)),
            clients,
            state,
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
}

/// Decrements the pending-request count when dropped.
pub(crate) struct PendingGuard<'a>(&'a AtomicUsize);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
