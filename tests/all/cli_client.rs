//! The client commands of the real binary against a real node: `rpcnode call`
//! over HTTP, WebSocket and HTTPS, `rpcnode discover`, and `rpcnode listen`
//! resuming through a dropped connection.

use std::collections::BTreeMap;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt as _, BufReader};

use crate::binary::rpcnode;
use crate::client_examples::line;
use crate::support::{Blinker, TestNode, eventually, send_mixed, within};

/// Run `rpcnode ARGS` with `stdin`; its exit code, stdout and stderr.
async fn client(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = rpcnode()
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("starting rpcnode");
    let mut input = child.stdin.take().unwrap();
    within(input.write_all(stdin.as_bytes())).await.unwrap();
    drop(input);
    let output = within(child.wait_with_output()).await.unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn call_prints_results_and_errors_over_http_and_websocket() {
    let node = TestNode::start(&["calculator", "events"]).await;
    let http = node.url("/");
    let ws = format!("ws://{}/ws", node.server.local_addr());
    let sum = "{\n  \"sum\": 5\n}\n";
    assert_eq!(
        client(&["call", &http, "add", "a=2", "b=3"], "").await,
        (Some(0), sum.into(), String::new())
    );
    assert_eq!(
        client(&["call", &ws, "add", "[2, 3]", "--raw"], "").await,
        (Some(0), "{\"sum\":5}\n".into(), String::new())
    );
    assert_eq!(
        client(
            &["call", &http, "add", "-", "--raw"],
            "{\"a\": 2, \"b\": 3}"
        )
        .await
        .1,
        "{\"sum\":5}\n"
    );
    let params = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(params.path(), "{\"a\": 2.5, \"b\": 3}").unwrap();
    let file = format!("@{}", params.path().display());
    assert_eq!(
        client(&["call", &http, "add", &file, "--raw"], "").await.1,
        "{\"sum\":5.5}\n"
    );

    // A JSON-RPC error: on stderr, exit code 1.
    let (code, stdout, stderr) =
        client(&["call", &http, "divide", "a=1", "b=0", "--raw"], "").await;
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        serde_json::from_str::<Value>(&stderr).unwrap(),
        json!({"code": -32602, "message": "Invalid params: Cannot divide by zero"})
    );

    // Notifications over both transports reach the plugin; nothing is printed.
    for url in [&http, &ws] {
        let args = [
            "call",
            url.as_str(),
            "analytics.track",
            "--notify",
            "event={\"userId\": \"u1\", \"eventType\": \"click\"}",
        ];
        assert_eq!(
            client(&args, "").await,
            (Some(0), String::new(), String::new())
        );
    }
    eventually(async || {
        node.call("event_counts", json!({})).await["result"]["analytics.track"] == 2
    })
    .await;

    // A batch: every answer printed; an error among them makes exit code 1.
    let batch = r#"[{"method": "add", "params": [1, 2], "id": "one"},
                    {"method": "analytics.track", "params": {"event": {"userId": "u1", "eventType": "signup"}}},
                    {"method": "multiply", "params": {"a": 2, "b": 4}, "id": "two"}]"#;
    let (code, stdout, _) = client(&["call", &http, "--batch", "-", "--raw"], batch).await;
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap(),
        json!([{"jsonrpc": "2.0", "result": {"sum": 3}, "id": "one"},
               {"jsonrpc": "2.0", "result": {"product": 8}, "id": "two"}])
    );
    let failing = r#"[{"method": "nope", "id": 1}]"#;
    let (code, _, stderr) = client(&["call", &ws, "--batch", "-", "--raw"], failing).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        serde_json::from_str::<Value>(&stderr).unwrap()["code"],
        -32601
    );
}

#[tokio::test]
async fn call_refuses_bad_input_with_exit_code_2_and_unreachable_nodes_with_3() {
    let node = TestNode::start(&["calculator"]).await;
    let http = node.url("/");
    let missing = "@/nonexistent/params.json";
    for (args, stdin, expected) in [
        (
            vec!["add", "7"],
            "",
            "params must be an object or an array, not 7",
        ),
        (vec!["add", "a=1", "b"], "", "\"b\" is not key=value"),
        (vec!["add", "{broken"], "", "are not JSON"),
        (vec!["add", "-"], "not json", "stdin is not JSON"),
        (vec!["add", missing], "", "reading /nonexistent/params.json"),
        (
            vec!["--batch", "-"],
            "{}",
            "a --batch file holds a JSON array of requests",
        ),
        (
            vec!["--batch", "-"],
            "[{\"id\": 1}]",
            "item 0 of the --batch file is not a request object",
        ),
        (
            vec!["add", "--header", "no colon"],
            "",
            "--header \"no colon\" is not `NAME: VALUE`",
        ),
        (
            vec!["add", "--timeout", "0"],
            "",
            "--timeout must be a number of seconds above 0",
        ),
        (
            vec!["add", "--cacert", "/nonexistent/ca.pem"],
            "",
            "reading CA file /nonexistent/ca.pem",
        ),
    ] {
        let args: Vec<&str> = ["call", http.as_str()].into_iter().chain(args).collect();
        let (code, stdout, stderr) = client(&args, stdin).await;
        assert_eq!((code, stdout.as_str()), (Some(2), ""), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = client(&["call", "node:8000", "add"], "").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("must start with http://, https://, ws:// or wss://"),
        "{stderr}"
    );
    let (code, _, stderr) = client(&["call"], "").await;
    assert_eq!(code, Some(2), "{stderr}");

    // Nothing listens on a port just freed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for url in [format!("http://{closed}/"), format!("ws://{closed}/ws")] {
        let (code, _, stderr) = client(&["call", &url, "add"], "").await;
        assert_eq!(code, Some(3), "{stderr}");
        assert!(
            stderr.contains("Connection refused") || stderr.contains("connecting to"),
            "{stderr}"
        );
    }
    // A server that does not answer JSON-RPC.
    let (code, _, stderr) = client(&["call", &node.url("/health"), "add"], "").await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("without a JSON-RPC answer"), "{stderr}");
}

#[tokio::test]
async fn discover_lists_the_methods_as_a_table_and_as_json() {
    let node = TestNode::start(&["calculator", "events"]).await;
    let (code, table, stderr) = client(&["discover", &node.url("/")], "").await;
    assert_eq!(code, Some(0), "{stderr}");
    let rows: BTreeMap<&str, Vec<&str>> = table
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect();
            (cells[0], cells[1..].to_vec())
        })
        .collect();
    assert_eq!(rows["METHOD"], ["PARAMS", "KIND", "SUMMARY"]);
    assert_eq!(
        rows["add"],
        ["a?: number, b?: number", "call", "Add two numbers"]
    );
    assert_eq!(
        rows["analytics.track"],
        [
            "event: object",
            "notification",
            "Track user analytics event"
        ]
    );
    assert_eq!(rows["rpc.unsubscribe"][..2], ["topics: array", "call"]);

    let ws = format!("ws://{}/ws", node.server.local_addr());
    let (code, document, _) = client(&["discover", &ws, "--json"], "").await;
    assert_eq!(code, Some(0));
    let document: Value = serde_json::from_str(&document).unwrap();
    assert_eq!(document, node.get_json("/openrpc.json").await);
}

#[tokio::test]
async fn listen_prints_each_notification_once_in_order_through_a_dropped_connection() {
    let node = TestNode::start_with(&["probe"], |config| config.welcome = true).await;
    let proxy = Blinker::start(node.server.local_addr()).await;
    let url = format!("ws://{}/ws", proxy.address);
    let mut listener = rpcnode()
        .args([
            "listen", &url, "--topics", "news", "--method", "seq", "--method", "welcome",
        ])
        .spawn()
        .expect("starting rpcnode listen");
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let welcome = line(&mut lines).await;
    assert_eq!(welcome["method"], "welcome", "{welcome}");
    let id = welcome["params"]["client_id"].as_str().unwrap().to_owned();
    eventually(async || {
        node.call("topic_subscribers", json!({"topic": "news"}))
            .await["result"]
            == json!([id])
    })
    .await;

    const COUNT: u64 = 300;
    let burst = send_mixed(&node.url("/"), &id, COUNT);
    let mut seen = Vec::new();
    while (seen.len() as u64) < COUNT {
        let message = line(&mut lines).await;
        assert_eq!(message["method"], "seq", "{message}");
        seen.push(message["params"]["n"].as_u64().unwrap());
        if seen.len() == 50 {
            proxy.blink();
        }
    }
    assert_eq!(
        within(burst).await.unwrap()["result"],
        json!({"sent": COUNT})
    );
    // Every notification once; within each stream, in order.
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..COUNT).collect::<Vec<_>>());
    for stream in 0..3 {
        let of_stream: Vec<u64> = seen.iter().copied().filter(|n| n % 3 == stream).collect();
        assert!(of_stream.is_sorted(), "stream {stream}: {of_stream:?}");
    }

    // Ctrl-C ends it cleanly; it said it reconnected.
    let pid = listener.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let output = within(listener.wait_with_output()).await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reconnecting"), "{stderr}");
    assert!(!stderr.contains("could not be recovered"), "{stderr}");
}

#[tokio::test]
async fn listen_refuses_a_url_that_is_not_a_node() {
    let (code, _, stderr) = client(&["listen", "ftp://example.com/"], "").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("listen needs ws://HOST:PORT/ws"),
        "{stderr}"
    );
}
