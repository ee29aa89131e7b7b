//! Plugin state held in memory, and the limits every backend enforces: the
//! memory backend is this map, and the embedded store keeps its committed
//! state in one so that reads never touch the disk.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::StoreError;

/// The largest value a plugin may store under one key.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// The most keys one plugin may hold.
pub const MAX_KEYS: usize = 100_000;

/// Namespaces of keys and JSON values.
#[derive(Default)]
pub struct StateMap {
    namespaces: RwLock<HashMap<String, HashMap<String, String>>>,
}

impl StateMap {
    /// The value at `key` of `namespace`.
    pub fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.namespaces.read().get(namespace)?.get(key).cloned()
    }

    /// How many keys `namespace` holds.
    pub fn len(&self, namespace: &str) -> usize {
        self.namespaces
            .read()
            .get(namespace)
            .map_or(0, HashMap::len)
    }

    /// Set (`Some`) or remove (`None`) `key`, without checks; the previous
    /// value.
    pub fn put(&self, namespace: &str, key: &str, value: Option<String>) -> Option<String> {
        let mut namespaces = self.namespaces.write();
        put(&mut namespaces, namespace, key, value)
    }

    /// Run `change` on the namespaces under one lock: a read and the write
    /// that depends on it cannot be interleaved with another write.
    pub fn update<R>(&self, change: impl FnOnce(&mut Namespaces) -> R) -> R {
        change(&mut self.namespaces.write())
    }
}

/// The namespaces, as [`StateMap::update`] lends them.
pub type Namespaces = HashMap<String, HashMap<String, String>>;

/// Set or remove `key` of `namespace` in `namespaces`; the previous value.
pub fn put(
    namespaces: &mut Namespaces,
    namespace: &str,
    key: &str,
    value: Option<String>,
) -> Option<String> {
    match value {
        Some(value) => namespaces
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value),
        None => {
            let values = namespaces.get_mut(namespace)?;
            let previous = values.remove(key);
            if values.is_empty() {
                namespaces.remove(namespace);
            }
            previous
        }
    }
}

/// A value must fit [`MAX_VALUE_BYTES`].
pub fn check_size(value: &str) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::TooLarge(value.len()));
    }
    Ok(())
}

/// A new key must fit in a namespace of `len` keys.
pub fn check_room(len: usize, exists: bool) -> Result<(), StoreError> {
    if len >= MAX_KEYS && !exists {
        return Err(StoreError::Full);
    }
    Ok(())
}

/// The value after adding `delta` to `current` (absent reads as 0).
pub fn incremented(current: Option<&str>, key: &str, delta: i64) -> Result<i64, StoreError> {
    let current = match current {
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| StoreError::NotAnInteger(key.to_owned()))?,
        None => 0,
    };
    current
        .checked_add(delta)
        .ok_or_else(|| StoreError::Overflow(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_start_at_zero_and_refuse_non_integers() {
        assert_eq!(incremented(None, "n", 2), Ok(2));
        assert_eq!(incremented(Some("2"), "n", -5), Ok(-3));
        assert_eq!(
            incremented(Some(r#""text""#), "s", 1),
            Err(StoreError::NotAnInteger("s".into()))
        );
        assert_eq!(
            incremented(Some(&i64::MAX.to_string()), "max", 1),
            Err(StoreError::Overflow("max".into()))
        );
    }

    #[test]
    fn an_emptied_namespace_is_dropped() {
        let map = StateMap::default();
        map.put("a", "k", Some("1".into()));
        assert_eq!(map.get("a", "k").as_deref(), Some("1"));
        assert_eq!(map.get("b", "k"), None);
        assert_eq!(map.put("a", "k", None).as_deref(), Some("1"));
        assert!(map.namespaces.read().is_empty());
    }
}
