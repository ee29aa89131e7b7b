//! The example clients of docs/protocol.md (`docs/examples/resume.mjs` and
//! `resume.py`), run for real: connected through a TCP proxy that the test
//! cuts in the middle of a burst, each reconnects, resumes, and prints every
//! notification once and in order.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::support::{Blinker, TestNode, send_mixed, success, within};

/// The next line the client printed, as JSON.
pub async fn line(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = within(lines.next_line())
        .await
        .unwrap()
        .expect("the client is still running");
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
}

async fn resumes_through_a_blink(mut client: Command) {
    let node = TestNode::start(&["probe"]).await;
    let proxy = Blinker::start(node.server.local_addr()).await;
    let mut client = client
        .arg(format!("ws://{}/ws?session", proxy.address))
        .arg("news")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the example client");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let opened = line(&mut lines).await;
    assert_eq!(opened["event"], "session", "{opened}");
    let id = opened["client_id"].as_str().unwrap().to_owned();
    assert_eq!(
        line(&mut lines).await,
        json!({"event": "subscribed", "topics": ["news"]})
    );

    const COUNT: u64 = 300;
    let burst = send_mixed(&node.url("/"), &id, COUNT);
    let mut notifications = Vec::new();
    let mut events = Vec::new();
    while (notifications.len() as u64) < COUNT {
        let line = line(&mut lines).await;
        if line.get("event").is_some() {
            events.push(line);
        } else {
            notifications.push(line);
        }
        if notifications.len() == 50 && events.is_empty() {
            proxy.blink();
        }
    }
    assert_eq!(
        within(burst).await.unwrap(),
        success(json!({"sent": COUNT}), json!(1))
    );
    assert_eq!(
        events,
        [json!({"event": "resumed", "client_id": id, "lost": []})]
    );
    let mut numbers = HashSet::new();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for message in &notifications {
        let n = message["params"]["n"].as_u64().unwrap();
        assert!(numbers.insert(n), "{n} printed twice");
        let stream = message["position"]["stream"].as_str().unwrap().to_owned();
        let offset = message["position"]["offset"].as_u64().unwrap();
        assert_eq!(offset, last.get(&stream).unwrap_or(&0) + 1, "on {stream}");
        last.insert(stream, offset);
    }
    assert_eq!(last.values().sum::<u64>(), COUNT);
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

#[tokio::test]
async fn the_javascript_example_resumes_through_a_blink() {
    let mut node = Command::new("node");
    node.arg("--experimental-websocket")
        .arg(examples().join("resume.mjs"));
    resumes_through_a_blink(node).await;
}

#[tokio::test]
async fn the_python_example_resumes_through_a_blink() {
    let python =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/toolchains/python/venv/bin/python");
    let mut client = Command::new(python);
    client.arg(examples().join("resume.py"));
    resumes_through_a_blink(client).await;
}
