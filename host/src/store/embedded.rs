//! The embedded durable store: one SQLite file (`rpcnode.db`) in the data
//! folder, in WAL mode with `synchronous = FULL`, so a commit is on disk
//! before it is acknowledged, through a process kill or a power cut.
//!
//! One writer thread makes every change. Changes that arrive while it commits
//! go into its next transaction (a group commit), so concurrent callers share
//! each fsync. Plugin state and stream positions are mirrored in memory once
//! committed: reads never wait for the disk, and never see a change that is
//! not yet durable. History is read back from the file when a client resumes.
//!
//! The folder is locked (`LOCK`, `flock`) for as long as the store is open,
//! so two nodes cannot share it.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::state_map::{self, StateMap};
use super::{
    Appended, Deliver, History, HistoryLimits, Notification, Outgoing, Position, Queued,
    SessionRecord, SessionStore, StateStore, StoreError, StoredWebhook, StreamLog, StreamName,
    WebhookStore, now_ms,
};
use crate::random::random_hex;

/// The database file in the data folder.
pub const DATABASE_FILE: &str = "rpcnode.db";
/// The lock file in the data folder.
pub const LOCK_FILE: &str = "LOCK";
/// The schema this build writes.
const SCHEMA_VERSION: i64 = 2;
/// The most changes in one transaction.
const MAX_BATCH: usize = 512;
/// Changes waiting for the writer before callers wait to hand theirs over.
const QUEUE: usize = 4096;

const SCHEMA: &str = "
CREATE TABLE state (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE streams (
    name TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    top INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE history (
    stream TEXT NOT NULL,
    offset INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    text TEXT NOT NULL,
    exclude TEXT NOT NULL,
    PRIMARY KEY (stream, offset)
) WITHOUT ROWID;
CREATE INDEX history_by_age ON history (at_ms);
CREATE TABLE sessions (
    client_id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL,
    streams TEXT NOT NULL,
    metadata TEXT NOT NULL,
    expires_at_ms INTEGER
) WITHOUT ROWID;
";

/// The tables schema version 2 added to version 1.
const WEBHOOK_TABLES: &str = "
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE webhook_queue (
    subscription TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    topic TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (subscription, seq)
) WITHOUT ROWID;
";

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One change for the writer thread, with where its outcome goes.
enum Write {
    Set(String, String, String, Reply<()>),
    Delete(String, String, Reply<bool>),
    Increment(String, String, i64, Reply<i64>),
    Append(StreamName, Notification, Reply<Appended>),
    Ensure(StreamName, Reply<Position>),
    RemoveStream(StreamName, Reply<()>),
    Trim(Reply<()>),
    SaveSession(SessionRecord, Reply<()>),
    RemoveSession(String, Reply<()>),
    SaveWebhook(String, String, Reply<()>),
    UpdateWebhook(String, String, Reply<()>),
    RemoveWebhook(String, Reply<()>),
    Enqueue(Vec<String>, Outgoing, Reply<Vec<(String, u64)>>),
    Acknowledge(String, u64, Reply<()>),
}

/// What the writer answers once its transaction is committed (or not).
enum Finish {
    Unit(Reply<()>, Result<(), StoreError>),
    Bool(Reply<bool>, bool),
    Int(Reply<i64>, Result<i64, StoreError>),
    Position(Reply<Position>, Position),
    Append(Reply<Appended>, StreamName, Position, Notification),
    Enqueued(Reply<Vec<(String, u64)>>, Vec<(String, u64)>),
}

/// What readers see: only committed changes.
#[derive(Default)]
struct Committed {
    state: StateMap,
    tops: Mutex<HashMap<StreamName, Position>>,
}

/// The embedded store. It implements every backend trait; clones share one
/// file and one writer.
#[derive(Clone)]
pub struct Embedded {
    writes: mpsc::Sender<Write>,
    committed: Arc<Committed>,
    reader: Arc<Mutex<Connection>>,
    limits: HistoryLimits,
}

impl Embedded {
    /// Open (or create) the store in `dir`, lock the folder, check the file
    /// and start the writer. Appended notifications are handed to `deliver`.
    pub fn open(
        dir: &Path,
        limits: HistoryLimits,
        deliver: Arc<dyn Deliver>,
    ) -> anyhow::Result<Self> {
        let lock = lock_folder(dir)?;
        let file = dir.join(DATABASE_FILE);
        let broken = |problem: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "the store {} cannot be used: {problem}. Restore it from a backup, or move it \
                 (with its -wal and -shm files) away to start with an empty store",
                file.display()
            )
        };
        let writer = open_connection(&file).map_err(|error| broken(&error))?;
        let check: String = writer
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|error| broken(&error))?;
        if check != "ok" {
            return Err(broken(&format_args!("it is corrupt ({check})")));
        }
        migrate(&writer, &file)?;
        let committed = Arc::new(Committed::default());
        load(&writer, &committed).map_err(|error| broken(&error))?;
        let reader = open_connection(&file).map_err(|error| broken(&error))?;

        let (writes, queue) = mpsc::channel(QUEUE);
        let outcomes = answers(deliver)?;
        let thread = Writer {
            connection: writer,
            committed: Arc::clone(&committed),
            limits,
            outcomes,
            _lock: lock,
        };
        std::thread::Builder::new()
            .name("rpcnode-store".into())
            .spawn(move || thread.run(queue))
            .context("starting the store's writer thread")?;
        Ok(Self {
            writes,
            committed,
            reader: Arc::new(Mutex::new(reader)),
            limits,
        })
    }

    /// Hand `write` (made by `make` around its reply) to the writer and wait
    /// for its outcome.
    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Write) -> Result<T, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.writes.send(make(reply)).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }

    /// Run `read` on the reader connection, off the async workers.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || read(&reader.lock()))
            .await
            .map_err(|_| stopped())?
            .map_err(backend)
    }
}

#[async_trait]
impl StateStore for Embedded {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.committed.state.get(namespace, key))
    }

    async fn set(&self, namespace: &str, key: &str, value: String) -> Result<(), StoreError> {
        state_map::check_size(&value)?;
        self.write(|reply| Write::Set(namespace.into(), key.into(), value, reply))
            .await
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        if self.committed.state.get(namespace, key).is_none() {
            return Ok(false);
        }
        self.write(|reply| Write::Delete(namespace.into(), key.into(), reply))
            .await
    }

    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.write(|reply| Write::Increment(namespace.into(), key.into(), delta, reply))
            .await
    }
}

#[async_trait]
impl StreamLog for Embedded {
    async fn append(
        &self,
        stream: &StreamName,
        notification: Notification,
    ) -> Result<Appended, StoreError> {
        self.write(|reply| Write::Append(stream.clone(), notification, reply))
            .await
    }

    async fn position(&self, stream: &StreamName) -> Result<Position, StoreError> {
        if let Some(position) = self.committed.tops.lock().get(stream) {
            return Ok(position.clone());
        }
        self.write(|reply| Write::Ensure(stream.clone(), reply))
            .await
    }

    async fn read_after(
        &self,
        stream: &StreamName,
        from: &Position,
    ) -> Result<History, StoreError> {
        let top = self.position(stream).await?;
        if from.epoch != top.epoch || from.offset > top.offset {
            return Ok(History::Incomplete { top });
        }
        let (name, after, upto) = (stream.as_str().to_owned(), from.offset, top.offset);
        let since = now_ms().saturating_sub(self.limits.ttl.as_millis() as u64);
        let entries = self
            .read(move |reader| {
                let mut rows = reader.prepare_cached(
                    "SELECT offset, text, exclude FROM history
                     WHERE stream = ?1 AND offset > ?2 AND offset <= ?3 AND at_ms >= ?4
                     ORDER BY offset",
                )?;
                let rows = rows.query_map(params![name, after, upto, since], |row| {
                    let exclude: String = row.get(2)?;
                    let notification = Notification {
                        text: row.get::<_, String>(1)?.into(),
                        exclude: serde_json::from_str::<Vec<String>>(&exclude)
                            .unwrap_or_default()
                            .into(),
                    };
                    Ok((row.get(0)?, notification))
                })?;
                rows.collect::<rusqlite::Result<Vec<(u64, Notification)>>>()
            })
            .await?;
        Ok(History::after(from, entries, top))
    }

    async fn remove(&self, stream: &StreamName) -> Result<(), StoreError> {
        self.write(|reply| Write::RemoveStream(stream.clone(), reply))
            .await
    }

    async fn trim_expired(&self) -> Result<(), StoreError> {
        self.write(Write::Trim).await
    }
}

#[async_trait]
impl SessionStore for Embedded {
    async fn save(&self, record: SessionRecord) -> Result<(), StoreError> {
        self.write(|reply| Write::SaveSession(record, reply)).await
    }

    async fn remove(&self, client_id: &str) -> Result<(), StoreError> {
        self.write(|reply| Write::RemoveSession(client_id.into(), reply))
            .await
    }

    async fn load(&self) -> Result<Vec<SessionRecord>, StoreError> {
        self.read(|reader| {
            let mut rows = reader.prepare(
                "SELECT client_id, token_hash, streams, metadata, expires_at_ms FROM sessions",
            )?;
            let rows = rows.query_map([], |row| {
                let hash: Vec<u8> = row.get(1)?;
                let streams: String = row.get(2)?;
                let metadata: String = row.get(3)?;
                Ok(SessionRecord {
                    client_id: row.get(0)?,
                    token_hash: hash.try_into().unwrap_or([0; 32]),
                    streams: serde_json::from_str(&streams).unwrap_or_default(),
                    metadata: serde_json::from_str(&metadata).unwrap_or_default(),
                    expires_at_ms: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

impl Embedded {
    /// Subscription `id`, or every subscription for `None`.
    async fn stored_webhooks(&self, id: Option<String>) -> Result<Vec<StoredWebhook>, StoreError> {
        self.read(move |reader| {
            let mut rows = reader.prepare_cached(
                "SELECT id, record, last_seq,
                    (SELECT MIN(seq) FROM webhook_queue WHERE subscription = id)
                 FROM webhooks WHERE ?1 IS NULL OR id = ?1",
            )?;
            let rows = rows.query_map([id], |row| {
                Ok(StoredWebhook {
                    id: row.get(0)?,
                    record: row.get(1)?,
                    last_seq: row.get(2)?,
                    first_queued: row.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

#[async_trait]
impl WebhookStore for Embedded {
    async fn save_webhook(&self, id: &str, record: String) -> Result<(), StoreError> {
        self.write(|reply| Write::SaveWebhook(id.into(), record, reply))
            .await
    }

    async fn update_webhook(&self, id: &str, changes: String) -> Result<(), StoreError> {
        self.write(|reply| Write::UpdateWebhook(id.into(), changes, reply))
            .await
    }

    async fn remove_webhook(&self, id: &str) -> Result<(), StoreError> {
        self.write(|reply| Write::RemoveWebhook(id.into(), reply))
            .await
    }

    async fn load_webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        self.stored_webhooks(None).await
    }

    async fn load_webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        let mut found = self.stored_webhooks(Some(id.to_owned())).await?;
        Ok(found.pop())
    }

    async fn enqueue(
        &self,
        subscriptions: Vec<String>,
        message: Outgoing,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.write(|reply| Write::Enqueue(subscriptions, message, reply))
            .await
    }

    async fn queued(&self, id: &str, after: u64, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let id = id.to_owned();
        self.read(move |reader| {
            let mut rows = reader.prepare_cached(
                "SELECT seq, message_id, topic, body FROM webhook_queue
                 WHERE subscription = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = rows.query_map(params![id, after, limit as u64], |row| {
                Ok(Queued {
                    seq: row.get(0)?,
                    message: Outgoing {
                        message_id: row.get(1)?,
                        topic: row.get(2)?,
                        body: row.get::<_, String>(3)?.into(),
                    },
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn acknowledge(&self, id: &str, upto: u64) -> Result<(), StoreError> {
        self.write(|reply| Write::Acknowledge(id.into(), upto, reply))
            .await
    }
}

/// The writer thread: the one connection that changes the file.
struct Writer {
    connection: Connection,
    committed: Arc<Committed>,
    limits: HistoryLimits,
    /// Where the outcomes of committed batches go to be answered.
    outcomes: Outcomes,
    /// Held for as long as the writer runs: the folder stays locked.
    _lock: File,
}

/// The writer's side of the way back: committed batches, and a datagram
/// socket it pokes after each so that the async side wakes.
struct Outcomes {
    batches: std::sync::mpsc::Sender<Vec<Finish>>,
    poke: std::os::unix::net::UnixDatagram,
}

impl Outcomes {
    fn send(&self, batch: Vec<Finish>) {
        if self.batches.send(batch).is_ok() {
            // A full socket buffer means a poke is already waiting.
            let _ = self.poke.send(&[1]);
        }
    }
}

/// The way back from the writer thread to the callers, and the task that
/// answers them and delivers committed appends, in commit order.
///
/// Why a socket: a task woken from a thread outside the async runtime is
/// queued behind every task already waiting (after a broadcast, every
/// recipient's connection), so each commit would wait a full round of the
/// runtime before its callers resumed. A socket's readiness is seen by the
/// runtime's own I/O driver, which runs the woken task next, and the answers
/// it sends from there wake their callers the same way.
fn answers(deliver: Arc<dyn Deliver>) -> anyhow::Result<Outcomes> {
    let (poke, woken) =
        std::os::unix::net::UnixDatagram::pair().context("creating the store's wake-up socket")?;
    poke.set_nonblocking(true)?;
    woken.set_nonblocking(true)?;
    let woken = tokio::net::UnixDatagram::from_std(woken)?;
    let (batches, committed) = std::sync::mpsc::channel::<Vec<Finish>>();
    tokio::spawn(async move {
        let mut drained = [0u8; 64];
        loop {
            if woken.readable().await.is_err() {
                return;
            }
            while woken.try_recv(&mut drained).is_ok() {}
            loop {
                match committed.try_recv() {
                    Ok(batch) => answer(batch, deliver.as_ref()),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
        }
    });
    Ok(Outcomes { batches, poke })
}

/// Answer each change of a committed batch, delivering appends first.
fn answer(batch: Vec<Finish>, deliver: &dyn Deliver) {
    for finish in batch {
        match finish {
            Finish::Unit(reply, result) => drop(reply.send(result)),
            Finish::Bool(reply, value) => drop(reply.send(Ok(value))),
            Finish::Int(reply, result) => drop(reply.send(result)),
            Finish::Position(reply, position) => drop(reply.send(Ok(position))),
            Finish::Enqueued(reply, queued) => drop(reply.send(Ok(queued))),
            Finish::Append(reply, stream, position, notification) => {
                let delivered = deliver.deliver(&stream, &position, &notification);
                let _ = reply.send(Ok(Appended {
                    position,
                    delivered,
                }));
            }
        }
    }
}

impl Writer {
    /// Commit changes in batches until every handle to the store is gone.
    fn run(mut self, mut queue: mpsc::Receiver<Write>) {
        while let Some(first) = queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(write) => batch.push(write),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
        // Tell the answering task there is nothing more to come.
        let Outcomes { batches, poke } = self.outcomes;
        drop(batches);
        let _ = poke.send(&[0]);
    }

    /// Apply `batch` in one transaction; answer each change once the
    /// transaction is durable, or answer all with the error that stopped it.
    fn commit(&mut self, batch: Vec<Write>) {
        let mut pending = Pending::default();
        let outcome = (|| -> rusqlite::Result<Vec<Finish>> {
            let transaction = self.connection.transaction()?;
            let mut finishes = Vec::with_capacity(batch.len());
            {
                let mut stage = Stage {
                    transaction: &transaction,
                    committed: &self.committed,
                    limits: self.limits,
                    pending: &mut pending,
                };
                for write in batch {
                    finishes.push(stage.apply(write)?);
                }
            }
            transaction.commit()?;
            Ok(finishes)
        })();
        let finishes = match outcome {
            Ok(finishes) => finishes,
            Err(error) => {
                // The batch's replies were dropped with it: each caller sees
                // the store as failed. Say why, once.
                tracing::error!("the store could not commit: {error}");
                return;
            }
        };
        pending.publish(&self.committed);
        self.outcomes.send(finishes);
    }
}

/// Changes made in the open transaction, published to readers on commit.
#[derive(Default)]
struct Pending {
    state: HashMap<(String, String), Option<String>>,
    /// Key-count changes per namespace.
    keys: HashMap<String, isize>,
    /// New positions; `None` for a removed stream.
    tops: HashMap<StreamName, Option<Position>>,
}

impl Pending {
    fn publish(self, committed: &Committed) {
        committed.state.update(|namespaces| {
            for ((namespace, key), value) in self.state {
                state_map::put(namespaces, &namespace, &key, value);
            }
        });
        let mut tops = committed.tops.lock();
        for (stream, top) in self.tops {
            match top {
                Some(top) => tops.insert(stream, top),
                None => tops.remove(&stream),
            };
        }
    }
}

/// One transaction being filled.
struct Stage<'a> {
    transaction: &'a Transaction<'a>,
    committed: &'a Committed,
    limits: HistoryLimits,
    pending: &'a mut Pending,
}

impl Stage<'_> {
    fn apply(&mut self, write: Write) -> rusqlite::Result<Finish> {
        Ok(match write {
            Write::Set(namespace, key, value, reply) => {
                let exists = self.value(&namespace, &key).is_some();
                let result = state_map::check_room(self.keys(&namespace), exists);
                if result.is_ok() {
                    self.put(namespace, key, Some(value))?;
                }
                Finish::Unit(reply, result)
            }
            Write::Delete(namespace, key, reply) => {
                let existed = self.value(&namespace, &key).is_some();
                if existed {
                    self.put(namespace, key, None)?;
                }
                Finish::Bool(reply, existed)
            }
            Write::Increment(namespace, key, delta, reply) => {
                let current = self.value(&namespace, &key);
                let result = state_map::check_room(self.keys(&namespace), current.is_some())
                    .and_then(|()| state_map::incremented(current.as_deref(), &key, delta));
                if let Ok(next) = result {
                    self.put(namespace, key, Some(next.to_string()))?;
                }
                Finish::Int(reply, result)
            }
            Write::Append(stream, notification, reply) => {
                let position = self.append(&stream, &notification)?;
                Finish::Append(reply, stream, position, notification)
            }
            Write::Ensure(stream, reply) => {
                let position = self.top(&stream)?;
                Finish::Position(reply, position)
            }
            Write::RemoveStream(stream, reply) => {
                let name = stream.as_str();
                self.transaction
                    .execute("DELETE FROM streams WHERE name = ?1", [name])?;
                self.transaction
                    .execute("DELETE FROM history WHERE stream = ?1", [name])?;
                self.pending.tops.insert(stream, None);
                Finish::Unit(reply, Ok(()))
            }
            Write::Trim(reply) => {
                let since = now_ms().saturating_sub(self.limits.ttl.as_millis() as u64);
                self.transaction
                    .execute("DELETE FROM history WHERE at_ms < ?1", [since])?;
                Finish::Unit(reply, Ok(()))
            }
            Write::SaveSession(record, reply) => {
                self.transaction.execute(
                    "INSERT OR REPLACE INTO sessions VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        record.client_id,
                        &record.token_hash[..],
                        serde_json::to_string(&record.streams).expect("positions serialise"),
                        serde_json::to_string(&record.metadata).expect("strings serialise"),
                        record.expires_at_ms,
                    ],
                )?;
                Finish::Unit(reply, Ok(()))
            }
            Write::RemoveSession(client_id, reply) => {
                self.transaction
                    .execute("DELETE FROM sessions WHERE client_id = ?1", [client_id])?;
                Finish::Unit(reply, Ok(()))
            }
            Write::SaveWebhook(id, record, reply) => {
                self.transaction.execute(
                    "INSERT INTO webhooks (id, record) VALUES (?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                    params![id, record],
                )?;
                Finish::Unit(reply, Ok(()))
            }
            Write::UpdateWebhook(id, changes, reply) => {
                self.transaction.execute(
                    "UPDATE webhooks SET record = json_patch(record, ?2) WHERE id = ?1",
                    params![id, changes],
                )?;
                Finish::Unit(reply, Ok(()))
            }
            Write::RemoveWebhook(id, reply) => {
                self.transaction
                    .execute("DELETE FROM webhooks WHERE id = ?1", [&id])?;
                self.transaction
                    .execute("DELETE FROM webhook_queue WHERE subscription = ?1", [&id])?;
                Finish::Unit(reply, Ok(()))
            }
            Write::Enqueue(subscriptions, message, reply) => {
                let queued = self.enqueue(subscriptions, &message)?;
                Finish::Enqueued(reply, queued)
            }
            Write::Acknowledge(id, upto, reply) => {
                self.transaction
                    .prepare_cached(
                        "DELETE FROM webhook_queue WHERE subscription = ?1 AND seq <= ?2",
                    )?
                    .execute(params![id, upto])?;
                Finish::Unit(reply, Ok(()))
            }
        })
    }

    /// The value at `key` as this transaction sees it.
    fn value(&self, namespace: &str, key: &str) -> Option<String> {
        match self
            .pending
            .state
            .get(&(namespace.to_owned(), key.to_owned()))
        {
            Some(value) => value.clone(),
            None => self.committed.state.get(namespace, key),
        }
    }

    /// How many keys `namespace` has as this transaction sees it.
    fn keys(&self, namespace: &str) -> usize {
        let change = self.pending.keys.get(namespace).copied().unwrap_or(0);
        self.committed
            .state
            .len(namespace)
            .saturating_add_signed(change)
    }

    fn put(
        &mut self,
        namespace: String,
        key: String,
        value: Option<String>,
    ) -> rusqlite::Result<()> {
        let existed = self.value(&namespace, &key).is_some();
        match &value {
            Some(value) => self.transaction.execute(
                "INSERT OR REPLACE INTO state VALUES (?1, ?2, ?3)",
                params![namespace, key, value],
            )?,
            None => self.transaction.execute(
                "DELETE FROM state WHERE namespace = ?1 AND key = ?2",
                params![namespace, key],
            )?,
        };
        let change = match (existed, value.is_some()) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        *self.pending.keys.entry(namespace.clone()).or_default() += change;
        self.pending.state.insert((namespace, key), value);
        Ok(())
    }

    /// The stream's position as this transaction sees it, creating the
    /// stream (with a new epoch) if it does not exist.
    fn top(&mut self, stream: &StreamName) -> rusqlite::Result<Position> {
        let known = match self.pending.tops.get(stream) {
            Some(top) => top.clone(),
            None => self.committed.tops.lock().get(stream).cloned(),
        };
        if let Some(top) = known {
            return Ok(top);
        }
        let top = Position {
            epoch: random_hex(4).into(),
            offset: 0,
        };
        self.transaction.execute(
            "INSERT INTO streams VALUES (?1, ?2, 0)",
            params![stream.as_str(), &*top.epoch],
        )?;
        self.pending.tops.insert(stream.clone(), Some(top.clone()));
        Ok(top)
    }

    /// Queue `message` behind the last one of each subscription that exists.
    fn enqueue(
        &mut self,
        subscriptions: Vec<String>,
        message: &Outgoing,
    ) -> rusqlite::Result<Vec<(String, u64)>> {
        let mut queued = Vec::with_capacity(subscriptions.len());
        for id in subscriptions {
            let seq: Option<u64> = self
                .transaction
                .prepare_cached(
                    "UPDATE webhooks SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
                )?
                .query_row([&id], |row| row.get(0))
                .optional()?;
            let Some(seq) = seq else { continue };
            self.transaction
                .prepare_cached("INSERT INTO webhook_queue VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![
                    id,
                    seq,
                    message.message_id,
                    message.topic,
                    &*message.body
                ])?;
            queued.push((id, seq));
        }
        Ok(queued)
    }

    /// Give `notification` the stream's next offset and keep it in history.
    fn append(
        &mut self,
        stream: &StreamName,
        notification: &Notification,
    ) -> rusqlite::Result<Position> {
        let top = self.top(stream)?;
        let position = Position {
            epoch: top.epoch,
            offset: top.offset + 1,
        };
        let name = stream.as_str();
        self.transaction.execute(
            "UPDATE streams SET top = ?2 WHERE name = ?1",
            params![name, position.offset],
        )?;
        if self.limits.size > 0 {
            let exclude = serde_json::to_string(&notification.exclude).expect("strings serialise");
            self.transaction
                .prepare_cached("INSERT INTO history VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![
                    name,
                    position.offset,
                    now_ms(),
                    &*notification.text,
                    exclude
                ])?;
            let oldest_kept = position.offset.saturating_sub(self.limits.size as u64);
            if oldest_kept > 0 {
                self.transaction
                    .prepare_cached("DELETE FROM history WHERE stream = ?1 AND offset <= ?2")?
                    .execute(params![name, oldest_kept])?;
            }
        }
        self.pending
            .tops
            .insert(stream.clone(), Some(position.clone()));
        Ok(position)
    }
}

/// Create `dir` (private to this user) if needed and lock it.
fn lock_folder(dir: &Path) -> anyhow::Result<File> {
    create_private_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "the data folder {} is in use by another rpcnode process (it holds {}); stop \
             that process, or pass --data-dir to give this node a folder of its own",
            dir.display(),
            path.display()
        );
    }
    Ok(lock)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the data folder {}", dir.display()))
}

fn open_connection(file: &PathBuf) -> rusqlite::Result<Connection> {
    let connection = Connection::open(file)?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the file refused write-ahead logging (journal mode {mode})"
        )));
    }
    connection.execute_batch("PRAGMA synchronous = FULL;")?;
    Ok(connection)
}

/// Create the tables of a new file; refuse a file written by a newer build.
fn migrate(connection: &Connection, file: &Path) -> anyhow::Result<()> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .with_context(|| format!("reading the schema version of {}", file.display()))?;
    match version {
        0 => connection
            .execute_batch(&format!(
                "BEGIN; {SCHEMA} {WEBHOOK_TABLES} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .with_context(|| format!("creating the tables of {}", file.display())),
        1 => connection
            .execute_batch(&format!(
                "BEGIN; {WEBHOOK_TABLES} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .with_context(|| format!("adding the webhook tables to {}", file.display())),
        SCHEMA_VERSION => Ok(()),
        newer => bail!(
            "the store {} has schema version {newer}; this rpcnode understands version \
             {SCHEMA_VERSION}: run a newer rpcnode, or start this one with another --data-dir",
            file.display()
        ),
    }
}

/// Read the committed state and stream positions into memory.
fn load(connection: &Connection, committed: &Committed) -> rusqlite::Result<()> {
    let mut rows = connection.prepare("SELECT namespace, key, value FROM state")?;
    let mut rows = rows.query([])?;
    while let Some(row) = rows.next()? {
        let (namespace, key, value): (String, String, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?);
        committed.state.put(&namespace, &key, Some(value));
    }
    let mut rows = connection.prepare("SELECT name, epoch, top FROM streams")?;
    let mut rows = rows.query([])?;
    let mut tops = committed.tops.lock();
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let Some(stream) = StreamName::parse(&name) else {
            continue;
        };
        let epoch: String = row.get(1)?;
        let top = Position {
            epoch: epoch.into(),
            offset: row.get(2)?,
        };
        tops.insert(stream, top);
    }
    Ok(())
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn stopped() -> StoreError {
    StoreError::Backend("the store could not save this change (see the server log)".into())
}

/// Read one value, for tests that look inside the file.
#[cfg(test)]
fn read_state(dir: &Path, namespace: &str, key: &str) -> Option<String> {
    use rusqlite::OptionalExtension as _;
    let connection = Connection::open(dir.join(DATABASE_FILE)).unwrap();
    connection
        .query_row(
            "SELECT value FROM state WHERE namespace = ?1 AND key = ?2",
            [namespace, key],
            |row| row.get(0),
        )
        .optional()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Count;

    impl Deliver for Count {
        fn deliver(&self, _: &StreamName, _: &Position, _: &Notification) -> u32 {
            1
        }
    }

    fn open(dir: &Path) -> anyhow::Result<Embedded> {
        let limits = HistoryLimits {
            size: 2,
            ttl: Duration::from_secs(60),
        };
        Embedded::open(dir, limits, Arc::new(Count))
    }

    #[tokio::test]
    async fn changes_are_in_the_file_once_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        store.set("p", "k", "\"v\"".into()).await.unwrap();
        assert_eq!(store.increment("p", "n", 5).await, Ok(5));
        assert_eq!(read_state(dir.path(), "p", "k").as_deref(), Some("\"v\""));
        assert_eq!(read_state(dir.path(), "p", "n").as_deref(), Some("5"));
        assert_eq!(
            store.increment("p", "k", 1).await,
            Err(StoreError::NotAnInteger("k".into()))
        );
        assert!(store.delete("p", "k").await.unwrap());
        assert_eq!(read_state(dir.path(), "p", "k"), None);
    }

    #[tokio::test]
    async fn a_second_store_on_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path()).unwrap();
        let error = open(dir.path()).err().unwrap().to_string();
        assert!(
            error.contains("is in use by another rpcnode process"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn positions_and_history_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let stream = StreamName::topic("t");
        let start = {
            let store = open(dir.path()).unwrap();
            let start = store.position(&stream).await.unwrap();
            for n in 0..3 {
                let text = format!(r#"{{"jsonrpc":"2.0","method":"m{n}"}}"#);
                store
                    .append(&stream, Notification::new(text))
                    .await
                    .unwrap();
            }
            start
        };
        // The writer lets go of the folder once every handle is gone.
        let store = loop {
            match open(dir.path()) {
                Ok(store) => break store,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        let top = store.position(&stream).await.unwrap();
        assert_eq!((top.epoch.clone(), top.offset), (start.epoch.clone(), 3));
        let from = Position {
            epoch: start.epoch.clone(),
            offset: 1,
        };
        let History::Complete { entries, .. } = store.read_after(&stream, &from).await.unwrap()
        else {
            panic!("the last two are kept");
        };
        assert_eq!(
            entries
                .iter()
                .map(|(offset, _)| *offset)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        let from = Position { offset: 0, ..from };
        assert_eq!(
            store.read_after(&stream, &from).await.unwrap(),
            History::Incomplete { top }
        );
    }

    #[tokio::test]
    async fn a_version_1_file_gains_the_webhook_tables() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
            old.execute_batch(&format!("{SCHEMA} PRAGMA user_version = 1;"))
                .unwrap();
            old.execute("INSERT INTO state VALUES ('p', 'k', '1')", [])
                .unwrap();
        }
        let store = open(dir.path()).unwrap();
        assert_eq!(store.get("p", "k").await, Ok(Some("1".into())));
        store.save_webhook("wh_1", "{}".into()).await.unwrap();
        let message = Outgoing {
            message_id: "msg_1".into(),
            topic: Some("t".into()),
            body: "{}".into(),
        };
        let queued = store.enqueue(vec!["wh_1".into(), "wh_gone".into()], message.clone());
        assert_eq!(queued.await, Ok(vec![("wh_1".into(), 1)]));
        store.acknowledge("wh_1", 1).await.unwrap();
        let queued = store.enqueue(vec!["wh_1".into()], message).await;
        assert_eq!(queued, Ok(vec![("wh_1".into(), 2)]));
        let stored = store.load_webhooks().await.unwrap();
        assert_eq!((stored[0].last_seq, stored[0].first_queued), (2, Some(2)));
    }

    #[tokio::test]
    async fn a_webhook_update_changes_only_its_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).unwrap();
        let record = r#"{"topics":["a"],"challenge":"c","failed_attempts":0}"#;
        store.save_webhook("wh_1", record.into()).await.unwrap();
        let changes = r#"{"topics":["b","c"],"challenge":null}"#;
        store.update_webhook("wh_1", changes.into()).await.unwrap();
        store
            .update_webhook("wh_gone", changes.into())
            .await
            .unwrap();
        let stored = store.load_webhook("wh_1").await.unwrap().unwrap();
        let record: serde_json::Value = serde_json::from_str(&stored.record).unwrap();
        // A null field is removed, which reads back as none.
        assert_eq!(
            record,
            serde_json::json!({"topics": ["b", "c"], "failed_attempts": 0})
        );
        assert_eq!(store.load_webhook("wh_gone").await, Ok(None));
    }
}
