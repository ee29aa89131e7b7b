//! The host's own methods, in the reserved `rpc.` namespace:
//! `rpc.subscribe` and `rpc.unsubscribe` (`{"topics": [...]}`), which act on
//! the calling WebSocket connection only; `rpc.discover`, the OpenRPC
//! document; and `rpc.session`, which only a connection opened with
//! `GET /ws?session` sends, as its first request (see `transport::session`).

use serde::Deserialize;
use serde_json::json;

use super::caller::Caller;
use super::openrpc::{self, About};
use super::wire::{
    self, INTERNAL_ERROR, INVALID_PARAMS, RpcError, SERVER_BUSY, SESSION_FIRST, WEBSOCKET_REQUIRED,
};
use crate::plugin::MethodTable;
use crate::push::{Broker, PushError};
use crate::store::StreamName;
use crate::webhook::WebhookError;

/// What the built-in methods act on.
pub struct Builtins<'a> {
    /// Subscriptions.
    pub broker: &'a Broker,
    /// The node, for `rpc.discover`.
    pub about: &'a About,
    /// The methods served, for `rpc.discover`.
    pub table: &'a MethodTable,
}

#[derive(Deserialize)]
struct Topics {
    topics: Vec<String>,
}

/// Whether `method` is one of the host's own.
pub fn is_builtin(method: &str) -> bool {
    matches!(
        method,
        "rpc.subscribe"
            | "rpc.unsubscribe"
            | "rpc.session"
            | "rpc.discover"
            | "rpc.webhook.subscribe"
            | "rpc.webhook.unsubscribe"
    )
}

/// Answer `method` if it is a built-in; `None` otherwise.
pub async fn call(
    builtins: &Builtins<'_>,
    method: &str,
    params: Option<&str>,
    caller: &Caller,
) -> Option<Result<String, RpcError>> {
    let subscribe = match method {
        "rpc.subscribe" => true,
        "rpc.unsubscribe" => false,
        "rpc.discover" => {
            return Some(Ok(
                openrpc::document(builtins.about, builtins.table).to_string()
            ));
        }
        "rpc.session" => {
            return Some(Err(RpcError::new(
                SESSION_FIRST,
                "rpc.session is only accepted as the first request of a connection opened \
                 with GET /ws?session",
            )));
        }
        "rpc.webhook.subscribe" | "rpc.webhook.unsubscribe" => {
            return Some(webhook(builtins.broker, method, params).await);
        }
        _ => return None,
    };
    Some(topics(builtins.broker, method, subscribe, params, caller).await)
}

async fn webhook(broker: &Broker, method: &str, params: Option<&str>) -> Result<String, RpcError> {
    let params: serde_json::Value = wire::params(params.unwrap_or("{}"))?;
    let webhooks = broker.webhooks();
    let answer = if method == "rpc.webhook.subscribe" {
        webhooks.subscribe(params).await
    } else {
        webhooks.unsubscribe(params).await
    };
    answer.map(|answer| answer.to_string()).map_err(|error| {
        let code = match error {
            WebhookError::Invalid(_) => INVALID_PARAMS,
            WebhookError::Busy(_) => SERVER_BUSY,
            WebhookError::Store(_) => INTERNAL_ERROR,
        };
        RpcError::new(code, error)
    })
}

async fn topics(
    broker: &Broker,
    method: &str,
    subscribe: bool,
    params: Option<&str>,
    caller: &Caller,
) -> Result<String, RpcError> {
    // The client is always the calling connection: no one can (un)subscribe
    // another client.
    let Some(client_id) = caller.client_id() else {
        return Err(RpcError::new(
            WEBSOCKET_REQUIRED,
            format_args!("{method} needs a WebSocket connection (GET /ws)"),
        ));
    };
    let Topics { topics } = wire::params(params.unwrap_or("{}"))?;
    let refused = |error: PushError| RpcError::new(INVALID_PARAMS, error);
    if !subscribe {
        let mut left = Vec::new();
        for topic in &topics {
            if broker
                .unsubscribe(client_id, topic)
                .await
                .map_err(refused)?
            {
                left.push(topic);
            }
        }
        return Ok(json!({ "unsubscribed": left }).to_string());
    }
    let mut positions = Vec::new();
    for topic in &topics {
        if let Some(position) = broker.subscribe(client_id, topic).await.map_err(refused)? {
            let stream = StreamName::topic(topic);
            positions.push(json!({
                "stream": stream.as_str(),
                "epoch": &*position.epoch,
                "offset": position.offset,
            }));
        }
    }
    // Clients without a session get the answer they always got.
    Ok(if broker.clients().is_session(client_id) {
        json!({ "subscribed": topics, "streams": positions })
    } else {
        json!({ "subscribed": topics })
    }
    .to_string())
}
