//! Project automation, run as `cargo xtask <command>`:
//!
//! - `build-plugins`: compile every plugin in `plugins/` to wasm32-wasip2 and
//!   put the examples in `target/plugins/` (with their `.toml` files), the
//!   optional ones (`plugins/optional/`, such as `auth`, which changes what
//!   every request needs) in `target/plugins-optional/`, and the test fixtures
//!   in `target/plugin-fixtures/`.
//! - `run [FLAGS…]`: build the plugins and start the host on them
//!   (127.0.0.1:8000 unless FLAGS say otherwise).
//! - `test [ARGS…]`: build the plugins, run every test, then a brief smoke
//!   run of the benchmarks.
//! - `bench [--smoke] [SCENARIO…]`: build the plugins and run the
//!   measurements (see BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root();
    match command.as_str() {
        "build-plugins" => build_plugins(&root),
        "run" => {
            build_plugins(&root)?;
            let plugins = root.join("target/plugins");
            let mut cargo = cargo(&root, &["run", "--release", "--package", "rpcnode", "--"]);
            cargo.arg("--plugins").arg(plugins).args(&rest);
            run(cargo)
        }
        "test" => {
            build_plugins(&root)?;
            let mut cargo = cargo(&root, &["test", "--release", "--workspace"]);
            cargo.args(&rest);
            run(cargo)?;
            // A brief run of every benchmark keeps the harness working.
            run(cargo_bench(&root, &["--smoke".to_owned()]))
        }
        "bench" => {
            build_plugins(&root)?;
            run(cargo_bench(&root, &rest))
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <build-plugins | run [FLAGS…] | test [ARGS…] | bench [--smoke] [SCENARIO…]>"
            );
            bail!("unknown command {command:?}")
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn build_plugins(root: &Path) -> anyhow::Result<()> {
    ensure_wasm_target(root)?;
    let plugins_dir = root.join("plugins");
    let wasm_dir = root.join("target/wasm");
    let mut cargo = cargo(
        &plugins_dir,
        &["build", "--release", "--target", WASM_TARGET],
    );
    cargo.env("CARGO_TARGET_DIR", &wasm_dir);
    run(cargo).context("building the plugins")?;

    let built = wasm_dir.join(WASM_TARGET).join("release");
    let outputs = [
        (crates_in(&plugins_dir)?, "target/plugins"),
        (
            crates_in(&plugins_dir.join("optional"))?,
            "target/plugins-optional",
        ),
        (
            crates_in(&plugins_dir.join("fixtures"))?,
            "target/plugin-fixtures",
        ),
    ];
    for (crates, out) in outputs {
        let out = root.join(out);
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        for (name, source_dir) in crates {
            let wasm = built.join(format!("{}.wasm", name.replace('-', "_")));
            copy(&wasm, &out.join(format!("{name}.wasm")))?;
            let config = source_dir.join(format!("{name}.toml"));
            if config.exists() {
                copy(&config, &out.join(format!("{name}.toml")))?;
            }
        }
        eprintln!("plugins ready in {}", out.display());
    }
    Ok(())
}

/// The crates directly inside `dir`: (name, folder) for each `*/Cargo.toml`.
fn crates_in(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("Cargo.toml").exists() {
            let name = path
                .file_name()
                .expect("a folder has a name")
                .to_string_lossy()
                .into_owned();
            crates.push((name, path));
        }
    }
    crates.sort();
    Ok(crates)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Install the wasm32-wasip2 standard library through rustup when missing.
fn ensure_wasm_target(root: &Path) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root)
        .output();
    let Ok(installed) = installed else {
        eprintln!("rustup not found; assuming the {WASM_TARGET} target is installed");
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup
        .args(["target", "add", WASM_TARGET])
        .current_dir(root);
    run(rustup).with_context(|| format!("installing the {WASM_TARGET} target with rustup"))
}

/// `cargo run` of the benchmark harness with `args`.
fn cargo_bench(root: &Path, args: &[String]) -> Command {
    let mut cargo = cargo(
        root,
        &["run", "--release", "--package", "rpcnode-bench", "--"],
    );
    cargo.args(args);
    cargo
}

fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.args(args).current_dir(dir);
    command
}

fn run(mut command: Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}
