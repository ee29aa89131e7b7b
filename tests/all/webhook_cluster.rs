//! Webhooks in cluster mode, on a `redis-server` of the test's own: any
//! node takes subscriptions, renewals and unsubscribes, any node queues,
//! one node delivers each subscription, and when that node is killed
//! (`kill -9`) another delivers its queue, once per `webhook-id` and in
//! order.

use std::time::Duration;

use rpcnode::Config;
use rpcnode::config::Cluster;
use serde_json::{Value, json};

use crate::binary::{health, start, terminate};
use crate::redis_server::RedisServer;
use crate::support::{TestNode, eventually, plugins_dir, within};
use crate::webhook_receiver::{Answer, Receiver};
use crate::webhooks::{
    FAST_LOOPBACK_FLAGS, accepted_ticks, call_binary, loopback, publish, webhook_health,
};

/// A node of cluster `c` on `redis` with the probe plugin, loopback
/// callbacks allowed and fast retries.
async fn cluster_node(redis: &RedisServer) -> TestNode {
    let url = redis.url();
    TestNode::start_with(&["probe"], move |config: &mut Config| {
        config.cluster = Some(Cluster {
            name: "c".into(),
            ..Cluster::new(url)
        });
        loopback(config);
    })
    .await
}

/// Subscribe `receiver`'s `/hook` to topic `news` on `node`; the answer.
async fn subscribe_to_news(node: &TestNode, receiver: &Receiver) -> Value {
    node.call(
        "rpc.webhook.subscribe",
        json!({"callback": receiver.url("/hook"), "topics": ["news"]}),
    )
    .await
}

/// The webhook counts of `nodes` added up.
async fn delivering(nodes: &[&TestNode]) -> u64 {
    let mut total = 0;
    for node in nodes {
        total += webhook_health(node).await["delivering"].as_u64().unwrap();
    }
    total
}

#[tokio::test]
async fn any_node_subscribes_renews_queues_and_unsubscribes_one_delivering_node() {
    let redis = RedisServer::start();
    let (a, b) = (cluster_node(&redis).await, cluster_node(&redis).await);
    let mut receiver = Receiver::start(Answer::Accept).await;
    let answer = subscribe_to_news(&a, &receiver).await;
    let (id, secret) = (
        answer["result"]["id"].clone(),
        answer["result"]["secret"].clone(),
    );
    assert_eq!(answer["result"]["state"], "pending", "{answer}");
    let confirmation = receiver.next().await;
    assert!(confirmation.is_confirmation());
    assert_eq!(confirmation.json()["params"]["subscription"], id);
    for node in [&a, &b] {
        eventually(async || webhook_health(node).await["active"] == 1).await;
    }
    assert_eq!(delivering(&[&a, &b]).await, 1);

    // Published on either node, each notification is delivered once, in
    // the order it was published.
    for n in 1..=20 {
        let node = if n % 2 == 0 { &a } else { &b };
        publish(node, Some("news"), n).await;
    }
    let got = receiver.until(|got| got.len() >= 20).await;
    assert_eq!(accepted_ticks(&got), (1..=20).collect::<Vec<_>>());
    assert_eq!(got.len(), 20, "one request per notification");

    // B renews the subscription A took, with other topics; A's deliveries
    // follow.
    let renewed = b
        .call(
            "rpc.webhook.subscribe",
            json!({"callback": receiver.url("/hook"), "topics": ["sport"], "secret": secret, "lease_seconds": 60}),
        )
        .await;
    assert_eq!(
        renewed["result"],
        json!({"id": id, "state": "active", "lease_seconds": 60})
    );
    // A hears of the renewal in a moment: from then on its `sport`
    // notifications are delivered, and its `news` ones are not.
    let mut published = 20;
    let mut got = Vec::new();
    eventually(async || {
        published += 1;
        publish(&a, Some("sport"), published).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        got.extend(receiver.received_so_far());
        !got.is_empty()
    })
    .await;
    let ticks = accepted_ticks(&got);
    assert_eq!(ticks.last(), Some(&published), "{ticks:?}");
    assert!(ticks.is_sorted(), "{ticks:?}");
    publish(&a, Some("news"), 1000).await;
    publish(&b, Some("sport"), 1001).await;
    assert_eq!(receiver.next().await.json()["params"]["n"], 1001);

    // B ends it; nothing more reaches the receiver from either node.
    let ended = b
        .call(
            "rpc.webhook.unsubscribe",
            json!({"callback": receiver.url("/hook"), "secret": secret}),
        )
        .await;
    assert_eq!(ended["result"], json!({"unsubscribed": true}));
    for node in [&a, &b] {
        eventually(async || webhook_health(node).await["active"] == 0).await;
    }
    assert_eq!(
        redis.cli(&["HLEN", "c:webhook-seqs"]),
        "0",
        "the subscription is gone from Redis"
    );
    publish(&a, Some("sport"), 1002).await;
    publish(&b, Some("sport"), 1003).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received_so_far().len(), 0);
}

/// A node that joins later reads every subscription kept in Redis (in one
/// round trip), the ended ones left out, and delivers to them.
#[tokio::test]
async fn a_joining_node_reads_every_kept_subscription() {
    let redis = RedisServer::start();
    let a = cluster_node(&redis).await;
    let mut receivers = Vec::new();
    let mut secrets = Vec::new();
    for _ in 0..3 {
        let mut receiver = Receiver::start(Answer::Accept).await;
        let answer = subscribe_to_news(&a, &receiver).await;
        secrets.push(answer["result"]["secret"].clone());
        assert!(receiver.next().await.is_confirmation());
        receivers.push(receiver);
    }
    eventually(async || webhook_health(&a).await["active"] == 3).await;
    let ended = a
        .call(
            "rpc.webhook.unsubscribe",
            json!({"callback": receivers[1].url("/hook"), "secret": secrets[1]}),
        )
        .await;
    assert_eq!(ended["result"], json!({"unsubscribed": true}));

    let b = cluster_node(&redis).await;
    eventually(async || webhook_health(&b).await["active"] == 2).await;
    publish(&b, Some("news"), 1).await;
    for kept in [0, 2] {
        assert_eq!(receivers[kept].next().await.json()["params"]["n"], 1);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receivers[1].received_so_far().len(), 0);
}

/// Two binaries of one cluster, loopback callbacks allowed, fast retries.
async fn start_cluster_node(
    plugins: &std::path::Path,
    redis: &RedisServer,
) -> (tokio::process::Child, String) {
    let redis = redis.url();
    let flags = [&["--redis", &redis][..], &FAST_LOOPBACK_FLAGS].concat();
    start(plugins, &flags).await
}

#[tokio::test]
async fn the_queue_of_a_killed_delivering_node_is_delivered_by_another() {
    let redis = RedisServer::start();
    let plugins = plugins_dir(&["probe"]);
    let mut nodes = vec![
        start_cluster_node(plugins.path(), &redis).await,
        start_cluster_node(plugins.path(), &redis).await,
    ];
    let mut receiver = Receiver::start(Answer::Accept).await;
    let answer = call_binary(
        &nodes[0].1,
        "rpc.webhook.subscribe",
        json!({"callback": receiver.url("/hook"), "topics": ["news"]}),
    )
    .await;
    assert_eq!(answer["result"]["state"], "pending", "{answer}");
    assert!(receiver.next().await.is_confirmation());
    let active = async |address: &str| health(address).await["webhooks"]["active"] == 1;
    within(async {
        while !(active(&nodes[0].1).await && active(&nodes[1].1).await) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let publish = async |address: &str, n: u64| {
        let params = json!({"method": "tick", "params": {"n": n}, "topic": "news"});
        let answer = call_binary(address, "notify", params).await;
        assert!(answer.get("result").is_some(), "{answer}");
    };

    // The receiver goes down; both nodes queue 60 notifications.
    receiver.stop();
    for n in 1..=60 {
        publish(&nodes[(n % 2) as usize].1, n).await;
    }
    let holder = {
        let mut holder = None;
        for (index, (_, address)) in nodes.iter().enumerate() {
            let webhooks: Value = health(address).await["webhooks"].clone();
            assert_eq!(webhooks["queued"], 60, "{webhooks}");
            if webhooks["delivering"] == 1 {
                holder = Some(index);
            }
        }
        holder.expect("one node delivers the subscription")
    };
    let (mut doomed, _) = nodes.remove(holder);
    doomed.start_kill().expect("killing the delivering node");
    within(doomed.wait()).await.expect("waiting for the node");

    // The survivor takes the lease over and delivers everything, in order.
    receiver.restart().await;
    let (survivor, address) = nodes.pop().unwrap();
    let got = receiver.until(|got| accepted_ticks(got).len() >= 60).await;
    assert_eq!(accepted_ticks(&got), (1..=60).collect::<Vec<_>>());
    assert_eq!(health(&address).await["webhooks"]["delivering"], 1);
    publish(&address, 61).await;
    assert_eq!(receiver.next().await.json()["params"]["n"], 61);
    eventually(async || health(&address).await["webhooks"]["queued"] == 0).await;
    let (code, _) = terminate(survivor).await;
    assert_eq!(code, Some(0));
}
