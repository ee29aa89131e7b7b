//! The JavaScript and Python examples are twins of Rust ones (same plugin
//! names, methods and answers), so one set of tests runs against each
//! language's build. A project made by `rpcnode new` in each language must
//! load and answer unedited.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use rpcnode::Config;

use crate::openrpc::{described, discover, params_by_method};
use crate::support::{
    TestNode, error, plugin_config, plugins_dir_with, request, success, unix_time,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Language {
    Rust,
    JavaScript,
    Python,
}

impl Language {
    /// The folder under `target/` that `cargo xtask build-plugins` fills.
    fn examples(self) -> &'static str {
        match self {
            Self::Rust => "plugins",
            Self::JavaScript => "plugins-js",
            Self::Python => "plugins-python",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::JavaScript => "js",
            Self::Python => "python",
        }
    }
}

fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// A server with the named plugins from `target/<folder>/`. The compile cache
/// is shared by the whole test run (and filled before it by `cargo xtask
/// test`): a JavaScript or Python component takes seconds to compile, and the
/// cache is keyed by content.
async fn start(folder: &str, plugins: &[&str]) -> TestNode {
    start_with(folder, plugins, |_| {}).await
}

/// Like [`start`], with `configure` changing settings and adding files.
async fn start_with(
    folder: &str,
    plugins: &[&str],
    configure: impl FnOnce(&mut Config),
) -> TestNode {
    let files: Vec<PathBuf> = plugins
        .iter()
        .map(|name| {
            let file = target().join(folder).join(format!("{name}.wasm"));
            assert!(
                file.exists(),
                "{} is not built: run `cargo xtask test`",
                file.display()
            );
            file
        })
        .collect();
    let cache = target().join("test-compile-cache");
    TestNode::start_in(plugins_dir_with(&files), move |config| {
        config.cache_dir = Some(cache);
        configure(config);
    })
    .await
}

async fn calculator(language: Language) {
    let node = start(language.examples(), &["calculator"]).await;
    let calls = [
        ("add", json!({"a": 2, "b": 3}), json!({"sum": 5})),
        ("add", json!([1.5, 1.5]), json!({"sum": 3})),
        (
            "add",
            json!({"a": 1, "b": 2, "note": "ignored"}),
            json!({"sum": 3}),
        ),
        ("multiply", json!([4, 2.5]), json!({"product": 10})),
        ("divide", json!({"a": 1, "b": 4}), json!({"quotient": 0.25})),
        // The seed's defaults for operands left out.
        ("add", json!({"a": 5}), json!({"sum": 5})),
        ("multiply", json!([3]), json!({"product": 3})),
        ("divide", json!({"a": 3}), json!({"quotient": 3})),
    ];
    let mut ws = node.ws().await;
    for (id, (method, params, result)) in (1u64..).zip(calls) {
        assert_eq!(
            node.call(method, params.clone()).await,
            success(result.clone(), json!(1)),
            "{method} {params} over HTTP"
        );
        assert_eq!(
            ws.call(method, params.clone(), id).await,
            success(result, json!(id)),
            "{method} {params} over WebSocket"
        );
    }

    assert_eq!(
        node.call("divide", json!([1, 0])).await,
        error(-32602, "Invalid params: Cannot divide by zero", json!(1))
    );
    // The host checks the params against the schema the plugin published
    // (in Python, from the function's signature) before the plugin runs.
    let mistyped = r#""x" is not of type "number""#;
    assert_eq!(
        node.call("add", json!({"a": "x", "b": 1})).await,
        json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602,
            "message": format!("Invalid params: /a: {mistyped}"),
            "data": [{"path": "/a", "message": mistyped}]}})
    );
    let health = node.get_json("/health").await;
    let plugin = &health["plugins"][0];
    assert_eq!(plugin["name"], "calculator");
    let mut methods: Vec<Value> = plugin["methods"].as_array().unwrap().clone();
    methods.sort_by_key(|method| method.to_string());
    assert_eq!(methods, [json!("add"), json!("divide"), json!("multiply")]);
}

async fn data_service(language: Language) {
    let node = start(language.examples(), &["data_service"]).await;
    assert_eq!(
        params_by_method(&discover(&node).await),
        described(&[("updateData", &["id", "value"]), ("getData", &["id"])])
    );
    let mut watcher = node.ws().await;
    let mut writer = node.ws().await;
    let before = unix_time();
    let answer = writer
        .call("updateData", json!({"id": "temp", "value": 21.5}), 1)
        .await;
    assert_eq!(
        answer,
        success(json!({"success": true, "clients_notified": 2}), json!(1))
    );
    let update =
        json!({"jsonrpc": "2.0", "method": "dataUpdated", "params": {"id": "temp", "value": 21.5}});
    assert_eq!(watcher.recv().await, update);
    assert_eq!(writer.recv().await, update);
    let mut read = node.call("getData", json!({"id": "temp"})).await;
    let stamped = read["result"]["timestamp"].take().as_f64().unwrap();
    assert!((before..=unix_time()).contains(&stamped), "{stamped}");
    assert_eq!(
        read,
        success(
            json!({"id": "temp", "data": {"value": 21.5}, "timestamp": null}),
            json!(1)
        )
    );
    // State lives in the host: an HTTP caller (no WebSocket) sees the same.
    assert_eq!(
        node.call("updateData", json!(["list", [1, {"x": null}]]))
            .await,
        success(json!({"success": true, "clients_notified": 2}), json!(1))
    );
    let mut read = node.call("getData", json!(["list"])).await;
    read["result"]["timestamp"].take();
    assert_eq!(
        read,
        success(
            json!({"id": "list", "data": {"value": [1, {"x": null}]}, "timestamp": null}),
            json!(1)
        )
    );
    assert_eq!(
        node.call("getData", json!({"id": 7})).await,
        error(404, "no data for id 7", json!(1))
    );
}

/// Hooks, configuration and state: the audit plugin rejects what its config
/// denies and counts every outcome, rejections included.
async fn audit(language: Language) {
    let policy = "[config]\ndeny_methods = [\"multiply\"]\n";
    let node = start_with(
        language.examples(),
        &["audit", "calculator"],
        plugin_config("audit", policy),
    )
    .await;
    assert_eq!(
        node.call("multiply", json!([2, 3])).await,
        error(
            403,
            "method multiply is denied by the audit policy",
            json!(1)
        )
    );
    assert_eq!(
        node.call("add", json!([2, 3])).await,
        success(json!({"sum": 5}), json!(1))
    );
    assert_eq!(
        node.call("audit_counts", json!([])).await,
        success(json!({"requests": 2, "errors": 1}), json!(1))
    );
    let mut ws = node.ws().await;
    assert_eq!(
        ws.call("add", json!([1, 1]), 7).await,
        success(json!({"sum": 2}), json!(7))
    );
    assert_eq!(
        ws.call("audit_counts", json!({}), 8).await,
        success(json!({"requests": 4, "errors": 1}), json!(8))
    );
    // Each SDK describes the methods from their code, as the Rust ones do.
    let operands: &[&str] = &["a?", "b?"];
    assert_eq!(
        params_by_method(&discover(&node).await),
        described(&[
            ("add", operands),
            ("multiply", operands),
            ("divide", operands),
            ("audit_counts", &[]),
        ])
    );
}

/// What `rpcnode new hello_LANG --lang LANG` wrote, built unedited by
/// `rpcnode build` (run by `cargo xtask test` outside the checkout) into
/// `target/plugins-scaffold/LANG/`.
async fn new_project(language: &str) {
    let name = format!("hello_{language}");
    let folder = format!("plugins-scaffold/{language}");
    let node = start(&folder, &[name.as_str()]).await;
    let calls = [
        (json!({"name": "Ada"}), "Hello, Ada!"),
        (json!(null), "Hello, world!"),
        (json!(["Bob"]), "Hello, Bob!"),
    ];
    for (count, (params, greeting)) in (1..).zip(calls) {
        let mut request = json!({"jsonrpc": "2.0", "id": 1, "method": "hello"});
        if !params.is_null() {
            request["params"] = params;
        }
        assert_eq!(
            node.post(&request).await,
            success(json!({"greeting": greeting, "count": count}), json!(1))
        );
    }
    assert_eq!(node.plugin_version(&name).await.as_deref(), Some("0.1.0"));
}

#[tokio::test]
async fn calculator_in_rust() {
    calculator(Language::Rust).await;
}

#[tokio::test]
async fn calculator_in_javascript() {
    calculator(Language::JavaScript).await;
}

#[tokio::test]
async fn calculator_in_python() {
    calculator(Language::Python).await;
}

#[tokio::test]
async fn data_service_in_rust() {
    data_service(Language::Rust).await;
}

#[tokio::test]
async fn data_service_in_javascript() {
    data_service(Language::JavaScript).await;
}

#[tokio::test]
async fn data_service_in_python() {
    data_service(Language::Python).await;
}

#[tokio::test]
async fn audit_in_rust() {
    audit(Language::Rust).await;
}

#[tokio::test]
async fn audit_in_javascript() {
    audit(Language::JavaScript).await;
}

#[tokio::test]
async fn audit_in_python() {
    audit(Language::Python).await;
}

#[tokio::test]
async fn new_project_in_rust() {
    new_project("rust").await;
}

#[tokio::test]
async fn new_project_in_javascript() {
    new_project("js").await;
}

#[tokio::test]
async fn new_project_in_typescript() {
    new_project("ts").await;
}

#[tokio::test]
async fn new_project_in_python() {
    new_project("python").await;
}

/// The SDKs' edges: an uncaught exception answers -32603 and the instance
/// keeps serving, the context arrives, a refused host call is an exception
/// the plugin can catch, and a notification method answers null.
async fn sdk_edges(language: Language) {
    let folder = format!("plugin-fixtures-{}", language.name());
    let node = start(&folder, &["sdk_probe"]).await;
    for _ in 0..3 {
        assert_eq!(
            node.call("fail", json!([])).await,
            error(-32603, "TypeError: boom", json!(1))
        );
    }
    let (status, body) = node
        .post_with(
            r#"{"jsonrpc":"2.0","method":"whoami","id":1}"#,
            &[("x-probe", "yes")],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        success(
            json!({"transport": "http", "client": null, "requestId": 1, "probe": "yes", "listed": "yes"}),
            json!(1)
        )
    );
    let mut ws = node.ws().await;
    let answer = ws.call("whoami", json!({}), 5).await;
    let client = answer["result"]["client"].as_str().unwrap_or_default();
    assert!(client.starts_with("ws_"), "{answer}");
    assert_eq!(
        answer["result"],
        json!({"transport": "websocket", "client": client, "requestId": 5, "probe": null, "listed": null})
    );
    let echoed = match language {
        Language::JavaScript => json!([1, 2]),
        _ => json!({"a": 1, "b": 2}),
    };
    assert_eq!(
        node.call("echo", json!([1, 2])).await,
        success(echoed, json!(1))
    );
    assert_eq!(
        node.call("notify_nobody", json!([])).await,
        success(
            json!(r#"HostError: no connected client "ws_0_0""#),
            json!(1)
        )
    );
    // JSON null is a value like any other in host state.
    assert_eq!(
        node.call("store_null", json!([])).await,
        success(json!({"stored": null}), json!(1))
    );
    assert_eq!(
        node.call("ping", json!([])).await,
        success(Value::Null, json!(1))
    );
    // A batch goes to the plugin in one entry; each call sees its own id.
    let whoami = |id: Value| {
        success(
            json!({"transport": "http", "client": null, "requestId": id, "probe": null, "listed": null}),
            id,
        )
    };
    let batch = json!([
        request("whoami", json!({}), json!(7)),
        request("fail", json!([]), json!(8)),
        {"jsonrpc": "2.0", "method": "whoami", "params": {}},
        request("ping", json!([]), json!(9)),
        request("whoami", json!({}), json!("last")),
    ]);
    assert_eq!(
        node.post(&batch).await,
        json!([
            whoami(json!(7)),
            error(-32603, "TypeError: boom", json!(8)),
            success(Value::Null, json!(9)),
            whoami(json!("last")),
        ])
    );
}

#[tokio::test]
async fn sdk_edges_in_javascript() {
    sdk_edges(Language::JavaScript).await;
}

#[tokio::test]
async fn sdk_edges_in_python() {
    sdk_edges(Language::Python).await;
}

/// Async handlers and hooks: every function of the fixture awaits a timer
/// before it acts, so each answer shows the call waited for it; a rejection
/// is an error answer, an async before-request hook really refuses, and the
/// request timeout still bounds a call waiting on a timer.
async fn async_sdk(language: Language) {
    let folder = format!("plugin-fixtures-{}", language.name());
    let node = start_with(&folder, &["async_probe"], |config| {
        config.request_timeout = Duration::from_secs(2);
    })
    .await;
    assert_eq!(
        node.call("wait", json!([30])).await,
        success(json!({"waited": 30, "atLeast": true}), json!(1))
    );
    assert_eq!(
        node.call("promised", json!([])).await,
        success(json!({"promised": true}), json!(1))
    );
    assert_eq!(
        node.call("refuse", json!([])).await,
        json!({"jsonrpc": "2.0", "id": 1, "error":
            {"code": 4001, "message": "refused after a wait", "data": {"late": true}}})
    );
    for _ in 0..2 {
        assert_eq!(
            node.call("explode", json!([])).await,
            error(-32603, "TypeError: late boom", json!(1))
        );
    }
    assert_eq!(
        node.call("guarded", json!([])).await,
        error(401, "Authentication required", json!(1))
    );
    // A batch of calls that wait goes to the plugin in one entry, answered
    // in order.
    let batch = json!([
        request("wait", json!([5]), json!(1)),
        request("refuse", json!([]), json!(2)),
        request("promised", json!([]), json!(3)),
    ]);
    assert_eq!(
        node.post(&batch).await,
        json!([
            success(json!({"waited": 5, "atLeast": true}), json!(1)),
            {"jsonrpc": "2.0", "id": 2, "error":
                {"code": 4001, "message": "refused after a wait", "data": {"late": true}}},
            success(json!({"promised": true}), json!(3)),
        ])
    );
    let mut ws = node.ws().await;
    let welcome = ws.recv().await;
    assert_eq!(welcome["method"], "welcome");
    assert!(welcome["params"]["client_id"].is_string(), "{welcome}");
    // Each call above ran the async after-request hook once, refusals included.
    assert_eq!(
        ws.call("afters", json!([]), 2).await,
        success(json!(9), json!(2))
    );
    assert_eq!(
        node.call("wait", json!([60_000])).await,
        error(
            -32000,
            "Server error: request timed out after 2s (request_timeout)",
            json!(1)
        )
    );
    assert_eq!(
        node.call("wait", json!([1])).await,
        success(json!({"waited": 1, "atLeast": true}), json!(1))
    );
}

#[tokio::test]
async fn async_functions_in_javascript() {
    async_sdk(Language::JavaScript).await;
}

#[tokio::test]
async fn async_functions_in_python() {
    async_sdk(Language::Python).await;
}

/// A task an `async def` started and did not await is cancelled when the
/// call returns, whether the coroutine finished without suspending or after
/// a wait: it never runs, not even when a later call runs the loop past the
/// time it waits for, and the instance serves on.
#[tokio::test]
async fn python_tasks_left_behind_are_cancelled() {
    let node = start_with("plugin-fixtures-python", &["async_probe"], |config| {
        config.plugins.max_instances = 1;
    })
    .await;
    for params in [json!({}), json!({"wait": true})] {
        assert_eq!(
            node.call("abandon", params).await,
            success(json!("returned"), json!(1))
        );
        assert_eq!(
            node.call("wait", json!([300])).await,
            success(json!({"waited": 300, "atLeast": true}), json!(1))
        );
        assert_eq!(
            node.call("abandoned", json!([])).await,
            success(json!(0), json!(1))
        );
    }
}

/// Python results beyond JSON's types are written the way FastAPI writes
/// them; one the SDK cannot write (an unknown type, a value that contains
/// itself) is a clear -32603 and the instance serves on, writing the next
/// results whole. Generic annotations become the published schema, which
/// the host checks.
#[tokio::test]
async fn python_rich_results_and_generic_annotations() {
    let node = start("plugin-fixtures-python", &["sdk_probe"]).await;
    let rich = success(
        json!({
            "line": {"sku": "a-1", "price": 2.5, "count": 3},
            "whole": 4,
            "at": "2026-12-02T10:30:00+00:00",
            "day": "2026-12-02",
            "pair": [1, "two"],
            "tags": ["only"],
            "color": "red",
            "total": "12.34 EUR",
        }),
        json!(1),
    );
    assert_eq!(node.call("rich", json!([])).await, rich);
    for _ in 0..2 {
        assert_eq!(
            node.call("opaque", json!([])).await,
            error(
                -32603,
                "TypeError: Object of type object is not JSON serializable",
                json!(1)
            )
        );
        assert_eq!(
            node.call("cycle", json!([])).await,
            error(-32603, "ValueError: Circular reference detected", json!(1))
        );
    }
    assert_eq!(node.call("rich", json!([])).await, rich);
    assert_eq!(
        node.call(
            "typed",
            json!({"values": [1, 2.5], "counts": {"a": 2}, "maybe": null, "level": "high"})
        )
        .await,
        success(
            json!({"sum": 3.5, "counted": 2, "maybe": null, "level": "high", "other": null}),
            json!(1)
        )
    );
    for (params, problem) in [
        (
            json!({"values": [1, "x"], "counts": {}}),
            r#"/values/1: "x" is not of type "number""#,
        ),
        (
            json!({"values": [], "counts": {"a": 1.5}}),
            r#"/counts/a: 1.5 is not of type "integer""#,
        ),
        (
            json!({"values": [], "counts": {}, "level": "mid"}),
            r#"/level: "mid" is not one of "low" or "high""#,
        ),
        (
            json!({"values": [], "counts": {}, "other": "x"}),
            r#"/other: "x" is not valid under any of the schemas listed in the 'anyOf' keyword"#,
        ),
    ] {
        assert_eq!(
            node.call("typed", params).await["error"]["message"],
            format!("Invalid params: {problem}")
        );
    }
}

/// An npm package imported the way JavaScript developers import it is
/// bundled, resolved as Node resolves it (lodash-es has no `exports` map,
/// only `module` and `main`); the build installed it from the project's lock
/// file.
#[tokio::test]
async fn npm_packages_are_bundled_as_node_resolves_them() {
    let node = start("plugin-fixtures-js", &["npm_deps"]).await;
    assert_eq!(
        node.call("chunked", json!([[1, 2, 3, 4, 5], 2])).await,
        success(json!([[1, 2], [3, 4], [5]]), json!(1))
    );
    assert_eq!(
        node.call("kebab", json!(["Hello World"])).await,
        success(json!("hello-world"), json!(1))
    );
}
