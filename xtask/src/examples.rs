//! `cargo xtask build-plugins`: every plugin in `plugins/`, in every language.
//!
//! - Rust examples (`plugins/*/`) → `target/plugins/`
//! - optional Rust plugins (`plugins/optional/*/`, such as `auth`, which
//!   changes what every request needs) → `target/plugins-optional/`
//! - Rust test fixtures (`plugins/fixtures/*/`) → `target/plugin-fixtures/`
//! - JavaScript examples (`plugins/js/*/`) → `target/plugins-js/`, test
//!   fixtures (`plugins/js/fixtures/*/`) → `target/plugin-fixtures-js/`
//! - Python examples (`plugins/python/*/`) → `target/plugins-python/`, test
//!   fixtures (`plugins/python/fixtures/*/`) → `target/plugin-fixtures-python/`
//!
//! The JavaScript and Python examples are twins of Rust ones (same plugin and
//! method names), so each language gets a folder of its own.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use rpcnode_plugin_tools::toolchains::{self, WASM_TARGET};
use rpcnode_plugin_tools::{Kit, Language, copy, run};

use crate::cargo;

pub fn build_plugins(root: &Path) -> anyhow::Result<()> {
    let kit = Kit::checkout(root);
    build_rust_examples(&kit)?;
    for language in [Language::JavaScript, Language::Python] {
        let sources = root.join("plugins").join(language.name());
        let outputs = [
            (
                sources.clone(),
                format!("target/plugins-{}", language.name()),
            ),
            (
                sources.join("fixtures"),
                format!("target/plugin-fixtures-{}", language.name()),
            ),
        ];
        for (sources, out) in outputs {
            let out = root.join(out);
            for (name, dir) in projects_in(&sources, language)? {
                rpcnode_plugin_tools::build(&kit, &dir, &out.join(format!("{name}.wasm")))?;
                copy_config(&dir, &name, &out)?;
            }
            eprintln!("plugins ready in {}", out.display());
        }
    }
    Ok(())
}

/// The Rust plugins are one cargo workspace, built in one go.
fn build_rust_examples(kit: &Kit) -> anyhow::Result<()> {
    let root = &kit.sources;
    let plugins_dir = root.join("plugins");
    toolchains::ensure_wasm_target(&plugins_dir)?;
    let target = kit
        .rust_target
        .as_ref()
        .expect("a checkout has a target folder");
    let mut cargo = cargo(
        &plugins_dir,
        &["build", "--release", "--target", WASM_TARGET],
    );
    cargo.env("CARGO_TARGET_DIR", target);
    run(&mut cargo).context("building the Rust plugins")?;

    let outputs = [
        ("", "target/plugins"),
        ("optional", "target/plugins-optional"),
        ("fixtures", "target/plugin-fixtures"),
    ];
    for (folder, out) in outputs {
        let out = root.join(out);
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        for (name, dir) in projects_in(&plugins_dir.join(folder), Language::Rust)? {
            let built = target
                .join(WASM_TARGET)
                .join("release")
                .join(format!("{name}.wasm"));
            copy(&built, &out.join(format!("{name}.wasm")))?;
            copy_config(&dir, &name, &out)?;
        }
        eprintln!("plugins ready in {}", out.display());
    }
    Ok(())
}

/// The projects of `language` directly inside `dir`: (name, folder), named
/// after their folder.
fn projects_in(dir: &Path, language: Language) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut projects = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() && Language::detect(&path).ok() == Some(language) {
            let name = path
                .file_name()
                .expect("a folder has a name")
                .to_string_lossy()
                .into_owned();
            projects.push((name, path));
        }
    }
    projects.sort();
    Ok(projects)
}

/// Copy the plugin's `NAME.toml` (limits, grants, config) beside its component.
fn copy_config(dir: &Path, name: &str, out: &Path) -> anyhow::Result<()> {
    let config = dir.join(format!("{name}.toml"));
    if config.exists() {
        copy(&config, &out.join(format!("{name}.toml")))?;
    }
    Ok(())
}
