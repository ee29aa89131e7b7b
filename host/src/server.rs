//! The HTTP server: one port, three routes (`POST /`, `GET /ws`, `GET /health`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::node::Node;
use crate::{health, transport};

/// The routes, over a node.
pub fn router(node: Arc<Node>) -> Router {
    let max_body = node.config.max_message_bytes;
    Router::new()
        .route("/", post(transport::http::post))
        .route("/ws", get(transport::ws::upgrade))
        .route("/health", get(health::report))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(node)
}

/// A server accepting connections in a background task.
pub struct Server {
    local_addr: SocketAddr,
    node: Arc<Node>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Bind `config.host:config.port`, load the plugins and start serving.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let address = format!("{}:{}", config.host, config.port);
        let listener = TcpListener::bind(&address).await.map_err(|error| {
            if error.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!("{address} is already in use; stop the other server or pass --port 0 to pick a free port")
            } else {
                anyhow::Error::new(error).context(format!("cannot listen on {address}"))
            }
        })?;
        Self::start_on(listener, config).await
    }

    /// Load the plugins and serve on an already bound `listener`.
    pub async fn start_on(listener: TcpListener, config: Config) -> anyhow::Result<Self> {
        let local_addr = listener.local_addr().context("reading the bound address")?;
        let node = Node::start(config).await?;
        let app = router(Arc::clone(&node)).into_make_service_with_connect_info::<SocketAddr>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            local_addr,
            node,
            stop,
            task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The node's shared state.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Serve until `signal` completes, then stop as [`Server::stop`] does.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            stop,
            mut task,
            node,
            ..
        } = self;
        tokio::select! {
            () = signal => {
                node.shutdown().await;
                let _ = stop.send(());
                task.await.context("server task failed")?.context("serving")
            }
            served = &mut task => served.context("server task failed")?.context("serving"),
        }
    }

    /// Close WebSocket connections (code 1001), cancel background work, stop
    /// accepting and wait for HTTP requests in flight to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.node.shutdown().await;
        let _ = self.stop.send(());
        self.task
            .await
            .context("server task failed")?
            .context("serving")
    }
}
