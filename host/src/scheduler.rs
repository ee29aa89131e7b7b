//! Background work: calls a plugin schedules for later (`spawn`) and the
//! periodic timers its manifest declares. Both run the plugin's handler with
//! no client attached, are bounded, and stop when the host stops.
//!
//! A timer ticks at the multiples of its interval on the wall clock, so the
//! nodes of a cluster tick together, and a tick runs on the one node that
//! claims it ([`Leases`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::plugin::{CallContext, CallError, LoadedPlugin, Registry, Schedule, Spawner};
use crate::store::Leases;

/// The longest delay `spawn` accepts.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs background calls on the host's runtime.
pub struct Scheduler {
    runtime: Handle,
    tasks: TaskTracker,
    stopping: CancellationToken,
    registry: Weak<Registry>,
    leases: Arc<dyn Leases>,
    call_timeout: Duration,
    max_pending: usize,
}

impl Scheduler {
    /// A scheduler on the current runtime, running the timer ticks it
    /// claims from `leases`. Each call may run for `call_timeout`; each
    /// plugin may have `max_pending` spawned calls waiting or running.
    pub fn new(
        registry: Weak<Registry>,
        leases: Arc<dyn Leases>,
        stopping: CancellationToken,
        call_timeout: Duration,
        max_pending: usize,
    ) -> Self {
        Self {
            runtime: Handle::current(),
            tasks: TaskTracker::new(),
            stopping,
            registry,
            leases,
            call_timeout,
            max_pending,
        }
    }

    /// Start the timers `plugin` declares; they run until the host stops or
    /// the plugin is unloaded.
    pub fn start_timers(&self, plugin: &Arc<LoadedPlugin>) {
        for timer in &plugin.manifest.timers {
            let (plugin, method) = (Arc::clone(plugin), timer.method.clone());
            let every = Duration::from_millis(timer.every_ms.into());
            let name = format!("timer:{}:{method}", plugin.name());
            let (stopping, timeout) = (self.stopping.clone(), self.call_timeout);
            let leases = Arc::clone(&self.leases);
            self.tasks.spawn_on(
                async move {
                    loop {
                        let (slot, wait) = next_slot(every);
                        tokio::select! {
                            () = stopping.cancelled() => return,
                            () = plugin.unloaded.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                        match leases.claim(&name, slot, every * 2).await {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(error) => {
                                tracing::warn!(timer = name, "tick skipped: {error}");
                                continue;
                            }
                        }
                        tokio::select! {
                            () = stopping.cancelled() => return,
                            () = call(&plugin, &method, None, timeout) => {}
                        }
                    }
                },
                &self.runtime,
            );
        }
    }

    /// Cancel pending calls and timers and wait for the ones running to end.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Schedule for Scheduler {
    fn spawn(
        &self,
        spawner: &Spawner,
        method: String,
        params: Option<String>,
        delay: Duration,
    ) -> Result<(), String> {
        if !spawner.methods.contains(&method) {
            return Err(format!(
                "plugin {} has no method {method:?}",
                spawner.plugin
            ));
        }
        if delay > MAX_DELAY {
            return Err(format!(
                "delay exceeds the limit of {} ms",
                MAX_DELAY.as_millis()
            ));
        }
        if spawner.pending.fetch_add(1, Ordering::Relaxed) >= self.max_pending {
            spawner.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(format!(
                "plugin {} already has {} background calls pending",
                spawner.plugin, self.max_pending
            ));
        }
        let pending = PendingCall(Arc::clone(&spawner.pending));
        let (registry, stopping, timeout) = (
            self.registry.clone(),
            self.stopping.clone(),
            self.call_timeout,
        );
        let name = spawner.plugin.clone();
        self.tasks.spawn_on(
            async move {
                let _pending = pending;
                tokio::select! {
                    () = stopping.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                let plugin = registry
                    .upgrade()
                    .and_then(|registry| registry.current().plugin(&name));
                let Some(plugin) = plugin else {
                    tracing::warn!(
                        plugin = name,
                        method,
                        "spawned call dropped: the plugin is no longer loaded"
                    );
                    return;
                };
                tokio::select! {
                    () = stopping.cancelled() => {}
                    () = call(&plugin, &method, params.as_ref(), timeout) => {}
                }
            },
            &self.runtime,
        );
        Ok(())
    }
}

/// The next multiple of `every` on the wall clock (as a slot number) and
/// how long until it.
fn next_slot(every: Duration) -> (u64, Duration) {
    let every_ms = every.as_millis().max(1) as u64;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let slot = now_ms / every_ms + 1;
    (slot, Duration::from_millis(slot * every_ms - now_ms))
}

/// Frees a pending slot when a spawned call ends, however it ends.
struct PendingCall(Arc<AtomicUsize>);

impl Drop for PendingCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One background call; its outcome only goes to the log.
async fn call(plugin: &LoadedPlugin, method: &str, params: Option<&String>, timeout: Duration) {
    let name = plugin.name();
    let deadline = Instant::now() + timeout;
    match plugin
        .handle(
            method,
            params.map(String::as_str),
            CallContext::background(),
            deadline,
        )
        .await
    {
        Ok(Ok(_)) => tracing::debug!(plugin = name, method, "background call done"),
        Ok(Err(error)) => tracing::warn!(
            plugin = name,
            method,
            code = error.code,
            "background call failed: {}",
            error.message
        ),
        Err(CallError::Timeout) => tracing::warn!(
            plugin = name,
            method,
            "background call ran past {timeout:?}"
        ),
        Err(CallError::Fault(error)) => {
            tracing::error!(plugin = name, method, "background call faulted: {error:?}")
        }
    }
}
