//! Scenario 10: webhooks. A receiver in this process answers every
//! confirmation and counts deliveries. Each measurement first fills the
//! queues while the receiver answers `503`, then lets it accept and times
//! the drain: signed deliveries per second to one subscriber and to 100;
//! 100,000 queued notifications through a `kill -9` and a restart (every
//! one delivered, counted by `webhook-id`); the server's memory per
//! subscription, and the store's disk per queued notification.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::fanout::{publisher, resident_kib};
use crate::peers::Peer;
use crate::redis_server::RedisServer;

/// What the receiver has seen.
#[derive(Default)]
struct Seen {
    /// Deliveries accepted.
    delivered: AtomicUsize,
    /// Distinct `webhook-id`s accepted (one per notification, whatever the
    /// number of subscribers).
    ids: Mutex<HashSet<String>>,
    /// Answer `503` to deliveries while true.
    paused: AtomicBool,
}

/// Confirm every subscription; count deliveries unless paused.
async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if request["method"] == "rpc.webhook.confirm" {
        let echo = json!({"jsonrpc": "2.0", "result": request["params"]["challenge"], "id": request["id"]});
        return echo.to_string().into_response();
    }
    if seen.paused.load(Ordering::Acquire) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let id = headers
        .get("webhook-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    seen.ids.lock().await.insert(id.to_owned());
    seen.delivered.fetch_add(1, Ordering::AcqRel);
    StatusCode::NO_CONTENT.into_response()
}

/// A receiver on every loopback address (so that each subscriber can have a
/// host of its own: 127.0.0.2, 127.0.0.3, ...); its port.
async fn start_receiver(seen: Arc<Seen>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new().fallback(receive).with_state(seen);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

/// The callback of subscriber `n`: a loopback host of its own.
fn callback(n: usize, port: u16) -> String {
    let host = n + 2;
    format!("http://127.0.{}.{}:{port}/{n}", host / 250, host % 250 + 1)
}

/// Subscribe `count` callbacks to broadcasts and wait until each is active.
async fn subscribe(server: &Peer, port: u16, count: usize) -> anyhow::Result<()> {
    let address = server.address.to_string();
    let mut client = publisher::Client::new(&address).await?;
    for n in 0..count {
        let request = json!({"jsonrpc": "2.0", "method": "rpc.webhook.subscribe", "id": 1,
            "params": {"callback": callback(n, port), "broadcast": true}});
        let answer = client.post(request.to_string()).await?;
        anyhow::ensure!(
            answer.windows(9).any(|w| w == b"\"pending\""),
            "subscribing failed: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    wait_active(server, count).await
}

/// Wait until `node` sees `count` active subscriptions.
async fn wait_active(node: &Peer, count: usize) -> anyhow::Result<()> {
    let address = node.address.to_string();
    wait_for(|| async { Ok(health(&address).await?["webhooks"]["active"] == count) }).await
}

async fn health(address: &str) -> anyhow::Result<Value> {
    let mut client = publisher::Client::new(address).await?;
    let answer = client.get("/health").await?;
    Ok(serde_json::from_slice(&answer)?)
}

/// Poll `done` every 10 ms, for at most 10 minutes.
async fn wait_for<F: Future<Output = anyhow::Result<bool>>>(
    mut done: impl FnMut() -> F,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done().await? {
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Broadcast `count` notifications from 8 publishers at once.
async fn publish(address: &str, count: usize) -> anyhow::Result<()> {
    let publishers = (0..8).map(|publisher| async move {
        let mut client = publisher::Client::new(address).await?;
        for id in (publisher..count).step_by(8) {
            client.update(id, 0).await?;
        }
        anyhow::Ok(())
    });
    for outcome in futures_util::future::join_all(publishers).await {
        outcome?;
    }
    Ok(())
}

/// Let the receiver accept, and time until it has `expected` deliveries.
async fn drain(seen: &Seen, expected: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    seen.paused.store(false, Ordering::Release);
    wait_for(|| async { Ok(seen.delivered.load(Ordering::Acquire) >= expected) }).await?;
    Ok(started.elapsed())
}

/// Subscribe `subscribers` callbacks on the first of `nodes`, queue
/// `notifications` broadcasts (split between the nodes) while the receiver
/// refuses them, then time the drain.
async fn queue_and_drain(
    nodes: &[Peer],
    subscribers: usize,
    notifications: usize,
) -> anyhow::Result<Duration> {
    let seen = Arc::new(Seen::default());
    let port = start_receiver(Arc::clone(&seen)).await?;
    subscribe(&nodes[0], port, subscribers).await?;
    for node in &nodes[1..] {
        wait_active(node, subscribers).await?;
    }
    seen.paused.store(true, Ordering::Release);
    let share = notifications / nodes.len();
    let publishers = nodes
        .iter()
        .map(|node| async move { publish(&node.address.to_string(), share).await });
    for outcome in futures_util::future::join_all(publishers).await {
        outcome?;
    }
    drain(&seen, subscribers * share * nodes.len()).await
}

/// Print the rows: `(one, to_hundred, restart, subscriptions)` sizes.
pub async fn run(
    plugin: &Path,
    (one, to_hundred, restart, subscriptions): (usize, usize, usize, usize),
) -> anyhow::Result<()> {
    println!("| Measurement | Result |");
    println!("|---|---|");
    let plugins = crate::folder(&[(plugin.to_owned(), "data_service.wasm")])?;

    // One subscriber, then 100: on one node, then on a two-node cluster
    // publishing from both nodes.
    for (subscribers, notifications) in [(1, one), (100, to_hundred)] {
        let data = tempfile::tempdir_in(crate::target())?;
        let server = Peer::rpcnode_webhooks(plugins.path(), data.path()).await?;
        let took = queue_and_drain(&[server], subscribers, notifications).await?;
        let deliveries = subscribers * notifications;
        println!(
            "| Signed deliveries to {subscribers} subscriber(s) on loopback, {deliveries} queued then drained | {:.0}/s ({:.2} s) |",
            deliveries as f64 / took.as_secs_f64(),
            took.as_secs_f64()
        );
    }
    for (subscribers, notifications) in [(1, one), (100, to_hundred)] {
        let redis = RedisServer::start()?;
        let mut nodes = Vec::new();
        for _ in 0..2 {
            nodes.push(Peer::rpcnode_webhooks_cluster(plugins.path(), &redis.url()).await?);
        }
        let took = queue_and_drain(&nodes, subscribers, notifications).await?;
        let deliveries = subscribers * notifications;
        println!(
            "| Two-node cluster on Redis: signed deliveries to {subscribers} subscriber(s), {deliveries} queued from both nodes then drained | {:.0}/s ({:.2} s) |",
            deliveries as f64 / took.as_secs_f64(),
            took.as_secs_f64()
        );
    }

    // A full queue through kill -9 and a restart.
    let data = tempfile::tempdir_in(crate::target())?;
    let seen = Arc::new(Seen::default());
    let port = start_receiver(Arc::clone(&seen)).await?;
    let server = Peer::rpcnode_webhooks(plugins.path(), data.path()).await?;
    subscribe(&server, port, 1).await?;
    seen.paused.store(true, Ordering::Release);
    let address = server.address.to_string();
    let queued_at = Instant::now();
    publish(&address, restart).await?;
    let queueing = queued_at.elapsed();
    let disk = folder_bytes(data.path())?;
    server.kill_9().await?;
    let restarted_at = Instant::now();
    let server = Peer::rpcnode_webhooks(plugins.path(), data.path()).await?;
    let startup = restarted_at.elapsed();
    let took = drain(&seen, restart).await?;
    let delivered = seen.ids.lock().await.len();
    println!(
        "| {restart} notifications queued ({:.0}/s from 8 publishers), node killed with kill -9 and restarted (start {:.2} s): delivered afterwards | {delivered} distinct ids in {:.2} s ({:.0}/s) |",
        restart as f64 / queueing.as_secs_f64(),
        startup.as_secs_f64(),
        took.as_secs_f64(),
        delivered as f64 / took.as_secs_f64()
    );
    println!(
        "| Store size per queued notification (data folder with the queue and stream history, / {restart}) | {:.0} bytes |",
        disk as f64 / restart as f64
    );
    drop(server);

    // Memory per subscription.
    let data = tempfile::tempdir_in(crate::target())?;
    let seen = Arc::new(Seen::default());
    let port = start_receiver(seen).await?;
    let server = Peer::rpcnode_webhooks(plugins.path(), data.path()).await?;
    let before = resident_kib(server.pid)?;
    subscribe(&server, port, subscriptions).await?;
    let after = resident_kib(server.pid)?;
    println!(
        "| Server memory per confirmed subscription ({subscriptions} subscriptions) | {:.1} KiB |",
        after.saturating_sub(before) as f64 / subscriptions as f64
    );
    Ok(())
}

/// The bytes of the files in `dir`.
fn folder_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).context("reading the data folder")? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}
