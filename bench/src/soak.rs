//! `soak`: a server kept under a mix of everything for a set time, to show
//! that nothing fails that should not and that memory, file descriptors and
//! threads stay flat. The load is paced (a soak is not a stress test):
//!
//! - HTTP and WebSocket clients calling the calculator's `add`;
//! - a publisher broadcasting through the data_service plugin to session
//!   clients, each of which drops its connection now and then and resumes:
//!   every client must see every broadcast exactly once, in order;
//! - the calculator's file replaced every few seconds (two versions that
//!   both answer `add`);
//! - the `fuzzer` fixture made to trap every second: each such call must be
//!   answered with an error, and the plugin must keep serving.
//!
//! The server's resident memory, open descriptors and threads are sampled
//! from /proc throughout; a table and a chart report them. Any failure
//! fails the run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::built;
use crate::chart::{Charts, Series};
use crate::fanout::{connect, publisher, resident_kib};
use crate::peers::Peer;

/// How much of each kind of load runs at once.
const HTTP_CLIENTS: usize = 8;
const WEBSOCKET_CLIENTS: usize = 8;
/// Each request client sends one request per period (about 500 requests/s
/// per transport).
const REQUEST_PERIOD: Duration = Duration::from_millis(16);
const LISTENERS: usize = 200;
const BROADCAST_PERIOD: Duration = Duration::from_millis(50);
/// A listener stays connected this long on average before it drops.
const MEAN_CONNECTED: Duration = Duration::from_secs(20);
const SWAP_PERIOD: Duration = Duration::from_secs(5);
const FAULT_PERIOD: Duration = Duration::from_secs(1);
/// How long listeners may take to catch up once publishing stops.
const DRAIN: Duration = Duration::from_secs(10);

const ADD: &str = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#;
/// The fuzzer fixture's program `13`: trap.
const TRAP: &str = r#"{"jsonrpc":"2.0","method":"act","params":["13"],"id":1}"#;

/// What went right and wrong, counted as it happens.
#[derive(Default)]
struct Counts {
    http_ok: AtomicU64,
    http_failed: AtomicU64,
    websocket_ok: AtomicU64,
    websocket_failed: AtomicU64,
    published: AtomicU64,
    publish_failed: AtomicU64,
    received: AtomicU64,
    missed: AtomicU64,
    duplicated: AtomicU64,
    resumed: AtomicU64,
    not_recovered: AtomicU64,
    listener_failed: AtomicU64,
    swaps: AtomicU64,
    faults_answered: AtomicU64,
    faults_failed: AtomicU64,
}

impl Counts {
    fn failures(&self) -> u64 {
        [
            &self.http_failed,
            &self.websocket_failed,
            &self.publish_failed,
            &self.missed,
            &self.duplicated,
            &self.not_recovered,
            &self.listener_failed,
            &self.faults_failed,
        ]
        .iter()
        .map(|count| count.load(Relaxed))
        .sum()
    }
}

/// One reading of the server process.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    resident_mib: f64,
    descriptors: u64,
    threads: u64,
}

impl Sample {
    fn of(pid: u32, at: Duration) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let threads = status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .context("no Threads in /proc/PID/status")?
            .trim()
            .parse()?;
        Ok(Self {
            at,
            resident_mib: resident_kib(pid)? as f64 / 1024.0,
            descriptors: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64,
            threads,
        })
    }
}

/// Run the soak for `duration`, sampling every `sample_every`.
pub async fn run(
    duration: Duration,
    sample_every: Duration,
    charts: &Charts,
) -> anyhow::Result<()> {
    let calculators = [
        std::fs::read(built("plugin-fixtures", "calculator_v2.wasm")?)?,
        std::fs::read(built("plugins", "calculator.wasm")?)?,
    ];
    let server = Peer::rpcnode_durable(&[
        (built("plugins", "calculator.wasm")?, "calculator.wasm"),
        (built("plugins", "data_service.wasm")?, "data_service.wasm"),
        (built("plugin-fixtures", "fuzzer.wasm")?, "fuzzer.wasm"),
    ])
    .await?;
    let address = server.address.to_string();
    let calculator: PathBuf = server
        .plugins_folder()
        .context("an rpcnode peer has a plugins folder")?
        .join("calculator.wasm");
    let counts = Arc::new(Counts::default());
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let mut samples = vec![Sample::of(server.pid, Duration::ZERO)?];

    let mut load = tokio::task::JoinSet::new();
    let adds: Tally = |counts| (&counts.http_ok, &counts.http_failed);
    for _ in 0..HTTP_CLIENTS {
        let tally = (Arc::clone(&counts), adds);
        load.spawn(post_every(
            address.clone(),
            (ADD, r#""sum":3"#),
            REQUEST_PERIOD,
            tally,
            stopped.clone(),
        ));
    }
    for _ in 0..WEBSOCKET_CLIENTS {
        let (address, counts, stopped) = (address.clone(), Arc::clone(&counts), stopped.clone());
        load.spawn(websocket_client(address, counts, stopped));
    }
    let (published_count, published) = watch::channel(None);
    let mut listeners = tokio::task::JoinSet::new();
    for seed in 0..LISTENERS {
        let listener = Listener {
            address: address.clone(),
            counts: Arc::clone(&counts),
            published: published.clone(),
            random: seed as u64 * 0x9e37_79b9_7f4a_7c15 + 1,
        };
        listeners.spawn(listener.run());
    }
    {
        let (address, counts, stopped) = (address.clone(), Arc::clone(&counts), stopped.clone());
        load.spawn(publish(address, counts, stopped, published_count));
    }
    {
        let (counts, stopped) = (Arc::clone(&counts), stopped.clone());
        load.spawn(swap(calculator, calculators, counts, stopped));
    }
    // Each trap must be answered with an internal error.
    let traps: Tally = |counts| (&counts.faults_answered, &counts.faults_failed);
    let trap = (TRAP, r#""error":{"code":-32603"#);
    load.spawn(post_every(
        address.clone(),
        trap,
        FAULT_PERIOD,
        (Arc::clone(&counts), traps),
        stopped,
    ));

    let mut tick = tokio::time::interval(sample_every);
    tick.tick().await;
    while started.elapsed() < duration {
        tick.tick().await;
        samples.push(Sample::of(server.pid, started.elapsed())?);
    }
    stop.send_replace(true);
    while let Some(finished) = load.join_next().await {
        finished??;
    }
    while let Some(finished) = listeners.join_next().await {
        finished?;
    }
    samples.push(Sample::of(server.pid, started.elapsed())?);

    report(duration, &counts, &samples);
    let minutes = |sample: &Sample| sample.at.as_secs_f64() / 60.0;
    charts.lines(
        "soak.png",
        &format!("Soak: the server over {}", human(duration)),
        "minutes",
        &[
            Series::new(
                "resident memory (MiB)",
                samples.iter().map(|s| (minutes(s), s.resident_mib)),
            ),
            Series::new(
                "open file descriptors",
                samples.iter().map(|s| (minutes(s), s.descriptors as f64)),
            ),
            Series::new(
                "threads",
                samples.iter().map(|s| (minutes(s), s.threads as f64)),
            ),
        ],
    )?;
    let failures = counts.failures();
    anyhow::ensure!(
        failures == 0,
        "the soak saw {failures} failures (see the table)"
    );
    Ok(())
}

/// The counters of one kind of request: done and failed.
type Tally = fn(&Counts) -> (&AtomicU64, &AtomicU64);

/// POSTs `body` every `period` until stopped: an answer holding `expected`
/// counts as done, anything else as failed.
async fn post_every(
    address: String,
    (body, expected): (&'static str, &'static str),
    period: Duration,
    (counts, tally): (Arc<Counts>, Tally),
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut client = publisher::Client::new(&address).await?;
    let mut tick = tokio::time::interval(period);
    let (done, failed) = tally(&counts);
    while !*stopped.borrow() {
        tick.tick().await;
        match client.post(body.to_owned()).await {
            Ok(answer) if contains(&answer, expected.as_bytes()) => done.fetch_add(1, Relaxed),
            Ok(_) => failed.fetch_add(1, Relaxed),
            Err(_) => {
                failed.fetch_add(1, Relaxed);
                client = publisher::Client::new(&address).await?;
                0
            }
        };
    }
    Ok(())
}

/// Calls `add` over WebSocket until stopped, one request at a time; the
/// broadcasts it also receives are skipped.
async fn websocket_client(
    address: String,
    counts: Arc<Counts>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut socket = connect(&address, false).await?;
    let mut tick = tokio::time::interval(REQUEST_PERIOD);
    while !*stopped.borrow() {
        tick.tick().await;
        socket.send(Message::text(ADD)).await?;
        let answered = loop {
            match socket.next().await {
                // The broadcasts reach these clients too.
                Some(Ok(Message::Text(text))) if text.contains(r#""method":"dataUpdated""#) => {}
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Text(answer))) => break answer.contains(r#""sum":3"#),
                _ => break false,
            }
        };
        if answered {
            counts.websocket_ok.fetch_add(1, Relaxed);
        } else {
            counts.websocket_failed.fetch_add(1, Relaxed);
            socket = connect(&address, false).await?;
        }
    }
    socket.close(None).await?;
    Ok(())
}

/// Broadcasts `dataUpdated` with values 0, 1, 2… until stopped, then says
/// how many it published.
async fn publish(
    address: String,
    counts: Arc<Counts>,
    stopped: watch::Receiver<bool>,
    published_count: watch::Sender<Option<u64>>,
) -> anyhow::Result<()> {
    let mut client = publisher::Client::new(&address).await?;
    let mut tick = tokio::time::interval(BROADCAST_PERIOD);
    let mut next = 0u64;
    while !*stopped.borrow() {
        tick.tick().await;
        // A few keys, so the plugin's state stays small however long this runs.
        match client.update((next % 64) as usize, next).await {
            Ok(()) => {
                counts.published.fetch_add(1, Relaxed);
                next += 1;
            }
            Err(_) => {
                counts.publish_failed.fetch_add(1, Relaxed);
                client = publisher::Client::new(&address).await?;
            }
        }
    }
    published_count.send_replace(Some(next));
    Ok(())
}

/// Replaces the calculator with its other version every [`SWAP_PERIOD`].
async fn swap(
    file: PathBuf,
    versions: [Vec<u8>; 2],
    counts: Arc<Counts>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(SWAP_PERIOD);
    tick.tick().await;
    while !*stopped.borrow() {
        tick.tick().await;
        let swaps = counts.swaps.fetch_add(1, Relaxed);
        std::fs::write(&file, &versions[swaps as usize % 2])?;
    }
    Ok(())
}

/// A session client receiving the broadcasts, dropping its connection now
/// and then and resuming from the last position it received.
struct Listener {
    address: String,
    counts: Arc<Counts>,
    /// How many values were published, once publishing has stopped.
    published: watch::Receiver<Option<u64>>,
    random: u64,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a listener knows of what it received.
#[derive(Default)]
struct Received {
    /// The value it expects next; `None` before the first.
    expected: Option<u64>,
    /// The position of the last notification, to resume from.
    position: Option<Value>,
    /// When it gives up waiting for the last values.
    drain_until: Option<Instant>,
}

impl Listener {
    async fn run(mut self) {
        if let Err(error) = self.listen().await {
            eprintln!("soak: a listener failed: {error:#}");
            self.counts.listener_failed.fetch_add(1, Relaxed);
        }
    }

    async fn listen(&mut self) -> anyhow::Result<()> {
        let (mut socket, opened) = session(&self.address, json!({})).await?;
        let field = |name: &str| {
            opened[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {name} in {opened}"))
        };
        let (client_id, token) = (field("client_id")?, field("token")?);
        let mut received = Received::default();
        while !self.read(&mut socket, &mut received).await? {
            drop(socket);
            let away = self.next_duration(Duration::from_millis(600));
            tokio::time::sleep(away).await;
            let params = json!({ "client_id": client_id, "token": token,
                                 "positions": received.position.iter().collect::<Vec<_>>() });
            let (resumed, answer) = session(&self.address, params).await?;
            let recovered = answer["streams"]
                .as_array()
                .is_some_and(|streams| streams.iter().all(|s| s["recovered"] == true));
            let counter = if recovered {
                &self.counts.resumed
            } else {
                &self.counts.not_recovered
            };
            counter.fetch_add(1, Relaxed);
            socket = resumed;
        }
        socket.close(None).await.map_err(Into::into)
    }

    /// Read notifications until it is time to drop the connection (`false`)
    /// or publishing has stopped and every value arrived (`true`).
    async fn read(&mut self, socket: &mut Socket, received: &mut Received) -> anyhow::Result<bool> {
        let drop_at = Instant::now() + self.next_duration(MEAN_CONNECTED * 2);
        loop {
            let published = *self.published.borrow();
            if let Some(count) = published {
                if received.expected.unwrap_or(0) >= count {
                    return Ok(true);
                }
                received
                    .drain_until
                    .get_or_insert_with(|| Instant::now() + DRAIN);
            }
            let drain_until = received.drain_until.unwrap_or(drop_at);
            tokio::select! {
                () = tokio::time::sleep_until(drop_at.into()), if published.is_none() => return Ok(false),
                _ = self.published.changed(), if published.is_none() => {}
                () = tokio::time::sleep_until(drain_until.into()), if published.is_some() => {
                    let missing = published.unwrap_or(0).saturating_sub(received.expected.unwrap_or(0));
                    self.counts.missed.fetch_add(missing, Relaxed);
                    return Ok(true);
                }
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        other => anyhow::bail!("the connection ended: {other:?}"),
                    };
                    let notification: Value = serde_json::from_str(&text)?;
                    let value = notification["params"]["value"]
                        .as_u64()
                        .with_context(|| format!("not a dataUpdated notification: {text}"))?;
                    self.check(&mut received.expected, value);
                    received.position = Some(notification["position"].clone());
                }
            }
        }
    }

    /// Count `value` against the one expected next.
    fn check(&self, expected: &mut Option<u64>, value: u64) {
        let next = expected.unwrap_or(value);
        if value < next {
            self.counts.duplicated.fetch_add(1, Relaxed);
            return;
        }
        self.counts.missed.fetch_add(value - next, Relaxed);
        self.counts.received.fetch_add(1, Relaxed);
        *expected = Some(value + 1);
    }

    /// A random duration up to `max` (xorshift64: each listener has its own
    /// repeatable sequence).
    fn next_duration(&mut self, max: Duration) -> Duration {
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        max.mul_f64((self.random % 10_000) as f64 / 10_000.0)
    }
}

/// Connect to `/ws?session` and send `rpc.session` with `params`: the
/// connection and the answer's result.
async fn session(address: &str, params: Value) -> anyhow::Result<(Socket, Value)> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/ws?session")).await?;
    let request = json!({ "jsonrpc": "2.0", "method": "rpc.session", "params": params, "id": 0 });
    socket.send(Message::text(request.to_string())).await?;
    let Some(Ok(Message::Text(answer))) = socket.next().await else {
        anyhow::bail!("no answer to rpc.session");
    };
    let mut answer: Value = serde_json::from_str(&answer)?;
    anyhow::ensure!(
        answer.get("result").is_some(),
        "rpc.session failed: {answer}"
    );
    Ok((socket, answer["result"].take()))
}

/// The table: what was done, what failed, and the server's resources.
fn report(duration: Duration, counts: &Counts, samples: &[Sample]) {
    let count = |counter: &AtomicU64| counter.load(Relaxed);
    println!("| Soak, {} | Done | Failed |", human(duration));
    println!("|---|---|---|");
    let rows = [
        (
            "HTTP `add` (8 clients, ~500/s)",
            count(&counts.http_ok),
            count(&counts.http_failed),
        ),
        (
            "WebSocket `add` (8 clients, ~500/s)",
            count(&counts.websocket_ok),
            count(&counts.websocket_failed),
        ),
        (
            "Broadcasts published (~20/s)",
            count(&counts.published),
            count(&counts.publish_failed),
        ),
        (
            "Broadcasts received by 200 session clients (failed: missed + duplicated)",
            count(&counts.received),
            count(&counts.missed) + count(&counts.duplicated),
        ),
        (
            "Disconnects and resumes (failed: not recovered, or a client that failed)",
            count(&counts.resumed),
            count(&counts.not_recovered) + count(&counts.listener_failed),
        ),
        ("Calculator replaced (every 5 s)", count(&counts.swaps), 0),
        (
            "Plugin traps answered with an error (every 1 s)",
            count(&counts.faults_answered),
            count(&counts.faults_failed),
        ),
    ];
    for (what, done, failed) in rows {
        println!("| {what} | {done} | {failed} |");
    }
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return;
    };
    let peak = |value: fn(&Sample) -> f64| samples.iter().map(value).fold(0.0, f64::max);
    println!();
    println!(
        "| Server process ({} samples) | Start | End | Peak |",
        samples.len()
    );
    println!("|---|---|---|---|");
    println!(
        "| Resident memory | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        first.resident_mib,
        last.resident_mib,
        peak(|s| s.resident_mib)
    );
    println!(
        "| Open file descriptors | {} | {} | {} |",
        first.descriptors,
        last.descriptors,
        peak(|s| s.descriptors as f64)
    );
    println!(
        "| Threads | {} | {} | {} |",
        first.threads,
        last.threads,
        peak(|s| s.threads as f64)
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn human(duration: Duration) -> String {
    match duration.as_secs() {
        seconds if seconds >= 3600 && seconds % 3600 == 0 => format!("{} h", seconds / 3600),
        seconds if seconds >= 60 && seconds % 60 == 0 => format!("{} min", seconds / 60),
        _ => format!("{:.0} s", duration.as_secs_f64()),
    }
}
