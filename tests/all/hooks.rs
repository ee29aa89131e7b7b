//! Lifecycle hooks: before-request can reject, after-request sees every
//! outcome, connect and disconnect fire once per WebSocket connection.

use serde_json::{Value, json};

use crate::support::{TestNode, error, eventually, plugin_config, success};

#[tokio::test]
async fn hooks_wrap_every_request_in_order() {
    let node = TestNode::start(&["calculator", "probe"]).await;
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
    assert_eq!(
        node.call("divide", json!([1, 0])).await["error"]["code"],
        -32602
    );
    assert_eq!(node.call("nope", json!([])).await["error"]["code"], -32601);
    assert_eq!(
        node.hook_log().await,
        [
            "before add",
            "after add ok",
            "before divide",
            "after divide -32602",
            "before nope",
            "after nope -32601",
            "before hook_log",
        ]
    );
}

#[tokio::test]
async fn a_rejection_stops_the_handler_and_after_request_still_sees_it() {
    let node = TestNode::start(&["users", "probe"]).await;
    let create = r#"{"jsonrpc":"2.0","method":"user.create","params":{"username":"Bo","email":"bo@example.com"},"id":1}"#;
    let (status, body) = node.post_with(create, &[("x-reject", "1")]).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        json!({"jsonrpc":"2.0","error":{"code":-32099,"message":"rejected by before-request","data":{"hook":"probe"}},"id":1})
    );
    // The handler never ran: no user was created.
    assert_eq!(
        node.call("user_get", json!([1])).await,
        error(404, "User 1 not found", json!(1))
    );
    let log = node.hook_log().await;
    assert_eq!(log[..2], ["before user_create", "after user_create -32099"]);
}

#[tokio::test]
async fn audit_denies_configured_methods_however_they_are_spelled() {
    // What the policy allows and counts is in `languages::audit`, for each language.
    let policy = "[config]\ndeny_methods = [\"user_create\"]\n";
    let node = TestNode::start_with(&["audit", "users"], plugin_config("audit", policy)).await;
    for spelling in ["user_create", "user.create", "user-create", "user#create"] {
        assert_eq!(
            node.call(spelling, json!({"username": "x", "email": "x@y"}))
                .await,
            error(
                403,
                "method user_create is denied by the audit policy",
                json!(1)
            ),
            "{spelling}"
        );
    }
    assert_eq!(
        node.call("user_get", json!({"user_id": 1})).await,
        error(404, "User 1 not found", json!(1))
    );
}

#[tokio::test]
async fn connect_and_disconnect_fire_once_per_connection() {
    let node = TestNode::start(&["probe"]).await;
    let mut ws = node.ws_with(&[("x-test", "hello")]).await;
    let client_id = ws.call("echo", json!([]), 1).await["result"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.close().await;
    eventually(async || {
        node.hook_log()
            .await
            .iter()
            .any(|entry| entry.starts_with("disconnect"))
    })
    .await;
    let lifecycle: Vec<String> = node
        .hook_log()
        .await
        .into_iter()
        .filter(|entry| entry.starts_with("connect") || entry.starts_with("disconnect"))
        .collect();
    assert_eq!(
        lifecycle,
        [
            format!("connect {client_id} hello WebSocket true true"),
            format!("disconnect {client_id} WebSocket true true")
        ]
    );
    assert_eq!(node.get_json("/health").await["websocket_clients"], 0);
}
