//! The OpenRPC seed's notification methods: `analytics.track`, `log.error`,
//! `presence.update`, `email.send`, `cache.invalidate` and `audit.record`,
//! with the seed's params schemas (so the host checks every event before it
//! reaches the plugin, and drops and counts a notification that does not
//! fit). Each event is counted in host state and published to the topic named
//! after its method, for whoever subscribed; `event_counts` answers the
//! counts.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};

/// The methods, each with its one named param and that param's schema, as
/// the seed describes them.
fn seed_methods() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Value,
)> {
    let date_time = json!({ "type": "string", "format": "date-time" });
    let anything = json!({ "type": "object", "additionalProperties": true });
    vec![
        (
            "analytics.track",
            "Track user analytics event",
            "Send an analytics event (no response expected)",
            "event",
            json!({
                "type": "object",
                "properties": {
                    "userId": { "type": "string" },
                    "eventType": { "type": "string", "enum": ["page_view", "click", "conversion", "signup"] },
                    "properties": anything,
                    "timestamp": date_time
                },
                "required": ["userId", "eventType"]
            }),
        ),
        (
            "log.error",
            "Log an error event",
            "Send error information for monitoring (fire and forget)",
            "errorData",
            json!({
                "type": "object",
                "properties": {
                    "level": { "type": "string", "enum": ["error", "warning", "info", "debug"] },
                    "message": { "type": "string" },
                    "stackTrace": { "type": "string" },
                    "userId": { "type": "string" },
                    "sessionId": { "type": "string" },
                    "metadata": anything
                },
                "required": ["level", "message"]
            }),
        ),
        (
            "presence.update",
            "Update user presence status",
            "Notify about user presence changes",
            "presenceData",
            json!({
                "type": "object",
                "properties": {
                    "userId": { "type": "string" },
                    "status": { "type": "string", "enum": ["online", "away", "busy", "offline"] },
                    "lastSeen": date_time,
                    "customMessage": { "type": "string", "maxLength": 100 }
                },
                "required": ["userId", "status"]
            }),
        ),
        (
            "email.send",
            "Send email notification",
            "Queue an email for sending (background processing)",
            "emailRequest",
            json!({
                "type": "object",
                "properties": {
                    "to": { "type": "array", "items": { "type": "string", "format": "email" }, "minItems": 1 },
                    "subject": { "type": "string" },
                    "body": { "type": "string" },
                    "templateId": { "type": "string" },
                    "variables": anything,
                    "priority": { "type": "string", "enum": ["low", "normal", "high", "urgent"], "default": "normal" }
                },
                "required": ["to", "subject", "body"]
            }),
        ),
        (
            "cache.invalidate",
            "Invalidate cache entries",
            "Notify cache system to invalidate specific entries",
            "invalidationRequest",
            json!({
                "type": "object",
                "properties": {
                    "keys": { "type": "array", "items": { "type": "string" }, "description": "Cache keys to invalidate" },
                    "pattern": { "type": "string", "description": "Pattern for batch invalidation" },
                    "namespace": { "type": "string", "description": "Cache namespace" }
                },
                "anyOf": [{ "required": ["keys"] }, { "required": ["pattern"] }]
            }),
        ),
        (
            "audit.record",
            "Record audit event",
            "Log security and compliance events",
            "auditEvent",
            json!({
                "type": "object",
                "properties": {
                    "eventType": { "type": "string", "enum": ["login", "logout", "data_access", "data_modification", "permission_change"] },
                    "actor": {
                        "type": "object",
                        "properties": {
                            "userId": { "type": "string" },
                            "email": { "type": "string" },
                            "ipAddress": { "type": "string" },
                            "userAgent": { "type": "string" }
                        },
                        "required": ["userId"]
                    },
                    "resource": {
                        "type": "object",
                        "properties": {
                            "type": { "type": "string" },
                            "id": { "type": "string" },
                            "name": { "type": "string" }
                        }
                    },
                    "timestamp": date_time,
                    "metadata": anything
                },
                "required": ["eventType", "actor", "timestamp"]
            }),
        ),
    ]
}

/// Count the event and publish it to the topic named after its method.
fn record(request: &Request) -> Result<Value, RpcError> {
    let method = &request.method;
    host::state_increment(&format!("count:{method}"), 1).map_err(RpcError::internal)?;
    let event = request.params_value().cloned().unwrap_or_default();
    host::publish(method, method, &event).map_err(RpcError::internal)?;
    Ok(Value::Null)
}

/// How many events of each method arrived.
fn event_counts(_: &Request) -> Result<Value, RpcError> {
    let mut counts = json!({});
    for (method, ..) in seed_methods() {
        counts[method] = json!(host::state_get::<i64>(&format!("count:{method}")).unwrap_or(0));
    }
    Ok(counts)
}

fn plugin() -> Plugin {
    let mut plugin = Plugin::new("events", env!("CARGO_PKG_VERSION"));
    for (name, summary, description, param, schema) in seed_methods() {
        plugin = plugin.method(
            Method::notification(name, record)
                .summary(summary)
                .description(description)
                .params_schema(json!({
                    "type": "object",
                    "properties": { param: schema },
                    "required": [param]
                })),
        );
    }
    plugin.method(
        Method::new("event_counts", event_counts)
            .summary("How many events of each method arrived")
            .without_params(),
    )
}

export!(plugin);
