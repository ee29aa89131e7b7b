//! What operators read: `GET /health`, a cheap status report for load
//! balancers, and `GET /metrics`, everything the node counts in the
//! Prometheus text format. Both name the plugins and their failures, so an
//! admin token can close them to everyone else.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use crate::metrics::{counter, gauge, help, label};
use crate::node::Node;
use crate::store::BackendStatus;
use crate::webhook::Webhooks;

/// `"ok"`, or `"degraded"` when a plugin file failed to load (listed under
/// `failed` with the reason) or, in a cluster, Redis is out of reach (the
/// reason under `redis`).
pub async fn health(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if !admitted(&node, &headers) {
        return admin_token_required();
    }
    let table = node.registry.current();
    let plugins: Vec<Value> = table
        .plugins
        .iter()
        .map(|plugin| {
            // Methods only the plugin's background work may call stay unlisted.
            let methods: Vec<&str> = plugin
                .manifest
                .methods
                .iter()
                .filter(|method| !method.internal)
                .map(|method| method.name.as_str())
                .collect();
            json!({ "name": plugin.name(), "version": plugin.manifest.version, "methods": methods })
        })
        .collect();
    let failed: Vec<Value> = table
        .failures
        .iter()
        .map(|failure| json!({ "file": failure.file.display().to_string(), "reason": failure.reason }))
        .collect();
    let backend_problem = node
        .backends
        .status
        .as_ref()
        .and_then(|status| status.problem());
    let healthy = failed.is_empty() && backend_problem.is_none();
    let mut report = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "node": node.config.node_name,
        "websocket_clients": node.clients.connected(),
        "sessions": node.sessions.count(),
        "pending_requests": node.metrics.pending_requests.get(),
        "plugins": plugins,
        "failed": failed,
    });
    if node.backends.status.is_some() {
        report["redis"] = json!(backend_problem.as_deref().unwrap_or("ok"));
    }
    report["webhooks"] = json!(node.broker.webhooks().status());
    Json(report).into_response()
}

/// Handle `GET /metrics`.
pub async fn metrics(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if !admitted(&node, &headers) {
        return admin_token_required();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&node),
    )
        .into_response()
}

/// Whether no admin token is set, or the request carries it (compared in
/// constant time).
pub fn admitted(node: &Node, headers: &HeaderMap) -> bool {
    let Some(token) = &node.config.admin_token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes())))
}

/// The answer to a request without the admin token: 401, saying what to send.
pub fn admin_token_required() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this needs the admin token: send Authorization: Bearer TOKEN\n",
    )
        .into_response()
}

/// A cluster node's counters of its Redis channel.
fn redis_counters(status: &BackendStatus) -> [(&'static str, &'static str, u64); 3] {
    [
        (
            "rpcnode_redis_disconnects_total",
            "Times the node lost its Redis channel.",
            status.disconnects.get(),
        ),
        (
            "rpcnode_redis_notifications_refetched_total",
            "Notifications the channel missed that were read back from history.",
            status.refetched.get(),
        ),
        (
            "rpcnode_redis_notifications_missed_total",
            "Notifications the channel missed that history no longer held.",
            status.missed.get(),
        ),
    ]
}

/// The webhook subscriptions by state, their queues and what happened to
/// them.
fn render_webhooks(out: &mut String, webhooks: &Webhooks) {
    let status = webhooks.status();
    help(
        out,
        "rpcnode_webhook_subscriptions",
        "gauge",
        "Webhook subscriptions by state.",
    );
    for (state, count) in [
        ("pending", status.pending),
        ("active", status.active),
        ("retrying", status.retrying),
    ] {
        let _ = writeln!(
            out,
            "rpcnode_webhook_subscriptions{{state=\"{state}\"}} {count}"
        );
    }
    gauge(
        out,
        "rpcnode_webhook_queued",
        "Notifications waiting in webhook queues.",
        status.queued,
    );
    gauge(
        out,
        "rpcnode_webhook_delivering",
        "Webhook subscriptions this node delivers (in a cluster, one node delivers each).",
        status.delivering,
    );
    let counts = &webhooks.counts;
    for (name, text, value) in [
        (
            "rpcnode_webhook_deliveries_total",
            "Webhook deliveries the receiver accepted.",
            &counts.delivered,
        ),
        (
            "rpcnode_webhook_failures_total",
            "Webhook attempts that failed (each is retried or ends its subscription).",
            &counts.failed,
        ),
        (
            "rpcnode_webhook_confirmed_total",
            "Webhook subscriptions their receiver confirmed.",
            &counts.confirmed,
        ),
        (
            "rpcnode_webhook_refused_total",
            "Webhook subscriptions their receiver refused to confirm.",
            &counts.refused,
        ),
        (
            "rpcnode_webhook_gone_total",
            "Webhook subscriptions ended by a 410 Gone answer.",
            &counts.gone,
        ),
        (
            "rpcnode_webhook_give_ups_total",
            "Webhook subscriptions dropped after failing for the give-up period.",
            &counts.given_up,
        ),
        (
            "rpcnode_webhook_expired_total",
            "Webhook subscriptions whose lease or confirmation time ran out.",
            &counts.expired,
        ),
        (
            "rpcnode_webhook_overflows_total",
            "Webhook subscriptions dropped because their queue was full.",
            &counts.overflowed,
        ),
    ] {
        counter(out, name, text, value.get());
    }
}

/// Every metric of `node`.
pub fn render(node: &Node) -> String {
    let mut out = String::with_capacity(4096);
    node.metrics.render(&mut out);
    let (clients, sessions) = (&node.clients, &node.sessions);
    gauge(
        &mut out,
        "rpcnode_websocket_clients",
        "Connected WebSocket clients.",
        clients.connected() as u64,
    );
    gauge(
        &mut out,
        "rpcnode_sessions",
        "Resumable sessions, connected or away.",
        sessions.count() as u64,
    );
    if let Some(status) = &node.backends.status {
        gauge(
            &mut out,
            "rpcnode_redis_connected",
            "1 while the node's Redis channel is connected, else 0.",
            u64::from(status.problem().is_none()),
        );
    }
    let counters = [
        (
            "rpcnode_notifications_queued_total",
            "Notifications queued for a client.",
            clients.queued.get(),
        ),
        (
            "rpcnode_notifications_sent_total",
            "Notifications written to a client's socket.",
            clients.sent.get(),
        ),
        (
            "rpcnode_notifications_dropped_total",
            "Notifications dropped with an evicted client.",
            clients.dropped.get(),
        ),
        (
            "rpcnode_slow_client_disconnects_total",
            "Clients disconnected for a full outbound queue.",
            clients.evictions(),
        ),
        (
            "rpcnode_sessions_started_total",
            "Sessions started.",
            sessions.started.get(),
        ),
        (
            "rpcnode_sessions_expired_total",
            "Sessions that ended without being resumed in time.",
            sessions.expired.get(),
        ),
        (
            "rpcnode_streams_recovered_total",
            "Streams whose missed notifications were all sent on a resume.",
            sessions.recovered.get(),
        ),
        (
            "rpcnode_streams_not_recovered_total",
            "Streams a resume could not recover (history lost or too short).",
            sessions.not_recovered.get(),
        ),
        (
            "rpcnode_compile_cache_hits_total",
            "Plugins loaded from the compile cache.",
            node.cache.hits(),
        ),
        (
            "rpcnode_compile_cache_misses_total",
            "Plugins compiled.",
            node.cache.misses(),
        ),
    ];
    let redis = node.backends.status.as_deref().map(redis_counters);
    for (name, text, value) in counters.into_iter().chain(redis.into_iter().flatten()) {
        counter(&mut out, name, text, value);
    }
    render_webhooks(&mut out, node.broker.webhooks());

    let budget = &node.config.plugins.memory_budget;
    gauge(
        &mut out,
        "rpcnode_plugin_memory_bytes",
        "Linear memory held by live plugin instances.",
        budget.used(),
    );
    gauge(
        &mut out,
        "rpcnode_plugin_memory_budget_bytes",
        "The linear memory all plugin instances may hold together.",
        budget.limit(),
    );
    let table = node.registry.current();
    gauge(
        &mut out,
        "rpcnode_plugins_failed",
        "Plugin files currently failing to load.",
        table.failures.len() as u64,
    );
    help(
        &mut out,
        "rpcnode_plugin_calls_total",
        "counter",
        "Calls into a plugin (handlers and hooks; an entry of a batch's calls counts as one).",
    );
    for plugin in &table.plugins {
        let _ = writeln!(
            out,
            "rpcnode_plugin_calls_total{{plugin=\"{}\"}} {}",
            label(plugin.name()),
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
            label(plugin.name())
        );
    }
    out
}
