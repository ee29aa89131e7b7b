//! Presence in Redis: each node publishes the set of its clients under a key
//! of its own that expires unless the node publishes again, so the clients
//! of a node that dies without saying goodbye drop out within the TTL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::super::{Presence, StoreError};
use super::{Keys, failed};

/// KEYS: the set of nodes. ARGV: the prefix of the nodes' client sets.
/// Answers every live node's clients; forgets nodes whose set expired.
const LIST: &str = r"
local clients = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. node
  if redis.call('EXISTS', key) == 0 then
    redis.call('SREM', KEYS[1], node)
  else
    for _, id in ipairs(redis.call('SMEMBERS', key)) do clients[#clients + 1] = id end
  end
end
return clients
";

/// The clients of every node of a cluster.
pub struct RedisPresence {
    connection: ConnectionManager,
    keys: Keys,
    node: Arc<str>,
    ttl: Duration,
    list: Script,
}

impl RedisPresence {
    pub(super) fn new(
        connection: ConnectionManager,
        keys: Keys,
        node: Arc<str>,
        ttl: Duration,
    ) -> Self {
        Self {
            connection,
            keys,
            node,
            ttl,
            list: Script::new(LIST),
        }
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn publish(&self, clients: Vec<String>) -> Result<(), StoreError> {
        let key = self.keys.presence(&self.node);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        if !clients.is_empty() {
            pipe.sadd(&key, clients).ignore();
        }
        pipe.pexpire(&key, self.ttl.as_millis() as i64)
            .ignore()
            .sadd(self.keys.nodes(), &*self.node)
            .ignore();
        pipe.query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn clients(&self) -> Result<Vec<String>, StoreError> {
        self.list
            .key(self.keys.nodes())
            .arg(self.keys.presence(""))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }
}
