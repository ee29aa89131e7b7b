//! OpenRPC discovery and params validation: `rpc.discover` (HTTP and
//! WebSocket) and `GET /openrpc.json` serve one document, which the OpenRPC
//! project's own validator accepts and which follows hot reload; params are
//! checked against each method's schema before any hook runs; the OpenRPC
//! seed's notification methods take the seed's examples and drop (and
//! count) the notifications that do not fit; a schema that does not compile
//! fails its plugin's load.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{TestNode, eventually, request, success, within};

/// Validate `document` with `@open-rpc/schema-utils-js`; what it printed.
async fn official_validation(document: &Value) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), document.to_string()).unwrap();
    let output = within(
        tokio::process::Command::new("node")
            .arg(root.join("tests/tools/validate-openrpc.mjs"))
            .arg(root.join("target/toolchains/js/node_modules"))
            .arg(file.path())
            .output(),
    )
    .await
    .expect("running node");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

/// The document three ways, which must agree.
pub async fn discover(node: &TestNode) -> Value {
    let over_http = node.call("rpc.discover", json!([])).await["result"].clone();
    let mut ws = node.ws().await;
    let over_ws = ws.call("rpc.discover", json!({}), 1).await["result"].clone();
    let served = node.get_json("/openrpc.json").await;
    assert_eq!(over_http, over_ws);
    assert_eq!(over_http, served);
    over_http
}

/// Each plugin method's params as the document lists them: names in order,
/// `?` after the optional ones. Built-in methods are left out.
pub fn params_by_method(document: &Value) -> BTreeMap<String, Vec<String>> {
    let methods = document["methods"].as_array().unwrap().iter();
    methods
        .filter(|method| method.get("x-plugin").is_some())
        .map(|method| {
            let params = method["params"].as_array().unwrap().iter();
            let names = params
                .map(|param| {
                    let optional = if param["required"] == true { "" } else { "?" };
                    format!("{}{optional}", param["name"].as_str().unwrap())
                })
                .collect();
            (method["name"].as_str().unwrap().to_owned(), names)
        })
        .collect()
}

/// What `params_by_method` gives for `entries`.
pub fn described(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    let entries = entries.iter().map(|(method, params)| {
        let params = params.iter().map(|param| param.to_string()).collect();
        (method.to_string(), params)
    });
    entries.collect()
}

/// Every example plugin describes every method's params; those without params
/// say so (and refuse one).
#[tokio::test]
async fn every_example_method_is_described_with_its_params() {
    let examples = [
        "audit",
        "calculator",
        "data_service",
        "editor",
        "events",
        "heartbeat",
        "jobs",
        "metrics",
        "presence",
        "progress",
        "pubsub",
        "roles",
        "users",
    ];
    let node = TestNode::start(&examples).await;
    let document = discover(&node).await;
    let operands: &[&str] = &["a?", "b?"];
    let topics: &[&str] = &["topics", "client_id?"];
    assert_eq!(
        params_by_method(&document),
        described(&[
            ("add", operands),
            ("multiply", operands),
            ("divide", operands),
            ("user_create", &["username", "email?"]),
            ("user_get", &["user_id"]),
            ("analytics.track", &["event"]),
            ("log.error", &["errorData"]),
            ("presence.update", &["presenceData"]),
            ("email.send", &["emailRequest"]),
            ("cache.invalidate", &["invalidationRequest"]),
            ("audit.record", &["auditEvent"]),
            ("event_counts", &[]),
            ("updateData", &["id", "value"]),
            ("getData", &["id"]),
            ("processLargeFile", &["file_id", "total_chunks?"]),
            ("editDocument", &["doc_id", "edit", "editor?"]),
            ("subscribe", topics),
            ("unsubscribe", topics),
            ("publish", &["topic", "message"]),
            ("authenticate", &["role", "client_id?"]),
            ("adminAction", &["action"]),
            ("startJob", &["job_id", "client_id?", "fail?"]),
            ("listClients", &[]),
            ("audit_counts", &[]),
            ("getMetrics", &[]),
        ])
    );
    for method in ["event_counts", "listClients", "audit_counts", "getMetrics"] {
        assert_eq!(
            node.call(method, json!([1])).await["error"]["message"],
            "Invalid params: 1 positional params given, the method takes at most 0",
            "{method}"
        );
    }
}

fn method<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|method| method["name"] == name)
        .unwrap_or_else(|| panic!("no method {name} in the document"))
}

#[tokio::test]
async fn the_document_lists_every_method_and_passes_the_official_validator() {
    let node = TestNode::start_with(&["calculator", "users", "events", "probe"], |config| {
        config.node_name = "node-a".into();
    })
    .await;
    let document = discover(&node).await;
    assert_eq!(official_validation(&document).await.trim(), "valid");
    assert_eq!(document["openrpc"], "1.3.2");
    assert_eq!(
        document["info"],
        json!({"title": "node-a", "version": env!("CARGO_PKG_VERSION")})
    );
    assert_eq!(
        document["servers"],
        json!([{"name": "node-a", "url": node.url("")}])
    );

    let names: Vec<&str> = document["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|method| method["name"].as_str().unwrap())
        .collect();
    for expected in [
        "rpc.subscribe",
        "rpc.unsubscribe",
        "rpc.session",
        "rpc.webhook.subscribe",
        "rpc.webhook.unsubscribe",
        "add",
        "multiply",
        "divide",
        "user_create",
        "user_get",
        "analytics.track",
        "log.error",
        "presence.update",
        "email.send",
        "cache.invalidate",
        "audit.record",
        "event_counts",
        "echo",
        "fire_and_forget",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    // Methods only background work may call are not listed.
    assert!(!names.contains(&"background"), "{names:?}");

    assert_eq!(
        method(&document, "add"),
        &json!({
            "name": "add",
            "summary": "Add two numbers",
            "params": [
                {"name": "a", "schema": {"type": "number"}, "required": false},
                {"name": "b", "schema": {"type": "number"}, "required": false},
            ],
            "result": {"name": "result", "schema": {"type": "object", "properties": {"sum": {"type": "number"}}}},
            "paramStructure": "either",
            "x-plugin": "calculator",
        })
    );
    let create = method(&document, "user_create");
    assert_eq!(
        create["params"],
        json!([
            {"name": "username", "schema": {"type": "string", "minLength": 1}, "required": true},
            {"name": "email", "schema": {"type": "string"}, "required": false},
        ])
    );
    // Notification methods have no result.
    let track = method(&document, "analytics.track");
    assert_eq!(track.get("result"), None);
    assert_eq!(track["params"][0]["name"], "event");
    assert_eq!(track["params"][0]["required"], true);
    assert_eq!(track["x-plugin"], "events");
    assert_eq!(method(&document, "fire_and_forget").get("result"), None);
    // A method without a params schema has no content descriptors.
    assert_eq!(method(&document, "echo")["params"], json!([]));
    // /health leaves the internal method out too.
    let health = node.get_json("/health").await;
    let probe = health["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plugin| plugin["name"] == "probe")
        .unwrap();
    assert!(
        !probe["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("background"))
    );
}

#[tokio::test]
async fn the_document_follows_hot_reload() {
    let node = TestNode::start_with(&["calculator"], |config| config.watch = true).await;
    let before = discover(&node).await;
    assert_eq!(
        method(&before, "add")["params"].as_array().unwrap().len(),
        2
    );
    node.put_plugin("calculator_v2", "calculator.wasm");
    eventually(async || node.plugin_version("calculator").await.as_deref() == Some("2.0.0")).await;
    let after = discover(&node).await;
    // Version 2 declares no schemas.
    assert_eq!(method(&after, "add")["params"], json!([]));
    assert_eq!(official_validation(&after).await.trim(), "valid");
}

/// `-32602` with `message` and every problem in `data`.
fn invalid(message: &str, problems: Value, id: Value) -> Value {
    json!({"jsonrpc": "2.0", "error": {"code": -32602, "message": message, "data": problems}, "id": id})
}

#[tokio::test]
async fn params_are_checked_against_the_schema_before_any_hook() {
    let node = TestNode::start(&["calculator", "users", "probe"]).await;
    let cases = [
        (
            json!({"a": "x", "b": 2}),
            invalid(
                r#"Invalid params: /a: "x" is not of type "number""#,
                json!([{"path": "/a", "message": r#""x" is not of type "number""#}]),
                json!(1),
            ),
        ),
        (
            json!([2, "x"]),
            invalid(
                r#"Invalid params: /1: "x" is not of type "number""#,
                json!([{"path": "/1", "message": r#""x" is not of type "number""#}]),
                json!(1),
            ),
        ),
        (
            json!([1, 2, 3]),
            invalid(
                "Invalid params: 3 positional params given, the method takes at most 2",
                json!([{"path": "", "message": "3 positional params given, the method takes at most 2"}]),
                json!(1),
            ),
        ),
        (
            json!({"a": [], "b": {}}),
            invalid(
                r#"Invalid params: /a: [] is not of type "number""#,
                json!([
                    {"path": "/a", "message": r#"[] is not of type "number""#},
                    {"path": "/b", "message": r#"{} is not of type "number""#},
                ]),
                json!(1),
            ),
        ),
    ];
    for (params, expected) in cases {
        assert_eq!(node.call("add", params.clone()).await, expected, "{params}");
    }
    assert_eq!(
        node.call("user_get", json!({})).await,
        invalid(
            r#"Invalid params: "user_id" is a required property"#,
            json!([{"path": "", "message": r#""user_id" is a required property"#}]),
            json!(1),
        )
    );
    // No hook saw them; a request that fits goes through the hooks as ever.
    let log = node.hook_log().await;
    assert!(
        log.iter()
            .all(|entry| !entry.contains("add") && !entry.contains("user_get")),
        "{log:?}"
    );
    assert_eq!(
        node.call("add", json!([1, 2])).await,
        success(json!({"sum": 3}), json!(1))
    );
    let log = node.hook_log().await;
    assert!(log.contains(&"before add".to_owned()), "{log:?}");
}

/// The seed's example params of each of its notification methods.
fn seed_examples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "analytics.track",
            json!({"event": {"userId": "user_123", "eventType": "page_view",
            "properties": {"page": "/dashboard", "referrer": "https://google.com"},
            "timestamp": "2024-01-15T10:30:00Z"}}),
        ),
        (
            "log.error",
            json!({"errorData": {"level": "error", "message": "Database connection failed",
            "stackTrace": "Error: Connection timeout\n at Database.connect (db.js:45)",
            "userId": "user_456", "sessionId": "session_789",
            "metadata": {"component": "user-service", "version": "1.2.3"}}}),
        ),
        (
            "presence.update",
            json!({"presenceData": {"userId": "user_123", "status": "online",
            "lastSeen": "2024-01-15T10:30:00Z", "customMessage": "Working on the new feature"}}),
        ),
        (
            "email.send",
            json!({"emailRequest": {"to": ["newuser@example.com"],
            "subject": "Welcome to our platform!", "body": "Thank you for signing up...",
            "templateId": "welcome_template",
            "variables": {"userName": "John Doe", "activationLink": "https://app.example.com/activate/123"},
            "priority": "normal"}}),
        ),
        (
            "cache.invalidate",
            json!({"invalidationRequest": {
            "keys": ["user:123", "user:123:profile", "user:123:settings"], "namespace": "users"}}),
        ),
        (
            "cache.invalidate",
            json!({"invalidationRequest": {"pattern": "product:*", "namespace": "catalog"}}),
        ),
        (
            "audit.record",
            json!({"auditEvent": {"eventType": "login",
            "actor": {"userId": "user_123", "email": "john@example.com", "ipAddress": "192.168.1.100",
                      "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"},
            "timestamp": "2024-01-15T10:30:00Z",
            "metadata": {"loginMethod": "password", "mfaUsed": true}}}),
        ),
    ]
}

#[tokio::test]
async fn the_seeds_notification_methods_take_its_examples_and_drop_what_does_not_fit() {
    let node = TestNode::start(&["events"]).await;
    let mut ws = node.ws().await;
    ws.call("rpc.subscribe", json!({"topics": ["analytics.track"]}), 1)
        .await;
    for (method, params) in seed_examples() {
        let notification = json!({"jsonrpc": "2.0", "method": method, "params": params});
        let (status, body) = node.post_text(&notification.to_string()).await;
        assert_eq!((status, body.as_str()), (204, ""), "{method}");
    }
    // The same event by position.
    let event = seed_examples()[0].1["event"].clone();
    let positional = json!({"jsonrpc": "2.0", "method": "analytics.track", "params": [event]});
    assert_eq!(node.post_text(&positional.to_string()).await.0, 204);
    assert_eq!(
        ws.recv().await,
        json!({"jsonrpc": "2.0", "method": "analytics.track", "params": seed_examples()[0].1})
    );
    let counts = json!({"analytics.track": 2, "log.error": 1, "presence.update": 1,
                        "email.send": 1, "cache.invalidate": 2, "audit.record": 1});
    eventually(async || node.call("event_counts", json!({})).await["result"] == counts).await;

    // Missing a required field: an error with an id, dropped and counted without.
    let missing = json!({"event": {"eventType": "click"}});
    assert_eq!(
        node.call("analytics.track", missing.clone()).await,
        invalid(
            r#"Invalid params: /event: "userId" is a required property"#,
            json!([{"path": "/event", "message": r#""userId" is a required property"#}]),
            json!(1),
        )
    );
    let neither = json!({"invalidationRequest": {"namespace": "users"}});
    for params in [missing, neither] {
        let method = if params.get("event").is_some() {
            "analytics.track"
        } else {
            "cache.invalidate"
        };
        let dropped = json!({"jsonrpc": "2.0", "method": method, "params": params});
        assert_eq!(node.post_text(&dropped.to_string()).await.0, 204);
    }
    let metrics = within(reqwest::get(node.url("/metrics"))).await.unwrap();
    let metrics = within(metrics.text()).await.unwrap();
    assert!(
        metrics.contains("\nrpcnode_invalid_notifications_total 2\n"),
        "{metrics}"
    );
    // Nothing of them reached the plugin.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(node.call("event_counts", json!({})).await["result"], counts);
}

#[tokio::test]
async fn a_schema_that_does_not_compile_fails_its_plugins_load() {
    let node = TestNode::start(&["calculator", "bad_schema"]).await;
    let health = node.get_json("/health").await;
    assert_eq!(health["status"], "degraded");
    let reason = health["failed"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "plugin bad_schema: method nothing has a params schema that does not compile: "
        ) && reason.contains("objekt"),
        "{reason}"
    );
    assert_eq!(
        node.post(&request("add", json!([1, 2]), json!(1))).await,
        success(json!({"sum": 3}), json!(1))
    );
}
