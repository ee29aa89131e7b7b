//! Shared test helpers: start a server on 127.0.0.1:0 with chosen plugins,
//! talk to it over HTTP and WebSocket, and bound every wait.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rpcnode::{Config, Server};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single step of a test may wait.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The longest a server may take to start. Starting compiles every plugin
/// not in the compile cache: seconds for a JavaScript or Python component,
/// and tests compile many at once on few cores.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);

/// Await `future`, failing the test if it takes longer than [`TIMEOUT`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("timed out waiting")
}

/// The compiled plugin `name`: an example from `target/plugins` or
/// `target/plugins-optional`, or a test fixture from `target/plugin-fixtures`.
pub fn plugin_file(name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    ["plugins", "plugins-optional", "plugin-fixtures"]
        .iter()
        .map(|dir| target.join(dir).join(format!("{name}.wasm")))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("plugin {name}.wasm is not built: run `cargo xtask build-plugins` (or `cargo xtask test`)"))
}

/// A temporary plugins folder holding copies of the named plugins.
pub fn plugins_dir(plugins: &[&str]) -> tempfile::TempDir {
    let files: Vec<PathBuf> = plugins.iter().map(|name| plugin_file(name)).collect();
    plugins_dir_with(&files)
}

/// A temporary plugins folder holding copies of `files`.
pub fn plugins_dir_with(files: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("creating a temporary folder");
    for file in files {
        let name = file.file_name().expect("a plugin file has a name");
        std::fs::copy(file, dir.path().join(name)).expect("copying a plugin");
    }
    dir
}

/// A `configure` step for [`TestNode::start_with`] that writes `NAME.toml`
/// with `toml` beside the plugin `NAME`.
pub fn plugin_config(name: &'static str, toml: &'static str) -> impl FnOnce(&mut Config) {
    move |config| {
        std::fs::write(config.plugins_dir.join(format!("{name}.toml")), toml)
            .expect("writing plugin config")
    }
}

/// The message of the error `Server::start` fails with, for a config with
/// port 0 that `configure` changes.
pub async fn start_error(plugins_dir: &Path, configure: impl FnOnce(&mut Config)) -> String {
    let mut config = Config::new(plugins_dir);
    config.port = 0;
    configure(&mut config);
    let error = within(Server::start(config))
        .await
        .err()
        .expect("start must fail");
    format!("{error:#}")
}

/// A running server and clients for it.
pub struct TestNode {
    pub server: Server,
    dir: tempfile::TempDir,
    /// The server's data folder (the embedded store), unless a test chose
    /// memory only; removed with the node.
    _data: tempfile::TempDir,
    http: reqwest::Client,
}

impl TestNode {
    /// A server with the named plugins and default settings.
    pub async fn start(plugins: &[&str]) -> Self {
        Self::start_with(plugins, |_| {}).await
    }

    /// A server with the named plugins; `configure` may change settings and
    /// add files to the plugins folder before it starts.
    pub async fn start_with(plugins: &[&str], configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(plugins_dir(plugins), configure).await
    }

    /// A server on the plugins folder `dir`, keeping its data in a folder of
    /// its own (as the binary does), configured by `configure`.
    pub async fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().expect("creating a data folder");
        let mut config = Config::new(dir.path());
        config.port = 0;
        config.data_dir = Some(data.path().to_owned());
        configure(&mut config);
        let server = tokio::time::timeout(START_TIMEOUT, Server::start(config))
            .await
            .expect("timed out starting the server")
            .expect("starting the server");
        Self {
            server,
            dir,
            _data: data,
            http: reqwest::Client::new(),
        }
    }

    /// The plugins folder.
    pub fn plugins_path(&self) -> &Path {
        self.dir.path()
    }

    /// Write the compiled plugin `plugin` into the plugins folder as `file`,
    /// in place (a watcher may see it half written).
    pub fn put_plugin(&self, plugin: &str, file: &str) {
        let bytes = std::fs::read(plugin_file(plugin)).expect("reading a built plugin");
        std::fs::write(self.dir.path().join(file), bytes).expect("writing into the plugins folder");
    }

    /// The version `/health` reports for plugin `name`, if it is loaded.
    pub async fn plugin_version(&self, name: &str) -> Option<String> {
        let health = self.get_json("/health").await;
        let plugins = health["plugins"].as_array()?;
        let plugin = plugins.iter().find(|plugin| plugin["name"] == name)?;
        Some(plugin["version"].as_str()?.to_owned())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.local_addr())
    }

    /// POST `body` as JSON; the status and the body text.
    pub async fn post_text(&self, body: &str) -> (u16, String) {
        self.post_with(body, &[]).await
    }

    /// POST `body` as JSON with extra headers; the status and the body text.
    pub async fn post_with(&self, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut request = self
            .http
            .post(self.url("/"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = within(request.send()).await.expect("sending the request");
        let status = response.status().as_u16();
        (
            status,
            within(response.text()).await.expect("reading the body"),
        )
    }

    /// POST a JSON value and parse the JSON answer (which must be 200).
    pub async fn post(&self, body: &Value) -> Value {
        let (status, text) = self.post_text(&body.to_string()).await;
        assert_eq!(status, 200, "unexpected status; body: {text}");
        serde_json::from_str(&text).expect("the answer is JSON")
    }

    /// Call `method` over HTTP with id 1; the whole response object.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.post(&request(method, params, json!(1))).await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = within(self.http.get(self.url(path)).send())
            .await
            .expect("GET");
        within(response.json()).await.expect("JSON body")
    }

    /// Open a WebSocket to `/ws`.
    pub async fn ws(&self) -> WsClient {
        self.ws_with(&[]).await
    }

    /// Open a WebSocket to `/ws` with extra handshake headers.
    pub async fn ws_with(&self, headers: &[(&'static str, &'static str)]) -> WsClient {
        ws_connect(&format!("ws://{}/ws", self.server.local_addr()), headers).await
    }

    /// Open a resumable session: `GET /ws?session`, then `rpc.session {}`.
    pub async fn session(&self) -> SessionClient {
        SessionClient::open(&self.server.local_addr().to_string()).await
    }
}

/// A WebSocket to `url` with extra handshake headers.
pub async fn ws_connect(url: &str, headers: &[(&'static str, &'static str)]) -> WsClient {
    let mut handshake = url.into_client_request().expect("a valid URL");
    for (name, value) in headers {
        handshake
            .headers_mut()
            .insert(*name, value.parse().expect("a valid header"));
    }
    let (stream, _) = within(tokio_tungstenite::connect_async(handshake))
        .await
        .expect("WebSocket handshake");
    WsClient {
        stream,
        unread: VecDeque::new(),
    }
}

impl TestNode {
    /// Call each of the probe's faulting `methods`: each must cost only its
    /// caller an internal error, and the probe and the calculator must answer
    /// right after.
    pub async fn assert_faults_are_contained(&self, methods: &[&str]) {
        for method in methods {
            assert_eq!(
                self.call(method, json!([])).await,
                error(-32603, "Internal error: plugin probe failed", json!(1)),
                "{method}"
            );
            // The faulted instance is gone; the plugin and its neighbours still answer.
            assert_eq!(
                self.call("echo", json!([])).await["result"]["method"],
                "echo"
            );
            assert_eq!(
                self.call("add", json!([1, 1])).await,
                success(json!({"sum": 2}), json!(1))
            );
        }
    }

    /// The hook log the probe fixture keeps in its state.
    pub async fn hook_log(&self) -> Vec<String> {
        let response = self.call("hook_log", json!([])).await;
        serde_json::from_value(response["result"].clone()).expect("a list of strings")
    }
}

/// A WebSocket client.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Messages that arrived while [`WsClient::call`] waited for its answer.
    unread: VecDeque<Value>,
}

impl WsClient {
    /// The client id of this connection, as the probe plugin's `echo`
    /// reports it (the node must load `probe`).
    pub async fn client_id(&mut self) -> String {
        self.call("echo", json!([]), 0).await["result"]["client_id"]
            .as_str()
            .expect("echo answers the client id")
            .to_owned()
    }

    pub async fn send_text(&mut self, text: &str) {
        within(self.stream.send(Message::text(text)))
            .await
            .expect("sending a frame");
    }

    pub async fn send(&mut self, message: &Value) {
        self.send_text(&message.to_string()).await;
    }

    /// The next frame that is not a ping or pong, within [`TIMEOUT`] in
    /// total: the server's pings do not extend the wait.
    pub async fn next_frame(&mut self) -> Option<Message> {
        within(async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(message)) => return Some(message),
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
    }

    /// The next message: one set aside by [`WsClient::call`], or the next
    /// text frame, parsed as JSON.
    pub async fn recv(&mut self) -> Value {
        if let Some(message) = self.unread.pop_front() {
            return message;
        }
        match self.next_frame().await {
            Some(Message::Text(text)) => serde_json::from_str(&text).expect("a JSON frame"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Call `method` and wait for its response, within [`TIMEOUT`] in total;
    /// other messages that arrive first are kept for [`WsClient::recv`].
    pub async fn call(&mut self, method: &str, params: Value, id: u64) -> Value {
        self.send(&request(method, params, json!(id))).await;
        let mut early = Vec::new();
        let answer = within(async {
            loop {
                let message = match self.next_frame().await {
                    Some(Message::Text(text)) => {
                        serde_json::from_str::<Value>(&text).expect("a JSON frame")
                    }
                    other => panic!("expected a text frame, got {other:?}"),
                };
                if message.get("id") == Some(&json!(id)) {
                    return message;
                }
                early.push(message);
            }
        })
        .await;
        self.unread.extend(early);
        answer
    }

    /// Assert nothing has arrived unasked: the answer to a fresh request is
    /// the next message.
    pub async fn assert_quiet(&mut self) {
        let probe = json!({"jsonrpc": "2.0", "method": "rpc.quiet", "id": "quiet"});
        self.send(&probe).await;
        assert!(
            self.unread.is_empty(),
            "unexpected messages: {:?}",
            self.unread
        );
        let next = self.recv().await;
        assert_eq!(next["id"], "quiet", "a message arrived unasked: {next}");
    }

    pub async fn close(&mut self) {
        let _ = within(self.stream.close(None)).await;
        while self.next_frame().await.is_some() {}
    }
}

/// A request object.
/// Seconds since the Unix epoch, to bound the timestamps plugins send.
pub fn unix_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

pub fn request(method: &str, params: Value, id: Value) -> Value {
    json!({ "jsonrpc": "2.0", "method": method, "params": params, "id": id })
}

/// A success response object.
pub fn success(result: Value, id: Value) -> Value {
    json!({ "jsonrpc": "2.0", "result": result, "id": id })
}

/// An error response object without data.
pub fn error(code: i32, message: &str, id: Value) -> Value {
    json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id })
}

/// Poll `check` until it returns true, for events a client cannot await
/// directly (such as the server noticing a disconnect).
pub async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    within(async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A client of a resumable session: its connection, its token, and the last
/// position it received on each stream.
pub struct SessionClient {
    pub ws: WsClient,
    pub client_id: String,
    pub token: String,
    pub positions: BTreeMap<String, Value>,
}

impl SessionClient {
    /// Open a new session on the server at `address` (HOST:PORT).
    pub async fn open(address: &str) -> Self {
        let mut ws = ws_connect(&format!("ws://{address}/ws?session"), &[]).await;
        let answer = ws.call("rpc.session", json!({}), 0).await;
        let result = &answer["result"];
        let streams = result["streams"]
            .as_array()
            .expect("a new session has streams");
        Self {
            ws,
            client_id: result["client_id"]
                .as_str()
                .expect("a client id")
                .to_owned(),
            token: result["token"].as_str().expect("a token").to_owned(),
            positions: streams
                .iter()
                .map(|position| {
                    (
                        position["stream"].as_str().unwrap().to_owned(),
                        position.clone(),
                    )
                })
                .collect(),
        }
    }

    /// Resume on a new connection to `address` with the positions received;
    /// the answer to `rpc.session`.
    pub async fn resume(&mut self, address: &str) -> Value {
        let positions: Vec<&Value> = self.positions.values().collect();
        let params =
            json!({"client_id": self.client_id, "token": self.token, "positions": positions});
        self.ws = ws_connect(&format!("ws://{address}/ws?session"), &[]).await;
        self.ws.call("rpc.session", params, 0).await
    }

    /// The next notification; its position is remembered.
    pub async fn next(&mut self) -> Value {
        let message = self.ws.recv().await;
        let position = &message["position"];
        let stream = position["stream"]
            .as_str()
            .expect("a notification with a position");
        self.positions.insert(stream.to_owned(), position.clone());
        message
    }
}

/// A TCP proxy whose connections can all be cut at once: a network blink.
pub struct Blinker {
    pub address: SocketAddr,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Blinker {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let handles = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(target).await?;
                    tokio::io::copy_bidirectional(&mut client, &mut server).await
                });
                handles.lock().unwrap().push(relay.abort_handle());
            }
        });
        Self {
            address,
            connections,
        }
    }

    /// Drop every connection through the proxy, without a close frame.
    pub fn blink(&self) {
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// Ask the probe plugin at `url` (`POST /`) to send `count` notifications
/// `seq {n}` by turns to the broadcast, topic `news` and client `id`; its
/// answer, once it comes.
pub fn send_mixed(url: &str, id: &str, count: u64) -> tokio::task::JoinHandle<Value> {
    let body = json!({"jsonrpc": "2.0", "method": "mixed", "id": 1,
                      "params": {"count": count, "topic": "news", "client_id": id}});
    let request = reqwest::Client::new().post(url).json(&body).send();
    tokio::spawn(async move { request.await.unwrap().json::<Value>().await.unwrap() })
}
