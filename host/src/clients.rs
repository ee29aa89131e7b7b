//! WebSocket client tracking and server-push fan-out: per-client metadata,
//! topic subscriptions, broadcast, publish and targeted sends.
//!
//! Each client has a bounded outbound queue drained by its connection's writer
//! task. A notification is serialised once and the same bytes are queued for
//! every recipient. Queuing never waits: a client whose queue is full is
//! evicted (closed with code 1008), so one slow reader cannot hold up a
//! publisher or the other clients, and memory stays bounded.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Utf8Bytes};
use tokio::sync::{Notify, mpsc};

use crate::metrics::Counter;

/// Metadata keys one client may carry.
pub const MAX_METADATA_KEYS: usize = 64;
/// Topics one client may subscribe to.
pub const MAX_TOPICS_PER_CLIENT: usize = 1024;
/// The longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 256;

/// Why a client operation failed; plugins get the message as an error value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClientError {
    /// No client with that id is connected.
    #[error("no connected client {0:?}")]
    UnknownClient(String),
    /// The client's outbound queue was full; it has been disconnected.
    #[error("client {0:?} is too slow and was disconnected")]
    Evicted(String),
    /// A per-client limit was reached.
    #[error("client {client:?} already has {limit} {what}")]
    Limit {
        /// The client.
        client: String,
        /// What ran out.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The topic name is empty or too long.
    #[error("topic names must be 1 to {MAX_TOPIC_BYTES} bytes")]
    BadTopic,
}

/// What a connection's writer task sends to the socket, in order.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A text frame answering a request.
    Text(Utf8Bytes),
    /// A text frame carrying a server notification.
    Notification(Utf8Bytes),
    /// A keepalive ping.
    Ping,
    /// A close frame, after which the writer stops.
    Close(CloseFrame),
}

impl From<String> for Outbound {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

struct Client {
    queue: mpsc::Sender<Outbound>,
    evicted: Arc<Notify>,
    metadata: HashMap<String, String>,
    topics: HashSet<Arc<str>>,
}

#[derive(Default)]
struct Registry {
    clients: HashMap<Arc<str>, Client>,
    topics: HashMap<Arc<str>, HashSet<Arc<str>>>,
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
    registry: RwLock<Registry>,
    evictions: AtomicU64,
    /// Notifications queued for a client.
    pub queued: Counter,
    /// Notifications written to a client's socket.
    pub sent: Counter,
    /// Notifications lost with an evicted client.
    pub dropped: Counter,
}

impl Clients {
    /// No clients yet; each will get an outbound queue of `queue_capacity`
    /// messages.
    pub fn new(queue_capacity: usize) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            queue_capacity,
            registry: RwLock::default(),
            evictions: AtomicU64::new(0),
            queued: Counter::default(),
            sent: Counter::default(),
            dropped: Counter::default(),
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
        let client = Client {
            queue: queue.clone(),
            evicted: Arc::clone(&evicted),
            metadata: HashMap::new(),
            topics: HashSet::new(),
        };
        self.write().clients.insert(Arc::clone(&id), client);
        Registration {
            id,
            queue,
            outbound,
            evicted,
        }
    }

    /// Forget a client, its metadata and its subscriptions; true if it was
    /// still registered.
    pub fn unregister(&self, id: &str) -> bool {
        self.write().remove(id).is_some()
    }

    /// Queue `message` for every client not in `exclude`; returns how many it
    /// was queued for.
    pub fn broadcast(&self, message: &Utf8Bytes, exclude: &[String]) -> u32 {
        let (queued, too_slow) = {
            let registry = self.read();
            let recipients = registry.clients.iter().filter(|(id, _)| {
                !exclude
                    .iter()
                    .any(|excluded| excluded.as_str() == id.as_ref())
            });
            deliver(recipients, message)
        };
        self.queued.add(queued.into());
        self.evict_all(too_slow);
        queued
    }

    /// Queue `message` for every subscriber of `topic`; returns how many it
    /// was queued for.
    pub fn publish(&self, topic: &str, message: &Utf8Bytes) -> u32 {
        let (queued, too_slow) = {
            let registry = self.read();
            let Some(subscribers) = registry.topics.get(topic) else {
                return 0;
            };
            let recipients = subscribers
                .iter()
                .filter_map(|id| registry.clients.get_key_value(id));
            deliver(recipients, message)
        };
        self.queued.add(queued.into());
        self.evict_all(too_slow);
        queued
    }

    /// Queue `message` for client `id`.
    pub fn send(&self, id: &str, message: Utf8Bytes) -> Result<(), ClientError> {
        let queue = self
            .read()
            .clients
            .get(id)
            .map(|client| client.queue.clone());
        let Some(queue) = queue else {
            return Err(ClientError::UnknownClient(id.to_owned()));
        };
        match queue.try_send(Outbound::Notification(message)) {
            Ok(()) => {
                self.queued.inc();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.evict(id);
                Err(ClientError::Evicted(id.to_owned()))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(ClientError::UnknownClient(id.to_owned()))
            }
        }
    }

    /// The ids of the connected clients.
    pub fn ids(&self) -> Vec<String> {
        self.read()
            .clients
            .keys()
            .map(|id| id.to_string())
            .collect()
    }

    /// How many clients are connected.
    pub fn count(&self) -> usize {
        self.read().clients.len()
    }

    /// How many clients have been disconnected for being too slow.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Metadata `key` of client `id`, as JSON text.
    pub fn metadata(&self, id: &str, key: &str) -> Option<String> {
        self.read().clients.get(id)?.metadata.get(key).cloned()
    }

    /// Set metadata `key` of client `id` to JSON text `value`.
    pub fn set_metadata(&self, id: &str, key: String, value: String) -> Result<(), ClientError> {
        let mut registry = self.write();
        let client = registry
            .clients
            .get_mut(id)
            .ok_or_else(|| ClientError::UnknownClient(id.to_owned()))?;
        if client.metadata.len() >= MAX_METADATA_KEYS && !client.metadata.contains_key(&key) {
            return Err(ClientError::Limit {
                client: id.to_owned(),
                what: "metadata keys",
                limit: MAX_METADATA_KEYS,
            });
        }
        client.metadata.insert(key, value);
        Ok(())
    }

    /// Subscribe client `id` to `topic`.
    pub fn subscribe(&self, id: &str, topic: &str) -> Result<(), ClientError> {
        if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
            return Err(ClientError::BadTopic);
        }
        let mut registry = self.write();
        let Registry { clients, topics } = &mut *registry;
        let Some((client_id, _)) = clients.get_key_value(id) else {
            return Err(ClientError::UnknownClient(id.to_owned()));
        };
        let client_id = Arc::clone(client_id);
        let client = clients.get_mut(id).expect("the client was just found");
        if client.topics.contains(topic) {
            return Ok(());
        }
        if client.topics.len() >= MAX_TOPICS_PER_CLIENT {
            return Err(ClientError::Limit {
                client: id.to_owned(),
                what: "topics",
                limit: MAX_TOPICS_PER_CLIENT,
            });
        }
        let topic: Arc<str> = topics
            .get_key_value(topic)
            .map_or_else(|| topic.into(), |(key, _)| Arc::clone(key));
        client.topics.insert(Arc::clone(&topic));
        topics.entry(topic).or_default().insert(client_id);
        Ok(())
    }

    /// Unsubscribe client `id` from `topic`; true if it was subscribed.
    pub fn unsubscribe(&self, id: &str, topic: &str) -> bool {
        let mut registry = self.write();
        let was_subscribed = registry
            .clients
            .get_mut(id)
            .is_some_and(|client| client.topics.remove(topic));
        if was_subscribed {
            registry.leave(topic, id);
        }
        was_subscribed
    }

    /// The ids of the subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> Vec<String> {
        self.read()
            .topics
            .get(topic)
            .map(|ids| ids.iter().map(|id| id.to_string()).collect())
            .unwrap_or_default()
    }

    fn evict_all(&self, ids: Vec<Arc<str>>) {
        for id in ids {
            self.evict(&id);
        }
    }

    fn evict(&self, id: &str) {
        if let Some(client) = self.write().remove(id) {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            // What was waiting in its queue, and the message that did not fit.
            let waiting = client.queue.max_capacity() - client.queue.capacity();
            self.dropped.add(waiting as u64 + 1);
            tracing::warn!(
                client = id,
                "disconnecting a client whose outbound queue is full"
            );
            client.evicted.notify_one();
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().expect("clients lock")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().expect("clients lock")
    }
}

/// Queue a copy of `message` for each recipient without waiting; returns how
/// many it was queued for and which recipients' queues were full.
fn deliver<'a>(
    recipients: impl Iterator<Item = (&'a Arc<str>, &'a Client)>,
    message: &Utf8Bytes,
) -> (u32, Vec<Arc<str>>) {
    let mut queued = 0;
    let mut too_slow = Vec::new();
    for (id, client) in recipients {
        match client
            .queue
            .try_send(Outbound::Notification(message.clone()))
        {
            Ok(()) => queued += 1,
            Err(mpsc::error::TrySendError::Full(_)) => too_slow.push(Arc::clone(id)),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
    (queued, too_slow)
}

impl Registry {
    /// Remove a client and all its subscriptions.
    fn remove(&mut self, id: &str) -> Option<Client> {
        let client = self.clients.remove(id)?;
        for topic in &client.topics {
            self.leave(topic, id);
        }
        Some(client)
    }

    /// Take `id` off `topic`'s subscribers, dropping the topic when empty.
    fn leave(&mut self, topic: &str, id: &str) {
        if let Some(subscribers) = self.topics.get_mut(topic) {
            subscribers.remove(id);
            if subscribers.is_empty() {
                self.topics.remove(topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disconnect_drops_metadata_and_subscriptions() {
        let clients = Clients::new(8);
        let a = clients.register();
        let b = clients.register();
        clients.subscribe(&a.id, "news").unwrap();
        clients.subscribe(&b.id, "news").unwrap();
        clients
            .set_metadata(&a.id, "role".into(), "\"admin\"".into())
            .unwrap();
        assert_eq!(clients.subscribers("news").len(), 2);
        assert!(clients.unregister(&a.id));
        assert_eq!(clients.subscribers("news"), [b.id.to_string()]);
        assert_eq!(clients.metadata(&a.id, "role"), None);
        assert_eq!(
            clients.subscribe(&a.id, "news"),
            Err(ClientError::UnknownClient(a.id.to_string()))
        );
        assert!(clients.unsubscribe(&b.id, "news"));
        assert!(!clients.unsubscribe(&b.id, "news"));
        assert!(clients.read().topics.is_empty());
    }

    #[test]
    fn a_full_queue_evicts_only_that_client() {
        let clients = Clients::new(1);
        let mut slow = clients.register();
        let mut fast = clients.register();
        let message = Utf8Bytes::from("{}");
        assert_eq!(clients.broadcast(&message, &[]), 2);
        assert!(fast.outbound.try_recv().is_ok());
        assert_eq!(clients.broadcast(&message, &[]), 1);
        assert_eq!(clients.evictions(), 1);
        assert_eq!(clients.ids(), [fast.id.to_string()]);
        assert!(slow.outbound.try_recv().is_ok());
    }

    #[test]
    fn topic_names_are_checked() {
        let clients = Clients::new(1);
        let a = clients.register();
        assert_eq!(clients.subscribe(&a.id, ""), Err(ClientError::BadTopic));
        assert_eq!(
            clients.subscribe(&a.id, &"x".repeat(MAX_TOPIC_BYTES + 1)),
            Err(ClientError::BadTopic)
        );
    }
}
