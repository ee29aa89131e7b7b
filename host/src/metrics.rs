//! Counters, gauges and histograms, kept with atomics so that counting costs
//! nanoseconds, and written in the Prometheus text format (`GET /metrics`
//! puts them together, see [`crate::status`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// How many cache lines a count is spread over. Each thread adds to its own
/// shard, so worker threads counting every request at once do not take turns
/// owning one cache line; reading sums the shards.
const SHARDS: usize = 16;

/// One thread's part of a count, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard<T>(T);

/// A value kept per thread shard.
#[derive(Debug, Default)]
struct Sharded<T>([Shard<T>; SHARDS]);

impl<T> Sharded<T> {
    /// The calling thread's shard: threads are given shards in turn, the
    /// first time each counts.
    fn local(&self) -> &T {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        &self.0[INDEX.with(|index| *index)].0
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|shard| &shard.0)
    }
}

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(Sharded<AtomicU64>);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.local().fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|shard| shard.load(Ordering::Relaxed))
            .sum()
    }
}

/// A count that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(Sharded<AtomicU64>);

impl Gauge {
    /// Add one until the guard drops.
    pub fn track(&self) -> GaugeGuard<'_> {
        self.0.local().fetch_add(1, Ordering::Relaxed);
        GaugeGuard(self)
    }

    /// The current value. A shard alone can wrap below zero (a guard may
    /// drop on another thread than the one it started on); the sum cannot.
    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .map(|shard| shard.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

/// Takes one off a [`Gauge`] when dropped.
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.0.local().fetch_sub(1, Ordering::Relaxed);
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
    5.0,
];

/// One shard of a histogram: its buckets, count and sum share a cache line.
#[derive(Debug, Default)]
struct HistogramCells {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram(Sharded<HistogramCells>);

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, elapsed: Duration) {
        let cells = self.0.local();
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            cells.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        cells.count.fetch_add(1, Ordering::Relaxed);
        cells
            .sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let total = |field: fn(&HistogramCells) -> &AtomicU64| -> u64 {
            self.0
                .iter()
                .map(|cells| field(cells).load(Ordering::Relaxed))
                .sum()
        };
        let mut cumulative = 0;
        for (index, bound) in BUCKETS.iter().enumerate() {
            cumulative += self
                .0
                .iter()
                .map(|cells| cells.buckets[index].load(Ordering::Relaxed))
                .sum::<u64>();
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = total(|cells| &cells.count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = total(|cells| &cells.sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Requests to one method: answered with a result, and with an error, and
/// the time their answers took.
#[derive(Debug, Default)]
pub struct MethodCounts {
    ok: Counter,
    error: Counter,
    nanos: Counter,
}

/// One method's counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct MethodStats {
    /// The method name.
    pub method: String,
    /// Requests answered with a result.
    pub ok: u64,
    /// Requests answered with an error.
    pub error: u64,
    /// The time all its answers took, in microseconds.
    pub total_us: u64,
}

/// Everything the node counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per method name (a registered or built-in name, or `unknown`, so that
    /// clients cannot grow the label set). Routes keep their method's counts,
    /// so a request to a plugin's method does not look its name up here.
    methods: Mutex<HashMap<String, Arc<MethodCounts>>>,
    /// Time from a request's arrival to its answer.
    pub request_duration: Histogram,
    /// Requests being processed.
    pub pending_requests: Gauge,
    /// Connections refused at `max_connections`.
    pub connections_refused: Counter,
    /// Requests refused by the rate limiter.
    pub rate_limited: Counter,
    /// Notifications dropped because their params did not match the
    /// method's schema.
    pub invalid_notifications: Counter,
    /// Plugin versions that started serving.
    pub plugin_loads: Counter,
    /// Rescans of the plugins folder after the first load.
    pub plugin_reloads: Counter,
    /// Plugin files that failed to load.
    pub plugin_load_failures: Counter,
}

impl Metrics {
    /// The counts of `method`, created on first use.
    pub fn method(&self, method: &str) -> Arc<MethodCounts> {
        let mut methods = self.methods.lock();
        match methods.get(method) {
            Some(counts) => Arc::clone(counts),
            None => Arc::clone(methods.entry(method.to_owned()).or_default()),
        }
    }

    /// Count one request answered after `elapsed`, in `counts`.
    pub fn request(&self, counts: &MethodCounts, ok: bool, elapsed: Duration) {
        if ok { &counts.ok } else { &counts.error }.inc();
        counts.nanos.add(elapsed.as_nanos() as u64);
        self.request_duration.observe(elapsed);
    }

    /// Every method's counts, by name.
    pub fn methods(&self) -> Vec<MethodStats> {
        let mut stats: Vec<MethodStats> = self
            .methods
            .lock()
            .iter()
            .map(|(method, counts)| MethodStats {
                method: method.clone(),
                ok: counts.ok.get(),
                error: counts.error.get(),
                total_us: counts.nanos.get() / 1_000,
            })
            .collect();
        stats.sort();
        stats
    }
}

/// Write `# HELP` and `# TYPE` lines.
pub fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// `value` as a label value of the Prometheus text format: backslash, double
/// quote and line feed escaped, so a method named with any of them cannot
/// break the exposition.
pub fn label(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    let mut escaped = String::with_capacity(value.len() + 2);
    for char in value.chars() {
        match char {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped.into()
}

/// Write a counter with its help.
pub fn counter(out: &mut String, name: &str, text: &str, value: u64) {
    help(out, name, "counter", text);
    let _ = writeln!(out, "{name} {value}");
}

/// Write a gauge with its help.
pub fn gauge(out: &mut String, name: &str, text: &str, value: u64) {
    help(out, name, "gauge", text);
    let _ = writeln!(out, "{name} {value}");
}

impl Metrics {
    /// Write the request metrics and the node's own counters.
    pub fn render(&self, out: &mut String) {
        help(
            out,
            "rpcnode_requests_total",
            "counter",
            "JSON-RPC requests by method and outcome.",
        );
        for MethodStats {
            method, ok, error, ..
        } in self.methods()
        {
            let method = label(&method);
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
            out,
            "rpcnode_request_duration_seconds",
            "histogram",
            "Time to answer a request.",
        );
        self.request_duration
            .render(out, "rpcnode_request_duration_seconds");
        gauge(
            out,
            "rpcnode_pending_requests",
            "Requests being processed.",
            self.pending_requests.get(),
        );
        let counters = [
            (
                "rpcnode_connections_refused_total",
                "Connections refused at max_connections.",
                &self.connections_refused,
            ),
            (
                "rpcnode_rate_limited_total",
                "Requests refused by the rate limiter.",
                &self.rate_limited,
            ),
            (
                "rpcnode_invalid_notifications_total",
                "Notifications dropped because their params did not match the method's schema.",
                &self.invalid_notifications,
            ),
            (
                "rpcnode_plugin_loads_total",
                "Plugin versions that started serving.",
                &self.plugin_loads,
            ),
            (
                "rpcnode_plugin_reloads_total",
                "Rescans of the plugins folder after the first.",
                &self.plugin_reloads,
            ),
            (
                "rpcnode_plugin_load_failures_total",
                "Plugin files that failed to load.",
                &self.plugin_load_failures,
            ),
        ];
        for (name, text, value) in counters {
            counter(out, name, text, value.get());
        }
    }
}
