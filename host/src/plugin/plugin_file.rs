//! `NAME.toml` beside `NAME.wasm`: the plugin's limits, the capabilities it
//! is granted, and the configuration values it reads with `config-get`.
//!
//! ```toml
//! [limits]
//! memory_mib = 128            # linear memory per instance
//! max_instances = 16          # instances alive at once (the plugin's concurrency)
//! recycle_after_calls = 10000 # replace an instance after this many calls (0: never)
//!
//! [grants]                    # nothing is granted unless listed here
//! env = { REGION = "eu" }     # environment variables
//! network = true              # outgoing TCP/UDP and name lookups
//! dirs = [{ host = "/srv/data", guest = "/data", writable = false }]
//!
//! [config]                    # read by the plugin with config-get
//! greeting = "hello"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::limiter::MemoryBudget;

/// Limits applied to every plugin's instances.
#[derive(Debug, Clone)]
pub struct PluginSettings {
    /// The most instances of one plugin alive at once (its concurrency).
    pub max_instances: usize,
    /// The most linear memory one instance may use, in bytes.
    pub memory_limit: usize,
    /// The linear memory all instances of all plugins may hold together.
    pub memory_budget: Arc<MemoryBudget>,
    /// How long instantiation and `describe` may take at load time.
    pub load_timeout: Duration,
    /// Calls after which an instance is replaced by a fresh one; 0 means never.
    pub recycle_after_calls: u64,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            max_instances: 64,
            // JavaScript plugins (SpiderMonkey) settle between 64 and 96 MiB
            // under sustained load; Rust and Python ones need far less.
            memory_limit: 128 << 20,
            memory_budget: Arc::new(MemoryBudget::new(4 << 30)),
            load_timeout: Duration::from_secs(10),
            recycle_after_calls: 0,
        }
    }
}

/// The whole file; every section is optional and unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginFile {
    #[serde(default)]
    limits: Limits,
    /// Capabilities granted to the plugin.
    #[serde(default)]
    pub grants: Grants,
    /// Values the plugin reads with `config-get`.
    #[serde(default)]
    pub config: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    memory_mib: Option<u32>,
    max_instances: Option<u32>,
    recycle_after_calls: Option<u64>,
}

/// What a plugin may reach beyond its own memory. The default is nothing.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Environment variables, by name.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Outgoing network access and name lookups.
    #[serde(default)]
    pub network: bool,
    /// Host folders the plugin may open.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
}

/// A host folder made visible to a plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The folder on the host.
    pub host: PathBuf,
    /// Where the plugin sees it.
    pub guest: String,
    /// Whether the plugin may change it.
    #[serde(default)]
    pub writable: bool,
}

/// The limits and grants one plugin's instances run under.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Linear memory per instance, in bytes.
    pub memory_limit: usize,
    /// The host-wide budget every instance's memory is drawn from.
    pub memory_budget: Arc<MemoryBudget>,
    /// Instances alive at once.
    pub max_instances: usize,
    /// Calls after which an instance is replaced; 0 means never.
    pub recycle_after_calls: u64,
    /// Capabilities.
    pub grants: Grants,
}

impl PluginFile {
    /// The file beside `wasm`; when there is none, `fallback` (the host
    /// config's `[plugin.NAME]` section) or defaults.
    pub fn read(wasm: &Path, fallback: Option<&Self>) -> anyhow::Result<Self> {
        let path = wasm.with_extension("toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let section = fallback.cloned().unwrap_or_default();
                section
                    .check()
                    .context("in the host configuration's plugin section")?;
                return Ok(section);
            }
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        let file: Self =
            toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        file.check()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(file)
    }

    fn check(&self) -> anyhow::Result<()> {
        if let Some(mib) = self.limits.memory_mib
            && !(1..=4096).contains(&mib)
        {
            bail!("limits.memory_mib must be 1 to 4096, not {mib}");
        }
        if let Some(count) = self.limits.max_instances
            && !(1..=1024).contains(&count)
        {
            bail!("limits.max_instances must be 1 to 1024, not {count}");
        }
        for dir in &self.grants.dirs {
            if !dir.host.is_dir() {
                bail!("grants.dirs: {} is not a folder", dir.host.display());
            }
        }
        Ok(())
    }

    /// The sandbox: this file's limits over the host's defaults.
    pub fn sandbox(&self, defaults: &PluginSettings) -> Sandbox {
        Sandbox {
            memory_limit: self
                .limits
                .memory_mib
                .map_or(defaults.memory_limit, |mib| (mib as usize) << 20),
            memory_budget: Arc::clone(&defaults.memory_budget),
            max_instances: self
                .limits
                .max_instances
                .map_or(defaults.max_instances, |count| count as usize),
            recycle_after_calls: self
                .limits
                .recycle_after_calls
                .unwrap_or(defaults.recycle_after_calls),
            grants: self.grants.clone(),
        }
    }
}
