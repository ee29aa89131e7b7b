//! Leases in Redis: the first node to create a slot's key runs that slot.
//! The key expires on its own once the slot is long past.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::super::{Leases, StoreError};
use super::{Keys, failed};

/// Claims shared by every node of a cluster.
pub struct RedisLeases {
    connection: ConnectionManager,
    keys: Keys,
}

impl RedisLeases {
    pub(super) fn new(connection: ConnectionManager, keys: Keys) -> Self {
        Self { connection, keys }
    }
}

#[async_trait]
impl Leases for RedisLeases {
    async fn claim(&self, name: &str, slot: u64, ttl: Duration) -> Result<bool, StoreError> {
        let created: Option<String> = redis::cmd("SET")
            .arg(self.keys.lease(name, slot))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed)?;
        Ok(created.is_some())
    }
}
