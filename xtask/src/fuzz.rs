//! `cargo xtask fuzz`: build the libFuzzer targets of `fuzz/` with coverage
//! instrumentation on the pinned stable toolchain (the flags `cargo fuzz`
//! passes, without a sanitizer, so no nightly compiler is needed) and run
//! each for a while. Seeds come from `fuzz/corpus/TARGET/`; what the fuzzer
//! finds goes to `target/fuzz-corpus/TARGET/`, a failing input to
//! `target/fuzz-artifacts/TARGET/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use rpcnode_plugin_tools::toolchains::require;

use crate::{cargo, run};

/// Every fuzz target, as named in `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 4] = ["message", "settings", "manifest", "plugin_boundary"];

/// The host triple: naming it makes cargo keep the instrumentation flags
/// away from build scripts and proc macros.
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

const COVERAGE_FLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing";

/// Build every target, then run each of `targets` for `seconds`; an input
/// that makes a target fail fails the run.
pub fn fuzz(root: &Path, targets: &[String], seconds: u64) -> anyhow::Result<()> {
    for target in targets {
        if !TARGETS.contains(&target.as_str()) {
            bail!(
                "no fuzz target {target:?}; the targets are {}",
                TARGETS.join(", ")
            );
        }
    }
    require(
        "c++",
        "A C++ compiler builds libFuzzer for the fuzz targets (Debian: apt install g++)",
    )?;
    let mut build = cargo(
        &root.join("fuzz"),
        &[
            "build",
            "--release",
            "--locked",
            "--bins",
            "--target",
            TRIPLE,
        ],
    );
    build
        .arg("--target-dir")
        .arg(root.join("target/fuzz"))
        .env("RUSTFLAGS", COVERAGE_FLAGS);
    run(&mut build)?;
    for target in targets {
        run_target(root, target, seconds)?;
    }
    Ok(())
}

fn run_target(root: &Path, target: &str, seconds: u64) -> anyhow::Result<()> {
    let corpus = root.join("target/fuzz-corpus").join(target);
    let artifacts = root.join("target/fuzz-artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let binary: PathBuf = [root, Path::new("target/fuzz"), Path::new(TRIPLE)]
        .iter()
        .collect::<PathBuf>()
        .join("release")
        .join(target);
    let mut fuzzer = Command::new(binary);
    fuzzer
        .arg(format!("-max_total_time={seconds}"))
        // A single input may take seconds when it makes a plugin trap and
        // its instance is replaced, never ten.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=4096")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .arg(root.join("fuzz/corpus").join(target))
        .env("RUST_LOG", "off");
    eprintln!("fuzzing {target} for {seconds} s");
    run(&mut fuzzer).with_context(|| {
        format!(
            "fuzz target {target} failed; the input is in {}",
            artifacts.display()
        )
    })
}
