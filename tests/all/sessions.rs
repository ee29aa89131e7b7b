//! Resumable sessions over real WebSockets: a client that drops in a burst
//! resumes with every notification once and in order; what is sent while it
//! is away waits for it until the session ends; a resume says which streams
//! it could not recover; wrong tokens and malformed positions get clear
//! errors and nothing else; clients without a session see today's bytes.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{
    SessionClient, TestNode, WsClient, error, eventually, success, within, ws_connect,
};

pub const RESUME_REFUSED: &str = "Server error: no session matches this client_id and token (it may \
                              have expired); start a new one with rpc.session {}";

/// What a session's streams report, without their epochs (which are random):
/// stream name to (offset, recovered, missed).
pub fn recoveries(answer: &Value) -> BTreeMap<String, (u64, bool, u64)> {
    answer["result"]["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("no streams in {answer}"))
        .iter()
        .map(|stream| {
            let name = stream["stream"].as_str().unwrap().to_owned();
            let state = (
                stream["offset"].as_u64().unwrap(),
                stream["recovered"].as_bool().unwrap(),
                stream["missed"].as_u64().unwrap(),
            );
            (name, state)
        })
        .collect()
}

/// Close the client's connection and wait until the server has seen it go.
async fn leave(node: &TestNode, client: &mut SessionClient) {
    client.ws.close().await;
    eventually(async || node.get_json("/health").await["websocket_clients"] == 0).await;
}

/// The next frame closes the connection with 1008 and `reason`.
pub async fn assert_closed_by_policy(ws: &mut WsClient, reason: &str) {
    match ws.next_frame().await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!(
                (frame.code, frame.reason.as_str()),
                (CloseCode::Policy, reason)
            );
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// A session client of `node` drops mid-way through a burst of 1,000
/// notifications (broadcast, its topic, to it) that `sender` sends, resumes
/// on `resume_on`, and has each exactly once, in order, with no gap in any
/// stream.
pub async fn drop_in_a_burst_and_resume(node: &TestNode, sender: &TestNode, resume_on: &TestNode) {
    let address = resume_on.server.local_addr().to_string();
    let mut client = node.session().await;
    let answer = client
        .ws
        .call("rpc.subscribe", json!({"topics": ["t"]}), 1)
        .await;
    let topic = answer["result"]["streams"][0].clone();
    assert_eq!(answer["result"]["subscribed"], json!(["t"]));
    assert_eq!(
        (&topic["stream"], &topic["offset"]),
        (&json!("topic:t"), &json!(0))
    );
    client.positions.insert("topic:t".into(), topic);

    const COUNT: u64 = 1000;
    let params = json!({"count": COUNT, "topic": "t", "client_id": client.client_id});
    let url = sender.url("/");
    let burst = tokio::spawn(async move {
        let body = json!({"jsonrpc": "2.0", "method": "mixed", "params": params, "id": 1});
        let response = reqwest::Client::new().post(url).json(&body).send().await;
        response.unwrap().json::<Value>().await.unwrap()
    });
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen.push(client.next().await);
    }
    // The connection drops without a close frame, mid-burst; a new one resumes.
    let answer = client.resume(&address).await;
    assert_eq!(answer["result"]["resumed"], true, "{answer}");
    let recovered = recoveries(&answer);
    assert!(recovered.values().all(|(_, ok, _)| *ok), "{answer}");
    while (seen.len() as u64) < COUNT {
        seen.push(client.next().await);
    }
    assert_eq!(
        within(burst).await.unwrap(),
        success(json!({"sent": COUNT}), json!(1))
    );
    client.ws.assert_quiet().await;

    let mut numbers = HashSet::new();
    let mut last: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for message in &seen {
        assert_eq!(message["method"], "seq");
        let n = message["params"]["n"].as_u64().unwrap();
        assert!(numbers.insert(n), "{n} arrived twice");
        let stream = message["position"]["stream"].as_str().unwrap().to_owned();
        let offset = message["position"]["offset"].as_u64().unwrap();
        let expected = match n % 3 {
            0 => "broadcast".to_owned(),
            1 => "topic:t".to_owned(),
            _ => format!("client:{}", client.client_id),
        };
        assert_eq!(stream, expected);
        // In order, with no gap, on every stream.
        let (previous_n, previous_offset) = last.get(&stream).copied().unwrap_or((0, 0));
        if previous_offset > 0 {
            assert!(n > previous_n, "{n} after {previous_n} on {stream}");
        }
        assert_eq!(offset, previous_offset + 1, "on {stream}");
        last.insert(stream, (n, offset));
    }
    assert_eq!(numbers.len() as u64, COUNT);
}

#[tokio::test]
async fn a_client_that_drops_in_a_burst_resumes_with_each_notification_once_in_order() {
    let node = TestNode::start(&["probe"]).await;
    drop_in_a_burst_and_resume(&node, &node, &node).await;
}

#[tokio::test]
async fn resuming_works_the_same_with_memory_only() {
    let node = TestNode::start_with(&["probe"], |config| config.data_dir = None).await;
    drop_in_a_burst_and_resume(&node, &node, &node).await;
}

#[tokio::test]
async fn what_is_sent_while_away_waits_until_the_session_ends() {
    let node = TestNode::start_with(&["probe"], |config| {
        config.session_ttl = Duration::from_millis(1500);
    })
    .await;
    let address = node.server.local_addr().to_string();
    let mut client = node.session().await;
    let id = client.client_id.clone();
    let client_stream = format!("client:{id}");
    client
        .ws
        .call("rpc.subscribe", json!({"topics": ["t"]}), 1)
        .await;
    leave(&node, &mut client).await;
    // Away, the client is still a client: it is listed, and notifications
    // to it are kept.
    assert_eq!(
        node.call("list_clients", json!([])).await["result"],
        json!([id])
    );
    let note = json!({"method": "note", "params": {"n": 1}, "client_id": id});
    assert_eq!(
        node.call("notify", note).await["result"],
        json!({"sent": true})
    );

    let answer = client.resume(&address).await;
    let expected = BTreeMap::from([
        ("broadcast".to_owned(), (0, true, 0)),
        (client_stream.clone(), (1, true, 1)),
        ("topic:t".to_owned(), (0, true, 0)),
    ]);
    assert_eq!(recoveries(&answer), expected);
    assert_eq!(answer["result"]["client_id"], id);
    let received = client.next().await;
    let epoch = received["position"]["epoch"].clone();
    assert_eq!(
        received,
        json!({"jsonrpc": "2.0", "method": "note", "params": {"n": 1},
               "position": {"stream": client_stream, "epoch": epoch, "offset": 1}})
    );
    // The session kept its subscription.
    let published = node
        .call("mixed", json!({"count": 2, "topic": "t", "client_id": id}))
        .await;
    assert_eq!(published["result"], json!({"sent": 2}));
    assert_eq!(client.next().await["params"], json!({"n": 0}));
    assert_eq!(client.next().await["params"], json!({"n": 1}));

    // Gone for longer than the session lives: the session ends, once.
    client.ws.close().await;
    eventually(async || node.get_json("/health").await["sessions"] == 0).await;
    let note = json!({"method": "note", "params": {"n": 2}, "client_id": id});
    assert_eq!(
        node.call("notify", note).await["result"],
        json!({"error": format!("no connected client {id:?}")})
    );
    assert_eq!(
        client.resume(&address).await,
        error(-32005, RESUME_REFUSED, json!(0))
    );
    let log = node.hook_log().await;
    let events: Vec<&String> = log
        .iter()
        .filter(|entry| entry.starts_with("connect") || entry.starts_with("disconnect"))
        .collect();
    assert_eq!(
        events,
        [
            &format!("connect {id} - WebSocket true true"),
            // Ended by time, with no connection: no peer address.
            &format!("disconnect {id} WebSocket true false"),
        ]
    );
}

#[tokio::test]
async fn a_resume_says_which_streams_it_could_not_recover_and_sends_nothing_of_them() {
    let node = TestNode::start_with(&["probe", "pubsub"], |config| {
        config.history.size = 3;
    })
    .await;
    let address = node.server.local_addr().to_string();
    let mut client = node.session().await;
    client
        .ws
        .call("rpc.subscribe", json!({"topics": ["t"]}), 1)
        .await;
    leave(&node, &mut client).await;
    for n in 0..5 {
        let published = node
            .call("publish", json!({"topic": "t", "message": n}))
            .await;
        assert_eq!(published["result"]["subscribers_notified"], 0);
    }
    for n in 0..2 {
        node.call("notify", json!({"method": "b", "params": {"n": n}}))
            .await;
    }

    let answer = client.resume(&address).await;
    let client_stream = format!("client:{}", client.client_id);
    let expected = BTreeMap::from([
        ("broadcast".to_owned(), (2, true, 2)),
        (client_stream.clone(), (0, true, 0)),
        // Five missed, three kept: none is sent.
        ("topic:t".to_owned(), (5, false, 0)),
    ]);
    assert_eq!(recoveries(&answer), expected);
    assert_eq!(client.next().await["params"], json!({"n": 0}));
    assert_eq!(client.next().await["params"], json!({"n": 1}));
    client.ws.assert_quiet().await;

    // A position from another epoch (the stream's history was lost) is not
    // recovered either, even with nothing missed.
    leave(&node, &mut client).await;
    let broadcast = client.positions.get_mut("broadcast").unwrap();
    broadcast["epoch"] = json!("0ther");
    let answer = client.resume(&address).await;
    let expected = BTreeMap::from([
        ("broadcast".to_owned(), (2, false, 0)),
        (client_stream, (0, true, 0)),
        ("topic:t".to_owned(), (5, true, 0)),
    ]);
    assert_eq!(recoveries(&answer), expected);
    client.ws.assert_quiet().await;
}

#[tokio::test]
async fn wrong_tokens_and_malformed_resumes_get_clear_errors_and_nothing_else() {
    let node = TestNode::start(&["probe"]).await;
    let address = node.server.local_addr().to_string();
    let mut a = node.session().await;
    let b = node.session().await;
    a.ws.close().await;
    let note = json!({"method": "for_b", "params": {}, "client_id": b.client_id});
    node.call("notify", note).await;

    let mut ws = ws_connect(&format!("ws://{address}/ws?session"), &[]).await;
    let own_stream = format!("client:{}", a.client_id);
    let b_stream = format!("client:{}", b.client_id);
    let cases = [
        // Someone else's token.
        (
            json!({"client_id": a.client_id, "token": b.token}),
            error(-32005, RESUME_REFUSED, json!(1)),
        ),
        (
            json!({"client_id": a.client_id, "token": "00"}),
            error(-32005, RESUME_REFUSED, json!(1)),
        ),
        (
            json!({"client_id": "ws_0_0", "token": a.token}),
            error(-32005, RESUME_REFUSED, json!(1)),
        ),
        (
            json!({"token": a.token}),
            error(
                -32602,
                "Invalid params: to start a session send no params; to resume one send \
                 client_id and token (and the positions you have)",
                json!(1),
            ),
        ),
        (
            json!({"client_id": a.client_id, "token": a.token, "positions": [
                {"stream": "broadcast", "epoch": "e", "offset": "7"}]}),
            error(
                -32602,
                "Invalid params: invalid type: string \"7\", expected u64",
                json!(1),
            ),
        ),
        (
            json!({"client_id": a.client_id, "token": a.token, "positions": [
                {"stream": own_stream, "offset": 1}]}),
            error(-32602, "Invalid params: missing field `epoch`", json!(1)),
        ),
        // Another client's stream is never read for this one.
        (
            json!({"client_id": a.client_id, "token": a.token, "positions": [
                {"stream": b_stream, "epoch": "e", "offset": 0}]}),
            error(
                -32602,
                &format!(
                    "Invalid params: stream {b_stream:?} is not one of this session's streams"
                ),
                json!(1),
            ),
        ),
        (
            json!({"client_id": a.client_id, "token": a.token, "resume": true}),
            error(
                -32602,
                "Invalid params: unknown field `resume`, expected one of `client_id`, `token`, `positions`",
                json!(1),
            ),
        ),
        (
            json!([1, 2]),
            error(
                -32602,
                "Invalid params: invalid type: integer `1`, expected a string",
                json!(1),
            ),
        ),
    ];
    for (params, expected) in cases {
        assert_eq!(
            ws.call("rpc.session", params.clone(), 1).await,
            expected,
            "{params}"
        );
    }
    // Anything but rpc.session first is refused; the connection may still open one.
    let first = "Server error: this connection was opened with GET /ws?session: its first \
                 request must be rpc.session, with an id";
    assert_eq!(
        ws.call("echo", json!([]), 2).await,
        error(-32006, first, json!(2))
    );
    ws.send_text("{not json").await;
    assert_eq!(
        ws.recv().await["error"]["code"],
        json!(-32700),
        "a parse error is answered"
    );
    ws.send(&json!({"jsonrpc": "2.0", "method": "rpc.session"}))
        .await;
    assert_eq!(ws.recv().await, error(-32006, first, Value::Null));
    ws.send(&json!([{"jsonrpc": "2.0", "method": "rpc.session", "id": 3}]))
        .await;
    assert_eq!(ws.recv().await, error(-32006, first, Value::Null));
    let opened = ws.call("rpc.session", json!({}), 4).await;
    assert!(opened["result"]["token"].is_string(), "{opened}");
    // ... once.
    assert_eq!(
        ws.call("rpc.session", json!({}), 5).await,
        error(
            -32006,
            "Server error: rpc.session is only accepted as the first request of a connection \
             opened with GET /ws?session",
            json!(5)
        )
    );

    // A's session is intact: with its own token it resumes, and B's
    // notification never reaches it.
    let answer = a.resume(&address).await;
    assert_eq!(answer["result"]["resumed"], true);
    a.ws.assert_quiet().await;
    // Without ?session, rpc.session is refused the same way.
    let mut plain = node.ws().await;
    assert_eq!(
        plain.call("rpc.session", json!({}), 1).await["error"]["code"],
        -32006
    );
}

#[tokio::test]
async fn a_second_connection_takes_the_session_over() {
    let node = TestNode::start(&["probe"]).await;
    let address = node.server.local_addr().to_string();
    let mut client = node.session().await;
    let mut first = std::mem::replace(
        &mut client.ws,
        ws_connect(&format!("ws://{address}/ws"), &[]).await,
    );
    let answer = client.resume(&address).await;
    assert_eq!(answer["result"]["resumed"], true);
    assert_closed_by_policy(&mut first, "the session was resumed on another connection").await;
    node.call("notify", json!({"method": "after", "params": {}}))
        .await;
    assert_eq!(client.next().await["method"], "after");
    assert_eq!(node.get_json("/health").await["websocket_clients"], 1);
}

#[tokio::test]
async fn a_session_connection_that_never_opens_a_session_is_closed() {
    let node = TestNode::start_with(&["probe"], |config| {
        config.header_read_timeout = Duration::from_millis(300);
    })
    .await;
    let mut ws = ws_connect(
        &format!("ws://{}/ws?session", node.server.local_addr()),
        &[],
    )
    .await;
    assert_closed_by_policy(&mut ws, "no rpc.session request within header_read_timeout").await;
    assert_eq!(node.get_json("/health").await["sessions"], 0);
}

#[tokio::test]
async fn clients_without_a_session_receive_exactly_the_bytes_they_always_did() {
    let node = TestNode::start(&["probe"]).await;
    let mut plain = node.ws().await;
    let mut session = node.session().await;
    plain
        .call("rpc.subscribe", json!({"topics": ["t"]}), 1)
        .await;
    session
        .ws
        .call("rpc.subscribe", json!({"topics": ["t"]}), 1)
        .await;
    let plain_id = plain.call("echo", json!([]), 2).await["result"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();

    node.call("notify", json!({"method": "news", "params": {"n": 1}}))
        .await;
    node.call(
        "notify",
        json!({"method": "t", "params": {"message": "hi"}, "topic": "t"}),
    )
    .await;
    node.call(
        "notify",
        json!({"method": "direct", "params": [1], "client_id": plain_id}),
    )
    .await;
    let expected = [
        r#"{"jsonrpc":"2.0","method":"news","params":{"n":1}}"#,
        r#"{"jsonrpc":"2.0","method":"t","params":{"message":"hi"}}"#,
        r#"{"jsonrpc":"2.0","method":"direct","params":[1]}"#,
    ];
    for text in expected {
        match within(plain.stream.next()).await {
            Some(Ok(Message::Text(frame))) => assert_eq!(frame.as_str(), text),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
    // The session client gets the same objects with their positions.
    let news = session.next().await;
    let epoch = news["position"]["epoch"].clone();
    assert_eq!(
        news,
        json!({"jsonrpc": "2.0", "method": "news", "params": {"n": 1},
               "position": {"stream": "broadcast", "epoch": epoch, "offset": 1}})
    );
    assert_eq!(session.next().await["position"]["stream"], "topic:t");
    session.ws.assert_quiet().await;
}

#[tokio::test]
async fn sessions_are_capped_and_greeted_like_any_client() {
    let node = TestNode::start_with(&["probe"], |config| {
        config.max_sessions = 1;
        config.welcome = true;
    })
    .await;
    let address = node.server.local_addr().to_string();
    let mut first = ws_connect(&format!("ws://{address}/ws?session"), &[]).await;
    let opened = first.call("rpc.session", json!({}), 1).await;
    let id = opened["result"]["client_id"].clone();
    // The greeting follows the answer; it belongs to no stream.
    assert_eq!(
        first.recv().await,
        json!({"jsonrpc": "2.0", "method": "welcome", "params": {"client_id": id}})
    );
    let mut second = ws_connect(&format!("ws://{address}/ws?session"), &[]).await;
    assert_eq!(
        second.call("rpc.session", json!({}), 1).await,
        error(
            -32002,
            "Server error: too many sessions (max_sessions = 1)",
            json!(1)
        )
    );
}
