//! Cluster mode: nodes started with the same Redis (a `redis-server` of the
//! test's own) share notifications and plugin state; two clusters on one
//! Redis stay apart; bad Redis settings are clear errors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::binary::{self, assert_refused, run_to_end};
use crate::observability::metrics;
use crate::redis_server::RedisServer;
use crate::sessions::{
    RESUME_REFUSED, assert_closed_by_policy, drop_in_a_burst_and_resume, recoveries,
};
use rpcnode::Config;
use rpcnode::config::Cluster;

use crate::support::{
    SessionClient, TestNode, WsClient, error, eventually, plugin_config, plugins_dir, success,
    within, ws_connect,
};

/// A node of the cluster `name` on `redis`, with the probe plugin.
async fn node(redis: &RedisServer, name: &str) -> TestNode {
    node_with(redis, name, &["probe"], |_| {}).await
}

/// A node of the cluster `name` on `redis`, with `plugins`, configured by
/// `configure`.
async fn node_with(
    redis: &RedisServer,
    name: &str,
    plugins: &[&str],
    configure: impl FnOnce(&mut Config),
) -> TestNode {
    let url = redis.url();
    let name = name.to_owned();
    TestNode::start_with(plugins, move |config| {
        config.cluster = Some(Cluster {
            name,
            ..Cluster::new(url)
        });
        configure(config);
    })
    .await
}

/// Three nodes of one cluster.
async fn three_nodes(redis: &RedisServer) -> [TestNode; 3] {
    [
        node(redis, "c").await,
        node(redis, "c").await,
        node(redis, "c").await,
    ]
}

/// The probe's `notify` on `node`: a broadcast, or to `topic`, or to
/// `client_id`.
async fn notify(node: &TestNode, params: Value) -> Value {
    node.call("notify", params).await["result"].clone()
}

/// The probe on `node` sends `hello {n}` to client `id`, wherever it is.
async fn hello_to(node: &TestNode, id: &str, n: u64) {
    let params = json!({"method": "hello", "params": {"n": n}, "client_id": id});
    assert_eq!(notify(node, params).await, json!({"sent": true}));
}

async fn hello(ws: &mut WsClient) -> Value {
    let message = ws.recv().await;
    assert_eq!(message["method"], "hello", "{message}");
    message["params"].clone()
}

#[tokio::test]
async fn broadcasts_topics_and_targeted_notifications_reach_every_node_once() {
    let redis = RedisServer::start();
    let [a, b, c] = three_nodes(&redis).await;
    let mut on_a = a.ws().await;
    let mut on_b = b.ws().await;
    let mut on_c = c.ws().await;
    for ws in [&mut on_a, &mut on_c] {
        let answer = ws
            .call("rpc.subscribe", json!({"topics": ["news"]}), 1)
            .await;
        assert_eq!(answer, success(json!({"subscribed": ["news"]}), json!(1)));
    }

    // A broadcast from B: every client of every node, once. The count is
    // B's own clients.
    let sent = notify(&b, json!({"method": "hello", "params": {"n": 1}})).await;
    assert_eq!(sent, json!({"queued": 1}));
    for ws in [&mut on_a, &mut on_b, &mut on_c] {
        assert_eq!(hello(ws).await, json!({"n": 1}));
        ws.assert_quiet().await;
    }

    // A publication on B: the subscribers on A and C only.
    let sent = notify(
        &b,
        json!({"method": "hello", "params": {"n": 2}, "topic": "news"}),
    )
    .await;
    assert_eq!(sent, json!({"published": 0}));
    for ws in [&mut on_a, &mut on_c] {
        assert_eq!(hello(ws).await, json!({"n": 2}));
    }
    for ws in [&mut on_a, &mut on_b, &mut on_c] {
        ws.assert_quiet().await;
    }

    // From C to a client of A.
    let id = on_a.client_id().await;
    let sent = notify(
        &c,
        json!({"method": "hello", "params": {"n": 3}, "client_id": id}),
    )
    .await;
    assert_eq!(sent, json!({"sent": true}));
    assert_eq!(hello(&mut on_a).await, json!({"n": 3}));
    for ws in [&mut on_a, &mut on_b, &mut on_c] {
        ws.assert_quiet().await;
    }
}

#[tokio::test]
async fn each_stream_keeps_its_order_across_nodes() {
    let redis = RedisServer::start();
    let [a, b, c] = three_nodes(&redis).await;
    let mut clients = [b.ws().await, c.ws().await];
    const COUNT: u64 = 300;
    let answer = a.call("burst", json!({"count": COUNT})).await;
    assert_eq!(answer["result"], json!({"queued": 0}));
    for ws in &mut clients {
        for n in 0..COUNT {
            let message = ws.recv().await;
            assert_eq!(
                (&message["method"], &message["params"]["n"]),
                (&json!("seq"), &json!(n))
            );
        }
        ws.assert_quiet().await;
    }
}

/// A session client of A drops in a burst that B sends and resumes on C.
#[tokio::test]
async fn a_session_client_resumes_on_another_node_with_what_was_sent_while_it_was_away() {
    let redis = RedisServer::start();
    let [a, b, c] = three_nodes(&redis).await;
    drop_in_a_burst_and_resume(&a, &b, &c).await;
}

/// The session clients of a node killed with kill -9 resume on another
/// node with everything sent to them while they were away, on each of
/// their streams, and go on receiving there.
#[tokio::test]
async fn session_clients_of_a_killed_node_resume_on_another() {
    let redis = RedisServer::start();
    let dir = plugins_dir(&["probe"]);
    let (mut doomed, address) = binary::start(dir.path(), &["--redis", &redis.url()]).await;
    let survivor = node(&redis, "rpcnode").await;
    let mut client = SessionClient::open(address.trim_start_matches("http://")).await;
    let answer = client
        .ws
        .call("rpc.subscribe", json!({"topics": ["t"]}), 1)
        .await;
    client
        .positions
        .insert("topic:t".into(), answer["result"]["streams"][0].clone());
    notify(&survivor, json!({"method": "hello", "params": {"n": 1}})).await;
    assert_eq!(client.next().await["params"], json!({"n": 1}));

    doomed.start_kill().expect("killing the node");
    within(doomed.wait()).await.expect("waiting for the node");
    let id = client.client_id.clone();
    let away = [
        json!({"method": "hello", "params": {"n": 2}}),
        json!({"method": "hello", "params": {"n": 3}, "topic": "t"}),
        json!({"method": "hello", "params": {"n": 4}, "client_id": id}),
    ];
    let sent: Vec<Value> = join_all(away.map(|params| notify(&survivor, params))).await;
    assert_eq!(
        sent,
        [
            json!({"queued": 0}),
            json!({"published": 0}),
            json!({"sent": true})
        ]
    );

    let answer = client
        .resume(&survivor.server.local_addr().to_string())
        .await;
    assert_eq!(answer["result"]["resumed"], true, "{answer}");
    let recovered: Vec<(String, bool, u64)> = recoveries(&answer)
        .into_iter()
        .map(|(stream, (_, recovered, missed))| (stream, recovered, missed))
        .collect();
    assert_eq!(
        recovered,
        [
            ("broadcast".to_owned(), true, 1),
            (format!("client:{id}"), true, 1),
            ("topic:t".to_owned(), true, 1),
        ]
    );
    let mut missed = Vec::new();
    for _ in 0..3 {
        let message = client.next().await;
        missed.push((
            message["position"]["stream"].clone(),
            message["params"]["n"].clone(),
        ));
    }
    missed.sort_by_key(|(_, n)| n.as_u64());
    assert_eq!(
        missed,
        [
            (json!("broadcast"), json!(2)),
            (json!("topic:t"), json!(3)),
            (json!(format!("client:{id}")), json!(4)),
        ]
    );
    client.ws.assert_quiet().await;

    // Its topic and its client stream live on, on the survivor.
    notify(
        &survivor,
        json!({"method": "hello", "params": {"n": 5}, "topic": "t"}),
    )
    .await;
    assert_eq!(client.next().await["params"], json!({"n": 5}));
}

/// A session that nobody resumes after its node died ends a session TTL
/// later, on a node that survived: its keys and its client stream leave
/// Redis, and its token no longer resumes it.
#[tokio::test]
async fn sessions_of_a_dead_node_end_after_their_ttl() {
    let redis = RedisServer::start();
    let dir = plugins_dir(&["probe"]);
    let extra = ["--redis", &redis.url(), "--session-ttl", "1"];
    let (mut doomed, address) = binary::start(dir.path(), &extra).await;
    let survivor = node(&redis, "rpcnode").await;
    let mut client = SessionClient::open(address.trim_start_matches("http://")).await;
    let id = client.client_id.clone();
    hello_to(&survivor, &id, 1).await;
    assert_eq!(client.next().await["params"], json!({"n": 1}));
    let keys = [
        format!("rpcnode:session:{id}"),
        format!("rpcnode:stream:client:{id}"),
    ];
    for key in &keys {
        assert_eq!(redis.cli(&["EXISTS", key]).trim(), "1", "{key}");
    }

    doomed.start_kill().expect("killing the node");
    within(doomed.wait()).await.expect("waiting for the node");
    // One second of TTL and the three-second margin for a node's refresh.
    eventually(async || {
        keys.iter()
            .all(|key| redis.cli(&["EXISTS", key]).trim() == "0")
    })
    .await;
    assert_eq!(
        client
            .resume(&survivor.server.local_addr().to_string())
            .await,
        error(-32005, RESUME_REFUSED, json!(0))
    );
}

/// A session resumed on B while its connection to A still stands: A closes
/// that connection within a second or two, and what A sends to the client
/// reaches it on B. A wrong token on B takes nothing.
#[tokio::test]
async fn a_session_resumed_elsewhere_leaves_its_old_node() {
    let redis = RedisServer::start();
    let a = node(&redis, "c").await;
    let b = node(&redis, "c").await;
    let mut first = a.session().await;
    let b_address = b.server.local_addr().to_string();
    let mut thief = SessionClient {
        token: "0".repeat(64),
        ..SessionClient::open(&b_address).await
    };
    thief.client_id = first.client_id.clone();
    assert_eq!(
        thief.resume(&b_address).await,
        error(-32005, RESUME_REFUSED, json!(0))
    );

    let mut second = SessionClient {
        ws: b.ws().await,
        client_id: first.client_id.clone(),
        token: first.token.clone(),
        positions: first.positions.clone(),
    };
    let answer = second.resume(&b_address).await;
    assert_eq!(answer["result"]["resumed"], true, "{answer}");
    assert_closed_by_policy(&mut first.ws, "the session was resumed on another node").await;
    let id = second.client_id.clone();
    hello_to(&a, &id, 1).await;
    assert_eq!(second.next().await["params"], json!({"n": 1}));
    // The session lives on: no node ran `on-disconnect` for it.
    let log = a.hook_log().await;
    let (started, ended) = (format!("connect {id} "), format!("disconnect {id} "));
    assert!(
        log.iter().any(|entry| entry.starts_with(&started)),
        "{log:?}"
    );
    assert!(
        !log.iter().any(|entry| entry.starts_with(&ended)),
        "{log:?}"
    );
}

/// Three nodes run the heartbeat timer (every 300 ms); each tick runs on
/// one of them, so a client sees one heartbeat per interval, not three.
#[tokio::test]
async fn a_timer_fires_once_per_interval_in_the_cluster() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let configure = plugin_config("heartbeat", "[config]\ninterval_ms = 300\n");
        nodes.push(node_with(&redis, "c", &["heartbeat"], configure).await);
    }
    let mut ws = nodes[0].ws().await;
    let mut stamps = Vec::new();
    for _ in 0..6 {
        let beat = ws.recv().await;
        assert_eq!(beat["method"], "heartbeat");
        stamps.push(beat["params"]["timestamp"].as_f64().unwrap());
    }
    for pair in stamps.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((0.15..0.6).contains(&gap), "heartbeats {gap} s apart");
    }
}

/// The nodes' channel connections are cut and Redis takes no new
/// connections for a while: what is broadcast meanwhile reaches every
/// client anyway once the channel is back, from history, in order, once.
#[tokio::test]
async fn a_node_that_loses_its_channel_catches_up_from_history() {
    let redis = RedisServer::start();
    let [a, b, _c] = three_nodes(&redis).await;
    let mut on_b = b.ws().await;
    let mut admin = redis.admin();
    let cut = admin.send(
        &[
            "MULTI",
            "CONFIG SET maxclients 1",
            "CLIENT KILL TYPE pubsub",
            "EXEC",
        ],
        6,
    );
    // Each node has two subscribed connections: notifications and webhooks.
    assert!(cut.ends_with("*2\r\n+OK\r\n:6\r\n"), "{cut:?}");
    eventually(async || b.get_json("/health").await["status"] == "degraded").await;
    const COUNT: u64 = 200;
    let answer = a.call("burst", json!({"count": COUNT})).await;
    assert_eq!(answer["result"], json!({"queued": 0}));
    on_b.assert_quiet().await;

    assert_eq!(admin.send(&["CONFIG SET maxclients 10000"], 1), "+OK\r\n");
    for n in 0..COUNT {
        let message = on_b.recv().await;
        assert_eq!(message["params"]["n"], n, "{message}");
    }
    on_b.assert_quiet().await;
    let metrics = metrics(&b).await;
    for line in [
        "rpcnode_redis_connected 1\n",
        "rpcnode_redis_disconnects_total 1\n",
        "rpcnode_redis_notifications_refetched_total 200\n",
        "rpcnode_redis_notifications_missed_total 0\n",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

/// Redis goes away under load and comes back empty: `/health` says
/// `degraded` and then `ok`, calls that need Redis fail with an error
/// within the request timeout and the others keep working, and the
/// nodes deliver across each other again.
#[tokio::test]
async fn a_redis_outage_degrades_the_nodes_and_they_recover() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "c").await;
    let b = node(&redis, "c").await;
    let mut on_b = b.ws().await;
    assert_eq!(a.get_json("/health").await["redis"], "ok");

    redis.kill();
    eventually(async || a.get_json("/health").await["status"] == "degraded").await;
    let health = a.get_json("/health").await;
    assert_eq!(
        health["redis"], "lost the connection to Redis; reconnecting",
        "{health}"
    );
    // No Redis needed: answered as usual.
    assert_eq!(
        a.call("echo", json!([1])).await["result"]["params"],
        json!([1])
    );
    // Redis needed: an error, well within the request timeout.
    let started = Instant::now();
    let answer = a.call("incr", json!({"key": "n"})).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|text| text.contains("the store failed: redis")),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    redis.restart();
    eventually(async || a.get_json("/health").await["status"] == "ok").await;
    eventually(async || b.get_json("/health").await["status"] == "ok").await;
    assert_eq!(a.call("incr", json!({"key": "n"})).await["result"], 1);
    notify(&a, json!({"method": "hello", "params": {"n": 1}})).await;
    assert_eq!(hello(&mut on_b).await, json!({"n": 1}));
    on_b.assert_quiet().await;
}

#[tokio::test]
async fn two_clusters_on_one_redis_stay_apart() {
    let redis = RedisServer::start();
    let red = node(&redis, "red").await;
    let blue = node(&redis, "blue").await;
    let mut on_blue = blue.ws().await;
    notify(&red, json!({"method": "hello", "params": {}})).await;
    assert_eq!(red.call("incr", json!({"key": "n"})).await["result"], 1);
    assert_eq!(blue.call("incr", json!({"key": "n"})).await["result"], 1);
    on_blue.assert_quiet().await;
    assert!(redis.cli(&["KEYS", "red:*"]).contains("red:state:probe"));
}

/// Two real processes, four clients, 500 increments each, spread over both:
/// every value from 1 to 2,000 is answered once, and the state is 2,000.
#[tokio::test]
async fn increments_across_two_processes_are_exact() {
    let redis = RedisServer::start();
    let url = redis.url();
    let dir = plugins_dir(&["probe"]);
    let mut addresses = Vec::new();
    let mut processes = Vec::new();
    for _ in 0..2 {
        let (process, address) = binary::start(dir.path(), &["--redis", &url]).await;
        processes.push(process);
        addresses.push(address);
    }
    let body = r#"{"jsonrpc":"2.0","method":"incr","params":{"key":"hits"},"id":1}"#;
    let clients = (0..4).map(|client| {
        let addresses = addresses.clone();
        async move {
            let mut answers = Vec::new();
            for n in 0..500 {
                let address = &addresses[(client + n) % 2];
                let answer = binary::call(address, body, &[]).await;
                answers.push(answer["result"].as_i64().expect("a count"));
            }
            answers
        }
    });
    let answered: BTreeSet<i64> = within(join_all(clients))
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(answered, (1..=2000).collect());
    let read = r#"{"jsonrpc":"2.0","method":"state_read","params":{"key":"hits"},"id":1}"#;
    for address in &addresses {
        assert_eq!(binary::call(address, read, &[]).await["result"], 2000);
    }
}

/// What a node accepted stays accepted when it is killed (kill -9) right
/// after answering: a broadcast it made reaches the other node's clients,
/// and the state it wrote is read on the other node.
#[tokio::test]
async fn what_a_killed_node_accepted_reaches_the_others() {
    let redis = RedisServer::start();
    let dir = plugins_dir(&["probe"]);
    let (mut doomed, address) = binary::start(dir.path(), &["--redis", &redis.url()]).await;
    let survivor = node(&redis, "rpcnode").await;
    let mut on_survivor = survivor.ws().await;
    let put = r#"{"jsonrpc":"2.0","method":"put","params":{"key":"k","value":"kept"},"id":1}"#;
    assert_eq!(binary::call(&address, put, &[]).await["result"], true);
    let broadcast = r#"{"jsonrpc":"2.0","method":"notify","params":{"method":"hello","params":{"n":1}},"id":2}"#;
    assert_eq!(
        binary::call(&address, broadcast, &[]).await["result"],
        json!({"queued": 0})
    );
    doomed.start_kill().expect("killing the node");
    within(doomed.wait()).await.expect("waiting for the node");
    assert_eq!(hello(&mut on_survivor).await, json!({"n": 1}));
    assert_eq!(
        survivor.call("state_read", json!({"key": "k"})).await["result"],
        "kept"
    );
}

/// `clients` lists the clients of every node; those of a node killed
/// without a goodbye drop out within its presence TTL.
#[tokio::test]
async fn clients_are_listed_cluster_wide_until_their_node_dies() {
    let redis = RedisServer::start();
    let dir = plugins_dir(&["probe"]);
    let extra = ["--redis", &redis.url(), "--presence-ttl", "2"];
    let (mut doomed, address) = binary::start(dir.path(), &extra).await;
    let b = node(&redis, "rpcnode").await;
    let c = node(&redis, "rpcnode").await;
    let ws_url = format!("{}/ws", address.replace("http://", "ws://"));
    let mut on_doomed = ws_connect(&ws_url, &[]).await;
    let mut on_b = b.ws().await;
    let mut everyone = vec![on_doomed.client_id().await, on_b.client_id().await];
    everyone.sort();
    let listed =
        async |node: &TestNode| node.call("list_clients", json!([])).await["result"].clone();
    eventually(async || listed(&c).await == json!(everyone)).await;

    doomed.start_kill().expect("killing the node");
    within(doomed.wait()).await.expect("waiting for the node");
    let survivor = on_b.client_id().await;
    eventually(async || listed(&c).await == json!([survivor])).await;
}

/// `client-get`, `client-set` and `subscribers` answer for the clients of
/// every node: a plugin on B reads and changes the metadata of a client of
/// A, and each node lists a topic's subscribers on both.
#[tokio::test]
async fn client_metadata_and_subscribers_answer_for_the_whole_cluster() {
    let redis = RedisServer::start();
    let a = node(&redis, "c").await;
    let b = node(&redis, "c").await;
    let mut on_a = a.ws().await;
    let mut on_b = b.ws().await;
    for ws in [&mut on_a, &mut on_b] {
        let answer = ws
            .call("rpc.subscribe", json!({"topics": ["news"]}), 1)
            .await;
        assert_eq!(answer, success(json!({"subscribed": ["news"]}), json!(1)));
    }
    let x = on_a.client_id().await;
    let y = on_b.client_id().await;
    let meta = async |node: &TestNode, params: Value| {
        node.call("client_meta", params).await["result"].clone()
    };

    // Set on A, read on B once A has published its clients.
    let role = json!({"client_id": x, "key": "role"});
    let set_role = json!({"client_id": x, "key": "role", "value": "admin"});
    assert_eq!(meta(&a, set_role).await, json!("admin"));
    eventually(async || meta(&b, role.clone()).await == json!("admin")).await;

    // Set on B for A's client: A makes the change.
    let set_tier = json!({"client_id": x, "key": "tier", "value": 3});
    let answer = meta(&b, set_tier).await;
    assert!(answer.get("error").is_none(), "{answer}");
    let tier = json!({"client_id": x, "key": "tier"});
    eventually(async || meta(&a, tier.clone()).await == json!(3)).await;
    eventually(async || meta(&b, tier.clone()).await == json!(3)).await;

    // A client no node has.
    let nobody = json!({"client_id": "ws_1_1_00000000", "key": "k", "value": 1});
    assert_eq!(
        meta(&b, nobody).await,
        json!({"error": "no connected client \"ws_1_1_00000000\""})
    );
    assert_eq!(
        meta(&b, json!({"client_id": "ws_1_1_00000000", "key": "k"})).await,
        Value::Null
    );

    let mut both = vec![x, y];
    both.sort();
    for node in [&a, &b] {
        let listed = async || {
            node.call("topic_subscribers", json!({"topic": "news"}))
                .await["result"]
                .clone()
        };
        eventually(async || listed().await == json!(both)).await;
    }
}

#[tokio::test]
async fn state_limits_and_errors_hold_through_redis() {
    let redis = RedisServer::start();
    let node = node(&redis, "c").await;
    let put = |value: Value| node.call("put", json!({"key": "k", "value": value}));
    assert_eq!(put(json!({"a": [1, 2]})).await["result"], true);
    assert_eq!(
        node.call("state_read", json!({"key": "k"})).await["result"],
        json!({"a": [1, 2]})
    );
    let answer = node.call("incr", json!({"key": "k"})).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r#"value at "k" is not an integer"#),
        "{answer}"
    );
    put(json!(i64::MAX)).await;
    let answer = node.call("incr", json!({"key": "k"})).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r#"increment overflows at "k""#),
        "{answer}"
    );
    let big = "x".repeat(rpcnode::store::MAX_VALUE_BYTES);
    let answer = put(json!(big)).await;
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeds the limit of 1048576 bytes"),
        "{answer}"
    );
}

#[tokio::test]
async fn bad_redis_settings_are_clear_errors() {
    let dir = plugins_dir(&[]);
    let plugins = dir.path().to_str().unwrap();
    let refused = [
        (
            vec!["--redis", "localhost:6379"],
            "redis_url localhost:6379 is not a Redis URL: use redis://HOST[:PORT][/DB] or unix:///PATH",
        ),
        (
            vec!["--redis", "http://localhost"],
            "redis_url http://localhost is not a Redis URL",
        ),
        (
            vec!["--redis", "rediss://u:secret@localhost"],
            "redis_url rediss://u:***@localhost: TLS to Redis (rediss://) is not supported",
        ),
        (
            vec!["--redis", "redis://localhost", "--cluster-name", "a b"],
            "cluster_name must be 1 to 64 letters, digits, '-', '_' or '.', not \"a b\"",
        ),
        (
            vec!["--redis", "redis://localhost", "--presence-ttl", "1"],
            "presence_ttl must be at least 2 seconds (nodes refresh every second), not 1",
        ),
    ];
    assert_refused(plugins, refused).await;
    let conflicts = [
        (
            vec!["--cluster-name", "x"],
            "cluster_name (x) is set without redis_url",
        ),
        (
            vec!["--redis", "redis://localhost", "--data-dir", "/tmp/d"],
            "data_dir (/tmp/d) is set with redis_url: a cluster node keeps its data in Redis, not in a folder",
        ),
    ];
    for (flags, message) in conflicts {
        let (code, stderr) = run_to_end(&[&["--plugins", plugins], &flags[..]].concat()).await;
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
    }

    // Nothing listens there: the node does not start, and says where it looked.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let (code, stderr) = run_to_end(&["--plugins", plugins, "--redis", &url]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach Redis at {url}: ")),
        "{stderr}"
    );
}
