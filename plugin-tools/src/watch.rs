//! `rpcnode build DIR --watch`: build, then build again after every change to
//! the project's sources. A host serving the output folder reloads the new
//! component by itself; a failed build is reported and leaves the last good
//! component in place.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use notify::event::ModifyKind;
use notify::{Event, EventKind, RecursiveMode, Watcher as _};

use crate::builder::is_generated;
use crate::{Kit, build};

/// How long the sources must be quiet before a rebuild: an editor's save
/// (write, rename, chmod) is one change.
const SETTLE: Duration = Duration::from_millis(200);

/// Build `dir` into `out` now and after each change, until the process stops.
pub fn watch(kit: &Kit, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let (sender, changes) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = sender.send(event);
    })
    .context("starting the file watcher")?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    loop {
        match build(kit, dir, out) {
            Ok(()) => eprintln!(
                "built {}; watching {} for changes",
                out.display(),
                dir.display()
            ),
            Err(error) => eprintln!("error: {error:#}\nwatching {} for changes", dir.display()),
        }
        loop {
            let event = changes.recv().context("the file watcher stopped")?;
            if event.is_ok_and(|event| is_source_change(&event, dir, out)) {
                break;
            }
        }
        while changes.recv_timeout(SETTLE).is_ok() {}
    }
}

/// Whether `event` changed a source of the project in `dir` (not a build
/// output, a cache or the component itself).
fn is_source_change(event: &Event, dir: &Path, out: &Path) -> bool {
    let changes_content = matches!(
        event.kind,
        EventKind::Create(_)
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
    );
    changes_content
        && event.paths.iter().any(|path| {
            path != out
                && path.strip_prefix(dir).is_ok_and(|inside| {
                    !inside
                        .components()
                        .any(|part| part.as_os_str().to_str().is_some_and(is_generated))
                })
        })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind};

    use super::*;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_changes_to_sources_rebuild() {
        let (dir, out) = (Path::new("/p"), Path::new("/p/plugins/p.wasm"));
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        assert!(is_source_change(&event(written, "/p/app.py"), dir, out));
        assert!(is_source_change(
            &event(EventKind::Create(CreateKind::File), "/p/src/lib.rs"),
            dir,
            out
        ));
        for ignored in [
            "/p/target/x.rlib",
            "/p/__pycache__/app.pyc",
            "/p/.app.py.swp",
            "/p/plugins/p.wasm",
        ] {
            assert!(
                !is_source_change(&event(written, ignored), dir, out),
                "{ignored}"
            );
        }
        let read = EventKind::Access(AccessKind::Read);
        assert!(!is_source_change(&event(read, "/p/app.py"), dir, out));
        let touched = EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime));
        assert!(!is_source_change(&event(touched, "/p/app.py"), dir, out));
    }
}
