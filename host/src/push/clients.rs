//! The clients of this node and how notifications reach them: per-client
//! metadata, topic subscriptions, and a bounded outbound queue per connection
//! drained by the connection's writer task.
//!
//! A client is a WebSocket connection, or a session that outlives its
//! connections: a session client that is away keeps its topics and metadata
//! and receives nothing until it resumes (it recovers what it missed from the
//! streams' history).
//!
//! A notification is serialised once per stream and the same bytes are
//! queued for every recipient (session clients get one copy carrying the
//! position). Queuing never waits: a client whose queue is full is evicted
//! (closed with code 1008), so one slow reader cannot hold up a publisher or
//! the other clients, and memory stays bounded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Utf8Bytes, close_code};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::{Notify, mpsc};

use super::tail::Tail;
use crate::metrics::Counter;
use crate::random::random_hex;
use crate::store::{Deliver, MAX_TOPIC_BYTES, Notification, Position, Roster, StreamName};

/// Metadata keys one client may carry.
pub const MAX_METADATA_KEYS: usize = 64;
/// Topics one client may subscribe to.
pub const MAX_TOPICS_PER_CLIENT: usize = 1024;

/// Why a client operation failed; plugins get the message as an error value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClientError {
    /// No client with that id is connected or has a session.
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
    /// A text frame carrying a server notification with its position, for
    /// a session client; one allocation shared by all its recipients.
    Positioned(Arc<Positioned>),
    /// A keepalive ping.
    Ping,
    /// A close frame, after which the writer stops.
    Close(CloseFrame),
}

/// A notification as session clients receive it.
#[derive(Debug)]
pub struct Positioned {
    /// The text, with its position (see [`Notification::positioned`]).
    pub text: Utf8Bytes,
    /// Its stream.
    pub stream: StreamName,
    /// Its offset in the stream.
    pub offset: u64,
}

impl From<String> for Outbound {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

/// A client's current connection.
struct Connection {
    serial: u64,
    queue: mpsc::Sender<Outbound>,
    evicted: Arc<Notify>,
}

impl Connection {
    /// Close the connection with a policy close frame saying `reason` (or
    /// at once, if its queue is full).
    fn close(&self, reason: &'static str) {
        let frame = CloseFrame {
            code: close_code::POLICY,
            reason: reason.into(),
        };
        if self.queue.try_send(Outbound::Close(frame)).is_err() {
            self.evicted.notify_one();
        }
    }
}

struct Client {
    /// `None` while a session client is away.
    connection: Option<Connection>,
    /// Session clients receive notifications with their positions.
    session: bool,
    metadata: HashMap<String, String>,
    topics: HashSet<Arc<str>>,
}

#[derive(Default)]
struct Registry {
    clients: HashMap<Arc<str>, Client>,
    topics: HashMap<Arc<str>, HashSet<Arc<str>>>,
    connected: usize,
}

/// What became of a client when its connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The client is gone (it had no session): `on-disconnect` is due.
    Gone,
    /// The session client is away; its session may be resumed.
    Away,
    /// A later connection holds the session client.
    Moved,
}

/// A connection attached to a client, as its connection task sees it.
pub struct Registration {
    /// The client id, `ws_{counter}_{timestamp_ms}`.
    pub id: Arc<str>,
    /// Tells this connection from a later one of the same session client.
    pub serial: u64,
    /// Where responses to this client's requests are queued.
    pub queue: mpsc::Sender<Outbound>,
    /// What the writer task sends to the socket.
    pub outbound: mpsc::Receiver<Outbound>,
    /// Signalled when the client is evicted for being too slow.
    pub evicted: Arc<Notify>,
}

/// What a session client brings back when it is restored or resumed.
#[derive(Debug, Default, Clone)]
pub struct Belongings {
    /// Its topics.
    pub topics: Vec<String>,
    /// Its metadata, key to JSON text.
    pub metadata: HashMap<String, String>,
}

/// The clients of this node.
pub struct Clients {
    next_id: AtomicU64,
    /// What ends every id this node hands out: in a cluster, a random tag
    /// of the node, so ids are unique across nodes.
    id_suffix: String,
    next_serial: AtomicU64,
    queue_capacity: usize,
    registry: RwLock<Registry>,
    evictions: AtomicU64,
    /// Notifications queued for a client.
    pub queued: Counter,
    /// Notifications written to a client's socket.
    pub sent: Counter,
    /// Notifications lost with an evicted client.
    pub dropped: Counter,
    /// A copy of every notification delivered, for the dashboard.
    pub tail: Tail,
}

impl Clients {
    /// No clients yet; each connection will get an outbound queue of
    /// `queue_capacity` messages.
    pub fn new(queue_capacity: usize) -> Self {
        Self {
            next_id: AtomicU64::new(1),
            id_suffix: String::new(),
            next_serial: AtomicU64::new(1),
            queue_capacity,
            registry: RwLock::default(),
            evictions: AtomicU64::new(0),
            queued: Counter::default(),
            sent: Counter::default(),
            dropped: Counter::default(),
            tail: Tail::default(),
        }
    }

    /// Make ids unique across the nodes of a cluster: each ends with `_`
    /// and a random tag of this node.
    pub fn with_node_tag(mut self) -> Self {
        self.id_suffix = format!("_{}", random_hex(4));
        self
    }

    /// A fresh client id: `ws_COUNTER_MILLIS`, and the node's tag in a
    /// cluster.
    pub fn new_id(&self) -> Arc<str> {
        let counter = self.next_id.fetch_add(1, Ordering::Relaxed);
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        format!("ws_{counter}_{millis}{}", self.id_suffix).into()
    }

    /// Register a new client, connected, with a fresh id; `session` clients
    /// receive positions and outlive their connection.
    pub fn register(&self, session: bool) -> Registration {
        let id = self.new_id();
        let (registration, connection) = self.connection(Arc::clone(&id));
        let client = Client {
            connection: Some(connection),
            session,
            metadata: HashMap::new(),
            topics: HashSet::new(),
        };
        let mut registry = self.write();
        registry.connected += 1;
        registry.clients.insert(id, client);
        registration
    }

    /// Register session client `id`, away, with what it had (a session
    /// restored at startup).
    pub fn restore(&self, id: &str, belongings: Belongings) {
        let mut registry = self.write();
        let id: Arc<str> = id.into();
        registry.clients.insert(
            Arc::clone(&id),
            Client {
                connection: None,
                session: true,
                metadata: belongings.metadata,
                topics: HashSet::new(),
            },
        );
        for topic in belongings.topics {
            registry.join(&id, &topic);
        }
    }

    /// Attach a new connection to session client `id`. A connection still
    /// attached is closed: the session moved. `None` if there is no such
    /// session client.
    pub fn resume(&self, id: &str) -> Option<Registration> {
        let mut registry = self.write();
        let (key, client) = registry.clients.get_key_value(id)?;
        if !client.session {
            return None;
        }
        let (registration, connection) = self.connection(Arc::clone(key));
        let client = registry.clients.get_mut(id)?;
        match client.connection.replace(connection) {
            Some(previous) => previous.close("the session was resumed on another connection"),
            None => registry.connected += 1,
        }
        Some(registration)
    }

    fn connection(&self, id: Arc<str>) -> (Registration, Connection) {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let (queue, outbound) = mpsc::channel(self.queue_capacity);
        let evicted = Arc::new(Notify::new());
        let connection = Connection {
            serial,
            queue: queue.clone(),
            evicted: Arc::clone(&evicted),
        };
        let registration = Registration {
            id,
            serial,
            queue,
            outbound,
            evicted,
        };
        (registration, connection)
    }

    /// Connection `serial` of client `id` ended: a plain client is forgotten
    /// with its metadata and subscriptions; a session client stays, away.
    pub fn disconnect(&self, id: &str, serial: u64) -> Departure {
        let mut registry = self.write();
        let Some(client) = registry.clients.get_mut(id) else {
            // Evicted already.
            return Departure::Gone;
        };
        match &client.connection {
            Some(connection) if connection.serial != serial => return Departure::Moved,
            Some(_) => {
                client.connection = None;
                registry.connected -= 1;
            }
            None => {}
        }
        if registry
            .clients
            .get(id)
            .is_some_and(|client| client.session)
        {
            return Departure::Away;
        }
        registry.remove(id);
        Departure::Gone
    }

    /// Whether client `id` has a connection.
    pub fn is_connected(&self, id: &str) -> bool {
        self.read()
            .clients
            .get(id)
            .is_some_and(|client| client.connection.is_some())
    }

    /// Forget client `id` (an ended session); true if it was there.
    pub fn remove(&self, id: &str) -> bool {
        let mut registry = self.write();
        match registry.remove(id) {
            Some(client) => {
                if client.connection.is_some() {
                    registry.connected -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Forget session client `id` if it is away; true if it was.
    pub fn remove_if_away(&self, id: &str) -> bool {
        let mut registry = self.write();
        let away = registry
            .clients
            .get(id)
            .is_some_and(|client| client.connection.is_none());
        if away {
            registry.remove(id);
        }
        away
    }

    /// Close client `id`'s connection, if it has one, saying `reason`; the
    /// client stays until its connection task ends.
    pub fn close_connection(&self, id: &str, reason: &'static str) {
        let registry = self.read();
        if let Some(connection) = registry
            .clients
            .get(id)
            .and_then(|client| client.connection.as_ref())
        {
            connection.close(reason);
        }
    }

    /// Whether `id` is a session client.
    pub fn is_session(&self, id: &str) -> bool {
        self.read()
            .clients
            .get(id)
            .is_some_and(|client| client.session)
    }

    /// Queue `message` for client `id`, which must be connected.
    pub fn send(&self, id: &str, message: Utf8Bytes) -> Result<(), ClientError> {
        let queue = self
            .read()
            .clients
            .get(id)
            .and_then(|client| client.connection.as_ref())
            .map(|connection| connection.queue.clone());
        let Some(queue) = queue else {
            return Err(ClientError::UnknownClient(id.to_owned()));
        };
        self.tail
            .offer(|| format!("client:{id}"), || Arc::from(message.as_str()));
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

    /// The ids of the clients: connected, or away with a session.
    pub fn ids(&self) -> Vec<String> {
        self.read()
            .clients
            .keys()
            .map(|id| id.to_string())
            .collect()
    }

    /// Whether client `id` is this node's, connected or away.
    pub fn contains(&self, id: &str) -> bool {
        self.read().clients.contains_key(id)
    }

    /// Every client with its metadata, and every topic with its
    /// subscribers, for the cluster's list.
    pub fn roster(&self) -> Roster {
        let registry = self.read();
        Roster {
            clients: registry
                .clients
                .iter()
                .map(|(id, client)| {
                    let metadata = client.metadata.clone().into_iter().collect();
                    (id.to_string(), metadata)
                })
                .collect(),
            topics: registry
                .topics
                .iter()
                .map(|(topic, ids)| {
                    let ids = ids.iter().map(|id| id.to_string()).collect();
                    (topic.to_string(), ids)
                })
                .collect(),
        }
    }

    /// How many clients there are, connected or away with a session.
    pub fn count(&self) -> usize {
        self.read().clients.len()
    }

    /// How many clients are connected.
    pub fn connected(&self) -> usize {
        self.read().connected
    }

    /// How many clients have been disconnected for being too slow.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Metadata `key` of client `id`, as JSON text.
    pub fn metadata(&self, id: &str, key: &str) -> Option<String> {
        self.read().clients.get(id)?.metadata.get(key).cloned()
    }

    /// What client `id` has: its topics and metadata.
    pub fn belongings(&self, id: &str) -> Option<Belongings> {
        let registry = self.read();
        let client = registry.clients.get(id)?;
        Some(Belongings {
            topics: client
                .topics
                .iter()
                .map(|topic| topic.to_string())
                .collect(),
            metadata: client.metadata.clone(),
        })
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

    /// Subscribe client `id` to `topic`; true if it was not subscribed yet.
    pub fn subscribe(&self, id: &str, topic: &str) -> Result<bool, ClientError> {
        if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
            return Err(ClientError::BadTopic);
        }
        let mut registry = self.write();
        let Some(client) = registry.clients.get(id) else {
            return Err(ClientError::UnknownClient(id.to_owned()));
        };
        if client.topics.contains(topic) {
            return Ok(false);
        }
        if client.topics.len() >= MAX_TOPICS_PER_CLIENT {
            return Err(ClientError::Limit {
                client: id.to_owned(),
                what: "topics",
                limit: MAX_TOPICS_PER_CLIENT,
            });
        }
        let (id, _) = registry
            .clients
            .get_key_value(id)
            .expect("the client was just found");
        let id = Arc::clone(id);
        registry.join(&id, topic);
        Ok(true)
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

    /// Disconnect client `id`'s connection for being too slow. A session
    /// client stays, away: it can resume and recover what it missed.
    fn evict(&self, id: &str) {
        let mut registry = self.write();
        let Some(client) = registry.clients.get_mut(id) else {
            return;
        };
        let Some(connection) = client.connection.take() else {
            return;
        };
        registry.connected -= 1;
        if !registry
            .clients
            .get(id)
            .is_some_and(|client| client.session)
        {
            registry.remove(id);
        }
        drop(registry);
        self.evictions.fetch_add(1, Ordering::Relaxed);
        // What was waiting in its queue, and the message that did not fit.
        let waiting = connection.queue.max_capacity() - connection.queue.capacity();
        self.dropped.add(waiting as u64 + 1);
        tracing::warn!(
            client = id,
            "disconnecting a client whose outbound queue is full"
        );
        connection.evicted.notify_one();
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry.write()
    }
}

impl Deliver for Clients {
    fn deliver(
        &self,
        stream: &StreamName,
        position: &Position,
        notification: &Notification,
    ) -> u32 {
        self.tail.offer(
            || stream.as_str().to_owned(),
            || Arc::clone(&notification.text),
        );
        let mut message = Message::new(stream, position, notification);
        let (queued, too_slow) = {
            let registry = self.read();
            let name = stream.as_str();
            let mut too_slow = Vec::new();
            let mut queued = 0;
            let mut offer = |id: &Arc<str>, client: &Client| {
                let Some(connection) = &client.connection else {
                    return;
                };
                if notification.excludes(id) {
                    return;
                }
                match connection
                    .queue
                    .try_send(message.for_client(client.session))
                {
                    Ok(()) => queued += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => too_slow.push(Arc::clone(id)),
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            };
            if name == "broadcast" {
                registry.clients.iter().for_each(|(id, c)| offer(id, c));
            } else if let Some(topic) = name.strip_prefix("topic:") {
                let subscribers = registry.topics.get(topic).into_iter().flatten();
                for id in subscribers {
                    if let Some((id, client)) = registry.clients.get_key_value(id) {
                        offer(id, client);
                    }
                }
            } else if let Some(id) = name.strip_prefix("client:")
                && let Some((id, client)) = registry.clients.get_key_value(id)
            {
                offer(id, client);
            }
            (queued, too_slow)
        };
        self.queued.add(queued.into());
        self.evict_all(too_slow);
        queued
    }
}

/// One notification's two texts, each made at most once: plain for clients
/// without a session, with its position for session clients.
struct Message<'a> {
    stream: &'a StreamName,
    position: &'a Position,
    notification: &'a Notification,
    plain: Option<Utf8Bytes>,
    positioned: Option<Arc<Positioned>>,
}

impl<'a> Message<'a> {
    fn new(stream: &'a StreamName, position: &'a Position, notification: &'a Notification) -> Self {
        Self {
            stream,
            position,
            notification,
            plain: None,
            positioned: None,
        }
    }

    fn for_client(&mut self, session: bool) -> Outbound {
        if session {
            let positioned = self.positioned.get_or_insert_with(|| {
                Arc::new(Positioned {
                    text: self
                        .notification
                        .positioned(self.stream, self.position)
                        .into(),
                    stream: self.stream.clone(),
                    offset: self.position.offset,
                })
            });
            Outbound::Positioned(Arc::clone(positioned))
        } else {
            let text = self
                .plain
                .get_or_insert_with(|| self.notification.text.to_string().into());
            Outbound::Notification(text.clone())
        }
    }
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

    /// Put `id` on `topic`'s subscribers.
    fn join(&mut self, id: &Arc<str>, topic: &str) {
        let topic: Arc<str> = self
            .topics
            .get_key_value(topic)
            .map_or_else(|| topic.into(), |(key, _)| Arc::clone(key));
        if let Some(client) = self.clients.get_mut(id) {
            client.topics.insert(Arc::clone(&topic));
        }
        self.topics.entry(topic).or_default().insert(Arc::clone(id));
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

    fn at(offset: u64) -> Position {
        Position {
            epoch: "e".into(),
            offset,
        }
    }

    fn broadcast(clients: &Clients) -> u32 {
        let notification = Notification::new(r#"{"method":"m"}"#.into());
        clients.deliver(&StreamName::broadcast(), &at(1), &notification)
    }

    #[test]
    fn disconnect_drops_metadata_and_subscriptions() {
        let clients = Clients::new(8);
        let a = clients.register(false);
        let b = clients.register(false);
        clients.subscribe(&a.id, "news").unwrap();
        clients.subscribe(&b.id, "news").unwrap();
        clients
            .set_metadata(&a.id, "role".into(), "\"admin\"".into())
            .unwrap();
        assert_eq!(clients.subscribers("news").len(), 2);
        assert_eq!(clients.disconnect(&a.id, a.serial), Departure::Gone);
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
        let mut slow = clients.register(false);
        let mut fast = clients.register(false);
        assert_eq!(broadcast(&clients), 2);
        assert!(fast.outbound.try_recv().is_ok());
        assert_eq!(broadcast(&clients), 1);
        assert_eq!(clients.evictions(), 1);
        assert_eq!(clients.ids(), [fast.id.to_string()]);
        assert!(slow.outbound.try_recv().is_ok());
    }

    #[test]
    fn a_session_client_stays_away_until_a_connection_resumes_it() {
        let clients = Clients::new(8);
        let first = clients.register(true);
        clients.subscribe(&first.id, "news").unwrap();
        assert_eq!(clients.disconnect(&first.id, first.serial), Departure::Away);
        assert_eq!((clients.count(), clients.connected()), (1, 0));
        assert_eq!(broadcast(&clients), 0);
        let mut second = clients.resume(&first.id).unwrap();
        // The first connection's end no longer touches the client.
        assert_eq!(
            clients.disconnect(&first.id, first.serial),
            Departure::Moved
        );
        assert_eq!(clients.connected(), 1);
        assert_eq!(broadcast(&clients), 1);
        let Ok(Outbound::Positioned(positioned)) = second.outbound.try_recv() else {
            panic!("a positioned notification");
        };
        assert_eq!(
            (&positioned.stream, positioned.offset),
            (&StreamName::broadcast(), 1)
        );
        assert_eq!(
            positioned.text.as_str(),
            r#"{"method":"m","position":{"stream":"broadcast","epoch":"e","offset":1}}"#
        );
        assert_eq!(clients.subscribers("news"), [first.id.to_string()]);
        assert!(clients.remove(&first.id));
        assert!(clients.subscribers("news").is_empty());
    }

    #[test]
    fn topic_names_are_checked() {
        let clients = Clients::new(1);
        let a = clients.register(false);
        assert_eq!(clients.subscribe(&a.id, ""), Err(ClientError::BadTopic));
        assert_eq!(
            clients.subscribe(&a.id, &"x".repeat(MAX_TOPIC_BYTES + 1)),
            Err(ClientError::BadTopic)
        );
    }
}
