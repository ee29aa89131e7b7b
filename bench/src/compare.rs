//! Scenarios 1-3: rpcnode, jsonrpsee and bare axum under the same load, in
//! the same run, printed as Markdown rows with ratios to jsonrpsee.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::chart::{Bar, Charts};
use crate::load::{self, Outcome, Window};
use crate::peers::{self, Peer};

/// Connections for the HTTP and WebSocket scenarios.
pub const CONNECTIONS: usize = 64;
/// Requests outstanding per WebSocket connection.
const IN_FLIGHT: usize = 16;
/// Requests in the batch scenario.
const BATCH: usize = 100;

pub const ADD: &str = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#;

/// The load of one scenario against one server.
#[derive(Clone, Copy)]
enum Scenario {
    Http,
    WebSocket,
    Batch(&'static str),
}

impl Scenario {
    async fn run(self, address: SocketAddr, window: Window) -> anyhow::Result<Outcome> {
        match self {
            Self::Http => load::http(address, ADD, 1, CONNECTIONS, window).await,
            Self::WebSocket => load::websocket(address, CONNECTIONS, IN_FLIGHT, window).await,
            Self::Batch(body) => load::http(address, body, BATCH, CONNECTIONS, window).await,
        }
    }
}

/// How scenarios 1-3 are run.
pub struct Run<'a> {
    pub window: Window,
    pub repeats: usize,
    /// Only the servers whose name contains this.
    pub only: Option<&'a str>,
}

/// Run scenarios 1-3 `repeats` times each against jsonrpsee, rpcnode with
/// each of `calculators` (language, component) and bare axum; print the
/// medians and chart them.
pub async fn run(
    calculators: &[(&str, PathBuf)],
    run: Run<'_>,
    charts: &Charts,
) -> anyhow::Result<()> {
    let batch: Vec<String> = (1..=BATCH)
        .map(|id| format!(r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{id}}}"#))
        .collect();
    let batch: &'static str = Box::leak(format!("[{}]", batch.join(",")).into_boxed_str());
    let scenarios = [
        ("1. HTTP `add`, 64 connections", Scenario::Http, "http"),
        (
            "2. WebSocket `add`, 64 connections × 16 in flight",
            Scenario::WebSocket,
            "websocket",
        ),
        (
            "3. HTTP batch of 100 `add`, 64 connections (batches/s)",
            Scenario::Batch(batch),
            "batch",
        ),
    ];
    println!("| Scenario | Server | Requests/s | vs jsonrpsee | p50 | p99 | Errors |");
    println!("|---|---|---|---|---|---|---|");
    for (index, (title, scenario, chart)) in scenarios.into_iter().enumerate() {
        let mut peers: Vec<(String, SocketAddr, Peer)> = Vec::new();
        let (address, peer) = peers::jsonrpsee().await?;
        peers.push(("jsonrpsee (native Rust)".into(), address, peer));
        for (language, calculator) in calculators {
            let (address, peer) = peers::rpcnode(calculator, false).await?;
            peers.push((
                format!("rpcnode + {language} calculator plugin"),
                address,
                peer,
            ));
        }
        // A fixed answer to a batch would not be a ceiling for answering 100 calls.
        if !matches!(scenario, Scenario::Batch(_)) {
            let (address, peer) = peers::axum_baseline().await?;
            peers.push(("bare axum, fixed answer".into(), address, peer));
        }
        let mut jsonrpsee_rate = None;
        let mut bars = Vec::new();
        for (name, address, _peer) in &peers {
            if run.only.is_some_and(|only| !name.contains(only)) {
                continue;
            }
            let mut runs = Vec::new();
            for _ in 0..run.repeats {
                runs.push(scenario.run(*address, run.window).await?);
            }
            runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
            let median = runs.swap_remove(runs.len() / 2);
            let rate = median.rate();
            let baseline = *jsonrpsee_rate.get_or_insert(rate);
            let (p50, p99) = (
                median.latency.value_at_quantile(0.5),
                median.latency.value_at_quantile(0.99),
            );
            println!(
                "| {title} | {name} | {rate:.0} | {:.2}× | {p50} µs | {p99} µs | {} |",
                rate / baseline,
                median.errors,
            );
            bars.push(Bar {
                label: name.clone(),
                value: rate,
                note: format!("({:.2}×)  p50 {p50} µs, p99 {p99} µs", rate / baseline),
            });
        }
        let unit = if matches!(scenario, Scenario::Batch(_)) {
            "batches per second"
        } else {
            "requests per second"
        };
        let file = format!("compare-{}-{chart}.png", index + 1);
        charts.bars(&file, &title.replace('`', ""), unit, &bars)?;
    }
    Ok(())
}
