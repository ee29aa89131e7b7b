//! What a plugin can ask about the call in progress (`call-context`,
//! `request-headers`). It waits in the instance's store for the length of the
//! call instead of travelling with it: every string passed into a call costs
//! an entry into the guest to allocate room for it, and most calls never ask.

use std::sync::Arc;

use super::bindings::rpcnode::plugin::types::{RequestContext, Transport};
use crate::headers::RequestHeaders;

/// Who made one call, and how.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The request's `id` as JSON text; `None` for notifications and
    /// connection events.
    pub request_id: Option<Box<str>>,
    /// The transport the call arrived on.
    pub transport: Transport,
    /// The WebSocket client id, for calls over WebSocket.
    pub client_id: Option<Arc<str>>,
    /// The peer's socket address as text.
    pub remote_addr: Option<Arc<str>>,
    /// The HTTP request's or the WebSocket handshake's headers.
    pub headers: RequestHeaders,
}

impl CallContext {
    /// The context of a call no client made (a timer, spawned work,
    /// `describe`).
    pub fn background() -> Self {
        Self {
            request_id: None,
            transport: Transport::Background,
            client_id: None,
            remote_addr: None,
            headers: RequestHeaders::default(),
        }
    }

    /// The context as the WIT record `request-context`.
    pub(crate) fn record(&self) -> RequestContext {
        RequestContext {
            request_id: self.request_id.as_deref().map(str::to_owned),
            transport: self.transport,
            client_id: self.client_id.as_deref().map(str::to_owned),
            remote_addr: self.remote_addr.as_deref().map(str::to_owned),
        }
    }
}
