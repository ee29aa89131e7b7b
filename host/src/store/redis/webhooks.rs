//! Webhook subscriptions in Redis, shared by every node of a cluster.
//!
//! A subscription's record is a hash of its fields (each a JSON value), so
//! that nodes changing different fields (one renewing the lease, the one
//! delivering counting failures) do not undo each other. One hash maps each
//! subscription to its last sequence number and is the list of
//! subscriptions; each queue is a sorted set scored by sequence number. The
//! scripts change a subscription and announce it on the cluster's webhook
//! channel at once, so every node hears of every change; the node that
//! holds a subscription's lease delivers its queue.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Script};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::super::{Outgoing, Queued, StoreError, StoredWebhook, WebhookEvent, WebhookStore};
use super::{Keys, failed, manager};

/// KEYS: the record's hash, the hash of sequence numbers. ARGV: the id, the
/// channel, 1 to replace the record (0: change it only if it exists), then
/// field and value pairs.
const SAVE: &str = r"
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('HSETNX', KEYS[2], ARGV[1], 0)
elseif redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PUBLISH', ARGV[2], 'changed ' .. ARGV[1])
return 1
";

/// KEYS: the record's hash, the queue, the lease, the hash of sequence
/// numbers. ARGV: the id, the channel.
const REMOVE: &str = r"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'changed ' .. ARGV[1])
";

/// KEYS: the hash of sequence numbers. ARGV: the channel, the message, the
/// prefix of the queues' keys, then the subscriptions. Queues the message
/// as `SEQ MESSAGE` for each subscription that exists; answers and
/// announces each one's id and sequence number.
const ENQUEUE: &str = r"
local queued = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    local seq = redis.call('HINCRBY', KEYS[1], id, 1)
    redis.call('ZADD', ARGV[3] .. id, seq, seq .. ' ' .. ARGV[2])
    queued[#queued + 1] = id
    queued[#queued + 1] = seq
  end
end
if #queued > 0 then redis.call('PUBLISH', ARGV[1], 'queued ' .. table.concat(queued, ' ')) end
return queued
";

/// KEYS: the queue. ARGV: the id, the last delivered sequence number, the
/// channel.
const ACKNOWLEDGE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('PUBLISH', ARGV[3], 'acked ' .. ARGV[1] .. ' ' .. ARGV[2])
";

/// KEYS: the lease. ARGV: this node, the TTL in milliseconds. Takes or
/// extends the lease unless another node has it.
const HOLD: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// A queued message as it is kept in its sorted set, after its sequence
/// number.
#[derive(Serialize, Deserialize)]
struct Kept<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    topic: Option<Cow<'a, str>>,
    #[serde(borrow)]
    body: Cow<'a, str>,
}

/// Webhook subscriptions and queues shared by every node of a cluster.
pub struct RedisWebhooks {
    connection: ConnectionManager,
    keys: Keys,
    /// This node, as a lease holder.
    node: std::sync::Arc<str>,
    scripts: [Script; 5],
    events: Mutex<Option<mpsc::UnboundedReceiver<WebhookEvent>>>,
    /// The subscribed connection, kept open for as long as the store is.
    _subscription: ConnectionManager,
}

impl RedisWebhooks {
    /// The store on `connection`, hearing the other nodes' changes on a
    /// connection of its own to `url`.
    pub(super) async fn connect(
        url: &str,
        connection: ConnectionManager,
        keys: Keys,
        node: std::sync::Arc<str>,
    ) -> anyhow::Result<Self> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_push_sender(move |push: PushInfo| {
                if let Some(event) = event(&push) {
                    let _ = sender.send(event);
                }
                Ok::<(), ()>(())
            })
            .set_automatic_resubscription();
        let mut subscription = manager(url, config, true).await?;
        subscription.subscribe(keys.webhook_channel()).await?;
        Ok(Self {
            connection,
            keys,
            node,
            scripts: [SAVE, REMOVE, ENQUEUE, ACKNOWLEDGE, HOLD].map(Script::new),
            events: Mutex::new(Some(receiver)),
            _subscription: subscription,
        })
    }

    /// Store `record`'s fields, replacing the record or only changing it.
    async fn save(&self, id: &str, record: &str, replace: bool) -> Result<(), StoreError> {
        let fields = serde_json::from_str::<Map<String, Value>>(record)
            .map_err(|_| StoreError::Backend("a webhook record is not a JSON object".into()))?;
        if fields.is_empty() {
            return Ok(());
        }
        let mut script = self.scripts[0].prepare_invoke();
        script
            .key(self.keys.webhook(id))
            .key(self.keys.webhook_seqs())
            .arg(id)
            .arg(self.keys.webhook_channel())
            .arg(u8::from(replace));
        for (field, value) in &fields {
            script.arg(field).arg(value.to_string());
        }
        script
            .invoke_async::<u8>(&mut self.connection.clone())
            .await
            .map(drop)
            .map_err(failed)
    }
}

#[async_trait]
impl WebhookStore for RedisWebhooks {
    async fn save_webhook(&self, id: &str, record: String) -> Result<(), StoreError> {
        self.save(id, &record, true).await
    }

    async fn update_webhook(&self, id: &str, changes: String) -> Result<(), StoreError> {
        self.save(id, &changes, false).await
    }

    async fn remove_webhook(&self, id: &str) -> Result<(), StoreError> {
        self.scripts[1]
            .key(self.keys.webhook(id))
            .key(self.keys.webhook_queue(id))
            .key(self.keys.webhook_lease(id))
            .key(self.keys.webhook_seqs())
            .arg(id)
            .arg(self.keys.webhook_channel())
            .invoke_async::<()>(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn load_webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        let seqs: HashMap<String, u64> = redis::cmd("HGETALL")
            .arg(self.keys.webhook_seqs())
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        // One round trip for them all: each subscription's fields and the
        // first message of its queue.
        let mut pipe = redis::pipe();
        for id in seqs.keys() {
            pipe.cmd("HGETALL").arg(self.keys.webhook(id));
            pipe.cmd("ZRANGE")
                .arg(self.keys.webhook_queue(id))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES");
        }
        let answers: Vec<redis::Value> = pipe
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        let mut answers = answers.into_iter();
        let mut stored = Vec::with_capacity(seqs.len());
        for (id, last_seq) in seqs {
            let (Some(fields), Some(first)) = (answers.next(), answers.next()) else {
                break;
            };
            let fields: HashMap<String, String> =
                redis::from_redis_value(fields).map_err(|error| failed(error.into()))?;
            let first: Vec<(String, u64)> =
                redis::from_redis_value(first).map_err(|error| failed(error.into()))?;
            // Removed between the two reads.
            if !fields.is_empty() {
                stored.push(stored_webhook(id, last_seq, fields, &first));
            }
        }
        Ok(stored)
    }

    async fn load_webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        let (last_seq, fields, first): (Option<u64>, HashMap<String, String>, Vec<(String, u64)>) =
            redis::pipe()
                .cmd("HGET")
                .arg(self.keys.webhook_seqs())
                .arg(id)
                .cmd("HGETALL")
                .arg(self.keys.webhook(id))
                .cmd("ZRANGE")
                .arg(self.keys.webhook_queue(id))
                .arg(0)
                .arg(0)
                .arg("WITHSCORES")
                .query_async(&mut self.connection.clone())
                .await
                .map_err(failed)?;
        Ok(last_seq.map(|last_seq| stored_webhook(id.to_owned(), last_seq, fields, &first)))
    }

    async fn enqueue(
        &self,
        subscriptions: Vec<String>,
        message: Outgoing,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let kept = serde_json::to_string(&Kept {
            id: message.message_id.as_str().into(),
            topic: message.topic.as_deref().map(Cow::from),
            body: (*message.body).into(),
        })
        .expect("strings serialise");
        let mut script = self.scripts[2].prepare_invoke();
        script
            .key(self.keys.webhook_seqs())
            .arg(self.keys.webhook_channel())
            .arg(kept)
            .arg(self.keys.webhook_queue(""))
            .arg(&subscriptions);
        script
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn queued(&self, id: &str, after: u64, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.webhook_queue(id))
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        members
            .iter()
            .map(|member| {
                let parsed = member.split_once(' ').and_then(|(seq, kept)| {
                    let kept: Kept = serde_json::from_str(kept).ok()?;
                    Some(Queued {
                        seq: seq.parse().ok()?,
                        message: Outgoing {
                            message_id: kept.id.into_owned(),
                            topic: kept.topic.map(Cow::into_owned),
                            body: kept.body.into(),
                        },
                    })
                });
                parsed.ok_or_else(|| {
                    StoreError::Backend(format!("a queued message of {id} cannot be read"))
                })
            })
            .collect()
    }

    async fn acknowledge(&self, id: &str, upto: u64) -> Result<(), StoreError> {
        self.scripts[3]
            .key(self.keys.webhook_queue(id))
            .arg(id)
            .arg(upto)
            .arg(self.keys.webhook_channel())
            .invoke_async::<()>(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn hold(&self, id: &str, ttl: Duration) -> Result<bool, StoreError> {
        let held: u8 = self.scripts[4]
            .key(self.keys.webhook_lease(id))
            .arg(&*self.node)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        Ok(held == 1)
    }

    fn events(&self) -> Option<mpsc::UnboundedReceiver<WebhookEvent>> {
        self.events.lock().take()
    }
}

/// The event a message on the webhook channel announces.
fn event(push: &PushInfo) -> Option<WebhookEvent> {
    if push.kind != PushKind::Message {
        return None;
    }
    let Some(redis::Value::BulkString(payload)) = push.data.get(1) else {
        return None;
    };
    parse_event(std::str::from_utf8(payload).ok()?)
}

/// `changed ID`, `queued ID SEQ [ID SEQ]...` or `acked ID SEQ`.
fn parse_event(text: &str) -> Option<WebhookEvent> {
    let mut words = text.split(' ');
    let kind = words.next()?;
    let id = words.next()?.to_owned();
    match kind {
        "changed" => Some(WebhookEvent::Changed(id)),
        "acked" => Some(WebhookEvent::Acknowledged(id, words.next()?.parse().ok()?)),
        "queued" => {
            let mut queued = vec![(id, words.next()?.parse().ok()?)];
            while let (Some(id), Some(seq)) = (words.next(), words.next()) {
                queued.push((id.to_owned(), seq.parse().ok()?));
            }
            Some(WebhookEvent::Queued(queued))
        }
        _ => None,
    }
}

/// A subscription as Redis keeps it (a hash of fields, each a JSON value)
/// read back as the record text the webhooks module parses.
fn stored_webhook(
    id: String,
    last_seq: u64,
    fields: HashMap<String, String>,
    first_queued: &[(String, u64)],
) -> StoredWebhook {
    let record: Map<String, Value> = fields
        .into_iter()
        .map(|(field, value)| {
            let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            (field, value)
        })
        .collect();
    StoredWebhook {
        id,
        record: Value::Object(record).to_string(),
        last_seq,
        first_queued: first_queued.first().map(|(_, seq)| *seq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_messages_with_escapes_read_back() {
        let body = r#"{"method":"tick","params":{"text":"a \"quoted\" line\n"}}"#;
        let kept = Kept {
            id: "msg_1".into(),
            topic: Some("news".into()),
            body: body.into(),
        };
        let text = serde_json::to_string(&kept).unwrap();
        let read: Kept = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (&*read.id, read.topic.as_deref(), &*read.body),
            ("msg_1", Some("news"), body)
        );
    }

    #[test]
    fn channel_messages_are_read() {
        assert_eq!(
            parse_event("changed wh_1"),
            Some(WebhookEvent::Changed("wh_1".into()))
        );
        assert_eq!(
            parse_event("queued wh_1 4 wh_2 9"),
            Some(WebhookEvent::Queued(vec![
                ("wh_1".into(), 4),
                ("wh_2".into(), 9)
            ]))
        );
        assert_eq!(
            parse_event("acked wh_1 12"),
            Some(WebhookEvent::Acknowledged("wh_1".into(), 12))
        );
        assert_eq!(parse_event("acked wh_1 x"), None);
        assert_eq!(parse_event("queued wh_1"), None);
        assert_eq!(parse_event("other wh_1"), None);
        assert_eq!(parse_event(""), None);
    }
}
