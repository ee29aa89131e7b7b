//! The data of one plugin store: its sandboxed WASI context, its limits,
//! what its host functions act on, and the call in progress. A fresh store
//! is confined before any of the plugin's code runs.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::call_context::CallContext;
use super::limiter::StoreLimiter;
use super::plugin_file::Sandbox;
use super::spawner::Spawner;
use super::stdio::LogStream;
use crate::push::Broker;
use crate::store::StateStore;

/// What a plugin's host functions act on.
pub struct PluginEnv {
    /// The plugin's name: its log tag and its state namespace.
    pub name: String,
    /// Notifications, subscriptions and client metadata.
    pub broker: Arc<Broker>,
    /// Plugin state; `None` while the plugin is being described at load
    /// time (it then reads nothing and keeps nothing).
    pub state: Option<Arc<dyn StateStore>>,
    /// The plugin's `[config]` table.
    pub config: Arc<Map<String, Value>>,
    /// How the plugin schedules background work; `None` while it is being
    /// described.
    pub spawner: Option<Spawner>,
}

/// The data of one plugin store.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimiter,
    pub(crate) env: Arc<PluginEnv>,
    /// Who made the call in progress, for `call-context` and
    /// `request-headers`.
    pub(crate) call: CallContext,
    /// When the call in progress must end.
    pub(crate) deadline: Instant,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A fresh store confined by `sandbox`: no filesystem, network or environment
/// beyond its grants, stdout and stderr into the host's log, its memory
/// drawn from the host-wide budget within its cap, and the deadline enforced
/// at every epoch tick.
pub fn new_store(
    engine: &Engine,
    env: Arc<PluginEnv>,
    sandbox: &Sandbox,
    deadline: Instant,
) -> wasmtime::Result<Store<StoreState>> {
    let mut wasi = WasiCtx::builder();
    wasi.stdout(LogStream::new(&env.name, "stdout"))
        .stderr(LogStream::new(&env.name, "stderr"));
    for (name, value) in &sandbox.grants.env {
        wasi.env(name, value);
    }
    for dir in &sandbox.grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)?;
    }
    if sandbox.grants.network {
        wasi.inherit_network().allow_ip_name_lookup(true);
    }
    let state = StoreState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limits: StoreLimiter::new(Arc::clone(&sandbox.memory_budget), sandbox.memory_limit),
        env,
        call: CallContext::background(),
        deadline,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|store| {
        if Instant::now() >= store.data().deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok(store)
}
