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

const WARMUP: u32 = 20_000;
const CALLS: u32 = 200_000;
const REPEATS: usize = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scenarios: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| scenarios.is_empty() || scenarios.iter().any(|wanted| wanted == name);
    if wanted("overhead") {
        overhead().await?;
    }
    if wanted("cold-start") {
        cold_start().await?;
    }
    if wanted("reload") {
        reload().await?;
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

async fn overhead() -> anyhow::Result<()> {
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
    for _ in 0..REPEATS {
        for _ in 0..WARMUP {
            node.handle_message(request, &caller).await;
        }
        let started = Instant::now();
        for _ in 0..CALLS {
            node.handle_message(request, &caller).await;
        }
        per_request.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
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
    for _ in 0..REPEATS {
        let started = Instant::now();
        for _ in 0..CALLS {
            let deadline = Instant::now() + Duration::from_secs(30);
            let _ = route
                .plugin
                .handle(&route.method, params.as_ref(), &context, deadline)
                .await;
        }
        per_call.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
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

async fn cold_start() -> anyhow::Result<()> {
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
        for _ in 0..REPEATS {
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

async fn reload() -> anyhow::Result<()> {
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
    for round in 0..20 {
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
        "| reload, file written → new version serving (20 swaps, cached after the first two) | median {:.0} ms, max {:.0} ms |",
        median(latencies),
        sorted[sorted.len() - 1]
    );
    node.shutdown().await;
    Ok(())
}
