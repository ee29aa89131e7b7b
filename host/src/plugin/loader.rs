//! Loading one plugin: compile its component (through the cache), link it
//! against the host, ask it to describe itself and check what it says.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::{SingleCallsPre, rpcnode::plugin::types::Manifest};
use super::cache::CompileCache;
use super::engine::PluginEngine;
use super::instance::{InstancePool, classify};
use super::loaded::LoadedPlugin;
use super::params::ParamsSchema;
use super::plugin_file::{PluginFile, PluginSettings, Sandbox};
use super::registry::{is_reserved, normalize};
use super::spawner::{Schedule, Spawner};
use super::store_state::{PluginEnv, StoreState, new_store};
use crate::metrics::Metrics;
use crate::push::Broker;
use crate::store::StateStore;

/// The version of the `rpcnode:plugin` contract (`wit/plugin.wit`) this host
/// speaks.
const CONTRACT_VERSION: &str = "0.3.1";
/// The earlier version it loads too: 0.3.1 only added `batch-handler`.
const COMPATIBLE_VERSION: &str = "0.3.0";

/// Everything plugins share with the rest of the host.
pub struct Shared {
    /// The engine and linker.
    pub engine: PluginEngine,
    /// Compiled components on disk.
    pub cache: Arc<CompileCache>,
    /// Default limits.
    pub settings: PluginSettings,
    /// Plugin configuration by file stem, used when `NAME.toml` is absent.
    pub sections: BTreeMap<String, PluginFile>,
    /// Notifications, subscriptions and client metadata.
    pub broker: Arc<Broker>,
    /// Plugin state.
    pub state: Arc<dyn StateStore>,
    /// Background work.
    pub scheduler: Arc<dyn Schedule>,
    /// Request counts, which each method's route keeps a handle to.
    pub metrics: Arc<Metrics>,
}

/// Load one plugin from the component in `bytes` (read from `file`).
pub async fn load_file(
    shared: &Shared,
    file: &Path,
    bytes: Vec<u8>,
) -> anyhow::Result<LoadedPlugin> {
    let stem = file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let plugin_file = PluginFile::read(file, shared.sections.get(&stem))?;
    let sandbox = plugin_file.sandbox(&shared.settings);
    let config = Arc::new(plugin_file.config);
    let (engine, path, cache) = (
        shared.engine.engine.clone(),
        file.to_path_buf(),
        Arc::clone(&shared.cache),
    );
    let component = tokio::task::spawn_blocking(move || cache.load(&engine, &bytes, &path))
        .await
        .context("compiling the component")??;
    check_contract_version(&component, &shared.engine.engine)?;
    let pre = shared
        .engine
        .linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .context("the component's imports do not match the rpcnode:plugin world")?;
    let pre = SingleCallsPre::new(pre)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!("the component does not export rpcnode:plugin/handler@{CONTRACT_VERSION}")
        })?;

    let stem = file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let probe_env = Arc::new(PluginEnv {
        name: stem,
        broker: Arc::clone(&shared.broker),
        state: None,
        config: Arc::clone(&config),
        spawner: None,
    });
    let manifest = describe(
        &shared.engine,
        &pre,
        probe_env,
        &sandbox,
        shared.settings.load_timeout,
    )
    .await?;
    let params = check_manifest(&manifest)?;

    let env = Arc::new(PluginEnv {
        name: manifest.name.clone(),
        broker: Arc::clone(&shared.broker),
        state: Some(Arc::clone(&shared.state)),
        config,
        spawner: Some(Spawner {
            scheduler: Arc::clone(&shared.scheduler),
            plugin: manifest.name.clone(),
            methods: manifest
                .methods
                .iter()
                .map(|method| method.name.clone())
                .collect(),
            pending: Arc::default(),
        }),
    });
    let pool = InstancePool::new(shared.engine.clone(), pre, env, sandbox);
    Ok(LoadedPlugin {
        manifest,
        params,
        file: file.to_path_buf(),
        pool,
        unloaded: Default::default(),
        calls: Default::default(),
    })
}

/// A component built for another version of the contract is refused with a
/// reason that says so, rather than with a mismatch of types.
fn check_contract_version(component: &Component, engine: &Engine) -> anyhow::Result<()> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .chain(ty.exports(engine))
        .map(|(name, _)| name);
    for name in names {
        if let Some(interface) = name.strip_prefix("rpcnode:plugin/")
            && let Some((_, version)) = interface.split_once('@')
            && version != CONTRACT_VERSION
            && version != COMPATIBLE_VERSION
        {
            bail!(
                "the plugin was built for rpcnode:plugin@{version}, and this host speaks \
                 rpcnode:plugin@{CONTRACT_VERSION} (and {COMPATIBLE_VERSION}): rebuild it \
                 against the current SDK or wit/plugin.wit"
            );
        }
    }
    Ok(())
}

/// Instantiate once, without state, to call `describe`.
async fn describe(
    engine: &PluginEngine,
    pre: &SingleCallsPre<StoreState>,
    env: Arc<PluginEnv>,
    sandbox: &Sandbox,
    timeout: Duration,
) -> anyhow::Result<Manifest> {
    let deadline = Instant::now() + timeout;
    let mut store =
        new_store(&engine.engine, env, sandbox, deadline).map_err(anyhow::Error::from)?;
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

/// Check what a plugin says of itself; the compiled params schema of each
/// method that declares one.
pub fn check_manifest(manifest: &Manifest) -> anyhow::Result<HashMap<String, Arc<ParamsSchema>>> {
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
    let mut params = HashMap::new();
    for method in &manifest.methods {
        let method_name = &method.name;
        if !method_name_is_valid(method_name) {
            bail!(
                "plugin {name}: method name {method_name:?} must be 1 to {MAX_METHOD_NAME} \
                 characters, none of them whitespace or control characters"
            );
        }
        if is_reserved(method_name) {
            bail!("plugin {name}: method {method_name} uses the reserved rpc. prefix");
        }
        if !seen.insert(normalize(method_name).into_owned()) {
            bail!("plugin {name}: method {method_name} is listed twice");
        }
        let compile = |which: &str, schema: &str| {
            ParamsSchema::compile(schema).map_err(|reason| {
                anyhow::anyhow!(
                    "plugin {name}: method {method_name} has a {which} schema that does not \
                     compile: {reason}"
                )
            })
        };
        if let Some(schema) = &method.result_schema {
            compile("result", schema)?;
        }
        if let Some(schema) = &method.params_schema {
            params.insert(method_name.clone(), Arc::new(compile("params", schema)?));
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
    Ok(params)
}

/// The longest method name a plugin may declare, in characters.
const MAX_METHOD_NAME: usize = 128;

/// A method name is 1 to [`MAX_METHOD_NAME`] characters with no whitespace
/// and no control characters: it appears in logs, `/metrics` labels and the
/// OpenRPC document, where those would be ambiguous or break lines.
fn method_name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_METHOD_NAME
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}
