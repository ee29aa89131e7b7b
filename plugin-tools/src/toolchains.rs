//! The compilers plugins need, installed on demand: the wasm32-wasip2 Rust
//! target through rustup, and the JavaScript and Python component builders at
//! the versions pinned in `plugin-tools/toolchains/`, into the kit's tools
//! folder, so nothing has to be installed by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{Kit, run};

pub const WASM_TARGET: &str = "wasm32-wasip2";

/// A pinned file: its name, and its contents as this program was built with.
type Pin = (&'static str, &'static str);

const JS_PINS: &[Pin] = &[
    (
        "package.json",
        include_str!("../toolchains/js/package.json"),
    ),
    (
        "package-lock.json",
        include_str!("../toolchains/js/package-lock.json"),
    ),
];

const PYTHON_PINS: &[Pin] = &[(
    "requirements.txt",
    include_str!("../toolchains/python/requirements.txt"),
)];

/// Install the wasm32-wasip2 standard library through rustup when missing,
/// for the toolchain that builds in `dir`.
pub fn ensure_wasm_target(dir: &Path) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
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
    rustup.args(["target", "add", WASM_TARGET]).current_dir(dir);
    run(&mut rustup).with_context(|| format!("installing the {WASM_TARGET} target with rustup"))
}

/// componentize-js, rolldown and TypeScript at the versions the lock file
/// pins, installed with `npm install` (the lock lists only some platforms'
/// optional binaries, which `npm ci` refuses); returns their `node_modules`.
pub fn js_tools(kit: &Kit) -> anyhow::Result<PathBuf> {
    require(
        "node",
        "Node.js (20 or newer, with npm) builds the JavaScript and TypeScript plugins",
    )?;
    require(
        "npm",
        "npm (part of Node.js) installs the JavaScript plugin tools",
    )?;
    let dir = kit.tools.join("js");
    let node_modules = dir.join("node_modules");
    if up_to_date(&dir, JS_PINS) && node_modules.join(".bin/componentize-js").exists() {
        return Ok(node_modules);
    }
    eprintln!(
        "installing the JavaScript plugin tools into {}",
        dir.display()
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_pins(&dir, JS_PINS)?;
    let mut npm = Command::new("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir);
    run(&mut npm).context("installing componentize-js with npm")?;
    write_pins(&dir.join("installed"), JS_PINS)?;
    Ok(node_modules)
}

/// componentize-py (and the packages the tests' Python clients use) from the
/// pinned requirements, installed into a virtual environment; returns the
/// path of the `componentize-py` command.
pub fn python_tools(kit: &Kit) -> anyhow::Result<PathBuf> {
    require(
        "python3",
        "Python 3.10 or newer (with venv) builds the Python plugins",
    )?;
    let dir = kit.tools.join("python");
    let componentize_py = dir.join("venv/bin/componentize-py");
    if up_to_date(&dir, PYTHON_PINS) && componentize_py.exists() {
        return Ok(componentize_py);
    }
    eprintln!("installing the Python plugin tools into {}", dir.display());
    let venv = dir.join("venv");
    let mut python = Command::new("python3");
    python.args(["-m", "venv", "--clear"]).arg(&venv);
    run(&mut python)
        .context("creating a Python virtual environment (is the venv module installed?)")?;
    write_pins(&dir, PYTHON_PINS)?;
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(dir.join("requirements.txt"));
    run(&mut pip).context("installing componentize-py with pip")?;
    write_pins(&dir.join("installed"), PYTHON_PINS)?;
    Ok(componentize_py)
}

/// Fail with `why` when `program` is not on the PATH.
pub fn require(program: &str, why: &str) -> anyhow::Result<()> {
    match Command::new(program).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => bail!("`{program}` was not found on the PATH. {why}; install it and run again."),
    }
}

/// Whether the tools in `dir` were installed from these pins: copies of them
/// are kept in `dir/installed` once an install succeeds.
fn up_to_date(dir: &Path, pins: &[Pin]) -> bool {
    pins.iter().all(|(file, wanted)| {
        std::fs::read(dir.join("installed").join(file))
            .is_ok_and(|installed| installed == wanted.as_bytes())
    })
}

fn write_pins(dir: &Path, pins: &[Pin]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (file, contents) in pins {
        let path = dir.join(file);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
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
