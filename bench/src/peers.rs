//! The servers measured, each in a process of its own (this harness started
//! again with `peer NAME`), so that none shares a runtime, an allocator or
//! threads with the load generator or with another server, and each one's CPU
//! time can be read from /proc: rpcnode serving a plugins folder, jsonrpsee
//! with the same `add` in native Rust, and a bare axum handler answering a
//! fixed response (the ceiling of this HTTP stack).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use jsonrpsee::server::{RpcModule, Server};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A server running in a child process; dropping it kills the process.
pub struct Peer {
    pub address: SocketAddr,
    pub pid: u32,
    process: tokio::process::Child,
    /// rpcnode's plugins folder, removed after the process is killed.
    folder: Option<tempfile::TempDir>,
    /// rpcnode's data folder, when it keeps its data.
    _data: Option<tempfile::TempDir>,
}

impl Peer {
    /// rpcnode serving a folder of copies of `plugins` (built file, name),
    /// watching it for changes, keeping nothing: memory only, no history.
    pub async fn rpcnode(plugins: &[(PathBuf, &str)]) -> anyhow::Result<Self> {
        let folder = crate::folder(plugins)?;
        let mut peer = Self::start(&["rpcnode".as_ref(), folder.path().as_os_str()]).await?;
        peer.folder = Some(folder);
        Ok(peer)
    }

    /// [`Peer::rpcnode`] keeping its data as the binary does by default: in
    /// the embedded store of a data folder (on the target folder's disk),
    /// with history.
    pub async fn rpcnode_durable(plugins: &[(PathBuf, &str)]) -> anyhow::Result<Self> {
        let folder = crate::folder(plugins)?;
        let data = tempfile::tempdir_in(crate::target())?;
        let args = [
            "rpcnode".as_ref(),
            folder.path().as_os_str(),
            data.path().as_os_str(),
        ];
        let mut peer = Self::start(&args).await?;
        peer.folder = Some(folder);
        peer._data = Some(data);
        Ok(peer)
    }

    /// [`Peer::rpcnode`] as a node of the cluster on the Redis at `redis_url`
    /// (plugin state, streams and their history in Redis).
    pub async fn rpcnode_cluster(
        plugins: &[(PathBuf, &str)],
        redis_url: &str,
    ) -> anyhow::Result<Self> {
        let folder = crate::folder(plugins)?;
        let args = [
            "rpcnode-cluster".as_ref(),
            folder.path().as_os_str(),
            redis_url.as_ref(),
        ];
        let mut peer = Self::start(&args).await?;
        peer.folder = Some(folder);
        Ok(peer)
    }

    /// rpcnode on `folder` and `data` (neither removed with the peer, so a
    /// node can be killed and started again on them), delivering webhooks to
    /// any loopback address with a 50 ms retry and queues of 200,000.
    pub async fn rpcnode_webhooks(folder: &Path, data: &Path) -> anyhow::Result<Self> {
        let args = [
            "rpcnode-webhooks".as_ref(),
            folder.as_os_str(),
            data.as_os_str(),
        ];
        Self::start(&args).await
    }

    /// [`Peer::rpcnode_webhooks`] as a node of the cluster on the Redis at
    /// `redis_url`.
    pub async fn rpcnode_webhooks_cluster(folder: &Path, redis_url: &str) -> anyhow::Result<Self> {
        let args = [
            "rpcnode-webhooks-cluster".as_ref(),
            folder.as_os_str(),
            redis_url.as_ref(),
        ];
        Self::start(&args).await
    }

    /// jsonrpsee with `add` over HTTP and WebSocket on one port.
    pub async fn jsonrpsee() -> anyhow::Result<Self> {
        Self::start(&["jsonrpsee".as_ref()]).await
    }

    /// Bare axum answering a fixed response.
    pub async fn axum() -> anyhow::Result<Self> {
        Self::start(&["axum".as_ref()]).await
    }

    /// `peer ARGS…` in a child process, once it has printed its address.
    async fn start(args: &[&std::ffi::OsStr]) -> anyhow::Result<Self> {
        let mut process = tokio::process::Command::new(std::env::current_exe()?)
            .arg("peer")
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = process.stdout.take().context("the peer's stdout")?;
        let line = BufReader::new(stdout)
            .lines()
            .next_line()
            .await?
            .context("the peer exited before listening")?;
        let address = line
            .strip_prefix("listening on ")
            .with_context(|| format!("the peer printed {line:?}"))?
            .parse()?;
        let pid = process.id().context("the peer exited")?;
        Ok(Self {
            address,
            pid,
            process,
            folder: None,
            _data: None,
        })
    }

    /// Kill the process with SIGKILL and wait until it is gone.
    pub async fn kill_9(mut self) -> anyhow::Result<()> {
        Ok(self.process.kill().await?)
    }

    /// rpcnode's plugins folder.
    pub fn plugins_folder(&self) -> Option<&Path> {
        self.folder.as_ref().map(|folder| folder.path())
    }
}

/// `peer jsonrpsee|axum|rpcnode FOLDER [DATA_FOLDER]`: serve one of the
/// measured servers until killed, after printing `listening on ADDRESS`.
/// rpcnode keeps its data in DATA_FOLDER, with history, or else in memory
/// without history.
pub async fn serve(args: &[String]) -> anyhow::Result<()> {
    match args {
        [name] if name == "jsonrpsee" => {
            let server = Server::builder().build("127.0.0.1:0").await?;
            let mut module = RpcModule::new(());
            module.register_method("add", |params, _, _| {
                let Operands { a, b } = params.parse()?;
                Ok::<_, jsonrpsee::types::ErrorObjectOwned>(json!({ "sum": a + b }))
            })?;
            let address = server.local_addr()?;
            let _running = server.start(module);
            listen_until_killed(address).await
        }
        [name] if name == "axum" => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            tokio::spawn(async move { axum::serve(listener, axum_baseline()).await });
            listen_until_killed(address).await
        }
        [name, folder, data @ ..] if name == "rpcnode" && data.len() <= 1 => {
            let mut config = rpcnode::Config::new(folder);
            match data.first() {
                Some(data) => config.data_dir = Some(data.into()),
                None => config.history.size = 0,
            }
            serve_rpcnode(config).await
        }
        [name, folder, data] if name == "rpcnode-webhooks" => {
            let mut config = rpcnode::Config::new(folder);
            config.data_dir = Some(data.into());
            serve_rpcnode(with_fast_webhooks(config)?).await
        }
        [name, folder, redis_url] if name == "rpcnode-webhooks-cluster" => {
            let mut config = rpcnode::Config::new(folder);
            config.cluster = Some(rpcnode::config::Cluster::new(redis_url.as_str()));
            serve_rpcnode(with_fast_webhooks(config)?).await
        }
        [name, folder, redis_url] if name == "rpcnode-cluster" => {
            let mut config = rpcnode::Config::new(folder);
            config.cluster = Some(rpcnode::config::Cluster::new(redis_url.as_str()));
            serve_rpcnode(config).await
        }
        _ => anyhow::bail!(
            "usage: peer jsonrpsee|axum|rpcnode PLUGINS_FOLDER [DATA_FOLDER]|rpcnode-webhooks PLUGINS_FOLDER DATA_FOLDER|rpcnode-webhooks-cluster PLUGINS_FOLDER REDIS_URL|rpcnode-cluster PLUGINS_FOLDER REDIS_URL"
        ),
    }
}

/// `config` delivering webhooks to any loopback address with a 50 ms retry
/// and queues of 200,000.
fn with_fast_webhooks(mut config: rpcnode::Config) -> anyhow::Result<rpcnode::Config> {
    let webhooks = &mut config.webhooks;
    webhooks.allow =
        rpcnode::webhook::AllowList::parse("127.0.0.0/8").map_err(anyhow::Error::msg)?;
    webhooks.retry_schedule = vec![Duration::from_millis(50)];
    webhooks.give_up_after = Duration::from_secs(3600);
    webhooks.max_queue = 200_000;
    Ok(config)
}

/// Serve rpcnode with `config` and the harness's settings.
async fn serve_rpcnode(mut config: rpcnode::Config) -> anyhow::Result<()> {
    config.port = 0;
    config.watch = true;
    config.max_connections = 100_000;
    // JavaScript and Python components take seconds to compile: once per run.
    config.cache_dir = Some(crate::target().join("bench-compile-cache"));
    let server = rpcnode::Server::start(config).await?;
    listen_until_killed(server.local_addr()).await
}

async fn listen_until_killed(address: SocketAddr) -> anyhow::Result<()> {
    println!("listening on {address}");
    std::future::pending().await
}

#[derive(Deserialize)]
struct Operands {
    a: f64,
    b: f64,
}

/// The fixed answer of the axum baseline.
const FIXED: &str = r#"{"jsonrpc":"2.0","result":{"sum":3},"id":1}"#;

/// Bare axum: `POST /` answers a fixed response; `/ws` answers each frame
/// with a fixed result under the request's id, with rpcnode's socket buffers.
fn axum_baseline() -> axum::Router {
    axum::Router::new()
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
        )
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
        let args = ["nginx".to_owned()];
        let error = super::serve(&args).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "usage: peer jsonrpsee|axum|rpcnode PLUGINS_FOLDER [DATA_FOLDER]|rpcnode-webhooks PLUGINS_FOLDER DATA_FOLDER|rpcnode-webhooks-cluster PLUGINS_FOLDER REDIS_URL|rpcnode-cluster PLUGINS_FOLDER REDIS_URL"
        );
    }
}
