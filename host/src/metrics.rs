//! `GET /metrics`: counters, gauges and histograms in the Prometheus text
//! format, kept with atomics so that counting costs nanoseconds.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::node::Node;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
    5.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Everything the node counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per method: requests answered with a result, and with an error.
    requests: Mutex<HashMap<String, [u64; 2]>>,
    /// Time from a request's arrival to its answer.
    pub request_duration: Histogram,
    /// Connections refused at `max_connections`.
    pub connections_refused: Counter,
    /// Requests refused by the rate limiter.
    pub rate_limited: Counter,
    /// Plugin versions that started serving.
    pub plugin_loads: Counter,
    /// Rescans of the plugins folder after the first load.
    pub plugin_reloads: Counter,
    /// Plugin files that failed to load.
    pub plugin_load_failures: Counter,
}

impl Metrics {
    /// Count one request to `method` (a registered or built-in name, or
    /// `unknown`, so that clients cannot grow the label set).
    pub fn request(&self, method: &str, ok: bool, elapsed: Duration) {
        let mut requests = self.requests.lock().expect("metrics lock");
        let counts = match requests.get_mut(method) {
            Some(counts) => counts,
            None => requests.entry(method.to_owned()).or_default(),
        };
        counts[usize::from(!ok)] += 1;
        drop(requests);
        self.request_duration.observe(elapsed);
    }
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, text: &str, value: u64) {
    help(out, name, "counter", text);
    let _ = writeln!(out, "{name} {value}");
}

/// Render every metric of `node`.
pub fn render(node: &Node) -> String {
    let metrics = &node.metrics;
    let mut out = String::with_capacity(4096);

    help(
        &mut out,
        "rpcnode_requests_total",
        "counter",
        "JSON-RPC requests by method and outcome.",
    );
    let mut requests: Vec<(String, [u64; 2])> = metrics
        .requests
        .lock()
        .expect("metrics lock")
        .iter()
        .map(|(method, counts)| (method.clone(), *counts))
        .collect();
    requests.sort();
    for (method, [ok, error]) in requests {
        let _ = writeln!(
            out,
            "rpcnode_requests_total{{method=\"{method}\",outcome=\"ok\"}} {ok}"
        );
        let _ = writeln!(
            out,
            "rpcnode_requests_total{{method=\"{method}\",outcome=\"error\"}} {error}"
        );
    }
    help(
        &mut out,
        "rpcnode_request_duration_seconds",
        "histogram",
        "Time to answer a request.",
    );
    metrics
        .request_duration
        .render(&mut out, "rpcnode_request_duration_seconds");

    help(
        &mut out,
        "rpcnode_pending_requests",
        "gauge",
        "Requests being processed.",
    );
    let _ = writeln!(out, "rpcnode_pending_requests {}", node.pending_requests());
    help(
        &mut out,
        "rpcnode_websocket_clients",
        "gauge",
        "Connected WebSocket clients.",
    );
    let _ = writeln!(out, "rpcnode_websocket_clients {}", node.clients.count());

    let clients = &node.clients;
    counter(
        &mut out,
        "rpcnode_notifications_queued_total",
        "Notifications queued for a client.",
        clients.queued.get(),
    );
    counter(
        &mut out,
        "rpcnode_notifications_sent_total",
        "Notifications written to a client's socket.",
        clients.sent.get(),
    );
    counter(
        &mut out,
        "rpcnode_notifications_dropped_total",
        "Notifications dropped with an evicted client.",
        clients.dropped.get(),
    );
    counter(
        &mut out,
        "rpcnode_slow_client_disconnects_total",
        "Clients disconnected for a full outbound queue.",
        clients.evictions(),
    );
    counter(
        &mut out,
        "rpcnode_connections_refused_total",
        "Connections refused at max_connections.",
        metrics.connections_refused.get(),
    );
    counter(
        &mut out,
        "rpcnode_rate_limited_total",
        "Requests refused by the rate limiter.",
        metrics.rate_limited.get(),
    );
    counter(
        &mut out,
        "rpcnode_plugin_loads_total",
        "Plugin versions that started serving.",
        metrics.plugin_loads.get(),
    );
    counter(
        &mut out,
        "rpcnode_plugin_reloads_total",
        "Rescans of the plugins folder after the first.",
        metrics.plugin_reloads.get(),
    );
    counter(
        &mut out,
        "rpcnode_plugin_load_failures_total",
        "Plugin files that failed to load.",
        metrics.plugin_load_failures.get(),
    );
    counter(
        &mut out,
        "rpcnode_compile_cache_hits_total",
        "Plugins loaded from the compile cache.",
        node.cache.hits(),
    );
    counter(
        &mut out,
        "rpcnode_compile_cache_misses_total",
        "Plugins compiled.",
        node.cache.misses(),
    );

    let table = node.registry.current();
    help(
        &mut out,
        "rpcnode_plugins_failed",
        "gauge",
        "Plugin files currently failing to load.",
    );
    let _ = writeln!(out, "rpcnode_plugins_failed {}", table.failures.len());
    help(
        &mut out,
        "rpcnode_plugin_calls_total",
        "counter",
        "Calls into a plugin (handlers and hooks).",
    );
    for plugin in &table.plugins {
        let _ = writeln!(
            out,
            "rpcnode_plugin_calls_total{{plugin=\"{}\"}} {}",
            plugin.name(),
            plugin.calls.count()
        );
    }
    help(
        &mut out,
        "rpcnode_plugin_call_seconds_total",
        "counter",
        "Time spent in calls into a plugin.",
    );
    for plugin in &table.plugins {
        let seconds = plugin.calls.nanos() as f64 / 1e9;
        let _ = writeln!(
            out,
            "rpcnode_plugin_call_seconds_total{{plugin=\"{}\"}} {seconds}",
            plugin.name()
        );
    }
    out
}

/// Handle `GET /metrics`.
pub async fn report(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&node),
    )
}
