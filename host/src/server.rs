//! The server: one port and its routes (`POST /`, `GET /ws`, `GET /openrpc.json`,
//! `POST /webhook/NAME`, `GET /health` and `GET /metrics`, and the dashboard's
//! when it is on), plain or TLS, with a cap on connections, a deadline for
//! request headers, and a graceful stop. `POST /` is answered before the
//! router (see [`transport::http`]); the router serves the rest. With an
//! admin port, `/health` and `/metrics` move to a plain HTTP listener of
//! their own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, options, post};
use futures_util::future::Either;
use http_body_util::Either as EitherBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::node::Node;
use crate::rpc::wire::{self, RpcError, SERVER_BUSY};
use crate::transport::ConnectionSlot;
use crate::{dashboard, status, tls, transport};

/// The routes but `POST /`, over a node; the operators' routes too unless
/// they have a port of their own.
pub fn router(node: Arc<Node>) -> Router {
    let router = Router::new()
        .route(
            "/",
            options(transport::http::preflight_rpc).fallback(transport::http::not_post),
        )
        .route("/ws", get(transport::ws::upgrade))
        .route(
            "/openrpc.json",
            get(transport::http::openrpc).options(transport::http::preflight_openrpc),
        )
        .route(
            "/webhook/{name}",
            post(transport::upstream::receive).layer(transport::upstream::body_limit(&node)),
        );
    let router = if node.config.admin_port.is_none() {
        router.merge(admin_routes())
    } else {
        router
    };
    let router = if node.config.dashboard {
        router.merge(dashboard::routes(&node))
    } else {
        router
    };
    router.with_state(node)
}

/// What operators read: `/health` and `/metrics`.
fn admin_routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/health", get(status::health))
        .route("/metrics", get(status::metrics))
}

/// A server accepting connections in a background task.
pub struct Server {
    local_addr: SocketAddr,
    node: Arc<Node>,
    tls: bool,
    task: JoinHandle<()>,
    /// The admin listener's address and task, when it has a port.
    admin: Option<(SocketAddr, JoinHandle<()>)>,
}

impl Server {
    /// Check the TLS files, bind `config.host:config.port`, load the plugins
    /// and start serving.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let listener = bind(&config.host, config.port, "--port").await?;
        Self::start_on(listener, config).await
    }

    /// Load the plugins and serve on an already bound `listener`.
    pub async fn start_on(listener: TcpListener, mut config: Config) -> anyhow::Result<Self> {
        let local_addr = listener.local_addr().context("reading the bound address")?;
        // The port bound (with --port 0, the one picked), as the node reports it.
        config.port = local_addr.port();
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let admin_listener = match config.admin_port {
            Some(port) => Some(bind(&config.host, port, "--admin-port").await?),
            None => None,
        };
        let node = Node::start(config).await?;
        let is_tls = tls.is_some();
        let task = tokio::spawn(accept(listener, Arc::clone(&node), tls));
        let admin = match admin_listener {
            Some(listener) => {
                let address = listener.local_addr().context("reading the admin address")?;
                let app = admin_routes().with_state(Arc::clone(&node));
                let stopping = node.stopping.clone().cancelled_owned();
                let serving = axum::serve(listener, app).with_graceful_shutdown(stopping);
                let task = tokio::spawn(async move {
                    if let Err(error) = serving.await {
                        tracing::error!("the admin listener failed: {error}");
                    }
                });
                Some((address, task))
            }
            None => None,
        };
        Ok(Self {
            local_addr,
            node,
            tls: is_tls,
            task,
            admin,
        })
    }

    /// `http://HOST:PORT` of `/health` and `/metrics` when they have a port
    /// of their own.
    pub fn admin_url(&self) -> Option<String> {
        self.admin
            .as_ref()
            .map(|(address, _)| format!("http://{address}"))
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://HOST:PORT`, or `https://HOST:PORT` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The node's shared state.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Serve until `signal` completes, then stop as [`Server::stop`] does.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        self.stop().await
    }

    /// Stop accepting; let HTTP requests and WebSocket requests in flight
    /// finish (up to `shutdown_grace`); close every WebSocket with 1001;
    /// cancel background work.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.node.stopping.cancel();
        self.task.await.context("the accept loop failed")?;
        if let Some((_, admin)) = self.admin {
            let grace = self.node.config.shutdown_grace;
            let _ = tokio::time::timeout(grace, admin).await;
        }
        // Upgraded connections are no longer hyper's: wait for the sessions.
        let sessions = &self.node.websockets;
        sessions.close();
        if tokio::time::timeout(self.node.config.shutdown_grace, sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = sessions.len(),
                "shutdown grace period over; WebSocket sessions still open"
            );
        }
        self.node.shutdown().await;
        Ok(())
    }
}

/// A listener on `host:port`; an address in use is an error naming `flag`.
async fn bind(host: &str, port: u16, flag: &str) -> anyhow::Result<TcpListener> {
    let address = format!("{host}:{port}");
    TcpListener::bind(&address).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "{address} is already in use; stop the other server or pass {flag} 0 to pick a free port"
            )
        } else {
            anyhow::Error::new(error).context(format!("cannot listen on {address}"))
        }
    })
}

/// Accept connections until the node stops, then wait (up to the grace
/// period) for the open ones to finish their requests.
async fn accept(listener: TcpListener, node: Arc<Node>, tls: Option<TlsAcceptor>) {
    let router = router(Arc::clone(&node));
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(node.config.max_connections));
    loop {
        let (stream, remote) = tokio::select! {
            () = node.stopping.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, usually: back off briefly.
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let slot = Arc::clone(&slots).try_acquire_owned().ok();
        let (router, tls, node, watcher) = (
            router.clone(),
            tls.clone(),
            Arc::clone(&node),
            graceful.watcher(),
        );
        tokio::spawn(async move {
            let Some(acceptor) = tls else {
                return serve(stream, remote, router, slot, watcher, &node).await;
            };
            match tokio::time::timeout(node.config.header_read_timeout, acceptor.accept(stream))
                .await
            {
                Ok(Ok(stream)) => serve(stream, remote, router, slot, watcher, &node).await,
                Ok(Err(error)) => tracing::debug!(%remote, "TLS handshake failed: {error}"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    if tokio::time::timeout(node.config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open,
            "shutdown grace period over; closing the remaining connections"
        );
    }
}

/// Serve HTTP (and WebSocket upgrades) on one connection, or refuse it when
/// there is no free slot.
async fn serve<IO>(
    io: IO,
    remote: SocketAddr,
    router: Router,
    slot: Option<OwnedSemaphorePermit>,
    watcher: Watcher,
    node: &Arc<Node>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(slot) = slot else {
        node.metrics.connections_refused.inc();
        return refuse(io, node.config.max_connections).await;
    };
    let slot = ConnectionSlot::new(slot);
    let http = Arc::new(transport::http::Connection::new(Arc::clone(node), remote));
    let service = {
        let http = Arc::clone(&http);
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let http = Arc::clone(&http);
            if transport::http::is_rpc(&request) {
                return Either::Left(async move {
                    let _in_flight = http.head_deadline.request();
                    Ok(http.post(request).await.map(EitherBody::Left))
                });
            }
            request.extensions_mut().insert(ConnectInfo(remote));
            request.extensions_mut().insert(slot.clone());
            let routed = router.clone().oneshot(request);
            Either::Right(async move {
                let _in_flight = http.head_deadline.request();
                routed.await.map(|response| response.map(EitherBody::Right))
            })
        })
    };
    let mut builder = Builder::new(TokioExecutor::new());
    // The head deadline is kept by `HeadDeadline` (see there for why).
    builder.http1().header_read_timeout(None);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::select! {
        biased;
        served = watcher.watch(connection) => if let Err(error) = served {
            tracing::debug!(%remote, "connection ended: {error}");
        },
        () = http.head_deadline.expired() => {
            tracing::debug!(%remote, "no request head within header_read_timeout; closing");
        }
    }
}

/// Answer `503` with a JSON-RPC error and close: the server is at
/// `max_connections`.
async fn refuse<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, limit: usize) {
    // Read the request first, so closing does not reset the connection before
    // the client has read the answer.
    let mut head = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(1), io.read(&mut head)).await;
    let error = RpcError::new(
        SERVER_BUSY,
        format_args!("too many connections (max_connections = {limit})"),
    );
    let body = wire::failure(None, &error);
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = io.write_all(response.as_bytes()).await;
    let _ = io.shutdown().await;
}
