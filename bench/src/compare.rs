//! Scenarios 1-3: rpcnode, jsonrpsee and bare axum under the same load, in
//! the same run, printed as Markdown rows with ratios to jsonrpsee.

use std::net::SocketAddr;
use std::path::PathBuf;

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

/// Run scenarios 1-3 `repeats` times each against jsonrpsee, rpcnode with
/// each of `calculators` (language, component) and bare axum, and print the
/// medians.
pub async fn run(
    calculators: &[(&str, PathBuf)],
    window: Window,
    repeats: usize,
) -> anyhow::Result<()> {
    let batch: Vec<String> = (1..=BATCH)
        .map(|id| format!(r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{id}}}"#))
        .collect();
    let batch: &'static str = Box::leak(format!("[{}]", batch.join(",")).into_boxed_str());
    let scenarios = [
        ("1. HTTP `add`, 64 connections", Scenario::Http, true),
        (
            "2. WebSocket `add`, 64 connections × 16 in flight",
            Scenario::WebSocket,
            true,
        ),
        (
            "3. HTTP batch of 100 `add`, 64 connections (batches/s)",
            Scenario::Batch(batch),
            false,
        ),
    ];
    println!("| Scenario | Server | Requests/s | vs jsonrpsee | p50 | p99 | Errors |");
    println!("|---|---|---|---|---|---|---|");
    for (title, scenario, with_ceiling) in scenarios {
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
        if with_ceiling {
            let (address, peer) = peers::axum_baseline().await?;
            peers.push(("bare axum, fixed answer".into(), address, peer));
        }
        let mut jsonrpsee_rate = None;
        for (name, address, _peer) in &peers {
            let mut runs = Vec::new();
            for _ in 0..repeats {
                runs.push(scenario.run(*address, window).await?);
            }
            runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
            let median = runs.swap_remove(runs.len() / 2);
            let rate = median.rate();
            let baseline = *jsonrpsee_rate.get_or_insert(rate);
            println!(
                "| {title} | {name} | {rate:.0} | {:.2}× | {} µs | {} µs | {} |",
                rate / baseline,
                median.latency.value_at_quantile(0.5),
                median.latency.value_at_quantile(0.99),
                median.errors,
            );
        }
    }
    Ok(())
}
