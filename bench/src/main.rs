//! `cargo xtask bench [SCENARIO…]`: measurements of the host, printed as
//! Markdown table rows for BENCHMARKS.md. Scenarios:
//!
//! - `overhead`: one JSON-RPC request through the dispatcher (parse, hooks,
//!   routing, a warm wasm call, response), in process, without sockets; and
//!   the plugin call alone.
//! - `cold-start`: starting a node on each example plugin, compiling versus
//!   loading from the compile cache.
//! - `reload`: from writing a new version of a plugin file to that version
//!   serving, with the folder watcher on.
//! - `fanout`: scenario 4, broadcast to 1,000 and 10,000 WebSocket clients.
//! - `compare`: scenarios 1-3 of BENCHMARKS.md: rpcnode, jsonrpsee and bare
//!   axum under the same HTTP, WebSocket and batch load.
//!
//! `--smoke` runs every scenario briefly (CI does, so the harness keeps
//! working); its numbers mean nothing.
//!
//! Plugins come from `target/plugins` and `target/plugin-fixtures`
//! (`cargo xtask build-plugins`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rpcnode::dispatch::Caller;
use rpcnode::plugin::{RequestContext, Transport};
use rpcnode::{Config, Node};

mod compare;
mod fanout;
mod load;
mod peers;

/// How much work each measurement does.
#[derive(Clone, Copy)]
struct Effort {
    warmup_calls: u32,
    calls: u32,
    repeats: usize,
    swaps: usize,
    window: load::Window,
    /// (clients, broadcasts) for the fan-out scenario.
    fanout: &'static [(usize, usize)],
}

const FULL: Effort = Effort {
    warmup_calls: 20_000,
    calls: 200_000,
    repeats: 5,
    swaps: 20,
    fanout: &[(1_000, 200), (10_000, 100)],
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
    fanout: &[(100, 10)],
    window: load::Window {
        warmup: Duration::from_millis(100),
        measure: Duration::from_millis(400),
    },
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let plugins = args.get(1).context("serve needs a plugins folder")?;
        return fanout::serve(Path::new(plugins)).await;
    }
    let smoke = args.iter().any(|arg| arg == "--smoke");
    args.retain(|arg| arg != "--smoke");
    let effort = if smoke { SMOKE } else { FULL };
    let wanted = |name: &str| args.is_empty() || args.iter().any(|wanted| wanted == name);
    if wanted("overhead") {
        overhead(effort).await?;
    }
    if wanted("cold-start") {
        cold_start(effort).await?;
    }
    if wanted("reload") {
        reload(effort).await?;
    }
    if wanted("fanout") {
        let plugin = target().join("plugins/data_service.wasm");
        println!("| Fan-out | Deliveries | Publish → receipt | Server memory per idle client |");
        println!("|---|---|---|---|");
        for &(clients, messages) in effort.fanout {
            fanout::run(&plugin, clients, messages).await?;
        }
    }
    if wanted("compare") {
        compare::run(
            &target().join("plugins/calculator.wasm"),
            effort.window,
            effort.repeats,
        )
        .await?;
    }
    Ok(())
}

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A temporary plugins folder with copies of `plugins` (file names in
/// `target/plugins` or `target/plugin-fixtures`).
fn folder(plugins: &[(&str, &str)]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (source, name) in plugins {
        let found = ["plugins", "plugin-fixtures"]
            .iter()
            .map(|sub| target().join(sub).join(source))
            .find(|path| path.exists())
            .with_context(|| format!("{source} is not built: run `cargo xtask build-plugins`"))?;
        std::fs::copy(found, dir.path().join(name))?;
    }
    Ok(dir)
}

/// The median of `samples`.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn overhead(effort: Effort) -> anyhow::Result<()> {
    let dir = folder(&[("calculator.wasm", "calculator.wasm")])?;
    let node = Node::start(Config::new(dir.path())).await?;
    let caller = Caller {
        transport: Transport::Http,
        client_id: None,
        remote_addr: "127.0.0.1:1".parse()?,
        headers: Arc::from(Vec::new()),
    };
    let request = br#"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":1}"#;
    let mut per_request = Vec::new();
    for _ in 0..effort.repeats {
        for _ in 0..effort.warmup_calls {
            node.handle_message(request, &caller).await;
        }
        let started = Instant::now();
        for _ in 0..effort.calls {
            node.handle_message(request, &caller).await;
        }
        per_request.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(effort.calls));
    }

    let table = node.registry.current();
    let route = table.route("add").context("calculator has add")?;
    let params = Some(r#"{"a":1,"b":2}"#.to_owned());
    let context = RequestContext {
        request_id: Some("1".into()),
        transport: Transport::Http,
        client_id: None,
        remote_addr: None,
        headers: Vec::new(),
    };
    let mut per_call = Vec::new();
    for _ in 0..effort.repeats {
        let started = Instant::now();
        for _ in 0..effort.calls {
            let deadline = Instant::now() + Duration::from_secs(30);
            let _ = route
                .plugin
                .handle(&route.method, params.as_ref(), &context, deadline)
                .await;
        }
        per_call.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(effort.calls));
    }
    println!(
        "| warm request through the dispatcher (calculator `add`) | {:.2} µs |",
        median(per_request)
    );
    println!(
        "| warm plugin call alone (`handle` on a pooled instance) | {:.2} µs |",
        median(per_call)
    );
    Ok(())
}

async fn cold_start(effort: Effort) -> anyhow::Result<()> {
    let mut plugins: Vec<String> = std::fs::read_dir(target().join("plugins"))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".wasm"))
        .collect();
    plugins.sort();
    for plugin in plugins {
        let dir = folder(&[(&plugin, &plugin)])?;
        let cache = tempfile::tempdir()?;
        let size = std::fs::metadata(dir.path().join(&plugin))?.len();
        let mut compiled = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..effort.repeats {
            std::fs::remove_dir_all(cache.path()).ok();
            compiled.push(start_once(dir.path(), cache.path()).await?);
            cached.push(start_once(dir.path(), cache.path()).await?);
        }
        println!(
            "| {plugin} | {} KiB | {:.1} ms | {:.1} ms |",
            size / 1024,
            median(compiled),
            median(cached)
        );
    }
    Ok(())
}

/// Milliseconds to start a node (compile or cache load, instantiate, describe).
async fn start_once(plugins: &Path, cache: &Path) -> anyhow::Result<f64> {
    let mut config = Config::new(plugins);
    config.cache_dir = Some(cache.to_path_buf());
    let started = Instant::now();
    let node = Node::start(config).await?;
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    anyhow::ensure!(
        node.registry.current().failures.is_empty(),
        "a plugin failed to load"
    );
    node.shutdown().await;
    Ok(elapsed)
}

async fn reload(effort: Effort) -> anyhow::Result<()> {
    let dir = folder(&[("calculator.wasm", "calculator.wasm")])?;
    let cache = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.watch = true;
    config.cache_dir = Some(cache.path().to_path_buf());
    let node = Node::start(config).await?;
    let versions = [
        ("calculator_v2.wasm", "2.0.0"),
        ("calculator.wasm", "0.1.0"),
    ];
    let mut latencies = Vec::new();
    for round in 0..effort.swaps {
        let (source, version) = versions[round % 2];
        let bytes = std::fs::read(
            target()
                .join(if round % 2 == 0 {
                    "plugin-fixtures"
                } else {
                    "plugins"
                })
                .join(source),
        )?;
        let written = Instant::now();
        std::fs::write(dir.path().join("calculator.wasm"), bytes)?;
        loop {
            let table = node.registry.current();
            if table
                .plugin("calculator")
                .is_some_and(|plugin| plugin.manifest.version == version)
            {
                break;
            }
            anyhow::ensure!(
                written.elapsed() < Duration::from_secs(10),
                "reload never happened"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(written.elapsed().as_secs_f64() * 1e3);
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "| reload, file written → new version serving ({} swaps, cached after the first two) | median {:.0} ms, max {:.0} ms |",
        effort.swaps,
        median(latencies),
        sorted[sorted.len() - 1]
    );
    node.shutdown().await;
    Ok(())
}
