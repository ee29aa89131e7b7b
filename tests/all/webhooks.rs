//! Webhook subscriptions against real HTTP receivers on loopback: the
//! confirmation comes first and nothing else before it; deliveries carry
//! Standard Webhooks signatures (checked with Python's hmac); a receiver
//! that is down gets everything later, once and in order, also across a
//! `kill -9` and a SIGTERM of the real binary; `410` unsubscribes; give-up,
//! leases, the queue bound, SSRF refusals and malformed requests.

use std::time::{Duration, Instant};

use rpcnode::Config;
use rpcnode::webhook::{AllowList, Secret, Upstream, UpstreamFile};
use serde_json::{Value, json};

use crate::binary::{assert_refused, start, terminate};
use crate::support::{TestNode, eventually, plugins_dir, within};
use crate::webhook_receiver::{Answer, Received, Receiver};

/// Loopback allowed, retries every 50 ms, giving up after a minute.
pub fn loopback(config: &mut Config) {
    config.webhooks.allow = AllowList::parse("127.0.0.1").unwrap();
    config.webhooks.retry_schedule = vec![Duration::from_millis(50)];
    config.webhooks.give_up_after = Duration::from_secs(60);
}

async fn node_with(configure: impl FnOnce(&mut Config)) -> TestNode {
    TestNode::start_with(&["probe"], configure).await
}

/// Publish notification `tick {"n": n}` to `topic` (a broadcast for `None`).
pub async fn publish(node: &TestNode, topic: Option<&str>, n: u64) {
    let mut params = json!({"method": "tick", "params": {"n": n}});
    if let Some(topic) = topic {
        params["topic"] = json!(topic);
    }
    let answer = node.call("notify", params).await;
    assert!(answer.get("result").is_some(), "{answer}");
}

/// The webhook counts `/health` reports.
pub async fn webhook_health(node: &TestNode) -> Value {
    node.get_json("/health").await["webhooks"].clone()
}

/// Subscribe `receiver` to `topics`, answer its confirmation, and wait for
/// the subscription to be active; the subscribe result.
async fn subscribe_confirmed(node: &TestNode, receiver: &mut Receiver, topics: &[&str]) -> Value {
    let answer = node
        .call(
            "rpc.webhook.subscribe",
            json!({"callback": receiver.url("/hook"), "topics": topics}),
        )
        .await;
    let result = answer["result"].clone();
    assert_eq!(result["state"], "pending", "{answer}");
    let confirmation = receiver.next().await;
    assert!(confirmation.is_confirmation());
    assert_eq!(confirmation.status, 200);
    eventually(async || webhook_health(node).await["active"] == 1).await;
    result
}

/// The `tick` numbers of accepted deliveries in the order they were
/// accepted, each `webhook-id` once (as a receiver deduplicating would).
pub fn accepted_ticks(requests: &[Received]) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    requests
        .iter()
        .filter(|request| request.status < 300 && !request.is_confirmation())
        .filter(|request| seen.insert(request.header("webhook-id").to_owned()))
        .map(|request| request.json()["params"]["n"].as_u64().unwrap())
        .collect()
}

/// The signature Python's standard library computes for a delivery: an
/// implementation independent of the server's.
fn python_signature(secret: &str, received: &Received) -> String {
    let script = "import base64, hashlib, hmac, sys\n\
        key = base64.b64decode(sys.argv[1].removeprefix('whsec_'))\n\
        content = f'{sys.argv[2]}.{sys.argv[3]}.'.encode() + sys.stdin.buffer.read()\n\
        print('v1,' + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode())";
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            secret,
            received.header("webhook-id"),
            received.header("webhook-timestamp"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("running python3");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&received.body)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_confirmed_subscription_gets_signed_deliveries() {
    let node = node_with(loopback).await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    let answer = node
        .call(
            "rpc.webhook.subscribe",
            json!({"callback": receiver.url("/hook"), "topics": ["news"], "broadcast": true, "lease_seconds": 3600}),
        )
        .await;
    let result = &answer["result"];
    let (id, secret) = (
        result["id"].as_str().unwrap(),
        result["secret"].as_str().unwrap(),
    );
    assert!(
        id.starts_with("wh_") && secret.starts_with("whsec_"),
        "{answer}"
    );
    assert_eq!(result["state"], "pending");
    assert_eq!(result["lease_seconds"], 3600);

    // The first message is the confirmation, signed like every delivery.
    let confirmation = receiver.next().await;
    let request = confirmation.json();
    assert_eq!(request["method"], "rpc.webhook.confirm");
    assert_eq!(request["id"], id);
    assert_eq!(request["params"]["subscription"], id);
    assert_eq!(request["params"]["topics"], json!(["news"]));
    assert_eq!(request["params"]["broadcast"], true);
    assert_eq!(request["params"]["lease_seconds"], 3600);
    assert_eq!(request["params"]["challenge"].as_str().unwrap().len(), 32);
    assert_eq!(
        python_signature(secret, &confirmation),
        confirmation.header("webhook-signature")
    );
    eventually(async || webhook_health(&node).await["active"] == 1).await;

    publish(&node, Some("news"), 1).await;
    publish(&node, Some("sport"), 2).await;
    publish(&node, None, 3).await;
    let first = receiver.next().await;
    assert_eq!(
        first.json(),
        json!({"jsonrpc": "2.0", "method": "tick", "params": {"n": 1}})
    );
    assert_eq!(first.header("rpcnode-topic"), "news");
    assert_eq!(first.header("content-type"), "application/json");
    assert!(first.header("webhook-id").starts_with("msg_"));
    let timestamp: u64 = first.header("webhook-timestamp").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(timestamp) <= 5, "{timestamp} vs {now}");
    assert_eq!(
        python_signature(secret, &first),
        first.header("webhook-signature")
    );
    // Not subscribed to sport: the broadcast comes next, without a topic.
    let second = receiver.next().await;
    assert_eq!(second.json()["params"]["n"], 3);
    assert!(second.headers.get("rpcnode-topic").is_none());
    assert_ne!(second.header("webhook-id"), first.header("webhook-id"));

    let health = webhook_health(&node).await;
    assert_eq!(
        health,
        json!({"pending": 0, "active": 1, "retrying": 0, "queued": 0, "delivering": 1})
    );
    let metrics = crate::observability::metrics(&node).await;
    for line in [
        "rpcnode_webhook_deliveries_total 2",
        "rpcnode_webhook_confirmed_total 1",
        "rpcnode_webhook_subscriptions{state=\"active\"} 1",
        "rpcnode_webhook_queued 0",
    ] {
        assert!(
            metrics.lines().any(|metric| metric == line),
            "{line} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn unconfirmed_and_refused_subscriptions_get_nothing_else() {
    let node = node_with(loopback).await;
    let mut wrong_echo = Receiver::start(Answer::ConfirmWith(
        json!({"jsonrpc": "2.0", "result": "not the challenge", "id": 1}),
    ))
    .await;
    let mut not_found = Receiver::start(Answer::Status(404, None)).await;
    let mut unreachable = Receiver::start(Answer::Status(503, None)).await;
    for receiver in [&wrong_echo, &not_found, &unreachable] {
        let answer = node
            .call(
                "rpc.webhook.subscribe",
                json!({"callback": receiver.url("/"), "broadcast": true}),
            )
            .await;
        assert_eq!(answer["result"]["state"], "pending", "{answer}");
    }
    // The two that answered are refused at once; the one answering 503 is
    // retried and stays pending.
    eventually(async || webhook_health(&node).await["pending"] == 1).await;
    let metrics = crate::observability::metrics(&node).await;
    assert!(
        metrics.contains("rpcnode_webhook_refused_total 2\n"),
        "{metrics}"
    );
    for n in 1..=3 {
        publish(&node, None, n).await;
    }
    let retried = unreachable.until(|got| got.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (name, receiver) in [("wrong echo", &mut wrong_echo), ("404", &mut not_found)] {
        let mut got = vec![receiver.next().await];
        got.extend(receiver.received_so_far());
        assert_eq!(got.len(), 1, "{name}: only the confirmation");
        assert!(got[0].is_confirmation(), "{name}");
    }
    let retried: Vec<Received> = retried
        .into_iter()
        .chain(unreachable.received_so_far())
        .collect();
    assert!(
        retried.iter().all(Received::is_confirmation),
        "only confirmations while pending"
    );
    // Every retry carries the same challenge.
    let challenges: std::collections::BTreeSet<String> = retried
        .iter()
        .map(|request| {
            request.json()["params"]["challenge"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(challenges.len(), 1);
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_everything_once_and_in_order() {
    let node = node_with(loopback).await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    subscribe_confirmed(&node, &mut receiver, &["news"]).await;

    receiver.stop();
    for n in 1..=40 {
        publish(&node, Some("news"), n).await;
    }
    eventually(async || {
        let health = webhook_health(&node).await;
        health["retrying"] == 1 && health["queued"] == 40
    })
    .await;
    receiver.restart().await;
    // Then 503 for a while: failures with an answer are retried the same way.
    receiver.set(Answer::Status(503, None));
    let refused = receiver.until(|got| got.len() >= 3).await;
    let head_id = refused[0].header("webhook-id").to_owned();
    assert!(
        refused
            .iter()
            .all(|request| request.header("webhook-id") == head_id)
    );
    receiver.set(Answer::Accept);
    for n in 41..=50 {
        publish(&node, Some("news"), n).await;
    }
    let got = receiver.until(|got| accepted_ticks(got).len() >= 50).await;
    assert_eq!(accepted_ticks(&got), (1..=50).collect::<Vec<_>>());
    // Ids are unique per notification and stable across retries.
    let accepted: Vec<&Received> = got.iter().filter(|request| request.status < 300).collect();
    assert_eq!(accepted[0].header("webhook-id"), head_id);
    let ids: std::collections::BTreeSet<&str> = accepted
        .iter()
        .map(|request| request.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 50);
    eventually(async || {
        webhook_health(&node).await
            == json!({"pending": 0, "active": 1, "retrying": 0, "queued": 0, "delivering": 1})
    })
    .await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let node = node_with(loopback).await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    subscribe_confirmed(&node, &mut receiver, &["news"]).await;
    receiver.set(Answer::Status(429, Some(1)));
    publish(&node, Some("news"), 1).await;
    let first = receiver.next().await;
    let asked_at = Instant::now();
    assert_eq!(first.status, 429);
    receiver.set(Answer::Accept);
    let second = receiver.next().await;
    let waited = asked_at.elapsed();
    assert_eq!(second.header("webhook-id"), first.header("webhook-id"));
    // The schedule says 50 ms; the receiver said 1 s.
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}"
    );
}

#[tokio::test]
async fn a_410_answer_unsubscribes_at_once() {
    let node = node_with(loopback).await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    subscribe_confirmed(&node, &mut receiver, &["news"]).await;
    receiver.set(Answer::Status(410, None));
    publish(&node, Some("news"), 1).await;
    publish(&node, Some("news"), 2).await;
    assert_eq!(receiver.next().await.status, 410);
    eventually(async || webhook_health(&node).await["active"] == 0).await;
    publish(&node, Some("news"), 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received_so_far().is_empty());
    let metrics = crate::observability::metrics(&node).await;
    assert!(
        metrics.contains("rpcnode_webhook_gone_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_receiver_failing_past_the_give_up_period_is_dropped() {
    let node = node_with(|config| {
        loopback(config);
        config.webhooks.give_up_after = Duration::from_millis(500);
    })
    .await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    subscribe_confirmed(&node, &mut receiver, &["news"]).await;
    receiver.set(Answer::Status(500, None));
    let started = Instant::now();
    publish(&node, Some("news"), 1).await;
    eventually(async || {
        webhook_health(&node).await
            == json!({"pending": 0, "active": 0, "retrying": 0, "queued": 0, "delivering": 0})
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    let attempts = receiver.received_so_far();
    assert!(
        attempts.len() >= 3,
        "retried until the give-up: {}",
        attempts.len()
    );
    let metrics = crate::observability::metrics(&node).await;
    assert!(
        metrics.contains("rpcnode_webhook_give_ups_total 1\n"),
        "{metrics}"
    );
    // The same callback may subscribe again: it starts over with a confirmation.
    receiver.set(Answer::Accept);
    subscribe_confirmed(&node, &mut receiver, &["news"]).await;
}

#[tokio::test]
async fn leases_expire_unless_renewed_with_the_secret() {
    let node = node_with(loopback).await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    let callback = receiver.url("/hook");
    let answer = node
        .call(
            "rpc.webhook.subscribe",
            json!({"callback": callback, "topics": ["news"], "lease_seconds": 1}),
        )
        .await;
    let secret = answer["result"]["secret"].as_str().unwrap().to_owned();
    assert!(receiver.next().await.is_confirmation());
    eventually(async || webhook_health(&node).await["active"] == 1).await;

    // Renewing needs the secret; with it, the lease and topics change
    // without a new confirmation.
    let stolen = node
        .call(
            "rpc.webhook.subscribe",
            json!({"callback": callback, "topics": ["other"], "lease_seconds": 3600}),
        )
        .await;
    assert_eq!(stolen["error"]["code"], -32602, "{stolen}");
    assert!(
        stolen["error"]["message"]
            .as_str()
            .unwrap()
            .contains("renew it with its secret")
    );
    let renewed = node
        .call(
            "rpc.webhook.subscribe",
            json!({"callback": callback, "topics": ["sport"], "lease_seconds": 2, "secret": secret}),
        )
        .await;
    assert_eq!(renewed["result"]["state"], "active", "{renewed}");
    assert_eq!(renewed["result"]["id"], answer["result"]["id"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    publish(&node, Some("sport"), 1).await;
    assert_eq!(receiver.next().await.json()["params"]["n"], 1);
    assert!(
        !receiver
            .received_so_far()
            .iter()
            .any(Received::is_confirmation)
    );
    // Two seconds after the renewal, the lease ends.
    eventually(async || webhook_health(&node).await["active"] == 0).await;
    publish(&node, Some("sport"), 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(receiver.received_so_far().is_empty());
    let metrics = crate::observability::metrics(&node).await;
    assert!(
        metrics.contains("rpcnode_webhook_expired_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn unsubscribing_needs_the_secret() {
    let node = node_with(loopback).await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    let result = subscribe_confirmed(&node, &mut receiver, &["news"]).await;
    let callback = receiver.url("/hook");
    let other = "whsec_".to_owned() + &"A".repeat(32);
    let refused = node
        .call(
            "rpc.webhook.unsubscribe",
            json!({"callback": callback, "secret": other}),
        )
        .await;
    assert_eq!(refused["result"], json!({"unsubscribed": false}));
    let done = node
        .call(
            "rpc.webhook.unsubscribe",
            json!({"callback": callback, "secret": result["secret"]}),
        )
        .await;
    assert_eq!(done["result"], json!({"unsubscribed": true}));
    assert_eq!(webhook_health(&node).await["active"], 0);
}

#[tokio::test]
async fn a_full_queue_ends_its_subscription() {
    let node = node_with(|config| {
        loopback(config);
        config.webhooks.max_queue = 5;
        config.webhooks.retry_schedule = vec![Duration::from_secs(30)];
    })
    .await;
    let mut receiver = Receiver::start(Answer::Accept).await;
    subscribe_confirmed(&node, &mut receiver, &["news"]).await;
    receiver.set(Answer::Status(503, None));
    for n in 1..=5 {
        publish(&node, Some("news"), n).await;
    }
    assert_eq!(receiver.next().await.status, 503);
    eventually(async || webhook_health(&node).await["queued"] == 5).await;
    // The sixth does not fit: the subscription ends with its queue, and the
    // publisher is not refused.
    publish(&node, Some("news"), 6).await;
    assert_eq!(
        webhook_health(&node).await,
        json!({"pending": 0, "active": 0, "retrying": 0, "queued": 0, "delivering": 0})
    );
    let metrics = crate::observability::metrics(&node).await;
    assert!(
        metrics.contains("rpcnode_webhook_overflows_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn private_addresses_and_redirects_are_refused() {
    let strict = node_with(|_| {}).await;
    let receiver = Receiver::start(Answer::Accept).await;
    for callback in [
        receiver.url("/hook"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://[::1]/".to_owned(),
        "http://[::ffff:127.0.0.1]/".to_owned(),
        "http://localhost/".to_owned(),
    ] {
        let answer = strict
            .call(
                "rpc.webhook.subscribe",
                json!({"callback": callback, "broadcast": true}),
            )
            .await;
        assert_eq!(answer["error"]["code"], -32602, "{callback}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("refused address"), "{callback}: {message}");
    }

    // Allowed, the callback redirects elsewhere: the redirect is not
    // followed, the delivery is retried.
    let node = node_with(loopback).await;
    let mut redirecting = Receiver::start(Answer::Accept).await;
    let mut elsewhere = Receiver::start(Answer::Accept).await;
    subscribe_confirmed(&node, &mut redirecting, &["news"]).await;
    redirecting.set(Answer::Redirect(elsewhere.url("/stolen")));
    publish(&node, Some("news"), 1).await;
    let attempts = redirecting.until(|got| got.len() >= 3).await;
    assert!(attempts.iter().all(|attempt| attempt.status == 302));
    assert!(elsewhere.received_so_far().is_empty());
}

#[tokio::test]
async fn malformed_subscriptions_are_refused_with_the_reason() {
    let node = node_with(loopback).await;
    let receiver = Receiver::start(Answer::Accept).await;
    let callback = receiver.url("/hook");
    for (params, expected) in [
        (json!({}), "missing field `callback`"),
        (json!(["x"]), "params must be an object"),
        (
            json!({"callback": 7, "topics": ["a"]}),
            "invalid type: integer",
        ),
        (
            json!({"callback": callback}),
            "name at least one topic, or set broadcast: true",
        ),
        (
            json!({"callback": callback, "topics": [""]}),
            "a topic is 1 to 256 bytes",
        ),
        (
            json!({"callback": callback, "topics": ["a"], "lease_seconds": 0}),
            "lease_seconds must be 1 to",
        ),
        (
            json!({"callback": callback, "topics": ["a"], "secret": "hunter2"}),
            "a secret starts with whsec_",
        ),
        (
            json!({"callback": callback, "topics": ["a"], "extra": 1}),
            "unknown field `extra`",
        ),
        (
            json!({"callback": "ftp://127.0.0.1/", "topics": ["a"]}),
            "http or https",
        ),
        (
            json!({"callback": "not a url", "topics": ["a"]}),
            "not a URL",
        ),
    ] {
        let answer = node.call("rpc.webhook.subscribe", params.clone()).await;
        assert_eq!(answer["error"]["code"], -32602, "{params}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{params}: {message}");
    }
    assert_eq!(webhook_health(&node).await["pending"], 0);
}

#[tokio::test]
async fn pending_confirmations_per_host_are_capped() {
    let node = node_with(loopback).await;
    let receiver = Receiver::start(Answer::Status(503, None)).await;
    for n in 0..8 {
        let answer = node
            .call(
                "rpc.webhook.subscribe",
                json!({"callback": receiver.url(&format!("/{n}")), "broadcast": true}),
            )
            .await;
        assert_eq!(answer["result"]["state"], "pending", "{answer}");
    }
    let answer = node
        .call(
            "rpc.webhook.subscribe",
            json!({"callback": receiver.url("/8"), "broadcast": true}),
        )
        .await;
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("8 subscriptions waiting for confirmation")
    );
}

#[tokio::test]
async fn bad_webhook_settings_are_refused() {
    let plugins = plugins_dir(&[]);
    let plugins = plugins.path().to_str().unwrap();
    assert_refused(
        plugins,
        [
            (
                vec!["--webhook-retry", "5,x"],
                "webhook_retry must be comma-separated seconds",
            ),
            (vec!["--webhook-retry", "0"], "each above 0"),
            (
                vec!["--webhook-allow", "10.0.0.0/40"],
                "prefix length that is not 0 to 32",
            ),
            (
                vec!["--webhook-allow", "a b"],
                "is not an IP address, a network",
            ),
            (vec!["--webhook-give-up=-1"], "webhook_give_up must be"),
            (vec!["--webhook-timeout", "0"], "webhook_timeout must be"),
            (
                vec!["--webhook-max-queue", "0"],
                "webhook_max_queue must be at least 1",
            ),
        ],
    )
    .await;
}

/// The binary's flags for loopback callbacks and fast retries.
pub const FAST_LOOPBACK_FLAGS: [&str; 6] = [
    "--webhook-allow",
    "127.0.0.1",
    "--webhook-retry",
    "0.05",
    "--webhook-give-up",
    "60",
];

/// The real binary with a data folder, loopback allowed, fast retries.
async fn start_sender(
    plugins: &std::path::Path,
    data: &std::path::Path,
) -> (tokio::process::Child, String) {
    let data = data.to_str().unwrap();
    start(
        plugins,
        &[&["--data-dir", data][..], &FAST_LOOPBACK_FLAGS].concat(),
    )
    .await
}

pub async fn call_binary(address: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let response = within(reqwest::Client::new().post(address).json(&body).send())
        .await
        .unwrap();
    within(response.json()).await.unwrap()
}

#[tokio::test]
async fn queued_notifications_survive_kill_9_and_sigterm() {
    let plugins = plugins_dir(&["probe"]);
    let data = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start(Answer::Accept).await;
    let (child, address) = start_sender(plugins.path(), data.path()).await;
    let answer = call_binary(
        &address,
        "rpc.webhook.subscribe",
        json!({"callback": receiver.url("/hook"), "topics": ["news"]}),
    )
    .await;
    assert_eq!(answer["result"]["state"], "pending", "{answer}");
    assert!(receiver.next().await.is_confirmation());
    let publish = async |address: &str, n: u64| {
        let params = json!({"method": "tick", "params": {"n": n}, "topic": "news"});
        let answer = call_binary(address, "notify", params).await;
        assert!(answer.get("result").is_some(), "{answer}");
    };
    // The confirmation is saved before the first notification is accepted.
    publish(&address, 1).await;
    assert_eq!(receiver.next().await.json()["params"]["n"], 1);

    receiver.stop();
    for n in 2..=100 {
        publish(&address, n).await;
    }
    let mut child = child;
    child.start_kill().unwrap();
    within(child.wait()).await.unwrap();

    let (child, address) = start_sender(plugins.path(), data.path()).await;
    for n in 101..=150 {
        publish(&address, n).await;
    }
    let (code, _) = terminate(child).await;
    assert_eq!(code, Some(0));

    receiver.restart().await;
    let (child, address) = start_sender(plugins.path(), data.path()).await;
    let got = receiver.until(|got| accepted_ticks(got).len() >= 149).await;
    assert_eq!(accepted_ticks(&got), (2..=150).collect::<Vec<_>>());
    publish(&address, 151).await;
    assert_eq!(receiver.next().await.json()["params"]["n"], 151);
    terminate(child).await;
}

/// A section following `topics` (and broadcasts) of the node at `url`.
fn upstream(url: String, topics: &[&str], call_plugins: bool) -> Upstream {
    let file = UpstreamFile {
        url,
        callback: None,
        topics: topics.iter().map(|topic| topic.to_string()).collect(),
        broadcast: true,
        secret: Secret::generate().text(),
        lease_seconds: Some(3600),
        relay: Some(true),
        call_plugins: Some(call_plugins),
    };
    Upstream::from_file("a", file).unwrap()
}

#[tokio::test]
async fn a_follower_node_relays_an_upstream_to_its_websocket_clients() {
    let a = node_with(loopback).await;
    let b =
        node_with(|config| config.upstreams = vec![upstream(a.url("/"), &["news"], true)]).await;
    let mut client = b.ws().await;
    client
        .call("rpc.subscribe", json!({"topics": ["news"]}), 1)
        .await;
    // B subscribes itself and answers A's confirmation.
    eventually(async || webhook_health(&a).await["active"] == 1).await;

    for n in 1..=20 {
        publish(&a, Some("news"), n).await;
    }
    publish(&a, Some("sport"), 21).await;
    publish(&a, None, 22).await;
    for n in (1..=20).chain([22]) {
        assert_eq!(
            client.recv().await,
            json!({"jsonrpc": "2.0", "method": "tick", "params": {"n": n}})
        );
    }
    // With call_plugins, B's plugins get each notification as a call:
    // probe's incr, as a notification, counts.
    for _ in 0..3 {
        let params = json!({"method": "incr", "params": {"key": "relayed"}, "topic": "news"});
        a.call("notify", params).await;
    }
    for _ in 0..3 {
        client.recv().await;
    }
    eventually(async || b.call("state_read", json!({"key": "relayed"})).await["result"] == 3).await;
    client.assert_quiet().await;
}

/// POST `body` to `node`'s `/webhook/NAME` with `headers`; the status.
async fn deliver_to(
    node: &TestNode,
    name: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(node.url(&format!("/webhook/{name}")))
        .body(body.to_owned());
    for (header, value) in headers {
        request = request.header(*header, value);
    }
    let response = within(request.send()).await.unwrap();
    (
        response.status().as_u16(),
        within(response.text()).await.unwrap(),
    )
}

/// Standard Webhooks headers for `body` signed with `secret` at `timestamp`.
fn signed(secret: &Secret, id: &str, timestamp: u64, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        (
            "webhook-signature",
            secret.sign(id, timestamp, body.as_bytes()),
        ),
        ("rpcnode-topic", "news".to_owned()),
    ]
}

#[tokio::test]
async fn a_follower_takes_only_signed_recent_new_deliveries() {
    // The upstream's address refuses connections: B's own subscribing
    // fails and retries, while the test plays the upstream.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let section = upstream(nowhere, &["news"], false);
    let secret = section.secret.clone();
    let b = node_with(|config| config.upstreams = vec![section]).await;
    let mut client = b.ws().await;
    client
        .call("rpc.subscribe", json!({"topics": ["news"]}), 1)
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = r#"{"jsonrpc":"2.0","method":"tick","params":{"n":1}}"#;

    for (headers, status, reason) in [
        (
            vec![],
            401,
            "webhook-id, webhook-timestamp and webhook-signature are required",
        ),
        (
            signed(&Secret::generate(), "msg_1", now, body),
            401,
            "webhook-signature does not match",
        ),
        (
            signed(&secret, "msg_1", now - 600, body),
            401,
            "webhook-timestamp is more than 300 s away",
        ),
        (
            signed(&secret, "msg_1", now + 600, body),
            401,
            "webhook-timestamp is more than 300 s away",
        ),
    ] {
        assert_eq!(
            deliver_to(&b, "a", body, &headers).await,
            (status, reason.to_owned())
        );
    }
    let mut bad_timestamp = signed(&secret, "msg_1", now, body);
    bad_timestamp[1].1 = "yesterday".into();
    assert_eq!(deliver_to(&b, "a", body, &bad_timestamp).await.0, 400);
    let not_json = "not json";
    assert_eq!(
        deliver_to(&b, "a", not_json, &signed(&secret, "msg_2", now, not_json))
            .await
            .0,
        400
    );
    assert_eq!(
        deliver_to(&b, "other", body, &signed(&secret, "msg_1", now, body))
            .await
            .0,
        410
    );
    client.assert_quiet().await;

    // A good one is relayed once, however often it is sent.
    for _ in 0..3 {
        assert_eq!(
            deliver_to(&b, "a", body, &signed(&secret, "msg_1", now, body))
                .await
                .0,
            204
        );
    }
    assert_eq!(client.recv().await["params"]["n"], 1);
    client.assert_quiet().await;

    // The confirmation is answered with its challenge.
    let confirm = r#"{"jsonrpc":"2.0","method":"rpc.webhook.confirm","params":{"challenge":"c0ffee"},"id":"wh_1"}"#;
    let (status, answer) =
        deliver_to(&b, "a", confirm, &signed(&secret, "msg_3", now, confirm)).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "result": "c0ffee", "id": "wh_1"})
    );
}
