//! The memory backends: nothing outlives the process. A node runs on them
//! when asked to (`--in-memory`), and a stream log without history uses them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{Map, Value};

use super::state_map::{self, StateMap};
use super::{
    Appended, Deliver, History, HistoryLimits, Leases, Notification, Outgoing, Position, Queued,
    SessionRecord, SessionStore, StateStore, StoreError, StoredWebhook, StreamLog, StreamName,
    WebhookStore,
};
use crate::random::random_hex;

/// Plugin state in memory.
#[derive(Default)]
pub struct MemoryState {
    map: StateMap,
}

#[async_trait]
impl StateStore for MemoryState {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.map.get(namespace, key))
    }

    async fn set(&self, namespace: &str, key: &str, value: String) -> Result<(), StoreError> {
        state_map::check_size(&value)?;
        self.map.update(|namespaces| {
            let values = namespaces.get(namespace);
            let len = values.map_or(0, HashMap::len);
            let exists = values.is_some_and(|values| values.contains_key(key));
            state_map::check_room(len, exists)?;
            state_map::put(namespaces, namespace, key, Some(value));
            Ok(())
        })
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.map.put(namespace, key, None).is_some())
    }

    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.map.update(|namespaces| {
            let values = namespaces.get(namespace);
            let current = values.and_then(|values| values.get(key));
            state_map::check_room(values.map_or(0, HashMap::len), current.is_some())?;
            let next = state_map::incremented(current.map(String::as_str), key, delta)?;
            state_map::put(namespaces, namespace, key, Some(next.to_string()));
            Ok(next)
        })
    }
}

/// One stream in memory: its position and its recent notifications.
struct MemoryStream {
    epoch: Arc<str>,
    top: u64,
    entries: VecDeque<(u64, Instant, Notification)>,
}

impl MemoryStream {
    fn position(&self) -> Position {
        Position {
            epoch: Arc::clone(&self.epoch),
            offset: self.top,
        }
    }

    fn drop_older_than(&mut self, ttl: Duration) {
        while self
            .entries
            .front()
            .is_some_and(|(_, at, _)| at.elapsed() > ttl)
        {
            self.entries.pop_front();
        }
    }
}

/// Streams in memory. Each stream has a lock of its own, held while an
/// append takes its offset and is delivered, so deliveries follow offsets.
pub struct MemoryLog {
    streams: Mutex<HashMap<StreamName, Arc<Mutex<MemoryStream>>>>,
    limits: HistoryLimits,
    deliver: Arc<dyn Deliver>,
}

impl MemoryLog {
    /// A log keeping `limits` of history, delivering through `deliver`.
    pub fn new(limits: HistoryLimits, deliver: Arc<dyn Deliver>) -> Self {
        Self {
            streams: Mutex::default(),
            limits,
            deliver,
        }
    }

    /// The stream `name`, created (with a new epoch) on first use.
    fn stream(&self, name: &StreamName) -> Arc<Mutex<MemoryStream>> {
        let mut streams = self.streams.lock();
        let stream = streams.entry(name.clone()).or_insert_with(|| {
            Arc::new(Mutex::new(MemoryStream {
                epoch: random_hex(4).into(),
                top: 0,
                entries: VecDeque::new(),
            }))
        });
        Arc::clone(stream)
    }
}

#[async_trait]
impl StreamLog for MemoryLog {
    async fn append(
        &self,
        stream: &StreamName,
        notification: Notification,
    ) -> Result<Appended, StoreError> {
        let entry = self.stream(stream);
        let mut entry = entry.lock();
        entry.top += 1;
        let position = entry.position();
        let delivered = self.deliver.deliver(stream, &position, &notification);
        if self.limits.size > 0 {
            if entry.entries.len() == self.limits.size {
                entry.entries.pop_front();
            }
            entry
                .entries
                .push_back((position.offset, Instant::now(), notification));
        }
        Ok(Appended {
            position,
            delivered,
        })
    }

    async fn position(&self, stream: &StreamName) -> Result<Position, StoreError> {
        Ok(self.stream(stream).lock().position())
    }

    async fn read_after(
        &self,
        stream: &StreamName,
        from: &Position,
    ) -> Result<History, StoreError> {
        let entry = self.stream(stream);
        let mut entry = entry.lock();
        entry.drop_older_than(self.limits.ttl);
        let top = entry.position();
        if from.epoch != top.epoch || from.offset > top.offset {
            return Ok(History::Incomplete { top });
        }
        let entries: Vec<(u64, Notification)> = entry
            .entries
            .iter()
            .filter(|(offset, _, _)| *offset > from.offset)
            .map(|(offset, _, notification)| (*offset, notification.clone()))
            .collect();
        Ok(History::after(from, entries, top))
    }

    async fn remove(&self, stream: &StreamName) -> Result<(), StoreError> {
        self.streams.lock().remove(stream);
        Ok(())
    }

    async fn trim_expired(&self) -> Result<(), StoreError> {
        let streams: Vec<_> = self.streams.lock().values().cloned().collect();
        for stream in streams {
            stream.lock().drop_older_than(self.limits.ttl);
        }
        Ok(())
    }
}

/// Sessions in memory: they outlive a connection, not the process.
#[derive(Default)]
pub struct MemorySessions {
    records: Mutex<HashMap<String, SessionRecord>>,
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn save(&self, record: SessionRecord) -> Result<(), StoreError> {
        self.records.lock().insert(record.client_id.clone(), record);
        Ok(())
    }

    async fn remove(&self, client_id: &str) -> Result<(), StoreError> {
        self.records.lock().remove(client_id);
        Ok(())
    }

    async fn load(&self) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(self.records.lock().values().cloned().collect())
    }
}

/// A node on its own is the whole cluster: every claim is its own.
pub struct SoleNode;

#[async_trait]
impl Leases for SoleNode {
    async fn claim(&self, _: &str, _: u64, _: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count;

    impl Deliver for Count {
        fn deliver(&self, _: &StreamName, _: &Position, _: &Notification) -> u32 {
            1
        }
    }

    fn log(size: usize) -> MemoryLog {
        let limits = HistoryLimits {
            size,
            ttl: Duration::from_secs(60),
        };
        MemoryLog::new(limits, Arc::new(Count))
    }

    fn note(n: u64) -> Notification {
        Notification::new(format!(r#"{{"jsonrpc":"2.0","method":"n{n}"}}"#))
    }

    #[tokio::test]
    async fn history_is_all_or_nothing() {
        let log = log(3);
        let stream = StreamName::topic("t");
        let start = log.position(&stream).await.unwrap();
        assert_eq!(start.offset, 0);
        for n in 1..=5 {
            let appended = log.append(&stream, note(n)).await.unwrap();
            assert_eq!(appended.position.offset, n);
        }
        let at = |offset| Position {
            epoch: start.epoch.clone(),
            offset,
        };
        let History::Complete { entries, top } = log.read_after(&stream, &at(2)).await.unwrap()
        else {
            panic!("offsets 3 to 5 are kept");
        };
        assert_eq!(top, at(5));
        assert_eq!(entries, [(3, note(3)), (4, note(4)), (5, note(5))]);
        assert_eq!(
            log.read_after(&stream, &at(1)).await.unwrap(),
            History::Incomplete { top: at(5) }
        );
        let other_epoch = Position {
            epoch: "other".into(),
            offset: 5,
        };
        assert_eq!(
            log.read_after(&stream, &other_epoch).await.unwrap(),
            History::Incomplete { top: at(5) }
        );
        assert_eq!(
            log.read_after(&stream, &at(6)).await.unwrap(),
            History::Incomplete { top: at(5) }
        );
    }

    #[tokio::test]
    async fn state_limits_hold() {
        let state = MemoryState::default();
        assert_eq!(state.increment("p", "n", 2).await, Ok(2));
        assert_eq!(
            state.set("p", "big", "1".repeat(MAX_VALUE + 1)).await,
            Err(StoreError::TooLarge(MAX_VALUE + 1))
        );
        assert!(state.delete("p", "n").await.unwrap());
        assert!(!state.delete("p", "n").await.unwrap());
    }

    const MAX_VALUE: usize = super::super::MAX_VALUE_BYTES;
}

/// One webhook subscription in memory, with its queue.
struct MemoryWebhook {
    record: String,
    last_seq: u64,
    queue: BTreeMap<u64, Outgoing>,
}

impl MemoryWebhook {
    fn stored(&self, id: &str) -> StoredWebhook {
        StoredWebhook {
            id: id.to_owned(),
            record: self.record.clone(),
            last_seq: self.last_seq,
            first_queued: self.queue.keys().next().copied(),
        }
    }
}

/// Webhook subscriptions and their queues in memory.
#[derive(Default)]
pub struct MemoryWebhooks {
    subscriptions: Mutex<HashMap<String, MemoryWebhook>>,
}

#[async_trait]
impl WebhookStore for MemoryWebhooks {
    async fn save_webhook(&self, id: &str, record: String) -> Result<(), StoreError> {
        let mut subscriptions = self.subscriptions.lock();
        match subscriptions.get_mut(id) {
            Some(existing) => existing.record = record,
            None => {
                let new = MemoryWebhook {
                    record,
                    last_seq: 0,
                    queue: BTreeMap::new(),
                };
                subscriptions.insert(id.to_owned(), new);
            }
        }
        Ok(())
    }

    async fn update_webhook(&self, id: &str, changes: String) -> Result<(), StoreError> {
        if let Some(subscription) = self.subscriptions.lock().get_mut(id) {
            let parse = |text: &str| serde_json::from_str::<Map<String, Value>>(text);
            let (Ok(mut record), Ok(changes)) = (parse(&subscription.record), parse(&changes))
            else {
                return Err(StoreError::Backend(
                    "a webhook record is not an object".into(),
                ));
            };
            record.extend(changes);
            subscription.record = Value::Object(record).to_string();
        }
        Ok(())
    }

    async fn remove_webhook(&self, id: &str) -> Result<(), StoreError> {
        self.subscriptions.lock().remove(id);
        Ok(())
    }

    async fn load_webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        let subscriptions = self.subscriptions.lock();
        Ok(subscriptions
            .iter()
            .map(|(id, subscription)| subscription.stored(id))
            .collect())
    }

    async fn load_webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        let subscriptions = self.subscriptions.lock();
        Ok(subscriptions
            .get(id)
            .map(|subscription| subscription.stored(id)))
    }

    async fn enqueue(
        &self,
        subscriptions: Vec<String>,
        message: Outgoing,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stored = self.subscriptions.lock();
        let mut queued = Vec::with_capacity(subscriptions.len());
        for id in subscriptions {
            if let Some(subscription) = stored.get_mut(&id) {
                subscription.last_seq += 1;
                let seq = subscription.last_seq;
                subscription.queue.insert(seq, message.clone());
                queued.push((id, seq));
            }
        }
        Ok(queued)
    }

    async fn queued(&self, id: &str, after: u64, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let subscriptions = self.subscriptions.lock();
        let Some(subscription) = subscriptions.get(id) else {
            return Ok(Vec::new());
        };
        Ok(subscription
            .queue
            .range(after + 1..)
            .take(limit)
            .map(|(seq, message)| Queued {
                seq: *seq,
                message: message.clone(),
            })
            .collect())
    }

    async fn acknowledge(&self, id: &str, upto: u64) -> Result<(), StoreError> {
        if let Some(subscription) = self.subscriptions.lock().get_mut(id) {
            subscription.queue = subscription.queue.split_off(&(upto + 1));
        }
        Ok(())
    }
}
