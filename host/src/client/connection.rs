//! One connection to a node, over HTTP(S) or WebSocket (WS/WSS), that sends
//! JSON-RPC messages and reads their answers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use super::Failure;

/// Where to connect and how: shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The node: http(s)://HOST:PORT/ for HTTP, ws(s)://HOST:PORT/ws for WebSocket.
    pub url: String,
    /// An extra request header, `NAME: VALUE` (repeatable), such as
    /// `--header "Authorization: Bearer TOKEN"`.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Trust the CA certificates of this PEM file besides the public web's roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Present this client certificate (PEM) to a node that asks for one; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Seconds to wait for the connection and for each answer.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
}

impl Target {
    /// The `--timeout`, checked.
    pub fn timeout(&self) -> Result<Duration, Failure> {
        Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--timeout must be a number of seconds above 0, not {}",
                    self.timeout
                ))
            })
    }

    fn header_pairs(&self) -> Result<Vec<(HeaderName, HeaderValue)>, Failure> {
        self.headers
            .iter()
            .map(|header| {
                let parsed = header.split_once(':').and_then(|(name, value)| {
                    let name = HeaderName::try_from(name.trim()).ok()?;
                    Some((name, HeaderValue::try_from(value.trim()).ok()?))
                });
                parsed.ok_or_else(|| {
                    Failure::usage(format!("--header {header:?} is not `NAME: VALUE`"))
                })
            })
            .collect()
    }

    fn tls(&self) -> Result<ClientConfig, Failure> {
        let identity = self.cert.as_deref().zip(self.key.as_deref());
        crate::tls::client_config(self.cacert.as_deref(), identity).map_err(Failure::Usage)
    }
}

/// A byte stream that is plain TCP or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open connection.
pub enum Connection {
    /// HTTP POSTs to the node's URL: one request per message.
    Http {
        client: reqwest::Client,
        url: String,
    },
    /// One WebSocket.
    Ws(Box<WebSocketStream<Box<dyn Io>>>),
}

impl Connection {
    /// Connect to `target` (a WebSocket handshake, or nothing yet for HTTP),
    /// with `url` in place of the target's own when given.
    pub async fn open(target: &Target, url: Option<&str>) -> Result<Self, Failure> {
        let url = url.unwrap_or(&target.url);
        let headers = target.header_pairs()?;
        let scheme = url
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http" | "https") => {
                let mut builder = reqwest::Client::builder()
                    .use_preconfigured_tls(target.tls()?)
                    .timeout(target.timeout()?)
                    .redirect(reqwest::redirect::Policy::none());
                let defaults = headers.into_iter().collect();
                builder = builder.default_headers(defaults);
                let client = builder
                    .build()
                    .map_err(|error| Failure::Usage(error.into()))?;
                Ok(Self::Http {
                    client,
                    url: url.to_owned(),
                })
            }
            Some("ws" | "wss") => {
                let handshake = websocket(url, headers, target.tls()?);
                let socket = tokio::time::timeout(target.timeout()?, handshake)
                    .await
                    .map_err(|_| {
                        Failure::transport(format!(
                            "no WebSocket handshake with {url} within {} s",
                            target.timeout
                        ))
                    })??;
                Ok(Self::Ws(Box::new(socket)))
            }
            _ => Err(Failure::usage(format!(
                "{url:?} is not a node URL: it must start with http://, https://, ws:// or wss://"
            ))),
        }
    }

    /// Send `message`; its answer when one is due (`expect_answer`), else
    /// `None` once it is sent. Over WebSocket, notifications that arrive
    /// meanwhile are skipped.
    pub async fn exchange(
        &mut self,
        message: &Value,
        expect_answer: bool,
    ) -> Result<Option<Value>, Failure> {
        match self {
            Self::Http { client, url } => {
                let response = client
                    .post(url.as_str())
                    .json(message)
                    .send()
                    .await
                    .map_err(|error| {
                        Failure::Transport(anyhow::Error::new(error).context(format!("POST {url}")))
                    })?;
                let status = response.status();
                let body = response
                    .bytes()
                    .await
                    .map_err(|error| Failure::transport(format!("reading the answer: {error}")))?;
                if body.is_empty() && status.is_success() {
                    return Ok(None);
                }
                match serde_json::from_slice::<Value>(&body) {
                    Ok(answer) if answer.is_array() || answer.get("jsonrpc").is_some() => {
                        Ok(Some(answer))
                    }
                    _ => Err(Failure::transport(format!(
                        "HTTP {status} without a JSON-RPC answer: {}",
                        String::from_utf8_lossy(&body[..body.len().min(500)])
                    ))),
                }
            }
            Self::Ws(_) => {
                self.send(message).await?;
                if !expect_answer {
                    return Ok(None);
                }
                loop {
                    let answer = self.next().await?;
                    if answer.is_array() || answer.get("id").is_some() {
                        return Ok(Some(answer));
                    }
                }
            }
        }
    }

    /// Send `message` on a WebSocket.
    pub async fn send(&mut self, message: &Value) -> Result<(), Failure> {
        let Self::Ws(socket) = self else {
            return Err(Failure::usage("send needs a WebSocket".to_owned()));
        };
        socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(|error| Failure::transport(format!("sending: {error}")))
    }

    /// The next JSON message on a WebSocket.
    pub async fn next(&mut self) -> Result<Value, Failure> {
        let Self::Ws(socket) = self else {
            return Err(Failure::usage(
                "an HTTP connection receives only answers".to_owned(),
            ));
        };
        loop {
            let frame = socket
                .next()
                .await
                .ok_or_else(|| Failure::transport("the node closed the connection".to_owned()))?
                .map_err(|error| Failure::transport(format!("receiving: {error}")))?;
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(&text).map_err(|error| {
                        Failure::transport(format!(
                            "the node sent a message that is not JSON: {error}"
                        ))
                    });
                }
                Message::Close(frame) => {
                    let why = frame.map(|frame| format!(" ({} {})", frame.code, frame.reason));
                    return Err(Failure::transport(format!(
                        "the node closed the connection{}",
                        why.unwrap_or_default()
                    )));
                }
                _ => {}
            }
        }
    }

    /// Close the connection politely (a WebSocket close frame).
    pub async fn close(self) {
        if let Self::Ws(mut socket) = self {
            let _ = WebSocketStream::close(&mut *socket, None).await;
        }
    }
}

/// Open a WebSocket to `url` with extra `headers`, over TLS for `wss://`.
async fn websocket(
    url: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
    tls: ClientConfig,
) -> Result<WebSocketStream<Box<dyn Io>>, Failure> {
    let mut request = url
        .into_client_request()
        .map_err(|error| Failure::usage(format!("{url:?}: {error}")))?;
    request.headers_mut().extend(headers);
    let uri = request.uri().clone();
    let host = uri
        .host()
        .context("the URL has no host")
        .map_err(Failure::Usage)?;
    let secure = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|error| Failure::transport(format!("connecting to {host}:{port}: {error}")))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if secure {
        let name = ServerName::try_from(host.clone())
            .map_err(|error| Failure::usage(format!("{host:?}: {error}")))?;
        let tls = TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .map_err(|error| Failure::transport(format!("TLS with {host}:{port}: {error}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|error| Failure::transport(format!("WebSocket handshake with {url}: {error}")))?;
    Ok(socket)
}
