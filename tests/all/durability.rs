//! What the real binary keeps in its data folder: acknowledged plugin state
//! and sessions with their streams' history survive `kill -9` and SIGTERM;
//! the folder is locked against a second node; a corrupt store is a startup
//! error naming the file; memory only is explicit.

use std::path::Path;

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::process::Child;

use crate::binary::{run_to_end, start, terminate};
use crate::support::{SessionClient, plugins_dir, success, within};

/// POST a call to `address`; the whole response.
async fn call(client: &reqwest::Client, address: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let response = within(client.post(address).json(&body).send())
        .await
        .unwrap();
    within(response.json()).await.unwrap()
}

/// Kill the process with SIGKILL and wait for it to be gone.
async fn kill_9(mut child: Child) {
    child.start_kill().unwrap();
    within(child.wait()).await.unwrap();
}

async fn start_on(plugins: &Path, data: &Path) -> (Child, String) {
    start(plugins, &["--data-dir", data.to_str().unwrap()]).await
}

/// Run the binary on `plugins` and `data` to its end (it must fail to
/// start); its exit code and stderr.
async fn refused_on(plugins: &Path, data: &Path) -> (Option<i32>, String) {
    let (plugins, data) = (plugins.to_str().unwrap(), data.to_str().unwrap());
    run_to_end(&["--plugins", plugins, "--port", "0", "--data-dir", data]).await
}

#[tokio::test]
async fn acknowledged_state_survives_kill_9() {
    let plugins = plugins_dir(&["probe"]);
    let data = tempfile::tempdir().unwrap();
    let (child, address) = start_on(plugins.path(), data.path()).await;
    let http = reqwest::Client::new();

    // Eight clients at once, each counting on a key of its own and on a
    // shared one, and storing values; every write answered is acknowledged.
    const CLIENTS: usize = 8;
    const WRITES: usize = 40;
    let clients = (0..CLIENTS).map(|client| {
        let (http, address) = (http.clone(), address.clone());
        async move {
            for write in 1..=WRITES {
                let own = call(
                    &http,
                    &address,
                    "incr",
                    json!({"key": format!("own{client}")}),
                )
                .await;
                assert_eq!(own, success(json!(write), json!(1)));
                let shared = call(&http, &address, "incr", json!({"key": "shared"})).await;
                assert!(shared["result"].is_i64(), "{shared}");
                let key = format!("value{client}_{write}");
                let put = call(
                    &http,
                    &address,
                    "put",
                    json!({"key": key, "value": {"w": write}}),
                )
                .await;
                assert_eq!(put, success(json!(true), json!(1)));
            }
        }
    });
    join_all(clients).await;
    kill_9(child).await;

    let (child, address) = start_on(plugins.path(), data.path()).await;
    let read = |key: String| call(&http, &address, "state_read", json!({"key": key}));
    assert_eq!(
        read("shared".into()).await["result"],
        json!(CLIENTS * WRITES)
    );
    for client in 0..CLIENTS {
        assert_eq!(read(format!("own{client}")).await["result"], json!(WRITES));
        for write in 1..=WRITES {
            let value = read(format!("value{client}_{write}")).await;
            assert_eq!(value["result"], json!({"w": write}));
        }
    }
    let (code, log) = terminate(child).await;
    assert_eq!(code, Some(0), "{log}");
}

/// A session client takes a role (client metadata and a topic, through a
/// plugin) and receives a broadcast, then the server keeps sending while the
/// client stops reading; `stop` ends the server; after a restart on the same
/// folder more is sent, and the client resumes with all of it, its role and
/// its topic.
async fn resume_across_a_restart(stop: impl AsyncFnOnce(Child)) {
    let plugins = plugins_dir(&["probe", "roles"]);
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let (child, address) = start_on(plugins.path(), data.path()).await;
    let host = address.trim_start_matches("http://").to_owned();
    let mut client = SessionClient::open(&host).await;
    let id = client.client_id.clone();
    let broadcast = |n: u64| json!({"method": "b", "params": {"n": n}});
    let to_client = |n: u64| json!({"method": "c", "params": {"n": n}, "client_id": id});

    let role = client
        .ws
        .call("authenticate", json!({"role": "admin"}), 1)
        .await;
    assert_eq!(role["result"], json!({"success": true, "role": "admin"}));
    call(&http, &address, "notify", broadcast(0)).await;
    assert_eq!(client.next().await["params"], json!({"n": 0}));
    // Acknowledged before the server goes down, never read by the client.
    for n in 1..=3 {
        call(&http, &address, "notify", broadcast(n)).await;
    }
    assert_eq!(
        call(&http, &address, "notify", to_client(1)).await["result"],
        json!({"sent": true})
    );
    stop(child).await;

    let (child, address) = start_on(plugins.path(), data.path()).await;
    let host = address.trim_start_matches("http://").to_owned();
    // The session was restored, away: it is a client, and what is sent to
    // it is kept.
    assert_eq!(
        call(&http, &address, "list_clients", json!([])).await["result"],
        json!([id])
    );
    assert_eq!(
        call(&http, &address, "notify", to_client(2)).await["result"],
        json!({"sent": true})
    );
    call(&http, &address, "notify", broadcast(4)).await;

    let answer = client.resume(&host).await;
    assert_eq!(answer["result"]["resumed"], true, "{answer}");
    let streams = answer["result"]["streams"].as_array().unwrap();
    assert!(
        streams.iter().all(|stream| stream["recovered"] == true),
        "{answer}"
    );
    let mut received = Vec::new();
    for _ in 0..6 {
        let message = client.next().await;
        received.push((message["method"].clone(), message["params"]["n"].clone()));
    }
    received.sort_by_key(|(method, n)| (method.to_string(), n.as_u64()));
    let expected: Vec<(Value, Value)> =
        [("b", 1), ("b", 2), ("b", 3), ("b", 4), ("c", 1), ("c", 2)]
            .into_iter()
            .map(|(method, n)| (json!(method), json!(n)))
            .collect();
    assert_eq!(received, expected);
    client.ws.assert_quiet().await;
    // Its metadata and the topic the plugin subscribed it to came back too.
    let action = client
        .ws
        .call("adminAction", json!({"action": "x"}), 2)
        .await;
    assert_eq!(
        action["result"],
        json!({"success": true, "users_notified": 0, "admins_notified": 1})
    );
    let mut log = client.next().await;
    assert!(log["params"]["timestamp"].take().is_f64(), "{log}");
    assert_eq!(
        log["params"],
        json!({"action": "x", "timestamp": null, "admin": id})
    );
    assert_eq!(log["position"]["stream"], "topic:role:admin");
    let (code, log) = terminate(child).await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn a_session_resumes_after_kill_9() {
    resume_across_a_restart(kill_9).await;
}

#[tokio::test]
async fn a_session_resumes_after_sigterm() {
    resume_across_a_restart(async |child| {
        let (code, log) = terminate(child).await;
        assert_eq!(code, Some(0), "{log}");
    })
    .await;
}

#[tokio::test]
async fn a_data_folder_serves_one_node_at_a_time() {
    let plugins = plugins_dir(&["calculator"]);
    let data = tempfile::tempdir().unwrap();
    let (child, _) = start_on(plugins.path(), data.path()).await;
    let folder = data.path().to_str().unwrap();
    let (code, stderr) = refused_on(plugins.path(), data.path()).await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: the data folder {folder} is in use by another rpcnode process (it holds \
             {folder}/LOCK); stop that process, or pass --data-dir to give this node a folder \
             of its own"
        )
    );
    kill_9(child).await;
    // The lock goes with the process, however it ends.
    let (child, _) = start_on(plugins.path(), data.path()).await;
    terminate(child).await;
}

#[tokio::test]
async fn a_corrupt_store_is_a_startup_error_naming_the_file() {
    let plugins = plugins_dir(&["probe"]);
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("rpcnode.db");
    let refused = async || {
        let (code, stderr) = refused_on(plugins.path(), data.path()).await;
        assert_eq!(code, Some(1), "{stderr}");
        stderr
    };

    std::fs::write(&file, vec![0x5a; 8192]).unwrap();
    let stderr = refused().await;
    let expected = format!(
        "error: the store {} cannot be used: file is not a database. Restore it from a backup, \
         or move it (with its -wal and -shm files) away to start with an empty store",
        file.display()
    );
    assert_eq!(stderr.trim_end(), expected);
    // The file is left as it was for whoever looks into it.
    assert_eq!(std::fs::read(&file).unwrap(), vec![0x5a; 8192]);

    // A real store, with a page overwritten in the middle.
    std::fs::remove_file(&file).unwrap();
    let (child, address) = start_on(plugins.path(), data.path()).await;
    let http = reqwest::Client::new();
    for n in 0..200 {
        let key = format!("key{n}");
        call(
            &http,
            &address,
            "put",
            json!({"key": key, "value": "x".repeat(200)}),
        )
        .await;
    }
    terminate(child).await;
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 4 * 4096, "{} bytes", bytes.len());
    bytes[2 * 4096..3 * 4096].fill(0xa5);
    std::fs::write(&file, &bytes).unwrap();
    let stderr = refused().await;
    assert!(
        stderr.starts_with(&format!(
            "error: the store {} cannot be used: ",
            file.display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn memory_only_is_explicit_and_keeps_nothing() {
    let plugins = plugins_dir(&["probe"]);
    let http = reqwest::Client::new();
    let (child, address) = start(plugins.path(), &["--in-memory"]).await;
    call(&http, &address, "put", json!({"key": "k", "value": 1})).await;
    terminate(child).await;
    let (child, address) = start(plugins.path(), &["--in-memory"]).await;
    assert_eq!(
        call(&http, &address, "state_read", json!({"key": "k"})).await["result"],
        Value::Null
    );
    terminate(child).await;

    let (code, stderr) = run_to_end(&[
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--in-memory",
        "--data-dir",
        "/tmp/x",
    ])
    .await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim_end(),
        "error: in_memory and data_dir (/tmp/x) are both set: keep data in memory or in a \
         folder, not both"
    );
}
