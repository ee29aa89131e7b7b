//! The compile cache: a restart loads compiled code from disk, and a
//! corrupted entry is compiled again, never trusted.

use serde_json::json;

use crate::support::{TestNode, success};

async fn start(cache: &std::path::Path) -> TestNode {
    let cache = cache.to_path_buf();
    TestNode::start_with(&["calculator"], move |config| {
        config.cache_dir = Some(cache)
    })
    .await
}

fn counts(node: &TestNode) -> (u64, u64) {
    let cache = &node.server.node().cache;
    (cache.hits(), cache.misses())
}

#[tokio::test]
async fn restarts_hit_the_cache_and_corrupt_entries_are_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let first = start(cache.path()).await;
    assert_eq!(counts(&first), (0, 1));
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .extension()
            .is_some_and(|extension| extension == "cwasm")
    );

    let second = start(cache.path()).await;
    assert_eq!(counts(&second), (1, 0));
    assert_eq!(
        second.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );

    // Flip bytes in the middle of the compiled code.
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 16]
        .iter_mut()
        .for_each(|byte| *byte ^= 0xff);
    std::fs::write(&entries[0], bytes).unwrap();
    let third = start(cache.path()).await;
    assert_eq!(counts(&third), (0, 1));
    assert_eq!(
        third.call("add", json!([2, 2])).await,
        success(json!({"sum": 4}), json!(1))
    );

    // The rebuilt entry is sound again.
    let fourth = start(cache.path()).await;
    assert_eq!(counts(&fourth), (1, 0));

    std::fs::write(&entries[0], b"short").unwrap();
    let fifth = start(cache.path()).await;
    assert_eq!(counts(&fifth), (0, 1));
    assert_eq!(
        fifth.call("add", json!([3, 2])).await,
        success(json!({"sum": 5}), json!(1))
    );
}
