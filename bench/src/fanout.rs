//! Scenario 4: broadcast fan-out. The server runs in a child process, so its
//! resident memory per connected client and its CPU time can be read from
//! /proc. Clients connect over WebSocket; a publisher calls `updateData` over
//! HTTP, the data_service plugin broadcasts `dataUpdated` carrying the publish
//! time, and every client records how long each notification took to arrive.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::chart::Bar;
use crate::cpu::CpuTime;
use crate::peers::Peer;

/// Read and write buffer of each client, the size rpcnode uses. With
/// tungstenite's default (128 KiB, zeroed on every read) 10,000 clients would
/// hold 1.25 GiB and the clients rather than the server would set the pace.
pub const SOCKET_BUFFER: usize = 4 << 10;

/// A WebSocket client of `address`'s `/ws` with [`SOCKET_BUFFER`]s.
async fn connect(address: &str) -> anyhow::Result<WebSocketStream<MaybeTlsStream<TcpStream>>> {
    let config = WebSocketConfig::default()
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER);
    let url = format!("ws://{address}/ws");
    let (socket, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    Ok(socket)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64)
}

fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?)
}

/// One fan-out run: how many clients, how many broadcasts, and how fast
/// they are published.
#[derive(Clone, Copy)]
pub struct Load {
    pub clients: usize,
    pub broadcasts: usize,
    /// Broadcasts per second; `None` publishes each as soon as the previous
    /// call returns, which measures the most deliveries per second (later
    /// broadcasts then queue behind earlier ones).
    pub per_second: Option<u32>,
}

impl Load {
    /// Each broadcast published as soon as the previous call returns.
    pub const fn back_to_back(clients: usize, broadcasts: usize) -> Self {
        Self {
            clients,
            broadcasts,
            per_second: None,
        }
    }

    /// `per_second` broadcasts per second.
    pub const fn paced(clients: usize, broadcasts: usize, per_second: u32) -> Self {
        Self {
            clients,
            broadcasts,
            per_second: Some(per_second),
        }
    }

    /// The table row's name.
    fn describe(&self) -> String {
        let pace = match self.per_second {
            Some(rate) => format!(
                "{rate}/s ({} deliveries/s offered)",
                crate::chart::thousands(f64::from(rate) * self.clients as f64)
            ),
            None => "back to back".to_owned(),
        };
        format!(
            "{} clients × {} broadcasts, {pace}",
            self.clients, self.broadcasts
        )
    }

    /// The chart bar's name.
    fn label(&self) -> String {
        match self.per_second {
            Some(rate) => format!("{} clients, {rate} broadcasts/s", self.clients),
            None => format!("{} clients, back to back", self.clients),
        }
    }
}

/// The publish time in a `dataUpdated` notification: the `value`, which is
/// the last number in it (`{…"params":{"id":…,"value":…}}`).
fn published_at(notification: &str) -> Option<u64> {
    let (_, rest) = notification.rsplit_once(':')?;
    rest.trim_end_matches('}').parse().ok()
}

/// Fan out `load`; prints one row and returns it as a chart bar.
pub async fn run(plugin: &Path, load: Load) -> anyhow::Result<Bar> {
    let Load {
        clients,
        broadcasts,
        per_second,
    } = load;
    let server = Peer::rpcnode(&[(plugin.to_owned(), "data_service.wasm")]).await?;
    let (address, pid) = (server.address.to_string(), server.pid);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = resident_kib(pid)?;

    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let received = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let connecting = Arc::new(Semaphore::new(256));
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        let _permit = connecting.acquire().await?;
        sockets.push(connect(&address).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_client_kib = resident_kib(pid)?.saturating_sub(before) as f64 / clients as f64;

    for mut socket in sockets {
        let (latency, received) = (Arc::clone(&latency), Arc::clone(&received));
        tokio::spawn(async move {
            // Recorded into the shared histogram at the end: 10,000 histograms
            // written as messages arrive would cost the clients more than the
            // server spends on a delivery.
            let mut waited = Vec::with_capacity(broadcasts);
            while waited.len() < broadcasts {
                match socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(sent) = published_at(&text) {
                            waited.push(now_micros().saturating_sub(sent));
                        }
                    }
                    // The server's keepalive pings (answered by tungstenite).
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
            {
                let mut latency = latency.lock().expect("histogram lock");
                for micros in waited {
                    let _ = latency.record(micros);
                }
            }
            received.wait().await;
        });
    }

    let mut publisher = publisher::Client::new(&address).await?;
    // The harness's process is the publisher and the clients.
    let (server_from, clients_from) = (CpuTime::of(pid)?, CpuTime::of(std::process::id())?);
    let started = Instant::now();
    for id in 0..broadcasts {
        if let Some(rate) = per_second {
            let due = Duration::from_secs_f64(id as f64 / f64::from(rate));
            tokio::time::sleep_until((started + due).into()).await;
        }
        publisher.update(id, now_micros()).await?;
    }
    tokio::time::timeout(Duration::from_secs(120), received.wait())
        .await
        .context("deliveries did not finish")?;
    let elapsed = started.elapsed();
    let deliveries = (clients * broadcasts) as u64;
    let per_delivery = |pid: u32, from: CpuTime| -> anyhow::Result<f64> {
        Ok(CpuTime::of(pid)?.since(from).micros_per(deliveries)[0])
    };
    let server_cpu = per_delivery(pid, server_from)?;
    let clients_cpu = per_delivery(std::process::id(), clients_from)?;
    let latency = latency.lock().expect("histogram lock");
    anyhow::ensure!(
        latency.len() == deliveries,
        "{} of {deliveries} deliveries arrived",
        latency.len(),
    );
    let rate = deliveries as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (
        latency.value_at_quantile(0.5) as f64 / 1e3,
        latency.value_at_quantile(0.99) as f64 / 1e3,
    );
    println!(
        "| {} | {rate:.0} deliveries/s | p50 {p50:.1} ms, p99 {p99:.1} ms | {server_cpu:.1} µs / {clients_cpu:.1} µs | {per_client_kib:.1} KiB |",
        load.describe()
    );
    Ok(Bar {
        label: load.label(),
        value: rate,
        note: format!("p99 {p99:.1} ms, {per_client_kib:.1} KiB per client"),
    })
}

/// The publisher: one HTTP/1.1 keep-alive connection.
mod publisher {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    pub struct Client {
        sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    }

    impl Client {
        pub async fn new(address: &str) -> anyhow::Result<Self> {
            let stream = tokio::net::TcpStream::connect(address).await?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            Ok(Self { sender })
        }

        /// `updateData {id, value}`, which the plugin broadcasts.
        pub async fn update(&mut self, id: usize, value: u64) -> anyhow::Result<()> {
            let body = format!(
                r#"{{"jsonrpc":"2.0","method":"updateData","params":{{"id":{id},"value":{value}}},"id":1}}"#
            );
            let request = hyper::Request::post("/")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))?;
            self.sender.ready().await?;
            let answer = self
                .sender
                .send_request(request)
                .await?
                .into_body()
                .collect()
                .await?
                .to_bytes();
            anyhow::ensure!(
                answer.windows(8).any(|w| w == b"\"result\""),
                "updateData failed: {answer:?}"
            );
            Ok(())
        }
    }
}
