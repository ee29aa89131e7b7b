//! The on-disk compile cache. Compiling a 12-18 MB JavaScript or Python
//! component takes seconds; loading its compiled form takes milliseconds.
//!
//! An entry is named by the SHA-256 of the component and a hash of the
//! engine's version and settings, and starts with the SHA-256 of the rest of
//! the file. An entry whose checksum does not match, or that the engine
//! refuses, is compiled afresh and rewritten: a stale or corrupt cache is
//! never trusted.
//!
//! An entry is native code that runs in this process, and a checksum proves
//! integrity, not origin: whoever can write the folder could plant code. So
//! the folder must belong to this user and be writable by no one else (a new
//! one is created 0700), and an entry must be this user's file, writable by no
//! one else; otherwise it is not read.
//!
//! The folder holds at most a set number of bytes: a hit marks its entry as
//! used (its modification time), and a write evicts the entries used least
//! recently until the folder fits.

use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiled components, stored in a folder.
pub struct CompileCache {
    dir: Option<PathBuf>,
    max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CompileCache {
    /// A cache in `dir` of at most `max_bytes`, or none (always compile) when
    /// `dir` is `None`. The folder is created private, and refused when
    /// another user owns it or can write it.
    pub fn open(dir: Option<PathBuf>, max_bytes: u64) -> anyhow::Result<Self> {
        if let Some(dir) = &dir {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating the compile cache folder {}", dir.display()))?;
            let meta = std::fs::metadata(dir)
                .with_context(|| format!("reading the compile cache folder {}", dir.display()))?;
            if let Some(problem) = not_private(&meta) {
                bail!(
                    "the compile cache folder {} {problem}: its files run as native code in this \
                     process, so it must be this user's and writable by no one else; run \
                     `chmod go-w {}` if it is yours, or pass --cache-dir DIR (or --cache false)",
                    dir.display(),
                    dir.display()
                );
            }
        }
        Ok(Self {
            dir,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
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
        match write_entry(&component, &entry) {
            Ok(()) => {
                tracing::info!(file = %file.display(), entry = %entry.display(), "compiled and cached");
                if let Err(error) = evict(dir, self.max_bytes, &entry) {
                    tracing::warn!(dir = %dir.display(), "compile cache eviction failed: {error:#}");
                }
            }
            Err(error) => {
                tracing::warn!(file = %file.display(), "compiled, but could not cache it: {error:#}")
            }
        }
        Ok(component)
    }
}

/// What makes a folder or file unsafe to load native code from, if anything:
/// another owner, or write access for group or others.
fn not_private(meta: &std::fs::Metadata) -> Option<String> {
    let user = rustix::process::geteuid().as_raw();
    if meta.uid() != user {
        return Some(format!(
            "belongs to user {}, not to this user ({user})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    (mode & 0o022 != 0).then(|| format!("is writable by other users (mode {mode:o})"))
}

/// Remove the entries used least recently until the `.cwasm` files in `dir`
/// take at most `max_bytes`; `keep`, just written, stays.
fn evict(dir: &Path, max_bytes: u64, keep: &Path) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path
            .extension()
            .is_none_or(|extension| extension != "cwasm")
        {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        total += meta.len();
        if path != keep {
            entries.push((
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
                path,
            ));
        }
    }
    entries.sort();
    for (_, size, path) in entries {
        if total <= max_bytes {
            break;
        }
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        tracing::info!(entry = %path.display(), "compile cache entry evicted");
        total -= size;
    }
    Ok(())
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

/// A sound entry, or `None` (missing, not private, corrupt or refused by the
/// engine). A sound entry is marked as used.
fn read_entry(engine: &Engine, entry: &Path) -> Option<Component> {
    let mut file = File::open(entry).ok()?;
    let meta = file.metadata().ok()?;
    if let Some(problem) = not_private(&meta) {
        tracing::warn!(entry = %entry.display(), "compile cache entry {problem}; compiling again");
        return None;
    }
    let mut contents = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut contents).ok()?;
    let (checksum, compiled) = contents.split_at_checked(32)?;
    if Sha256::digest(compiled).as_slice() != checksum {
        tracing::warn!(entry = %entry.display(), "compile cache entry is corrupt; compiling again");
        return None;
    }
    // SAFETY: `Component::deserialize` trusts its input to be what
    // `Component::serialize` wrote for a compatible engine. The entry's name
    // carries the engine's compatibility hash; the file and its folder belong
    // to this user and no one else can write them (checked above and when the
    // cache was opened), so only this user's processes wrote it; the checksum
    // proves it is whole; and wasmtime checks its own version header on top.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, compiled) };
    match component {
        Ok(component) => {
            // The least recently used entries are evicted first.
            let _ = file.set_modified(SystemTime::now());
            Some(component)
        }
        Err(error) => {
            tracing::warn!(entry = %entry.display(), "compile cache entry refused ({error}); compiling again");
            None
        }
    }
}

/// Write through a temporary file and a rename, so readers never see half an
/// entry.
fn write_entry(component: &Component, entry: &Path) -> anyhow::Result<()> {
    let compiled = component.serialize().map_err(anyhow::Error::from)?;
    let mut contents = Sha256::digest(&compiled).to_vec();
    contents.extend_from_slice(&compiled);
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, Ordering::Relaxed);
    let temporary = entry.with_extension(format!("tmp-{}-{unique}", std::process::id()));
    // Private whatever the umask: entries that others can write are not read.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| file.write_all(&contents))
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, entry)
        .with_context(|| format!("renaming to {}", entry.display()))?;
    Ok(())
}
