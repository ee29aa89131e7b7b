//! Loading plugins from a folder: compile each `.wasm` component, link it
//! against the host, ask it to describe itself and check what it says.
//!
//! A file that fails to load is reported and skipped; it never stops the
//! others.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Map, Value};
use wasmtime::component::Component;

use super::bindings::{PluginPre, rpcnode::plugin::types::Manifest};
use super::engine::PluginEngine;
use super::host_api::PluginEnv;
use super::instance::{InstancePool, classify, new_store};
use super::loaded::LoadedPlugin;
use super::registry::{is_reserved, normalize};
use crate::clients::Clients;
use crate::scheduler::{Scheduler, Spawner};
use crate::state::StateStore;

/// Limits applied to every plugin's instances.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// The most instances of one plugin alive at once (its concurrency).
    pub max_instances: usize,
    /// The most linear memory one instance may use, in bytes.
    pub memory_limit: usize,
    /// How long instantiation and `describe` may take at load time.
    pub load_timeout: Duration,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            max_instances: 64,
            memory_limit: 64 << 20,
            load_timeout: Duration::from_secs(10),
        }
    }
}

/// A plugin file that did not load, and why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The `.wasm` file.
    pub file: PathBuf,
    /// What went wrong, for logs and `/health`.
    pub reason: String,
}

/// The optional `<file-stem>.toml` beside a plugin.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginFile {
    /// Values the plugin reads with `config-get`.
    #[serde(default)]
    config: Map<String, Value>,
}

/// Everything plugins share with the rest of the host.
pub struct Shared<'a> {
    /// The WebSocket clients.
    pub clients: &'a Arc<Clients>,
    /// Plugin state.
    pub state: &'a StateStore,
    /// Background work.
    pub scheduler: &'a Arc<Scheduler>,
}

/// Load every `*.wasm` file in `dir`, in file-name order. Fails only when the
/// folder cannot be read.
pub async fn load_dir(
    engine: &PluginEngine,
    dir: &Path,
    shared: Shared<'_>,
    settings: &PluginSettings,
) -> anyhow::Result<(Vec<LoadedPlugin>, Vec<LoadFailure>)> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugins folder {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading plugins folder {}", dir.display()))?
            .path();
        if path
            .extension()
            .is_some_and(|extension| extension == "wasm")
        {
            files.push(path);
        }
    }
    files.sort();

    let mut loaded = Vec::new();
    let mut failures = Vec::new();
    for file in files {
        match load_file(engine, &file, &shared, settings).await {
            Ok(plugin) => {
                tracing::info!(
                    plugin = plugin.name(),
                    version = plugin.manifest.version,
                    file = %file.display(),
                    methods = plugin.manifest.methods.len(),
                    "plugin loaded"
                );
                loaded.push(plugin);
            }
            Err(error) => {
                let reason = format!("{error:#}");
                tracing::error!(file = %file.display(), "plugin failed to load: {reason}");
                failures.push(LoadFailure { file, reason });
            }
        }
    }
    Ok((loaded, failures))
}

async fn load_file(
    engine: &PluginEngine,
    file: &Path,
    shared: &Shared<'_>,
    settings: &PluginSettings,
) -> anyhow::Result<LoadedPlugin> {
    let config = Arc::new(read_config(file)?);
    let bytes = tokio::fs::read(file).await.context("reading the file")?;
    let compiler = engine.engine.clone();
    let component = tokio::task::spawn_blocking(move || Component::from_binary(&compiler, &bytes))
        .await
        .context("compiling the component")?
        .map_err(anyhow::Error::from)
        .context("not a valid WebAssembly component")?;
    let pre = engine
        .linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .context("the component's imports do not match the rpcnode:plugin world")?;
    let pre = PluginPre::new(pre)
        .map_err(anyhow::Error::from)
        .context("the component does not export rpcnode:plugin/handler@0.1.0")?;

    let stem = file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let probe_env = Arc::new(PluginEnv {
        name: stem,
        clients: Arc::clone(shared.clients),
        state: Arc::default(),
        config: Arc::clone(&config),
        spawner: None,
    });
    let manifest = describe(engine, &pre, probe_env, settings).await?;
    check_manifest(&manifest)?;

    let env = Arc::new(PluginEnv {
        name: manifest.name.clone(),
        clients: Arc::clone(shared.clients),
        state: shared.state.namespace(&manifest.name),
        config,
        spawner: Some(Spawner {
            scheduler: Arc::clone(shared.scheduler),
            plugin: manifest.name.clone(),
            methods: manifest
                .methods
                .iter()
                .map(|method| method.name.clone())
                .collect(),
            pending: Arc::default(),
        }),
    });
    let pool = InstancePool::new(
        engine.clone(),
        pre,
        env,
        settings.max_instances,
        settings.memory_limit,
    );
    Ok(LoadedPlugin {
        manifest,
        file: file.to_path_buf(),
        pool: Arc::new(pool),
        unloaded: Default::default(),
    })
}

/// Instantiate once, with a throwaway state namespace, to call `describe`.
async fn describe(
    engine: &PluginEngine,
    pre: &PluginPre<super::instance::StoreState>,
    env: Arc<PluginEnv>,
    settings: &PluginSettings,
) -> anyhow::Result<Manifest> {
    let deadline = Instant::now() + settings.load_timeout;
    let mut store = new_store(engine, env, settings.memory_limit, deadline);
    let guest = pre
        .instantiate_async(&mut store)
        .await
        .map_err(|error| anyhow::Error::from(classify(error)))
        .context("instantiating")?;
    guest
        .rpcnode_plugin_handler()
        .call_describe(&mut store)
        .await
        .map_err(|error| anyhow::Error::from(classify(error)))
        .context("calling describe")
}

fn read_config(file: &Path) -> anyhow::Result<Map<String, Value>> {
    let path = file.with_extension("toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let parsed: PluginFile =
        toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(parsed.config)
}

fn check_manifest(manifest: &Manifest) -> anyhow::Result<()> {
    let name = &manifest.name;
    let name_is_valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_is_valid {
        bail!("plugin name {name:?} must be 1 to 64 ASCII letters, digits, '_', '-' or '.'");
    }
    let mut seen = HashSet::new();
    for method in &manifest.methods {
        let method_name = &method.name;
        if method_name.is_empty() {
            bail!("plugin {name}: a method has an empty name");
        }
        if is_reserved(method_name) {
            bail!("plugin {name}: method {method_name} uses the reserved rpc. prefix");
        }
        if !seen.insert(normalize(method_name).into_owned()) {
            bail!("plugin {name}: method {method_name} is listed twice");
        }
        for schema in [&method.params_schema, &method.result_schema]
            .into_iter()
            .flatten()
        {
            serde_json::from_str::<serde::de::IgnoredAny>(schema).with_context(|| {
                format!("plugin {name}: method {method_name} has a schema that is not JSON")
            })?;
        }
    }
    for timer in &manifest.timers {
        let method = &timer.method;
        if !manifest
            .methods
            .iter()
            .any(|candidate| candidate.name == *method)
        {
            bail!("plugin {name}: timer calls {method}, which is not in its methods");
        }
        if timer.every_ms < 10 {
            bail!(
                "plugin {name}: timer for {method} fires every {} ms; the minimum is 10",
                timer.every_ms
            );
        }
    }
    Ok(())
}
