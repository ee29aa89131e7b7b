//! Scenario 4: broadcast fan-out, on one node or on a cluster of nodes
//! sharing a Redis. Each server runs in a child process, so its resident
//! memory per connected client and its CPU time can be read from /proc (for
//! a cluster, the sums over its nodes). Clients connect over WebSocket; a publisher calls `updateData` over
//! HTTP, the data_service plugin broadcasts `dataUpdated` carrying the publish
//! time, and every client records how long each notification took to arrive.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::chart::Bar;
use crate::cpu::CpuTime;
use crate::peers::Peer;
use crate::redis_server::RedisServer;

/// Read and write buffer of each client, the size rpcnode uses. With
/// tungstenite's default (128 KiB, zeroed on every read) 10,000 clients would
/// hold 1.25 GiB and the clients rather than the server would set the pace.
pub const SOCKET_BUFFER: usize = 4 << 10;

/// A WebSocket client of `address`'s `/ws` with [`SOCKET_BUFFER`]s; with
/// `session`, one that opened a resumable session.
pub async fn connect(
    address: &str,
    session: bool,
) -> anyhow::Result<WebSocketStream<MaybeTlsStream<TcpStream>>> {
    let config = WebSocketConfig::default()
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER);
    let url = if session {
        format!("ws://{address}/ws?session")
    } else {
        format!("ws://{address}/ws")
    };
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
    if session {
        let open = r#"{"jsonrpc":"2.0","method":"rpc.session","params":{},"id":0}"#;
        socket.send(Message::text(open)).await?;
        match socket.next().await {
            Some(Ok(Message::Text(answer))) if answer.contains(r#""token""#) => {}
            other => anyhow::bail!("rpc.session failed: {other:?}"),
        }
    }
    Ok(socket)
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64)
}

/// `count` clients of `address`, 64 connecting at a time.
pub async fn connect_many(
    address: &str,
    count: usize,
    session: bool,
) -> anyhow::Result<Vec<WebSocketStream<MaybeTlsStream<TcpStream>>>> {
    futures_util::stream::iter(0..count)
        .map(|_| connect(address, session))
        .buffer_unordered(64)
        .try_collect()
        .await
}

pub fn resident_kib(pid: u32) -> anyhow::Result<u64> {
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
    /// History and sessions on: the server keeps its data in the embedded
    /// store (every broadcast is stored in the broadcast stream's history
    /// before delivery) and every client has a resumable session (its
    /// notifications carry their positions). Off: memory only, no history,
    /// plain clients.
    pub durable: bool,
    /// HTTP connections publishing at once, each back to back (the
    /// broadcasts are shared among them); 1 when paced.
    pub publishers: usize,
    /// Nodes of a cluster on one Redis (history in Redis, plain clients),
    /// the clients spread evenly, the publishers on the first node; 1 is a
    /// single node.
    pub nodes: usize,
}

impl Load {
    /// Each broadcast published as soon as the previous call returns.
    pub const fn back_to_back(clients: usize, broadcasts: usize) -> Self {
        Self {
            clients,
            broadcasts,
            per_second: None,
            durable: false,
            publishers: 1,
            nodes: 1,
        }
    }

    /// The same load on a cluster of `nodes` nodes.
    pub const fn cluster(self, nodes: usize) -> Self {
        Self { nodes, ..self }
    }

    /// The same load published by `publishers` connections at once.
    pub const fn publishers(self, publishers: usize) -> Self {
        Self { publishers, ..self }
    }

    /// The same load with history and sessions on.
    pub const fn durable(self) -> Self {
        Self {
            durable: true,
            ..self
        }
    }

    /// `per_second` broadcasts per second.
    pub const fn paced(clients: usize, broadcasts: usize, per_second: u32) -> Self {
        Self {
            clients,
            broadcasts,
            per_second: Some(per_second),
            durable: false,
            publishers: 1,
            nodes: 1,
        }
    }

    /// The table row's name.
    fn describe(&self) -> String {
        let pace = match self.per_second {
            Some(rate) => format!(
                "{rate}/s ({} deliveries/s offered)",
                crate::chart::thousands(f64::from(rate) * self.clients as f64)
            ),
            None if self.publishers == 1 => "back to back".to_owned(),
            None => format!("back to back from {} publishers", self.publishers),
        };
        let nodes = match self.nodes {
            1 => String::new(),
            nodes => format!(" on {nodes} nodes with Redis"),
        };
        format!(
            "{} clients{nodes} × {} broadcasts, {pace}, {}",
            self.clients,
            self.broadcasts,
            self.keeping()
        )
    }

    /// The chart bar's name.
    fn label(&self) -> String {
        let sessions = match (self.durable, self.nodes) {
            (true, _) => ", sessions".to_owned(),
            (false, 1) => String::new(),
            (false, nodes) => format!(", {nodes} nodes"),
        };
        match self.per_second {
            Some(rate) => format!("{} clients, {rate} broadcasts/s{sessions}", self.clients),
            None => format!(
                "{} clients, {} publisher(s){sessions}",
                self.clients, self.publishers
            ),
        }
    }

    fn keeping(&self) -> &'static str {
        match (self.durable, self.nodes) {
            (true, _) => "history and sessions on",
            (false, 1) => "history and sessions off",
            (false, _) => "history in Redis, sessions off",
        }
    }
}

/// The publish time in a `dataUpdated` notification: its `value`
/// (`{…"params":{"id":…,"value":…}…}`).
fn published_at(notification: &str) -> Option<u64> {
    let (_, rest) = notification.split_once(r#""value":"#)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// Fan out `load`; prints one row and returns it as a chart bar.
pub async fn run(plugin: &Path, load: Load) -> anyhow::Result<Bar> {
    let Load {
        clients,
        broadcasts,
        per_second,
        durable,
        publishers,
        nodes,
    } = load;
    let plugins = [(plugin.to_owned(), "data_service.wasm")];
    let redis = if nodes > 1 {
        Some(RedisServer::start()?)
    } else {
        None
    };
    let mut servers = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        servers.push(match &redis {
            Some(redis) => Peer::rpcnode_cluster(&plugins, &redis.url()).await?,
            None if durable => Peer::rpcnode_durable(&plugins).await?,
            None => Peer::rpcnode(&plugins).await?,
        });
    }
    let address = servers[0].address.to_string();
    let pids: Vec<u32> = servers.iter().map(|server| server.pid).collect();
    let resident = || -> anyhow::Result<u64> { pids.iter().map(|pid| resident_kib(*pid)).sum() };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = resident()?;

    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let received = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut sockets = Vec::with_capacity(clients);
    for (index, server) in servers.iter().enumerate() {
        let share = clients / nodes + usize::from(index < clients % nodes);
        sockets.extend(connect_many(&server.address.to_string(), share, durable).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_client_kib = resident()?.saturating_sub(before) as f64 / clients as f64;

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

    let mut connections = Vec::with_capacity(publishers);
    for _ in 0..publishers {
        connections.push(publisher::Client::new(&address).await?);
    }
    // The harness's process is the publishers and the clients.
    let servers_from = pids
        .iter()
        .map(|pid| CpuTime::of(*pid))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let clients_from = CpuTime::of(std::process::id())?;
    let started = Instant::now();
    let publishing = connections
        .into_iter()
        .enumerate()
        .map(|(first, mut publisher)| async move {
            for id in (first..broadcasts).step_by(publishers) {
                if let Some(rate) = per_second {
                    let due = Duration::from_secs_f64(id as f64 / f64::from(rate));
                    tokio::time::sleep_until((started + due).into()).await;
                }
                publisher.update(id, now_micros()).await?;
            }
            anyhow::Ok(())
        });
    for published in futures_util::future::join_all(publishing).await {
        published?;
    }
    tokio::time::timeout(Duration::from_secs(120), received.wait())
        .await
        .context("deliveries did not finish")?;
    let elapsed = started.elapsed();
    let deliveries = (clients * broadcasts) as u64;
    let per_delivery = |pid: u32, from: CpuTime| -> anyhow::Result<f64> {
        Ok(CpuTime::of(pid)?.since(from).micros_per(deliveries)[0])
    };
    let mut server_cpu = 0.0;
    for (pid, from) in pids.iter().zip(servers_from) {
        server_cpu += per_delivery(*pid, from)?;
    }
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
pub mod publisher {
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
            let answer = self.post(body).await?;
            anyhow::ensure!(
                answer.windows(8).any(|w| w == b"\"result\""),
                "updateData failed: {answer:?}"
            );
            Ok(())
        }

        /// POST `body` to `/` and read the whole answer.
        pub async fn post(&mut self, body: String) -> anyhow::Result<Bytes> {
            let request = hyper::Request::post("/")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))?;
            self.send(request).await
        }

        /// GET `path` and read the whole answer.
        pub async fn get(&mut self, path: &str) -> anyhow::Result<Bytes> {
            self.send(hyper::Request::get(path).body(Full::default())?)
                .await
        }

        async fn send(
            &mut self,
            mut request: hyper::Request<Full<Bytes>>,
        ) -> anyhow::Result<Bytes> {
            let host = hyper::header::HeaderValue::from_static("localhost");
            request.headers_mut().insert(hyper::header::HOST, host);
            self.sender.ready().await?;
            Ok(self
                .sender
                .send_request(request)
                .await?
                .into_body()
                .collect()
                .await?
                .to_bytes())
        }
    }
}
