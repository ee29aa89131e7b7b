//! Building one plugin project, in any of the three languages, into a
//! `.wasm` component.
//!
//! A project is a folder: a Rust crate (`Cargo.toml`), a JavaScript module
//! (`app.js`, bundled with the SDK by rolldown and componentized by
//! componentize-js) or a Python module (`app.py`, componentized by
//! componentize-py with the SDK on its path).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context as _, bail};

use crate::toolchains::{self, WASM_TARGET};
use crate::{cargo, run};

/// A language plugins are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    JavaScript,
    Python,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::JavaScript, Language::Python];

    /// The language named on the command line: `rust`, `js` or `python`.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "rust" | "rs" => Ok(Self::Rust),
            "js" | "javascript" => Ok(Self::JavaScript),
            "python" | "py" => Ok(Self::Python),
            _ => bail!("unknown language {name:?}: expected rust, js or python"),
        }
    }

    /// The short name used in folder names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::JavaScript => "js",
            Self::Python => "python",
        }
    }

    /// The language of the project in `dir`, from its files.
    pub fn detect(dir: &Path) -> anyhow::Result<Self> {
        let found = [
            ("Cargo.toml", Self::Rust),
            ("app.js", Self::JavaScript),
            ("app.py", Self::Python),
        ]
        .into_iter()
        .find(|(file, _)| dir.join(file).is_file());
        match found {
            Some((_, language)) => Ok(language),
            None => bail!(
                "{} is not a plugin project: it has none of Cargo.toml, app.js or app.py",
                dir.display()
            ),
        }
    }
}

/// Build the project in `dir` into the component `out`. JavaScript and Python
/// projects are skipped when `out` is newer than every source they use.
pub fn build(root: &Path, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let language = Language::detect(dir)?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    match language {
        Language::Rust => build_rust(root, dir, out),
        Language::JavaScript | Language::Python => {
            let sdk = root.join("plugin-sdk").join(language.name());
            if is_fresh(out, &[dir, &sdk, &root.join("wit")]) {
                return Ok(());
            }
            eprintln!("building {} ({})", out.display(), language.name());
            if language == Language::JavaScript {
                build_js(root, dir, out)
            } else {
                build_python(root, dir, out)
            }
        }
    }
    .with_context(|| format!("building the plugin in {}", dir.display()))
}

/// A standalone crate, compiled with the examples' target folder so shared
/// dependencies build once.
fn build_rust(root: &Path, dir: &Path, out: &Path) -> anyhow::Result<()> {
    toolchains::ensure_wasm_target(root)?;
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let parsed: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", manifest.display()))?;
    let Some(name) = parsed
        .get("package")
        .and_then(|package| package.get("name"))
        .and_then(|name| name.as_str())
    else {
        bail!("{} has no package name", manifest.display());
    };
    let mut cargo = cargo(
        root,
        &[
            "build",
            "--release",
            "--target",
            WASM_TARGET,
            "--manifest-path",
        ],
    );
    cargo
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", wasm_target_dir(root));
    run(&mut cargo)?;
    crate::copy(&built_rust_component(root, name), out)
}

/// Where cargo builds every Rust plugin.
pub fn wasm_target_dir(root: &Path) -> PathBuf {
    root.join("target/wasm")
}

/// The component cargo built for crate `name`.
pub fn built_rust_component(root: &Path, name: &str) -> PathBuf {
    wasm_target_dir(root)
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")))
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

/// Bundle `app.js` with the SDK into one module, then componentize it.
/// componentize-js reads modules relative to its working folder, so the
/// bundle gets a folder of its own.
fn build_js(root: &Path, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let node_modules = toolchains::js_tools(root)?;
    install_packages(dir)?;
    let stem = out
        .file_stem()
        .context("the output needs a file name")?
        .to_string_lossy()
        .into_owned();
    let bundle_dir = root.join("target/js-build").join(&stem);
    let bundle = bundle_dir.join(format!("{stem}.js"));
    let mut rolldown = Command::new(node_modules.join(".bin/rolldown"));
    rolldown
        .args(["--logLevel", "warn", "--config"])
        .arg(root.join("plugin-sdk/js/rolldown.config.mjs"))
        .env("RPCNODE_PLUGIN_ENTRY", dir.join("app.js"))
        .env("RPCNODE_PLUGIN_BUNDLE", &bundle)
        .current_dir(dir);
    run(&mut rolldown).context("bundling with rolldown")?;
    let mut componentize = Command::new(node_modules.join(".bin/componentize-js"));
    componentize
        .arg(format!("{stem}.js"))
        .arg("--wit")
        .arg(root.join("wit"))
        .args([
            "--world-name",
            "plugin",
            "--disable",
            "http",
            "fetch-event",
            "--out",
        ])
        .arg(absolute(out)?)
        .current_dir(&bundle_dir);
    run(&mut componentize).context("componentizing with componentize-js")
}

/// Componentize `app.py` with the SDK on the module path.
fn build_python(root: &Path, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let componentize_py = toolchains::python_tools(root)?;
    let mut componentize = Command::new(componentize_py);
    componentize
        .arg("--wit-path")
        .arg(root.join("wit"))
        .args([
            "--world",
            "plugin",
            "--quiet",
            "componentize",
            "app",
            "--python-path",
        ])
        .arg(dir)
        .arg("--python-path")
        .arg(root.join("plugin-sdk/python"))
        .arg("--output")
        .arg(absolute(out)?);
    run(&mut componentize).context("componentizing with componentize-py")
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

/// The latest modification time of any file under `path`.
fn newest_change(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut newest = meta.modified().ok()?;
    for entry in std::fs::read_dir(path).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name();
        if matches!(
            name.to_str(),
            Some("node_modules" | "__pycache__" | "target")
        ) {
            continue;
        }
        newest = newest.max(newest_change(&entry.path())?);
    }
    Some(newest)
}
