//! {{name}}: an rpcnode plugin.
//!
//! Build it into the folder `plugins` (served by `rpcnode --plugins plugins`):
//! `rpcnode build . --out plugins` (`--watch` rebuilds on every change).

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::Deserialize;

/// The params of `hello`: `{"name": "Ada"}`, `["Ada"]` or none.
#[derive(Deserialize)]
struct Hello {
    #[serde(default = "everyone")]
    name: String,
}

fn everyone() -> String {
    "world".to_owned()
}

/// Greet `name` and count the greetings in host state, shared by every instance.
fn hello(request: &Request) -> Result<Value, RpcError> {
    let Hello { name } = request.params()?;
    let count = host::state_increment("greetings", 1).map_err(RpcError::internal)?;
    Ok(json!({ "greeting": format!("Hello, {name}!"), "count": count }))
}

fn plugin() -> Plugin {
    Plugin::new("{{name}}", env!("CARGO_PKG_VERSION"))
        .method(Method::new("hello", hello).summary("Greet someone"))
}

export!(plugin);
