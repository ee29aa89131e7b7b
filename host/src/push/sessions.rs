//! Resumable sessions. A session keeps a client (its id, topics and
//! metadata) for `session_ttl` after its connection drops; a connection that
//! presents the session's token takes it back and receives what the client
//! missed, per stream, from the streams' history: all of it in order, or,
//! when the history no longer covers the gap, nothing and `recovered: false`.
//!
//! The session remembers where it started reading each of its streams
//! (`broadcast`, its own `client:ID` stream, and `topic:NAME` per topic it
//! subscribes to), so a resume may leave out the streams the client has
//! received nothing from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::clients::{Belongings, Clients, Registration};
use crate::metrics::Counter;
use crate::random::random_hex;
use crate::store::{
    History, Notification, Position, SessionRecord, SessionStore, StoreError, StreamLog,
    StreamName, now_ms,
};

/// Why a session could not be started or resumed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No live session has this client id and token.
    #[error(
        "no session matches this client_id and token (it may have expired); start a new one with rpc.session {{}}"
    )]
    NotFound,
    /// A position names a stream the session does not read.
    #[error("stream {0:?} is not one of this session's streams")]
    ForeignStream(String),
    /// The node keeps as many sessions as it may.
    #[error("too many sessions (max_sessions = {0})")]
    Full(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stream's position as the protocol writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// The stream's name.
    pub stream: String,
    /// Its epoch.
    pub epoch: String,
    /// The offset.
    pub offset: u64,
}

/// How one stream fared in a resume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    /// The stream and its position now.
    #[serde(flatten)]
    pub position: StreamPosition,
    /// Whether every missed notification is being sent.
    pub recovered: bool,
    /// How many are being sent.
    pub missed: usize,
}

/// A new session.
#[derive(Debug, Serialize)]
pub struct Started {
    /// The client's id, kept by the session.
    pub client_id: String,
    /// The secret that resumes the session.
    pub token: String,
    /// Seconds the session outlives its connection.
    pub session_ttl: f64,
    /// Where each stream of the session starts.
    pub streams: Vec<StreamPosition>,
}

/// A resumed session: the answer, and what to send after it.
pub struct Resumed {
    /// The answer's content.
    pub answer: ResumedAnswer,
    /// The missed notifications, each with its stream and position, in order
    /// per stream.
    pub missed: Vec<(StreamName, Position, Notification)>,
}

/// The answer to a resume.
#[derive(Debug, Serialize)]
pub struct ResumedAnswer {
    /// The client's id.
    pub client_id: String,
    /// Always true: tells a resume from a new session.
    pub resumed: bool,
    /// Each stream of the session.
    pub streams: Vec<Recovery>,
}

/// A session's record, locked while it changes and is saved.
type SessionHandle = Arc<tokio::sync::Mutex<SessionRecord>>;

/// The sessions of this node.
pub struct Sessions {
    clients: Arc<Clients>,
    streams: Arc<dyn StreamLog>,
    store: Arc<dyn SessionStore>,
    ttl: Duration,
    max: usize,
    /// Each session's record, locked while it changes and is saved, so that
    /// saves of one session cannot overtake each other.
    records: Mutex<HashMap<String, SessionHandle>>,
    /// Sessions started.
    pub started: Counter,
    /// Streams recovered in resumes.
    pub recovered: Counter,
    /// Streams that could not be recovered in resumes.
    pub not_recovered: Counter,
    /// Sessions that ended unresumed.
    pub expired: Counter,
}

impl Sessions {
    /// Sessions of `clients`, stored in `store`, their notifications in
    /// `streams`; each outlives its connection by `ttl`, and there are at
    /// most `max`.
    pub fn new(
        clients: Arc<Clients>,
        streams: Arc<dyn StreamLog>,
        store: Arc<dyn SessionStore>,
        ttl: Duration,
        max: usize,
    ) -> Self {
        Self {
            clients,
            streams,
            store,
            ttl,
            max,
            records: Mutex::default(),
            started: Counter::default(),
            recovered: Counter::default(),
            not_recovered: Counter::default(),
            expired: Counter::default(),
        }
    }

    /// Take back the stored sessions (after a restart): each client is
    /// away, and a session that was connected gets its full time to resume.
    pub async fn restore(&self) -> Result<usize, StoreError> {
        let records = self.store.load().await?;
        let count = records.len();
        for mut record in records {
            if record.expires_at_ms.is_none() {
                record.expires_at_ms = Some(self.deadline());
                self.store.save(record.clone()).await?;
            }
            self.clients.restore(&record.client_id, belongings(&record));
            let id = record.client_id.clone();
            self.records
                .lock()
                .insert(id, Arc::new(tokio::sync::Mutex::new(record)));
        }
        Ok(count)
    }

    /// How many sessions there are.
    pub fn count(&self) -> usize {
        self.records.lock().len()
    }

    /// Start a session on a new connection.
    pub async fn start(&self) -> Result<(Registration, Started), SessionError> {
        if self.count() >= self.max {
            return Err(SessionError::Full(self.max));
        }
        let registration = self.clients.register(true);
        let id = registration.id.to_string();
        // Registered first: whatever is delivered from now on reaches the
        // client, and the positions read next are where it starts.
        let mut starts = BTreeMap::new();
        for stream in [StreamName::broadcast(), StreamName::client(&id)] {
            let position = self.streams.position(&stream).await?;
            starts.insert(stream.as_str().to_owned(), position);
        }
        let token = random_hex(32);
        let record = SessionRecord {
            client_id: id.clone(),
            token_hash: Sha256::digest(token.as_bytes()).into(),
            streams: starts,
            metadata: BTreeMap::new(),
            expires_at_ms: None,
        };
        let streams = record.streams.iter().map(protocol_position).collect();
        if let Err(error) = self.store.save(record.clone()).await {
            self.clients.remove(&id);
            return Err(error.into());
        }
        self.records
            .lock()
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(record)));
        self.started.inc();
        let started = Started {
            client_id: id,
            token,
            session_ttl: self.ttl.as_secs_f64(),
            streams,
        };
        Ok((registration, started))
    }

    /// Resume session `client_id` on a new connection, if `token` is its
    /// token, with the client's last `positions`.
    pub async fn resume(
        &self,
        client_id: &str,
        token: &str,
        positions: &[StreamPosition],
    ) -> Result<(Registration, Resumed), SessionError> {
        let Some(record) = self.to_resume(client_id, token).await? else {
            // The same work as a wrong token, so that timing does not tell
            // whether a client id has a session.
            let _ = token_matches(&[0; 32], token);
            return Err(SessionError::NotFound);
        };
        let mut record = record.lock().await;
        if !token_matches(&record.token_hash, token) || self.is_over(&record) {
            return Err(SessionError::NotFound);
        }
        let mut from: HashMap<&str, Position> = HashMap::new();
        for position in positions {
            if !record.streams.contains_key(&position.stream) {
                return Err(SessionError::ForeignStream(position.stream.clone()));
            }
            let at = Position {
                epoch: position.epoch.as_str().into(),
                offset: position.offset,
            };
            from.insert(&position.stream, at);
        }
        let registration = self
            .clients
            .resume(client_id)
            .ok_or(SessionError::NotFound)?;
        let mut recoveries = Vec::new();
        let mut missed = Vec::new();
        let mut tops = BTreeMap::new();
        for (name, start) in &record.streams {
            let Some(stream) = StreamName::parse(name) else {
                continue;
            };
            let since = from.get(name.as_str()).unwrap_or(start);
            let (top, recovered, count) = match self.streams.read_after(&stream, since).await? {
                History::Complete { entries, top } => {
                    let mine: Vec<_> = entries
                        .into_iter()
                        .filter(|(_, notification)| !notification.excludes(client_id))
                        .collect();
                    let count = mine.len();
                    for (offset, notification) in mine {
                        let position = Position {
                            epoch: Arc::clone(&top.epoch),
                            offset,
                        };
                        missed.push((stream.clone(), position, notification));
                    }
                    self.recovered.inc();
                    (top, true, count)
                }
                History::Incomplete { top } => {
                    self.not_recovered.inc();
                    (top, false, 0)
                }
            };
            recoveries.push(Recovery {
                position: protocol_position((name, &top)),
                recovered,
                missed: count,
            });
            tops.insert(name.clone(), top);
        }
        record.streams = tops;
        record.expires_at_ms = None;
        if let Err(error) = self.store.save(record.clone()).await {
            self.clients.disconnect(client_id, registration.serial);
            return Err(error.into());
        }
        let answer = ResumedAnswer {
            client_id: client_id.to_owned(),
            resumed: true,
            streams: recoveries,
        };
        Ok((registration, Resumed { answer, missed }))
    }

    /// The record of session `client_id` for a resume: this node's own or,
    /// from a shared store, the one handed to this node if `token` is its
    /// token (the client is then this node's, away until it reconnects).
    async fn to_resume(
        &self,
        client_id: &str,
        token: &str,
    ) -> Result<Option<SessionHandle>, SessionError> {
        if !self.store.is_shared() {
            return Ok(self.records.lock().get(client_id).cloned());
        }
        let token_hash = Sha256::digest(token.as_bytes()).into();
        let Some(record) = self.store.take(client_id, &token_hash).await? else {
            return Ok(None);
        };
        if !self.clients.is_connected(client_id) {
            self.clients.restore(client_id, belongings(&record));
        }
        let record = Arc::new(tokio::sync::Mutex::new(record));
        self.records
            .lock()
            .insert(client_id.to_owned(), Arc::clone(&record));
        Ok(Some(record))
    }

    /// The connection of session client `client_id` is gone: its session
    /// ends `session_ttl` from now unless resumed. A shared store keeps it
    /// from then on, for whichever node the client resumes on.
    pub async fn leave(&self, client_id: &str) -> Result<(), StoreError> {
        let deadline = self.deadline();
        let saved = self
            .update(client_id, |record| {
                // A resume may have come first.
                let away = !self.clients.is_connected(client_id);
                if away {
                    record.expires_at_ms = Some(deadline);
                }
                away
            })
            .await;
        if self.store.is_shared() && self.clients.remove_if_away(client_id) {
            self.records.lock().remove(client_id);
        }
        saved
    }

    /// Note that session client `client_id` now reads `stream` from
    /// `position` (it subscribed to a topic).
    pub async fn follow(
        &self,
        client_id: &str,
        stream: &StreamName,
        position: Position,
    ) -> Result<(), StoreError> {
        self.update(client_id, |record| {
            record.streams.insert(stream.as_str().to_owned(), position);
            true
        })
        .await
    }

    /// Note that session client `client_id` no longer reads `stream`.
    pub async fn unfollow(&self, client_id: &str, stream: &StreamName) -> Result<(), StoreError> {
        self.update(client_id, |record| {
            record.streams.remove(stream.as_str()).is_some()
        })
        .await
    }

    /// Save session client `client_id`'s metadata.
    pub async fn save_metadata(&self, client_id: &str) -> Result<(), StoreError> {
        let Some(belongings) = self.clients.belongings(client_id) else {
            return Ok(());
        };
        self.update(client_id, |record| {
            record.metadata = belongings.metadata.into_iter().collect();
            true
        })
        .await
    }

    /// Change the record of `client_id`, if it has a session, and save it
    /// if `change` says it changed.
    async fn update(
        &self,
        client_id: &str,
        change: impl FnOnce(&mut SessionRecord) -> bool,
    ) -> Result<(), StoreError> {
        let record = self.records.lock().get(client_id).cloned();
        let Some(record) = record else {
            return Ok(());
        };
        let mut record = record.lock().await;
        if !change(&mut record) {
            return Ok(());
        }
        let saved = self.store.save(record.clone()).await;
        if saved == Err(StoreError::SessionMoved) {
            drop(record);
            self.forget_moved(client_id);
        }
        saved
    }

    /// Another node holds session `client_id` now: drop this node's copy and
    /// close the connection that still holds it here, if any (its client
    /// goes when that connection ends, with no `on-disconnect`: the session
    /// lives on).
    fn forget_moved(&self, client_id: &str) {
        self.records.lock().remove(client_id);
        self.clients
            .close_connection(client_id, "the session was resumed on another node");
    }

    /// End the sessions whose time is up; their client ids. With a shared
    /// store, the store ends them (whichever node held them), and this node
    /// first tells it which of its sessions are connected here.
    pub async fn expire(&self) -> Vec<String> {
        if self.store.is_shared() {
            return self.expire_shared().await;
        }
        let now = now_ms();
        let candidates: Vec<(String, SessionHandle)> = self
            .records
            .lock()
            .iter()
            .map(|(id, record)| (id.clone(), Arc::clone(record)))
            .collect();
        let mut ended = Vec::new();
        for (id, record) in candidates {
            let record = record.lock().await;
            if record.expires_at_ms.is_none_or(|at| at > now) {
                continue;
            }
            let removed = async {
                self.streams.remove(&StreamName::client(&id)).await?;
                self.store.remove(&id).await
            };
            if let Err(error) = removed.await {
                tracing::error!(client = id, "ending a session failed: {error}");
                continue;
            }
            self.records.lock().remove(&id);
            self.clients.remove(&id);
            self.expired.inc();
            ended.push(id);
        }
        ended
    }

    async fn expire_shared(&self) -> Vec<String> {
        let held: Vec<String> = self.records.lock().keys().cloned().collect();
        let connected = held
            .into_iter()
            .filter(|id| self.clients.is_connected(id))
            .collect();
        match self.store.keep(connected).await {
            Ok(moved) => moved.iter().for_each(|id| self.forget_moved(id)),
            Err(error) => tracing::warn!("keeping this node's sessions alive failed: {error}"),
        }
        let ended = match self.store.end_expired().await {
            Ok(ended) => ended,
            Err(error) => {
                tracing::error!("ending expired sessions failed: {error}");
                return Vec::new();
            }
        };
        for id in &ended {
            if self.clients.remove_if_away(id) {
                self.records.lock().remove(id);
            }
            self.expired.inc();
        }
        ended
    }

    fn deadline(&self) -> u64 {
        now_ms() + self.ttl.as_millis() as u64
    }

    fn is_over(&self, record: &SessionRecord) -> bool {
        record.expires_at_ms.is_some_and(|at| at <= now_ms())
    }
}

/// What a session's client brings back.
fn belongings(record: &SessionRecord) -> Belongings {
    Belongings {
        topics: topics(record).map(str::to_owned).collect(),
        metadata: record.metadata.clone().into_iter().collect(),
    }
}

/// The topics of a session.
fn topics(record: &SessionRecord) -> impl Iterator<Item = &str> {
    record
        .streams
        .keys()
        .filter_map(|name| name.strip_prefix("topic:"))
}

/// Whether `token` hashes to `hash`, compared in constant time.
fn token_matches(hash: &[u8; 32], token: &str) -> bool {
    let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    presented.ct_eq(hash).into()
}

fn protocol_position((name, position): (&String, &Position)) -> StreamPosition {
    StreamPosition {
        stream: name.clone(),
        epoch: position.epoch.to_string(),
        offset: position.offset,
    }
}
