//! Durable plugin state owned by the host: one key-value namespace per plugin
//! name, shared by all of that plugin's instances and kept when instances are
//! recycled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The largest value a plugin may store under one key.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most keys one plugin may hold.
pub const MAX_KEYS: usize = 100_000;

/// Why a state operation was refused; sent back to the plugin as an error value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StateError {
    /// The value is larger than [`MAX_VALUE_BYTES`].
    #[error("value of {0} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes")]
    TooLarge(usize),
    /// The namespace already holds [`MAX_KEYS`] keys.
    #[error("state is full: {MAX_KEYS} keys")]
    Full,
    /// `increment` found a value that is not an integer.
    #[error("value at {0:?} is not an integer")]
    NotAnInteger(String),
    /// `increment` would overflow a 64-bit integer.
    #[error("increment overflows at {0:?}")]
    Overflow(String),
}

/// Every plugin's namespace, by plugin name.
#[derive(Default)]
pub struct StateStore {
    namespaces: Mutex<HashMap<String, Arc<Namespace>>>,
}

impl StateStore {
    /// The namespace of plugin `name`, created empty on first use.
    pub fn namespace(&self, name: &str) -> Arc<Namespace> {
        let mut namespaces = self.namespaces.lock().expect("state lock");
        Arc::clone(namespaces.entry(name.to_owned()).or_default())
    }
}

/// One plugin's keys and JSON values.
#[derive(Default)]
pub struct Namespace {
    values: Mutex<HashMap<String, String>>,
}

impl Namespace {
    /// The JSON value at `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.values.lock().expect("state lock").get(key).cloned()
    }

    /// Store JSON `value` at `key`.
    pub fn set(&self, key: String, value: String) -> Result<(), StateError> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(StateError::TooLarge(value.len()));
        }
        let mut values = self.values.lock().expect("state lock");
        if values.len() >= MAX_KEYS && !values.contains_key(&key) {
            return Err(StateError::Full);
        }
        values.insert(key, value);
        Ok(())
    }

    /// Remove `key`; true if it was there.
    pub fn delete(&self, key: &str) -> bool {
        self.values
            .lock()
            .expect("state lock")
            .remove(key)
            .is_some()
    }

    /// Add `delta` to the integer at `key` (absent reads as 0) under one lock,
    /// so concurrent increments never lose an update.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, StateError> {
        let mut values = self.values.lock().expect("state lock");
        let current = match values.get(key) {
            Some(text) => text
                .parse::<i64>()
                .map_err(|_| StateError::NotAnInteger(key.to_owned()))?,
            None if values.len() >= MAX_KEYS => return Err(StateError::Full),
            None => 0,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| StateError::Overflow(key.to_owned()))?;
        values.insert(key.to_owned(), next.to_string());
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increment_starts_at_zero_and_rejects_non_integers() {
        let namespace = Namespace::default();
        assert_eq!(namespace.increment("n", 2), Ok(2));
        assert_eq!(namespace.increment("n", -5), Ok(-3));
        namespace.set("s".into(), r#""text""#.into()).unwrap();
        assert_eq!(
            namespace.increment("s", 1),
            Err(StateError::NotAnInteger("s".into()))
        );
        namespace.set("max".into(), i64::MAX.to_string()).unwrap();
        assert_eq!(
            namespace.increment("max", 1),
            Err(StateError::Overflow("max".into()))
        );
    }

    #[test]
    fn namespaces_are_shared_by_name() {
        let store = StateStore::default();
        store.namespace("a").set("k".into(), "1".into()).unwrap();
        assert_eq!(store.namespace("a").get("k").as_deref(), Some("1"));
        assert_eq!(store.namespace("b").get("k"), None);
    }
}
