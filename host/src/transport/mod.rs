//! The two transports on one port: JSON-RPC over HTTP POST and over
//! WebSocket (with resumable sessions), and what connections share; and
//! the webhook deliveries of upstream nodes ([`upstream`]).

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

pub mod head_deadline;
pub mod http;
pub mod session;
pub mod upstream;
pub mod ws;

/// One of the server's connection slots (`max_connections`), held by the
/// connection and by the WebSocket it may upgrade to.
#[derive(Clone)]
pub struct ConnectionSlot {
    _permit: Arc<OwnedSemaphorePermit>,
}

impl ConnectionSlot {
    /// The slot `permit` stands for.
    pub fn new(permit: OwnedSemaphorePermit) -> Self {
        Self {
            _permit: Arc::new(permit),
        }
    }
}
