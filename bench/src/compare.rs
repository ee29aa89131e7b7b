//! Scenarios 1-3: rpcnode, jsonrpsee and bare axum under the same load, in
//! the same run, printed as Markdown rows with ratios to jsonrpsee.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;

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
/// each of `calculators` (language, component) and bare axum; print the
/// medians and chart them.
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
        peers.retain(|(name, _, _)| run.only.is_none_or(|only| name.contains(only)));
        // Round robin, so that this shared machine's drift over the minutes
        // of a run weighs on every server alike.
        let mut outcomes: Vec<Vec<Outcome>> = peers.iter().map(|_| Vec::new()).collect();
        for _ in 0..run.repeats {
            for ((_, address, _), runs) in peers.iter().zip(&mut outcomes) {
                runs.push(scenario.run(*address, run.window).await?);
            }
        }
        let mut jsonrpsee_rate = None;
        let mut bars = Vec::new();
        for ((name, _, _), mut runs) in peers.iter().zip(outcomes) {
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
    let counted_from = pid.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep(window.warmup).await;
            cpu_time(pid)
        })
    });
    let outcome = scenario.run(address, window).await?;
    let (p50, p99) = (
        outcome.latency.value_at_quantile(0.5),
        outcome.latency.value_at_quantile(0.99),
    );
    let mut row = format!(
        "{:.0} requests/s, p50 {p50} µs, p99 {p99} µs, {} errors",
        outcome.rate(),
        outcome.errors
    );
    if let (Some(pid), Some(start)) = (pid, counted_from) {
        let ([user, system], [user_end, system_end]) = (start.await??, cpu_time(pid)?);
        let per_request = |seconds: f64| seconds * 1e6 / outcome.requests as f64;
        let (user, system) = (
            per_request(user_end - user),
            per_request(system_end - system),
        );
        row += &format!(
            "; server CPU per request {:.2} µs (user {user:.2}, system {system:.2})",
            user + system
        );
    }
    println!("{row}");
    Ok(())
}

/// User and system CPU seconds of process `pid` so far (Linux's
/// /proc/PID/stat counts them in ticks of 1/100 s).
fn cpu_time(pid: u32) -> anyhow::Result<[f64; 2]> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("no process {pid}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("unreadable /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks = |index: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(index)
            .context("short /proc stat")?
            .parse::<f64>()?
            / 100.0)
    };
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    Ok([ticks(11)?, ticks(12)?])
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

    #[test]
    fn cpu_time_reads_a_process_that_exists() {
        cpu_time(std::process::id()).unwrap();
        assert_eq!(
            format!("{:#}", cpu_time(u32::MAX).unwrap_err()),
            format!(
                "no process {}: No such file or directory (os error 2)",
                u32::MAX
            )
        );
    }
}
