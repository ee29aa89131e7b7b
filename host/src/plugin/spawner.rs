//! How a plugin's `spawn` reaches the host's scheduler, which lives above
//! the plugins (it calls them) and so is known here only by this trait.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Runs a plugin's background calls.
pub trait Schedule: Send + Sync {
    /// Call `method` of `spawner`'s plugin with `params` after `delay`.
    fn spawn(
        &self,
        spawner: &Spawner,
        method: String,
        params: Option<String>,
        delay: Duration,
    ) -> Result<(), String>;
}

/// What a plugin's `spawn` needs to know about the plugin.
pub struct Spawner {
    /// The scheduler.
    pub scheduler: Arc<dyn Schedule>,
    /// The plugin's name: a spawned call runs on whichever version of the
    /// plugin is loaded when it fires.
    pub plugin: String,
    /// The methods the plugin may spawn (all in its manifest).
    pub methods: Vec<String>,
    /// Calls scheduled and not yet finished.
    pub pending: Arc<AtomicUsize>,
}
