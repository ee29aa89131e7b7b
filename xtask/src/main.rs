//! Project automation, run as `cargo xtask <command>`:
//!
//! - `build-plugins`: compile every example plugin (Rust, JavaScript, Python)
//!   and the test fixtures; see [`examples`] for where each goes.
//! - `build-plugin DIR [--out FOLDER]`: compile one plugin project in any
//!   language into `FOLDER/<folder name>.wasm` (default `target/plugins`),
//!   with the checkout's own SDKs (`rpcnode build` uses the copies it carries).
//! - `new NAME --lang rust|js|ts|python [--dir PARENT]`: start a plugin project.
//! - `run [FLAGS…]`: build the plugins and start the host on them
//!   (`target/plugins` on 127.0.0.1:8000 unless FLAGS say otherwise).
//! - `test [ARGS…]`: build the plugins and the host, check that `rpcnode new`
//!   and `rpcnode build` make a working project in each language, run every
//!   test, then a brief smoke run of the benchmarks and of each fuzz target.
//! - `bench [--smoke] [SCENARIO…]`: build the plugins and run the
//!   measurements (see BENCHMARKS.md).
//! - `fuzz [TARGET…] [--seconds N]`: build the fuzz targets and run each
//!   (all by default) for N seconds (default 60); see docs/fuzzing.md.
//!
//! The JavaScript and Python tools are installed on first use into
//! `target/toolchains/` at the versions pinned in `plugin-tools/toolchains/`.

mod examples;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use rpcnode_plugin_tools::command::folder_name;
use rpcnode_plugin_tools::toolchains::{js_tools, require};
use rpcnode_plugin_tools::{Kit, Language, run, scaffold};

/// Programs the tests start that the build does not fetch.
const TEST_PREREQUISITES: [(&str, &str); 3] = [
    (
        "redis-server",
        "The cluster tests start Redis servers of their own (Debian: apt install redis-server)",
    ),
    (
        "redis-cli",
        "The cluster tests check their Redis servers with redis-cli (Debian: apt install redis-server)",
    ),
    (
        "chromium",
        "The dashboard test drives Chromium at /usr/bin/chromium (Debian: apt install chromium)",
    ),
];

const USAGE: &str = "usage: cargo xtask <command>
  build-plugins                              build every example plugin and test fixture
  build-plugin DIR [--out FOLDER]            build one plugin project (default FOLDER: target/plugins)
  new NAME --lang rust|js|ts|python [--dir PARENT]  start a plugin project in PARENT/NAME
  run [FLAGS…]                               build the plugins and serve them
  test [ARGS…]                               build everything and run every test
  bench [--smoke] [SCENARIO…]                run the benchmarks
  fuzz [TARGET…] [--seconds N]               run the fuzz targets (default: all, 60 s each)";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut rest: Vec<String> = args.collect();
    // `cargo xtask run -- --port 9000` passes the `--` through: drop it.
    if rest.first().is_some_and(|arg| arg == "--") {
        rest.remove(0);
    }
    let root = workspace_root();
    match command.as_str() {
        "build-plugins" => examples::build_plugins(&root),
        "build-plugin" => {
            let out = take_option(&mut rest, "--out")?
                .map_or_else(|| root.join("target/plugins"), PathBuf::from);
            let [dir] = rest.as_slice() else {
                bail!("{USAGE}");
            };
            let dir = Path::new(dir);
            let name = folder_name(dir)?;
            rpcnode_plugin_tools::build(
                &Kit::checkout(&root),
                dir,
                &out.join(format!("{name}.wasm")),
            )?;
            eprintln!("built {}", out.join(format!("{name}.wasm")).display());
            Ok(())
        }
        "new" => {
            let language = take_option(&mut rest, "--lang")?
                .context("`new` needs --lang rust, js, ts or python")?;
            let parent = take_option(&mut rest, "--dir")?.unwrap_or_else(|| ".".to_owned());
            let [name] = rest.as_slice() else {
                bail!("{USAGE}");
            };
            let language = Language::parse(&language)?;
            let dir =
                scaffold::new_plugin(&Kit::checkout(&root), name, language, Path::new(&parent))?;
            eprintln!(
                "created {} plugin {name} in {}\nbuild it into target/plugins with: cargo xtask build-plugin {}",
                language.name(),
                dir.display(),
                dir.display()
            );
            Ok(())
        }
        "run" => {
            examples::build_plugins(&root)?;
            let mut cargo = cargo(&root, &["run", "--release", "--package", "rpcnode", "--"]);
            if !rest.iter().any(|arg| arg.starts_with("--plugins")) {
                cargo.arg("--plugins").arg(root.join("target/plugins"));
            }
            run(cargo.args(&rest))
        }
        "test" => {
            for (program, why) in TEST_PREREQUISITES {
                require(program, why)?;
            }
            examples::build_plugins(&root)?;
            // The tests use the pinned JavaScript tools too (the OpenRPC
            // validator, playwright-core): bring them up to date.
            js_tools(&Kit::checkout(&root))?;
            run(&mut cargo(
                &root,
                &["build", "--release", "--workspace", "--all-targets"],
            ))?;
            check_new_projects(&root)?;
            warm_test_compile_cache(&root)?;
            let mut cargo = cargo(&root, &["test", "--release", "--workspace"]);
            run(cargo.args(&rest))?;
            // A brief run of every benchmark keeps the harness working.
            run(&mut cargo_bench(&root, &["--smoke".to_owned()]))?;
            // And a brief run of every fuzz target keeps the fuzzers working
            // (and tries the inputs found so far).
            fuzz::fuzz(&root, &fuzz::TARGETS.map(String::from), 10)
        }
        "fuzz" => {
            let seconds = take_option(&mut rest, "--seconds")?
                .map_or(Ok(60), |text| text.parse())
                .context("--seconds must be a whole number")?;
            examples::build_plugins(&root)?;
            if rest.is_empty() {
                rest = fuzz::TARGETS.map(String::from).to_vec();
            }
            fuzz::fuzz(&root, &rest, seconds)
        }
        "bench" => {
            examples::build_plugins(&root)?;
            run(&mut cargo_bench(&root, &rest))
        }
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown command {command:?}")
        }
    }
}

/// `rpcnode new` and `rpcnode build`, run as a user runs them: a project in
/// each language in a temporary folder outside the checkout, built into
/// `target/plugins-scaffold/LANGUAGE/` where the tests load it. What `new`
/// writes must build and load unedited.
fn check_new_projects(root: &Path) -> anyhow::Result<()> {
    let parent = std::env::temp_dir().join(format!("rpcnode-new-projects-{}", std::process::id()));
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let checked = Language::ALL.into_iter().try_for_each(|language| {
        let name = format!("hello_{}", language.name());
        let mut new = rpcnode(root);
        new.args(["new", &name, "--lang", language.name(), "--dir"])
            .arg(&parent);
        run(&mut new)?;
        let mut build = rpcnode(root);
        build
            .arg("build")
            .arg(parent.join(&name))
            .arg("--out")
            .arg(root.join("target/plugins-scaffold").join(language.name()));
        run(&mut build)
    });
    let _ = std::fs::remove_dir_all(&parent);
    checked
}

/// The `rpcnode` binary `cargo build --release` made. It shares the tools
/// installed for the examples and, for Rust, their target folder, so
/// nothing is installed or compiled twice.
fn rpcnode(root: &Path) -> Command {
    let mut command = Command::new(root.join("target/release/rpcnode"));
    command
        .env("RPCNODE_TOOLS_DIR", root.join("target/toolchains"))
        .env("CARGO_TARGET_DIR", root.join("target/wasm"));
    command
}

/// Compile the JavaScript and Python components the tests load into the
/// compile cache they share (`rpcnode --check`), before the tests run: each
/// takes seconds, and compiling them during the tests would starve the
/// tests that measure time.
fn warm_test_compile_cache(root: &Path) -> anyhow::Result<()> {
    let folders = [
        "plugins-js",
        "plugins-python",
        "plugin-fixtures-js",
        "plugin-fixtures-python",
        "plugins-scaffold/js",
        "plugins-scaffold/ts",
        "plugins-scaffold/python",
    ];
    for folder in folders {
        let mut check = Command::new(root.join("target/release/rpcnode"));
        check
            .arg("--check")
            .arg("--plugins")
            .arg(root.join("target").join(folder))
            .arg("--cache-dir")
            .arg(root.join("target/test-compile-cache"))
            .env("RUST_LOG", "warn");
        run(&mut check)?;
    }
    Ok(())
}

/// Remove `--name VALUE` (or `--name=VALUE`) from `args` and return VALUE.
fn take_option(args: &mut Vec<String>, name: &str) -> anyhow::Result<Option<String>> {
    let Some(index) = args
        .iter()
        .position(|arg| arg == name || arg.starts_with(&format!("{name}=")))
    else {
        return Ok(None);
    };
    let arg = args.remove(index);
    if let Some(value) = arg.strip_prefix(&format!("{name}=")) {
        return Ok(Some(value.to_owned()));
    }
    if index >= args.len() {
        bail!("{name} needs a value");
    }
    Ok(Some(args.remove(index)))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn options_are_taken_out_of_the_arguments() {
        let mut rest = args(&["hello", "--lang", "js", "--dir=out"]);
        assert_eq!(
            take_option(&mut rest, "--lang").unwrap().as_deref(),
            Some("js")
        );
        assert_eq!(
            take_option(&mut rest, "--dir").unwrap().as_deref(),
            Some("out")
        );
        assert_eq!(take_option(&mut rest, "--out").unwrap(), None);
        assert_eq!(rest, ["hello"]);
        let error = take_option(&mut args(&["x", "--lang"]), "--lang").unwrap_err();
        assert_eq!(error.to_string(), "--lang needs a value");
    }
}
