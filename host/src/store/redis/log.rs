//! Notification streams in Redis. One script per append takes the stream's
//! next offset, adds the notification to the stream's history (a Redis
//! stream, capped in length and expiring with the history's age) and
//! publishes it on the cluster's channel, all at once. Every node,
//! including the one that appended, delivers what arrives on its one
//! subscribed connection, so each node's clients see each stream in offset
//! order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Script};
use tokio::sync::oneshot;

use super::super::{
    Appended, Deliver, History, HistoryLimits, Notification, Position, StoreError, StreamLog,
    StreamName,
};
use super::{Keys, failed, manager};
use crate::random::random_hex;

/// How long a stream's position outlives its last use: a stream quiet for
/// longer starts again with a new epoch.
const POSITION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an append waits for its notification to come back on the
/// channel, to count this node's recipients.
const ECHO_TIMEOUT: Duration = Duration::from_secs(1);

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
    connection: ConnectionManager,
    /// The subscribed connection, kept open for as long as the log is.
    _subscription: ConnectionManager,
    keys: Keys,
    channel: String,
    limits: HistoryLimits,
    receiver: Arc<Receiver>,
    append: Script,
    read: Script,
}

impl RedisLog {
    /// Subscribe to the cluster's channel at `url`, delivering to
    /// `deliver`; commands go through `connection`.
    pub(super) async fn connect(
        url: &str,
        connection: ConnectionManager,
        keys: Keys,
        limits: HistoryLimits,
        deliver: Arc<dyn Deliver>,
    ) -> anyhow::Result<Self> {
        let receiver = Arc::new(Receiver {
            deliver,
            node: random_hex(8).into(),
            sequence: AtomicU64::new(0),
            waiting: Mutex::default(),
            subscribed: AtomicBool::new(false),
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
        receiver.subscribed.store(true, Ordering::Release);
        Ok(Self {
            connection,
            _subscription: subscription,
            keys,
            channel,
            limits,
            receiver,
            append: Script::new(APPEND),
            read: Script::new(READ),
        })
    }

    /// The position of `stream`, and its history after `from` when `from`
    /// is in the current epoch.
    async fn read_stream(
        &self,
        stream: &StreamName,
        from: Option<&Position>,
    ) -> Result<(Position, u64, Vec<Entry>), StoreError> {
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
        let position = Position {
            epoch: epoch.into(),
            offset: top,
        };
        Ok((position, now_ms, entries))
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
        let appended: Result<(String, u64), _> = self
            .append
            .key(self.keys.stream(stream))
            .key(self.keys.history(stream))
            .arg(random_hex(4))
            .arg(header)
            .arg(&*notification.text)
            .arg(exclude)
            .arg(self.limits.size)
            .arg(self.limits.ttl.as_secs().max(1))
            .arg(&self.channel)
            .arg(POSITION_TTL.as_secs())
            .invoke_async(&mut self.connection.clone())
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
        Ok(self.read_stream(stream, None).await?.0)
    }

    async fn read_after(
        &self,
        stream: &StreamName,
        from: &Position,
    ) -> Result<History, StoreError> {
        let (top, now_ms, entries) = self.read_stream(stream, Some(from)).await?;
        if from.epoch != top.epoch || from.offset > top.offset {
            return Ok(History::Incomplete { top });
        }
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
                (offset <= top.offset && at >= since).then_some((offset, notification))
            })
            .collect();
        Ok(History::after(from, entries, top))
    }

    async fn remove(&self, stream: &StreamName) -> Result<(), StoreError> {
        redis::cmd("DEL")
            .arg(self.keys.stream(stream))
            .arg(self.keys.history(stream))
            .query_async(&mut self.connection.clone())
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

/// The subscribed side: delivers what the channel carries to this node's
/// clients, and tells this node's appends how many it reached.
struct Receiver {
    deliver: Arc<dyn Deliver>,
    /// This node's id in the channel's messages.
    node: Arc<str>,
    /// The number of this node's next append.
    sequence: AtomicU64,
    /// Appends of this node waiting for their notification to come back.
    waiting: Mutex<HashMap<u64, oneshot::Sender<u32>>>,
    /// Whether the channel is subscribed now (false while reconnecting).
    subscribed: AtomicBool,
}

impl Receiver {
    /// Wait for append `sequence` to come back, unless the channel is down.
    fn expect(&self, sequence: u64) -> Option<oneshot::Receiver<u32>> {
        if !self.subscribed.load(Ordering::Acquire) {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        self.waiting.lock().insert(sequence, sender);
        Some(receiver)
    }

    fn forget(&self, sequence: u64) {
        self.waiting.lock().remove(&sequence);
    }

    fn receive(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {}
            PushKind::Subscribe => return self.subscribed.store(true, Ordering::Release),
            PushKind::Disconnection => {
                tracing::warn!("lost the Redis channel; reconnecting");
                return self.subscribed.store(false, Ordering::Release);
            }
            _ => return,
        }
        let Some(redis::Value::BulkString(payload)) = push.data.get(1) else {
            return;
        };
        let Some(message) = Message::parse(payload) else {
            tracing::warn!("ignored a malformed message on the Redis channel");
            return;
        };
        let delivered =
            self.deliver
                .deliver(&message.stream, &message.position, &message.notification);
        if *message.node == *self.node
            && let Some(waiting) = self.waiting.lock().remove(&message.sequence)
        {
            let _ = waiting.send(delivered);
        }
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
