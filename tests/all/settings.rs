//! Configuration from a TOML file, flags and `RPCNODE_*` environment
//! variables, in that order of precedence, with errors that name the key and
//! where it came from; graceful shutdown under load; JSON logs.

use serde_json::{Value, json};

use crate::binary::{call, health, rpcnode, run_to_end, start, start_with_env, terminate};
use crate::support::{eventually, plugins_dir, success, within};

#[tokio::test]
async fn the_file_flags_and_environment_layer_in_that_order() {
    let dir = plugins_dir(&["calculator", "audit"]);
    let file = dir.path().join("rpcnode.toml");
    std::fs::write(
        &file,
        "name = \"from-file\"\nmax_batch_size = 1\nwatch = false\n\n[plugin.audit.config]\ndeny_methods = [\"multiply\"]\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();

    let (child, address) = start(dir.path(), &["--config", config]).await;
    assert_eq!(health(&address).await["node"], "from-file");
    // The [plugin.audit] section configures audit (no audit.toml here).
    let denied = call(
        &address,
        r#"{"jsonrpc":"2.0","method":"multiply","params":[2,3],"id":1}"#,
        &[],
    )
    .await;
    assert_eq!(denied["error"]["code"], 403);
    let batch = call(&address, r#"[{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1},{"jsonrpc":"2.0","method":"add","params":[1,1],"id":2}]"#, &[]).await;
    assert_eq!(
        batch["error"]["message"],
        "Invalid Request: batch of 2 requests exceeds the limit of 1"
    );
    terminate(child).await;

    let (child, address) = start(dir.path(), &["--config", config, "--name", "from-flag"]).await;
    assert_eq!(health(&address).await["node"], "from-flag");
    terminate(child).await;

    let env = [
        ("RPCNODE_NAME", "from-env"),
        ("RPCNODE_MAX_BATCH_SIZE", "5"),
    ];
    let (child, address) = start_with_env(
        dir.path(),
        &["--config", config, "--name", "from-flag"],
        &env,
    )
    .await;
    assert_eq!(health(&address).await["node"], "from-env");
    let batch = call(&address, r#"[{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1},{"jsonrpc":"2.0","method":"add","params":[1,1],"id":2}]"#, &[]).await;
    assert_eq!(batch[1], success(json!({"sum": 2}), json!(2)));
    terminate(child).await;
}

#[tokio::test]
async fn unknown_keys_and_bad_values_name_the_key_and_the_source() {
    let dir = plugins_dir(&[]);
    let plugins = dir.path().to_str().unwrap().to_owned();
    let file = dir.path().join("bad.toml");
    let config = file.to_str().unwrap().to_owned();

    std::fs::write(&file, "prot = 8000\n").unwrap();
    let (code, stderr) = run_to_end(&["--plugins", &plugins, "--config", &config]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!("in config file {config}"))
            && stderr.contains("unknown field `prot`"),
        "{stderr}"
    );

    std::fs::write(&file, "request_timeout = -1\n").unwrap();
    let (_, stderr) = run_to_end(&["--plugins", &plugins, "--config", &config]).await;
    assert!(
        stderr.contains(&format!(
            "in config file {config}: request_timeout must be a number of seconds"
        )),
        "{stderr}"
    );

    std::fs::write(&file, "port = \"eighty\"\n").unwrap();
    let (_, stderr) = run_to_end(&["--plugins", &plugins, "--config", &config]).await;
    assert!(
        stderr.contains(&format!("in config file {config}")) && stderr.contains("invalid type"),
        "{stderr}"
    );

    let (code, stderr) =
        run_to_end(&["--plugins", &plugins, "--config", "/no/such/file.toml"]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("reading config file /no/such/file.toml"),
        "{stderr}"
    );

    let output = within(
        rpcnode()
            .args(["--plugins", &plugins])
            .env("RPCNODE_PORTT", "1")
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("in environment variables RPCNODE_PORTT")
            && stderr.contains("unknown field `portt`"),
        "{stderr}"
    );

    let output = within(
        rpcnode()
            .args(["--plugins", &plugins])
            .env("RPCNODE_WS_QUEUE_CAPACITY", "0")
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in environment variables RPCNODE_WS_QUEUE_CAPACITY: ws_queue_capacity must be at least 1"), "{stderr}");

    let (code, stderr) = run_to_end(&["--plugins", &plugins, "--tls-cert", "/x.pem"]).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("TLS needs both --tls-cert and --tls-key"),
        "{stderr}"
    );
}

#[tokio::test]
async fn data_and_session_settings_are_checked_and_named_everywhere() {
    let dir = plugins_dir(&["calculator"]);
    let plugins = dir.path().to_str().unwrap().to_owned();
    let (code, stderr) = run_to_end(&["--plugins", &plugins, "--session-ttl", "0"]).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim_end(),
        "error: in the command-line flags: session_ttl must be a number of seconds above 0 and \
         at most 86400, not 0"
    );
    let (code, stderr) = run_to_end(&["--plugins", &plugins, "--history-size", "2000000"]).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim_end(),
        "error: in the command-line flags: history_size must be at most 1000000, not 2000000"
    );
    let (code, stderr) = run_to_end(&["--plugins", &plugins, "--history-size", "many"]).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("invalid value 'many' for '--history-size <N>'"),
        "{stderr}"
    );
    assert_eq!(
        refused_with_env(&plugins, "RPCNODE_MAX_SESSIONS", "0").await,
        "error: in environment variables RPCNODE_MAX_SESSIONS: max_sessions must be at least 1"
    );
    let (code, stderr) = run_to_end(&[
        "--plugins",
        &plugins,
        "--port",
        "0",
        "--data-dir",
        "/proc/no-data-here",
    ])
    .await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with("error: creating the data folder /proc/no-data-here: "),
        "{stderr}"
    );

    // The data folder from the environment; the node creates it, private.
    let data = tempfile::tempdir().unwrap();
    let folder = data.path().join("node");
    let (child, _) = start_with_env(
        dir.path(),
        &[],
        &[("RPCNODE_DATA_DIR", folder.to_str().unwrap())],
    )
    .await;
    assert!(folder.join("rpcnode.db").is_file());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    terminate(child).await;
}

#[tokio::test]
async fn a_short_admin_token_and_a_cache_of_no_size_are_refused() {
    let dir = plugins_dir(&[]);
    let plugins = dir.path().to_str().unwrap().to_owned();
    let expected = "admin_token must be at least 16 visible ASCII characters (no spaces), such as \
                    the output of `openssl rand -hex 16`";
    let (code, stderr) = run_to_end(&["--plugins", &plugins, "--admin-token", "short"]).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim_end(),
        format!("error: in the command-line flags: {expected}")
    );
    assert_eq!(
        refused_with_env(&plugins, "RPCNODE_ADMIN_TOKEN", "sixteen chars or more").await,
        format!("error: in environment variables RPCNODE_ADMIN_TOKEN: {expected}")
    );
    let (code, stderr) = run_to_end(&["--plugins", &plugins, "--cache-max-mib", "0"]).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim_end(),
        "error: in the command-line flags: cache_max_mib must be 1 to 1048576, not 0"
    );
}

/// The binary on `plugins` with `variable=value` set must refuse to start
/// (exit code 2); returns what it wrote to stderr.
async fn refused_with_env(plugins: &str, variable: &str, value: &str) -> String {
    let output = within(
        rpcnode()
            .args(["--plugins", plugins])
            .env(variable, value)
            .output(),
    )
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    String::from_utf8_lossy(&output.stderr)
        .trim_end()
        .to_owned()
}

#[tokio::test]
async fn the_example_config_file_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rpcnode.example.toml");
    let dir = plugins_dir(&["calculator"]);
    let (child, address) = start(
        dir.path(),
        &["--config", example.to_str().unwrap(), "--cache", "false"],
    )
    .await;
    assert_eq!(health(&address).await["status"], "ok");
    terminate(child).await;
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let dir = plugins_dir(&["probe"]);
    let (child, address) = start(dir.path(), &["--cache", "false", "--shutdown-grace", "10"]).await;
    let client = reqwest::Client::new();
    let slow: Vec<_> = (0..8)
        .map(|id| {
            let body = format!(r#"{{"jsonrpc":"2.0","method":"sleep","params":[2000],"id":{id}}}"#);
            let request = client
                .post(&address)
                .header("content-type", "application/json")
                .body(body);
            tokio::spawn(async move {
                within(within(request.send()).await.unwrap().json::<Value>())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let ws_url = format!("{}/ws", address.replace("http://", "ws://"));
    let (mut ws, _) = within(tokio_tungstenite::connect_async(ws_url))
        .await
        .unwrap();
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    within(ws.send(Message::text(
        r#"{"jsonrpc":"2.0","method":"sleep","params":[2000],"id":"ws"}"#,
    )))
    .await
    .unwrap();
    // Stop only once all nine requests are in flight, however busy the machine.
    eventually(async || health(&address).await["pending_requests"] == 9).await;

    let (code, _) = terminate(child).await;
    assert_eq!(code, Some(0));
    for (id, answer) in slow.into_iter().enumerate() {
        assert_eq!(
            answer.await.unwrap(),
            success(json!({"slept_ms": 2000}), json!(id))
        );
    }
    let Some(Ok(Message::Text(answer))) = within(ws.next()).await else {
        panic!("no WebSocket answer")
    };
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        success(json!({"slept_ms": 2000}), json!("ws"))
    );
    match within(ws.next()).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
}

#[tokio::test]
async fn json_logs_carry_the_request_fields() {
    let dir = plugins_dir(&["calculator"]);
    let (child, address) = start_with_env(
        dir.path(),
        &["--log-format", "json", "--cache", "false"],
        &[("RUST_LOG", "rpcnode=debug")],
    )
    .await;
    call(
        &address,
        r#"{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}"#,
        &[],
    )
    .await;
    let (_, stderr) = terminate(child).await;
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .collect();
    let answered = lines
        .iter()
        .find(|line| line["fields"]["message"] == "request answered")
        .unwrap_or_else(|| panic!("no request line in {stderr}"));
    assert_eq!(answered["span"]["method"], "add");
    assert_eq!(answered["span"]["plugin"], "calculator");
    assert_eq!(answered["span"]["transport"], "http");
    assert!(answered["fields"]["elapsed_us"].is_u64());
}
