//! Functions the host offers to plugins: logging, notifications, clients,
//! topics, durable state, background work and configuration.
//!
//! State lives in the host, per plugin name: every instance of a plugin sees the
//! same values, and they outlive any one instance. Guest globals (`static`s) are
//! a per-instance cache only: the host runs several instances of a plugin at
//! once and replaces them at will.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::Context;
use crate::export::bindings::rpcnode::plugin::host;
pub use crate::export::bindings::rpcnode::plugin::types::LogLevel;

/// Write `message` to the host's log, tagged with this plugin's name.
pub fn log(level: LogLevel, message: &str) {
    host::log(level, message);
}

/// The headers of the call in progress (the HTTP request's, or the WebSocket
/// handshake's), lowercase names; empty for background work.
pub fn request_headers() -> Vec<(String, String)> {
    host::request_headers()
}

/// The first value of header `name` (case-insensitive) of the call in
/// progress.
pub fn request_header(name: &str) -> Option<String> {
    host::request_header(name)
}

/// Who made the call in progress, and how: what [`Request::context`]
/// returns, and what `on-connect` hooks receive.
///
/// [`Request::context`]: crate::Request::context
pub fn call_context() -> Context {
    crate::export::context(host::call_context())
}

/// Send notification `method` with `params` to every connected WebSocket
/// client; returns how many clients it was queued for.
pub fn broadcast(method: &str, params: &Value) -> Result<u32, String> {
    broadcast_except(method, params, &[])
}

/// Like [`broadcast`], skipping the clients in `exclude` (such as the caller).
pub fn broadcast_except(method: &str, params: &Value, exclude: &[String]) -> Result<u32, String> {
    host::broadcast_notification(method, Some(&params.to_string()), exclude)
}

/// Send notification `method` with `params` to one WebSocket client. Fails
/// when the client is unknown or gone.
pub fn notify(client_id: &str, method: &str, params: &Value) -> Result<(), String> {
    host::send_notification(client_id, method, Some(&params.to_string()))
}

/// The ids of the connected WebSocket clients.
pub fn clients() -> Vec<String> {
    host::clients()
}

/// How many WebSocket clients are connected.
pub fn client_count() -> u32 {
    host::client_count()
}

/// Metadata `key` of a connected client; `None` when absent or not a `T`.
pub fn client_get<T: DeserializeOwned>(client_id: &str, key: &str) -> Option<T> {
    host::client_get(client_id, key).and_then(|text| serde_json::from_str(&text).ok())
}

/// Set metadata `key` of a connected client; dropped when it disconnects.
pub fn client_set<T: Serialize>(client_id: &str, key: &str, value: &T) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|error| error.to_string())?;
    host::client_set(client_id, key, &text)
}

/// Subscribe a connected client to `topic`.
pub fn subscribe(client_id: &str, topic: &str) -> Result<(), String> {
    host::subscribe(client_id, topic)
}

/// Unsubscribe a client from `topic`; true if it was subscribed.
pub fn unsubscribe(client_id: &str, topic: &str) -> bool {
    host::unsubscribe(client_id, topic)
}

/// Send notification `method` with `params` to the subscribers of `topic`;
/// returns how many clients it was queued for.
pub fn publish(topic: &str, method: &str, params: &Value) -> Result<u32, String> {
    host::publish(topic, method, Some(&params.to_string()))
}

/// The ids of the clients subscribed to `topic`.
pub fn subscribers(topic: &str) -> Vec<String> {
    host::subscribers(topic)
}

/// Call this plugin's own `method` with `params` after `delay_ms`, with no
/// client attached.
pub fn spawn(method: &str, params: &Value, delay_ms: u32) -> Result<(), String> {
    host::spawn(method, Some(&params.to_string()), delay_ms)
}

/// Read `key` from this plugin's state; `None` when absent or not a `T`.
pub fn state_get<T: DeserializeOwned>(key: &str) -> Option<T> {
    host::state_get(key).and_then(|text| serde_json::from_str(&text).ok())
}

/// Store `value` at `key` in this plugin's state.
pub fn state_set<T: Serialize>(key: &str, value: &T) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|error| error.to_string())?;
    host::state_set(key, &text)
}

/// Remove `key` from this plugin's state; true if it existed.
pub fn state_delete(key: &str) -> bool {
    host::state_delete(key)
}

/// Atomically add `delta` to the integer at `key` (missing counts as 0) and
/// return the new value.
pub fn state_increment(key: &str, delta: i64) -> Result<i64, String> {
    host::state_increment(key, delta)
}

/// Read `key` from this plugin's `[config]` table; `None` when absent or not a `T`.
pub fn config<T: DeserializeOwned>(key: &str) -> Option<T> {
    host::config_get(key).and_then(|text| serde_json::from_str(&text).ok())
}
