//! The servers compared, each on its own port in this process: rpcnode with
//! the calculator plugin, a jsonrpsee server with the same `add` in native
//! Rust, and a bare axum handler answering a fixed response (the ceiling of
//! this HTTP stack).

use std::net::SocketAddr;
use std::path::Path;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use jsonrpsee::server::{RpcModule, Server, ServerHandle};
use serde::Deserialize;
use serde_json::{Value, json};

/// A running peer; dropping it stops the server.
pub enum Peer {
    /// rpcnode; the folder holds its plugin while it runs.
    Rpcnode(rpcnode::Server, tempfile::TempDir),
    /// jsonrpsee.
    Jsonrpsee(ServerHandle),
    /// Bare axum.
    Axum(tokio::task::JoinHandle<()>),
}

impl Peer {
    /// rpcnode's plugins folder.
    pub fn plugins_folder(&self) -> Option<&Path> {
        match self {
            Self::Rpcnode(_, dir) => Some(dir.path()),
            _ => None,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        match self {
            Self::Rpcnode(server, _) => server.node().stopping.cancel(),
            Self::Jsonrpsee(handle) => {
                let _ = handle.stop();
            }
            Self::Axum(task) => task.abort(),
        }
    }
}

/// rpcnode serving `plugin_file` (a calculator), watching its plugins folder
/// when `watch` is set.
pub async fn rpcnode(plugin_file: &Path, watch: bool) -> anyhow::Result<(SocketAddr, Peer)> {
    let dir = tempfile::tempdir()?;
    std::fs::copy(plugin_file, dir.path().join("calculator.wasm"))?;
    let mut config = rpcnode::Config::new(dir.path());
    config.port = 0;
    config.watch = watch;
    // JavaScript and Python components take seconds to compile: once per run.
    config.cache_dir = Some(crate::target().join("bench-compile-cache"));
    config.max_batch_size = 1000;
    let server = rpcnode::Server::start(config).await?;
    Ok((server.local_addr(), Peer::Rpcnode(server, dir)))
}

#[derive(Deserialize)]
struct Operands {
    a: f64,
    b: f64,
}

/// jsonrpsee with `add` over HTTP and WebSocket on one port.
pub async fn jsonrpsee() -> anyhow::Result<(SocketAddr, Peer)> {
    let server = Server::builder().build("127.0.0.1:0").await?;
    let mut module = RpcModule::new(());
    module.register_method("add", |params, _, _| {
        let Operands { a, b } = params.parse()?;
        Ok::<_, jsonrpsee::types::ErrorObjectOwned>(json!({ "sum": a + b }))
    })?;
    let address = server.local_addr()?;
    Ok((address, Peer::Jsonrpsee(server.start(module))))
}

/// Serve the peer called `name` (`jsonrpsee` or `axum`) until the process is
/// killed, after printing its address.
pub async fn serve_alone(name: Option<&str>) -> anyhow::Result<()> {
    let (address, _peer) = match name {
        Some("jsonrpsee") => jsonrpsee().await?,
        Some("axum") => axum_baseline().await?,
        _ => anyhow::bail!("peer needs a server: jsonrpsee or axum"),
    };
    println!("listening on {address}");
    std::future::pending::<()>().await;
    Ok(())
}

/// The fixed answer of the axum baseline.
const FIXED: &str = r#"{"jsonrpc":"2.0","result":{"sum":3},"id":1}"#;

/// Bare axum: `POST /` answers a fixed response; `/ws` answers each frame
/// with a fixed result under the request's id, with rpcnode's socket buffers.
pub async fn axum_baseline() -> anyhow::Result<(SocketAddr, Peer)> {
    let app = axum::Router::new()
        .route(
            "/",
            post(|| async { ([("content-type", "application/json")], FIXED) }),
        )
        .route(
            "/ws",
            get(|upgrade: WebSocketUpgrade| async {
                upgrade
                    .read_buffer_size(crate::fanout::SOCKET_BUFFER)
                    .write_buffer_size(crate::fanout::SOCKET_BUFFER)
                    .on_upgrade(echo)
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, Peer::Axum(task)))
}

async fn echo(socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    while let Some(Ok(Message::Text(text))) = stream.next().await {
        let id = serde_json::from_str::<Value>(&text)
            .ok()
            .map(|request| request["id"].clone())
            .unwrap_or(Value::Null);
        let answer = format!(r#"{{"jsonrpc":"2.0","result":{{"sum":3}},"id":{id}}}"#);
        if sink.send(Message::text(answer)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn peer_names_a_server() {
        let error = super::serve_alone(Some("nginx")).await.unwrap_err();
        assert_eq!(error.to_string(), "peer needs a server: jsonrpsee or axum");
    }
}
