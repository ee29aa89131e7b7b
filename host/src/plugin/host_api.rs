//! The host functions plugins import (`rpcnode:plugin/host`). Whatever a
//! plugin passes is checked here; a bad argument is an error value, never a
//! trap. The functions that reach a backend (state, notifications,
//! subscriptions, metadata) are async on the host side: a store that answers
//! over the disk or the network never blocks a worker thread.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::bindings::rpcnode::plugin::host::Host;
use super::bindings::rpcnode::plugin::types::{self, LogLevel};
use super::store_state::{PluginEnv, StoreState};
use crate::rpc::wire;
use crate::store::StoreError;

/// The largest metadata value a plugin may attach to a client.
const MAX_METADATA_BYTES: usize = 64 << 10;

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

    async fn broadcast_notification(
        &mut self,
        method: String,
        params: Option<String>,
        exclude: Vec<String>,
    ) -> Result<u32, String> {
        let message = notification(&method, params.as_deref())?;
        let env = Arc::clone(&self.env);
        env.broker
            .broadcast(message, exclude)
            .await
            .map_err(|error| error.to_string())
    }

    async fn send_notification(
        &mut self,
        client_id: String,
        method: String,
        params: Option<String>,
    ) -> Result<(), String> {
        let message = notification(&method, params.as_deref())?;
        let env = Arc::clone(&self.env);
        env.broker
            .send(&client_id, message)
            .await
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

    async fn clients(&mut self) -> Vec<String> {
        self.env.broker.client_ids().await
    }

    async fn client_count(&mut self) -> u32 {
        u32::try_from(self.env.broker.client_ids().await.len()).unwrap_or(u32::MAX)
    }

    async fn client_get(&mut self, client_id: String, key: String) -> Option<String> {
        self.env.broker.metadata(&client_id, &key).await
    }

    async fn client_set(
        &mut self,
        client_id: String,
        key: String,
        value: String,
    ) -> Result<(), String> {
        wire::check_json(&value).map_err(|error| format!("value is not valid JSON: {error}"))?;
        if value.len() > MAX_METADATA_BYTES {
            return Err(format!(
                "value exceeds the limit of {MAX_METADATA_BYTES} bytes"
            ));
        }
        let env = Arc::clone(&self.env);
        env.broker
            .set_metadata(&client_id, key, value)
            .await
            .map_err(|error| error.to_string())
    }

    async fn subscribe(&mut self, client_id: String, topic: String) -> Result<(), String> {
        let env = Arc::clone(&self.env);
        env.broker
            .subscribe(&client_id, &topic)
            .await
            .map(drop)
            .map_err(|error| error.to_string())
    }

    async fn unsubscribe(&mut self, client_id: String, topic: String) -> bool {
        let env = Arc::clone(&self.env);
        match env.broker.unsubscribe(&client_id, &topic).await {
            Ok(was_subscribed) => was_subscribed,
            Err(error) => {
                tracing::error!(plugin = env.name, "unsubscribe failed: {error}");
                false
            }
        }
    }

    async fn publish(
        &mut self,
        topic: String,
        method: String,
        params: Option<String>,
    ) -> Result<u32, String> {
        let message = notification(&method, params.as_deref())?;
        let env = Arc::clone(&self.env);
        env.broker
            .publish(&topic, message)
            .await
            .map_err(|error| error.to_string())
    }

    async fn subscribers(&mut self, topic: String) -> Vec<String> {
        self.env.broker.subscribers(&topic).await
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

    async fn state_get(&mut self, key: String) -> Option<String> {
        let env = Arc::clone(&self.env);
        let state = env.state.as_ref()?;
        state
            .get(&env.name, &key)
            .await
            .unwrap_or_else(|error| logged(&env, "state-get", error))
    }

    async fn state_set(&mut self, key: String, value: String) -> Result<(), String> {
        wire::check_json(&value).map_err(|error| format!("value is not valid JSON: {error}"))?;
        let env = Arc::clone(&self.env);
        let Some(state) = &env.state else {
            return Err(DESCRIBING.into());
        };
        state
            .set(&env.name, &key, value)
            .await
            .map_err(|error| error.to_string())
    }

    async fn state_delete(&mut self, key: String) -> bool {
        let env = Arc::clone(&self.env);
        let Some(state) = &env.state else {
            return false;
        };
        state
            .delete(&env.name, &key)
            .await
            .unwrap_or_else(|error| logged(&env, "state-delete", error))
    }

    async fn state_increment(&mut self, key: String, delta: i64) -> Result<i64, String> {
        let env = Arc::clone(&self.env);
        let Some(state) = &env.state else {
            return Err(DESCRIBING.into());
        };
        state
            .increment(&env.name, &key, delta)
            .await
            .map_err(|error| error.to_string())
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.env.config.get(&key).map(Value::to_string)
    }
}

/// Why state is refused at load time.
const DESCRIBING: &str = "state is not available while the plugin is being described";

/// A store failure where the contract has no error to return: logged, and
/// the plugin gets the empty answer.
fn logged<T: Default>(env: &PluginEnv, function: &str, error: StoreError) -> T {
    tracing::error!(plugin = env.name, "{function} failed: {error}");
    T::default()
}

/// A notification's text, after checking the plugin's params.
fn notification(method: &str, params: Option<&str>) -> Result<String, String> {
    if let Some(params) = params {
        check_params(params)?;
    }
    Ok(wire::notification(method, params.map(str::trim)))
}

/// Params from a plugin must be a JSON object or array.
fn check_params(params: &str) -> Result<(), String> {
    wire::check_json(params).map_err(|error| format!("params are not valid JSON: {error}"))?;
    if !matches!(params.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
        return Err("params must be a JSON object or array".into());
    }
    Ok(())
}
