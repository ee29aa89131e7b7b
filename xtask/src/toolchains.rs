//! The compilers plugins need, installed on demand: the wasm32-wasip2 Rust
//! target through rustup, and the pinned JavaScript and Python component
//! builders (`xtask/toolchains/`) into `target/toolchains/` so nothing has to be
//! installed by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::run;

pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Install the wasm32-wasip2 standard library through rustup when missing.
pub fn ensure_wasm_target(root: &Path) -> anyhow::Result<()> {
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
    run(&mut rustup).with_context(|| format!("installing the {WASM_TARGET} target with rustup"))
}

/// componentize-js and rolldown at the versions `xtask/toolchains/js/package-lock.json`
/// pins, installed with `npm install` (the lock lists only some platforms'
/// optional binaries, which `npm ci` refuses); returns their `node_modules` folder.
pub fn js_tools(root: &Path) -> anyhow::Result<PathBuf> {
    require(
        "node",
        "Node.js (20 or newer, with npm) builds the JavaScript plugins and runs the example client",
    )?;
    require(
        "npm",
        "npm (part of Node.js) installs the JavaScript plugin tools",
    )?;
    let dir = root.join("target/toolchains/js");
    let node_modules = dir.join("node_modules");
    let pinned = ["package.json", "package-lock.json"];
    if up_to_date(root, "js", &dir, &pinned) && node_modules.join(".bin/componentize-js").exists() {
        return Ok(node_modules);
    }
    eprintln!(
        "installing the JavaScript plugin tools into {}",
        dir.display()
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in pinned {
        crate::copy(
            &root.join("xtask/toolchains/js").join(file),
            &dir.join(file),
        )?;
    }
    let mut npm = Command::new("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir);
    run(&mut npm).context("installing componentize-js with npm")?;
    record_installed(root, "js", &dir, &pinned)?;
    Ok(node_modules)
}

/// componentize-py (and the packages the tests' Python clients use) from
/// `xtask/toolchains/python/requirements.txt`, installed into a virtual
/// environment; returns the path of the `componentize-py` command.
pub fn python_tools(root: &Path) -> anyhow::Result<PathBuf> {
    require(
        "python3",
        "Python 3.10 or newer (with venv) builds the Python plugins",
    )?;
    let dir = root.join("target/toolchains/python");
    let componentize_py = dir.join("venv/bin/componentize-py");
    let pinned = ["requirements.txt"];
    if up_to_date(root, "python", &dir, &pinned) && componentize_py.exists() {
        return Ok(componentize_py);
    }
    eprintln!("installing the Python plugin tools into {}", dir.display());
    let venv = dir.join("venv");
    let mut python = Command::new("python3");
    python.args(["-m", "venv", "--clear"]).arg(&venv);
    run(&mut python)
        .context("creating a Python virtual environment (is the venv module installed?)")?;
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(root.join("xtask/toolchains/python/requirements.txt"));
    run(&mut pip).context("installing componentize-py with pip")?;
    record_installed(root, "python", &dir, &pinned)?;
    Ok(componentize_py)
}

/// Fail with `why` when `program` is not on the PATH.
fn require(program: &str, why: &str) -> anyhow::Result<()> {
    match Command::new(program).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => bail!("`{program}` was not found on the PATH. {why}; install it and run again."),
    }
}

/// Whether the tools in `dir` were installed from the current pinned files.
fn up_to_date(root: &Path, language: &str, dir: &Path, files: &[&str]) -> bool {
    let source = root.join("xtask/toolchains").join(language);
    files.iter().all(|file| {
        let wanted = std::fs::read(source.join(file));
        let installed = std::fs::read(dir.join("installed").join(file));
        matches!((wanted, installed), (Ok(wanted), Ok(installed)) if wanted == installed)
    })
}

/// Keep copies of the pinned files the tools in `dir` were installed from.
fn record_installed(root: &Path, language: &str, dir: &Path, files: &[&str]) -> anyhow::Result<()> {
    let installed = dir.join("installed");
    std::fs::create_dir_all(&installed)
        .with_context(|| format!("creating {}", installed.display()))?;
    let source = root.join("xtask/toolchains").join(language);
    for file in files {
        crate::copy(&source.join(file), &installed.join(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_what_it_is_for() {
        let error = require("rpcnode-no-such-program", "It builds things").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`rpcnode-no-such-program` was not found on the PATH. It builds things; install it and run again."
        );
        assert!(require("cargo", "unused").is_ok());
    }
}
