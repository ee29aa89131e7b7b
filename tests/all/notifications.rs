//! Server-push delivery: broadcast, targeted, all-but-one and topic delivery,
//! cleanup on disconnect, order under bursts, and eviction of a stalled client.

use std::collections::HashSet;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::binary::{self, resident_kib, start, terminate};
use crate::support::{
    TestNode, error, eventually, plugins_dir, request, success, unix_time, within, ws_connect,
};

#[tokio::test]
async fn broadcast_reaches_every_client_exactly_once() {
    let node = TestNode::start(&["probe"]).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(node.ws().await);
    }
    let queued = node
        .call("notify", json!({"method": "news", "params": {"n": 1}}))
        .await;
    assert_eq!(queued["result"], json!({"queued": 5}));
    for ws in &mut clients {
        assert_eq!(
            ws.recv().await,
            json!({"jsonrpc": "2.0", "method": "news", "params": {"n": 1}})
        );
        ws.assert_quiet().await;
    }
}

#[tokio::test]
async fn an_edit_reaches_everyone_but_the_editor() {
    let node = TestNode::start(&["editor", "probe"]).await;
    let mut editor = node.ws().await;
    let mut others = vec![node.ws().await, node.ws().await, node.ws().await];
    let editor_id = editor.client_id().await;
    let answer = editor
        .call(
            "editDocument",
            json!({"doc_id": "d1", "edit": {"insert": "hi", "at": 0}}),
            1,
        )
        .await;
    assert_eq!(
        answer,
        success(
            json!({"success": true, "doc_id": "d1", "version": 1, "clients_notified": 3}),
            json!(1)
        )
    );
    let expected = json!({"jsonrpc": "2.0", "method": "documentEdited",
        "params": {"doc_id": "d1", "edit": {"insert": "hi", "at": 0}, "editor": editor_id, "version": 1}});
    for ws in &mut others {
        assert_eq!(ws.recv().await, expected);
    }
    editor.assert_quiet().await;

    // The seed's request names the editor: over HTTP, that client is left out.
    let named = others[0].client_id().await;
    let answer = node
        .call(
            "editDocument",
            json!({"doc_id": "d1", "edit": "x", "editor": named}),
        )
        .await;
    assert_eq!(answer["result"]["clients_notified"], 3);
    let (left_out, rest) = others.split_first_mut().unwrap();
    for ws in std::iter::once(&mut editor).chain(rest) {
        assert_eq!(ws.recv().await["params"]["editor"], json!(named));
    }
    left_out.assert_quiet().await;
}

#[tokio::test]
async fn topics_reach_only_their_subscribers_and_die_with_the_connection() {
    let node = TestNode::start(&["pubsub", "probe"]).await;
    let mut news = node.ws().await;
    let mut both = node.ws().await;
    let mut none = node.ws().await;
    assert_eq!(
        news.call("rpc.subscribe", json!({"topics": ["news"]}), 1)
            .await,
        success(json!({"subscribed": ["news"]}), json!(1))
    );
    // The plugin's own subscribe works on the same topics; the seed's
    // clients send a client id of their choosing, which is not trusted.
    assert_eq!(
        both.call(
            "subscribe",
            json!({"client_id": "client1", "topics": ["news", "sport"]}),
            1
        )
        .await,
        success(
            json!({"success": true, "subscribed": ["news", "sport"], "total_subscriptions": 2}),
            json!(1)
        )
    );

    let before = unix_time();
    let mut published = node
        .call("publish", json!({"topic": "news", "message": "extra"}))
        .await;
    assert_eq!(
        published["result"],
        json!({"success": true, "topic": "news", "subscribers_notified": 2})
    );
    for ws in [&mut news, &mut both] {
        let mut received = ws.recv().await;
        let stamped = received["params"]["timestamp"].take().as_f64().unwrap();
        assert!((before..=unix_time()).contains(&stamped), "{stamped}");
        assert_eq!(
            received,
            json!({"jsonrpc": "2.0", "method": "news", "params": {"message": "extra", "timestamp": null}})
        );
    }
    none.assert_quiet().await;

    assert_eq!(
        both.call("rpc.unsubscribe", json!({"topics": ["news", "weather"]}), 2)
            .await,
        success(json!({"unsubscribed": ["news"]}), json!(2))
    );
    published = node
        .call("publish", json!({"topic": "news", "message": 2}))
        .await;
    assert_eq!(published["result"]["subscribers_notified"], 1);
    assert_eq!(
        both.call("unsubscribe", json!({"topics": ["sport", "weather"]}), 3)
            .await,
        success(
            json!({"success": true, "unsubscribed": ["sport"]}),
            json!(3)
        )
    );
    assert_eq!(
        both.call("subscribe", json!({"topics": ["sport"]}), 4)
            .await,
        success(
            json!({"success": true, "subscribed": ["sport"], "total_subscriptions": 1}),
            json!(4)
        )
    );

    news.close().await;
    both.close().await;
    eventually(async || {
        let left = node
            .call("publish", json!({"topic": "sport", "message": 3}))
            .await;
        left["result"]["subscribers_notified"] == 0
    })
    .await;
    let left = node
        .call("publish", json!({"topic": "news", "message": 4}))
        .await;
    assert_eq!(left["result"]["subscribers_notified"], 0);
    none.assert_quiet().await;
}

#[tokio::test]
async fn subscriptions_belong_to_the_calling_connection_only() {
    let node = TestNode::start(&["pubsub"]).await;
    let (status, body) = node
        .post_text(r#"{"jsonrpc":"2.0","method":"rpc.subscribe","params":{"topics":["a"]},"id":1}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        error(
            -32001,
            "Server error: rpc.subscribe needs a WebSocket connection (GET /ws)",
            json!(1)
        )
    );
    assert_eq!(
        node.call("subscribe", json!({"topics": ["a"]})).await,
        error(-32001, "subscribe needs a WebSocket connection", json!(1))
    );
    let mut ws = node.ws().await;
    // A client id in the params is not a field of rpc.subscribe: it is ignored.
    assert_eq!(
        ws.call(
            "rpc.subscribe",
            json!({"topics": ["a"], "client_id": "ws_1_1"}),
            1
        )
        .await,
        success(json!({"subscribed": ["a"]}), json!(1))
    );
    assert_eq!(
        ws.call("rpc.subscribe", json!({"topics": "a"}), 2).await,
        error(
            -32602,
            "Invalid params: invalid type: string \"a\", expected a sequence",
            json!(2)
        )
    );
    assert_eq!(
        ws.call("rpc.subscribe", json!({"topics": [""]}), 3).await,
        error(
            -32602,
            "Invalid params: topic names must be 1 to 256 bytes",
            json!(3)
        )
    );
    ws.close().await;
}

#[tokio::test]
async fn order_is_kept_per_client_under_a_burst_of_10000() {
    let node = TestNode::start_with(&["probe"], |config| config.ws_queue_capacity = 20_000).await;
    let mut clients = vec![node.ws().await, node.ws().await, node.ws().await];
    let burst = node.call("burst", json!({"count": 10_000})).await;
    assert_eq!(burst["result"], json!({"queued": 30_000}));
    for ws in &mut clients {
        for n in 0..10_000 {
            let message = ws.recv().await;
            assert_eq!(message["params"]["n"], n, "out of order");
        }
        ws.assert_quiet().await;
    }
}

/// The node runs as the binary, in a process of its own, so that its
/// resident memory is its own and not that of the tests running beside it.
#[tokio::test]
async fn a_stalled_client_is_evicted_while_100_others_keep_receiving() {
    let dir = plugins_dir(&["probe"]);
    let (child, address) = start(dir.path(), &["--ws-queue-capacity", "64"]).await;
    let pid = child.id().expect("running");
    let ws_url = format!("{}/ws", address.replacen("http", "ws", 1));
    let call = async |method: &str, params: Value| {
        binary::call(
            &address,
            &request(method, params, json!(1)).to_string(),
            &[],
        )
        .await
    };
    let mut stalled = ws_connect(&ws_url, &[]).await;
    let stalled_id = stalled.client_id().await;
    let mut others = Vec::new();
    for _ in 0..100 {
        others.push(ws_connect(&ws_url, &[]).await);
    }
    let before = resident_kib(pid);

    // 100,000 notifications of 16 KiB would be 1.6 GB if nothing gave way.
    let flood = call(
        "flood",
        json!({"client_id": stalled_id, "count": 100_000, "size": 16_384}),
    )
    .await;
    // The stalled client reads again as soon as it is evicted: the server
    // gives a close frame a second to get through, so it finds the close
    // (1008) after what was already in flight.
    let closed = tokio::spawn(within(async move {
        while let Some(frame) = stalled.stream.next().await {
            if let Ok(Message::Close(frame)) = frame {
                return frame.map(|frame| u16::from(frame.code));
            }
        }
        None
    }));
    let queued = flood["result"]["queued"].as_u64().unwrap();
    assert!(queued < 100_000, "the stalled client was never evicted");
    assert_eq!(
        flood["result"]["error"],
        format!("client \"{stalled_id}\" is too slow and was disconnected")
    );
    let grown_mib = resident_kib(pid).saturating_sub(before) / 1024;
    assert!(grown_mib < 512, "memory grew by {grown_mib} MiB");
    let metrics = within(
        within(reqwest::get(format!("{address}/metrics")))
            .await
            .unwrap()
            .text(),
    )
    .await
    .unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line == "rpcnode_slow_client_disconnects_total 1"),
        "{metrics}"
    );

    for n in 0..10 {
        let queued = call("notify", json!({"method": "tick", "params": {"n": n}})).await;
        assert_eq!(queued["result"], json!({"queued": 100}));
    }
    for ws in &mut others {
        for n in 0..10 {
            assert_eq!(
                ws.recv().await,
                json!({"jsonrpc": "2.0", "method": "tick", "params": {"n": n}})
            );
        }
    }
    let listed: HashSet<String> =
        serde_json::from_value(call("list_clients", json!([])).await["result"].clone()).unwrap();
    assert_eq!(listed.len(), 100);
    assert!(!listed.contains(&stalled_id));

    assert_eq!(closed.await.unwrap(), Some(1008));
    terminate(child).await;
}

#[tokio::test]
async fn the_host_can_greet_each_client_with_its_id() {
    let node = TestNode::start_with(&["probe"], |config| config.welcome = true).await;
    let mut ws = node.ws().await;
    let welcome = ws.recv().await;
    assert_eq!(welcome["method"], "welcome");
    let id = welcome["params"]["client_id"].as_str().unwrap().to_owned();
    assert_eq!(ws.client_id().await, id);
}
