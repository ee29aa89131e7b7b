//! The host functions plugins import (`rpcnode:plugin/host`). Whatever a
//! plugin passes is checked here; a bad argument is an error value, never a
//! trap.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::bindings::rpcnode::plugin::host::Host;
use super::bindings::rpcnode::plugin::types::{self, LogLevel};
use super::instance::StoreState;
use crate::clients::Clients;
use crate::jsonrpc;
use crate::scheduler::Spawner;
use crate::state::Namespace;

/// The largest metadata value a plugin may attach to a client.
const MAX_METADATA_BYTES: usize = 64 << 10;

/// What a plugin's host functions act on.
pub struct PluginEnv {
    /// The plugin's name, used in its log lines.
    pub name: String,
    /// The WebSocket clients, for notifications.
    pub clients: Arc<Clients>,
    /// The plugin's state namespace.
    pub state: Arc<Namespace>,
    /// The plugin's `[config]` table.
    pub config: Arc<Map<String, Value>>,
    /// How the plugin schedules background work; `None` while it is being
    /// described at load time.
    pub spawner: Option<Spawner>,
}

impl types::Host for StoreState {}

impl Host for StoreState {
    fn log(&mut self, level: LogLevel, message: String) {
        let plugin = self.env.name.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            LogLevel::Info => tracing::info!(plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn broadcast_notification(
        &mut self,
        method: String,
        params: Option<String>,
        exclude: Vec<String>,
    ) -> Result<u32, String> {
        let message = notification(&method, params.as_deref())?;
        Ok(self.env.clients.broadcast(&message.into(), &exclude))
    }

    fn send_notification(
        &mut self,
        client_id: String,
        method: String,
        params: Option<String>,
    ) -> Result<(), String> {
        let message = notification(&method, params.as_deref())?;
        let clients = &self.env.clients;
        clients
            .send(&client_id, message.into())
            .map_err(|error| error.to_string())
    }

    fn request_headers(&mut self) -> Vec<(String, String)> {
        self.call.headers.list()
    }

    fn request_header(&mut self, name: String) -> Option<String> {
        self.call.headers.first(&name)
    }

    fn call_context(&mut self) -> types::RequestContext {
        self.call.record()
    }

    fn clients(&mut self) -> Vec<String> {
        self.env.clients.ids()
    }

    fn client_count(&mut self) -> u32 {
        u32::try_from(self.env.clients.count()).unwrap_or(u32::MAX)
    }

    fn client_get(&mut self, client_id: String, key: String) -> Option<String> {
        self.env.clients.metadata(&client_id, &key)
    }

    fn client_set(&mut self, client_id: String, key: String, value: String) -> Result<(), String> {
        jsonrpc::check_json(&value).map_err(|error| format!("value is not valid JSON: {error}"))?;
        if value.len() > MAX_METADATA_BYTES {
            return Err(format!(
                "value exceeds the limit of {MAX_METADATA_BYTES} bytes"
            ));
        }
        let clients = &self.env.clients;
        clients
            .set_metadata(&client_id, key, value)
            .map_err(|error| error.to_string())
    }

    fn subscribe(&mut self, client_id: String, topic: String) -> Result<(), String> {
        self.env
            .clients
            .subscribe(&client_id, &topic)
            .map_err(|error| error.to_string())
    }

    fn unsubscribe(&mut self, client_id: String, topic: String) -> bool {
        self.env.clients.unsubscribe(&client_id, &topic)
    }

    fn publish(
        &mut self,
        topic: String,
        method: String,
        params: Option<String>,
    ) -> Result<u32, String> {
        let message = notification(&method, params.as_deref())?;
        Ok(self.env.clients.publish(&topic, &message.into()))
    }

    fn subscribers(&mut self, topic: String) -> Vec<String> {
        self.env.clients.subscribers(&topic)
    }

    fn spawn(
        &mut self,
        method: String,
        params: Option<String>,
        delay_ms: u32,
    ) -> Result<(), String> {
        let Some(spawner) = &self.env.spawner else {
            return Err("spawn is not available while the plugin is being described".into());
        };
        if let Some(params) = &params {
            check_params(params)?;
        }
        let delay = Duration::from_millis(delay_ms.into());
        spawner.scheduler.spawn(spawner, method, params, delay)
    }

    fn state_get(&mut self, key: String) -> Option<String> {
        self.env.state.get(&key)
    }

    fn state_set(&mut self, key: String, value: String) -> Result<(), String> {
        jsonrpc::check_json(&value).map_err(|error| format!("value is not valid JSON: {error}"))?;
        self.env
            .state
            .set(key, value)
            .map_err(|error| error.to_string())
    }

    fn state_delete(&mut self, key: String) -> bool {
        self.env.state.delete(&key)
    }

    fn state_increment(&mut self, key: String, delta: i64) -> Result<i64, String> {
        self.env
            .state
            .increment(&key, delta)
            .map_err(|error| error.to_string())
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.env.config.get(&key).map(Value::to_string)
    }
}

/// A notification's text, after checking the plugin's params.
fn notification(method: &str, params: Option<&str>) -> Result<String, String> {
    if let Some(params) = params {
        check_params(params)?;
    }
    Ok(jsonrpc::notification(method, params.map(str::trim)))
}

/// Params from a plugin must be a JSON object or array.
fn check_params(params: &str) -> Result<(), String> {
    jsonrpc::check_json(params).map_err(|error| format!("params are not valid JSON: {error}"))?;
    if !matches!(params.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
        return Err("params must be a JSON object or array".into());
    }
    Ok(())
}
