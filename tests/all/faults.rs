//! Misbehaving plugins: a panic, a trap or an endless loop costs the caller
//! an error and nothing else.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestNode, error, success};

#[tokio::test]
async fn panics_and_traps_are_internal_errors_and_the_host_carries_on() {
    let node = TestNode::start(&["calculator", "probe"]).await;
    node.assert_faults_are_contained(&["fault_panic", "fault_trap"])
        .await;
    let mut ws = node.ws().await;
    assert_eq!(
        ws.call("fault_panic", json!([]), 3).await,
        error(-32603, "Internal error: plugin probe failed", json!(3))
    );
    assert_eq!(
        ws.call("add", json!([2, 3]), 4).await,
        success(json!({"sum": 5}), json!(4))
    );
    ws.close().await;
}

#[tokio::test]
async fn an_endless_loop_times_out_while_everyone_else_is_served() {
    let node = TestNode::start_with(&["calculator", "probe"], |config| {
        config.request_timeout = Duration::from_millis(1500);
    })
    .await;
    let spinning = node.call("fault_spin", json!([]));
    let others = async {
        // While the loop runs, other requests are answered.
        for n in 0..20 {
            assert_eq!(
                node.call("add", json!([n, 1])).await,
                success(json!({"sum": n + 1}), json!(1))
            );
        }
    };
    let (spun, ()) = tokio::join!(spinning, others);
    assert_eq!(
        spun,
        error(
            -32000,
            "Server error: request timed out after 1.5s (request_timeout)",
            json!(1)
        )
    );
    assert_eq!(
        node.call("echo", json!([])).await["result"]["method"],
        "echo"
    );
    assert_eq!(
        node.get_json("/health").await["pending_requests"],
        Value::from(0)
    );
}

/// A plugin waiting in a host function (here WASI's clock, as a guest's
/// `sleep` or an event loop waiting on a timer does) is stopped at the
/// deadline too, and its instance is replaced.
#[tokio::test]
async fn a_call_asleep_past_the_deadline_times_out() {
    let node = TestNode::start_with(&["probe"], |config| {
        config.request_timeout = Duration::from_millis(1000);
    })
    .await;
    let started = std::time::Instant::now();
    assert_eq!(
        node.call("sleep", json!([60_000])).await,
        error(
            -32000,
            "Server error: request timed out after 1s (request_timeout)",
            json!(1)
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        node.call("sleep", json!([1])).await,
        success(json!({"slept_ms": 1}), json!(1))
    );
    assert_eq!(
        node.get_json("/health").await["pending_requests"],
        Value::from(0)
    );
}
