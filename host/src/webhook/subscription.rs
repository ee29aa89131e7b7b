//! One webhook subscription: what is stored of it, and its live state.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::signature::Secret;

/// What is stored of a subscription (as JSON, in the webhook store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Where deliveries go.
    pub callback: String,
    /// The topics delivered.
    pub topics: Vec<String>,
    /// Whether broadcasts are delivered too.
    pub broadcast: bool,
    /// The signing secret, `whsec_BASE64`.
    pub secret: String,
    /// The lease asked for, in seconds.
    pub lease_seconds: u64,
    /// Until the receiver confirms: the challenge it must echo.
    pub challenge: Option<String>,
    /// Unix milliseconds: when the lease ends or, before confirmation, when
    /// the subscription is dropped unconfirmed.
    pub expires_at_ms: u64,
    /// Unix milliseconds: since when every attempt has failed.
    pub failing_since_ms: Option<u64>,
    /// Attempts that failed since the last success.
    pub failed_attempts: u32,
    /// Unix milliseconds: not before then is the next attempt made.
    pub retry_at_ms: u64,
}

impl Record {
    /// Whether the receiver confirmed the subscription.
    pub fn confirmed(&self) -> bool {
        self.challenge.is_none()
    }

    /// Take what a subscriber's renewal changes (topics, broadcast and
    /// lease) from `stored`, keeping the delivery's own state: the node
    /// delivering a subscription is the only one that changes that state,
    /// so its copy is never older than the store's.
    pub fn renewed_from(&mut self, stored: Record) {
        self.topics = stored.topics;
        self.broadcast = stored.broadcast;
        self.lease_seconds = stored.lease_seconds;
        self.expires_at_ms = stored.expires_at_ms;
    }

    /// Whether a notification of `topic` (`None`: a broadcast) is for this
    /// subscription.
    pub fn wants(&self, topic: Option<&str>) -> bool {
        self.confirmed()
            && match topic {
                None => self.broadcast,
                Some(topic) => self.topics.iter().any(|wanted| wanted == topic),
            }
    }
}

/// A subscription the node is serving.
pub struct Subscription {
    /// Its id, `wh_HEX`.
    pub id: String,
    /// Its signing key.
    pub secret: Secret,
    /// Its record as last saved.
    pub record: Mutex<Record>,
    /// The sequence number of the last message queued.
    pub last_seq: AtomicU64,
    /// The sequence number of the last message delivered.
    pub delivered: AtomicU64,
    /// Whether this node delivers it (holds its lease).
    pub delivering: AtomicBool,
    /// Poked when a message is queued or the record changes.
    pub wake: Notify,
    /// Cancelled when the subscription ends or the node stops.
    pub ended: CancellationToken,
}

impl Subscription {
    /// How many messages wait to be delivered.
    pub fn queued(&self) -> u64 {
        let last = self.last_seq.load(Ordering::Acquire);
        last.saturating_sub(self.delivered.load(Ordering::Acquire))
    }

    /// Apply `change` to the record; the record after it, and the fields
    /// it changed as a JSON object (what the store is asked to change, so
    /// that another node's change to other fields stays).
    pub fn change(&self, change: impl FnOnce(&mut Record)) -> (Record, String) {
        let mut record = self.record.lock();
        let fields = |record: &Record| match serde_json::to_value(record) {
            Ok(Value::Object(fields)) => fields,
            _ => unreachable!("a record serialises to an object"),
        };
        let before = fields(&record);
        change(&mut record);
        let changed: Map<String, Value> = fields(&record)
            .into_iter()
            .filter(|(field, value)| before.get(field) != Some(value))
            .collect();
        (record.clone(), Value::Object(changed).to_string())
    }
}
