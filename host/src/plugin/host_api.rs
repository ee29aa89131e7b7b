//! The host functions plugins import (`rpcnode:plugin/host`).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::bindings::rpcnode::plugin::host::Host;
use super::bindings::rpcnode::plugin::types::{self, LogLevel};
use super::instance::StoreState;
use crate::clients::Clients;
use crate::jsonrpc;
use crate::state::Namespace;

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
    ) -> Result<u32, String> {
        let message = notification(&method, params.as_deref())?;
        Ok(self.env.clients.broadcast(&message.into()))
    }

    fn send_notification(
        &mut self,
        client_id: String,
        method: String,
        params: Option<String>,
    ) -> Result<(), String> {
        let message = notification(&method, params.as_deref())?;
        self.env
            .clients
            .send(&client_id, message.into())
            .map_err(|error| error.to_string())
    }

    fn clients(&mut self) -> Vec<String> {
        self.env.clients.ids()
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
        jsonrpc::check_json(params)
            .map_err(|error| format!("params are not valid JSON: {error}"))?;
        if !matches!(params.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
            return Err("params must be a JSON object or array".into());
        }
    }
    Ok(jsonrpc::notification(method, params.map(str::trim)))
}
