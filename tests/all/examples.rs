//! The seed docs' patterns as example plugins, driven the way the docs'
//! clients drive them.

use serde_json::json;

use crate::support::{TestNode, error, plugin_config, success, unix_time};

#[tokio::test]
async fn admin_actions_reach_users_and_admins_differently() {
    let node = TestNode::start(&["roles"]).await;
    let before = unix_time();
    let mut admin = node.ws().await;
    let mut user = node.ws().await;
    let mut anonymous = node.ws().await;
    assert_eq!(
        admin
            .call("authenticate", json!({"role": "admin"}), 1)
            .await,
        success(json!({"success": true, "role": "admin"}), json!(1))
    );
    // The seed's request carries a client id of the caller's choosing: the
    // connection is who calls.
    assert_eq!(
        user.call(
            "authenticate",
            json!({"client_id": "client1", "role": "user"}),
            1
        )
        .await,
        success(json!({"success": true, "role": "user"}), json!(1))
    );
    assert_eq!(
        user.call("adminAction", json!({"action": "x"}), 2).await,
        error(403, "adminAction needs the admin role", json!(2))
    );
    assert_eq!(
        anonymous
            .call("authenticate", json!({"role": "root"}), 1)
            .await["error"]["message"],
        r#"Invalid params: /role: "root" is not one of "user" or "admin""#
    );
    assert_eq!(
        admin
            .call("adminAction", json!({"action": "restart"}), 2)
            .await,
        success(
            json!({"success": true, "users_notified": 1, "admins_notified": 1}),
            json!(2)
        )
    );
    let mut notice = user.recv().await;
    let stamped = notice["params"]["timestamp"].take().as_f64().unwrap();
    assert!((before..=unix_time()).contains(&stamped), "{stamped}");
    assert_eq!(
        notice,
        json!({"jsonrpc": "2.0", "method": "adminNotification", "params": {"action": "restart", "timestamp": null}})
    );
    let log = admin.recv().await;
    assert_eq!(log["method"], "adminLog");
    assert_eq!(log["params"]["action"], "restart");
    assert_eq!(log["params"]["timestamp"].as_f64(), Some(stamped));
    anonymous.assert_quiet().await;
}

#[tokio::test]
async fn presence_welcomes_and_lists_clients() {
    let node = TestNode::start(&["presence"]).await;
    let before = unix_time();
    let mut first = node.ws().await;
    let mut welcome = first.recv().await;
    let first_id = welcome["params"]["client_id"].as_str().unwrap().to_owned();
    let stamped = welcome["params"]["server_time"].take().as_f64().unwrap();
    assert!((before..=unix_time()).contains(&stamped), "{stamped}");
    assert_eq!(
        welcome,
        json!({"jsonrpc": "2.0", "method": "welcome", "params": {
            "message": format!("Welcome, {first_id}!"), "client_id": first_id,
            "server_version": "0.1.0", "server_time": null}})
    );
    let mut second = node.ws().await;
    let second_id = second.recv().await["params"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = vec![first_id, second_id];
    ids.sort();
    assert_eq!(
        first.call("listClients", json!({}), 1).await,
        success(json!({"clients": ids, "count": 2}), json!(1))
    );
}

#[tokio::test]
async fn metrics_count_requests_and_errors() {
    let node = TestNode::start(&["metrics", "calculator"]).await;
    node.call("add", json!([1, 2])).await;
    node.call("divide", json!([1, 0])).await;
    node.call("nope", json!([])).await;
    assert_eq!(
        node.call("getMetrics", json!({})).await,
        success(json!({"requests": 3, "errors": 2}), json!(1))
    );
}

#[tokio::test]
async fn auth_checks_the_bearer_token_over_http_and_the_websocket_handshake() {
    let node = TestNode::start_with(
        &["auth", "calculator"],
        plugin_config("auth", "[config]\ntoken = \"s3cret\"\n"),
    )
    .await;
    let add = r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#;
    let unauthorized = error(401, "Authentication required", json!(1));
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "s3cret")],
    ] {
        let (_, body) = node.post_with(add, &headers).await;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            unauthorized,
            "{headers:?}"
        );
    }
    let (_, body) = node
        .post_with(add, &[("authorization", "Bearer s3cret")])
        .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        success(json!({"sum": 3}), json!(1))
    );

    let mut anonymous = node.ws().await;
    assert_eq!(anonymous.call("add", json!([1, 2]), 1).await, unauthorized);
    let mut signed_in = node.ws_with(&[("authorization", "Bearer s3cret")]).await;
    assert_eq!(
        signed_in.call("add", json!([1, 2]), 1).await,
        success(json!({"sum": 3}), json!(1))
    );
}

#[tokio::test]
async fn auth_without_a_configured_token_lets_nobody_in() {
    let node = TestNode::start(&["auth", "calculator"]).await;
    let (_, body) = node
        .post_with(
            r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}"#,
            &[("authorization", "Bearer ")],
        )
        .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        error(401, "Authentication required", json!(1))
    );
}
