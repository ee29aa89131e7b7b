//! Hot reload: new, changed, broken and removed plugin files, with no failed
//! request while a plugin is replaced under load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::json;

use crate::support::{TestNode, error, eventually, plugin_file, success};

async fn watched(plugins: &[&str]) -> TestNode {
    TestNode::start_with(plugins, |config| config.watch = true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_while_a_plugin_is_replaced_20_times_under_load() {
    let node = watched(&["calculator"]).await;
    let running = AtomicBool::new(true);
    let answered = AtomicU64::new(0);
    let load = |client: usize| {
        let (node, running, answered) = (&node, &running, &answered);
        async move {
            let mut ws = node.ws().await;
            let mut id = 0u64;
            while running.load(Ordering::Relaxed) {
                id += 1;
                let (a, b) = (id as i64, client as i64);
                // Alternate transports: half the clients use HTTP, half WebSocket.
                let answer = if client.is_multiple_of(2) {
                    node.call("add", json!([a, b])).await
                } else {
                    ws.call("add", json!({"a": a, "b": b}), id).await
                };
                let result = &answer["result"];
                let old = json!({"sum": a + b});
                let new = json!({"sum": a + b, "version": 2});
                assert!(
                    *result == old || *result == new,
                    "client {client}: unexpected answer {answer}"
                );
                answered.fetch_add(1, Ordering::Relaxed);
            }
            ws.close().await;
        }
    };
    let swaps = async {
        let mut latencies = Vec::new();
        for round in 0..20u32 {
            let (plugin, version) = if round.is_multiple_of(2) {
                ("calculator_v2", "2.0.0")
            } else {
                ("calculator", "0.1.0")
            };
            let written = Instant::now();
            node.put_plugin(plugin, "calculator.wasm");
            eventually(async || {
                node.plugin_version("calculator").await.as_deref() == Some(version)
            })
            .await;
            latencies.push(written.elapsed());
        }
        running.store(false, Ordering::Relaxed);
        latencies
    };
    let (latencies, ..) = tokio::join!(swaps, load(0), load(1), load(2), load(3));
    assert!(
        answered.load(Ordering::Relaxed) > 100,
        "too little load: {answered:?}"
    );
    latencies
        .iter()
        .for_each(|latency| eprintln!("reload observed after {latency:?}"));
}

#[tokio::test]
async fn a_broken_file_over_a_good_plugin_leaves_the_old_version_serving() {
    let node = watched(&["calculator"]).await;
    std::fs::write(node.plugins_path().join("calculator.wasm"), b"\0asm broken").unwrap();
    eventually(async || node.get_json("/health").await["status"] == "degraded").await;
    let health = node.get_json("/health").await;
    assert!(
        health["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a valid WebAssembly component")
    );
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );

    node.put_plugin("calculator_v2", "calculator.wasm");
    eventually(async || node.plugin_version("calculator").await.as_deref() == Some("2.0.0")).await;
    assert_eq!(node.get_json("/health").await["status"], "ok");
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3, "version": 2}), json!(1))
    );
}

#[tokio::test]
async fn removed_plugins_stop_answering_and_come_back_with_their_state() {
    let node = watched(&["users"]).await;
    let created = node
        .call(
            "user_create",
            json!({"username": "Kim", "email": "kim@example.com"}),
        )
        .await;
    assert_eq!(created["result"]["user_id"], 1);

    std::fs::remove_file(node.plugins_path().join("users.wasm")).unwrap();
    eventually(async || node.plugin_version("users").await.is_none()).await;
    assert_eq!(
        node.call("user_get", json!([1])).await,
        error(-32601, "Method not found: user_get", json!(1))
    );

    node.put_plugin("users", "users.wasm");
    eventually(async || node.plugin_version("users").await.is_some()).await;
    assert_eq!(
        node.call("user_get", json!([1])).await,
        success(json!({"user_id": 1, "username": "Kim"}), json!(1))
    );
}

#[tokio::test]
async fn new_files_load_and_conflicting_or_foreign_ones_are_refused() {
    let node = watched(&["calculator"]).await;
    node.put_plugin("users", "users.wasm");
    node.put_plugin("clash", "clash.wasm");
    node.put_plugin("wrong_world", "wrong_world.wasm");
    eventually(async || node.plugin_version("users").await.is_some()).await;
    eventually(async || {
        node.get_json("/health").await["failed"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    let health = node.get_json("/health").await;
    let reasons: Vec<&str> = health["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons[0],
        "plugin clash: method add already registered by plugin calculator"
    );
    assert!(
        reasons[1].starts_with("the component's imports do not match")
            || reasons[1].starts_with("the component does not export"),
        "{}",
        reasons[1]
    );
    assert_eq!(
        node.call("add", json!([2, 2])).await,
        success(json!({"sum": 4}), json!(1))
    );
    assert_eq!(
        node.call("user.get", json!([5])).await["error"]["code"],
        404
    );
}

/// Two files with the same plugin: the one whose name sorts first serves,
/// whether it arrived later or was there at startup; the other serves again
/// once the first is gone.
#[tokio::test]
async fn file_name_order_decides_which_of_two_files_serves_a_plugin() {
    let first = success(json!({"sum": 3}), json!(1));
    let second = success(json!({"sum": 3, "version": 2}), json!(1));
    let node = watched(&[]).await;
    node.put_plugin("calculator", "z-calculator.wasm");
    eventually(async || node.call("add", json!([1, 2])).await == first).await;

    node.put_plugin("calculator_v2", "a-calculator.wasm");
    eventually(async || node.call("add", json!([1, 2])).await == second).await;
    let health = node.get_json("/health").await;
    let failed = health["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{health}");
    let (file, reason) = (
        failed[0]["file"].as_str().unwrap(),
        failed[0]["reason"].as_str().unwrap(),
    );
    assert!(file.ends_with("/z-calculator.wasm"), "{file}");
    assert!(
        reason.starts_with("plugin calculator from ")
            && reason.contains("/z-calculator.wasm is already loaded from ")
            && reason.ends_with("/a-calculator.wasm"),
        "{reason}"
    );

    std::fs::remove_file(node.plugins_path().join("a-calculator.wasm")).unwrap();
    eventually(async || node.call("add", json!([1, 2])).await == first).await;
    assert_eq!(node.get_json("/health").await["failed"], json!([]));

    // A start with both files gives the same answer as the rescan did.
    let files = [
        ("calculator", "z-calculator.wasm"),
        ("calculator_v2", "a-calculator.wasm"),
    ];
    let restarted = TestNode::start_with(&[], |config| {
        for (plugin, file) in files {
            std::fs::copy(plugin_file(plugin), config.plugins_dir.join(file)).unwrap();
        }
    })
    .await;
    assert_eq!(restarted.call("add", json!([1, 2])).await, second);
}
