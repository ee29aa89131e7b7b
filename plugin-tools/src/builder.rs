//! Building one plugin project, in any of the supported languages, into a
//! `.wasm` component.
//!
//! A project is a folder: a Rust crate (`Cargo.toml`), a JavaScript or
//! TypeScript module (`app.js` / `app.ts`, bundled with the SDK by rolldown,
//! type-checked by `tsc` when TypeScript, and componentized by
//! componentize-js) or a Python module (`app.py`, componentized by
//! componentize-py with the SDK on its path).
//!
//! The component is written beside its destination and renamed into place,
//! so a host watching the folder never loads half a file.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context as _, bail};

use crate::toolchains::{self, WASM_TARGET};
use crate::{Kit, Language, run};

/// Build the project in `dir` into the component `out`. JavaScript,
/// TypeScript and Python projects are skipped when `out` is newer than every
/// source they use; cargo decides for Rust.
pub fn build(kit: &Kit, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let dir = &absolute(dir)?;
    let language = Language::detect(dir)?;
    let folder = out.parent().context("the output needs a folder")?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    if language != Language::Rust && is_fresh(out, &[dir, &kit.sdk(language), &kit.wit()]) {
        return Ok(());
    }
    let file_name = out
        .file_name()
        .context("the output needs a file name")?
        .to_string_lossy();
    eprintln!("building {} ({})", out.display(), language.name());
    let partial = folder.join(format!(".{file_name}.partial"));
    let built = match language {
        Language::Rust => build_rust(kit, dir, &partial),
        Language::JavaScript | Language::TypeScript => build_js(kit, language, dir, &partial),
        Language::Python => build_python(kit, dir, &partial),
    };
    built
        .and_then(|()| {
            std::fs::rename(&partial, out)
                .with_context(|| format!("moving the component to {}", out.display()))
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("building the plugin in {}", dir.display()))
}

/// `cargo build` of the crate; the component is the cdylib cargo reports.
fn build_rust(kit: &Kit, dir: &Path, out: &Path) -> anyhow::Result<()> {
    toolchains::ensure_wasm_target(dir)?;
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--release", "--target", WASM_TARGET])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .current_dir(dir)
        .stdout(Stdio::piped());
    if let Some(target) = &kit.rust_target {
        cargo.env("CARGO_TARGET_DIR", target);
    }
    let mut child = cargo.spawn().context("starting cargo")?;
    let stdout = child.stdout.take().context("cargo's output")?;
    let mut component = None;
    for line in BufReader::new(stdout).lines() {
        component = built_component(&line.context("reading cargo's output")?).or(component);
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build failed with {status}");
    }
    let component =
        component.context("cargo built no cdylib: is `crate-type = [\"cdylib\"]` set?")?;
    crate::copy(&component, out)
}

/// The `.wasm` file of a cdylib in one line of cargo's JSON messages.
fn built_component(line: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact"
        || !message["target"]["crate_types"]
            .as_array()?
            .iter()
            .any(|kind| kind == "cdylib")
    {
        return None;
    }
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|name| name.as_str())
        .find(|name| name.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Install the npm packages a project locked (`package-lock.json`) when its
/// `node_modules` is missing, with `npm ci`: exactly the locked versions.
fn install_packages(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("package-lock.json").exists() || dir.join("node_modules").exists() {
        return Ok(());
    }
    eprintln!("installing the packages of {} (npm ci)", dir.display());
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--omit=dev"])
        .current_dir(dir))
    .context("installing the project's npm packages")
}

/// Type-check a TypeScript project (`tsc --noEmit`), bundle its entry module
/// with the SDK into one module, then componentize that. componentize-js
/// reads modules relative to its working folder, so the bundle gets a
/// folder of its own.
fn build_js(kit: &Kit, language: Language, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let node_modules = toolchains::js_tools(kit)?;
    install_packages(dir)?;
    if language == Language::TypeScript {
        let mut tsc = Command::new(node_modules.join(".bin/tsc"));
        tsc.args(["--noEmit", "--pretty", "false", "--project"])
            .arg(dir)
            .current_dir(dir);
        run(&mut tsc).context("type-checking with tsc")?;
    }
    let scratch = kit
        .tools
        .join("js-build")
        .join(format!("build-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let bundled = bundle_and_componentize(kit, &node_modules, language, dir, &scratch, out);
    let _ = std::fs::remove_dir_all(&scratch);
    bundled
}

fn bundle_and_componentize(
    kit: &Kit,
    node_modules: &Path,
    language: Language,
    dir: &Path,
    scratch: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let sdk = kit.sdk(language);
    let entry = scratch.join("entry.js");
    write_entry(&entry, &js_entry(&absolute(&dir.join(language.marker()))?))?;
    let mut rolldown = Command::new(node_modules.join(".bin/rolldown"));
    rolldown
        .args(["--logLevel", "warn", "--config"])
        .arg(sdk.join("rolldown.config.mjs"))
        .env("RPCNODE_PLUGIN_ENTRY", &entry)
        .env("RPCNODE_PLUGIN_BUNDLE", scratch.join("plugin.js"))
        .current_dir(dir);
    run(&mut rolldown).context("bundling with rolldown")?;
    let mut componentize = Command::new(node_modules.join(".bin/componentize-js"));
    componentize
        .arg("plugin.js")
        .arg("--wit")
        .arg(kit.wit())
        .args([
            "--world-name",
            "plugin",
            "--disable",
            "http",
            "fetch-event",
            "--out",
        ])
        .arg(absolute(out)?)
        .current_dir(scratch);
    run(&mut componentize).context("componentizing with componentize-js")
}

/// The module componentize-js builds for the entry module at `entry`: the
/// entry's exports, and a `batchHandler` made from its `handler` by the SDK
/// unless the entry exports its own (a local export hides the one of
/// `export *`).
fn js_entry(entry: &Path) -> String {
    let entry = serde_json::to_string(&entry.to_string_lossy()).expect("a string serialises");
    format!(
        "export * from {entry};\n\
         import * as plugin from {entry};\n\
         import {{ batchHandlerFor }} from 'rpcnode-sdk';\n\
         export const batchHandler = plugin.batchHandler ?? batchHandlerFor(plugin.handler);\n"
    )
}

/// The module componentize-py builds: `app`'s names (and its `Handler`,
/// should `__all__` leave it out), and a `BatchHandler` made from that
/// `Handler` by the SDK unless `app` defines its own.
const PYTHON_ENTRY: &str = "\
from app import *
import app as _app
import rpcnode as _rpcnode
Handler = _app.Handler
BatchHandler = getattr(_app, 'BatchHandler', None) or _rpcnode.batch_handler_for(Handler)
";

fn write_entry(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Componentize `app.py` with the SDK on the module path.
fn build_python(kit: &Kit, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let componentize_py = toolchains::python_tools(kit)?;
    let scratch = kit
        .tools
        .join("python-build")
        .join(format!("build-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    write_entry(&scratch.join("rpcnode_entry.py"), PYTHON_ENTRY)?;
    let mut componentize = Command::new(componentize_py);
    componentize
        .arg("--wit-path")
        .arg(kit.wit())
        .args([
            "--world",
            "plugin",
            "--quiet",
            "componentize",
            "rpcnode_entry",
            "--python-path",
        ])
        .arg(&scratch)
        .arg("--python-path")
        .arg(dir)
        .arg("--python-path")
        .arg(kit.sdk(Language::Python))
        .arg("--output")
        .arg(absolute(out)?);
    let built = run(&mut componentize).context("componentizing with componentize-py");
    let _ = std::fs::remove_dir_all(&scratch);
    built
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Whether `out` exists and is newer than every file under `inputs`
/// (installed packages and caches aside).
fn is_fresh(out: &Path, inputs: &[&Path]) -> bool {
    let Ok(built) = std::fs::metadata(out).and_then(|meta| meta.modified()) else {
        return false;
    };
    inputs
        .iter()
        .all(|input| newest_change(input).is_some_and(|changed| changed <= built))
}

/// Whether a file or folder named `name` is a build output or cache rather
/// than a source.
pub fn is_generated(name: &str) -> bool {
    matches!(name, "node_modules" | "__pycache__" | "target") || name.starts_with('.')
}

/// The latest modification time of any file under `path`.
fn newest_change(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut newest = meta.modified().ok()?;
    for entry in std::fs::read_dir(path).ok()? {
        let entry = entry.ok()?;
        if entry.file_name().to_str().is_some_and(is_generated) {
            continue;
        }
        newest = newest.max(newest_change(&entry.path())?);
    }
    Some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_is_the_cdylib_cargo_reports() {
        let library = r#"{"reason":"compiler-artifact","target":{"crate_types":["lib"]},"filenames":["/t/libserde.rlib"]}"#;
        let plugin = r#"{"reason":"compiler-artifact","target":{"crate_types":["cdylib"]},"filenames":["/t/hello.wasm"]}"#;
        assert_eq!(built_component(library), None);
        assert_eq!(built_component("not json"), None);
        assert_eq!(
            built_component(plugin),
            Some(PathBuf::from("/t/hello.wasm"))
        );
    }
}
