//! The first request of a connection opened with `GET /ws?session`:
//! `rpc.session`, which starts a resumable session (`{}`) or resumes one
//! (`{"client_id", "token", "positions"}`). Until it succeeds the connection
//! is no client; its answer, and a resume's missed notifications, are
//! written before anything else the connection receives.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::node::Node;
use crate::push::{Registration, SessionError, StreamPosition};
use crate::rpc::wire::{
    self, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, RpcError, SERVER_BUSY, SESSION_FIRST,
    SESSION_NOT_FOUND,
};
use crate::rpc::{Call, Caller};
use crate::store::StreamName;

/// A connection that became a client.
pub struct Opened {
    /// Its registration with the clients.
    pub registration: Registration,
    /// True for a new session: it is greeted and `on-connect` runs.
    pub fresh: bool,
    /// Per stream, the offset the client already has: live notifications up
    /// to it were queued while the answer was written and are not sent.
    pub skip: HashMap<StreamName, u64>,
}

/// The params of `rpc.session`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionParams {
    client_id: Option<String>,
    token: Option<String>,
    #[serde(default)]
    positions: Vec<StreamPosition>,
}

/// Wait (up to `header_read_timeout`) for a successful `rpc.session`,
/// answering every other frame with an error. `None` when the connection
/// ends or the time is up.
pub async fn open(
    node: &Node,
    caller: &Caller,
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
) -> Option<Opened> {
    let deadline = Instant::now() + node.config.header_read_timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline.into(), stream.next()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(_) => return None,
            Err(_) => {
                let frame = CloseFrame {
                    code: close_code::POLICY,
                    reason: "no rpc.session request within header_read_timeout".into(),
                };
                let send = sink.send(Message::Close(Some(frame)));
                let _ = tokio::time::timeout(Duration::from_secs(1), send).await;
                return None;
            }
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let error = RpcError::new(INVALID_REQUEST, "send rpc.session as a text frame");
                sink.send(Message::Text(wire::failure(None, &error).into()))
                    .await
                    .ok()?;
                continue;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return None,
        };
        let (answer, opened, missed) = request(node, caller, &text).await;
        let Some(opened) = opened else {
            sink.send(Message::Text(answer.into())).await.ok()?;
            continue;
        };
        // The answer, then what was missed, before any live notification. A
        // write that fails ends the connection in the caller, which then
        // leaves the session as it leaves any.
        let _ = write_all(sink, answer, missed).await;
        return Some(opened);
    }
}

async fn write_all(
    sink: &mut SplitSink<WebSocket, Message>,
    answer: String,
    missed: Vec<String>,
) -> Result<(), axum::Error> {
    sink.feed(Message::Text(answer.into())).await?;
    for text in missed {
        sink.feed(Message::Text(text.into())).await?;
    }
    sink.flush().await
}

/// Answer one frame sent before the session is open: the answer's text,
/// and, when the session opened, the connection and what it missed.
async fn request(
    node: &Node,
    caller: &Caller,
    text: &str,
) -> (String, Option<Opened>, Vec<String>) {
    let first = || {
        RpcError::new(
            SESSION_FIRST,
            "this connection was opened with GET /ws?session: its first request must be \
             rpc.session, with an id",
        )
    };
    let request = match wire::parse(text, 1) {
        Err(error) => return (wire::failure(None, &error), None, Vec::new()),
        Ok(wire::Message::Single(Ok(request))) => request,
        Ok(wire::Message::Single(Err(rejected))) => {
            return (
                wire::failure(rejected.id, &rejected.error),
                None,
                Vec::new(),
            );
        }
        Ok(wire::Message::Batch(_)) => return (wire::failure(None, &first()), None, Vec::new()),
    };
    let Some(id) = request.id.filter(|_| request.method == "rpc.session") else {
        return (wire::failure(request.id, &first()), None, Vec::new());
    };
    let params = request.params.map(RawValue::get);
    let table = node.registry.current();
    let call = Call::new(
        &table,
        "rpc.session",
        params,
        Some(id),
        caller,
        Instant::now(),
    );
    let mut opened = None;
    let outcome = node
        .dispatcher
        .serve(&table, &call, async |_, _| {
            let (answer, session) = session(node, params).await?;
            opened = Some(session);
            Ok(answer)
        })
        .await;
    match outcome {
        Ok(result) => {
            let (opened, missed) = opened.expect("a session opened");
            (wire::success(id, &result), Some(opened), missed)
        }
        Err(error) => (wire::failure(Some(id), &error), None, Vec::new()),
    }
}

/// Start or resume a session: the answer, the connection, and the texts of
/// the missed notifications.
async fn session(
    node: &Node,
    params: Option<&str>,
) -> Result<(String, (Opened, Vec<String>)), RpcError> {
    let params: SessionParams = wire::params(params.unwrap_or("{}"))?;
    match (params.client_id, params.token) {
        (None, None) if params.positions.is_empty() => {
            let (registration, started) = node.sessions.start().await.map_err(refused)?;
            let answer = serde_json::to_string(&started).expect("an answer serialises");
            // Nothing to skip: what arrives from now on is after where the
            // session starts, or, if delivered while the positions were
            // read, something the client has not seen either.
            let opened = Opened {
                registration,
                fresh: true,
                skip: HashMap::new(),
            };
            Ok((answer, (opened, Vec::new())))
        }
        (Some(client_id), Some(token)) => {
            let (registration, resumed) = node
                .sessions
                .resume(&client_id, &token, &params.positions)
                .await
                .map_err(refused)?;
            let skip = skip_map(resumed.answer.streams.iter().map(|s| &s.position));
            let missed = resumed
                .missed
                .iter()
                .map(|(stream, position, notification)| notification.positioned(stream, position))
                .collect();
            let answer = serde_json::to_string(&resumed.answer).expect("an answer serialises");
            let opened = Opened {
                registration,
                fresh: false,
                skip,
            };
            Ok((answer, (opened, missed)))
        }
        _ => Err(RpcError::new(
            INVALID_PARAMS,
            "to start a session send no params; to resume one send client_id and token \
             (and the positions you have)",
        )),
    }
}

/// Where the client stands in each of its streams.
fn skip_map<'a>(positions: impl Iterator<Item = &'a StreamPosition>) -> HashMap<StreamName, u64> {
    positions
        .filter_map(|position| Some((StreamName::parse(&position.stream)?, position.offset)))
        .collect()
}

/// The JSON-RPC error for a session that could not be opened.
fn refused(error: SessionError) -> RpcError {
    match error {
        SessionError::NotFound => RpcError::new(SESSION_NOT_FOUND, error),
        SessionError::ForeignStream(_) => RpcError::new(INVALID_PARAMS, error),
        SessionError::Full(_) => RpcError::new(SERVER_BUSY, error),
        SessionError::Store(error) => {
            tracing::error!("opening a session failed: {error}");
            RpcError::new(INTERNAL_ERROR, "the session could not be saved")
        }
    }
}
