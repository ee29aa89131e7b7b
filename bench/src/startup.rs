//! Getting plugins serving: a cold start per plugin (compiling versus loading
//! from the compile cache) and hot reload latency.

use std::path::Path;
use std::time::{Duration, Instant};

use rpcnode::{Config, Node};

use crate::{Effort, LANGUAGES, built, folder, median, target};

/// Start a node on each example plugin of each language, compiled and cached.
/// A brief run (`effort.every_plugin` false) starts only the calculators.
pub async fn cold_start(effort: Effort) -> anyhow::Result<()> {
    println!("| Plugin | Language | Component size | Compiled | From the cache |");
    println!("|---|---|---|---|---|");
    for (language, examples) in LANGUAGES {
        let mut plugins: Vec<String> = std::fs::read_dir(target().join(examples))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".wasm"))
            .filter(|name| effort.every_plugin || name == "calculator.wasm")
            .collect();
        plugins.sort();
        for plugin in plugins {
            let dir = folder(&[(built(examples, &plugin)?, &plugin)])?;
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
                "| {plugin} | {language} | {} | {:.1} ms | {:.1} ms |",
                size_text(size),
                median(compiled),
                median(cached)
            );
        }
    }
    Ok(())
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", bytes / 1024)
    }
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

/// Milliseconds from writing a new version of the calculator to it serving.
pub async fn reload(effort: Effort) -> anyhow::Result<()> {
    let dir = folder(&[(built("plugins", "calculator.wasm")?, "calculator.wasm")])?;
    let cache = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.watch = true;
    config.cache_dir = Some(cache.path().to_path_buf());
    let node = Node::start(config).await?;
    let versions = [
        (built("plugin-fixtures", "calculator_v2.wasm")?, "2.0.0"),
        (built("plugins", "calculator.wasm")?, "0.1.0"),
    ];
    let mut latencies = Vec::new();
    for round in 0..effort.swaps {
        let (source, version) = &versions[round % 2];
        let bytes = std::fs::read(source)?;
        let written = Instant::now();
        std::fs::write(dir.path().join("calculator.wasm"), bytes)?;
        loop {
            let table = node.registry.current();
            if table
                .plugin("calculator")
                .is_some_and(|plugin| plugin.manifest.version == *version)
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
