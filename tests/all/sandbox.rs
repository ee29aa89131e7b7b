//! The sandbox per call: memory caps, stack overflows, capabilities granted
//! only by configuration, and instance recycling.

use std::sync::Arc;

use rpcnode::plugin::MemoryBudget;
use serde_json::json;

use crate::support::{TestNode, plugin_config};

#[tokio::test]
async fn a_memory_bomb_and_a_stack_overflow_are_internal_errors() {
    let node = TestNode::start_with(
        &["probe", "calculator"],
        plugin_config("probe", "[limits]\nmemory_mib = 16\n"),
    )
    .await;
    node.assert_faults_are_contained(&["fault_alloc", "fault_recurse"])
        .await;
}

/// Every instance of every plugin draws its linear memory from one budget:
/// a memory bomb below its own cap (128 MiB) is stopped by the budget (48
/// MiB), its neighbours keep answering, and its memory comes back.
#[tokio::test]
async fn the_host_wide_memory_budget_contains_a_memory_bomb() {
    let node = TestNode::start_with(&["probe", "calculator"], |config| {
        config.plugins.memory_budget = Arc::new(MemoryBudget::new(48 << 20));
    })
    .await;
    let budget = &node.server.node().config.plugins.memory_budget;
    node.call("echo", json!([])).await;
    node.call("add", json!([1, 1])).await;
    let warm = budget.used();
    assert!(warm > 0 && warm < 48 << 20, "{warm}");
    node.assert_faults_are_contained(&["fault_alloc"]).await;
    // The bomb's instance was discarded and a fresh one answered `echo`.
    assert_eq!(budget.used(), warm);
    let metrics = crate::observability::metrics(&node).await;
    for line in [
        format!("rpcnode_plugin_memory_bytes {warm}"),
        format!("rpcnode_plugin_memory_budget_bytes {}", 48 << 20),
    ] {
        assert!(
            metrics.lines().any(|got| got == line),
            "{line} in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn plugins_see_no_environment_and_no_files_unless_granted() {
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("note.txt"), "granted").unwrap();
    let path = secret.path().join("note.txt");
    let path = path.to_str().unwrap();

    // The host's own environment and files do not leak in.
    let node = TestNode::start(&["probe"]).await;
    let seen = node.call("peek", json!(["HOME", path])).await["result"].clone();
    assert_eq!(seen["env"], serde_json::Value::Null);
    assert!(seen["file"]["Err"].is_string(), "{seen}");

    let grants = format!(
        "[grants]\nenv = {{ GREETING = \"hi\" }}\ndirs = [{{ host = \"{}\", guest = \"/data\" }}]\n",
        secret.path().display()
    );
    let node = TestNode::start_with(&["probe"], |config| {
        std::fs::write(config.plugins_dir.join("probe.toml"), grants).unwrap();
    })
    .await;
    let seen = node
        .call("peek", json!(["GREETING", "/data/note.txt"]))
        .await["result"]
        .clone();
    assert_eq!(seen, json!({"env": "hi", "file": {"Ok": "granted"}}));
}

#[tokio::test]
async fn a_bad_sandbox_setting_fails_the_load_with_the_file_named() {
    let node = TestNode::start_with(
        &["probe"],
        plugin_config("probe", "[limits]\nmemory_mib = 0\n"),
    )
    .await;
    let health = node.get_json("/health").await;
    let reason = health["failed"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("in ")
            && reason.contains("probe.toml: limits.memory_mib must be 1 to 4096, not 0"),
        "{reason}"
    );
}

#[tokio::test]
async fn instances_are_reused_and_recycled_after_the_configured_calls() {
    let node = TestNode::start(&["probe"]).await;
    assert_eq!(node.call("instance_calls", json!([])).await["result"], 1);
    // Sequential calls reuse the warm instance: its global keeps counting.
    assert_eq!(node.call("instance_calls", json!([])).await["result"], 2);
    assert_eq!(node.call("instance_calls", json!([])).await["result"], 3);

    // Each request is three calls on the probe: its before-request hook, the
    // handler and its after-request hook. Six calls are two requests.
    let node = TestNode::start_with(
        &["probe"],
        plugin_config("probe", "[limits]\nrecycle_after_calls = 6\n"),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(
            node.call("instance_calls", json!([])).await["result"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(seen, [1, 2, 1, 2, 1]);
}
