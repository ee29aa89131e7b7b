//! Scenario 8: resuming. A session client goes away, 1,000 broadcasts are
//! stored while it is away, and it resumes: the time from sending its resume
//! to receiving the last missed notification. Then what a session costs the
//! server while its client is away: 10,000 session clients connect and
//! leave, and the server's resident memory grows by that much per session.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::fanout::{connect_many, publisher, resident_kib};
use crate::peers::Peer;

/// Open a session on `address`; its client id and token.
async fn open(address: &str) -> anyhow::Result<(String, String)> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/ws?session")).await?;
    let open = r#"{"jsonrpc":"2.0","method":"rpc.session","params":{},"id":0}"#;
    socket.send(Message::text(open)).await?;
    let Some(Ok(Message::Text(answer))) = socket.next().await else {
        anyhow::bail!("no answer to rpc.session");
    };
    let answer: Value = serde_json::from_str(&answer)?;
    let result = &answer["result"];
    let field = |name: &str| {
        result[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {name} in {answer}"))
    };
    let opened = (field("client_id")?, field("token")?);
    socket.close(None).await?;
    Ok(opened)
}

/// Resume `session` and read until `missed` notifications have arrived; how
/// long that took.
async fn resume(
    address: &str,
    (client_id, token): &(String, String),
    missed: usize,
) -> anyhow::Result<Duration> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/ws?session")).await?;
    let request = json!({"jsonrpc": "2.0", "method": "rpc.session", "id": 0,
                         "params": {"client_id": client_id, "token": token}});
    let started = Instant::now();
    socket.send(Message::text(request.to_string())).await?;
    let Some(Ok(Message::Text(answer))) = socket.next().await else {
        anyhow::bail!("no answer to the resume");
    };
    anyhow::ensure!(
        answer.contains(r#""recovered":true"#),
        "not recovered: {answer}"
    );
    let mut received = 0;
    while received < missed {
        match socket.next().await {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(_)) => {}
            other => anyhow::bail!("the resumed connection ended: {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    socket.close(None).await?;
    Ok(elapsed)
}

/// Print the rows of both measurements.
pub async fn run(
    plugin: &std::path::Path,
    rounds: usize,
    missed: usize,
    sessions: usize,
) -> anyhow::Result<()> {
    let server = Peer::rpcnode_durable(&[(plugin.to_owned(), "data_service.wasm")]).await?;
    let address = server.address.to_string();
    let mut publisher = publisher::Client::new(&address).await?;
    let mut times = Vec::new();
    for _ in 0..rounds {
        let session = open(&address).await?;
        for id in 0..missed {
            publisher.update(id, 0).await?;
        }
        times.push(resume(&address, &session, missed).await?.as_secs_f64() * 1e3);
    }
    let median = crate::median(times.clone());
    let (low, high) = times.iter().fold((f64::MAX, 0f64), |(low, high), &t| {
        (low.min(t), high.max(t))
    });
    println!("| Measurement | Result |");
    println!("|---|---|");
    println!(
        "| Resume with {missed} missed notifications: resume sent → last one received ({rounds} rounds) | median {median:.1} ms (range {low:.1}-{high:.1} ms) |"
    );

    let before = resident_kib(server.pid)?;
    let clients = connect_many(&address, sessions, true).await?;
    let connected = resident_kib(server.pid)?;
    drop(clients);
    // The server notices the connections end, and its allocator gives back
    // what the connections held.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let away = resident_kib(server.pid)?;
    let per = |kib: u64| kib.saturating_sub(before) as f64 / sessions as f64;
    println!(
        "| {sessions} session clients: server memory per client while connected / per session kept after its client left | {:.1} KiB / {:.1} KiB |",
        per(connected),
        per(away)
    );
    Ok(())
}
