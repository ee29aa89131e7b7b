//! The `rpcnode` binary: started with `--port 0`, it prints its address and
//! serves; bad flags and folders fail with a message that says what to do.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{plugins_dir, success, within};

/// The binary, with piped output, killed if the test drops it. Each one has
/// a home for data of its own (its default `--data-dir` is
/// `$XDG_DATA_HOME/rpcnode`), under the target folder, so that binaries
/// running at once do not share a data folder.
pub fn rpcnode() -> Command {
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "data-home-{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    let mut command = Command::new(env!("CARGO_BIN_EXE_rpcnode"));
    command
        .env("XDG_DATA_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Start the binary on `plugins` with `--port 0` and read the address it
/// prints; on early exit, fail with what it wrote to stderr.
pub async fn start(plugins: &Path, extra: &[&str]) -> (Child, String) {
    start_with_env(plugins, extra, &[]).await
}

/// [`start`] with extra environment variables.
pub async fn start_with_env(
    plugins: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut child = rpcnode()
        .arg("--plugins")
        .arg(plugins)
        .args(["--port", "0"])
        .args(extra)
        .envs(env.iter().copied())
        .spawn()
        .expect("starting rpcnode");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    match within(stdout.next_line()).await.expect("reading stdout") {
        Some(line) => {
            let address = line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            (child, address.to_owned())
        }
        None => {
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .await;
            panic!("rpcnode exited early: {stderr}");
        }
    }
}

/// POST `body` with `headers` to a running binary at `address`; the answer.
pub async fn call(address: &str, body: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut request = reqwest::Client::new()
        .post(address)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    within(within(request.send()).await.unwrap().json())
        .await
        .unwrap()
}

/// `GET /health` of the server at `address` (`http://HOST:PORT`).
pub async fn health(address: &str) -> serde_json::Value {
    within(
        within(reqwest::get(format!("{address}/health")))
            .await
            .unwrap()
            .json(),
    )
    .await
    .unwrap()
}

/// Resident memory of process `pid`, in KiB.
pub fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Run the binary to completion; its exit code and stderr.
pub async fn run_to_end(args: &[&str]) -> (Option<i32>, String) {
    let output = within(rpcnode().args(args).output())
        .await
        .expect("running rpcnode");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Ask a running binary to stop with SIGTERM and wait for it; its exit code
/// and everything it wrote to stderr.
pub async fn terminate(mut child: Child) -> (Option<i32>, String) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    within(child.stderr.take().unwrap().read_to_string(&mut stderr))
        .await
        .unwrap();
    let exit = within(child.wait()).await.unwrap();
    (exit.code(), stderr)
}

#[tokio::test]
async fn serves_on_the_port_it_prints_and_stops_on_sigterm() {
    let dir = plugins_dir(&["calculator"]);
    let (child, address) = start(dir.path(), &["--name", "bin-test", "--cache", "false"]).await;
    assert!(address.starts_with("http://127.0.0.1:"), "{address}");

    let client = reqwest::Client::new();
    let request = client
        .post(&address)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","method":"add","params":{"a":20,"b":22},"id":1}"#);
    let answer: serde_json::Value = within(within(request.send()).await.unwrap().json())
        .await
        .unwrap();
    assert_eq!(answer, success(json!({"sum": 42}), json!(1)));
    let health = within(client.get(format!("{address}/health")).send())
        .await
        .unwrap();
    let health: serde_json::Value = within(health.json()).await.unwrap();
    assert_eq!(health["node"], "bin-test");

    let (code, log) = terminate(child).await;
    assert_eq!(code, Some(0), "{log}");
}

#[tokio::test]
async fn plugin_output_goes_to_the_log_and_restarts_use_the_compile_cache() {
    let dir = plugins_dir(&["probe"]);
    let cache = tempfile::tempdir().unwrap();
    let cache_flag = ["--cache-dir", cache.path().to_str().unwrap()];

    let (child, address) = start(dir.path(), &cache_flag).await;
    let call = reqwest::Client::new()
        .post(&address)
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","method":"print","id":1}"#);
    let answer: serde_json::Value = within(within(call.send()).await.unwrap().json())
        .await
        .unwrap();
    assert_eq!(answer, success(json!(true), json!(1)));
    let (code, log) = terminate(child).await;
    assert_eq!(code, Some(0));
    assert!(log.contains("compiled and cached"), "{log}");
    for stream in ["stdout", "stderr"] {
        let line = log
            .lines()
            .find(|line| line.contains(&format!("probe says hello on {stream}")))
            .unwrap_or_else(|| panic!("no {stream} line in {log}"));
        assert!(
            line.contains("plugin=\"probe\"") && line.contains(&format!("stream=\"{stream}\"")),
            "{line}"
        );
    }

    let (child, _) = start(dir.path(), &cache_flag).await;
    let (_, log) = terminate(child).await;
    assert!(log.contains("compile cache hit"), "{log}");
}

#[tokio::test]
async fn check_reports_each_plugin_file_and_warms_the_cache() {
    let dir = plugins_dir(&["calculator", "users"]);
    let cache = tempfile::tempdir().unwrap();
    let plugins = dir.path().to_str().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let check = |extra: &'static [&'static str]| {
        let mut command = rpcnode();
        command
            .args(["--check", "--plugins", plugins, "--cache-dir", cache_dir])
            .args(extra);
        command
    };

    let output = within(check(&[]).output()).await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("ok {plugins}/calculator.wasm: calculator 0.1.0 (3 methods)"),
            format!("ok {plugins}/users.wasm: users 0.1.0 (2 methods)"),
        ]
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);

    std::fs::write(dir.path().join("broken.wasm"), b"not wasm").unwrap();
    let output = within(check(&[]).output()).await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[2].starts_with(&format!(
            "failed {plugins}/broken.wasm: not a valid WebAssembly component: "
        )),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: 1 of 3 plugin files failed to load"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_missing_plugins_folder_says_what_to_do() {
    let (code, stderr) = run_to_end(&["--port", "0"]).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no plugins folder: pass --plugins DIR"),
        "{stderr}"
    );
    let (code, stderr) = run_to_end(&["--plugins", "/definitely/not/here", "--port", "0"]).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(
            "plugins folder /definitely/not/here does not exist; create it or pass --plugins DIR"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_flags_are_refused_with_the_flag_named() {
    let dir = plugins_dir(&[]);
    let plugins = dir.path().to_str().unwrap();
    let bad = [
        (vec!["--port", "99999"], "--port <PORT>"),
        (
            vec!["--request-timeout", "0"],
            "in the command-line flags: request_timeout must be a number of seconds above 0",
        ),
        (
            vec!["--request-timeout", "soon"],
            "--request-timeout <SECS>",
        ),
        (
            vec!["--max-batch-size", "0"],
            "in the command-line flags: max_batch_size must be at least 1",
        ),
        (
            vec!["--no-such-flag"],
            "unexpected argument '--no-such-flag'",
        ),
        (vec!["--cache", "maybe"], "--cache [<BOOL>]"),
        (
            vec!["--recycle-after-calls", "many"],
            "--recycle-after-calls <N>",
        ),
        (vec!["--log-format", "xml"], "--log-format <FORMAT>"),
        (
            vec!["--rate-limit", "0"],
            "in the command-line flags: rate_limit must be a number of requests per second above 0",
        ),
    ];
    assert_refused(plugins, bad).await;
}

/// Each set of flags (after `--plugins plugins`) stops the binary with
/// status 2 and its message on stderr; no message shows a secret.
pub async fn assert_refused<const N: usize>(plugins: &str, refused: [(Vec<&str>, &str); N]) {
    for (args, expected) in refused {
        let args: Vec<&str> = ["--plugins", plugins].into_iter().chain(args).collect();
        let (code, stderr) = run_to_end(&args).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("secret"), "{stderr}");
    }
}

#[tokio::test]
async fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = plugins_dir(&[]);
    let (code, stderr) =
        run_to_end(&["--plugins", dir.path().to_str().unwrap(), "--port", &port]).await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!(
            "127.0.0.1:{port} is already in use; stop the other server or pass --port 0"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn help_documents_every_flag() {
    let output = within(rpcnode().arg("--help").output()).await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    let flags = [
        "--config",
        "--plugins",
        "--host",
        "--port",
        "--name",
        "--request-timeout",
        "--max-batch-size",
        "--max-message-bytes",
        "--max-connections",
        "--header-read-timeout",
        "--shutdown-grace",
        "--ws-queue-capacity",
        "--ws-max-in-flight",
        "--ws-ping-interval",
        "--ws-idle-timeout",
        "--welcome",
        "--rate-limit",
        "--rate-limit-burst",
        "--tls-cert",
        "--tls-key",
        "--tls-client-ca",
        "--watch",
        "--cache",
        "--cache-dir",
        "--plugin-memory-mib",
        "--plugin-max-instances",
        "--recycle-after-calls",
        "--max-background-calls",
        "--log-format",
        "--redis",
        "--cluster-name",
        "--presence-ttl",
    ];
    for flag in flags {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// With `--admin-port 0`, the binary prints the admin address on the line
/// after its public one, and serves `/health` there.
#[tokio::test]
async fn prints_the_admin_address_after_the_public_one() {
    let dir = plugins_dir(&["calculator"]);
    let mut child = rpcnode()
        .arg("--plugins")
        .arg(dir.path())
        .args(["--port", "0", "--admin-port", "0", "--cache", "false"])
        .spawn()
        .expect("starting rpcnode");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let public = within(stdout.next_line()).await.unwrap().unwrap();
    let admin = within(stdout.next_line()).await.unwrap().unwrap();
    assert!(
        public.starts_with("listening on http://127.0.0.1:"),
        "{public}"
    );
    let admin = admin
        .strip_prefix("admin on ")
        .unwrap_or_else(|| panic!("unexpected line {admin:?}"));
    assert_ne!(admin, public.trim_start_matches("listening on "));
    assert_eq!(health(admin).await["status"], "ok");
    terminate(child).await;
}
