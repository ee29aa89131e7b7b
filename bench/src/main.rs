//! `cargo xtask bench [SCENARIO…]`: measurements of the host, printed as
//! Markdown table rows for BENCHMARKS.md. Scenarios:
//!
//! - `overhead`: one JSON-RPC request through the dispatcher (parse, hooks,
//!   routing, a warm wasm call, response), in process, without sockets; and
//!   the plugin call alone; for the calculator in each plugin language.
//! - `pooling`: wasmtime's pooling instance allocator against the default
//!   on-demand one, for the calculator in each plugin language: a fresh
//!   instance and its first call, and a warm call.
//! - `cold-start`: starting a node on each example plugin of each language,
//!   compiling versus loading from the compile cache, and component sizes.
//! - `reload`: from writing a new version of a plugin file to that version
//!   serving, with the folder watcher on.
//! - `fanout`: scenario 4, broadcast to 1,000 and 10,000 WebSocket clients,
//!   back to back and at a fixed rate, with history and sessions off and on;
//!   and to 2,000 clients of a two-node cluster on Redis.
//! - `compare`: scenarios 1-3 of BENCHMARKS.md: rpcnode (with the calculator
//!   in each language), jsonrpsee and bare axum under the same HTTP,
//!   WebSocket and batch load.
//! - `reload-load`: scenario 5, scenario 1's load while the calculator is
//!   replaced again and again: failed requests and the latency spike.
//! - `store`: scenario 7, the state and stream backends alone, memory and
//!   embedded, from 1 to 256 concurrent callers.
//! - `resume`: scenario 8, the time to resume with 1,000 missed
//!   notifications, and the server's memory per session kept while away.
//! - `soak [--seconds N]`: mixed load for N seconds (default 3600), with
//!   clients dropping and resuming, plugin swaps and faults; failures and
//!   the server's memory, descriptors and threads over time. Run only when
//!   named (or briefly with `--smoke`).
//!
//! `--smoke` runs every scenario briefly (CI does, so the harness keeps
//! working); its numbers mean nothing. `--only TEXT` runs scenarios 1-3
//! against only the servers whose name contains TEXT, and `overhead` and
//! `pooling` for only the plugin languages whose name contains it (to
//! profile one).
//!
//! Every measured server runs in a child process: `peer jsonrpsee`, `peer
//! axum` or `peer rpcnode FOLDER` serves one until killed, after printing its
//! address. `load http|websocket|batch ADDRESS [PID]` drives any server (the
//! `rpcnode` binary too) with one run of scenario 1, 2 or 3, and with the
//! server's PID reports its CPU time per request.
//!
//! Charts (PNG) of scenarios 1-4 and 6 go to `docs/benchmarks/`, or to
//! `target/bench-charts/` for a smoke run (none with `--only`).
//!
//! Plugins come from `target/plugins`, `target/plugins-js`,
//! `target/plugins-python` and `target/plugin-fixtures` (`cargo xtask
//! build-plugins`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

/// The allocator of the `rpcnode` binary, for every server measured here
/// (each runs in this program, started again as a `peer`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod chart;
mod compare;
mod cpu;
mod fanout;
mod load;
mod overhead;
mod peers;
mod pooling;
mod redis_server;
mod reload_load;
mod resume;
mod soak;
mod startup;
mod store;
mod webhooks;

/// Each plugin language and the `target/` folder its examples are built into.
const LANGUAGES: [(&str, &str); 3] = [
    ("Rust", "plugins"),
    ("JavaScript", "plugins-js"),
    ("Python", "plugins-python"),
];

/// The plugin languages whose name contains `only` (all without it), with
/// the folder their examples are built into.
fn languages(only: Option<&str>) -> impl Iterator<Item = (&'static str, &'static str)> {
    LANGUAGES
        .into_iter()
        .filter(move |(language, _)| only.is_none_or(|only| language.contains(only)))
}

/// How much work each measurement does.
#[derive(Clone, Copy)]
struct Effort {
    warmup_calls: u32,
    calls: u32,
    repeats: usize,
    swaps: usize,
    /// Cold-start every example plugin, not only the calculators.
    every_plugin: bool,
    window: load::Window,
    /// The fan-out runs.
    fanout: &'static [fanout::Load],
    /// Concurrent callers of the store scenario.
    store_callers: &'static [usize],
    /// Resume rounds, notifications missed in each, and sessions whose
    /// memory is measured.
    resume: (usize, usize, usize),
    /// Webhook notifications to one subscriber, to each of 100, through a
    /// restart, and subscriptions whose memory is measured.
    webhooks: (usize, usize, usize, usize),
}

const FULL: Effort = Effort {
    warmup_calls: 20_000,
    calls: 200_000,
    repeats: 5,
    swaps: 20,
    every_plugin: true,
    fanout: &[
        fanout::Load::back_to_back(1_000, 1_000),
        fanout::Load::back_to_back(1_000, 1_000).durable(),
        fanout::Load::back_to_back(10_000, 400),
        fanout::Load::back_to_back(10_000, 400).durable(),
        fanout::Load::back_to_back(10_000, 400).publishers(8),
        fanout::Load::back_to_back(10_000, 400)
            .publishers(8)
            .durable(),
        fanout::Load::paced(10_000, 250, 50),
        fanout::Load::paced(10_000, 20, 2),
        fanout::Load::back_to_back(2_000, 400).cluster(2),
        fanout::Load::back_to_back(2_000, 400)
            .publishers(8)
            .cluster(2),
        fanout::Load::paced(2_000, 200, 100).cluster(2),
    ],
    store_callers: &[1, 16, 64, 256],
    resume: (5, 1_000, 10_000),
    webhooks: (20_000, 1_000, 100_000, 1_000),
    window: load::Window {
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(5),
    },
};

const SMOKE: Effort = Effort {
    warmup_calls: 100,
    calls: 1_000,
    repeats: 1,
    swaps: 2,
    every_plugin: false,
    fanout: &[
        fanout::Load::back_to_back(100, 10),
        fanout::Load::back_to_back(100, 10).durable().publishers(2),
        fanout::Load::paced(100, 10, 100),
        fanout::Load::back_to_back(100, 10).cluster(2),
    ],
    store_callers: &[1, 8],
    resume: (1, 20, 50),
    webhooks: (100, 5, 200, 20),
    window: load::Window {
        warmup: Duration::from_millis(100),
        measure: Duration::from_millis(400),
    },
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("peer") => return peers::serve(&args[1..]).await,
        Some("load") => return compare::drive(&args[1..], FULL.window).await,
        _ => {}
    }
    let smoke = args.iter().any(|arg| arg == "--smoke");
    args.retain(|arg| arg != "--smoke");
    let only = match args.iter().position(|arg| arg == "--only") {
        Some(at) => {
            anyhow::ensure!(at + 1 < args.len(), "--only needs a server name");
            args.remove(at);
            Some(args.remove(at))
        }
        None => None,
    };
    let soak_seconds = match args.iter().position(|arg| arg == "--seconds") {
        Some(at) => {
            anyhow::ensure!(at + 1 < args.len(), "--seconds needs a number");
            args.remove(at);
            args.remove(at)
                .parse()
                .context("--seconds must be a whole number")?
        }
        None => 3600,
    };
    let effort = if smoke { SMOKE } else { FULL };
    // A run of some servers only would leave the committed charts incomplete.
    let charts = match (smoke, &only) {
        (_, Some(_)) => chart::Charts::none(),
        (true, None) => chart::Charts::new(target().join("bench-charts"))?,
        (false, None) => {
            chart::Charts::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks"))?
        }
    };
    let named = |name: &str| args.iter().any(|wanted| wanted == name);
    let wanted = |name: &str| args.is_empty() || named(name);
    if wanted("overhead") {
        overhead::run(effort, only.as_deref(), &charts).await?;
    }
    if wanted("pooling") {
        pooling::run(effort, only.as_deref()).await?;
    }
    if wanted("cold-start") {
        startup::cold_start(effort).await?;
    }
    if wanted("reload") {
        startup::reload(effort).await?;
    }
    if wanted("fanout") {
        let plugin = built("plugins", "data_service.wasm")?;
        println!(
            "| Fan-out | Deliveries | Publish → receipt | CPU per delivery: server / clients | Server memory per idle client |"
        );
        println!("|---|---|---|---|---|");
        let mut bars = Vec::new();
        for &load in effort.fanout {
            bars.push(fanout::run(&plugin, load).await?);
        }
        charts.bars(
            "fanout.png",
            "4. Broadcast fan-out to WebSocket clients",
            "deliveries per second",
            &bars,
        )?;
    }
    if wanted("compare") {
        let mut calculators = Vec::new();
        for (language, examples) in LANGUAGES {
            calculators.push((language, built(examples, "calculator.wasm")?));
        }
        let run = compare::Run {
            window: effort.window,
            repeats: effort.repeats,
            only: only.as_deref(),
        };
        compare::run(&calculators, run, &charts).await?;
    }
    if wanted("reload-load") {
        reload_load::run(effort.window, Duration::from_millis(500)).await?;
    }
    if wanted("store") {
        store::run(effort.window.measure / 2, effort.store_callers).await?;
    }
    if wanted("resume") {
        let (rounds, missed, sessions) = effort.resume;
        let plugin = built("plugins", "data_service.wasm")?;
        resume::run(&plugin, rounds, missed, sessions).await?;
    }
    if wanted("webhooks") {
        let plugin = built("plugins", "data_service.wasm")?;
        webhooks::run(&plugin, effort.webhooks).await?;
    }
    if named("soak") || (smoke && args.is_empty()) {
        let (duration, sample_every) = match smoke {
            true => (Duration::from_secs(5), Duration::from_millis(500)),
            false => (Duration::from_secs(soak_seconds), Duration::from_secs(10)),
        };
        soak::run(duration, sample_every, &charts).await?;
    }
    Ok(())
}

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// The built plugin `target/<folder>/<file>`.
fn built(folder: &str, file: &str) -> anyhow::Result<PathBuf> {
    let path = target().join(folder).join(file);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo xtask build-plugins`",
        path.display()
    );
    Ok(path)
}

/// A temporary plugins folder with copies of `plugins`: (built file, name).
fn folder(plugins: &[(PathBuf, &str)]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (source, name) in plugins {
        std::fs::copy(source, dir.path().join(name))
            .with_context(|| format!("copying {}", source.display()))?;
    }
    Ok(dir)
}

/// The median of `samples`.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
