//! JSON-RPC batches: the calls bound for one plugin go to it in one
//! `handle-batch` entry (in entries of 16 if its calls are slow), each with
//! its own request id, between every request's hooks; a plugin built without
//! `batch-handler` answers them one call at a time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary;
use crate::observability::metrics;
use crate::support::{TestNode, error, plugins_dir, request, success};

/// How many calls `/metrics` counts into `plugin`.
async fn plugin_calls(node: &TestNode, plugin: &str) -> u64 {
    let wanted = format!("rpcnode_plugin_calls_total{{plugin=\"{plugin}\"}} ");
    let text = metrics(node).await;
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix(&wanted))
        .unwrap_or_else(|| panic!("no calls counted for {plugin} in:\n{text}"));
    line.parse().expect("a count")
}

fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

#[tokio::test]
async fn a_batch_reaches_each_plugin_in_one_entry_with_each_request_id() {
    let node = TestNode::start(&["calculator", "probe"]).await;
    let before = plugin_calls(&node, "calculator").await;
    let batch = json!([
        request("add", json!([1, 2]), json!(1)),
        request("echo", json!({"n": 1}), json!("two")),
        request("add", json!({"a": 5, "b": 2}), json!(3)),
        notification("fire_and_forget", json!([])),
        request("nope", json!([]), json!(4)),
        request("divide", json!([1, 0]), json!(5)),
        request("echo", json!([2]), json!(6)),
    ]);
    let answers = node.post(&batch).await;
    let echoed = |id: Value, params: Value| {
        let answer = answers
            .as_array()
            .unwrap()
            .iter()
            .find(|answer| answer["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id} in {answers}"));
        assert_eq!(answer["result"]["request_id"], id, "{answer}");
        assert_eq!(answer["result"]["params"], params, "{answer}");
        assert_eq!(answer["result"]["transport"], "Http", "{answer}");
        answer.clone()
    };
    assert_eq!(
        answers,
        json!([
            success(json!({"sum": 3}), json!(1)),
            echoed(json!("two"), json!({"n": 1})),
            success(json!({"sum": 7}), json!(3)),
            error(-32601, "Method not found: nope", json!(4)),
            error(-32602, "Invalid params: Cannot divide by zero", json!(5)),
            echoed(json!(6), json!([2])),
        ])
    );
    // Three calculator calls, one entry.
    assert_eq!(plugin_calls(&node, "calculator").await, before + 1);
    // Every request of the batch went through the probe's hooks, each with
    // its own outcome.
    let mut log = node.hook_log().await;
    log.retain(|entry| entry != "before hook_log");
    log.sort();
    assert_eq!(
        log,
        [
            "after add ok",
            "after add ok",
            "after divide -32602",
            "after echo ok",
            "after echo ok",
            "after fire_and_forget ok",
            "after nope -32601",
            "before add",
            "before add",
            "before divide",
            "before echo",
            "before echo",
            "before fire_and_forget",
            "before nope",
        ]
    );
}

/// How many entries `batch` (33 `echo` or `add` calls) took into `plugin`,
/// whose hooks make `hook_calls` calls for it; checks every answer.
async fn entries_for(node: &TestNode, plugin: &str, batch: &Value, hook_calls: u64) -> u64 {
    let before = plugin_calls(node, plugin).await;
    let answers = node.post(batch).await;
    let answers = answers.as_array().expect("answers to a batch");
    assert_eq!(answers.len(), 33, "{answers:?}");
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(answer["id"], json!(n), "{answer}");
        let result = &answer["result"];
        assert!(
            result["params"] == json!([n]) || result["sum"] == json!(n + 1),
            "{answer}"
        );
    }
    plugin_calls(node, plugin).await - before - hook_calls
}

/// Whether a batch goes in one entry within 20 tries: the quick calls of
/// each bring the typical time an eighth of the way down, and a call the
/// machine happened to pause counts at most 1 ms.
async fn settles_in_one_entry(node: &TestNode, plugin: &str, batch: &Value, hooks: u64) -> bool {
    for _ in 0..20 {
        if entries_for(node, plugin, batch, hooks).await == 1 {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_long_batch_of_quick_calls_goes_in_one_entry() {
    let node = TestNode::start(&["calculator"]).await;
    let batch: Vec<Value> = (0..33)
        .map(|n| request("add", json!([n, 1]), json!(n)))
        .collect();
    // Until a plugin has answered, its calls count as slow: 16 + 16, and
    // the one left over through `handle`.
    assert_eq!(entries_for(&node, "calculator", &json!(batch), 0).await, 3);
    assert!(settles_in_one_entry(&node, "calculator", &json!(batch), 0).await);
}

/// Once a plugin's requests take long in the guest (here a 20 ms sleep), a
/// batch's calls to it go in entries of 16 that wait side by side; when its
/// calls are quick again, in one entry again.
#[tokio::test]
async fn a_batch_to_a_plugin_whose_calls_are_slow_goes_in_entries_of_16() {
    let node = TestNode::start(&["probe"]).await;
    let batch: Vec<Value> = (0..33)
        .map(|n| request("echo", json!([n]), json!(n)))
        .collect();
    let batch = json!(batch);
    // The probe's hooks see every request: two calls each.
    let hooks = 66;
    assert!(settles_in_one_entry(&node, "probe", &batch, hooks).await);
    assert_eq!(
        node.call("sleep", json!([20])).await,
        success(json!({"slept_ms": 20}), json!(1))
    );
    assert_eq!(entries_for(&node, "probe", &batch, hooks).await, 3);
    assert!(settles_in_one_entry(&node, "probe", &batch, hooks).await);
}

#[tokio::test]
async fn a_refusal_by_a_hook_keeps_that_call_out_of_the_batch_entry() {
    let node = TestNode::start(&["calculator", "probe"]).await;
    let batch = json!([
        request("add", json!([1, 2]), json!(1)),
        request("add", json!([2, 2]), json!(2)),
    ]);
    let (status, body) = node
        .post_with(&batch.to_string(), &[("x-reject", "1")])
        .await;
    assert_eq!(status, 200);
    let refused = json!({"jsonrpc": "2.0", "error": {"code": -32099,
        "message": "rejected by before-request", "data": {"hook": "probe"}}});
    let with_id = |id: i64| {
        let mut answer = refused.clone();
        answer["id"] = json!(id);
        answer
    };
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([with_id(1), with_id(2)])
    );
    assert_eq!(plugin_calls(&node, "calculator").await, 0);
}

#[tokio::test]
async fn a_fault_in_a_batch_entry_fails_its_calls_only() {
    let node = TestNode::start(&["calculator", "probe"]).await;
    let batch = json!([
        request("echo", json!([]), json!(1)),
        request("fault_panic", json!([]), json!(2)),
        request("add", json!([1, 2]), json!(3)),
    ]);
    let failed = "Internal error: plugin probe failed";
    assert_eq!(
        node.post(&batch).await,
        json!([
            error(-32603, failed, json!(1)),
            error(-32603, failed, json!(2)),
            success(json!({"sum": 3}), json!(3)),
        ])
    );
    // A fresh instance answers the next batch.
    let batch = json!([
        request("echo", json!([1]), json!(1)),
        request("echo", json!([2]), json!(2)),
    ]);
    let answers = node.post(&batch).await;
    assert_eq!(answers[0]["result"]["params"], json!([1]), "{answers}");
    assert_eq!(answers[1]["result"]["params"], json!([2]), "{answers}");
}

#[tokio::test]
async fn a_plugin_built_against_contract_0_3_0_answers_a_batch_call_by_call() {
    let node = TestNode::start(&["contract_0_3_0"]).await;
    let batch = json!([
        request("count", json!(["a"]), json!(1)),
        request("count", json!(["b"]), json!(2)),
        request("count", json!(["c"]), json!(3)),
    ]);
    let answers = node.post(&batch).await;
    let mut handled: Vec<(Value, Value)> = answers
        .as_array()
        .unwrap()
        .iter()
        .map(|answer| (answer["result"]["params"].clone(), answer["id"].clone()))
        .collect();
    handled.sort_by_key(|(_, id)| id.as_i64());
    assert_eq!(
        handled,
        [
            (json!(["a"]), json!(1)),
            (json!(["b"]), json!(2)),
            (json!(["c"]), json!(3))
        ]
    );
    assert_eq!(plugin_calls(&node, "contract_0_3_0").await, 3);
}

#[tokio::test]
async fn a_plugin_answering_an_entry_with_too_few_outcomes_fails_it_and_loses_its_instance() {
    let node = TestNode::start(&["miscount"]).await;
    let counted =
        |calls: u32, params: Value| success(json!({"params": params, "calls": calls}), json!(1));
    assert_eq!(
        node.call("count", json!(["a"])).await,
        counted(1, json!(["a"]))
    );
    assert_eq!(
        node.call("count", json!(["b"])).await,
        counted(2, json!(["b"]))
    );
    let batch = json!([
        request("count", json!(["c"]), json!(1)),
        request("count", json!(["d"]), json!(2)),
        request("count", json!(["e"]), json!(3)),
    ]);
    let failed = "Internal error: plugin miscount failed";
    assert_eq!(
        node.post(&batch).await,
        json!([
            error(-32603, failed, json!(1)),
            error(-32603, failed, json!(2)),
            error(-32603, failed, json!(3)),
        ])
    );
    // The instance that broke the contract is gone: a fresh one counts
    // from 1.
    assert_eq!(
        node.call("count", json!(["f"])).await,
        counted(1, json!(["f"]))
    );
    assert_eq!(plugin_calls(&node, "miscount").await, 4);
}

/// Too many outcomes is as much a fault as too few, and the log says which.
#[tokio::test]
async fn a_wrong_outcome_count_either_way_is_logged_with_both_counts() {
    let plugins = plugins_dir(&["miscount"]);
    let (child, address) = binary::start(plugins.path(), &[]).await;
    let failed = |id: i64| error(-32603, "Internal error: plugin miscount failed", json!(id));
    let surplus = json!([
        request("count", json!(["surplus"]), json!(1)),
        request("count", json!(["x"]), json!(2)),
    ]);
    assert_eq!(
        binary::call(&address, &surplus.to_string(), &[]).await,
        json!([failed(1), failed(2)])
    );
    let short = json!([
        request("count", json!(["a"]), json!(1)),
        request("count", json!(["b"]), json!(2)),
        request("count", json!(["c"]), json!(3)),
    ]);
    assert_eq!(
        binary::call(&address, &short.to_string(), &[]).await,
        json!([failed(1), failed(2), failed(3)])
    );
    let (code, log) = binary::terminate(child).await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("handle-batch answered 2 calls with 3 outcomes"),
        "{log}"
    );
    assert!(
        log.contains("handle-batch answered 3 calls with 2 outcomes"),
        "{log}"
    );
}

/// An entry runs for at most 16 request timeouts, however many calls it
/// has: a call that never ends among 39 quick ones fails the entry 15
/// timeouts after the first call's deadline, not 39.
#[tokio::test]
async fn a_long_entry_runs_for_at_most_16_request_timeouts() {
    let node = TestNode::start_with(&["probe"], |config| {
        config.request_timeout = Duration::from_millis(100);
    })
    .await;
    let quick: Vec<Value> = (0..33)
        .map(|n| request("echo", json!([n]), json!(n)))
        .collect();
    assert!(settles_in_one_entry(&node, "probe", &json!(quick), 66).await);

    let mut batch = vec![request("fault_spin", json!([]), json!(0))];
    batch.extend((1..40).map(|n| request("echo", json!([n]), json!(n))));
    let started = Instant::now();
    let answers = node.post(&json!(batch)).await;
    let elapsed = started.elapsed();
    let timed_out = |id: i64| {
        let message = "Server error: request timed out after 100ms (request_timeout)";
        error(-32000, message, json!(id))
    };
    let expected: Vec<Value> = (0..40).map(timed_out).collect();
    assert_eq!(answers, json!(expected));
    // 0.1 s for the first call and 15 × 0.1 s more; 4 s without the bound.
    assert!(
        elapsed >= Duration::from_millis(1600) && elapsed < Duration::from_millis(3500),
        "{elapsed:?}"
    );
}
