//! Background work and durable state: spawned calls, timers, cancellation on
//! shutdown, state that outlives instances, exact atomic counters.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{TestNode, eventually, plugin_config, success, within};

#[tokio::test]
async fn spawned_calls_run_later_with_no_client() {
    let node = TestNode::start(&["probe"]).await;
    let scheduled = node
        .call(
            "schedule",
            json!({"method": "background", "params": {"k": 1}, "delay_ms": 50}),
        )
        .await;
    assert_eq!(scheduled["result"], json!({"scheduled": true}));
    eventually(async || {
        node.hook_log()
            .await
            .iter()
            .any(|entry| entry.starts_with("background"))
    })
    .await;
    let log = node.hook_log().await;
    assert!(
        log.contains(&r#"background Background {"k":1}"#.to_owned()),
        "{log:?}"
    );

    let unknown = node
        .call(
            "schedule",
            json!({"method": "nope", "params": {}, "delay_ms": 0}),
        )
        .await;
    assert_eq!(
        unknown["result"],
        json!({"error": "plugin probe has no method \"nope\""})
    );
    let scalar = node
        .call(
            "schedule",
            json!({"method": "background", "params": 3, "delay_ms": 0}),
        )
        .await;
    assert_eq!(
        scalar["result"],
        json!({"error": "params must be a JSON object or array"})
    );
    // Internal methods are for background work only.
    assert_eq!(
        node.call("background", json!({})).await["error"]["code"],
        -32601
    );
}

#[tokio::test]
async fn spawned_calls_per_plugin_are_capped() {
    let node = TestNode::start_with(&["probe"], |config| config.max_background_calls = 3).await;
    for _ in 0..3 {
        let scheduled = node
            .call(
                "schedule",
                json!({"method": "background", "params": {}, "delay_ms": 60_000}),
            )
            .await;
        assert_eq!(scheduled["result"], json!({"scheduled": true}));
    }
    let refused = node
        .call(
            "schedule",
            json!({"method": "background", "params": {}, "delay_ms": 0}),
        )
        .await;
    assert_eq!(
        refused["result"],
        json!({"error": "plugin probe already has 3 background calls pending"})
    );
}

#[tokio::test]
async fn shutdown_cancels_pending_work_promptly() {
    let node = TestNode::start(&["probe", "heartbeat"]).await;
    for _ in 0..10 {
        node.call(
            "schedule",
            json!({"method": "background", "params": {}, "delay_ms": 600_000}),
        )
        .await;
    }
    let started = Instant::now();
    within(node.server.stop()).await.expect("a clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn jobs_report_progress_then_complete_or_fail() {
    let node = TestNode::start_with(
        &["jobs", "probe"],
        plugin_config("jobs", "[config]\nstep_delay_ms = 10\n"),
    )
    .await;
    let mut ws = node.ws().await;
    assert_eq!(
        ws.call("startJob", json!({"job_id": "j1"}), 1).await,
        success(
            json!({"success": true, "job_id": "j1", "status": "started"}),
            json!(1)
        )
    );
    for step in 1..=5 {
        assert_eq!(
            ws.recv().await,
            json!({"jsonrpc": "2.0", "method": "jobProgress",
                   "params": {"job_id": "j1", "step": step, "total": 5}})
        );
    }
    assert_eq!(
        ws.recv().await,
        json!({"jsonrpc": "2.0", "method": "jobComplete", "params": {"job_id": "j1", "result": "success"}})
    );

    ws.call("startJob", json!({"job_id": 2, "fail": true}), 2)
        .await;
    assert_eq!(ws.recv().await["params"]["step"], 1);
    assert_eq!(ws.recv().await["params"]["step"], 2);
    assert_eq!(
        ws.recv().await,
        json!({"jsonrpc": "2.0", "method": "jobFailed", "params": {"job_id": 2, "error": "step 3 failed"}})
    );

    // The seed's pattern: start over HTTP, naming the WebSocket client to tell.
    let client_id = ws.client_id().await;
    assert_eq!(
        node.call("startJob", json!({"job_id": 3, "client_id": client_id}))
            .await,
        success(
            json!({"success": true, "job_id": 3, "status": "started"}),
            json!(1)
        )
    );
    for step in 1..=5 {
        assert_eq!(ws.recv().await["params"]["step"], step);
    }
    assert_eq!(ws.recv().await["method"], "jobComplete");
}

#[tokio::test]
async fn large_file_progress_is_broadcast_chunk_by_chunk() {
    let node = TestNode::start_with(
        &["progress"],
        plugin_config("progress", "[config]\nchunk_delay_ms = 5\n"),
    )
    .await;
    let mut caller = node.ws().await;
    let mut watcher = node.ws().await;
    assert_eq!(
        caller
            .call(
                "processLargeFile",
                json!({"file_id": "f", "total_chunks": 4}),
                1
            )
            .await,
        success(
            json!({"success": true, "file_id": "f", "total_chunks": 4}),
            json!(1)
        )
    );
    for chunk in 1..=4 {
        let expected = json!({"jsonrpc": "2.0", "method": "progress",
            "params": {"file_id": "f", "progress": f64::from(chunk) / 4.0, "chunk": chunk, "total": 4}});
        assert_eq!(caller.recv().await, expected);
        assert_eq!(watcher.recv().await, expected);
    }
    assert_eq!(
        node.call(
            "processLargeFile",
            json!({"file_id": "f", "total_chunks": 0})
        )
        .await["error"]["message"],
        "Invalid params: /total_chunks: 0 is less than the minimum of 1"
    );
    // The seed's request, with no chunk count: 100 chunks.
    assert_eq!(
        node.call("processLargeFile", json!({"file_id": "g"})).await["result"]["total_chunks"],
        100
    );
}

#[tokio::test]
async fn timers_fire_at_their_interval() {
    let node = TestNode::start_with(
        &["heartbeat"],
        plugin_config("heartbeat", "[config]\ninterval_ms = 100\n"),
    )
    .await;
    let mut ws = node.ws().await;
    let mut stamps = Vec::new();
    for _ in 0..4 {
        let beat = ws.recv().await;
        assert_eq!(beat["method"], "heartbeat");
        assert_eq!(beat["params"]["status"], "ok");
        assert_eq!(beat["params"]["clients"], 1);
        stamps.push(beat["params"]["timestamp"].as_f64().unwrap());
    }
    for pair in stamps.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((0.05..2.0).contains(&gap), "heartbeats {gap} s apart");
    }
}

#[tokio::test]
async fn state_outlives_faulted_instances() {
    let node = TestNode::start(&["probe"]).await;
    assert_eq!(node.call("incr", json!({"key": "n"})).await["result"], 1);
    assert_eq!(
        node.call("fault_panic", json!([])).await["error"]["code"],
        -32603
    );
    assert_eq!(node.call("incr", json!({"key": "n"})).await["result"], 2);
    assert_eq!(
        node.call("state_read", json!({"key": "n"})).await["result"],
        2
    );
}

#[tokio::test]
async fn the_atomic_counter_is_exact_under_8_concurrent_writers() {
    let node = TestNode::start(&["probe"]).await;
    let writers = (0..8).map(|_| async {
        let mut ws = node.ws().await;
        for id in 0..250 {
            assert!(ws.call("incr", json!({"key": "hits"}), id).await["result"].is_i64());
        }
        ws.close().await;
    });
    futures_util::future::join_all(writers).await;
    assert_eq!(
        node.call("state_read", json!({"key": "hits"})).await["result"],
        2000
    );
}
