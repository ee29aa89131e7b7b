//! JSON-RPC over WebSocket: `GET /ws`. Text frames carry requests, batches,
//! responses and server notifications. Each connection is a client with an
//! id, a bounded outbound queue and a writer task that drains it.
//! `GET /ws?session` opens a resumable session instead: the connection's
//! first request is `rpc.session` (see [`super::session`]).

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use serde_json::json;
use tokio::sync::{Notify, Semaphore, mpsc};

use super::ConnectionSlot;
use super::session::{self, Opened};
use crate::headers::RequestHeaders;
use crate::node::Node;
use crate::plugin::{ConnectionEvent, Transport};
use crate::push::{Departure, Outbound};
use crate::rpc::Caller;
use crate::rpc::wire::{self, INVALID_REQUEST, RpcError};
use crate::store::StreamName;

/// The most queued messages the writer sends before flushing the socket.
const WRITE_BATCH: usize = 64;
/// Read and write buffer per connection. tungstenite's default (128 KiB) is
/// zeroed on every read and held by every idle client; messages larger than
/// this still work, they take more reads.
const SOCKET_BUFFER: usize = 4 << 10;
/// How long an evicted client gets to take its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Handle `GET /ws`: upgrade and serve the connection.
pub async fn upgrade(
    State(node): State<Arc<Node>>,
    ConnectInfo(remote_addr): ConnectInfo<SocketAddr>,
    slot: Option<Extension<ConnectionSlot>>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let wants_session = uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("session"))
    });
    let max = node.config.max_message_bytes;
    let headers = RequestHeaders::copied(&headers);
    let session = node.websockets.token();
    upgrade
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            // The connection slot is held for as long as the WebSocket lives,
            // and a stop waits for the session to end.
            let (_slot, _session) = (slot, session);
            serve(node, socket, remote_addr, headers, wants_session).await;
        })
}

async fn serve(
    node: Arc<Node>,
    socket: WebSocket,
    remote_addr: SocketAddr,
    headers: RequestHeaders,
    wants_session: bool,
) {
    let caller = Caller::new(Transport::Websocket, None, remote_addr, headers);
    let (mut sink, mut stream) = socket.split();
    let opened = if wants_session {
        // Boxed: the opening's future is large, and only session
        // connections need it, for a moment; every connection's future
        // would otherwise carry its size for as long as it lives.
        match Box::pin(session::open(&node, &caller, &mut sink, &mut stream)).await {
            Some(opened) => opened,
            None => return,
        }
    } else {
        Opened {
            registration: node.clients.register(false),
            fresh: true,
            skip: HashMap::new(),
        }
    };
    let Opened {
        registration,
        fresh,
        skip,
    } = opened;
    let (client_id, serial, queue) = (registration.id, registration.serial, registration.queue);
    let caller = Arc::new(caller.with_client_id(Arc::clone(&client_id)));
    tracing::debug!(client = %client_id, %remote_addr, "websocket client connected");
    if fresh {
        if node.config.welcome {
            let welcome = wire::notification(
                "welcome",
                Some(&json!({ "client_id": &*client_id }).to_string()),
            );
            let _ = queue.send(Outbound::Notification(welcome.into())).await;
        }
        node.dispatcher
            .connection_event(&caller, ConnectionEvent::Connected)
            .await;
    }

    let mut writer = tokio::spawn(write(
        sink,
        registration.outbound,
        registration.evicted,
        Arc::clone(&node),
        skip,
    ));
    let max_in_flight = node.config.ws_max_in_flight;
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let ping_every = node.config.ws_ping_interval;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let mut writer_done = false;
    // Registered once: the stop token is shared by every connection, and a
    // fresh `cancelled()` per frame would lock its waiter list twice per frame.
    let stopping = node.stopping.cancelled();
    tokio::pin!(stopping);
    loop {
        // A frame is read only with a permit in hand: a client at its cap
        // waits here, still pinged, still stopped by a shutdown.
        let (permit, frame) = tokio::select! {
            next = async {
                let permit = Arc::clone(&in_flight)
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed");
                (permit, stream.next().await)
            } => next,
            _ = &mut writer => {
                writer_done = true;
                break;
            }
            _ = pings.tick() => {
                // At the cap no frame is read, pongs included: the client is
                // waiting for answers, not idle.
                let at_cap = in_flight.available_permits() == 0;
                if !at_cap && last_heard.elapsed() >= node.config.ws_idle_timeout {
                    let frame = CloseFrame { code: close_code::NORMAL, reason: "idle timeout".into() };
                    let _ = queue.send(Outbound::Close(frame)).await;
                    break;
                }
                // A full queue means a slow client; the eviction rules handle it.
                let _ = queue.try_send(Outbound::Ping);
                continue;
            }
            () = &mut stopping => {
                // Let the requests in flight answer, then say goodbye.
                let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
                let _ = tokio::time::timeout(node.config.shutdown_grace, in_flight.acquire_many(all)).await;
                let frame = CloseFrame { code: close_code::AWAY, reason: "server shutting down".into() };
                let _ = queue.send(Outbound::Close(frame)).await;
                break;
            }
        };
        last_heard = Instant::now();
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                let error = RpcError::new(
                    INVALID_REQUEST,
                    "binary frames are not supported; send JSON-RPC as text frames",
                );
                if queue
                    .send(wire::failure(None, &error).into())
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Err(ref error)) if is_too_long(error) => {
                let frame = CloseFrame {
                    code: close_code::SIZE,
                    reason: "message too big".into(),
                };
                let _ = queue.send(Outbound::Close(frame)).await;
                break;
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => break,
        };
        let (node, caller, queue) = (Arc::clone(&node), Arc::clone(&caller), queue.clone());
        let mut answering = Box::pin(async move {
            if let Some(answer) = node.dispatcher.handle_message(&text, &caller).await {
                // The client may have gone; then there is no one to answer.
                let _ = queue.send(answer.into()).await;
            }
            drop(permit);
        });
        // Most messages are answered on their first poll: make it here, and
        // give a task of its own only to one that has to wait (for a plugin
        // instance, a slow call, a full queue), so the next frames are read
        // meanwhile.
        let first_poll = poll_fn(|cx| Poll::Ready(answering.as_mut().poll(cx))).await;
        if first_poll.is_pending() {
            tokio::spawn(answering);
        }
    }

    let departure = node.clients.disconnect(&client_id, serial);
    drop(queue);
    // Let the writer deliver what is queued (answers, the close frame).
    if !writer_done {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, &mut writer).await;
    }
    tracing::debug!(client = %client_id, ?departure, "websocket client disconnected");
    match departure {
        Departure::Gone => {
            node.dispatcher
                .connection_event(&caller, ConnectionEvent::Disconnected)
                .await;
        }
        Departure::Away => {
            if let Err(error) = node.sessions.leave(&client_id).await {
                tracing::error!(client = %client_id, "keeping the session failed: {error}");
            }
        }
        Departure::Moved => {}
    }
}

/// Drain the client's queue into the socket. Ends when the queue closes, the
/// socket fails, or the client is evicted, even while a write to a client that
/// stopped reading is stuck. Notifications at or before the offsets in `skip`
/// are not sent: the client has them already (they were queued while its
/// resume was being answered).
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbound: mpsc::Receiver<Outbound>,
    evicted: Arc<Notify>,
    node: Arc<Node>,
    mut skip: HashMap<StreamName, u64>,
) {
    // Registered once: a fresh `notified()` per burst would lock the
    // notifier's waiter list twice per burst.
    let evicted = evicted.notified();
    tokio::pin!(evicted);
    loop {
        tokio::select! {
            biased;
            () = &mut evicted => {
                let frame = CloseFrame { code: close_code::POLICY, reason: "outbound queue full: client too slow".into() };
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                return;
            }
            more = write_burst(&mut sink, &mut outbound, &node, &mut skip) => if !more {
                return;
            },
        }
    }
}

/// Wait for the next queued message and write it with whatever else is
/// queued (up to [`WRITE_BATCH`]), then flush once. False when the
/// connection is done.
async fn write_burst(
    sink: &mut SplitSink<WebSocket, Message>,
    outbound: &mut mpsc::Receiver<Outbound>,
    node: &Node,
    skip: &mut HashMap<StreamName, u64>,
) -> bool {
    let Some(mut next) = outbound.recv().await else {
        let _ = sink.close().await;
        return false;
    };
    let (mut written, mut notifications) = (0, 0);
    let more = loop {
        let (message, last) = match next {
            Outbound::Text(text) => (Message::Text(text), false),
            Outbound::Positioned(ref positioned)
                if is_had(skip, &positioned.stream, positioned.offset) =>
            {
                match outbound.try_recv() {
                    Ok(queued) => {
                        next = queued;
                        continue;
                    }
                    Err(_) => break true,
                }
            }
            Outbound::Notification(text) => {
                notifications += 1;
                (Message::Text(text), false)
            }
            Outbound::Positioned(positioned) => {
                notifications += 1;
                (Message::Text(positioned.text.clone()), false)
            }
            Outbound::Ping => (Message::Ping(Default::default()), false),
            Outbound::Close(frame) => (Message::Close(Some(frame)), true),
        };
        if sink.feed(message).await.is_err() || last {
            let _ = sink.flush().await;
            break false;
        }
        written += 1;
        if written == WRITE_BATCH {
            break true;
        }
        match outbound.try_recv() {
            Ok(queued) => next = queued,
            Err(_) => break true,
        }
    };
    // Counted once per burst: the counter is shared by every writer.
    node.clients.sent.add(notifications);
    more && sink.flush().await.is_ok()
}

/// Whether the client had `offset` of `stream` before this connection's
/// live notifications began; forgets the stream once past it.
fn is_had(skip: &mut HashMap<StreamName, u64>, stream: &StreamName, offset: u64) -> bool {
    if skip.is_empty() {
        return false;
    }
    let Some(&had) = skip.get(stream) else {
        return false;
    };
    if offset > had {
        skip.remove(stream);
    }
    offset <= had
}

/// Whether a read failed because the message exceeded the size limit.
fn is_too_long(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)))
}
