//! The dashboard: its data over real HTTP (state, the live tail, who may
//! see them), and the page itself in a real headless Chromium driven by
//! playwright-core: the example plugins listed, a notification appearing
//! live, methods called through the form (with the JavaScript client
//! library), and a screenshot.

use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{TestNode, within};

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = within(request.send()).await.unwrap();
    let status = response.status().as_u16();
    (status, within(response.text()).await.unwrap())
}

#[tokio::test]
async fn the_state_lists_plugins_methods_counts_and_clients() {
    let node = TestNode::start_with(&["calculator", "pubsub"], |config| {
        config.dashboard = true;
        std::fs::write(config.plugins_dir.join("garbage.wasm"), b"this is not wasm").unwrap();
    })
    .await;
    let mut ws = node.ws().await;
    ws.call("rpc.subscribe", json!({"topics": ["news", "sport"]}), 1)
        .await;
    node.call("add", json!([1, 2])).await;
    node.call("add", json!([3, 4])).await;
    node.call("divide", json!([1, 0])).await;

    let (status, text) = get(&node.url("/dashboard/state"), None).await;
    assert_eq!(status, 200, "{text}");
    let state: Value = serde_json::from_str(&text).unwrap();
    let plugins: Vec<&str> = state["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(plugins, ["calculator", "pubsub"]);
    let failed = state["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("garbage.wasm")
    );
    assert!(!failed[0]["reason"].as_str().unwrap().is_empty());
    let add = state["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "add")
        .unwrap();
    assert_eq!(
        add,
        &json!({"name": "add", "summary": "Add two numbers", "plugin": "calculator", "notification": false})
    );
    let requests = state["requests"].as_array().unwrap();
    let count = |method: &str| {
        requests
            .iter()
            .find(|r| r["method"] == method)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (count("add")["ok"].clone(), count("add")["error"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(
        (
            count("divide")["ok"].clone(),
            count("divide")["error"].clone()
        ),
        (json!(0), json!(1))
    );
    assert!(count("add")["total_us"].as_u64().is_some());
    let clients = state["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(clients[0]["connected"], true);
    assert_eq!(clients[0]["session"], false);
    let mut topics: Vec<&str> = clients[0]["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    topics.sort_unstable();
    assert_eq!(topics, ["news", "sport"]);

    let (status, page) = get(&node.url("/dashboard"), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>rpcnode dashboard</title>"));
    let (status, script) = get(&node.url("/dashboard/client.js"), None).await;
    assert_eq!(status, 200);
    assert!(script.contains("export class RpcClient"));
}

#[tokio::test]
async fn the_tail_streams_every_notification_delivered() {
    let node = TestNode::start_with(&["pubsub"], |config| config.dashboard = true).await;
    let mut ws = node.ws().await;
    ws.call("rpc.subscribe", json!({"topics": ["news"]}), 1)
        .await;
    let mut response = within(reqwest::get(node.url("/dashboard/tail")))
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let chunk = within(response.chunk()).await.unwrap().unwrap();
    let mut text = String::from_utf8(chunk.to_vec()).unwrap();
    assert_eq!(text, ": watching\n\n");
    node.call("publish", json!({"topic": "news", "message": "hello"}))
        .await;
    text.clear();
    while !text.ends_with("\n\n") {
        let chunk = within(response.chunk()).await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let data: Value =
        serde_json::from_str(text.strip_prefix("data: ").unwrap().trim_end()).unwrap();
    assert_eq!(data["stream"], "topic:news");
    assert_eq!(data["notification"]["method"], "news");
    assert_eq!(data["notification"]["params"]["message"], "hello");
    assert_eq!(ws.recv().await["params"]["message"], "hello");
}

#[tokio::test]
async fn the_dashboard_is_off_by_default_and_guarded_when_on() {
    let node = TestNode::start(&["calculator"]).await;
    for path in ["/dashboard", "/dashboard/state", "/dashboard/tail"] {
        assert_eq!(get(&node.url(path), None).await.0, 404, "{path}");
    }

    // With an admin token the data needs it; the page (which holds no data) does not.
    const TOKEN: &str = "0123456789abcdef0123";
    let node = TestNode::start_with(&["calculator"], |config| {
        config.dashboard = true;
        config.admin_token = Some(TOKEN.into());
    })
    .await;
    for path in ["/dashboard/state", "/dashboard/tail"] {
        assert_eq!(get(&node.url(path), None).await.0, 401, "{path}");
        assert_eq!(
            get(&node.url(path), Some("wrong-token-0123456")).await.0,
            401,
            "{path}"
        );
    }
    assert_eq!(get(&node.url("/dashboard/state"), Some(TOKEN)).await.0, 200);
    assert_eq!(get(&node.url("/dashboard"), None).await.0, 200);

    // Without a token, only loopback callers: this machine's own
    // non-loopback address is refused.
    let node = TestNode::start_with(&["calculator"], |config| {
        config.dashboard = true;
        config.host = "0.0.0.0".into();
    })
    .await;
    let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
    probe
        .connect("192.0.2.255:9")
        .or_else(|_| probe.connect("10.255.255.255:9"))
        .unwrap();
    let own: IpAddr = probe.local_addr().unwrap().ip();
    assert!(
        !own.is_loopback(),
        "this machine needs a non-loopback address: {own}"
    );
    let port = node.server.local_addr().port();
    for path in ["/dashboard", "/dashboard/state", "/dashboard/tail"] {
        let (status, text) = get(&format!("http://{own}:{port}{path}"), None).await;
        assert_eq!(status, 403, "{path}");
        assert!(
            text.contains("only loopback callers unless an admin token is set"),
            "{text}"
        );
    }
    for path in ["/dashboard", "/dashboard/state"] {
        assert_eq!(
            get(&format!("http://127.0.0.1:{port}{path}"), None).await.0,
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_page_works_in_a_real_browser() {
    let node = TestNode::start_with(&["calculator", "data_service", "users"], |config| {
        config.dashboard = true
    })
    .await;
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let shot = tempfile::tempdir().unwrap();
    let screenshot = shot.path().join("dashboard.png");
    let run = Command::new("node")
        .env("NODE_PATH", root.join("target/toolchains/js/node_modules"))
        .arg(root.join("tests/browser/dashboard.mjs"))
        .arg(node.url("/dashboard"))
        .arg(&screenshot)
        .kill_on_drop(true)
        .output();
    // Starting a browser takes seconds: one bound for the whole run.
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser run timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        seen["plugins"],
        json!(["calculator", "data_service", "users"])
    );
    assert_eq!(
        seen["tail"],
        json!(r#"dataUpdated {"id":"7","value":"from the test"}"#)
    );
    assert_eq!(seen["tail_stream"], "broadcast");
    assert_eq!(seen["filtered"], json!([true, true, true]));
    assert_eq!(
        serde_json::from_str::<Value>(seen["answer"].as_str().unwrap()).unwrap(),
        json!({"sum": 5})
    );
    assert_eq!(
        seen["error"],
        "error -32602: Invalid params: Cannot divide by zero"
    );
    assert_eq!(
        seen["bad_params"],
        "params are not JSON: Expected property name or '}' in JSON at position 1 (line 1 column 2)"
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    if let Some(keep) = std::env::var_os("RPCNODE_DASHBOARD_SCREENSHOT") {
        std::fs::write(keep, png).unwrap();
    }
}
