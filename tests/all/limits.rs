//! Limits and backpressure: connection cap, header deadline, WebSocket
//! keepalive and idle timeout, built-in rate limiting; each with a clear
//! error and nothing else disturbed.

use std::time::Duration;

use futures_util::StreamExt;
use rpcnode::config::RateLimit;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{TestNode, error, eventually, success, within};

#[tokio::test]
async fn connections_over_the_cap_get_503_and_the_others_carry_on() {
    let node = TestNode::start_with(&["calculator"], |config| config.max_connections = 2).await;
    let mut first = node.ws().await;
    let mut second = node.ws().await;
    let (status, body) = node
        .post_text(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#)
        .await;
    assert_eq!(status, 503);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        error(
            -32002,
            "Server error: too many connections (max_connections = 2)",
            Value::Null
        )
    );
    assert_eq!(
        first.call("add", json!([2, 2]), 1).await,
        success(json!({"sum": 4}), json!(1))
    );
    second.close().await;
    eventually(async || {
        node.post_text(r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#)
            .await
            .0
            == 200
    })
    .await;
    assert!(node.server.node().metrics.connections_refused.get() >= 1);
}

/// A node with `plugin` and a 300 ms header deadline, and a raw connection
/// to it.
async fn node_with_header_deadline(plugin: &str) -> (TestNode, tokio::net::TcpStream) {
    let node = TestNode::start_with(&[plugin], |config| {
        config.header_read_timeout = Duration::from_millis(300)
    })
    .await;
    let stream = within(tokio::net::TcpStream::connect(node.server.local_addr()))
        .await
        .unwrap();
    (node, stream)
}

/// Send half a request head and wait: the server gives up on the headers
/// and closes the connection without a word.
async fn stall_until_cut_off(stream: &mut tokio::net::TcpStream) {
    within(stream.write_all(b"POST / HTTP/1.1\r\nhost: localhost\r\n"))
        .await
        .unwrap();
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer)).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), "");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let (node, mut stream) = node_with_header_deadline("calculator").await;
    stall_until_cut_off(&mut stream).await;
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
}

/// POST `body` on a raw keep-alive connection and check that the answer is
/// `200` with `expected` as its body.
async fn post_on(stream: &mut tokio::net::TcpStream, body: &str, expected: &str) {
    let request = format!(
        "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"}") {
        let mut chunk = [0; 1024];
        let read = within(stream.read(&mut chunk)).await.unwrap();
        assert!(
            read > 0,
            "closed after {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&format!("\r\n\r\n{expected}")), "{answer}");
}

#[tokio::test]
async fn the_header_deadline_restarts_for_each_request_on_a_connection() {
    let (_node, mut stream) = node_with_header_deadline("probe").await;
    // A call that runs past the header deadline is answered: the deadline
    // covers reading the request, not answering it.
    let body = r#"{"jsonrpc":"2.0","method":"sleep","params":[600],"id":1}"#;
    let expected = r#"{"jsonrpc":"2.0","result":{"slept_ms":600},"id":1}"#;
    post_on(&mut stream, body, expected).await;

    // The next request's head gets a deadline of its own.
    let started = std::time::Instant::now();
    stall_until_cut_off(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn each_answer_restarts_the_header_deadline() {
    let (_node, mut stream) = node_with_header_deadline("calculator").await;
    // Quick requests 150 ms apart keep the connection for more than three
    // 300 ms deadlines: each answer starts the clock again.
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#;
    let expected = r#"{"jsonrpc":"2.0","result":{"sum":3},"id":1}"#;
    for _ in 0..7 {
        post_on(&mut stream, body, expected).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    post_on(&mut stream, body, expected).await;
}

#[tokio::test]
async fn silent_websockets_are_closed_and_live_ones_kept_by_ping() {
    let node = TestNode::start_with(&["calculator"], |config| {
        config.ws_ping_interval = Duration::from_millis(100);
        config.ws_idle_timeout = Duration::from_millis(400);
    })
    .await;
    let mut live = node.ws().await;
    let mut silent = node.ws().await;

    // The live client reads (and so answers pings) for well past the idle
    // timeout; the silent one reads nothing.
    let listen = async {
        let mut pings = 0;
        let until = tokio::time::Instant::now() + Duration::from_millis(1200);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(until, live.stream.next()).await {
            if matches!(frame, Message::Ping(_)) {
                pings += 1;
            }
        }
        pings
    };
    let pings = within(listen).await;
    assert!(pings >= 3, "only {pings} pings");
    assert_eq!(
        live.call("add", json!([1, 1]), 1).await,
        success(json!({"sum": 2}), json!(1))
    );

    // The server dropped the silent client (and only it).
    eventually(async || node.get_json("/health").await["websocket_clients"] == 1).await;
    // What the silent client finds when it reads at last: the idle close
    // frame, or a socket already closed under its unanswered pings.
    let ending = within(async {
        loop {
            match silent.stream.next().await {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|frame| (frame.code, frame.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await;
    if let Some(frame) = ending {
        assert_eq!(frame, (CloseCode::Normal, "idle timeout".to_owned()));
    }
    assert_eq!(
        live.call("add", json!([2, 2]), 2).await,
        success(json!({"sum": 4}), json!(2))
    );
}

/// The rate limit refuses before any plugin code runs: the refused request
/// is counted under its method, and no hook sees it (audit's after-request
/// hook counts every request it sees).
#[tokio::test]
async fn the_built_in_rate_limit_answers_its_own_error_per_client() {
    let node = TestNode::start_with(&["calculator", "audit"], |config| {
        config.rate_limit = Some(RateLimit {
            per_second: 0.5,
            burst: 2,
        });
    })
    .await;
    assert_eq!(
        node.call("add", json!([1, 1])).await["result"],
        json!({"sum": 2})
    );
    assert_eq!(
        node.call("add", json!([1, 1])).await["result"],
        json!({"sum": 2})
    );
    assert_eq!(
        node.call("add", json!([1, 1])).await,
        error(
            -32004,
            "Server error: rate limit exceeded (0.5 requests per second, bursts of 2)",
            json!(1)
        )
    );
    // A WebSocket client has a bucket of its own.
    let mut ws = node.ws().await;
    assert_eq!(
        ws.call("add", json!([2, 2]), 1).await,
        success(json!({"sum": 4}), json!(1))
    );
    assert_eq!(node.server.node().metrics.rate_limited.get(), 1);
    assert_eq!(
        ws.call("audit_counts", json!({}), 2).await,
        success(json!({"requests": 3, "errors": 0}), json!(2))
    );
    let metrics = crate::observability::metrics(&node).await;
    for line in [
        "rpcnode_requests_total{method=\"add\",outcome=\"ok\"} 3",
        "rpcnode_requests_total{method=\"add\",outcome=\"error\"} 1",
        "rpcnode_rate_limited_total 1",
    ] {
        assert!(
            metrics.lines().any(|got| got == line),
            "{line} in:\n{metrics}"
        );
    }
}
