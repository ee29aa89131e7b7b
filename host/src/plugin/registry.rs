//! The method table: which plugin answers which method, and which plugins
//! implement each hook. Readers take an `Arc` snapshot, so a call in flight
//! keeps the table it started with.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

use super::bindings::rpcnode::plugin::types::Hook;
use super::loaded::LoadedPlugin;
use super::params::ParamsSchema;
use crate::metrics::{MethodCounts, Metrics};

/// A plugin file that did not load, and why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The `.wasm` file.
    pub file: PathBuf,
    /// What went wrong, for logs and `/health`.
    pub reason: String,
}

/// Where a method call goes.
pub struct Route {
    /// The plugin that handles it.
    pub plugin: Arc<LoadedPlugin>,
    /// The method name as the plugin spells it.
    pub method: Arc<str>,
    /// Whether the method has no result.
    pub notification: bool,
    /// The params schema, when the method declares one.
    pub params: Option<Arc<ParamsSchema>>,
    /// Requests to it, for `/metrics`.
    pub counts: Arc<MethodCounts>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(MethodTable::default())
    }
}

/// Methods and hooks of the loaded plugins.
#[derive(Default)]
pub struct MethodTable {
    routes: HashMap<String, Route>,
    /// Plugins that loaded, in load order.
    pub plugins: Vec<Arc<LoadedPlugin>>,
    /// Plugin files that did not load, and why.
    pub failures: Vec<LoadFailure>,
    before_request: Vec<Arc<LoadedPlugin>>,
    after_request: Vec<Arc<LoadedPlugin>>,
    on_connect: Vec<Arc<LoadedPlugin>>,
    on_disconnect: Vec<Arc<LoadedPlugin>>,
}

impl MethodTable {
    /// Why `plugin` cannot join this table (its name or one of its methods
    /// is taken), if it cannot.
    pub fn conflict(&self, plugin: &LoadedPlugin) -> Option<String> {
        let name = plugin.name();
        if let Some(other) = self.plugins.iter().find(|other| other.name() == name) {
            return Some(format!(
                "plugin {name} from {} is already loaded from {}",
                plugin.file.display(),
                other.file.display()
            ));
        }
        plugin
            .manifest
            .methods
            .iter()
            .filter(|method| !method.internal)
            .find_map(|method| {
                self.routes
                    .get(normalize(&method.name).as_ref())
                    .map(|taken| {
                        format!(
                            "plugin {name}: method {} already registered by plugin {}",
                            method.name,
                            taken.plugin.name()
                        )
                    })
            })
    }

    /// Add `plugin`, its methods counted in `metrics`; it must not conflict
    /// (see [`MethodTable::conflict`]).
    pub fn register(&mut self, plugin: Arc<LoadedPlugin>, metrics: &Metrics) {
        for method in plugin
            .manifest
            .methods
            .iter()
            .filter(|method| !method.internal)
        {
            let route = Route {
                plugin: Arc::clone(&plugin),
                method: method.name.as_str().into(),
                notification: method.notification,
                params: plugin.params.get(&method.name).cloned(),
                counts: metrics.method(&method.name),
            };
            self.routes
                .insert(normalize(&method.name).into_owned(), route);
        }
        let hooks = [
            (Hook::BeforeRequest, &mut self.before_request),
            (Hook::AfterRequest, &mut self.after_request),
            (Hook::OnConnect, &mut self.on_connect),
            (Hook::OnDisconnect, &mut self.on_disconnect),
        ];
        for (hook, list) in hooks {
            if plugin.has_hook(hook) {
                list.push(Arc::clone(&plugin));
            }
        }
        self.plugins.push(plugin);
    }

    /// Put plugins and hooks in file-name order (the order hooks run in) and
    /// record the files that failed.
    pub fn finish(&mut self, failures: Vec<LoadFailure>) {
        for list in [
            &mut self.plugins,
            &mut self.before_request,
            &mut self.after_request,
            &mut self.on_connect,
            &mut self.on_disconnect,
        ] {
            list.sort_by(|a, b| a.file.cmp(&b.file));
        }
        self.failures = failures;
    }

    /// The route for `method` as a client spelled it.
    pub fn route(&self, method: &str) -> Option<&Route> {
        self.routes.get(normalize(method).as_ref())
    }

    /// The loaded plugin called `name`.
    pub fn plugin(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins
            .iter()
            .find(|plugin| plugin.name() == name)
            .cloned()
    }

    /// The plugins that implement `hook`, in load order.
    pub fn hooked(&self, hook: Hook) -> &[Arc<LoadedPlugin>] {
        match hook {
            Hook::BeforeRequest => &self.before_request,
            Hook::AfterRequest => &self.after_request,
            Hook::OnConnect => &self.on_connect,
            Hook::OnDisconnect => &self.on_disconnect,
        }
    }
}

/// The live method table.
pub struct Registry {
    current: RwLock<Arc<MethodTable>>,
}

impl Registry {
    /// A registry serving `table`.
    pub fn new(table: MethodTable) -> Self {
        Self {
            current: RwLock::new(Arc::new(table)),
        }
    }

    /// A snapshot of the current table.
    pub fn current(&self) -> Arc<MethodTable> {
        Arc::clone(&self.current.read())
    }

    /// Serve `table` from now on; calls in flight finish on the old one.
    pub fn replace(&self, table: MethodTable) {
        *self.current.write() = Arc::new(table);
    }
}

/// Method names match with `.`, `-` and `#` read as `_`: `user.create`,
/// `user-create` and `user#create` all reach `user_create`.
pub fn normalize(method: &str) -> Cow<'_, str> {
    if method.contains(['.', '-', '#']) {
        Cow::Owned(method.replace(['.', '-', '#'], "_"))
    } else {
        Cow::Borrowed(method)
    }
}

/// Names starting with `rpc.` belong to the host; plugins may not register
/// them, nor names that normalise to the same thing (`rpc_…`).
pub fn is_reserved(method: &str) -> bool {
    normalize(method).starts_with("rpc_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_normalise_to_underscores() {
        assert_eq!(normalize("user.create"), "user_create");
        assert_eq!(normalize("user-create"), "user_create");
        assert_eq!(normalize("user#create"), "user_create");
        assert!(matches!(normalize("add"), Cow::Borrowed("add")));
    }

    #[test]
    fn rpc_names_are_reserved() {
        assert!(is_reserved("rpc.subscribe"));
        assert!(is_reserved("rpc_subscribe"));
        assert!(!is_reserved("rpcx"));
    }
}
