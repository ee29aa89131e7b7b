//! WebSocket client tracking and server-push fan-out.
//!
//! Each client has a bounded outbound queue drained by its connection's writer
//! task. A notification is serialised once and the same bytes are queued for
//! every recipient. Queuing never waits: a client whose queue is full is
//! evicted (closed with code 1008), so one slow reader cannot hold up a
//! publisher or the other clients, and memory stays bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use tokio::sync::{Notify, mpsc};

/// Why a notification could not be sent to a client.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SendError {
    /// No client with that id is connected.
    #[error("no connected client {0:?}")]
    UnknownClient(String),
    /// The client's outbound queue was full; it has been disconnected.
    #[error("client {0:?} is too slow and was disconnected")]
    Evicted(String),
}

/// What a connection's writer task sends to the socket, in order.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A text frame: a response or a notification.
    Text(Utf8Bytes),
    /// A close frame, after which the writer stops.
    Close(CloseFrame),
}

impl From<String> for Outbound {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

#[derive(Clone)]
struct ClientHandle {
    queue: mpsc::Sender<Outbound>,
    evicted: Arc<Notify>,
}

/// A newly registered client, as its connection task sees it.
pub struct Registration {
    /// The client id, `ws_{counter}_{timestamp_ms}`.
    pub id: Arc<str>,
    /// Where responses to this client's requests are queued.
    pub queue: mpsc::Sender<Outbound>,
    /// What the writer task sends to the socket.
    pub outbound: mpsc::Receiver<Outbound>,
    /// Signalled when the client is evicted for being too slow.
    pub evicted: Arc<Notify>,
}

/// The connected WebSocket clients.
pub struct Clients {
    next_id: AtomicU64,
    queue_capacity: usize,
    clients: RwLock<HashMap<Arc<str>, ClientHandle>>,
    evictions: AtomicU64,
}

impl Clients {
    /// No clients yet; each will get an outbound queue of `queue_capacity`
    /// messages.
    pub fn new(queue_capacity: usize) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            queue_capacity,
            clients: RwLock::default(),
            evictions: AtomicU64::new(0),
        }
    }

    /// Register a new client with a fresh id.
    pub fn register(&self) -> Registration {
        let counter = self.next_id.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        let id: Arc<str> = format!("ws_{counter}_{millis}").into();
        let (queue, outbound) = mpsc::channel(self.queue_capacity);
        let evicted = Arc::new(Notify::new());
        let handle = ClientHandle {
            queue: queue.clone(),
            evicted: Arc::clone(&evicted),
        };
        self.write().insert(Arc::clone(&id), handle);
        Registration {
            id,
            queue,
            outbound,
            evicted,
        }
    }

    /// Forget a client; true if it was still registered.
    pub fn unregister(&self, id: &str) -> bool {
        self.write().remove(id).is_some()
    }

    /// Queue `message` for every client; returns how many it was queued for.
    pub fn broadcast(&self, message: &Utf8Bytes) -> u32 {
        let mut queued = 0;
        let mut too_slow = Vec::new();
        for (id, client) in self.read().iter() {
            match client.queue.try_send(Outbound::Text(message.clone())) {
                Ok(()) => queued += 1,
                Err(mpsc::error::TrySendError::Full(_)) => too_slow.push(Arc::clone(id)),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for id in too_slow {
            self.evict(&id);
        }
        queued
    }

    /// Queue `message` for client `id`.
    pub fn send(&self, id: &str, message: Utf8Bytes) -> Result<(), SendError> {
        let client = self.read().get(id).cloned();
        let Some(client) = client else {
            return Err(SendError::UnknownClient(id.to_owned()));
        };
        match client.queue.try_send(Outbound::Text(message)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.evict(id);
                Err(SendError::Evicted(id.to_owned()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(SendError::UnknownClient(id.to_owned()))
            }
        }
    }

    /// The ids of the connected clients.
    pub fn ids(&self) -> Vec<String> {
        self.read().keys().map(|id| id.to_string()).collect()
    }

    /// How many clients are connected.
    pub fn count(&self) -> usize {
        self.read().len()
    }

    /// How many clients have been disconnected for being too slow.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn evict(&self, id: &str) {
        if let Some(client) = self.write().remove(id) {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client = id,
                "disconnecting a client whose outbound queue is full"
            );
            client.evicted.notify_one();
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, ClientHandle>> {
        self.clients.read().expect("clients lock")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, ClientHandle>> {
        self.clients.write().expect("clients lock")
    }
}
