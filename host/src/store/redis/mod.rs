//! The Redis backends of a cluster: every node started with the same Redis
//! URL and cluster name shares plugin state ([`RedisState`]), notification
//! streams ([`RedisLog`]: positions, history and delivery to the clients of
//! every node), sessions ([`RedisSessions`]), timer claims ([`RedisLeases`])
//! the list of connected clients ([`RedisPresence`]) and webhook
//! subscriptions with their queues ([`RedisWebhooks`]). Keys and channels
//! start with the cluster name, so two clusters can share one Redis.
//!
//! Each node holds three connections, each reconnecting with backoff on its
//! own: one for commands and scripts, one subscribed to the cluster's
//! notification channel and one to its webhook channel.

mod leases;
mod log;
mod presence;
mod sessions;
mod state;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, ProtocolVersion};

pub use leases::RedisLeases;
pub use log::RedisLog;
pub use presence::RedisPresence;
pub use sessions::RedisSessions;
pub use state::RedisState;
pub use webhooks::RedisWebhooks;

use super::{BackendStatus, Deliver, HistoryLimits, StoreError, StreamName};
use crate::config::Cluster;
use crate::random::random_hex;

/// How long a node waits for Redis when it starts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection attempts after the first before a command fails (the next
/// command tries again).
const RETRIES: usize = 2;
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The URL schemes a node accepts for `--redis`.
const SCHEMES: [&str; 3] = ["redis", "unix", "redis+unix"];

/// Check a `--redis` URL without connecting: its scheme and its form.
pub fn check_url(url: &str) -> anyhow::Result<()> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    match scheme {
        Some("rediss") => bail!(
            "redis_url {}: TLS to Redis (rediss://) is not supported; reach Redis over a private \
             network, a unix socket or a TLS tunnel",
            redacted(url)
        ),
        Some(scheme) if SCHEMES.contains(&scheme) => {}
        _ => bail!(
            "redis_url {} is not a Redis URL: use redis://HOST[:PORT][/DB] or unix:///PATH",
            redacted(url)
        ),
    }
    url.into_connection_info()
        .map(drop)
        .map_err(|error| anyhow::anyhow!("redis_url {}: {error}", redacted(url)))
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// The backends of the cluster `cluster` joins.
pub struct Joined {
    pub state: RedisState,
    pub streams: RedisLog,
    pub leases: RedisLeases,
    pub presence: RedisPresence,
    pub sessions: RedisSessions,
    pub webhooks: RedisWebhooks,
}

/// The backends of the cluster `cluster` joins, once Redis answers;
/// notifications from every node reach `deliver`; sessions last
/// `session_ttl` after their node is lost.
pub async fn connect(
    cluster: &Cluster,
    history: HistoryLimits,
    session_ttl: Duration,
    deliver: Arc<dyn Deliver>,
    status: Arc<BackendStatus>,
) -> anyhow::Result<Joined> {
    let url = redacted(&cluster.redis_url);
    let keys = Keys::new(&cluster.name);
    // How this node is known in Redis (as the holder of its sessions and
    // the publisher of its clients).
    let node: Arc<str> = random_hex(8).into();
    let opened = async {
        ping_once(&cluster.redis_url)
            .await
            .with_context(|| format!("cannot reach Redis at {url}"))?;
        let commands = manager(&cluster.redis_url, ConnectionManagerConfig::new(), false).await?;
        let streams = RedisLog::connect(
            &cluster.redis_url,
            commands.clone(),
            keys.clone(),
            history,
            deliver,
            status,
        )
        .await
        .with_context(|| format!("cannot subscribe to Redis at {url}"))?;
        let webhooks = RedisWebhooks::connect(
            &cluster.redis_url,
            commands.clone(),
            keys.clone(),
            Arc::clone(&node),
        )
        .await
        .with_context(|| format!("cannot subscribe to Redis at {url}"))?;
        Ok::<_, anyhow::Error>(Joined {
            leases: RedisLeases::new(commands.clone(), keys.clone()),
            presence: RedisPresence::new(
                commands.clone(),
                keys.clone(),
                Arc::clone(&node),
                cluster.presence_ttl,
            ),
            sessions: RedisSessions::new(commands.clone(), keys.clone(), node, session_ttl),
            state: RedisState::new(commands, keys),
            streams,
            webhooks,
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, opened)
        .await
        .with_context(|| {
            format!(
                "Redis at {url} did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
}

/// One connection attempt and a PING: a Redis that is not there fails at
/// once, where a reconnecting connection would keep trying.
async fn ping_once(url: &str) -> anyhow::Result<()> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(ATTEMPT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut connection = Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await?;
    Ok(())
}

/// A connection to `url` that reconnects on its own, configured by
/// `config`; `pushes` (subscriptions) need RESP3.
async fn manager(
    url: &str,
    config: ConnectionManagerConfig,
    pushes: bool,
) -> anyhow::Result<ConnectionManager> {
    let mut info = url.into_connection_info()?;
    if pushes {
        let settings = info.redis_settings().clone();
        info = info.set_redis_settings(settings.set_protocol(ProtocolVersion::RESP3));
    }
    let config = config
        .set_number_of_retries(RETRIES)
        .set_connection_timeout(Some(ATTEMPT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_max_delay(MAX_BACKOFF);
    Ok(Client::open(info)?
        .get_connection_manager_with_config(config)
        .await?)
}

/// Where the cluster's data lives in Redis.
#[derive(Clone)]
struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    fn new(cluster: &str) -> Self {
        Self {
            prefix: cluster.into(),
        }
    }

    /// The hash of a plugin's state.
    fn state(&self, namespace: &str) -> String {
        format!("{}:state:{namespace}", self.prefix)
    }

    /// The hash of a stream's epoch and last offset.
    fn stream(&self, stream: &StreamName) -> String {
        format!("{}:stream:{}", self.prefix, stream.as_str())
    }

    /// The Redis stream holding a stream's history.
    fn history(&self, stream: &StreamName) -> String {
        format!("{}:history:{}", self.prefix, stream.as_str())
    }

    /// The claim on one slot of a piece of work.
    fn lease(&self, name: &str, slot: u64) -> String {
        format!("{}:lease:{name}:{slot}", self.prefix)
    }

    /// A node's presence record of `kind`: `clients` (a hash of its
    /// clients' metadata), `topics` (a hash of its topics' subscribers) or
    /// `inbox` (a list of metadata changes other nodes asked for). With
    /// `node` empty: the prefix of those keys.
    fn presence(&self, kind: &str, node: &str) -> String {
        format!("{}:presence:{kind}:{node}", self.prefix)
    }

    /// The hash of a session: its node, its token's hash and its record
    /// (`client_id` empty: the prefix of those hashes).
    fn session(&self, client_id: &str) -> String {
        format!("{}:session:{client_id}", self.prefix)
    }

    /// The sorted set of every session's deadline.
    fn session_deadlines(&self) -> String {
        format!("{}:session-deadlines", self.prefix)
    }

    /// The set of the nodes that published their clients.
    fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    /// The channel every notification of the cluster is published on.
    fn channel(&self) -> String {
        format!("{}:notifications", self.prefix)
    }

    /// The hash of webhook subscription `id`'s record.
    fn webhook(&self, id: &str) -> String {
        format!("{}:webhook:{id}", self.prefix)
    }

    /// The hash of every webhook subscription's last sequence number.
    fn webhook_seqs(&self) -> String {
        format!("{}:webhook-seqs", self.prefix)
    }

    /// The sorted set of webhook subscription `id`'s queue (`id` empty: the
    /// prefix of those sets).
    fn webhook_queue(&self, id: &str) -> String {
        format!("{}:webhook-queue:{id}", self.prefix)
    }

    /// Which node delivers webhook subscription `id`.
    fn webhook_lease(&self, id: &str) -> String {
        format!("{}:webhook-lease:{id}", self.prefix)
    }

    /// The channel changes to webhook subscriptions are announced on.
    fn webhook_channel(&self) -> String {
        format!("{}:webhooks", self.prefix)
    }
}

/// A Redis failure as plugins and callers see it.
fn failed(error: redis::RedisError) -> StoreError {
    StoreError::Backend(format!("redis: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_hidden() {
        assert!(check_url("redis://127.0.0.1:6379/2").is_ok());
        assert!(check_url("unix:///run/redis.sock").is_ok());
        let message = |url| check_url(url).unwrap_err().to_string();
        assert!(message("http://localhost").contains("is not a Redis URL"));
        assert!(message("localhost:6379").contains("is not a Redis URL"));
        assert!(message("rediss://h").contains("not supported"));
        assert_eq!(
            redacted("redis://user:secret@host:1/0"),
            "redis://user:***@host:1/0"
        );
        assert_eq!(redacted("redis://host"), "redis://host");
    }
}
