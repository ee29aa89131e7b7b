//! The JavaScript and Python client libraries (`clients/`), each running the
//! same scenario script against the real binary: calls, errors, a timeout, a
//! batch, topic and method notifications through a connection cut in the
//! middle of a burst (nothing lost, nothing twice), a restart of the node
//! (resumed from its data folder), and a restart that loses the session
//! (the not-recovered event, then a new session subscribed again).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::binary::{start_with_env, terminate};
use crate::client_examples::line;
use crate::support::{Blinker, eventually, plugins_dir, send_mixed, within};

type Output = Lines<BufReader<ChildStdout>>;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The next line that is not a `topic` line (those are counted in `topics`).
async fn next(lines: &mut Output, topics: &mut Vec<u64>) -> Value {
    loop {
        let line = line(lines).await;
        match line.get("topic") {
            Some(_) => topics.push(line["n"].as_u64().unwrap()),
            None => return line,
        }
    }
}

/// Send `count` notifications by turns to the broadcast, topic `news` and
/// client `id`; check that the client printed each once, in order per
/// stream, and that the topic handler saw exactly the topic's. Returns the
/// events printed meanwhile.
async fn burst(
    address: &str,
    lines: &mut Output,
    id: &str,
    count: u64,
    mut halfway: impl FnMut(),
) -> Vec<Value> {
    let sent = send_mixed(address, id, count);
    let (mut seen, mut events, mut topics) = (Vec::new(), Vec::new(), Vec::new());
    while (seen.len() as u64) < count {
        let line = next(lines, &mut topics).await;
        match line.get("n") {
            Some(n) => {
                seen.push((
                    n.as_u64().unwrap(),
                    line["stream"].as_str().unwrap().to_owned(),
                ));
                if seen.len() as u64 == count / 6 {
                    halfway();
                }
            }
            None => events.push(line),
        }
    }
    assert_eq!(
        within(sent).await.unwrap()["result"],
        json!({"sent": count})
    );
    let numbers: BTreeSet<u64> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (0..count).collect(), "each once");
    for (rest, stream) in [
        (0, "broadcast".to_owned()),
        (1, "topic:news".to_owned()),
        (2, format!("client:{id}")),
    ] {
        let of_stream: Vec<u64> = seen
            .iter()
            .filter(|(n, _)| n % 3 == rest)
            .map(|(n, _)| *n)
            .collect();
        assert!(of_stream.is_sorted(), "{stream}: {of_stream:?}");
        assert!(
            seen.iter()
                .all(|(n, name)| n % 3 != rest || *name == stream),
            "{seen:?}"
        );
    }
    // The topic handler's lines for the last ones may follow the method lines.
    let published: Vec<u64> = (0..count).filter(|n| n % 3 == 1).collect();
    while topics.len() < published.len() {
        topics.push(line(lines).await["n"].as_u64().unwrap());
    }
    assert_eq!(topics, published);
    events
}

async fn runs_the_scenario(mut client: Command) {
    let plugins = plugins_dir(&["calculator", "probe"]);
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let (node, address) = start_with_env(plugins.path(), &["--data-dir", data_dir], &[]).await;
    let port = address.rsplit(':').next().unwrap().to_owned();
    let proxy = Blinker::start(address.trim_start_matches("http://").parse().unwrap()).await;
    let mut child = client
        .arg(format!("ws://{}/ws", proxy.address))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the client");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut topics = Vec::new();

    let connected = next(&mut lines, &mut topics).await;
    let id = connected["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        connected,
        json!({"event": "connected", "client_id": id, "resumed": false})
    );
    assert_eq!(
        next(&mut lines, &mut topics).await,
        json!({"event": "ready", "client_id": id, "subscribed": ["news"]})
    );
    for expected in [
        json!({"call": "add", "result": {"sum": 5}}),
        json!({"call": "divide", "error": {"code": -32602, "message": "Invalid params: Cannot divide by zero"}}),
        json!({"call": "nope", "error": {"code": -32601, "message": "Method not found: nope"}}),
        json!({"call": "slow", "failed": "TimeoutError"}),
        json!({"batch": [{"sum": 3}, {"code": -32601}]}),
    ] {
        assert_eq!(next(&mut lines, &mut topics).await, expected);
    }

    // A connection cut in the middle of a burst.
    let events = burst(&address, &mut lines, &id, 300, || proxy.blink()).await;
    assert_eq!(
        events,
        [
            json!({"event": "disconnected"}),
            json!({"event": "connected", "client_id": id, "resumed": true})
        ]
    );

    // A restart of the node: the session and history are in its data folder.
    let (code, _) = terminate(node).await;
    assert_eq!(code, Some(0));
    let port_env = [("RPCNODE_PORT", port.as_str())];
    let (node, _) = start_with_env(plugins.path(), &["--data-dir", data_dir], &port_env).await;
    assert_eq!(
        next(&mut lines, &mut topics).await,
        json!({"event": "disconnected"})
    );
    assert_eq!(
        next(&mut lines, &mut topics).await,
        json!({"event": "connected", "client_id": id, "resumed": true})
    );
    assert!(burst(&address, &mut lines, &id, 30, || {}).await.is_empty());

    // A restart that loses every session: the client says so, starts a new
    // session and subscribes it again.
    terminate(node).await;
    let (node, _) = start_with_env(plugins.path(), &["--in-memory"], &port_env).await;
    assert_eq!(
        next(&mut lines, &mut topics).await,
        json!({"event": "disconnected"})
    );
    let lost = next(&mut lines, &mut topics).await;
    assert_eq!(lost["event"], "not_recovered", "{lost}");
    let streams: BTreeSet<&str> = lost["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        streams,
        BTreeSet::from(["broadcast", "topic:news", format!("client:{id}").as_str()])
    );
    let connected = next(&mut lines, &mut topics).await;
    let new_id = connected["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        connected,
        json!({"event": "connected", "client_id": new_id, "resumed": false})
    );
    assert_ne!(new_id, id);
    let http = reqwest::Client::new();
    eventually(async || {
        let body = json!({"jsonrpc": "2.0", "method": "topic_subscribers", "params": {"topic": "news"}, "id": 1});
        let answer: Value = http.post(&address).json(&body).send().await.unwrap().json().await.unwrap();
        answer["result"] == json!([new_id])
    })
    .await;
    assert!(
        burst(&address, &mut lines, &new_id, 30, || {})
            .await
            .is_empty()
    );

    // A clean close when stdin ends.
    drop(child.stdin.take());
    assert_eq!(
        next(&mut lines, &mut topics).await,
        json!({"event": "closed"})
    );
    assert!(within(child.wait()).await.unwrap().success());
    terminate(node).await;
}

#[tokio::test]
async fn the_javascript_client_calls_resumes_and_reports_what_it_could_not_recover() {
    let mut node = Command::new("node");
    node.arg("--experimental-websocket")
        .arg(root().join("clients/js/test/scenario.mjs"));
    runs_the_scenario(node).await;
}

#[tokio::test]
async fn the_python_client_calls_resumes_and_reports_what_it_could_not_recover() {
    let mut python = Command::new(root().join("target/toolchains/python/venv/bin/python"));
    python.arg(root().join("clients/python/tests/scenario.py"));
    runs_the_scenario(python).await;
}
