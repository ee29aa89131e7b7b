//! Hot reload: watch the plugins folder and reload when it changes. Bursts
//! of events (a file being written, a copy of many files) are debounced into
//! one reload once the folder has been quiet for a moment.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::node::Node;

/// How long the folder must be quiet before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Watch `node`'s plugins folder until the node stops.
pub fn watch(node: &Arc<Node>) -> anyhow::Result<()> {
    let dir = node.config.plugins_dir.clone();
    // One pending signal is enough: every reload rescans the whole folder.
    let (changed, mut changes) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !matches!(event.kind, EventKind::Access(_))) {
            let _ = changed.try_send(());
        }
    })
    .context("starting the plugins folder watcher")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;

    let node = Arc::clone(node);
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                () = node.stopping.cancelled() => return,
                change = changes.recv() => if change.is_none() { return },
            }
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
            if let Err(error) = node.reload().await {
                tracing::error!("reloading plugins failed: {error:#}");
            }
        }
    });
    Ok(())
}
