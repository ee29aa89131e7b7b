//! `/metrics` in the Prometheus text format, and `/health`'s degraded state.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{TestNode, plugin_config, plugins_dir, start_error, success, within};

/// The `/metrics` text, its content type checked.
pub async fn metrics(node: &TestNode) -> String {
    let response = within(reqwest::get(node.url("/metrics"))).await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    within(response.text()).await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_latency_clients_and_plugins() {
    let node = TestNode::start(&["calculator", "probe"]).await;
    node.call("add", json!([1, 2])).await;
    node.call("add", json!([1, 2])).await;
    node.call("divide", json!([1, 0])).await;
    node.call("no.such.method", json!([])).await;
    let mut ws = node.ws().await;
    ws.call("rpc.subscribe", json!({"topics": ["t"]}), 1).await;
    node.call("notify", json!({"method": "m", "params": {}}))
        .await;
    ws.recv().await;

    let text = metrics(&node).await;
    for line in [
        "rpcnode_requests_total{method=\"add\",outcome=\"ok\"} 2",
        "rpcnode_requests_total{method=\"divide\",outcome=\"error\"} 1",
        "rpcnode_requests_total{method=\"multiply\",outcome=\"ok\"} 0",
        "rpcnode_requests_total{method=\"unknown\",outcome=\"error\"} 1",
        "rpcnode_requests_total{method=\"rpc.subscribe\",outcome=\"ok\"} 1",
        "rpcnode_websocket_clients 1",
        "rpcnode_notifications_queued_total 1",
        "rpcnode_notifications_sent_total 1",
        "rpcnode_plugin_loads_total 2",
        "rpcnode_plugins_failed 0",
    ] {
        assert!(
            text.lines().any(|candidate| candidate == line),
            "missing {line:?} in\n{text}"
        );
    }
    let count = text
        .lines()
        .find_map(|line| line.strip_prefix("rpcnode_request_duration_seconds_count "))
        .unwrap();
    // Seven requests so far (the probe's own calls count too).
    assert!(count.parse::<u64>().unwrap() >= 6, "{count}");
    assert!(text.contains("# TYPE rpcnode_request_duration_seconds histogram"));
    assert!(
        text.contains("rpcnode_plugin_calls_total{plugin=\"calculator\"} 3"),
        "{text}"
    );
}

/// `text` as the Prometheus Python client's parser reads it: one JSON object
/// per sample. Panics with the parser's error if the text is malformed.
async fn parsed(text: &str) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let output = within(
        tokio::process::Command::new(root.join("target/toolchains/python/venv/bin/python"))
            .arg(root.join("tests/tools/parse-prometheus.py"))
            .arg(file.path())
            .output(),
    )
    .await
    .expect("running the parser");
    assert!(
        output.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    printed
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Method names with the characters the text format escapes keep `/metrics`
/// valid for a real parser, which reads the names back; a name with a line
/// feed is refused when the plugin loads, with the reason.
#[tokio::test]
async fn odd_method_names_keep_metrics_parseable() {
    let names = ["say\"hi\"", "back\\slash", "braces}{,="];
    let node = TestNode::start(&["odd_names"]).await;
    for method in names {
        assert_eq!(
            node.call(method, json!([])).await,
            success(json!(method), json!(1))
        );
    }
    let samples = parsed(&metrics(&node).await).await;
    for method in names {
        let labels = json!({"method": method, "outcome": "ok"});
        let sample = samples
            .iter()
            .find(|sample| sample["name"] == "rpcnode_requests_total" && sample["labels"] == labels)
            .unwrap_or_else(|| panic!("{labels} not in {samples:?}"));
        assert_eq!(sample["value"].as_f64(), Some(1.0), "{sample}");
    }
    let plugin_calls = samples
        .iter()
        .find(|sample| sample["name"] == "rpcnode_plugin_calls_total")
        .expect("rpcnode_plugin_calls_total");
    assert_eq!(plugin_calls["labels"], json!({"plugin": "odd_names"}));

    let refused = TestNode::start_with(
        &["odd_names"],
        plugin_config("odd_names", "[config]\nwith_newline = true\n"),
    )
    .await;
    assert_eq!(
        refused.get_json("/health").await["failed"][0]["reason"],
        "plugin odd_names: method name \"line\\nfeed\" must be 1 to 128 characters, none of \
         them whitespace or control characters"
    );
}

/// With an admin token, `/health` and `/metrics` answer only requests that
/// carry it; JSON-RPC is not affected.
#[tokio::test]
async fn an_admin_token_closes_health_and_metrics_to_everyone_else() {
    let token = "0123456789abcdef0123";
    let node = TestNode::start_with(&["calculator"], |config| {
        config.admin_token = Some(token.to_owned());
    })
    .await;
    let client = reqwest::Client::new();
    let get = async |path: &str, authorization: Option<&str>| {
        let mut request = client.get(node.url(path));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = within(request.send()).await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_owned());
        (status, challenge, within(response.text()).await.unwrap())
    };
    let refused = (
        401,
        Some("Bearer".to_owned()),
        "this needs the admin token: send Authorization: Bearer TOKEN\n".to_owned(),
    );
    for path in ["/health", "/metrics"] {
        assert_eq!(get(path, None).await, refused, "{path}");
        assert_eq!(get(path, Some("Bearer wrong")).await, refused, "{path}");
        assert_eq!(
            get(path, Some(token)).await,
            refused,
            "{path} without Bearer"
        );
        let bearer = format!("Bearer {token}0");
        assert_eq!(get(path, Some(&bearer)).await, refused, "{path} longer");
    }
    let bearer = format!("Bearer {token}");
    let (status, _, health) = get("/health", Some(&bearer)).await;
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["plugins"][0]["name"], "calculator");
    let (status, _, metrics) = get("/metrics", Some(&bearer)).await;
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|line| line == "rpcnode_plugins_failed 0"),
        "{metrics}"
    );
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
}

/// With an admin port, `/health` and `/metrics` are served there and no
/// longer on the public port; an admin port in use is a clear startup error.
#[tokio::test]
async fn health_and_metrics_can_have_a_port_of_their_own() {
    let node = TestNode::start_with(&["calculator"], |config| config.admin_port = Some(0)).await;
    let admin = node.server.admin_url().expect("an admin port");
    assert_ne!(admin, node.server.url());
    let status = async |url: String| within(reqwest::get(url)).await.unwrap().status().as_u16();
    for path in ["/health", "/metrics"] {
        assert_eq!(
            status(node.url(path)).await,
            404,
            "{path} on the public port"
        );
        assert_eq!(
            status(format!("{admin}{path}")).await,
            200,
            "{path} on the admin port"
        );
    }
    let health = crate::binary::health(&admin).await;
    assert_eq!(health["plugins"][0]["name"], "calculator");
    // JSON-RPC stays on the public port only.
    let body = json!({"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1});
    let on_admin = within(reqwest::Client::new().post(&admin).json(&body).send())
        .await
        .unwrap();
    assert_eq!(on_admin.status().as_u16(), 404);
    assert_eq!(node.post(&body).await, success(json!({"sum": 3}), json!(1)));

    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let error = start_error(plugins_dir(&["calculator"]).path(), move |config| {
        config.admin_port = Some(port);
    })
    .await;
    assert_eq!(
        error,
        format!(
            "127.0.0.1:{port} is already in use; stop the other server or pass --admin-port 0 to \
             pick a free port"
        )
    );
}
