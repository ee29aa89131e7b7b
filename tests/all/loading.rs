//! Loading plugins: conflicts, broken files and bad configuration are
//! reported with the file and the reason, and never stop the other plugins.

use serde_json::json;

use crate::support::{TestNode, plugin_config, plugins_dir, start_error, success};

/// The `failed` entries of `/health`, as (file name, reason).
async fn failures(node: &TestNode) -> Vec<(String, String)> {
    let health = node.get_json("/health").await;
    assert_eq!(health["status"], "degraded");
    health["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|failure| {
            let file = failure["file"].as_str().unwrap();
            let name = std::path::Path::new(file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, failure["reason"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_plugin_whose_method_is_taken_is_refused_and_the_first_keeps_serving() {
    let node = TestNode::start(&["calculator", "clash", "users"]).await;
    assert_eq!(
        failures(&node).await,
        [(
            "clash.wasm".to_owned(),
            "plugin clash: method add already registered by plugin calculator".to_owned()
        )]
    );
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
    let created = node
        .call("user.create", json!({"username": "A", "email": "a@b"}))
        .await;
    assert_eq!(created["result"]["user_id"], 1);
}

#[tokio::test]
async fn the_same_plugin_twice_is_refused() {
    let node = TestNode::start_with(&["calculator"], |config| {
        let dir = &config.plugins_dir;
        std::fs::copy(
            dir.join("calculator.wasm"),
            dir.join("later-calculator.wasm"),
        )
        .unwrap();
    })
    .await;
    let failed = failures(&node).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "later-calculator.wasm");
    assert!(
        failed[0].1.starts_with("plugin calculator from "),
        "{}",
        failed[0].1
    );
    assert!(failed[0].1.ends_with("calculator.wasm"), "{}", failed[0].1);
}

#[tokio::test]
async fn broken_files_are_reported_and_skipped() {
    let node = TestNode::start_with(&["calculator"], |config| {
        let dir = &config.plugins_dir;
        std::fs::write(dir.join("garbage.wasm"), b"this is not wasm").unwrap();
        // A valid core module, but not a component.
        std::fs::write(dir.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(dir.join("empty.wasm"), b"").unwrap();
        std::fs::write(dir.join("notes.txt"), b"ignored: not a .wasm file").unwrap();
    })
    .await;
    let failed = failures(&node).await;
    let names: Vec<&str> = failed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["core.wasm", "empty.wasm", "garbage.wasm"]);
    for (name, reason) in &failed {
        assert!(
            reason.starts_with("not a valid WebAssembly component"),
            "{name}: {reason}"
        );
    }
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
}

#[tokio::test]
async fn a_plugin_built_for_another_contract_version_is_told_to_rebuild() {
    let node = TestNode::start(&["calculator", "old_contract"]).await;
    assert_eq!(
        failures(&node).await,
        [(
            "old_contract.wasm".to_owned(),
            "the plugin was built for rpcnode:plugin@0.1.0, and this host speaks \
             rpcnode:plugin@0.3.1 (and 0.3.0): rebuild it against the current SDK or wit/plugin.wit"
                .to_owned()
        )]
    );
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
}

#[tokio::test]
async fn a_malformed_plugin_config_fails_that_plugin_only() {
    let node = TestNode::start_with(
        &["audit", "calculator"],
        plugin_config("audit", "[config]\ndeny_methods = [\n"),
    )
    .await;
    let failed = failures(&node).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "audit.wasm");
    assert!(
        failed[0].1.starts_with("reading ") && failed[0].1.contains("audit.toml"),
        "{}",
        failed[0].1
    );

    let node =
        TestNode::start_with(&["audit"], plugin_config("audit", "[limitz]\nmemory = 1\n")).await;
    let failed = failures(&node).await;
    assert!(
        failed[0].1.contains("unknown field `limitz`"),
        "{}",
        failed[0].1
    );
}

#[tokio::test]
async fn a_missing_plugins_folder_is_a_startup_error() {
    let dir = plugins_dir(&[]);
    let message = start_error(&dir.path().join("absent"), |_| {}).await;
    assert!(
        message.starts_with("reading plugins folder ") && message.contains("absent"),
        "{message}"
    );
}
