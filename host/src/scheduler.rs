//! Background work: calls a plugin schedules for later (`spawn`) and the
//! periodic timers its manifest declares. Both run the plugin's handler with
//! no client attached, are bounded, and stop when the host stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::plugin::{CallContext, CallError, LoadedPlugin, Registry, Schedule, Spawner};

/// The longest delay `spawn` accepts.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs background calls on the host's runtime.
pub struct Scheduler {
    runtime: Handle,
    tasks: TaskTracker,
    stopping: CancellationToken,
    registry: Weak<Registry>,
    call_timeout: Duration,
    max_pending: usize,
}

impl Scheduler {
    /// A scheduler on the current runtime. Each call may run for
    /// `call_timeout`; each plugin may have `max_pending` spawned calls
    /// waiting or running.
    pub fn new(
        registry: Weak<Registry>,
        stopping: CancellationToken,
        call_timeout: Duration,
        max_pending: usize,
    ) -> Self {
        Self {
            runtime: Handle::current(),
            tasks: TaskTracker::new(),
            stopping,
            registry,
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
            let (stopping, timeout) = (self.stopping.clone(), self.call_timeout);
            self.tasks.spawn_on(
                async move {
                    let mut ticks =
                        tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    loop {
                        tokio::select! {
                            () = stopping.cancelled() => return,
                            () = plugin.unloaded.cancelled() => return,
                            _ = ticks.tick() => {}
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
