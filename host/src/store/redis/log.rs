//! Notification streams in Redis. One script per append takes the stream's
//! next offset, adds the notification to the stream's history (a Redis
//! stream, capped in length and expiring with the history's age) and
//! publishes it on the cluster's channel, all at once. Every node,
//! including the one that appended, delivers what arrives on its one
//! subscribed connection from one task, so each node's clients see each
//! stream in offset order; what the channel missed while it was down comes
//! from history.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Script};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::super::{
    Appended, BackendStatus, Deliver, History, HistoryLimits, Notification, Position, StoreError,
    StreamLog, StreamName,
};
use super::{Keys, failed, manager};
use crate::random::random_hex;

/// How long a stream's position outlives its last use: a stream quiet for
/// longer starts again with a new epoch.
const POSITION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an append waits for its notification to come back on the
/// channel, to count this node's recipients.
const ECHO_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a lost channel is tried again.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// KEYS: the stream's position hash, its history. ARGV: a new epoch (kept
/// if the stream has none; its history is then stale and dropped), the
/// channel message's header, the text, the excluded clients (JSON), the
/// history's length, its age in seconds, the channel, the position's TTL.
/// Publishes `OFFSET EPOCH HEADER\nTEXT`; answers the epoch and offset.
const APPEND: &str = r"
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then redis.call('DEL', KEYS[2]) end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = redis.call('HINCRBY', KEYS[1], 'top', 1)
redis.call('EXPIRE', KEYS[1], ARGV[8])
if tonumber(ARGV[5]) > 0 then
  local now = redis.call('TIME')
  local at = now[1] .. string.sub(string.format('%06d', tonumber(now[2])), 1, 3)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], top .. '-0', 't', ARGV[3], 'x', ARGV[4], 'at', at)
  redis.call('EXPIRE', KEYS[2], ARGV[6])
end
redis.call('PUBLISH', ARGV[7], top .. ' ' .. epoch .. ' ' .. ARGV[2] .. '\n' .. ARGV[3])
return {epoch, top}
";

/// KEYS: the stream's position hash, its history. ARGV: a new epoch (as in
/// APPEND), the reader's epoch and offset ('' for none), the position's
/// TTL. Answers the epoch, the last offset, the time in milliseconds and,
/// when the reader's epoch is current, the history after its offset.
const READ: &str = r"
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then redis.call('DEL', KEYS[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
local position = redis.call('HMGET', KEYS[1], 'epoch', 'top')
local top = tonumber(position[2] or '0')
local now = redis.call('TIME')
local at = now[1] .. string.sub(string.format('%06d', tonumber(now[2])), 1, 3)
local entries = {}
if position[1] == ARGV[2] and ARGV[3] ~= '' and tonumber(ARGV[3]) <= top then
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[3] .. '-0', '+')
end
return {position[1], top, at, entries}
";

/// A history entry as XRANGE answers it: its id and its fields.
type Entry = (String, HashMap<String, String>);

/// Streams shared by every node of a cluster.
pub struct RedisLog {
    reader: Arc<Reader>,
    receiver: Arc<Receiver>,
    channel: String,
    append: Script,
    /// The subscribed connection, kept open for as long as the log is.
    _subscription: ConnectionManager,
    /// Stops the delivery task with the log.
    _delivery: DropGuard,
}

impl RedisLog {
    /// Subscribe to the cluster's channel at `url`, delivering to
    /// `deliver`; commands go through `connection`; `status` hears about
    /// the channel's connection.
    pub(super) async fn connect(
        url: &str,
        connection: ConnectionManager,
        keys: Keys,
        limits: HistoryLimits,
        deliver: Arc<dyn Deliver>,
        status: Arc<BackendStatus>,
    ) -> anyhow::Result<Self> {
        let (events, queue) = mpsc::unbounded_channel();
        let receiver = Arc::new(Receiver {
            node: random_hex(8).into(),
            sequence: AtomicU64::new(0),
            waiting: Mutex::default(),
            connected: AtomicBool::new(false),
            events,
            status: Arc::clone(&status),
        });
        let pushes = Arc::clone(&receiver);
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                pushes.receive(push);
                Ok::<(), ()>(())
            })
            .set_automatic_resubscription();
        let mut subscription = manager(url, config, true).await?;
        let channel = keys.channel();
        subscription.subscribe(&channel).await?;
        let reader = Arc::new(Reader {
            connection,
            keys,
            limits,
            read: Script::new(READ),
        });
        let stop = CancellationToken::new();
        let mut delivery = Delivery {
            deliver,
            reader: Arc::clone(&reader),
            receiver: Arc::clone(&receiver),
            subscription: subscription.clone(),
            last: HashMap::new(),
            status,
        };
        delivery.start_at(StreamName::broadcast()).await?;
        tokio::spawn(delivery.run(queue, stop.clone()));
        Ok(Self {
            reader,
            receiver,
            channel,
            append: Script::new(APPEND),
            _subscription: subscription,
            _delivery: stop.drop_guard(),
        })
    }
}

#[async_trait]
impl StreamLog for RedisLog {
    async fn append(
        &self,
        stream: &StreamName,
        notification: Notification,
    ) -> Result<Appended, StoreError> {
        let sequence = self.receiver.sequence.fetch_add(1, Ordering::Relaxed);
        let echo = self.receiver.expect(sequence);
        let header = serde_json::to_string(&(
            &*self.receiver.node,
            sequence,
            stream.as_str(),
            &*notification.exclude,
        ))
        .expect("strings serialise");
        let exclude = serde_json::to_string(&*notification.exclude).expect("strings serialise");
        let keys = &self.reader.keys;
        let appended: Result<(String, u64), _> = self
            .append
            .key(keys.stream(stream))
            .key(keys.history(stream))
            .arg(random_hex(4))
            .arg(header)
            .arg(&*notification.text)
            .arg(exclude)
            .arg(self.reader.limits.size)
            .arg(self.reader.limits.ttl.as_secs().max(1))
            .arg(&self.channel)
            .arg(POSITION_TTL.as_secs())
            .invoke_async(&mut self.reader.connection.clone())
            .await;
        let (epoch, offset) = match appended {
            Ok(appended) => appended,
            Err(error) => {
                self.receiver.forget(sequence);
                return Err(failed(error));
            }
        };
        let delivered = match echo {
            Some(echo) => match tokio::time::timeout(ECHO_TIMEOUT, echo).await {
                Ok(Ok(delivered)) => delivered,
                _ => {
                    self.receiver.forget(sequence);
                    0
                }
            },
            None => 0,
        };
        Ok(Appended {
            position: Position {
                epoch: epoch.into(),
                offset,
            },
            delivered,
        })
    }

    async fn position(&self, stream: &StreamName) -> Result<Position, StoreError> {
        Ok(self.reader.read(stream, None).await?.0)
    }

    async fn read_after(
        &self,
        stream: &StreamName,
        from: &Position,
    ) -> Result<History, StoreError> {
        let (top, entries) = self.reader.read(stream, Some(from)).await?;
        Ok(History::after(from, entries, top))
    }

    async fn remove(&self, stream: &StreamName) -> Result<(), StoreError> {
        let keys = &self.reader.keys;
        redis::cmd("DEL")
            .arg(keys.stream(stream))
            .arg(keys.history(stream))
            .query_async(&mut self.reader.connection.clone())
            .await
            .map_err(failed)
    }

    /// History past its age expires in Redis (the key) and is skipped when
    /// read (single entries): nothing to do here.
    async fn trim_expired(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn reaches_every_node(&self) -> bool {
        true
    }
}

/// Reads positions and history.
struct Reader {
    connection: ConnectionManager,
    keys: Keys,
    limits: HistoryLimits,
    read: Script,
}

impl Reader {
    /// The position of `stream` and, when `from` is in its current epoch,
    /// the notifications after `from` that history still holds, in order.
    async fn read(
        &self,
        stream: &StreamName,
        from: Option<&Position>,
    ) -> Result<(Position, Vec<(u64, Notification)>), StoreError> {
        let (epoch, offset): (&str, String) = match from {
            Some(from) => (&from.epoch, from.offset.to_string()),
            None => ("", String::new()),
        };
        let (epoch, top, now_ms, entries): (String, u64, u64, Vec<Entry>) = self
            .read
            .key(self.keys.stream(stream))
            .key(self.keys.history(stream))
            .arg(random_hex(4))
            .arg(epoch)
            .arg(offset)
            .arg(POSITION_TTL.as_secs())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        let since = now_ms.saturating_sub(self.limits.ttl.as_millis() as u64);
        let entries = entries
            .into_iter()
            .filter_map(|(id, fields)| {
                let offset = id.split_once('-')?.0.parse::<u64>().ok()?;
                let at: u64 = fields.get("at")?.parse().ok()?;
                let exclude = serde_json::from_str::<Vec<String>>(fields.get("x")?).ok()?;
                let notification = Notification {
                    text: fields.get("t")?.as_str().into(),
                    exclude: exclude.into(),
                };
                (offset <= top && at >= since).then_some((offset, notification))
            })
            .collect();
        let top = Position {
            epoch: epoch.into(),
            offset: top,
        };
        Ok((top, entries))
    }
}

/// What the channel's connection hands the delivery task.
enum Event {
    /// A notification.
    Message(Message),
    /// The channel is subscribed again after it was lost.
    Reconnected,
}

/// The subscribed side, called by the connection for each push: passes
/// notifications to the delivery task and follows the connection's state.
struct Receiver {
    /// This node's id in the channel's messages.
    node: Arc<str>,
    /// The number of this node's next append.
    sequence: AtomicU64,
    /// Appends of this node waiting for their notification to come back.
    waiting: Mutex<HashMap<u64, oneshot::Sender<u32>>>,
    /// Whether the channel is subscribed now.
    connected: AtomicBool,
    events: mpsc::UnboundedSender<Event>,
    status: Arc<BackendStatus>,
}

impl Receiver {
    /// Wait for append `sequence` to come back, unless the channel is down.
    fn expect(&self, sequence: u64) -> Option<oneshot::Receiver<u32>> {
        if !self.connected.load(Ordering::Acquire) {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        self.waiting.lock().insert(sequence, sender);
        Some(receiver)
    }

    fn forget(&self, sequence: u64) {
        self.waiting.lock().remove(&sequence);
    }

    /// Tell append `sequence` of this node how many it reached.
    fn answer(&self, sequence: u64, delivered: u32) {
        if let Some(waiting) = self.waiting.lock().remove(&sequence) {
            let _ = waiting.send(delivered);
        }
    }

    fn receive(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let Some(redis::Value::BulkString(payload)) = push.data.get(1) else {
                    return;
                };
                match Message::parse(payload) {
                    Some(message) => {
                        let _ = self.events.send(Event::Message(message));
                    }
                    None => tracing::warn!("ignored a malformed message on the Redis channel"),
                }
            }
            PushKind::Subscribe if !self.connected.swap(true, Ordering::AcqRel) => {
                self.status.set_problem(None);
                let _ = self.events.send(Event::Reconnected);
            }
            PushKind::Disconnection if self.connected.swap(false, Ordering::AcqRel) => {
                tracing::warn!("lost the connection to Redis; reconnecting");
                self.status.disconnects.inc();
                self.status
                    .set_problem(Some("lost the connection to Redis; reconnecting".into()));
            }
            _ => {}
        }
    }
}

/// The delivery task: hands each stream's notifications to this node's
/// clients in offset order, once. A notification that arrives after a gap
/// (the channel was lost for a moment) first brings the missed ones from
/// history; on reconnection every stream is brought up to date.
struct Delivery {
    deliver: Arc<dyn Deliver>,
    reader: Arc<Reader>,
    receiver: Arc<Receiver>,
    /// Pinged while the channel is down: the connection reconnects (and
    /// resubscribes) when it is used.
    subscription: ConnectionManager,
    /// The last position delivered on each stream, and when.
    last: HashMap<StreamName, (Position, Instant)>,
    status: Arc<BackendStatus>,
}

impl Delivery {
    /// Follow `stream` from its current position.
    async fn start_at(&mut self, stream: StreamName) -> Result<(), StoreError> {
        let (top, _) = self.reader.read(&stream, None).await?;
        self.last.insert(stream, (top, Instant::now()));
        Ok(())
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                event = events.recv() => match event {
                    Some(Event::Message(message)) => self.message(message).await,
                    Some(Event::Reconnected) => self.catch_up().await,
                    None => return,
                },
                _ = ticks.tick() => self.watch().await,
            }
        }
    }

    async fn message(&mut self, message: Message) {
        let own = (*message.node == *self.receiver.node).then_some(message.sequence);
        if let Some((last, _)) = self.last.get(&message.stream) {
            // In a new epoch (Redis lost the stream), what came before this
            // notification in it was missed too.
            let from = match last.epoch == message.position.epoch {
                true => last.clone(),
                false => Position {
                    epoch: Arc::clone(&message.position.epoch),
                    offset: 0,
                },
            };
            if message.position.offset <= from.offset {
                // Delivered already, from history.
                if let Some(sequence) = own {
                    self.receiver.answer(sequence, 0);
                }
                return;
            }
            if message.position.offset > from.offset + 1 {
                self.fill(&message.stream, &from, message.position.offset - 1)
                    .await;
            }
        }
        let delivered = self.deliver(&message.stream, message.position, &message.notification);
        if let Some(sequence) = own {
            self.receiver.answer(sequence, delivered);
        }
    }

    /// Deliver what `stream` holds after `from`, up to offset `upto`.
    async fn fill(&mut self, stream: &StreamName, from: &Position, upto: u64) {
        let missed = upto.saturating_sub(from.offset);
        let entries = match self.reader.read(stream, Some(from)).await {
            Ok((top, entries)) if top.epoch == from.epoch => entries,
            Ok(_) => Vec::new(),
            Err(error) => {
                tracing::warn!(
                    stream = stream.as_str(),
                    "reading missed notifications failed: {error}"
                );
                Vec::new()
            }
        };
        let mut recovered = 0;
        for (offset, notification) in entries.into_iter().filter(|(offset, _)| *offset <= upto) {
            let position = Position {
                epoch: Arc::clone(&from.epoch),
                offset,
            };
            self.deliver(stream, position, &notification);
            recovered += 1;
        }
        self.status.refetched.add(recovered);
        if recovered < missed {
            tracing::warn!(
                stream = stream.as_str(),
                missed = missed - recovered,
                "notifications missed while the Redis channel was down are no longer in history"
            );
            self.status.missed.add(missed - recovered);
        }
    }

    /// Bring every stream up to date after the channel came back.
    async fn catch_up(&mut self) {
        let streams: Vec<(StreamName, Position)> = self
            .last
            .iter()
            .map(|(stream, (position, _))| (stream.clone(), position.clone()))
            .collect();
        for (stream, last) in streams {
            let top = match self.reader.read(&stream, None).await {
                Ok((top, _)) => top,
                Err(error) => {
                    tracing::warn!(stream = stream.as_str(), "catching up failed: {error}");
                    continue;
                }
            };
            let from = if top.epoch != last.epoch {
                Position {
                    epoch: Arc::clone(&top.epoch),
                    offset: 0,
                }
            } else if top.offset < last.offset {
                // Redis came back from an older copy of its data (a
                // snapshot): its offsets repeat ones already delivered.
                tracing::warn!(
                    stream = stream.as_str(),
                    delivered = last.offset,
                    now = top.offset,
                    "Redis holds an older position of this stream than this node delivered"
                );
                self.last.insert(stream, (top, Instant::now()));
                continue;
            } else {
                last
            };
            if top.offset > from.offset {
                self.fill(&stream, &from, top.offset).await;
            }
        }
    }

    /// Once a second: use the channel's connection, so that a connection
    /// found broken reconnects (and resubscribes); forget streams quiet for
    /// longer than history is kept.
    async fn watch(&mut self) {
        let ping = redis::cmd("PING");
        let _ = tokio::time::timeout(
            WATCH_INTERVAL,
            ping.query_async::<()>(&mut self.subscription),
        )
        .await;
        let ttl = self.reader.limits.ttl;
        self.last
            .retain(|stream, (_, at)| at.elapsed() <= ttl || *stream == StreamName::broadcast());
    }

    fn deliver(
        &mut self,
        stream: &StreamName,
        position: Position,
        notification: &Notification,
    ) -> u32 {
        let delivered = self.deliver.deliver(stream, &position, notification);
        self.last.insert(stream.clone(), (position, Instant::now()));
        delivered
    }
}

/// A notification as the channel carries it: `OFFSET EPOCH HEADER\nTEXT`,
/// the header a JSON array of the appending node, its sequence number, the
/// stream and the excluded clients.
struct Message {
    node: String,
    sequence: u64,
    stream: StreamName,
    position: Position,
    notification: Notification,
}

impl Message {
    fn parse(payload: &[u8]) -> Option<Self> {
        let payload = std::str::from_utf8(payload).ok()?;
        let (offset, rest) = payload.split_once(' ')?;
        let (epoch, rest) = rest.split_once(' ')?;
        let (header, text) = rest.split_once('\n')?;
        let (node, sequence, stream, exclude): (String, u64, String, Vec<String>) =
            serde_json::from_str(header).ok()?;
        Some(Self {
            node,
            sequence,
            stream: StreamName::parse(&stream)?,
            position: Position {
                epoch: epoch.into(),
                offset: offset.parse().ok()?,
            },
            notification: Notification {
                text: text.into(),
                exclude: exclude.into(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_messages_parse() {
        let payload =
            "7 ab12 [\"n1\",3,\"topic:a b\",[\"c1\"]]\n{\"jsonrpc\":\"2.0\",\"method\":\"m\"}";
        let message = Message::parse(payload.as_bytes()).expect("a message");
        assert_eq!(message.node, "n1");
        assert_eq!(message.sequence, 3);
        assert_eq!(message.stream, StreamName::topic("a b"));
        assert_eq!(
            message.position,
            Position {
                epoch: "ab12".into(),
                offset: 7
            }
        );
        assert_eq!(&*message.notification.exclude, ["c1".to_owned()]);
        assert_eq!(
            &*message.notification.text,
            r#"{"jsonrpc":"2.0","method":"m"}"#
        );
        for bad in [
            "",
            "7 e",
            "x e [\"n\",1,\"broadcast\",[]]\n{}",
            "1 e [1]\n{}",
        ] {
            assert!(Message::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
    }
}
