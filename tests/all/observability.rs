//! `/metrics` in the Prometheus text format, and `/health`'s degraded state.

use serde_json::json;

use crate::support::{TestNode, within};

async fn metrics(node: &TestNode) -> String {
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
