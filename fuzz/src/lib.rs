//! What the fuzz targets share: a node started once per fuzzing process, in
//! memory, on plugins copied from the checkout's build output into a
//! temporary folder (removed once they are loaded).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rpcnode::headers::RequestHeaders;
use rpcnode::plugin::Transport;
use rpcnode::rpc::Caller;
use rpcnode::{Config, Node};
use serde_json::value::RawValue;
use tokio::runtime::Runtime;

/// A node and the runtime it runs on.
pub struct FuzzNode {
    runtime: Runtime,
    node: Arc<Node>,
}

impl FuzzNode {
    /// Start a node serving `components` (paths under the checkout's
    /// `target/`, built by `cargo xtask build-plugins`); every one must load.
    pub fn start(components: &[&str]) -> Self {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        let plugins = std::env::temp_dir().join(format!("rpcnode-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&plugins).expect("a plugins folder");
        for component in components {
            let from = target.join(component);
            let name = from.file_name().expect("a file name");
            std::fs::copy(&from, plugins.join(name)).unwrap_or_else(|error| {
                panic!(
                    "{}: {error}; run `cargo xtask build-plugins`",
                    from.display()
                )
            });
        }
        let mut config = Config::new(&plugins);
        config.request_timeout = Duration::from_secs(5);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let node = runtime.block_on(Node::start(config));
        let _ = std::fs::remove_dir_all(&plugins);
        let node = node.expect("the node starts");
        let table = node.registry.current();
        let failed: Vec<&str> = table.failures.iter().map(|f| f.reason.as_str()).collect();
        assert!(failed.is_empty(), "plugins failed to load: {failed:?}");
        Self { runtime, node }
    }

    /// The answer to one HTTP body (`websocket` false) or WebSocket frame.
    pub fn answer(&self, text: &str, websocket: bool) -> Option<String> {
        let address = SocketAddr::from(([127, 0, 0, 1], 40000));
        let caller = if websocket {
            Caller::new(
                Transport::Websocket,
                Some("ws_1_0".into()),
                address,
                RequestHeaders::default(),
            )
        } else {
            Caller::new(Transport::Http, None, address, RequestHeaders::default())
        };
        self.runtime
            .block_on(self.node.dispatcher.handle_message(text, &caller))
    }
}

/// Panic unless `answer` is a JSON-RPC response or a non-empty batch of
/// them, as every answer the host sends must be. Values stay raw: JSON puts
/// no limit on numbers (RFC 8259, section 6), so a plugin's `9e999` is valid
/// and is passed on as it is.
pub fn assert_is_answer(answer: &str) {
    let valid = match answer.trim_start().as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<Response>>(answer)
            .map(|batch| !batch.is_empty() && batch.iter().all(Response::is_valid)),
        _ => serde_json::from_str::<Response>(answer).map(|response| response.is_valid()),
    };
    match valid {
        Ok(true) => {}
        Ok(false) => panic!("the answer is not a JSON-RPC response: {answer}"),
        Err(error) => panic!("the answer is not JSON ({error}): {answer}"),
    }
}

/// A response's members, raw (`"result": null` is a result).
#[derive(serde::Deserialize)]
struct Response<'a>(#[serde(borrow)] HashMap<&'a str, &'a RawValue>);

impl Response<'_> {
    fn is_valid(&self) -> bool {
        let member = |name| self.0.get(name).map(|value| value.get());
        let id_is_valid = member("id").is_some_and(|id| {
            id == "null"
                || id.starts_with(['"', '-'])
                || id.starts_with(|c: char| c.is_ascii_digit())
        });
        member("jsonrpc") == Some(r#""2.0""#)
            && id_is_valid
            && member("result").is_some() != member("error").is_some()
    }
}
