//! The on-disk compile cache. Compiling a 12-18 MB JavaScript or Python
//! component takes seconds; loading its compiled form takes milliseconds.
//!
//! An entry is named by the SHA-256 of the component and a hash of the
//! engine's version and settings, and starts with the SHA-256 of the rest of
//! the file. An entry whose checksum does not match, or that the engine
//! refuses, is compiled afresh and rewritten: a stale or corrupt cache is
//! never trusted.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components, stored in a folder.
pub struct CompileCache {
    dir: Option<PathBuf>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CompileCache {
    /// A cache in `dir`, or none (always compile) when `dir` is `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Components loaded from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Components compiled so far.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The component in `bytes`, from the cache when a sound entry exists,
    /// otherwise compiled (and stored). Blocking: run it off the async runtime.
    pub fn load(&self, engine: &Engine, bytes: &[u8], file: &Path) -> anyhow::Result<Component> {
        let Some(dir) = &self.dir else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return compile(engine, bytes);
        };
        let entry = dir.join(entry_name(engine, bytes));
        if let Some(component) = read_entry(engine, &entry) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            tracing::info!(file = %file.display(), entry = %entry.display(), "compile cache hit");
            return Ok(component);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let component = compile(engine, bytes)?;
        match write_entry(&component, dir, &entry) {
            Ok(()) => {
                tracing::info!(file = %file.display(), entry = %entry.display(), "compiled and cached")
            }
            Err(error) => {
                tracing::warn!(file = %file.display(), "compiled, but could not cache it: {error:#}")
            }
        }
        Ok(component)
    }
}

fn compile(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Component> {
    Component::from_binary(engine, bytes)
        .map_err(anyhow::Error::from)
        .context("not a valid WebAssembly component")
}

/// `<sha256 of the component>-<engine compatibility hash>.cwasm`.
fn entry_name(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!(
        "{}-{:016x}.cwasm",
        hex(&Sha256::digest(bytes)),
        hasher.finish()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A sound entry, or `None` (missing, corrupt or refused by the engine).
fn read_entry(engine: &Engine, entry: &Path) -> Option<Component> {
    let contents = std::fs::read(entry).ok()?;
    let (checksum, compiled) = contents.split_at_checked(32)?;
    if Sha256::digest(compiled).as_slice() != checksum {
        tracing::warn!(entry = %entry.display(), "compile cache entry is corrupt; compiling again");
        return None;
    }
    // SAFETY: `Component::deserialize` trusts its input to be what
    // `Component::serialize` wrote for a compatible engine. The entry's name
    // carries the engine's compatibility hash, the checksum above proves the
    // bytes are exactly those this process family wrote, and wasmtime checks
    // its own version header on top.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, compiled) };
    match component {
        Ok(component) => Some(component),
        Err(error) => {
            tracing::warn!(entry = %entry.display(), "compile cache entry refused ({error}); compiling again");
            None
        }
    }
}

/// Write through a temporary file and a rename, so readers never see half an
/// entry.
fn write_entry(component: &Component, dir: &Path, entry: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let compiled = component.serialize().map_err(anyhow::Error::from)?;
    let mut contents = Sha256::digest(&compiled).to_vec();
    contents.extend_from_slice(&compiled);
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, Ordering::Relaxed);
    let temporary = entry.with_extension(format!("tmp-{}-{unique}", std::process::id()));
    std::fs::write(&temporary, contents)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, entry)
        .with_context(|| format!("renaming to {}", entry.display()))?;
    Ok(())
}
