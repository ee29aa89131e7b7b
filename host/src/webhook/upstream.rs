//! The receiving side, so that rpcnode nodes follow each other: a node
//! configured with `[upstream.NAME]` sections subscribes its own callback,
//! `POST /webhook/NAME`, to topics of each upstream node (renewing at half
//! the lease), answers the upstream's confirmation itself, and accepts only
//! deliveries signed with the upstream's secret, recent, and not seen
//! before. What to do with an accepted notification (relay it to this
//! node's subscribers, hand it to the plugins) is the transport's part.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Secret;
use crate::store::{MAX_TOPIC_BYTES, now_ms};

/// How far a delivery's timestamp may be from this node's clock.
const TIMESTAMP_TOLERANCE_SECS: u64 = 300;
/// Delivery ids remembered per upstream to drop repeats.
const REMEMBERED_IDS: usize = 10_000;
/// The lease asked for when a section names none: one day.
const DEFAULT_LEASE_SECONDS: u64 = 86_400;
/// The longest wait between two tries to subscribe.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// An `[upstream.NAME]` section of the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    /// The upstream node's JSON-RPC URL (`http://a.example:8000/`).
    pub url: String,
    /// This node's callback URL as the upstream reaches it; by default this
    /// node's own address and `/webhook/NAME`.
    pub callback: Option<String>,
    /// The topics to follow.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Follow the upstream's broadcasts too.
    #[serde(default)]
    pub broadcast: bool,
    /// The subscription's secret, `whsec_BASE64`.
    pub secret: String,
    /// The lease to ask for, in seconds.
    pub lease_seconds: Option<u64>,
    /// Publish each notification to this node's subscribers of the same
    /// topic (or broadcast it); default true.
    pub relay: Option<bool>,
    /// Call this node's plugins with each notification, as a JSON-RPC
    /// notification of its method; default false.
    pub call_plugins: Option<bool>,
}

/// An upstream node this node follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// The section's name, the last part of the callback path.
    pub name: String,
    /// The upstream node's JSON-RPC URL.
    pub url: String,
    /// This node's callback URL; `None`: this node's own address.
    pub callback: Option<String>,
    /// The topics followed.
    pub topics: Vec<String>,
    /// Whether broadcasts are followed.
    pub broadcast: bool,
    /// The subscription's secret.
    pub secret: Secret,
    /// The lease asked for, in seconds.
    pub lease_seconds: u64,
    /// Publish accepted notifications to this node's subscribers.
    pub relay: bool,
    /// Hand accepted notifications to this node's plugins.
    pub call_plugins: bool,
}

impl Upstream {
    /// Check the section `name`.
    pub fn from_file(name: &str, file: UpstreamFile) -> Result<Self, String> {
        let context = |problem: String| format!("upstream.{name}: {problem}");
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name {
            return Err(context(
                "a name is 1 to 64 letters, digits, '-' or '_'".into(),
            ));
        }
        for url in std::iter::once(&file.url).chain(&file.callback) {
            match reqwest::Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => return Err(context(format!("{url:?} is not an http or https URL"))),
            }
        }
        if file.topics.is_empty() && !file.broadcast {
            return Err(context(
                "name at least one topic, or set broadcast = true".into(),
            ));
        }
        if let Some(bad) = file
            .topics
            .iter()
            .find(|topic| topic.is_empty() || topic.len() > MAX_TOPIC_BYTES)
        {
            return Err(context(format!(
                "a topic is 1 to {MAX_TOPIC_BYTES} bytes, not {}",
                bad.len()
            )));
        }
        let secret = Secret::parse(&file.secret).map_err(context)?;
        Ok(Self {
            name: name.to_owned(),
            url: file.url,
            callback: file.callback,
            topics: file.topics,
            broadcast: file.broadcast,
            secret,
            lease_seconds: file.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS),
            relay: file.relay.unwrap_or(true),
            call_plugins: file.call_plugins.unwrap_or(false),
        })
    }
}

/// What a request to `POST /webhook/NAME` turned out to be.
#[derive(Debug)]
pub enum Received {
    /// The upstream's confirmation request: answer `200` with this body.
    Confirm(String),
    /// A notification to act on; then [`Upstreams::remember`] its id.
    Notification {
        /// Its `webhook-id`.
        id: String,
        /// The topic it was published to; `None` for a broadcast.
        topic: Option<String>,
        /// The JSON-RPC notification.
        body: String,
        /// Publish it to this node's subscribers.
        relay: bool,
        /// Hand it to this node's plugins.
        call_plugins: bool,
    },
    /// A repeat of a delivery already handled, or a notification of a topic
    /// this node does not follow: answer `200`, do nothing.
    Ignored,
    /// Refused with this status and reason.
    Refused(StatusCode, String),
}

/// One followed upstream with the delivery ids it has sent.
struct Followed {
    upstream: Upstream,
    seen: Mutex<Seen>,
}

/// The last [`REMEMBERED_IDS`] delivery ids, oldest first.
#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
}

/// The upstream nodes this node follows.
pub struct Upstreams {
    followed: Vec<Followed>,
}

impl Upstreams {
    /// Follow `upstreams`; a section without a callback gets
    /// `own_url/webhook/NAME`.
    pub fn new(upstreams: Vec<Upstream>, own_url: &str) -> Self {
        let followed = upstreams
            .into_iter()
            .map(|mut upstream| {
                if upstream.callback.is_none() {
                    upstream.callback = Some(format!("{own_url}/webhook/{}", upstream.name));
                }
                Followed {
                    upstream,
                    seen: Mutex::default(),
                }
            })
            .collect();
        Self { followed }
    }

    /// Subscribe to every upstream, and keep renewing, until `stopping`.
    pub fn start(&self, stopping: &CancellationToken) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("the upstream HTTP client's settings are valid");
        for followed in &self.followed {
            let task = keep_subscribed(client.clone(), followed.upstream.clone());
            let stopping = stopping.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = stopping.cancelled() => {}
                    () = task => {}
                }
            });
        }
    }

    /// Check a request to `POST /webhook/NAME`.
    pub fn receive(&self, name: &str, headers: &HeaderMap, body: &[u8]) -> Received {
        let Some(followed) = self.followed.iter().find(|f| f.upstream.name == name) else {
            // Nobody here asked for it: the sender unsubscribes on 410.
            return Received::Refused(StatusCode::GONE, format!("no upstream is named {name:?}"));
        };
        let upstream = &followed.upstream;
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let (Some(id), Some(timestamp), Some(signature)) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        ) else {
            let reason = "webhook-id, webhook-timestamp and webhook-signature are required";
            return Received::Refused(StatusCode::UNAUTHORIZED, reason.into());
        };
        let Ok(timestamp) = timestamp.parse::<u64>() else {
            let reason = "webhook-timestamp is not a number of seconds";
            return Received::Refused(StatusCode::BAD_REQUEST, reason.into());
        };
        if timestamp.abs_diff(now_ms() / 1000) > TIMESTAMP_TOLERANCE_SECS {
            let reason =
                format!("webhook-timestamp is more than {TIMESTAMP_TOLERANCE_SECS} s away");
            return Received::Refused(StatusCode::UNAUTHORIZED, reason);
        }
        if !upstream.secret.verify(signature, id, timestamp, body) {
            let reason = "webhook-signature does not match";
            return Received::Refused(StatusCode::UNAUTHORIZED, reason.into());
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return Received::Refused(StatusCode::BAD_REQUEST, "the body is not UTF-8".into());
        };
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Received::Refused(StatusCode::BAD_REQUEST, "the body is not JSON".into());
        };
        if message["method"] == "rpc.webhook.confirm" {
            let answer = json!({
                "jsonrpc": "2.0",
                "result": message["params"]["challenge"],
                "id": message["id"],
            });
            tracing::info!(
                upstream = name,
                "confirming the subscription to an upstream"
            );
            return Received::Confirm(answer.to_string());
        }
        if followed.seen.lock().ids.contains(id) {
            return Received::Ignored;
        }
        let topic = header("rpcnode-topic").map(percent_decoded);
        let followed_topic = match &topic {
            Some(topic) => upstream.topics.contains(topic),
            None => upstream.broadcast,
        };
        if !followed_topic {
            tracing::warn!(
                upstream = name,
                topic,
                "dropped a notification of a topic not followed"
            );
            return Received::Ignored;
        }
        Received::Notification {
            id: id.to_owned(),
            topic,
            body: text.to_owned(),
            relay: upstream.relay,
            call_plugins: upstream.call_plugins,
        }
    }

    /// Remember that delivery `id` from upstream `name` was handled, so that
    /// a repeat of it is dropped.
    pub fn remember(&self, name: &str, id: String) {
        let Some(followed) = self.followed.iter().find(|f| f.upstream.name == name) else {
            return;
        };
        let mut seen = followed.seen.lock();
        if seen.ids.insert(id.clone()) {
            seen.order.push_back(id);
        }
        while seen.order.len() > REMEMBERED_IDS {
            if let Some(oldest) = seen.order.pop_front() {
                seen.ids.remove(&oldest);
            }
        }
    }
}

/// Subscribe to `upstream` and renew at half the lease; after a failure,
/// try again after 1 s, doubling up to [`MAX_RETRY`].
async fn keep_subscribed(client: reqwest::Client, upstream: Upstream) {
    let mut retry = Duration::from_secs(1);
    loop {
        let wait = match subscribe(&client, &upstream).await {
            Ok(lease_seconds) => {
                retry = Duration::from_secs(1);
                Duration::from_secs(lease_seconds.max(2) / 2)
            }
            Err(error) => {
                tracing::warn!(
                    upstream = upstream.name,
                    url = upstream.url,
                    "subscribing to an upstream failed, trying again in {} s: {error}",
                    retry.as_secs()
                );
                let wait = retry;
                retry = (retry * 2).min(MAX_RETRY);
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Call `rpc.webhook.subscribe` on the upstream; the lease it granted.
async fn subscribe(client: &reqwest::Client, upstream: &Upstream) -> Result<u64, String> {
    let request = json!({
        "jsonrpc": "2.0",
        "method": "rpc.webhook.subscribe",
        "params": {
            "callback": upstream.callback,
            "topics": upstream.topics,
            "broadcast": upstream.broadcast,
            "lease_seconds": upstream.lease_seconds,
            "secret": upstream.secret.text(),
        },
        "id": 1,
    });
    let response = client
        .post(&upstream.url)
        .json(&request)
        .send()
        .await
        .map_err(|error| error.without_url().to_string())?;
    let answer: Value = response
        .json()
        .await
        .map_err(|error| format!("its answer is not JSON: {}", error.without_url()))?;
    if let Some(error) = answer.get("error") {
        return Err(format!("it answered {error}"));
    }
    let lease = answer["result"]["lease_seconds"].as_u64();
    tracing::info!(upstream = upstream.name, state = %answer["result"]["state"], "subscribed to an upstream");
    lease.ok_or_else(|| format!("its answer has no lease: {answer}"))
}

/// Undo the percent-encoding of a topic header.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A section name, a change to a good section, and the error expected.
    type Case = (&'static str, fn(&mut UpstreamFile), &'static str);

    fn section() -> UpstreamFile {
        UpstreamFile {
            url: "http://a.example:8000/".into(),
            callback: None,
            topics: vec!["news".into()],
            broadcast: false,
            secret: Secret::generate().text(),
            lease_seconds: None,
            relay: None,
            call_plugins: None,
        }
    }

    #[test]
    fn sections_are_checked() {
        let upstream = Upstream::from_file("a", section()).unwrap();
        assert_eq!(upstream.lease_seconds, DEFAULT_LEASE_SECONDS);
        assert!(upstream.relay && !upstream.call_plugins);
        let cases: [Case; 5] = [
            ("a b", |_| {}, "upstream.a b: a name is 1 to 64 letters"),
            (
                "a",
                |file| file.url = "ftp://x/".into(),
                "\"ftp://x/\" is not an http or https URL",
            ),
            (
                "a",
                |file| file.topics.clear(),
                "name at least one topic, or set broadcast = true",
            ),
            (
                "a",
                |file| file.topics = vec![String::new()],
                "a topic is 1 to 256 bytes",
            ),
            (
                "a",
                |file| file.secret = "x".into(),
                "upstream.a: a secret starts with whsec_",
            ),
        ];
        for (name, change, expected) in cases {
            let mut file = section();
            change(&mut file);
            let error = Upstream::from_file(name, file).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn topic_headers_are_decoded() {
        assert_eq!(percent_decoded("caf%C3%A9%20au%25lait"), "café au%lait");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz"), "%zz");
    }
}
