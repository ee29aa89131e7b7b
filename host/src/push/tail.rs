//! A live copy of every notification this node delivers to its clients,
//! for the dashboard's tail. It costs one atomic load per notification
//! while nobody watches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::broadcast;

/// How many notifications a slow watcher may fall behind before it misses
/// some (and is told how many).
const CAPACITY: usize = 1024;

/// One delivered notification.
#[derive(Debug)]
pub struct Tailed {
    /// Its stream: `broadcast`, `topic:NAME` or `client:ID`.
    pub stream: String,
    /// The notification, as clients without a session get it.
    pub text: Arc<str>,
}

/// The copies, sent to every watcher.
pub struct Tail {
    sender: broadcast::Sender<Arc<Tailed>>,
    watchers: Arc<AtomicUsize>,
}

impl Default for Tail {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
            watchers: Arc::default(),
        }
    }
}

impl Tail {
    /// Copy the notification `text` of `stream` to the watchers, if any
    /// (neither is made otherwise).
    pub fn offer(&self, stream: impl FnOnce() -> String, text: impl FnOnce() -> Arc<str>) {
        if self.watchers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let tailed = Tailed {
            stream: stream(),
            text: text(),
        };
        let _ = self.sender.send(Arc::new(tailed));
    }

    /// Start watching: every notification from now on.
    pub fn watch(&self) -> Watcher {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Watcher {
            receiver: self.sender.subscribe(),
            watchers: Arc::clone(&self.watchers),
        }
    }
}

/// One watcher of the tail; watching ends when it is dropped.
pub struct Watcher {
    /// The copies, in delivery order.
    pub receiver: broadcast::Receiver<Arc<Tailed>>,
    watchers: Arc<AtomicUsize>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}
