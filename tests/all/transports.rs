//! What is particular to each transport: HTTP statuses and headers, WebSocket
//! frames and client ids, `/health`, and notifications pushed by plugins.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{TestNode, error, request, success, within};

#[tokio::test]
async fn http_rejects_what_is_not_a_json_post() {
    let node = TestNode::start(&["calculator"]).await;
    let client = reqwest::Client::new();
    let body = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#;

    let post = async |content_type: &str, body: Vec<u8>| {
        let request = client
            .post(node.url("/"))
            .header("content-type", content_type)
            .body(body);
        let response = within(request.send()).await.unwrap();
        let status = response.status();
        (status, within(response.json::<Value>()).await.unwrap())
    };

    let (status, answer) = post("text/plain", body.into()).await;
    assert_eq!(status, 415);
    assert_eq!(
        answer,
        error(
            -32600,
            "Invalid Request: Content-Type must be application/json",
            Value::Null
        )
    );

    let (status, answer) = post("application/json; charset=utf-8", body.into()).await;
    assert_eq!(status, 200);
    assert_eq!(answer, success(json!({"sum": 3}), json!(1)));

    let not_utf8 = b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\",\"id\":1}".to_vec();
    let (status, answer) = post("application/json", not_utf8).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        error(
            -32700,
            "Parse error: the body is not UTF-8 text",
            Value::Null
        )
    );

    let get = within(client.get(node.url("/")).send()).await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let answer: Value = within(get.json()).await.unwrap();
    assert_eq!(
        answer,
        error(
            -32600,
            "Invalid Request: send JSON-RPC requests with POST",
            Value::Null
        )
    );
    let missing = within(client.get(node.url("/nowhere")).send())
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn http_body_sent_in_pieces_is_read_whole() {
    let node = TestNode::start(&["calculator"]).await;
    let mut stream = within(tokio::net::TcpStream::connect(node.server.local_addr()))
        .await
        .unwrap();
    let head = "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let pieces = [
        r#"{"jsonrpc":"2.0","method":"#,
        r#""add","params":[20,"#,
        r#"22],"id":7}"#,
    ];
    within(stream.write_all(head.as_bytes())).await.unwrap();
    for piece in pieces {
        let chunk = format!("{:x}\r\n{piece}\r\n", piece.len());
        within(stream.write_all(chunk.as_bytes())).await.unwrap();
        // Each piece arrives on its own, so the server reads several frames.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    within(stream.write_all(b"0\r\n\r\n")).await.unwrap();
    let mut answer = String::new();
    within(stream.read_to_string(&mut answer)).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        success(json!({"sum": 42}), json!(7))
    );
}

#[tokio::test]
async fn http_body_over_the_limit_is_413_and_the_server_carries_on() {
    let node =
        TestNode::start_with(&["calculator"], |config| config.max_message_bytes = 1024).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":"{}"}}"#,
        "x".repeat(2000)
    );
    let (status, body) = node.post_text(&big).await;
    assert_eq!(status, 413);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        error(
            -32600,
            "Invalid Request: body larger than 1024 bytes (max_message_bytes)",
            Value::Null
        )
    );
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
}

/// Without TLS the port also speaks HTTP/2 with prior knowledge: answers,
/// statuses and limits are those of HTTP/1.1, for concurrent streams too.
#[tokio::test]
async fn http2_with_prior_knowledge_is_answered_like_http1() {
    let node =
        TestNode::start_with(&["calculator"], |config| config.max_message_bytes = 1024).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let post = async |body: String| {
        let request = client
            .post(node.url("/"))
            .header("content-type", "application/json")
            .body(body);
        let response = within(request.send()).await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        let status = response.status().as_u16();
        (status, within(response.text()).await.unwrap())
    };

    let calls = (0..8).map(|n| {
        post(format!(
            r#"{{"jsonrpc":"2.0","method":"add","params":[{n},1],"id":{n}}}"#
        ))
    });
    for (n, (status, body)) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer, success(json!({"sum": n + 1}), json!(n)));
    }

    let (status, body) = post(r#"{"jsonrpc":"2.0","method":"add","params":[1,2]}"#.into()).await;
    assert_eq!((status, body.as_str()), (204, ""));

    let (status, body) = post(format!(r#"{{"id":"{}"}}"#, "x".repeat(2000))).await;
    assert_eq!(status, 413);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        error(
            -32600,
            "Invalid Request: body larger than 1024 bytes (max_message_bytes)",
            Value::Null
        )
    );

    let (status, body) = post("{".into()).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        error(
            -32700,
            "Parse error: EOF while parsing an object at line 1 column 1",
            Value::Null
        )
    );

    let health = within(client.get(node.url("/health")).send())
        .await
        .unwrap();
    assert_eq!(health.version(), reqwest::Version::HTTP_2);
    let health: Value = within(health.json()).await.unwrap();
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn a_malformed_chunked_body_is_400_and_the_server_carries_on() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let node = TestNode::start(&["calculator"]).await;
    let mut stream = within(tokio::net::TcpStream::connect(node.server.local_addr()))
        .await
        .unwrap();
    let request = "POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                   transfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut answer = String::new();
    within(stream.read_to_string(&mut answer)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid Request: body unreadable: "),
        "{body}"
    );
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
}

#[tokio::test]
async fn batch_size_is_limited() {
    let node = TestNode::start_with(&["calculator"], |config| config.max_batch_size = 2).await;
    let batch = json!([
        {"jsonrpc":"2.0","method":"add","params":[1,2],"id":1},
        {"jsonrpc":"2.0","method":"add","params":[1,2],"id":2},
        {"jsonrpc":"2.0","method":"add","params":[1,2],"id":3},
    ]);
    assert_eq!(
        node.post(&batch).await,
        error(
            -32600,
            "Invalid Request: batch of 3 requests exceeds the limit of 2",
            Value::Null
        )
    );
}

#[tokio::test]
async fn health_reports_the_node_and_its_plugins() {
    let node = TestNode::start_with(&["calculator", "users"], |config| {
        config.node_name = "node-a".into()
    })
    .await;
    let mut ws = node.ws().await;
    let health = node.get_json("/health").await;
    assert_eq!(
        health,
        json!({
            "status": "ok",
            "node": "node-a",
            "websocket_clients": 1,
            "sessions": 0,
            "pending_requests": 0,
            "plugins": [
                {"name": "calculator", "version": "0.1.0", "methods": ["add", "multiply", "divide"]},
                {"name": "users", "version": "0.1.0", "methods": ["user_create", "user_get"]},
            ],
            "failed": [],
            "webhooks": {"pending": 0, "active": 0, "retrying": 0, "queued": 0, "delivering": 0},
        })
    );
    ws.close().await;
}

#[tokio::test]
async fn websocket_bad_frames_get_errors_and_the_connection_stays_usable() {
    let node = TestNode::start(&["calculator"]).await;
    let mut ws = node.ws().await;
    within(futures_util::SinkExt::send(
        &mut ws.stream,
        Message::binary(vec![1u8, 2, 3]),
    ))
    .await
    .unwrap();
    assert_eq!(
        ws.recv().await,
        error(
            -32600,
            "Invalid Request: binary frames are not supported; send JSON-RPC as text frames",
            Value::Null
        )
    );
    ws.send_text("not json").await;
    assert_eq!(
        ws.recv().await,
        error(
            -32700,
            "Parse error: expected ident at line 1 column 2",
            Value::Null
        )
    );
    assert_eq!(
        ws.call("add", json!([2, 2]), 1).await,
        success(json!({"sum": 4}), json!(1))
    );
    ws.close().await;
}

#[tokio::test]
async fn websocket_message_over_the_limit_closes_with_1009() {
    let node =
        TestNode::start_with(&["calculator"], |config| config.max_message_bytes = 1024).await;
    let mut ws = node.ws().await;
    ws.send_text(&format!(
        r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":"{}"}}"#,
        "x".repeat(2000)
    ))
    .await;
    match ws.next_frame().await {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
}

#[tokio::test]
async fn websocket_messages_larger_than_the_socket_buffers_arrive_whole() {
    // Connections read and write through 4 KiB buffers; a 200 KB request and
    // its 200 KB answer take many reads and writes.
    let node = TestNode::start(&["probe"]).await;
    let mut ws = node.ws().await;
    let blob = "y".repeat(200_000);
    let answer = ws.call("echo", json!({ "blob": blob }), 3).await;
    assert_eq!(answer["result"]["params"], json!({ "blob": blob }));
    assert_eq!(answer["id"], 3);
    ws.close().await;
}

#[tokio::test]
async fn websocket_requests_in_flight_together_each_get_their_own_answer() {
    let node = TestNode::start(&["calculator"]).await;
    let mut ws = node.ws().await;
    for id in 0..200 {
        ws.send(&json!({"jsonrpc":"2.0","method":"add","params":[id, 1],"id":id}))
            .await;
    }
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let answer = ws.recv().await;
        let id = answer["id"].as_i64().unwrap();
        assert_eq!(answer, success(json!({"sum": id + 1}), json!(id)));
        assert!(seen.insert(id), "answer {id} arrived twice");
    }
    ws.close().await;
}

/// A connection at its in-flight cap reads no more frames until a request
/// ends, but it is still pinged, and a stop still reaches it: it waits the
/// shutdown grace for its requests, then closes with 1001, long before the
/// slow request would have ended.
#[tokio::test]
async fn a_websocket_at_its_in_flight_cap_is_still_pinged_and_stopped() {
    let node = TestNode::start_with(&["probe"], |config| {
        config.ws_max_in_flight = 1;
        config.ws_ping_interval = Duration::from_millis(100);
        config.shutdown_grace = Duration::from_millis(300);
    })
    .await;
    let mut ws = node.ws().await;
    ws.send(&request("sleep", json!({"ms": 20_000}), json!(1)))
        .await;
    ws.send(&request("sleep", json!({"ms": 1}), json!(2))).await;
    // Three pings while the second request waits for the first.
    let mut pings = 0;
    within(async {
        while pings < 3 {
            match ws.stream.next().await {
                Some(Ok(Message::Ping(_))) => pings += 1,
                other => panic!("expected pings at the cap, got {other:?}"),
            }
        }
    })
    .await;
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(node.server.stop());
    let close = within(async {
        loop {
            match ws.stream.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await;
    let Some(Ok(Message::Close(Some(frame)))) = close else {
        panic!("expected a close frame, got {close:?}");
    };
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(frame.reason, "server shutting down");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
    within(stopping).await.unwrap().expect("a clean stop");
}

#[tokio::test]
async fn a_long_websocket_call_does_not_hold_up_the_frames_after_it() {
    let node = TestNode::start_with(&["calculator", "probe"], |config| {
        config.request_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut ws = node.ws().await;
    ws.send(&json!({"jsonrpc":"2.0","method":"fault_spin","id":1}))
        .await;
    ws.send(&json!({"jsonrpc":"2.0","method":"add","params":[2, 3],"id":2}))
        .await;
    assert_eq!(ws.recv().await, success(json!({"sum": 5}), json!(2)));
    assert_eq!(
        ws.recv().await,
        error(
            -32000,
            "Server error: request timed out after 1.5s (request_timeout)",
            json!(1)
        )
    );
    ws.close().await;
}

#[tokio::test]
async fn plugins_see_the_transport_client_id_and_headers() {
    let node = TestNode::start(&["probe"]).await;
    let (status, body) = node
        .post_with(
            r#"{"jsonrpc":"2.0","method":"echo","params":{"k":[1]},"id":"e"}"#,
            &[("x-test", "over-http")],
        )
        .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["result"],
        json!({"method": "echo", "params": {"k": [1]}, "request_id": "e", "transport": "Http",
               "client_id": null, "has_remote_addr": true, "x_test": "over-http",
               // Not content-length: plugins see params, not the body.
               "header_names": ["accept", "content-type", "host", "x-test"]})
    );

    let mut first = node.ws_with(&[("x-test", "handshake")]).await;
    let mut second = node.ws().await;
    let one = first.call("echo", json!([]), 7).await["result"].clone();
    let two = second.call("echo", json!([]), 8).await["result"].clone();
    assert_eq!(one["transport"], "WebSocket");
    assert_eq!(one["x_test"], "handshake");
    // The handshake's own headers (upgrade, sec-websocket-key, …) stay out.
    assert_eq!(one["header_names"], json!(["host", "x-test"]));
    assert_eq!(one["request_id"], 7);
    let (id_one, id_two) = (
        one["client_id"].as_str().unwrap(),
        two["client_id"].as_str().unwrap(),
    );
    assert_ne!(id_one, id_two);
    for id in [id_one, id_two] {
        let parts: Vec<&str> = id.split('_').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "ws");
        assert!(
            parts[1].parse::<u64>().is_ok() && parts[2].parse::<u64>().unwrap() > 1_700_000_000_000,
            "{id}"
        );
    }
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn plugins_broadcast_and_send_to_one_client() {
    let node = TestNode::start(&["probe"]).await;
    let mut a = node.ws().await;
    let mut b = node.ws().await;
    let id_a = a.call("echo", json!([]), 1).await["result"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id_b = b.call("echo", json!([]), 1).await["result"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut expected = vec![id_a.clone(), id_b.clone()];
    expected.sort();
    assert_eq!(
        node.call("list_clients", json!([])).await["result"],
        json!(expected)
    );

    let queued = node
        .call("notify", json!({"method": "tick", "params": {"n": 1}}))
        .await;
    assert_eq!(queued["result"], json!({"queued": 2}));
    let tick = json!({"jsonrpc": "2.0", "method": "tick", "params": {"n": 1}});
    assert_eq!(a.recv().await, tick);
    assert_eq!(b.recv().await, tick);

    let sent = node
        .call(
            "notify",
            json!({"method": "direct", "params": [id_b], "client_id": id_b}),
        )
        .await;
    assert_eq!(sent["result"], json!({"sent": true}));
    assert_eq!(
        b.recv().await,
        json!({"jsonrpc": "2.0", "method": "direct", "params": [id_b]})
    );
    a.assert_quiet().await;

    let gone = node
        .call(
            "notify",
            json!({"method": "x", "params": [], "client_id": "ws_0_0"}),
        )
        .await;
    assert_eq!(
        gone["result"],
        json!({"error": "no connected client \"ws_0_0\""})
    );
    let bad = node
        .call("notify", json!({"method": "x", "params": 5}))
        .await;
    assert_eq!(
        bad["result"],
        json!({"error": "params must be a JSON object or array"})
    );
    a.close().await;
    b.close().await;
}
