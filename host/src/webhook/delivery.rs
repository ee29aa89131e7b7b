//! The task behind each subscription. Until the receiver confirms, it sends
//! the confirmation request; then it delivers the queue in order, one
//! message at a time. A failed attempt is retried on the schedule (or when
//! the receiver's `Retry-After` says) and the messages behind it wait. What
//! was delivered is dropped from the store once per batch, so a node that
//! dies delivers at most one batch again, with the same `webhook-id`s.
//!
//! In a cluster the task first takes the subscription's lease in the store
//! and renews it while it delivers; a node that cannot renew it stops, and
//! the node that takes it over goes on from what was acknowledged.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde_json::{Value, json};

use super::subscription::{Record, Subscription};
use super::{Webhooks, callback};
use crate::random::{jittered, random_hex};
use crate::store::{Queued, WebhookStore, now_ms};

/// Messages read from the store at a time.
const BATCH: usize = 256;
/// The most of a receiver's answer that is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The wait after the store failed to read a queue.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// How long a cluster node holds a subscription's lease without renewing
/// it: the longest a lost node's subscriptions wait for another node.
const LEASE: Duration = Duration::from_secs(6);
/// How often the lease is renewed, or tried for while another node has it.
const LEASE_RENEWAL: Duration = Duration::from_secs(2);

/// What a receiver answered.
enum Answer {
    /// A 2xx status, with (the start of) the body.
    Accepted(Vec<u8>),
    /// `410 Gone`: it wants no more.
    Gone,
    /// No answer, or another status: try again later.
    Failed {
        reason: String,
        /// The status, if there was an answer.
        status: Option<StatusCode>,
        /// When the receiver asked to be tried again (`Retry-After`).
        after: Option<Duration>,
    },
}

/// Serve `subscription` until it ends (ending it when the receiver or its
/// time says so) or the node stops.
pub(super) async fn run(
    webhooks: Arc<Webhooks>,
    store: Arc<dyn WebhookStore>,
    subscription: Arc<Subscription>,
) {
    let ended = subscription.ended.clone();
    let reason = tokio::select! {
        () = ended.cancelled() => return,
        reason = hold_and_serve(&webhooks, store.as_ref(), &subscription) => reason,
    };
    webhooks.end(&subscription, &reason).await;
}

/// Serve `subscription` while this node holds its lease; why it must end.
async fn hold_and_serve(
    webhooks: &Webhooks,
    store: &dyn WebhookStore,
    subscription: &Subscription,
) -> String {
    loop {
        while !store.hold(&subscription.id, LEASE).await.unwrap_or(false) {
            tokio::time::sleep(LEASE_RENEWAL).await;
        }
        if store.is_shared() {
            // Go on from where the node that held it before left it.
            match store.load_webhook(&subscription.id).await {
                Ok(Some(stored)) => {
                    if let Ok(record) = serde_json::from_str::<Record>(&stored.record) {
                        *subscription.record.lock() = record;
                    }
                    subscription
                        .delivered
                        .store(stored.delivered(), Ordering::Release);
                }
                Ok(None) => return "it was removed".into(),
                Err(_) => {
                    tokio::time::sleep(LEASE_RENEWAL).await;
                    continue;
                }
            }
        }
        subscription.delivering.store(true, Ordering::Release);
        let outcome = tokio::select! {
            reason = serve(webhooks, store, subscription) => Some(reason),
            () = lease_lost(store, &subscription.id) => None,
        };
        subscription.delivering.store(false, Ordering::Release);
        if let Some(reason) = outcome {
            return reason;
        }
        tracing::warn!(
            subscription = subscription.id,
            "lost the lease of a webhook subscription; another node delivers it"
        );
    }
}

/// Renew the lease of subscription `id` until it is lost: another node
/// took it, or renewing failed for half the lease. Never, in a node's own
/// store.
async fn lease_lost(store: &dyn WebhookStore, id: &str) {
    if !store.is_shared() {
        return std::future::pending().await;
    }
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(LEASE_RENEWAL).await;
        match store.hold(id, LEASE).await {
            Ok(true) => renewed = std::time::Instant::now(),
            Ok(false) => return,
            Err(_) if renewed.elapsed() >= LEASE / 2 => return,
            Err(_) => {}
        }
    }
}

/// Confirm, then deliver, until the subscription must end; why it must.
async fn serve(
    webhooks: &Webhooks,
    store: &dyn WebhookStore,
    subscription: &Subscription,
) -> String {
    let counts = &webhooks.counts;
    loop {
        let record = subscription.record.lock().clone();
        let now = now_ms();
        if now >= record.expires_at_ms {
            counts.expired.inc();
            return if record.confirmed() {
                "its lease ended".into()
            } else {
                "the receiver did not confirm it in time".into()
            };
        }
        if record.retry_at_ms > now {
            let until = record.retry_at_ms.min(record.expires_at_ms);
            tokio::time::sleep(Duration::from_millis(until - now)).await;
            continue;
        }
        let failure = if record.confirmed() {
            match deliver_batch(webhooks, store, subscription, &record).await {
                Ok(None) => continue,
                Ok(Some(failure)) => failure,
                Err(ending) => return ending,
            }
        } else {
            match confirm(webhooks, subscription, &record).await {
                Ok(()) => {
                    counts.confirmed.inc();
                    let lease = record.lease_seconds * 1000;
                    update(store, subscription, |record| {
                        record.challenge = None;
                        record.expires_at_ms = now_ms() + lease;
                        succeeded(record);
                    })
                    .await;
                    tracing::info!(
                        subscription = subscription.id,
                        "webhook subscription confirmed"
                    );
                    continue;
                }
                Err(Some(failure)) => failure,
                Err(None) => {
                    counts.refused.inc();
                    return "the receiver refused to confirm it".into();
                }
            }
        };
        if let Some(ending) = failed(webhooks, store, subscription, failure).await {
            return ending;
        }
    }
}

/// Deliver the next batch of the queue, or wait for one. `Ok(None)` when
/// it went through (or there was nothing), `Ok(Some)` with a failure to
/// retry, `Err` when the subscription must end.
async fn deliver_batch(
    webhooks: &Webhooks,
    store: &dyn WebhookStore,
    subscription: &Subscription,
    record: &Record,
) -> Result<Option<Answer>, String> {
    let first = subscription.delivered.load(Ordering::Acquire);
    let batch = match store.queued(&subscription.id, first, BATCH).await {
        Ok(batch) => batch,
        Err(error) => {
            tracing::error!(
                subscription = subscription.id,
                "reading a webhook queue failed: {error}"
            );
            tokio::time::sleep(STORE_RETRY).await;
            return Ok(None);
        }
    };
    if batch.is_empty() {
        let lease_left = record.expires_at_ms.saturating_sub(now_ms());
        tokio::select! {
            () = subscription.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(lease_left)) => {}
        }
        return Ok(None);
    }
    let mut last = first;
    let mut failing = record.failing_since_ms.is_some();
    let mut outcome = Ok(None);
    for queued in &batch {
        let Queued { seq, message } = queued;
        let answer = post(
            webhooks,
            subscription,
            &record.callback,
            &message.message_id,
            message.topic.as_deref(),
            message.body.as_bytes(),
        )
        .await;
        match answer {
            Answer::Accepted(_) => {
                webhooks.counts.delivered.inc();
                last = *seq;
                subscription.delivered.store(last, Ordering::Release);
                if failing {
                    update(store, subscription, succeeded).await;
                    failing = false;
                }
            }
            Answer::Gone => {
                webhooks.counts.gone.inc();
                outcome = Err("the receiver answered 410 Gone".into());
                break;
            }
            failure @ Answer::Failed { .. } => {
                outcome = Ok(Some(failure));
                break;
            }
        }
        if now_ms() >= record.expires_at_ms {
            break;
        }
    }
    if last > first
        && let Err(error) = store.acknowledge(&subscription.id, last).await
    {
        tracing::error!(
            subscription = subscription.id,
            "dropping delivered webhook messages failed: {error}"
        );
    }
    outcome
}

/// Send the confirmation request. `Err(None)` when the receiver answered
/// and did not echo the challenge; `Err(Some)` when it did not answer (or
/// answered 5xx or 429): try again.
async fn confirm(
    webhooks: &Webhooks,
    subscription: &Subscription,
    record: &Record,
) -> Result<(), Option<Answer>> {
    let challenge = record.challenge.as_deref().unwrap_or_default();
    let body = json!({
        "jsonrpc": "2.0",
        "method": "rpc.webhook.confirm",
        "params": {
            "subscription": subscription.id,
            "challenge": challenge,
            "topics": record.topics,
            "broadcast": record.broadcast,
            "lease_seconds": record.lease_seconds,
        },
        "id": subscription.id,
    })
    .to_string();
    let message_id = format!("msg_{}", random_hex(12));
    let answer = post(
        webhooks,
        subscription,
        &record.callback,
        &message_id,
        None,
        body.as_bytes(),
    )
    .await;
    let reason = match answer {
        Answer::Accepted(answer) => {
            let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
            if answer.get("result").and_then(Value::as_str) == Some(challenge) {
                return Ok(());
            }
            format!(
                "its answer does not echo the challenge: {}",
                shorten(&answer.to_string())
            )
        }
        Answer::Gone => "it answered 410 Gone".into(),
        Answer::Failed {
            status: Some(status),
            ..
        } if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS => {
            format!("it answered {status}")
        }
        failure @ Answer::Failed { .. } => return Err(Some(failure)),
    };
    tracing::warn!(
        subscription = subscription.id,
        callback = record.callback,
        "webhook confirmation refused: {reason}"
    );
    Err(None)
}

/// Count a failed attempt and schedule the next; the reason to end the
/// subscription when it has failed for the give-up period.
async fn failed(
    webhooks: &Webhooks,
    store: &dyn WebhookStore,
    subscription: &Subscription,
    failure: Answer,
) -> Option<String> {
    let Answer::Failed { reason, after, .. } = failure else {
        return None;
    };
    webhooks.counts.failed.inc();
    let settings = &webhooks.settings;
    let now = now_ms();
    let give_up_ms = settings.give_up_after.as_millis() as u64;
    let (since, attempts) = {
        let record = subscription.record.lock();
        (
            record.failing_since_ms.unwrap_or(now),
            record.failed_attempts + 1,
        )
    };
    // A clock that went back counts as no time failing.
    let failing_ms = now.saturating_sub(since);
    if failing_ms >= give_up_ms && subscription.record.lock().confirmed() {
        webhooks.counts.given_up.inc();
        return Some(format!(
            "deliveries failed for {} s ({attempts} attempts), the last: {reason}",
            failing_ms / 1000
        ));
    }
    let schedule = &settings.retry_schedule;
    let step = schedule[(attempts as usize - 1).min(schedule.len() - 1)];
    let delay = after
        .unwrap_or_else(|| jittered(step))
        .min(settings.give_up_after);
    let callback = subscription.record.lock().callback.clone();
    tracing::warn!(
        subscription = subscription.id,
        callback,
        attempt = attempts,
        "webhook delivery failed, retrying in {} ms: {reason}",
        delay.as_millis()
    );
    update(store, subscription, |record| {
        record.failing_since_ms = Some(since);
        record.failed_attempts = attempts;
        record.retry_at_ms = now + delay.as_millis() as u64;
    })
    .await;
    None
}

/// The record after a success: no failure streak, no wait.
fn succeeded(record: &mut Record) {
    record.failing_since_ms = None;
    record.failed_attempts = 0;
    record.retry_at_ms = 0;
}

/// Change the subscription's record and save the change.
async fn update(
    store: &dyn WebhookStore,
    subscription: &Subscription,
    change: impl FnOnce(&mut Record),
) {
    let (_, changes) = subscription.change(change);
    if let Err(error) = store.update_webhook(&subscription.id, changes).await {
        tracing::error!(
            subscription = subscription.id,
            "saving a webhook subscription failed: {error}"
        );
    }
}

/// POST `body` to `callback`, signed, as message `message_id`.
async fn post(
    webhooks: &Webhooks,
    subscription: &Subscription,
    callback: &str,
    message_id: &str,
    topic: Option<&str>,
    body: &[u8],
) -> Answer {
    let failed = |reason: String| Answer::Failed {
        reason,
        status: None,
        after: None,
    };
    let url = match Url::parse(callback) {
        Ok(url) => url,
        Err(error) => return failed(format!("the callback is not a URL: {error}")),
    };
    if let Err(reason) = callback::literal_allowed(&url, &webhooks.settings.allow) {
        return failed(reason);
    }
    let timestamp = now_ms() / 1000;
    let mut request = webhooks
        .client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp)
        .header(
            "webhook-signature",
            subscription.secret.sign(message_id, timestamp, body),
        )
        .body(body.to_vec());
    if let Some(topic) = topic {
        request = request.header("rpcnode-topic", percent_encoded(topic));
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(describe(&error)),
    };
    let status = response.status();
    if status == StatusCode::GONE {
        return Answer::Gone;
    }
    if !status.is_success() {
        let after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Answer::Failed {
            reason: format!("it answered {status}"),
            status: Some(status),
            after,
        };
    }
    let mut answer = Vec::new();
    while answer.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => return failed(describe(&error)),
        }
    }
    answer.truncate(MAX_ANSWER_BYTES);
    Answer::Accepted(answer)
}

/// An HTTP client error with its causes.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "it did not answer in time"
    } else if error.is_connect() {
        "it could not be reached"
    } else {
        "the request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `text` with `%`, spaces, controls and non-ASCII bytes percent-encoded,
/// so any topic fits in a header.
fn percent_encoded(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// At most 200 characters of `text`, for log lines.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
