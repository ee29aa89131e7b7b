//! A real HTTP receiver for webhook tests: it listens on 127.0.0.1, records
//! every request it gets with the status it answered, and answers as the
//! test says (confirm, fail, refuse, gone). It can be stopped and started
//! again on the same port, so the sender sees refused connections.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::support::within;

/// How the receiver answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Echo confirmation challenges; answer 200 to deliveries.
    Accept,
    /// Answer confirmations with this JSON; deliveries with 200.
    ConfirmWith(Value),
    /// Answer everything with this status (and a `Retry-After` in seconds).
    Status(u16, Option<u64>),
    /// Answer everything with a redirect to this URL.
    Redirect(String),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status it answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// Whether this is a subscription confirmation request.
    pub fn is_confirmation(&self) -> bool {
        self.json()["method"] == "rpc.webhook.confirm"
    }
}

#[derive(Clone)]
struct Shared {
    answer: Arc<Mutex<Answer>>,
    requests: mpsc::UnboundedSender<Received>,
}

pub struct Receiver {
    pub address: SocketAddr,
    shared: Shared,
    requests: mpsc::UnboundedReceiver<Received>,
    server: Option<JoinHandle<()>>,
}

impl Receiver {
    /// A receiver on a free port of 127.0.0.1, answering `answer`.
    pub async fn start(answer: Answer) -> Self {
        let (sender, requests) = mpsc::unbounded_channel();
        let shared = Shared {
            answer: Arc::new(Mutex::new(answer)),
            requests: sender,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut receiver = Self {
            address,
            shared,
            requests,
            server: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new()
            .fallback(answer)
            .with_state(self.shared.clone());
        // Connections live in a set owned by the accept loop, so that
        // stopping it closes kept-alive connections too.
        self.server = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let service = TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// The callback URL at `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn set(&self, answer: Answer) {
        *self.shared.answer.lock() = answer;
    }

    /// Stop listening: connections are refused until [`Receiver::restart`].
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listen again on the same port.
    pub async fn restart(&mut self) {
        let listener = within(async {
            loop {
                match tokio::net::TcpListener::bind(self.address).await {
                    Ok(listener) => return listener,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        self.serve(listener);
    }

    /// The next request.
    pub async fn next(&mut self) -> Received {
        within(self.requests.recv())
            .await
            .expect("the receiver is alive")
    }

    /// Requests until `done` says the ones so far are enough.
    pub async fn until(&mut self, mut done: impl FnMut(&[Received]) -> bool) -> Vec<Received> {
        let mut got = Vec::new();
        within(async {
            while !done(&got) {
                got.push(self.requests.recv().await.expect("the receiver is alive"));
            }
        })
        .await;
        got
    }

    /// The requests already received, without waiting.
    pub fn received_so_far(&mut self) -> Vec<Received> {
        let mut got = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            got.push(request);
        }
        got
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let confirming = request["method"] == "rpc.webhook.confirm";
    let answer = shared.answer.lock().clone();
    let response = match answer {
        Answer::Accept if confirming => {
            let echo = json!({"jsonrpc": "2.0", "result": request["params"]["challenge"], "id": request["id"]});
            (StatusCode::OK, echo.to_string()).into_response()
        }
        Answer::ConfirmWith(reply) if confirming => {
            (StatusCode::OK, reply.to_string()).into_response()
        }
        Answer::Accept | Answer::ConfirmWith(_) => StatusCode::NO_CONTENT.into_response(),
        Answer::Status(status, retry_after) => {
            let status = StatusCode::from_u16(status).unwrap();
            match retry_after {
                Some(seconds) => (status, [("retry-after", seconds.to_string())]).into_response(),
                None => status.into_response(),
            }
        }
        Answer::Redirect(to) => (StatusCode::FOUND, [("location", to)]).into_response(),
    };
    let _ = shared.requests.send(Received {
        headers,
        body,
        status: response.status().as_u16(),
    });
    response
}
