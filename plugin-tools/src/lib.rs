//! Plugin projects for rpcnode: start one from a template in any of the
//! supported languages and build it into a `.wasm` component, once or on every
//! change. The `rpcnode` binary offers these as `rpcnode new` and `rpcnode
//! build`; `cargo xtask` uses them on the checkout's own sources.

pub mod builder;
pub mod command;
pub mod kit;
pub mod language;
pub mod scaffold;
pub mod toolchains;
pub mod watch;

pub use builder::build;
pub use kit::Kit;
pub use language::Language;

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

/// Run `command` to completion; an error names it when it fails.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Copy a file; an error names both paths.
pub fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
