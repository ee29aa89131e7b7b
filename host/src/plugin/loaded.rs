//! A loaded plugin: its manifest, and typed calls into its exports through
//! the instance pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::component::{ComponentType, Lift, TypedFunc};

use super::bindings::rpcnode::plugin::types::{Hook, Manifest, RpcError};
use super::call_context::CallContext;
use super::exports::{
    AfterArgs, BatchArgs, BatchCall, BatchOutcomes, BorrowingExports, RequestArgs,
};
use super::instance::{CallError, InstancePool};
use super::params::ParamsSchema;
use crate::metrics::Counter;

/// Lease an instance for a call made on behalf of `$context`, make the call
/// (`$call`, with the instance bound to `$instance`), and settle the lease with
/// the outcome (a fault or timeout discards the instance).
///
/// The epoch interrupt stops guest code at the deadline; the timer here stops
/// a call waiting in a host function (a guest's `sleep`, an event loop
/// waiting on a timer). A call that finishes in its first poll never
/// registers the timer. `$requests` is how many requests the call answers
/// (none for a hook).
macro_rules! call_export {
    ($plugin:expr, $deadline:expr, $context:expr, $requests:expr, |$instance:ident| $call:expr) => {{
        let started = std::time::Instant::now();
        let mut lease = $plugin.pool.lease($deadline, $context).await?;
        let $instance = lease.instance();
        let entered = std::time::Instant::now();
        let result = tokio::time::timeout_at($deadline.into(), $call).await;
        let finished = std::time::Instant::now();
        $plugin
            .calls
            .record(finished - started, finished - entered, $requests);
        lease.settle(result.map_err(|_| CallError::Timeout)?)
    }};
}

/// A plugin that loaded and registered.
pub struct LoadedPlugin {
    /// What the plugin reported from `describe`.
    pub manifest: Manifest,
    /// The compiled params schema of each method that declares one.
    pub params: HashMap<String, Arc<ParamsSchema>>,
    /// The file it was loaded from.
    pub file: PathBuf,
    pub(crate) pool: InstancePool,
    /// Cancelled when this version of the plugin stops serving; its timers end.
    pub unloaded: CancellationToken,
    /// How many calls this version served, and for how long.
    pub calls: CallStats,
}

/// Calls into one plugin version: for `/metrics`, and how long a call takes
/// in the guest lately, to size a batch's entries.
#[derive(Debug)]
pub struct CallStats {
    count: Counter,
    nanos: Counter,
    /// A moving average of the time one request spends in the guest, in
    /// nanoseconds, each call moving it an eighth of the way to its own;
    /// [`UNKNOWN`] before the first.
    typical_nanos: AtomicU64,
}

/// No request answered yet: the typical time is not known.
const UNKNOWN: u64 = u64::MAX;

/// The most one request counts for in the typical time. Whether calls are
/// quick is what matters; a call that ran for seconds must not take a
/// hundred quick ones to forget.
const LONGEST_SAMPLE: Duration = Duration::from_millis(1);

impl Default for CallStats {
    fn default() -> Self {
        Self {
            count: Counter::default(),
            nanos: Counter::default(),
            typical_nanos: AtomicU64::new(UNKNOWN),
        }
    }
}

impl CallStats {
    /// Count a call that took `elapsed` in all, `in_guest` of it in the
    /// guest, answering `requests` requests.
    fn record(&self, elapsed: Duration, in_guest: Duration, requests: u32) {
        self.count.inc();
        self.nanos.add(elapsed.as_nanos() as u64);
        if requests == 0 {
            return;
        }
        // Two calls finishing at once may lose one's step: an estimate.
        let sample = (in_guest / requests).min(LONGEST_SAMPLE).as_nanos() as u64;
        let moved = match self.typical_nanos.load(Ordering::Relaxed) {
            UNKNOWN => sample,
            typical => typical - typical / 8 + sample / 8,
        };
        self.typical_nanos.store(moved, Ordering::Relaxed);
    }

    /// How long a request typically spends in the guest lately (counting
    /// at most a millisecond for any one); `None` before the first.
    pub fn typical(&self) -> Option<Duration> {
        match self.typical_nanos.load(Ordering::Relaxed) {
            UNKNOWN => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Calls so far.
    pub fn count(&self) -> u64 {
        self.count.get()
    }

    /// Nanoseconds spent in calls so far.
    pub fn nanos(&self) -> u64 {
        self.nanos.get()
    }
}

impl LoadedPlugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Whether the plugin implements `hook`.
    pub fn has_hook(&self, hook: Hook) -> bool {
        self.manifest.hooks.contains(&hook)
    }

    /// Call the handler of `method` (as the manifest spells it).
    pub async fn handle(
        &self,
        method: &str,
        params: Option<&str>,
        call: CallContext,
        deadline: Instant,
    ) -> Result<Result<String, RpcError>, CallError> {
        let export = |exports: &BorrowingExports| exports.handle;
        self.call_with_request(export, (method, params), 1, call, deadline)
            .await
    }

    /// Whether calls of a batch can go to the plugin in one `handle-batch`.
    pub fn handles_batches(&self) -> bool {
        self.pool.handles_batches()
    }

    /// Call `handle-batch` with `calls`, made on behalf of `call` (which has
    /// no request id: each call carries its own). Only for a plugin that
    /// [`handles_batches`](Self::handles_batches). A plugin that answers with
    /// a different number of outcomes is at fault, and its instance dropped.
    pub async fn handle_batch(
        &self,
        calls: &[BatchCall<'_>],
        call: CallContext,
        deadline: Instant,
    ) -> Result<BatchOutcomes, CallError> {
        let requests = calls.len() as u32;
        call_export!(self, deadline, call, requests, |instance| async {
            let typed: TypedFunc<BatchArgs<'_>, (BatchOutcomes,)> = instance
                .exports
                .handle_batch
                .expect("only plugins that export handle-batch get batches");
            let (outcomes,) = typed.call_async(&mut instance.store, (calls,)).await?;
            if outcomes.len() != calls.len() {
                let message = format!(
                    "handle-batch answered {} calls with {} outcomes",
                    calls.len(),
                    outcomes.len()
                );
                return Err(wasmtime::Error::msg(message));
            }
            Ok(outcomes)
        })
    }

    /// Call the `before-request` hook.
    pub async fn before_request(
        &self,
        method: &str,
        params: Option<&str>,
        call: CallContext,
        deadline: Instant,
    ) -> Result<Result<(), RpcError>, CallError> {
        let export = |exports: &BorrowingExports| exports.before_request;
        self.call_with_request(export, (method, params), 0, call, deadline)
            .await
    }

    /// Call `export`, one of the exports taking `(method, params)`, which
    /// answers `requests` requests.
    async fn call_with_request<R>(
        &self,
        export: fn(&BorrowingExports) -> TypedFunc<RequestArgs<'static>, (R,)>,
        args: RequestArgs<'_>,
        requests: u32,
        call: CallContext,
        deadline: Instant,
    ) -> Result<R, CallError>
    where
        R: ComponentType + Lift + Send + Sync + 'static,
    {
        call_export!(self, deadline, call, requests, |instance| async {
            let typed: TypedFunc<RequestArgs<'_>, (R,)> = export(&instance.exports);
            let (result,) = typed.call_async(&mut instance.store, args).await?;
            Ok(result)
        })
    }

    /// Call the `after-request` hook with the request's outcome.
    pub async fn after_request(
        &self,
        method: &str,
        params: Option<&str>,
        outcome: &Result<String, RpcError>,
        call: CallContext,
        deadline: Instant,
    ) -> Result<(), CallError> {
        call_export!(self, deadline, call, 0, |instance| async move {
            let typed: TypedFunc<AfterArgs<'_>, ()> = instance.exports.after_request;
            typed
                .call_async(&mut instance.store, (method, params, outcome))
                .await
        })
    }

    /// Call the hook that sees `event` (`on-connect` or `on-disconnect`);
    /// `call` is the client's connection, with its handshake headers.
    pub async fn connection_event(
        &self,
        event: ConnectionEvent,
        client_id: &str,
        call: CallContext,
        deadline: Instant,
    ) -> Result<(), CallError> {
        call_export!(self, deadline, call, 0, |instance| async {
            let handler = instance.guest.rpcnode_plugin_handler();
            match event {
                ConnectionEvent::Connected => {
                    handler
                        .call_on_connect(&mut instance.store, client_id)
                        .await
                }
                ConnectionEvent::Disconnected => {
                    handler
                        .call_on_disconnect(&mut instance.store, client_id)
                        .await
                }
            }
        })
    }
}

/// What happened to a WebSocket client's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The client connected: `on-connect`.
    Connected,
    /// The client went away: `on-disconnect`.
    Disconnected,
}

impl ConnectionEvent {
    /// The hook that sees this event.
    pub fn hook(self) -> Hook {
        match self {
            Self::Connected => Hook::OnConnect,
            Self::Disconnected => Hook::OnDisconnect,
        }
    }

    /// The export's WIT name, for logs.
    pub fn export(self) -> &'static str {
        match self {
            Self::Connected => "on-connect",
            Self::Disconnected => "on-disconnect",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(count: u64) -> Duration {
        Duration::from_millis(count)
    }

    #[test]
    fn the_typical_time_moves_an_eighth_of_the_way_per_call_that_answers_requests() {
        let micros = Duration::from_micros;
        let stats = CallStats::default();
        assert_eq!(stats.typical(), None);
        // The first request is taken whole.
        stats.record(ms(9), micros(800), 1);
        assert_eq!(stats.typical(), Some(micros(800)));
        // A hook answers no request: counted, but not typical.
        stats.record(ms(100), ms(80), 0);
        assert_eq!(stats.typical(), Some(micros(800)));
        // 400 µs for each of two requests.
        stats.record(ms(1), micros(800), 2);
        assert_eq!(stats.typical(), Some(micros(750)));
        // Forty seconds count as one millisecond.
        stats.record(Duration::from_secs(41), Duration::from_secs(40), 1);
        assert_eq!(stats.typical(), Some(Duration::from_nanos(781_250)));
        assert_eq!(stats.count(), 4);
        assert_eq!(stats.nanos(), 41_110_000_000);
    }
}
