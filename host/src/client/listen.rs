//! `rpcnode listen URL`: stay connected over WebSocket in a resumable
//! session and print each notification as one JSON line; after a
//! disconnect, reconnect with backoff and resume, so that nothing within
//! the node's history is missed.

use std::collections::BTreeMap;
use std::pin::pin;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::Failure;
use super::connection::{Connection, Target};
use crate::random::jittered;

/// The first wait before reconnecting.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// The longest wait before reconnecting.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Print every notification as one JSON line (for `jq`), reconnecting and
/// resuming after a disconnect; Ctrl-C stops.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rpcnode listen ws://127.0.0.1:8000/ws --topics news,alerts
  rpcnode listen http://127.0.0.1:8000/ --method chat | jq .params")]
pub struct ListenArgs {
    #[command(flatten)]
    target: Target,
    /// Topics to subscribe to, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    topics: Vec<String>,
    /// Print only notifications of this method (repeatable) [default: every one].
    #[arg(long = "method", value_name = "NAME")]
    methods: Vec<String>,
}

/// The session to resume and where each of its streams was left.
#[derive(Default)]
struct Resume {
    /// `{client_id, token}` once a session is open.
    session: Option<Value>,
    /// Each stream's last position.
    positions: BTreeMap<String, Value>,
}

/// Run `rpcnode listen` until Ctrl-C.
pub async fn run(args: ListenArgs) -> Result<(), Failure> {
    let url = session_url(&args.target.url)?;
    let timeout = args.target.timeout()?;
    let mut resume = Resume::default();
    let mut backoff = FIRST_BACKOFF;
    let mut stop = pin!(tokio::signal::ctrl_c());
    loop {
        let opened = tokio::select! {
            _ = &mut stop => return Ok(()),
            opened = tokio::time::timeout(timeout, open(&args, &url, &mut resume)) => opened
                .unwrap_or_else(|_| Err(Failure::transport(format!("no session within {} s", args.target.timeout)))),
        };
        let mut connection = match opened {
            Ok(connection) => connection,
            Err(Failure::Transport(error)) => {
                eprintln!(
                    "rpcnode listen: {error:#}; reconnecting in {:.1} s",
                    backoff.as_secs_f64()
                );
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    () = tokio::time::sleep(jittered(backoff)) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(other) => return Err(other),
        };
        backoff = FIRST_BACKOFF;
        loop {
            let message = tokio::select! {
                _ = &mut stop => {
                    connection.close().await;
                    return Ok(());
                }
                message = connection.next() => message,
            };
            match message {
                Ok(message) => print(&args, &mut resume, &message),
                Err(error) => {
                    let Failure::Transport(error) = error else {
                        return Err(error);
                    };
                    eprintln!("rpcnode listen: {error:#}; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Open or resume the session on a new connection, subscribing a new one to
/// `--topics`.
async fn open(args: &ListenArgs, url: &str, resume: &mut Resume) -> Result<Connection, Failure> {
    let mut connection = Connection::open(&args.target, Some(url)).await?;
    let params = match &resume.session {
        Some(session) => {
            let mut params = session.clone();
            params["positions"] = resume.positions.values().cloned().collect();
            params
        }
        None => json!({}),
    };
    let request =
        json!({"jsonrpc": "2.0", "method": "rpc.session", "params": params, "id": "session"});
    let answer = ask(&mut connection, args, resume, &request).await?;
    if let Some(error) = answer.get("error") {
        if resume.session.take().is_some() {
            // Expired or unknown: start afresh; what was sent meanwhile is lost.
            eprintln!(
                "rpcnode listen: the session could not be resumed ({}); starting a new one",
                error["message"]
            );
            resume.positions.clear();
            return Err(Failure::transport("starting a new session".to_owned()));
        }
        return Err(Failure::Rpc(error.clone()));
    }
    let result = &answer["result"];
    if let Some(token) = result.get("token") {
        resume.session = Some(json!({"client_id": result["client_id"], "token": token}));
    }
    note_streams(resume, &result["streams"]);
    if result.get("token").is_some() && !args.topics.is_empty() {
        let request = json!({"jsonrpc": "2.0", "method": "rpc.subscribe", "params": {"topics": args.topics}, "id": "subscribe"});
        let answer = ask(&mut connection, args, resume, &request).await?;
        if let Some(error) = answer.get("error") {
            return Err(Failure::Rpc(error.clone()));
        }
        note_streams(resume, &answer["result"]["streams"]);
    }
    Ok(connection)
}

/// Send `request` and wait for its answer, printing the notifications that
/// come first.
async fn ask(
    connection: &mut Connection,
    args: &ListenArgs,
    resume: &mut Resume,
    request: &Value,
) -> Result<Value, Failure> {
    connection.send(request).await?;
    loop {
        let message = connection.next().await?;
        if message.get("id") == request.get("id") {
            return Ok(message);
        }
        print(args, resume, &message);
    }
}

/// Remember where each of `streams` starts; say which could not be recovered.
fn note_streams(resume: &mut Resume, streams: &Value) {
    for stream in streams.as_array().into_iter().flatten() {
        let name = stream["stream"].as_str().unwrap_or_default().to_owned();
        if stream["recovered"] == false {
            eprintln!(
                "rpcnode listen: {name} could not be recovered: notifications sent while disconnected are lost"
            );
        }
        let position =
            json!({"stream": name, "epoch": stream["epoch"], "offset": stream["offset"]});
        resume.positions.insert(name, position);
    }
}

/// Print `message` if it is a notification `--method` lets through; note
/// its position.
fn print(args: &ListenArgs, resume: &mut Resume, message: &Value) {
    if let Some(position) = message.get("position")
        && let Some(stream) = position["stream"].as_str()
    {
        resume.positions.insert(stream.to_owned(), position.clone());
    }
    let Some(method) = message["method"].as_str() else {
        return;
    };
    if args.methods.is_empty() || args.methods.iter().any(|wanted| wanted == method) {
        println!("{message}");
    }
}

/// The session URL for `url`: `ws(s)://…/ws?session`; an `http(s)://` node
/// URL becomes its WebSocket endpoint.
fn session_url(url: &str) -> Result<String, Failure> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => {
            return Err(Failure::usage(format!(
                "{url:?} is not a node URL: listen needs ws://HOST:PORT/ws (or http://HOST:PORT/)"
            )));
        }
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.split('?').next().unwrap_or_default();
    let path = if path.is_empty() { "ws" } else { path };
    Ok(format!("{scheme}://{authority}/{path}?session"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_urls() {
        for (given, expected) in [
            ("ws://127.0.0.1:8000/ws", "ws://127.0.0.1:8000/ws?session"),
            ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/ws?session"),
            ("https://node.example", "wss://node.example/ws?session"),
            (
                "wss://node.example/ws?session",
                "wss://node.example/ws?session",
            ),
        ] {
            assert_eq!(session_url(given).unwrap(), expected);
        }
        assert!(matches!(session_url("node:8000"), Err(Failure::Usage(_))));
    }
}
