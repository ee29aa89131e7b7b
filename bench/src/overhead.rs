//! Warm per-call cost of the calculator plugin in each language, in process
//! and without sockets: one JSON-RPC request through the dispatcher (parse,
//! params check, hooks, routing, the wasm call, response), the same with
//! `add` written as an async function (JavaScript and Python), the plugin
//! call alone, and the params check alone (`add`'s schema, by name and by
//! position).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rpcnode::headers::RequestHeaders;
use rpcnode::plugin::{CallContext, Transport};
use rpcnode::rpc::Caller;
use rpcnode::{Config, Node};

use crate::chart::{Bar, Charts};
use crate::{Effort, built, folder, languages, median};

/// `only`, when given, keeps the languages whose name contains it.
pub async fn run(effort: Effort, only: Option<&str>, charts: &Charts) -> anyhow::Result<()> {
    let mut bars = Vec::new();
    println!(
        "| Plugin language | Request through the dispatcher | The same, `add` written async | Plugin call alone | Params check alone: by name / by position |"
    );
    println!("|---|---|---|---|---|");
    for (language, examples) in languages(only) {
        let dir = folder(&[(built(examples, "calculator.wasm")?, "calculator.wasm")])?;
        let node = Node::start(Config::new(dir.path())).await?;
        let per_request = through_dispatcher(&node, effort).await;
        let per_async_request = match ASYNC_FIXTURES.iter().find(|(name, _)| *name == language) {
            Some((_, fixtures)) => {
                let (async_node, _dir) = async_calculator(fixtures).await?;
                let cost = through_dispatcher(&async_node, effort).await;
                async_node.shutdown().await;
                format!("{cost:.2} µs")
            }
            None => "-".to_owned(),
        };
        let per_call = plugin_call(&node, effort).await?;
        let (by_name, by_position) = (
            params_check(&node, r#"{"a":1,"b":2}"#, effort)?,
            params_check(&node, "[1,2]", effort)?,
        );
        println!(
            "| {language} | {per_request:.2} µs | {per_async_request} | {per_call:.2} µs | {by_name:.3} / {by_position:.3} µs |"
        );
        bars.push(Bar {
            label: format!("{language}: request through the dispatcher"),
            value: per_request,
            note: "µs".into(),
        });
        bars.push(Bar {
            label: format!("{language}: plugin call alone"),
            value: per_call,
            note: "µs".into(),
        });
        node.shutdown().await;
    }
    charts.bars(
        "overhead.png",
        "6. Warm per-call cost of the calculator plugin, in process",
        "microseconds per call",
        &bars,
    )
}

/// Where each SDK's async `add` (a test fixture) is built.
const ASYNC_FIXTURES: [(&str, &str); 2] = [
    ("JavaScript", "plugin-fixtures-js"),
    ("Python", "plugin-fixtures-python"),
];

/// A node serving the async `add` fixture from `fixtures`, and its plugins
/// folder (which must outlive it).
async fn async_calculator(fixtures: &str) -> anyhow::Result<(Arc<Node>, tempfile::TempDir)> {
    let file = built(fixtures, "async_calculator.wasm")?;
    let dir = folder(&[(file, "async_calculator.wasm")])?;
    Ok((Node::start(Config::new(dir.path())).await?, dir))
}

/// Microseconds per `add` request handled by the node, median of the repeats.
async fn through_dispatcher(node: &Node, effort: Effort) -> f64 {
    let caller = Caller::new(
        Transport::Http,
        None,
        ([127, 0, 0, 1], 1).into(),
        RequestHeaders::default(),
    );
    let request = r#"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":1}"#;
    let mut per_request = Vec::new();
    for _ in 0..effort.repeats {
        for _ in 0..effort.warmup_calls {
            node.dispatcher.handle_message(request, &caller).await;
        }
        let started = Instant::now();
        for _ in 0..effort.calls {
            node.dispatcher.handle_message(request, &caller).await;
        }
        per_request.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(effort.calls));
    }
    median(per_request)
}

/// Microseconds to check `params` against `add`'s params schema (as the
/// dispatcher does before the hooks), median of the repeats.
fn params_check(node: &Node, params: &str, effort: Effort) -> anyhow::Result<f64> {
    let table = node.registry.current();
    let route = table.route("add").context("calculator has add")?;
    let schema = route
        .params
        .as_ref()
        .context("add declares a params schema")?;
    let mut per_check = Vec::new();
    for _ in 0..effort.repeats {
        let started = Instant::now();
        for _ in 0..effort.calls {
            anyhow::ensure!(schema.check(std::hint::black_box(Some(params))).is_ok());
        }
        per_check.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(effort.calls));
    }
    Ok(median(per_check))
}

/// Microseconds per `handle` call on a pooled instance, median of the repeats.
async fn plugin_call(node: &Node, effort: Effort) -> anyhow::Result<f64> {
    let table = node.registry.current();
    let route = table.route("add").context("calculator has add")?;
    let params = Some(r#"{"a":1,"b":2}"#);
    let context = CallContext {
        request_id: Some("1".into()),
        transport: Transport::Http,
        ..CallContext::background()
    };
    let mut per_call = Vec::new();
    for _ in 0..effort.repeats {
        let started = Instant::now();
        for _ in 0..effort.calls {
            let deadline = Instant::now() + Duration::from_secs(30);
            let answer = route
                .plugin
                .handle(&route.method, params, context.clone(), deadline)
                .await;
            anyhow::ensure!(matches!(answer, Ok(Ok(_))), "add failed: {answer:?}");
        }
        per_call.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(effort.calls));
    }
    Ok(median(per_call))
}
