//! Hot reload: watch the plugins folder and say when it changed. Bursts of
//! events (a file being written, a copy of many files) are debounced into
//! one signal once the folder has been quiet for a moment.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the folder must be quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Watch `dir` until `stopping`: one message on the receiver per burst of
/// changes, once the burst is over.
pub fn watch(dir: &Path, stopping: CancellationToken) -> anyhow::Result<mpsc::Receiver<()>> {
    // One pending signal is enough: every reload rescans the whole folder.
    let (changed, mut changes) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !matches!(event.kind, EventKind::Access(_))) {
            let _ = changed.try_send(());
        }
    })
    .context("starting the plugins folder watcher")?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;

    let (settled, quiet) = mpsc::channel(1);
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                change = changes.recv() => if change.is_none() { return },
            }
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
            if settled.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(quiet)
}
