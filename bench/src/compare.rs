//! Scenarios 1-3: rpcnode, jsonrpsee and bare axum under the same load, in
//! the same run, printed as Markdown rows with ratios to jsonrpsee.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::chart::{Bar, Charts};
use crate::cpu::CpuTime;
use crate::load::{self, Outcome, Window};
use crate::peers::Peer;

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
    /// The scenario called `name` (`http`, `websocket` or `batch`).
    fn named(name: &str) -> anyhow::Result<Self> {
        match name {
            "http" => Ok(Self::Http),
            "websocket" => Ok(Self::WebSocket),
            "batch" => Ok(Self::Batch(batch_body())),
            _ => anyhow::bail!("unknown scenario {name:?}: use http, websocket or batch"),
        }
    }

    async fn run(self, address: SocketAddr, window: Window) -> anyhow::Result<Outcome> {
        match self {
            Self::Http => load::http(address, ADD, 1, CONNECTIONS, window).await,
            Self::WebSocket => load::websocket(address, CONNECTIONS, IN_FLIGHT, window).await,
            Self::Batch(body) => load::http(address, body, BATCH, CONNECTIONS, window).await,
        }
    }
}

/// The body of scenario 3: a batch of [`BATCH`] `add` calls.
fn batch_body() -> &'static str {
    let calls: Vec<String> = (1..=BATCH)
        .map(|id| format!(r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{id}}}"#))
        .collect();
    Box::leak(format!("[{}]", calls.join(",")).into_boxed_str())
}

/// How scenarios 1-3 are run.
pub struct Run<'a> {
    pub window: Window,
    pub repeats: usize,
    /// Only the servers whose name contains this.
    pub only: Option<&'a str>,
}

/// Run scenarios 1-3 `repeats` times each against jsonrpsee, rpcnode with
/// each of `calculators` (language, component) and bare axum, each server in
/// its own process; print the medians and chart them.
pub async fn run(
    calculators: &[(&str, PathBuf)],
    run: Run<'_>,
    charts: &Charts,
) -> anyhow::Result<()> {
    let batch = batch_body();
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
    println!(
        "| Scenario | Server | Requests/s | vs jsonrpsee, per round: median (range) | p50 | p99 | Server CPU per request | Errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let wanted = |name: &str| run.only.is_none_or(|only| name.contains(only));
    for (index, (title, scenario, chart)) in scenarios.into_iter().enumerate() {
        let mut peers: Vec<(String, Peer)> = Vec::new();
        let name = "jsonrpsee (native Rust)";
        if wanted(name) {
            peers.push((name.into(), Peer::jsonrpsee().await?));
        }
        for (language, calculator) in calculators {
            let name = format!("rpcnode + {language} calculator plugin");
            if wanted(&name) {
                let plugins = [(calculator.clone(), "calculator.wasm")];
                peers.push((name, Peer::rpcnode(&plugins).await?));
            }
        }
        // A fixed answer to a batch would not be a ceiling for answering 100 calls.
        let name = "bare axum, fixed answer";
        if !matches!(scenario, Scenario::Batch(_)) && wanted(name) {
            peers.push((name.into(), Peer::axum().await?));
        }
        // Round robin, so that this shared machine's drift over the minutes
        // of a run weighs on every server alike.
        let mut measured: Vec<Vec<Measured>> = peers.iter().map(|_| Vec::new()).collect();
        for _ in 0..run.repeats {
            for ((_, peer), runs) in peers.iter().zip(&mut measured) {
                runs.push(measure(scenario, peer.address, Some(peer.pid), run.window).await?);
            }
        }
        // Each round's rate over the first server's (jsonrpsee) in the same
        // round: neighbours in time, so the machine's drift cancels out.
        let baseline: Vec<f64> = measured[0].iter().map(|run| run.outcome.rate()).collect();
        let mut bars = Vec::new();
        for ((name, _), mut runs) in peers.iter().zip(measured) {
            let ratios = runs
                .iter()
                .zip(&baseline)
                .map(|(run, base)| run.outcome.rate() / base);
            let ratio = Spread::of(ratios.collect());
            runs.sort_by(|a, b| a.outcome.rate().total_cmp(&b.outcome.rate()));
            let median = runs.swap_remove(runs.len() / 2);
            let rate = median.outcome.rate();
            let (p50, p99) = median.latency();
            println!(
                "| {title} | {name} | {rate:.0} | {ratio} | {p50} µs | {p99} µs | {} | {} |",
                median.cpu_per_request().unwrap_or_default(),
                median.outcome.errors,
            );
            bars.push(Bar {
                label: name.clone(),
                value: rate,
                note: format!("({:.2}×)  p50 {p50} µs, p99 {p99} µs", ratio.median),
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

/// The median and range of per-round ratios.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(mut ratios: Vec<f64>) -> Self {
        ratios.sort_by(f64::total_cmp);
        Self {
            median: ratios[ratios.len() / 2],
            low: ratios[0],
            high: ratios[ratios.len() - 1],
        }
    }
}

/// `1.02× (0.95-1.08)`: the median, then the lowest and highest round.
impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { median, low, high } = self;
        write!(f, "{median:.2}× ({low:.2}-{high:.2})")
    }
}

/// One run of a scenario against one server.
struct Measured {
    outcome: Outcome,
    /// The server's CPU seconds over the measured window, when its PID is known.
    cpu: Option<CpuTime>,
}

impl Measured {
    /// p50 and p99 latency in microseconds.
    fn latency(&self) -> (u64, u64) {
        let latency = &self.outcome.latency;
        (
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99),
        )
    }

    /// The server's CPU time per answered request, in all, user and kernel.
    fn cpu_per_request(&self) -> Option<String> {
        let [total, user, kernel] = self.cpu?.micros_per(self.outcome.requests);
        Some(format!(
            "{total:.2} µs (user {user:.2}, kernel {kernel:.2})"
        ))
    }
}

/// One run of `scenario` against the server at `address`; given the
/// server's PID, also its CPU time from the end of the warm-up to the end.
async fn measure(
    scenario: Scenario,
    address: SocketAddr,
    pid: Option<u32>,
    window: Window,
) -> anyhow::Result<Measured> {
    let counted_from = pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep(window.warmup).await;
            CpuTime::of(pid)
        })
    });
    let outcome = scenario.run(address, window).await?;
    let cpu = match (pid, counted_from) {
        (Some(pid), Some(start)) => Some(CpuTime::of(pid)?.since(start.await??)),
        _ => None,
    };
    Ok(Measured { outcome, cpu })
}

/// `load SCENARIO ADDRESS [PID]`: one run of scenario 1, 2 or 3 (`http`,
/// `websocket`, `batch`) against a server in another process, such as the
/// `rpcnode` binary or `rpcnode-bench peer`. Given the server's PID, also its
/// CPU time per request, read from /proc over the measured window.
pub async fn drive(args: &[String], window: Window) -> anyhow::Result<()> {
    let [scenario, address, rest @ ..] = args else {
        anyhow::bail!("usage: load http|websocket|batch ADDRESS [SERVER_PID]");
    };
    let scenario = Scenario::named(scenario)?;
    let address: SocketAddr = address
        .parse()
        .with_context(|| format!("{address:?} is not an address such as 127.0.0.1:8000"))?;
    let pid = match rest {
        [] => None,
        [pid] => Some(
            pid.parse::<u32>()
                .with_context(|| format!("{pid:?} is not a PID"))?,
        ),
        _ => anyhow::bail!("usage: load http|websocket|batch ADDRESS [SERVER_PID]"),
    };
    let measured = measure(scenario, address, pid, window).await?;
    let (p50, p99) = measured.latency();
    let mut row = format!(
        "{:.0} requests/s, p50 {p50} µs, p99 {p99} µs, {} errors",
        measured.outcome.rate(),
        measured.outcome.errors
    );
    if let Some(cpu) = measured.cpu_per_request() {
        row += &format!("; server CPU per request {cpu}");
    }
    println!("{row}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const NO_TIME: Window = Window {
        warmup: Duration::ZERO,
        measure: Duration::ZERO,
    };

    async fn load_error(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        format!("{:#}", drive(&args, NO_TIME).await.unwrap_err())
    }

    #[test]
    fn a_spread_is_the_median_and_range_of_its_rounds() {
        let spread = Spread::of(vec![1.1, 0.9, 1.0, 1.3, 0.95]);
        assert_eq!(
            spread,
            Spread {
                median: 1.0,
                low: 0.9,
                high: 1.3
            }
        );
        assert_eq!(spread.to_string(), "1.00× (0.90-1.30)");
        assert_eq!(Spread::of(vec![0.5]).to_string(), "0.50× (0.50-0.50)");
    }

    #[tokio::test]
    async fn load_explains_bad_arguments() {
        assert_eq!(
            load_error(&["http"]).await,
            "usage: load http|websocket|batch ADDRESS [SERVER_PID]"
        );
        assert_eq!(
            load_error(&["ftp", "127.0.0.1:1"]).await,
            r#"unknown scenario "ftp": use http, websocket or batch"#
        );
        assert_eq!(
            load_error(&["http", "localhost"]).await,
            r#""localhost" is not an address such as 127.0.0.1:8000: invalid socket address syntax"#
        );
        assert_eq!(
            load_error(&["http", "127.0.0.1:1", "me"]).await,
            r#""me" is not a PID: invalid digit found in string"#
        );
    }
}
