//! `rpc.discover` and `GET /openrpc.json`: an [OpenRPC](https://spec.open-rpc.org)
//! 1.3.2 document of what this node serves, built from the loaded plugins'
//! manifests and the host's own methods each time it is asked for, so it
//! follows hot reload.

use serde_json::{Map, Value, json};

use crate::plugin::{MethodInfo, MethodTable};

/// The version of the OpenRPC specification the document follows.
pub const OPENRPC_VERSION: &str = "1.3.2";

/// What the document says of the node itself.
#[derive(Debug, Clone)]
pub struct About {
    /// The node's name: the document's title.
    pub title: String,
    /// Where the node serves JSON-RPC over HTTP.
    pub url: String,
}

/// The OpenRPC document for the plugins in `table`. Methods only background
/// work may call are left out.
pub fn document(about: &About, table: &MethodTable) -> Value {
    let mut methods = builtin_methods();
    for plugin in &table.plugins {
        let served = plugin
            .manifest
            .methods
            .iter()
            .filter(|method| !method.internal);
        methods.extend(served.map(|method| method_object(plugin.name(), method)));
    }
    json!({
        "openrpc": OPENRPC_VERSION,
        "info": {"title": about.title, "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"name": about.title, "url": about.url}],
        "methods": methods,
    })
}

/// One plugin method as an OpenRPC method object.
fn method_object(plugin: &str, method: &MethodInfo) -> Value {
    let schema = |text: &Option<String>| {
        text.as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
    };
    let (params, structure) = content_descriptors(schema(&method.params_schema));
    let mut object = Map::new();
    object.insert("name".into(), json!(method.name));
    if let Some(summary) = &method.summary {
        object.insert("summary".into(), json!(summary));
    }
    if let Some(description) = &method.description {
        object.insert("description".into(), json!(description));
    }
    object.insert("params".into(), Value::Array(params));
    // A notification method has no result: OpenRPC's strict notifications.
    if !method.notification {
        let result = schema(&method.result_schema).unwrap_or_else(|| json!({}));
        object.insert("result".into(), json!({"name": "result", "schema": result}));
    }
    object.insert("paramStructure".into(), json!(structure));
    object.insert("x-plugin".into(), json!(plugin));
    Value::Object(object)
}

/// A params schema as content descriptors, and how params may be passed.
/// An object schema gives one descriptor per property, in order (the order
/// positional params bind to); any other schema is one descriptor.
fn content_descriptors(schema: Option<Value>) -> (Vec<Value>, &'static str) {
    let Some(schema) = schema else {
        return (Vec::new(), "either");
    };
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let required = |name: &str| {
            schema["required"]
                .as_array()
                .is_some_and(|required| required.iter().any(|r| r == name))
        };
        let descriptors = properties
            .iter()
            .map(|(name, property)| {
                let mut descriptor =
                    json!({"name": name, "schema": property, "required": required(name)});
                for key in ["summary", "description"] {
                    if let Some(text) = property.get(key).and_then(Value::as_str) {
                        descriptor[key] = json!(text);
                    }
                }
                descriptor
            })
            .collect();
        return (descriptors, "either");
    }
    let structure = if schema["type"] == "array" {
        "by-position"
    } else {
        "by-name"
    };
    (
        vec![json!({"name": "params", "schema": schema, "required": true})],
        structure,
    )
}

/// The host's own methods (`rpc.discover` itself is implied by the
/// specification and not listed).
fn builtin_methods() -> Vec<Value> {
    let topics = json!({
        "name": "topics",
        "required": true,
        "schema": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 256}},
    });
    let position = json!({
        "type": "object",
        "properties": {
            "stream": {"type": "string"},
            "epoch": {"type": "string"},
            "offset": {"type": "integer", "minimum": 0},
        },
        "required": ["stream", "epoch", "offset"],
    });
    vec![
        json!({
            "name": "rpc.subscribe",
            "summary": "Subscribe this WebSocket connection to topics",
            "params": [topics],
            "result": {"name": "result", "schema": {"type": "object", "properties": {
                "subscribed": {"type": "array", "items": {"type": "string"}},
                "streams": {"type": "array", "items": position},
            }}},
            "paramStructure": "by-name",
        }),
        json!({
            "name": "rpc.unsubscribe",
            "summary": "Unsubscribe this WebSocket connection from topics",
            "params": [topics],
            "result": {"name": "result", "schema": {"type": "object", "properties": {
                "unsubscribed": {"type": "array", "items": {"type": "string"}},
            }}},
            "paramStructure": "by-name",
        }),
        json!({
            "name": "rpc.session",
            "summary": "Start or resume a resumable session",
            "description": "Only as the first request of a connection opened with GET /ws?session. \
                Without params it starts a session; with client_id, token and the last positions \
                received it resumes one.",
            "params": [
                {"name": "client_id", "schema": {"type": "string"}},
                {"name": "token", "schema": {"type": "string"}},
                {"name": "positions", "schema": {"type": "array", "items": position}},
            ],
            "result": {"name": "result", "schema": {"type": "object"}},
            "paramStructure": "by-name",
        }),
        json!({
            "name": "rpc.webhook.subscribe",
            "summary": "Subscribe a callback URL to topics, delivered as signed HTTP requests",
            "description": "The callback first receives rpc.webhook.confirm with a challenge, and \
                nothing else until it answers with that challenge. Subscribing the same callback \
                with its secret renews it. See docs/webhooks.md.",
            "params": [
                {"name": "callback", "required": true, "schema": {"type": "string", "format": "uri", "maxLength": 2048}},
                {"name": "topics", "schema": {"type": "array", "maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 256}}},
                {"name": "broadcast", "schema": {"type": "boolean"}},
                {"name": "lease_seconds", "schema": {"type": "integer", "minimum": 1, "maximum": 2_592_000}},
                {"name": "secret", "schema": {"type": "string", "pattern": "^whsec_"}},
            ],
            "result": {"name": "result", "schema": {"type": "object", "properties": {
                "id": {"type": "string"},
                "state": {"enum": ["pending", "active"]},
                "lease_seconds": {"type": "integer"},
                "secret": {"type": "string"},
            }}},
            "paramStructure": "by-name",
        }),
        json!({
            "name": "rpc.webhook.unsubscribe",
            "summary": "End the webhook subscription of a callback URL, given its secret",
            "params": [
                {"name": "callback", "required": true, "schema": {"type": "string"}},
                {"name": "secret", "required": true, "schema": {"type": "string"}},
            ],
            "result": {"name": "result", "schema": {"type": "object", "properties": {
                "unsubscribed": {"type": "boolean"},
            }}},
            "paramStructure": "by-name",
        }),
    ]
}
