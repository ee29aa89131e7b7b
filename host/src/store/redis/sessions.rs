//! Sessions in Redis, shared by the nodes of a cluster, so that a client
//! whose node is lost resumes on another one.
//!
//! Each session is a hash (the node that holds it, its token's hash and its
//! record) and has a deadline in one sorted set: its expiry while its client
//! is away, and while it is connected a session TTL (plus a margin) ahead,
//! pushed forward every second by the node that holds it. A node that dies
//! stops pushing, so its sessions stay resumable for a session TTL and then
//! end; whichever node sweeps first ends them, once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use super::super::{Position, SessionRecord, SessionStore, StoreError, StreamName, now_ms};
use super::{Keys, failed};

/// How much longer than the session TTL a connected session is kept ahead:
/// its node pushes the deadline every second, so a second or two late is
/// not a lost node.
const KEEP_MARGIN: Duration = Duration::from_secs(3);
/// The most sessions one sweep ends.
const SWEEP_BATCH: usize = 512;

/// KEYS: the session, the deadlines. ARGV: node, token hash, record,
/// deadline, client id. Saves unless another node holds the session.
const SAVE: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'token', ARGV[2], 'record', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
";

/// KEYS: the session, the deadlines. ARGV: node, token hash, now, client id,
/// new deadline. Hands a live session to the node if the token matches.
const TAKE: &str = r"
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return false end
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[4])
if not deadline or tonumber(deadline) <= tonumber(ARGV[3]) then return false end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
return redis.call('HGET', KEYS[1], 'record')
";

/// KEYS: the deadlines. ARGV: node, deadline, prefix of session keys, client
/// ids. Pushes the deadlines of the node's sessions; answers the ids another
/// node holds.
const KEEP: &str = r"
local moved = {}
for i = 4, #ARGV do
  local owner = redis.call('HGET', ARGV[3] .. ARGV[i], 'owner')
  if owner == ARGV[1] then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i])
  elseif owner then
    moved[#moved + 1] = ARGV[i]
  end
end
return moved
";

/// KEYS: the deadlines. ARGV: now, batch, prefixes of session keys, of
/// client stream keys and of client history keys. Ends the sessions whose
/// deadline passed; answers their ids.
const SWEEP: &str = r"
local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ended) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ARGV[3] .. id, ARGV[4] .. id, ARGV[5] .. id)
end
return ended
";

/// A session's record as stored: what [`SessionRecord`] holds besides its
/// client id and token.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// Stream name to its epoch and offset.
    streams: BTreeMap<String, (String, u64)>,
    metadata: BTreeMap<String, String>,
    expires_at_ms: Option<u64>,
}

/// The sessions of every node of a cluster.
pub struct RedisSessions {
    connection: ConnectionManager,
    keys: Keys,
    node: Arc<str>,
    /// How far ahead a connected session's deadline is kept.
    keep_for: Duration,
    save: Script,
    take: Script,
    keep: Script,
    sweep: Script,
}

impl RedisSessions {
    pub(super) fn new(
        connection: ConnectionManager,
        keys: Keys,
        node: Arc<str>,
        session_ttl: Duration,
    ) -> Self {
        Self {
            connection,
            keys,
            node,
            keep_for: session_ttl + KEEP_MARGIN,
            save: Script::new(SAVE),
            take: Script::new(TAKE),
            keep: Script::new(KEEP),
            sweep: Script::new(SWEEP),
        }
    }

    /// The deadline of a session connected now.
    fn connected_deadline(&self) -> u64 {
        now_ms() + self.keep_for.as_millis() as u64
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn save(&self, record: SessionRecord) -> Result<(), StoreError> {
        let deadline = record
            .expires_at_ms
            .unwrap_or_else(|| self.connected_deadline());
        let stored = Stored {
            streams: record
                .streams
                .iter()
                .map(|(name, at)| (name.clone(), (at.epoch.to_string(), at.offset)))
                .collect(),
            metadata: record.metadata,
            expires_at_ms: record.expires_at_ms,
        };
        let text = serde_json::to_string(&stored).map_err(|error| {
            StoreError::Backend(format!("cannot encode a session record: {error}"))
        })?;
        let saved: bool = self
            .save
            .key(self.keys.session(&record.client_id))
            .key(self.keys.session_deadlines())
            .arg(&*self.node)
            .arg(hex(&record.token_hash))
            .arg(text)
            .arg(deadline)
            .arg(&record.client_id)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        if saved {
            Ok(())
        } else {
            Err(StoreError::SessionMoved)
        }
    }

    async fn remove(&self, client_id: &str) -> Result<(), StoreError> {
        redis::pipe()
            .atomic()
            .del(self.keys.session(client_id))
            .ignore()
            .zrem(self.keys.session_deadlines(), client_id)
            .ignore()
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn load(&self) -> Result<Vec<SessionRecord>, StoreError> {
        Ok(Vec::new())
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn take(
        &self,
        client_id: &str,
        token_hash: &[u8; 32],
    ) -> Result<Option<SessionRecord>, StoreError> {
        let text: Option<String> = self
            .take
            .key(self.keys.session(client_id))
            .key(self.keys.session_deadlines())
            .arg(&*self.node)
            .arg(hex(token_hash))
            .arg(now_ms())
            .arg(client_id)
            .arg(self.connected_deadline())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        let Some(text) = text else { return Ok(None) };
        let stored: Stored = serde_json::from_str(&text).map_err(|error| {
            StoreError::Backend(format!("session {client_id:?} is unreadable: {error}"))
        })?;
        Ok(Some(SessionRecord {
            client_id: client_id.to_owned(),
            token_hash: *token_hash,
            streams: stored
                .streams
                .into_iter()
                .map(|(name, (epoch, offset))| {
                    let epoch = epoch.into();
                    (name, Position { epoch, offset })
                })
                .collect(),
            metadata: stored.metadata,
            expires_at_ms: None,
        }))
    }

    async fn keep(&self, client_ids: Vec<String>) -> Result<Vec<String>, StoreError> {
        if client_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.keep
            .key(self.keys.session_deadlines())
            .arg(&*self.node)
            .arg(self.connected_deadline())
            .arg(self.keys.session(""))
            .arg(client_ids)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }

    async fn end_expired(&self) -> Result<Vec<String>, StoreError> {
        // The prefixes of every client stream's keys: `client:` and the id.
        let client_streams = StreamName::client("");
        self.sweep
            .key(self.keys.session_deadlines())
            .arg(now_ms())
            .arg(SWEEP_BATCH)
            .arg(self.keys.session(""))
            .arg(self.keys.stream(&client_streams))
            .arg(self.keys.history(&client_streams))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
