//! The plugins folder as the host knows it: which version of each file is
//! serving, and which files failed. A refresh rescans the folder, loads only
//! what changed, and builds the next method table.
//!
//! A file that fails to load (half written, corrupt, the wrong world, a
//! failing `describe`) leaves the version that was serving in place, and
//! stays listed as failed until a good file arrives.
//!
//! Conflicts (two files with the same plugin name, or a method both claim)
//! are settled by file-name order, at startup and at every rescan alike: the
//! file that sorts first serves. A file that lost is loaded again at each
//! rescan, so it serves once the file that beat it is gone, as it would
//! after a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::loaded::LoadedPlugin;
use super::loader::{Shared, load_file};
use super::registry::{LoadFailure, MethodTable};

/// What identifies one version of a plugin: the SHA-256 of its `.wasm` file
/// and of its `.toml` file (missing reads as empty).
type Version = [u8; 32];

#[derive(Default)]
struct FileState {
    serving: Option<(Version, Arc<LoadedPlugin>)>,
    failed: Option<(Version, String)>,
    /// The failure is a lost conflict, which the next rescan tries again.
    lost_conflict: bool,
}

/// The result of a refresh.
pub struct Refresh {
    /// The table to serve from now on.
    pub table: MethodTable,
    /// Plugins that started serving.
    pub added: Vec<Arc<LoadedPlugin>>,
    /// Plugins that stopped serving (replaced or removed).
    pub removed: Vec<Arc<LoadedPlugin>>,
    /// Files that failed to load in this refresh.
    pub failed_loads: u64,
}

/// The loaded plugin files of one folder.
pub struct Library {
    dir: PathBuf,
    shared: Shared,
    files: BTreeMap<PathBuf, FileState>,
}

impl Library {
    /// A library of `dir`, with nothing loaded yet.
    pub fn new(dir: PathBuf, shared: Shared) -> Self {
        Self {
            dir,
            shared,
            files: BTreeMap::new(),
        }
    }

    /// True before the first refresh.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Rescan the folder and build the next table. Fails only when the
    /// folder cannot be read.
    pub async fn refresh(&mut self) -> anyhow::Result<Refresh> {
        let files = wasm_files(&self.dir)?;
        let mut previous = std::mem::take(&mut self.files);
        let mut removed: Vec<Arc<LoadedPlugin>> = previous
            .iter()
            .filter(|(file, _)| !files.contains(file))
            .filter_map(|(_, state)| state.serving.as_ref().map(|(_, plugin)| Arc::clone(plugin)))
            .collect();

        // Load what changed; keep everything else as it is.
        let mut candidates = Vec::new();
        let mut failed_loads = 0;
        for file in files {
            let mut state = previous.remove(&file).unwrap_or_default();
            match read_version(&file) {
                Err(error) => state.failed = Some(([0; 32], one_line(&error))),
                Ok((version, _))
                    if state
                        .serving
                        .as_ref()
                        .is_some_and(|(serving, _)| *serving == version) =>
                {
                    state.failed = None;
                    state.lost_conflict = false;
                }
                Ok((version, _))
                    if !state.lost_conflict
                        && state
                            .failed
                            .as_ref()
                            .is_some_and(|(failed, _)| *failed == version) => {}
                Ok((version, bytes)) => match load_file(&self.shared, &file, bytes).await {
                    Ok(plugin) => candidates.push((file.clone(), version, Arc::new(plugin))),
                    Err(error) => {
                        failed_loads += 1;
                        let reason = one_line(&error);
                        tracing::error!(file = %file.display(), "plugin failed to load: {reason}");
                        state.failed = Some((version, reason));
                        state.lost_conflict = false;
                    }
                },
            }
            self.files.insert(file, state);
        }

        // File-name order settles conflicts. Each file offers its new
        // version, else the one serving; a new version that loses leaves the
        // old one serving if that fits.
        let mut table = MethodTable::default();
        let mut added = Vec::new();
        let mut candidates: BTreeMap<PathBuf, (Version, Arc<LoadedPlugin>)> = candidates
            .into_iter()
            .map(|(file, version, plugin)| (file, (version, plugin)))
            .collect();
        for (file, state) in &mut self.files {
            if let Some((version, plugin)) = candidates.remove(file) {
                match table.conflict(&plugin) {
                    None => {
                        tracing::info!(
                            plugin = plugin.name(),
                            version = plugin.manifest.version,
                            file = %file.display(),
                            methods = plugin.manifest.methods.len(),
                            "plugin loaded"
                        );
                        table.register(Arc::clone(&plugin), &self.shared.metrics);
                        if let Some((_, old)) =
                            state.serving.replace((version, Arc::clone(&plugin)))
                        {
                            removed.push(old);
                        }
                        state.failed = None;
                        state.lost_conflict = false;
                        added.push(plugin);
                        continue;
                    }
                    Some(reason) => {
                        failed_loads += 1;
                        tracing::error!(file = %file.display(), "plugin refused: {reason}");
                        state.failed = Some((version, reason));
                        state.lost_conflict = true;
                    }
                }
            }
            let Some((version, serving)) = &state.serving else {
                continue;
            };
            match table.conflict(serving) {
                None => table.register(Arc::clone(serving), &self.shared.metrics),
                Some(reason) => {
                    // A file that sorts first now claims its name or a method.
                    tracing::error!(file = %file.display(), "plugin stopped serving: {reason}");
                    let version = *version;
                    removed.extend(state.serving.take().map(|(_, plugin)| plugin));
                    if !state.lost_conflict {
                        state.failed = Some((version, reason));
                        state.lost_conflict = true;
                    }
                }
            }
        }

        let failures = self
            .files
            .iter()
            .filter_map(|(file, state)| {
                let (_, reason) = state.failed.as_ref()?;
                Some(LoadFailure {
                    file: file.clone(),
                    reason: reason.clone(),
                })
            })
            .collect();
        table.finish(failures);
        Ok(Refresh {
            table,
            added,
            removed,
            failed_loads,
        })
    }
}

/// The `*.wasm` files of `dir`, sorted by name.
fn wasm_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let context = || format!("reading plugins folder {}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(context)? {
        let path = entry.with_context(context)?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "wasm")
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The version of the plugin in `file`, and the component's bytes.
fn read_version(file: &Path) -> anyhow::Result<(Version, Vec<u8>)> {
    let bytes = std::fs::read(file).context("reading the file")?;
    let config = std::fs::read(file.with_extension("toml")).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(Sha256::digest(&bytes));
    hasher.update(Sha256::digest(&config));
    Ok((hasher.finalize().into(), bytes))
}

/// `error` and its causes as one line, for logs and `/health`: some engine
/// messages span lines.
fn one_line(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_reason_is_one_line() {
        let error = anyhow::anyhow!("type mismatch:\n  expected `u32`,\n  found `string`")
            .context("the component's imports do not match");
        assert_eq!(
            one_line(&error),
            "the component's imports do not match: type mismatch: expected `u32`, found `string`"
        );
    }
}
