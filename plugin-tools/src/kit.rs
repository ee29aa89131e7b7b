//! What a build reads and where it keeps its tools. In a checkout, the WIT
//! files and SDKs are the checkout's own; the `rpcnode` binary carries copies
//! and writes them out once per version into its tools folder, so plugin
//! projects build from any folder on a machine with no checkout.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};

use crate::Language;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The workspace manifest the Rust SDK inherits its package fields and
/// dependency versions from.
const WORKSPACE_MANIFEST: &str = include_str!("../../Cargo.toml");

/// The inputs and tool folders of plugin builds.
#[derive(Debug, Clone)]
pub struct Kit {
    /// A folder holding `wit/` and `plugin-sdk/`.
    pub sources: PathBuf,
    /// Where the JavaScript and Python tools are installed, and where
    /// JavaScript bundles are made.
    pub tools: PathBuf,
    /// Cargo's target folder for Rust plugins; `None` leaves it to cargo
    /// (the project's `target/`, or `CARGO_TARGET_DIR`).
    pub rust_target: Option<PathBuf>,
}

impl Kit {
    /// The sources of the checkout at `root`, tools in its `target/`.
    pub fn checkout(root: &Path) -> Self {
        Self {
            sources: root.to_path_buf(),
            tools: root.join("target/toolchains"),
            rust_target: Some(root.join("target/wasm")),
        }
    }

    /// The sources this program carries, written into `tools` (once per
    /// version of them) beside the installed tools.
    pub fn embedded(tools: &Path) -> anyhow::Result<Self> {
        let sources = tools.join(format!("sdk-{}", fingerprint()));
        if !sources.join("Cargo.toml").is_file() {
            write_sources(&sources)?;
        }
        Ok(Self {
            sources,
            tools: tools.to_path_buf(),
            rust_target: None,
        })
    }

    /// The folder of the WIT package plugins implement.
    pub fn wit(&self) -> PathBuf {
        self.sources.join("wit")
    }

    /// The SDK of `language`: the Rust crate, or the JavaScript or Python module folder.
    pub fn sdk(&self, language: Language) -> PathBuf {
        let sdk = self.sources.join("plugin-sdk");
        match language {
            Language::Rust => sdk,
            Language::JavaScript | Language::TypeScript => sdk.join("js"),
            Language::Python => sdk.join("python"),
        }
    }
}

/// The tools folder when none is given: `$XDG_CACHE_HOME/rpcnode/tools`, else
/// `~/.cache/rpcnode/tools` (beside the host's compile cache).
pub fn default_tools_dir() -> anyhow::Result<PathBuf> {
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|dir| !dir.is_empty()) {
            Some(home) => PathBuf::from(home).join(".cache"),
            None => bail!("neither XDG_CACHE_HOME nor HOME is set: pass --tools-dir"),
        },
    };
    Ok(cache.join("rpcnode/tools"))
}

/// A short digest of the embedded sources: a new SDK gets a new folder, and
/// projects made against an older one keep building.
fn fingerprint() -> String {
    let mut hash = Sha256::new();
    for (path, contents) in embedded::FILES {
        hash.update(path.as_bytes());
        hash.update((contents.len() as u64).to_le_bytes());
        hash.update(contents);
    }
    hash.update(WORKSPACE_MANIFEST.as_bytes());
    hash.finalize()[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Write the embedded sources into `dir` through a folder of their own,
/// renamed into place when complete: a build running at the same time never
/// sees half of them.
fn write_sources(dir: &Path) -> anyhow::Result<()> {
    let parent = dir.parent().context("the SDK folder has a parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let partial = parent.join(format!(".sdk-{}", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    for (path, contents) in embedded::FILES {
        write(&partial.join(path), contents)?;
    }
    write(&partial.join("Cargo.toml"), sdk_workspace()?.as_bytes())?;
    match std::fs::rename(&partial, dir) {
        Ok(()) => Ok(()),
        // Another build wrote the same sources first.
        Err(_) if dir.join("Cargo.toml").is_file() => std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display())),
        Err(error) => Err(error).with_context(|| format!("moving the SDK into {}", dir.display())),
    }
}

fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let folder = path.parent().context("a file has a folder")?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// The workspace manifest beside the written SDK: the checkout's package
/// fields, lints and the versions of the dependencies the SDK names.
fn sdk_workspace() -> anyhow::Result<String> {
    let sdk_manifest = embedded::FILES
        .iter()
        .find(|(path, _)| *path == "plugin-sdk/Cargo.toml")
        .context("the SDK manifest is embedded")?
        .1;
    let sdk: toml::Table = toml::from_str(std::str::from_utf8(sdk_manifest)?)?;
    let root: toml::Table = toml::from_str(WORKSPACE_MANIFEST)?;
    let workspace = root
        .get("workspace")
        .and_then(|value| value.as_table())
        .context("the workspace manifest has [workspace]")?;
    let versions = workspace
        .get("dependencies")
        .and_then(|value| value.as_table())
        .context("the workspace manifest has [workspace.dependencies]")?;
    let mut dependencies = toml::Table::new();
    for name in sdk
        .get("dependencies")
        .and_then(|value| value.as_table())
        .into_iter()
        .flat_map(|table| table.keys())
    {
        if let Some(version) = versions.get(name) {
            dependencies.insert(name.clone(), version.clone());
        }
    }
    let mut out = toml::Table::new();
    out.insert("resolver".into(), "3".into());
    out.insert(
        "members".into(),
        vec![toml::Value::from("plugin-sdk")].into(),
    );
    for key in ["package", "lints"] {
        if let Some(value) = workspace.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    out.insert("dependencies".into(), dependencies.into());
    let mut manifest = toml::Table::new();
    manifest.insert("workspace".into(), out.into());
    Ok(format!(
        "# The rpcnode plugin SDK, written out by the rpcnode binary.\n{}",
        toml::to_string(&manifest)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_sdk_is_a_workspace_of_its_own() {
        let manifest: toml::Table = toml::from_str(&sdk_workspace().unwrap()).unwrap();
        let workspace = manifest["workspace"].as_table().unwrap();
        assert_eq!(workspace["members"].as_array().unwrap().len(), 1);
        let dependencies = workspace["dependencies"].as_table().unwrap();
        let mut names: Vec<&str> = dependencies.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["serde", "serde_json", "wit-bindgen"]);
        assert!(workspace["package"].get("edition").is_some());
    }

    #[test]
    fn the_embedded_sources_are_written_once_and_complete() {
        let tools = std::env::temp_dir().join(format!("rpcnode-kit-{}", std::process::id()));
        let kit = Kit::embedded(&tools).unwrap();
        assert!(kit.wit().join("plugin.wit").is_file());
        assert!(kit.sdk(Language::TypeScript).join("rpcnode.js").is_file());
        assert!(
            kit.sdk(Language::Python)
                .join("rpcnode/__init__.py")
                .is_file()
        );
        assert!(kit.sdk(Language::Rust).join("src/lib.rs").is_file());
        let again = Kit::embedded(&tools).unwrap();
        assert_eq!(again.sources, kit.sources);
        std::fs::remove_dir_all(tools).unwrap();
    }
}
