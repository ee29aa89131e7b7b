//! Plugin state in Redis: one hash per plugin. Checks and the writes that
//! depend on them run in one script, so they are atomic across nodes; an
//! increment is Redis's own `HINCRBY`, exact for 64-bit integers.

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::super::state_map::{self, MAX_KEYS};
use super::super::{StateStore, StoreError};
use super::{Keys, failed};

/// Set field ARGV[1] to ARGV[2] unless that adds a key to a full hash.
const SET: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return redis.error_reply('FULL')
end
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
";

/// Add ARGV[2] to field ARGV[1] unless that adds a key to a full hash.
const INCREMENT: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return redis.error_reply('FULL')
end
return redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
";

/// Plugin state shared by every node of a cluster.
pub struct RedisState {
    connection: ConnectionManager,
    keys: Keys,
    set: Script,
    increment: Script,
}

impl RedisState {
    pub(super) fn new(connection: ConnectionManager, keys: Keys) -> Self {
        Self {
            connection,
            keys,
            set: Script::new(SET),
            increment: Script::new(INCREMENT),
        }
    }
}

#[async_trait]
impl StateStore for RedisState {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        redis::cmd("HGET")
            .arg(self.keys.state(namespace))
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn set(&self, namespace: &str, key: &str, value: String) -> Result<(), StoreError> {
        state_map::check_size(&value)?;
        self.set
            .key(self.keys.state(namespace))
            .arg(key)
            .arg(value)
            .arg(MAX_KEYS)
            .invoke_async::<()>(&mut self.connection.clone())
            .await
            .map_err(|error| refused(error, key))
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        redis::cmd("HDEL")
            .arg(self.keys.state(namespace))
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.increment
            .key(self.keys.state(namespace))
            .arg(key)
            .arg(delta)
            .arg(MAX_KEYS)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| refused(error, key))
    }
}

/// The store's own refusals among a script's errors.
fn refused(error: redis::RedisError, key: &str) -> StoreError {
    let text = error.to_string();
    if error.code() == Some("FULL") {
        StoreError::Full
    } else if text.contains("not an integer") {
        StoreError::NotAnInteger(key.to_owned())
    } else if text.contains("overflow") {
        StoreError::Overflow(key.to_owned())
    } else {
        failed(error)
    }
}
