//! The compile cache: a restart loads compiled code from disk; a corrupted
//! entry, or one another user could have written, is compiled again, never
//! trusted; the folder keeps to its size by evicting what was used least
//! recently.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::support::{TestNode, plugins_dir, start_error, success};

async fn start(cache: &Path) -> TestNode {
    start_plugins(cache, &["calculator"], u64::MAX).await
}

async fn start_plugins(cache: &Path, plugins: &[&str], max_bytes: u64) -> TestNode {
    let cache = cache.to_path_buf();
    TestNode::start_with(plugins, move |config| {
        config.cache_dir = Some(cache);
        config.cache_max_bytes = max_bytes;
    })
    .await
}

/// The entries in `cache`, by file name, with their sizes.
fn entries(cache: &Path) -> BTreeMap<PathBuf, u64> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let size = std::fs::metadata(&path).unwrap().len();
            (path, size)
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn counts(node: &TestNode) -> (u64, u64) {
    let cache = &node.server.node().cache;
    (cache.hits(), cache.misses())
}

#[tokio::test]
async fn restarts_hit_the_cache_and_corrupt_entries_are_rebuilt() {
    let cache = tempfile::tempdir().unwrap();
    let first = start(cache.path()).await;
    assert_eq!(counts(&first), (0, 1));
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]
            .extension()
            .is_some_and(|extension| extension == "cwasm")
    );

    let second = start(cache.path()).await;
    assert_eq!(counts(&second), (1, 0));
    assert_eq!(
        second.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );

    // Flip bytes in the middle of the compiled code.
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 16]
        .iter_mut()
        .for_each(|byte| *byte ^= 0xff);
    std::fs::write(&entries[0], bytes).unwrap();
    let third = start(cache.path()).await;
    assert_eq!(counts(&third), (0, 1));
    assert_eq!(
        third.call("add", json!([2, 2])).await,
        success(json!({"sum": 4}), json!(1))
    );

    // The rebuilt entry is sound again.
    let fourth = start(cache.path()).await;
    assert_eq!(counts(&fourth), (1, 0));

    std::fs::write(&entries[0], b"short").unwrap();
    let fifth = start(cache.path()).await;
    assert_eq!(counts(&fifth), (0, 1));
    assert_eq!(
        fifth.call("add", json!([3, 2])).await,
        success(json!({"sum": 5}), json!(1))
    );
}

#[tokio::test]
async fn the_cache_is_private_and_a_folder_others_can_write_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let cache = parent.path().join("new/cache");
    let node = start(&cache).await;
    assert_eq!(counts(&node), (0, 1));
    assert_eq!(mode(&cache), 0o700);
    let (entry, _) = entries(&cache).pop_first().unwrap();
    assert_eq!(mode(&entry), 0o600);

    // An entry others could have written is not read: compiled again, and
    // rewritten private.
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let again = start(&cache).await;
    assert_eq!(counts(&again), (0, 1));
    assert_eq!(mode(&entry), 0o600);
    assert_eq!(counts(&start(&cache).await), (1, 0));

    // A folder others can write is refused at startup, saying what to do.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let folder = cache.clone();
    let error = start_error(plugins_dir(&["calculator"]).path(), move |config| {
        config.cache_dir = Some(folder);
    })
    .await;
    assert_eq!(
        error,
        format!(
            "the compile cache folder {dir} is writable by other users (mode 777): its files run \
             as native code in this process, so it must be this user's and writable by no one \
             else; run `chmod go-w {dir}` if it is yours, or pass --cache-dir DIR (or --cache \
             false)",
            dir = cache.display()
        )
    );
}

/// With room for two entries, a third evicts the one used least recently
/// (not the one written first), and a hit counts as a use.
#[tokio::test]
async fn the_cache_evicts_what_was_used_least_recently() {
    let cache = tempfile::tempdir().unwrap();
    let first = start_plugins(cache.path(), &["calculator", "events"], u64::MAX).await;
    assert_eq!(counts(&first), (0, 2));
    drop(first);
    let written = entries(cache.path());
    assert_eq!(written.len(), 2);
    let room: u64 = written.values().sum();
    // calculator's entry was written first or second; make it the oldest,
    // then use it: events' entry is now the one used least recently.
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    for path in written.keys() {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(long_ago).unwrap();
    }
    let used = start(cache.path()).await;
    assert_eq!(counts(&used), (1, 0));
    let calculator: Vec<&PathBuf> = written
        .keys()
        .filter(|path| std::fs::metadata(path).unwrap().modified().unwrap() > long_ago)
        .collect();
    assert_eq!(calculator.len(), 1, "the hit marks its entry as used");
    let calculator = calculator[0].clone();

    // metrics compiles to less than events: with the room of two entries,
    // events' goes and calculator's stays.
    let third = start_plugins(cache.path(), &["metrics"], room).await;
    assert_eq!(counts(&third), (0, 1));
    let left = entries(cache.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains_key(&calculator), "{left:?}");
    assert!(left.values().sum::<u64>() <= room);
    assert_eq!(counts(&start(cache.path()).await), (1, 0));

    // With room for nothing, only the entry just written stays.
    let last = start_plugins(cache.path(), &["users"], 1).await;
    assert_eq!(counts(&last), (0, 1));
    assert_eq!(entries(cache.path()).len(), 1);
    assert!(!calculator.exists());
}
