//! Presence in Redis: each node publishes every second its clients (with
//! their metadata) and its topics' subscribers, in two hashes of its own
//! that expire unless the node publishes again, so the clients of a node
//! that dies without saying goodbye drop out within the TTL. A metadata
//! change for a client of another node goes to that node's inbox, which the
//! node empties when it publishes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::super::{MetadataChange, Presence, Roster, StoreError};
use super::{Keys, failed};

/// KEYS: the set of nodes. ARGV: this node, the prefix of the nodes' client
/// hashes, the prefix of the hashes to read, the field to read (empty: every
/// field's name). Answers what every other live node's hash holds; forgets
/// nodes whose client hash expired.
const READ_OTHERS: &str = r"
local found = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. node) == 0 then
    redis.call('SREM', KEYS[1], node)
  elseif node ~= ARGV[1] then
    if ARGV[4] == '' then
      for _, id in ipairs(redis.call('HKEYS', ARGV[3] .. node)) do found[#found + 1] = id end
    else
      local value = redis.call('HGET', ARGV[3] .. node, ARGV[4])
      if value then found[#found + 1] = value end
    end
  end
end
return found
";

/// KEYS: the set of nodes. ARGV: this node, the prefix of the nodes' client
/// hashes, the prefix of their inboxes, the client id, the change, the TTL
/// in milliseconds. Queues the change for the other node that lists the
/// client; 0 if none does.
const SEND: &str = r"
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[1] and redis.call('HEXISTS', ARGV[2] .. node, ARGV[4]) == 1 then
    redis.call('RPUSH', ARGV[3] .. node, ARGV[5])
    redis.call('PEXPIRE', ARGV[3] .. node, ARGV[6])
    return 1
  end
end
return 0
";

/// The clients of every node of a cluster.
pub struct RedisPresence {
    connection: ConnectionManager,
    keys: Keys,
    node: Arc<str>,
    ttl: Duration,
    read_others: Script,
    send: Script,
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
            read_others: Script::new(READ_OTHERS),
            send: Script::new(SEND),
        }
    }

    /// What the other live nodes' hashes named by `kind` hold at `field`
    /// (empty: their field names).
    async fn read_others(&self, kind: &str, field: &str) -> Result<Vec<String>, StoreError> {
        self.read_others
            .key(self.keys.nodes())
            .arg(&*self.node)
            .arg(self.keys.presence("clients", ""))
            .arg(self.keys.presence(kind, ""))
            .arg(field)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }
}

/// Queue on `pipe` the replacement of hash `key` by `fields`, expiring
/// `ttl` milliseconds later.
fn replace_hash<'a>(
    pipe: &mut redis::Pipeline,
    key: &str,
    fields: impl Iterator<Item = (&'a String, String)>,
    ttl: i64,
) {
    let fields: Vec<(&String, String)> = fields.collect();
    pipe.del(key).ignore();
    if !fields.is_empty() {
        pipe.hset_multiple(key, &fields).ignore();
    }
    pipe.pexpire(key, ttl).ignore();
}

#[async_trait]
impl Presence for RedisPresence {
    async fn publish(&self, roster: Roster) -> Result<Vec<MetadataChange>, StoreError> {
        let ttl = self.ttl.as_millis() as i64;
        let clients = self.keys.presence("clients", &self.node);
        let topics = self.keys.presence("topics", &self.node);
        let inbox = self.keys.presence("inbox", &self.node);
        let mut pipe = redis::pipe();
        pipe.atomic();
        let client_fields = roster.clients.iter().map(|(id, meta)| (id, encode(meta)));
        replace_hash(&mut pipe, &clients, client_fields, ttl);
        let topic_fields = roster
            .topics
            .iter()
            .map(|(topic, ids)| (topic, encode(ids)));
        replace_hash(&mut pipe, &topics, topic_fields, ttl);
        pipe.sadd(self.keys.nodes(), &*self.node)
            .ignore()
            .lrange(&inbox, 0, -1)
            .del(&inbox)
            .ignore();
        let (changes,): (Vec<String>,) = pipe
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        Ok(changes
            .iter()
            .filter_map(|change| serde_json::from_str(change).ok())
            .collect())
    }

    async fn clients(&self) -> Result<Vec<String>, StoreError> {
        self.read_others("clients", "").await
    }

    async fn metadata(
        &self,
        client_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let found = self.read_others("clients", client_id).await?;
        Ok(found
            .first()
            .and_then(|text| serde_json::from_str(text).ok()))
    }

    async fn subscribers(&self, topic: &str) -> Result<Vec<String>, StoreError> {
        let lists = self.read_others("topics", topic).await?;
        Ok(lists
            .iter()
            .filter_map(|text| serde_json::from_str::<Vec<String>>(text).ok())
            .flatten()
            .collect())
    }

    async fn change_metadata(&self, change: MetadataChange) -> Result<bool, StoreError> {
        self.send
            .key(self.keys.nodes())
            .arg(&*self.node)
            .arg(self.keys.presence("clients", ""))
            .arg(self.keys.presence("inbox", ""))
            .arg(&change.client_id)
            .arg(encode(&change))
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }
}

fn encode(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("strings and maps of strings serialise")
}
