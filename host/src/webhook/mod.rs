//! Webhooks: notifications delivered over HTTP to callback URLs that
//! subscribed to topics (or to broadcasts) with `rpc.webhook.subscribe`.
//!
//! A subscription is confirmed before it is used: the first message to its
//! callback carries a random challenge, and nothing else is sent until the
//! receiver echoes it. Each subscription has one ordered queue in the
//! store; a failing delivery is retried on a schedule and the ones behind it
//! wait, so order is kept. A receiver that answers `410 Gone` is
//! unsubscribed at once; one that keeps failing past the give-up period, or
//! whose queue overflows, or whose lease ends, is dropped with its queue.
//!
//! In a cluster the store is shared: every node knows every subscription
//! (it hears the others' changes from the store) and queues for them, and
//! the node holding a subscription's lease in the store delivers it; when
//! that node is lost, another takes the lease and goes on from the queue.
//!
//! - [`signature`]: Standard Webhooks signatures and secrets;
//! - [`callback`]: which URLs deliveries may reach (SSRF protection);
//! - [`subscription`]: a subscription's record and live state;
//! - [`delivery`]: the task that confirms a subscription and delivers its
//!   queue;
//! - [`upstream`]: the receiving side, following the topics of other rpcnode
//!   nodes.

pub mod callback;
mod delivery;
pub mod signature;
mod subscription;
pub mod upstream;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use callback::AllowList;
pub use signature::Secret;
pub use upstream::{Upstream, UpstreamFile, Upstreams};

use crate::metrics::Counter;
use crate::random::random_hex;
use crate::ratelimit::{RateLimit, RateLimiter};
use crate::store::{
    MAX_TOPIC_BYTES, Outgoing, StoreError, StoredWebhook, WebhookEvent, WebhookStore, now_ms,
};
use subscription::{Record, Subscription};

/// The longest lease, and the lease of a subscription that asks for none.
const MAX_LEASE_SECONDS: u64 = 30 * 86_400;
const DEFAULT_LEASE_SECONDS: u64 = 86_400;
/// The most topics one subscription names.
const MAX_TOPICS: usize = 100;
/// Unconfirmed subscriptions one callback host may have at once.
const MAX_PENDING_PER_HOST: usize = 8;
/// New subscriptions per callback host: a burst of 10, then one every 6 s.
const SUBSCRIBE_RATE: RateLimit = RateLimit {
    per_second: 1.0 / 6.0,
    burst: 10,
};

/// How webhook deliveries are made and retried.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSettings {
    /// Hosts and networks callbacks may reach besides public addresses.
    pub allow: AllowList,
    /// The wait before each retry of a failing delivery; the last repeats.
    pub retry_schedule: Vec<Duration>,
    /// How long a subscription may fail continuously before it is dropped.
    pub give_up_after: Duration,
    /// How long one delivery may take (connecting included).
    pub timeout: Duration,
    /// The most notifications queued for one subscription; one more ends
    /// the subscription.
    pub max_queue: usize,
    /// The most subscriptions, confirmed or not.
    pub max_subscriptions: usize,
    /// How long a subscription waits for its receiver to confirm it.
    pub confirm_within: Duration,
}

impl Default for WebhookSettings {
    /// Standard Webhooks' retry schedule (5 s, 5 min, 30 min, 2 h, 5 h,
    /// 10 h, 14 h, 20 h, 24 h), giving up once it is spent (about 75.6 h).
    fn default() -> Self {
        let minutes = |n: u64| Duration::from_secs(60 * n);
        let retry_schedule = vec![
            Duration::from_secs(5),
            minutes(5),
            minutes(30),
            minutes(120),
            minutes(300),
            minutes(600),
            minutes(840),
            minutes(1200),
            minutes(1440),
        ];
        Self {
            allow: AllowList::default(),
            give_up_after: retry_schedule.iter().sum(),
            retry_schedule,
            timeout: Duration::from_secs(10),
            max_queue: 10_000,
            max_subscriptions: 10_000,
            confirm_within: Duration::from_secs(600),
        }
    }
}

/// How often a cluster node reads every subscription again, in case it
/// missed a change while its connection to the store was down.
const RESYNC_INTERVAL: Duration = Duration::from_secs(5);

/// Why a subscribe or unsubscribe request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// A limit was reached; trying later may work.
    #[error("{0}")]
    Busy(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the webhooks did, for `/metrics`.
#[derive(Default)]
pub struct WebhookCounts {
    /// Deliveries the receiver accepted (2xx).
    pub delivered: Counter,
    /// Attempts that failed (each is retried, or the subscription ends).
    pub failed: Counter,
    /// Subscriptions the receiver confirmed.
    pub confirmed: Counter,
    /// Subscriptions the receiver refused to confirm.
    pub refused: Counter,
    /// Subscriptions ended by a `410 Gone` answer.
    pub gone: Counter,
    /// Subscriptions dropped after failing for the give-up period.
    pub given_up: Counter,
    /// Subscriptions whose lease (or confirmation time) ran out.
    pub expired: Counter,
    /// Subscriptions dropped because their queue was full.
    pub overflowed: Counter,
}

/// How many subscriptions are in each state, and the messages queued.
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WebhookStatus {
    /// Waiting for the receiver's confirmation.
    pub pending: u64,
    /// Confirmed, delivering.
    pub active: u64,
    /// Confirmed, and the last attempt failed.
    pub retrying: u64,
    /// Messages waiting to be delivered.
    pub queued: u64,
    /// Subscriptions this node delivers (in a cluster, each subscription
    /// is delivered by one node).
    pub delivering: u64,
}

/// The parameters of `rpc.webhook.subscribe`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeParams {
    callback: String,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    broadcast: bool,
    lease_seconds: Option<u64>,
    secret: Option<String>,
}

/// The parameters of `rpc.webhook.unsubscribe`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeParams {
    callback: String,
    secret: String,
}

/// The node's webhook subscriptions and their deliveries.
pub struct Webhooks {
    store: Arc<dyn WebhookStore>,
    settings: WebhookSettings,
    client: reqwest::Client,
    subscriptions: Mutex<HashMap<String, Arc<Subscription>>>,
    subscribe_rate: RateLimiter,
    stopping: CancellationToken,
    /// What happened, for `/metrics`.
    pub counts: WebhookCounts,
}

impl Webhooks {
    /// Webhooks kept in `store`, delivered until `stopping` is cancelled.
    /// Call [`Webhooks::resume`] to take back the stored subscriptions.
    pub fn new(
        store: Arc<dyn WebhookStore>,
        settings: WebhookSettings,
        stopping: CancellationToken,
    ) -> Self {
        Self {
            client: callback::client(&settings.allow, settings.timeout),
            store,
            settings,
            subscriptions: Mutex::default(),
            subscribe_rate: RateLimiter::new(SUBSCRIBE_RATE),
            stopping,
            counts: WebhookCounts::default(),
        }
    }

    /// Load the stored subscriptions and start delivering their queues (in
    /// a cluster, also follow the other nodes' changes); how many there
    /// were.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let stored = self.store.load_webhooks().await?;
        let count = stored.len();
        for webhook in stored {
            self.adopt(webhook);
        }
        if let Some(events) = self.store.events() {
            tokio::spawn(Arc::clone(self).follow(events));
        }
        Ok(count)
    }

    /// Serve a stored subscription, or bring this node's copy of it up to
    /// date.
    fn adopt(self: &Arc<Self>, webhook: StoredWebhook) {
        let record = serde_json::from_str::<Record>(&webhook.record)
            .map_err(|error| error.to_string())
            .and_then(|record| Secret::parse(&record.secret).map(|secret| (record, secret)));
        let (record, secret) = match record {
            Ok(parsed) => parsed,
            Err(error) => {
                tracing::error!(
                    subscription = webhook.id,
                    "a stored webhook subscription cannot be read, skipped: {error}"
                );
                return;
            }
        };
        let (last_seq, delivered) = (webhook.last_seq, webhook.delivered());
        let subscription = self.serve(webhook.id, secret, record);
        subscription.last_seq.fetch_max(last_seq, Ordering::AcqRel);
        subscription
            .delivered
            .fetch_max(delivered, Ordering::AcqRel);
    }

    /// Follow what the nodes of a cluster do to the shared subscriptions,
    /// and read them all again every [`RESYNC_INTERVAL`].
    async fn follow(self: Arc<Self>, mut events: mpsc::UnboundedReceiver<WebhookEvent>) {
        let mut resync = tokio::time::interval(RESYNC_INTERVAL);
        resync.tick().await;
        loop {
            tokio::select! {
                () = self.stopping.cancelled() => return,
                event = events.recv() => match event {
                    Some(event) => self.apply(event).await,
                    None => return,
                },
                _ = resync.tick() => {
                    if let Err(error) = self.resync().await {
                        tracing::warn!("reading the webhook subscriptions failed: {error}");
                    }
                }
            }
        }
    }

    /// Take in what another node (or this one) did.
    async fn apply(self: &Arc<Self>, event: WebhookEvent) {
        match event {
            WebhookEvent::Changed(id) => match self.store.load_webhook(&id).await {
                Ok(Some(webhook)) => self.adopt(webhook),
                Ok(None) => self.forget(&id),
                Err(error) => {
                    tracing::warn!(
                        subscription = id,
                        "reading a webhook subscription failed: {error}"
                    );
                }
            },
            WebhookEvent::Queued(queued) => {
                let subscriptions = self.subscriptions.lock();
                for (id, seq) in queued {
                    if let Some(subscription) = subscriptions.get(&id) {
                        subscription.last_seq.fetch_max(seq, Ordering::AcqRel);
                        subscription.wake.notify_one();
                    }
                }
            }
            WebhookEvent::Acknowledged(id, upto) => {
                if let Some(subscription) = self.subscriptions.lock().get(&id) {
                    subscription.delivered.fetch_max(upto, Ordering::AcqRel);
                }
            }
        }
    }

    /// Read every subscription again: serve the new ones, forget those
    /// gone (of the ones known before reading, so one subscribed meanwhile
    /// stays).
    async fn resync(self: &Arc<Self>) -> Result<(), StoreError> {
        let known: Vec<String> = self.subscriptions.lock().keys().cloned().collect();
        let stored = self.store.load_webhooks().await?;
        let ids: HashSet<&str> = stored.iter().map(|webhook| webhook.id.as_str()).collect();
        for id in known.iter().filter(|id| !ids.contains(id.as_str())) {
            self.forget(id);
        }
        for webhook in stored {
            self.adopt(webhook);
        }
        Ok(())
    }

    /// Track `record` as subscription `id` and start its delivery task; if
    /// it is tracked already, bring its record up to date with `record`.
    fn serve(self: &Arc<Self>, id: String, secret: Secret, record: Record) -> Arc<Subscription> {
        let mut subscriptions = self.subscriptions.lock();
        if let Some(existing) = subscriptions.get(&id) {
            if existing.delivering.load(Ordering::Acquire) {
                existing.record.lock().renewed_from(record);
            } else {
                *existing.record.lock() = record;
            }
            existing.wake.notify_one();
            return Arc::clone(existing);
        }
        let subscription = Arc::new(Subscription {
            id: id.clone(),
            secret,
            record: Mutex::new(record),
            last_seq: Default::default(),
            delivered: Default::default(),
            delivering: Default::default(),
            wake: Default::default(),
            ended: self.stopping.child_token(),
        });
        subscriptions.insert(id, Arc::clone(&subscription));
        let task = delivery::run(
            Arc::clone(self),
            Arc::clone(&self.store),
            Arc::clone(&subscription),
        );
        tokio::spawn(task);
        subscription
    }

    /// `rpc.webhook.subscribe`: subscribe a callback, or renew its
    /// subscription (same callback and secret).
    pub async fn subscribe(self: &Arc<Self>, params: Value) -> Result<Value, WebhookError> {
        let store = &self.store;
        let params: SubscribeParams = by_name(params)?;
        let url = callback::check(&params.callback, &self.settings.allow)
            .await
            .map_err(WebhookError::Invalid)?;
        let topics = checked_topics(params.topics, params.broadcast)?;
        let lease_seconds = params.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
        if !(1..=MAX_LEASE_SECONDS).contains(&lease_seconds) {
            return Err(WebhookError::Invalid(format!(
                "lease_seconds must be 1 to {MAX_LEASE_SECONDS}, not {lease_seconds}"
            )));
        }
        let secret = params
            .secret
            .as_deref()
            .map(Secret::parse)
            .transpose()
            .map_err(WebhookError::Invalid)?;
        let callback = url.to_string();
        if let Some(existing) = self.by_callback(&callback) {
            return self
                .renew(
                    store,
                    &existing,
                    secret,
                    topics,
                    params.broadcast,
                    lease_seconds,
                )
                .await;
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        self.check_room(&host)?;
        let secret = secret.unwrap_or_else(Secret::generate);
        let now = now_ms();
        let record = Record {
            callback,
            topics,
            broadcast: params.broadcast,
            secret: secret.text(),
            lease_seconds,
            challenge: Some(random_hex(16)),
            expires_at_ms: now + self.settings.confirm_within.as_millis() as u64,
            failing_since_ms: None,
            failed_attempts: 0,
            retry_at_ms: now,
        };
        let id = format!("wh_{}", random_hex(12));
        store.save_webhook(&id, to_json(&record)).await?;
        tracing::info!(
            subscription = id,
            callback = record.callback,
            "webhook subscribed, confirming"
        );
        let answer = json!({
            "id": id,
            "state": "pending",
            "lease_seconds": lease_seconds,
            "secret": record.secret,
        });
        self.serve(id, secret, record);
        Ok(answer)
    }

    /// Renew `existing` if `secret` is its secret: new topics and lease.
    async fn renew(
        &self,
        store: &Arc<dyn WebhookStore>,
        existing: &Arc<Subscription>,
        secret: Option<Secret>,
        topics: Vec<String>,
        broadcast: bool,
        lease_seconds: u64,
    ) -> Result<Value, WebhookError> {
        if secret.as_ref() != Some(&existing.secret) {
            return Err(WebhookError::Invalid(
                "this callback already has a subscription: renew it with its secret, or end it \
                 (rpc.webhook.unsubscribe with its secret, or a 410 answer to a delivery)"
                    .into(),
            ));
        }
        let (record, changes) = existing.change(|record| {
            record.topics = topics;
            record.broadcast = broadcast;
            record.lease_seconds = lease_seconds;
            if record.confirmed() {
                record.expires_at_ms = now_ms() + lease_seconds * 1000;
            }
        });
        store.update_webhook(&existing.id, changes).await?;
        existing.wake.notify_one();
        let state = if record.confirmed() {
            "active"
        } else {
            "pending"
        };
        Ok(json!({"id": existing.id, "state": state, "lease_seconds": lease_seconds}))
    }

    /// `rpc.webhook.unsubscribe`: end the subscription of a callback, given
    /// its secret.
    pub async fn unsubscribe(&self, params: Value) -> Result<Value, WebhookError> {
        let params: UnsubscribeParams = by_name(params)?;
        let secret = Secret::parse(&params.secret).map_err(WebhookError::Invalid)?;
        let callback = reqwest::Url::parse(&params.callback)
            .map(String::from)
            .unwrap_or(params.callback);
        let found = self
            .by_callback(&callback)
            .filter(|subscription| subscription.secret == secret);
        let Some(subscription) = found else {
            return Ok(json!({"unsubscribed": false}));
        };
        self.end(&subscription, "unsubscribed by request").await;
        Ok(json!({"unsubscribed": true}))
    }

    /// Queue notification `body` for the confirmed subscriptions of `topic`
    /// (`None`: the broadcast stream); once this returns it is kept. A
    /// subscription whose queue is full is ended.
    pub async fn enqueue(&self, topic: Option<&str>, body: &Arc<str>) -> Result<(), StoreError> {
        let (mut wanted, mut full) = (Vec::new(), Vec::new());
        for subscription in self.subscriptions.lock().values() {
            if !subscription.record.lock().wants(topic) {
                continue;
            }
            if subscription.queued() >= self.settings.max_queue as u64 {
                full.push(Arc::clone(subscription));
            } else {
                wanted.push(Arc::clone(subscription));
            }
        }
        for subscription in full {
            self.counts.overflowed.inc();
            let reason = format!(
                "its queue is full ({} notifications)",
                self.settings.max_queue
            );
            self.end(&subscription, &reason).await;
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let message = Outgoing {
            message_id: format!("msg_{}", random_hex(12)),
            topic: topic.map(str::to_owned),
            body: Arc::clone(body),
        };
        let ids = wanted
            .iter()
            .map(|subscription| subscription.id.clone())
            .collect();
        let queued = self.store.enqueue(ids, message).await?;
        let subscriptions = self.subscriptions.lock();
        for (id, seq) in queued {
            if let Some(subscription) = subscriptions.get(&id) {
                subscription.last_seq.fetch_max(seq, Ordering::AcqRel);
                subscription.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Stop serving subscription `id`, which another node ended.
    fn forget(&self, id: &str) {
        if let Some(subscription) = self.subscriptions.lock().remove(id) {
            subscription.ended.cancel();
        }
    }

    /// End `subscription`: stop its deliveries and forget it and its queue.
    async fn end(&self, subscription: &Subscription, reason: &str) {
        subscription.ended.cancel();
        let removed = self.subscriptions.lock().remove(&subscription.id);
        if removed.is_none() {
            return;
        }
        let callback = subscription.record.lock().callback.clone();
        tracing::warn!(
            subscription = subscription.id,
            callback,
            "webhook subscription ended: {reason}"
        );
        if let Err(error) = self.store.remove_webhook(&subscription.id).await {
            tracing::error!(
                subscription = subscription.id,
                "forgetting an ended webhook subscription failed: {error}"
            );
        }
    }

    /// The subscriptions in each state, and the messages queued.
    pub fn status(&self) -> WebhookStatus {
        let mut status = WebhookStatus::default();
        for subscription in self.subscriptions.lock().values() {
            let record = subscription.record.lock();
            match (record.confirmed(), record.failing_since_ms) {
                (false, _) => status.pending += 1,
                (true, None) => status.active += 1,
                (true, Some(_)) => status.retrying += 1,
            }
            status.queued += subscription.queued();
            status.delivering += u64::from(subscription.delivering.load(Ordering::Acquire));
        }
        status
    }

    fn by_callback(&self, callback: &str) -> Option<Arc<Subscription>> {
        self.subscriptions
            .lock()
            .values()
            .find(|subscription| subscription.record.lock().callback == callback)
            .cloned()
    }

    /// Refuse a new subscription past the limits: in all, unconfirmed per
    /// callback host, and new ones per host over time.
    fn check_room(&self, host: &str) -> Result<(), WebhookError> {
        let subscriptions = self.subscriptions.lock();
        if subscriptions.len() >= self.settings.max_subscriptions {
            return Err(WebhookError::Busy(format!(
                "the node has its most webhook subscriptions ({})",
                self.settings.max_subscriptions
            )));
        }
        let pending = subscriptions
            .values()
            .filter(|subscription| {
                let record = subscription.record.lock();
                !record.confirmed()
                    && reqwest::Url::parse(&record.callback)
                        .is_ok_and(|url| url.host_str() == Some(host))
            })
            .count();
        if pending >= MAX_PENDING_PER_HOST {
            return Err(WebhookError::Busy(format!(
                "{host} has {MAX_PENDING_PER_HOST} subscriptions waiting for confirmation; try \
                 again once they are confirmed or expired"
            )));
        }
        if !self.subscribe_rate.allow(host) {
            return Err(WebhookError::Busy(format!(
                "too many new subscriptions for {host}; try again in a few seconds"
            )));
        }
        Ok(())
    }
}

/// Topics checked: at least one topic or the broadcast stream, each topic
/// 1 to [`MAX_TOPIC_BYTES`] bytes, at most [`MAX_TOPICS`]; duplicates go.
fn checked_topics(mut topics: Vec<String>, broadcast: bool) -> Result<Vec<String>, WebhookError> {
    if topics.is_empty() && !broadcast {
        return Err(WebhookError::Invalid(
            "name at least one topic, or set broadcast: true".into(),
        ));
    }
    if topics.len() > MAX_TOPICS {
        return Err(WebhookError::Invalid(format!(
            "at most {MAX_TOPICS} topics per subscription, not {}",
            topics.len()
        )));
    }
    if let Some(bad) = topics
        .iter()
        .find(|topic| topic.is_empty() || topic.len() > MAX_TOPIC_BYTES)
    {
        return Err(WebhookError::Invalid(format!(
            "a topic is 1 to {MAX_TOPIC_BYTES} bytes, not {}",
            bad.len()
        )));
    }
    topics.sort();
    topics.dedup();
    Ok(topics)
}

/// Params given by name, as an object.
fn by_name<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, WebhookError> {
    if !params.is_object() {
        return Err(WebhookError::Invalid(
            "params must be an object (by name), such as {\"callback\": ...}".into(),
        ));
    }
    serde_json::from_value(params).map_err(|error| WebhookError::Invalid(error.to_string()))
}

fn to_json(record: &Record) -> String {
    serde_json::to_string(record).expect("a webhook record serialises")
}
