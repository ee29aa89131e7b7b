//! The backends behind the host, one trait per seam, so that a node can keep
//! its data in memory ([`memory`]), in the embedded durable store
//! ([`embedded`]) or in Redis, shared by the nodes of a cluster
//! ([`redis`]):
//!
//! - [`StateStore`]: plugin state, one key-value namespace per plugin;
//! - [`StreamLog`]: notification streams: positions (epoch and offset) and a
//!   bounded history, with delivery in offset order once a notification is
//!   stored;
//! - [`SessionStore`]: resumable WebSocket sessions;
//! - [`Leases`]: work that runs once per cluster (plugin timers);
//! - [`Presence`]: the connected clients of every node of a cluster;
//! - [`WebhookStore`]: webhook subscriptions and their delivery queues.

pub mod embedded;
pub mod memory;
pub mod redis;
mod state_map;
mod stream;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::config::Cluster;
use crate::metrics::Counter;

pub use state_map::{MAX_KEYS, MAX_VALUE_BYTES};
pub use stream::{History, MAX_TOPIC_BYTES, Notification, Position, StreamName};

/// Why a backend refused or failed an operation. The messages reach plugins
/// as error values, so they say what was wrong.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum StoreError {
    /// A value is larger than [`MAX_VALUE_BYTES`].
    #[error("value of {0} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes")]
    TooLarge(usize),
    /// The namespace already holds [`MAX_KEYS`] keys.
    #[error("state is full: {MAX_KEYS} keys")]
    Full,
    /// `increment` found a value that is not an integer.
    #[error("value at {0:?} is not an integer")]
    NotAnInteger(String),
    /// `increment` would overflow a 64-bit integer.
    #[error("increment overflows at {0:?}")]
    Overflow(String),
    /// The backend could not do its part (a disk error, a full disk, a store
    /// that stopped). Nothing of the operation was kept.
    #[error("the store failed: {0}")]
    Backend(String),
    /// Another node of the cluster took the session over (its client
    /// resumed there); this node's copy is out of date and was not saved.
    #[error("the session was resumed on another node")]
    SessionMoved,
}

/// Plugin state: one namespace of keys and JSON values per plugin name.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The JSON value at `key`.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// Store JSON `value` at `key`; once this returns, the value is kept.
    async fn set(&self, namespace: &str, key: &str, value: String) -> Result<(), StoreError>;
    /// Remove `key`; true if it was there.
    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError>;
    /// Add `delta` to the integer at `key` (absent reads as 0) atomically and
    /// return the new value.
    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError>;
}

/// Milliseconds since the Unix epoch, as deadlines and ages are stored.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// How much history each stream keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryLimits {
    /// The most notifications kept per stream; 0 keeps none (positions are
    /// still counted).
    pub size: usize,
    /// How long a notification is kept.
    pub ttl: Duration,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// Where the notification is in its stream.
    pub position: Position,
    /// How many connected clients it was queued for.
    pub delivered: u32,
}

/// Takes notifications to the clients of this node, in offset order per
/// stream, once the log has stored them.
pub trait Deliver: Send + Sync {
    /// Queue `notification`, at `position` of `stream`, for its recipients;
    /// returns how many it was queued for.
    fn deliver(&self, stream: &StreamName, position: &Position, notification: &Notification)
    -> u32;
}

/// Notification streams: every notification gets the next offset of its
/// stream, is kept in the stream's bounded history, and is handed to the
/// [`Deliver`] the log was built with, in offset order.
#[async_trait]
pub trait StreamLog: Send + Sync {
    /// Append `notification` to `stream` and deliver it once it is stored.
    async fn append(
        &self,
        stream: &StreamName,
        notification: Notification,
    ) -> Result<Appended, StoreError>;
    /// The stream's current position (its last offset, 0 for a new stream).
    async fn position(&self, stream: &StreamName) -> Result<Position, StoreError>;
    /// The notifications after `from`, all of them or none: `Incomplete`
    /// when the epoch changed or the history no longer covers the gap.
    async fn read_after(&self, stream: &StreamName, from: &Position)
    -> Result<History, StoreError>;
    /// Forget a stream and its history (the stream of an ended session).
    async fn remove(&self, stream: &StreamName) -> Result<(), StoreError>;
    /// Drop notifications older than the history's age limit.
    async fn trim_expired(&self) -> Result<(), StoreError>;
    /// Whether appends reach the clients of every node of a cluster, not
    /// only this node's.
    fn reaches_every_node(&self) -> bool {
        false
    }
}

/// A resumable session as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The client id the session keeps.
    pub client_id: String,
    /// SHA-256 of the resume token (the token itself is never stored).
    pub token_hash: [u8; 32],
    /// The streams the session reads (`broadcast`, its `client:ID` stream
    /// and `topic:NAME` for each topic it is subscribed to), each with the
    /// position it started reading from.
    pub streams: BTreeMap<String, Position>,
    /// The client's metadata, key to JSON text.
    pub metadata: BTreeMap<String, String>,
    /// When the session ends unless resumed, in milliseconds since the Unix
    /// epoch; `None` while a connection holds it.
    pub expires_at_ms: Option<u64>,
}

/// Where sessions are kept so that they outlive a connection (and, with a
/// durable store, a restart).
///
/// A node's own store holds the sessions of that node, all loaded when it
/// starts. A shared store ([`SessionStore::is_shared`]) holds the sessions of
/// every node of a cluster: a node keeps only the sessions connected to it,
/// takes a session from the store when its client resumes there, and the
/// store itself ends the sessions whose time is up, including those of a
/// node that died.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Store `record`, replacing the one with its client id; in a shared
    /// store, [`StoreError::SessionMoved`] if another node took it over.
    async fn save(&self, record: SessionRecord) -> Result<(), StoreError>;
    /// Forget the session of `client_id`.
    async fn remove(&self, client_id: &str) -> Result<(), StoreError>;
    /// The sessions this node holds when it starts (none from a shared
    /// store: they are taken when their clients resume).
    async fn load(&self) -> Result<Vec<SessionRecord>, StoreError>;
    /// Whether every node of a cluster sees these sessions.
    fn is_shared(&self) -> bool {
        false
    }
    /// Shared stores: hand session `client_id` to this node if `token_hash`
    /// is its token's and its time is not up, and return it; it is kept as
    /// connected.
    async fn take(
        &self,
        _client_id: &str,
        _token_hash: &[u8; 32],
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(None)
    }
    /// Shared stores: the sessions of `client_ids` are connected to this
    /// node; keep them alive for at least another session TTL. Returns those
    /// another node took over.
    async fn keep(&self, _client_ids: Vec<String>) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    /// Shared stores: end the sessions whose time is up, whichever node held
    /// them (their client streams go with them); their client ids.
    async fn end_expired(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

/// Claims on work that must run once per cluster, not once per node.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Claim `slot` of the work called `name` (a timer's tick) for `ttl`:
    /// true for exactly one caller per name and slot.
    async fn claim(&self, name: &str, slot: u64, ttl: Duration) -> Result<bool, StoreError>;
}

/// A webhook subscription as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWebhook {
    /// The subscription's id.
    pub id: String,
    /// Its record, JSON text the webhook module writes and reads.
    pub record: String,
    /// The sequence number of the last message queued for it (0 before the
    /// first); numbers are never reused.
    pub last_seq: u64,
    /// The sequence number of the first message still queued, if any.
    pub first_queued: Option<u64>,
}

impl StoredWebhook {
    /// The sequence number of the last message delivered.
    pub fn delivered(&self) -> u64 {
        self.first_queued.map_or(self.last_seq, |first| first - 1)
    }
}

/// A notification to deliver to webhook subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The `webhook-id` it is delivered with, the same on every retry and
    /// for every subscriber.
    pub message_id: String,
    /// The topic it was published to; `None` for a broadcast.
    pub topic: Option<String>,
    /// The JSON-RPC notification.
    pub body: Arc<str>,
}

/// A message in a subscription's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// Its place in the queue.
    pub seq: u64,
    /// What to deliver.
    pub message: Outgoing,
}

/// What another node of a cluster did to the webhook subscriptions it
/// shares with this node.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// Subscription `id` was stored, changed or removed.
    Changed(String),
    /// Messages were queued: each subscription and its new sequence number.
    Queued(Vec<(String, u64)>),
    /// Subscription `id`'s messages up to a sequence number were delivered.
    Acknowledged(String, u64),
}

/// Webhook subscriptions and one ordered queue per subscription.
///
/// A shared store ([`WebhookStore::is_shared`]) holds the subscriptions of
/// every node of a cluster: each node knows every subscription, any node
/// queues for them, and one node at a time delivers each subscription's
/// queue, the one that [holds](WebhookStore::hold) it.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Store subscription `id` with `record` (a JSON object), replacing its
    /// record if it exists (its queue stays).
    async fn save_webhook(&self, id: &str, record: String) -> Result<(), StoreError>;
    /// Set the fields of `changes` (a JSON object) in the record of
    /// subscription `id`, leaving its other fields as they are; nothing if
    /// it is gone. Two nodes changing different fields both keep theirs.
    async fn update_webhook(&self, id: &str, changes: String) -> Result<(), StoreError>;
    /// Forget subscription `id` and everything queued for it.
    async fn remove_webhook(&self, id: &str) -> Result<(), StoreError>;
    /// Every stored subscription.
    async fn load_webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError>;
    /// Subscription `id`, if it is stored.
    async fn load_webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError>;
    /// Queue `message` for each of `subscriptions` that still exists; once
    /// this returns, it is kept. Each one's new sequence number.
    async fn enqueue(
        &self,
        subscriptions: Vec<String>,
        message: Outgoing,
    ) -> Result<Vec<(String, u64)>, StoreError>;
    /// Up to `limit` messages of subscription `id` after sequence number
    /// `after`, in order.
    async fn queued(&self, id: &str, after: u64, limit: usize) -> Result<Vec<Queued>, StoreError>;
    /// Drop the messages of subscription `id` up to sequence number `upto`:
    /// they were delivered.
    async fn acknowledge(&self, id: &str, upto: u64) -> Result<(), StoreError>;
    /// Whether every node of a cluster shares these subscriptions.
    fn is_shared(&self) -> bool {
        false
    }
    /// Claim, or keep, the delivery of subscription `id` for this node for
    /// `ttl`: false while another node holds it. A node's own store always
    /// answers true.
    async fn hold(&self, _id: &str, _ttl: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Shared stores: what the nodes do to the subscriptions, once (the
    /// first call takes the receiver).
    fn events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<WebhookEvent>> {
        None
    }
}

/// What a node publishes of its clients.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Roster {
    /// Each client's id and metadata (key to JSON text).
    pub clients: Vec<(String, BTreeMap<String, String>)>,
    /// Each topic and its subscribers.
    pub topics: Vec<(String, Vec<String>)>,
}

/// A metadata change for a client of another node, which that node makes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetadataChange {
    /// The client.
    pub client_id: String,
    /// The metadata key.
    pub key: String,
    /// The new value, JSON text.
    pub value: String,
}

/// The clients of the other nodes of a cluster, as each node publishes them
/// every second.
#[async_trait]
pub trait Presence: Send + Sync {
    /// Publish this node's clients, replacing what it published before; they
    /// are listed until the presence TTL passes without another publish.
    /// Returns the metadata changes other nodes asked for this node's
    /// clients since the last publish.
    async fn publish(&self, roster: Roster) -> Result<Vec<MetadataChange>, StoreError>;
    /// The clients of every other live node.
    async fn clients(&self) -> Result<Vec<String>, StoreError>;
    /// The metadata of `client_id`, a client of another node, if a live
    /// node lists it.
    async fn metadata(
        &self,
        client_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StoreError>;
    /// The subscribers of `topic` on every other live node.
    async fn subscribers(&self, topic: &str) -> Result<Vec<String>, StoreError>;
    /// Ask the node that lists `change.client_id` to make `change`; false if
    /// no other live node lists it.
    async fn change_metadata(&self, change: MetadataChange) -> Result<bool, StoreError>;
}

/// How the backends are doing, for `/health` and `/metrics`.
#[derive(Default)]
pub struct BackendStatus {
    /// Why the backends are degraded now, if they are.
    problem: Mutex<Option<String>>,
    /// Times the connection to a shared backend was lost.
    pub disconnects: Counter,
    /// Notifications the node's channel missed that it read back from
    /// history.
    pub refetched: Counter,
    /// Notifications the node's channel missed that history no longer held.
    pub missed: Counter,
}

impl BackendStatus {
    /// Why the backends are degraded, if they are.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().clone()
    }

    /// Set (or clear, with `None`) why the backends are degraded.
    pub fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock() = problem;
    }
}

/// The backends a node runs on.
#[derive(Clone)]
pub struct Backends {
    /// Plugin state.
    pub state: Arc<dyn StateStore>,
    /// Notification streams.
    pub streams: Arc<dyn StreamLog>,
    /// Sessions.
    pub sessions: Arc<dyn SessionStore>,
    /// Who runs a timer's tick.
    pub leases: Arc<dyn Leases>,
    /// How they are doing; `None` for a single node's own backends.
    pub status: Option<Arc<BackendStatus>>,
    /// The clients of every node of a cluster; `None` for a single node.
    pub presence: Option<Arc<dyn Presence>>,
    /// Webhook subscriptions and queues.
    pub webhooks: Arc<dyn WebhookStore>,
}

impl Backends {
    /// The backends of a node: in a cluster, everything in its Redis;
    /// otherwise in `data_dir` (the embedded store), or in memory when there
    /// is none. Streams of a single node stay in memory when they keep no
    /// history: there would be nothing to recover. Sessions of a cluster
    /// last `session_ttl` after their node is lost.
    pub async fn open(
        data_dir: Option<&Path>,
        cluster: Option<&Cluster>,
        history: HistoryLimits,
        session_ttl: Duration,
        deliver: Arc<dyn Deliver>,
    ) -> anyhow::Result<Self> {
        if let Some(cluster) = cluster {
            let status = Arc::new(BackendStatus::default());
            let joined =
                self::redis::connect(cluster, history, session_ttl, deliver, Arc::clone(&status))
                    .await?;
            return Ok(Self {
                state: Arc::new(joined.state),
                streams: Arc::new(joined.streams),
                sessions: Arc::new(joined.sessions),
                leases: Arc::new(joined.leases),
                status: Some(status),
                presence: Some(Arc::new(joined.presence)),
                webhooks: Arc::new(joined.webhooks),
            });
        }
        let store = data_dir
            .map(|dir| embedded::Embedded::open(dir, history, Arc::clone(&deliver)))
            .transpose()?;
        let sessions: Arc<dyn SessionStore> = match &store {
            Some(store) => Arc::new(store.clone()),
            None => Arc::new(memory::MemorySessions::default()),
        };
        let memory_streams = || Arc::new(memory::MemoryLog::new(history, Arc::clone(&deliver)));
        let Some(store) = store else {
            return Ok(Self {
                state: Arc::new(memory::MemoryState::default()),
                streams: memory_streams(),
                sessions,
                leases: Arc::new(memory::SoleNode),
                status: None,
                presence: None,
                webhooks: Arc::new(memory::MemoryWebhooks::default()),
            });
        };
        let streams: Arc<dyn StreamLog> = if history.size == 0 {
            memory_streams()
        } else {
            Arc::new(store.clone())
        };
        Ok(Self {
            state: Arc::new(store.clone()),
            streams,
            sessions,
            leases: Arc::new(memory::SoleNode),
            status: None,
            presence: None,
            webhooks: Arc::new(store),
        })
    }
}
