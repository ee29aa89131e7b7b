//! The load generator every server sees: closed-loop clients over real
//! sockets (hyper for HTTP, tokio-tungstenite for WebSocket), a warm-up that
//! is not counted, and latencies in an HDR histogram.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// How long to run: warm-up first, then the measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Not counted.
    pub warmup: Duration,
    /// Counted.
    pub measure: Duration,
}

impl Window {
    /// When counting starts and when the run ends, for a run starting now.
    fn starting_now(self) -> (Instant, Instant) {
        let counted_from = Instant::now() + self.warmup;
        (counted_from, counted_from + self.measure)
    }
}

/// What one run measured.
pub struct Outcome {
    /// Requests answered correctly in the measured window.
    pub requests: u64,
    /// Requests answered wrongly or not at all.
    pub errors: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Latency of each counted request, in microseconds.
    pub latency: Histogram<u64>,
}

impl Outcome {
    fn new(window: Window) -> Self {
        Self {
            requests: 0,
            errors: 0,
            elapsed: window.measure,
            latency: Histogram::new(3).expect("a valid histogram"),
        }
    }

    fn merge(&mut self, other: Self) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency
            .add(other.latency)
            .expect("histograms of one shape");
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `connections` HTTP/1.1 keep-alive connections, each sending `body` and
/// waiting for the answer, which must hold `answers` results `{"sum":3}`
/// (written `3` or `3.0`).
pub async fn http(
    address: SocketAddr,
    body: &'static str,
    answers: usize,
    connections: usize,
    window: Window,
) -> anyhow::Result<Outcome> {
    let (counted_from, until) = window.starting_now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        clients.push(tokio::spawn(async move {
            let mut outcome = Outcome::new(window);
            while Instant::now() < until {
                let request = hyper::Request::post("/")
                    .header("host", "localhost")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .expect("a valid request");
                let sent = Instant::now();
                let answered = match sender.send_request(request).await {
                    Ok(response) => match response.into_body().collect().await {
                        Ok(answer) => sums(&answer.to_bytes()) == answers,
                        Err(_) => false,
                    },
                    Err(_) => false,
                };
                if sent >= counted_from {
                    record(&mut outcome, answered, sent);
                }
                if !answered && sender.ready().await.is_err() {
                    break;
                }
            }
            outcome
        }));
    }
    collect(clients, window).await
}

/// `connections` WebSocket connections, each keeping `in_flight` `add`
/// requests outstanding.
pub async fn websocket(
    address: SocketAddr,
    connections: usize,
    in_flight: usize,
    window: Window,
) -> anyhow::Result<Outcome> {
    let (counted_from, until) = window.starting_now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(format!("ws://{address}/ws")).await?;
        clients.push(tokio::spawn(async move {
            let mut outcome = Outcome::new(window);
            let mut sent_at = vec![Instant::now(); in_flight];
            for (slot, sent) in sent_at.iter_mut().enumerate() {
                *sent = Instant::now();
                let request =
                    format!(r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{slot}}}"#);
                if socket.send(Message::text(request)).await.is_err() {
                    return outcome;
                }
            }
            while Instant::now() < until {
                let Some(Ok(Message::Text(answer))) = socket.next().await else {
                    outcome.errors += 1;
                    break;
                };
                let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
                let Some(slot) = answer["id"]
                    .as_u64()
                    .map(|id| id as usize)
                    .filter(|slot| *slot < in_flight)
                else {
                    outcome.errors += 1;
                    break;
                };
                if sent_at[slot] >= counted_from {
                    record(
                        &mut outcome,
                        answer["result"]["sum"].as_f64() == Some(3.0),
                        sent_at[slot],
                    );
                }
                sent_at[slot] = Instant::now();
                let request =
                    format!(r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{slot}}}"#);
                if socket.send(Message::text(request)).await.is_err() {
                    break;
                }
            }
            outcome
        }));
    }
    collect(clients, window).await
}

fn record(outcome: &mut Outcome, answered: bool, sent: Instant) {
    if answered {
        outcome.requests += 1;
        let _ = outcome.latency.record(sent.elapsed().as_micros() as u64);
    } else {
        outcome.errors += 1;
    }
}

async fn collect(
    clients: Vec<tokio::task::JoinHandle<Outcome>>,
    window: Window,
) -> anyhow::Result<Outcome> {
    let mut total = Outcome::new(window);
    for client in clients {
        total.merge(client.await?);
    }
    Ok(total)
}

/// How many `"sum":3` results an answer holds.
fn sums(answer: &[u8]) -> usize {
    let needle = br#""sum":3"#;
    answer
        .windows(needle.len())
        .filter(|window| window == needle)
        .count()
}
