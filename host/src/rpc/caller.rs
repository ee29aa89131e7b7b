//! Who sent a message: the same for every request of one HTTP body or one
//! WebSocket connection.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::headers::RequestHeaders;
use crate::plugin::{CallContext, Transport};

/// The sender of a message, as hooks and handlers see it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The peer's address; `None` for a session that ends with no
    /// connection.
    pub remote_addr: Option<SocketAddr>,
    /// The peer's address as plugins see it.
    remote_addr_text: Option<Arc<str>>,
    transport: Transport,
    client_id: Option<Arc<str>>,
    /// The HTTP request's or the WebSocket handshake's headers.
    headers: RequestHeaders,
}

impl Caller {
    /// A caller over `transport` with `headers`.
    pub fn new(
        transport: Transport,
        client_id: Option<Arc<str>>,
        remote_addr: SocketAddr,
        headers: RequestHeaders,
    ) -> Self {
        Self {
            remote_addr: Some(remote_addr),
            remote_addr_text: Some(remote_addr.to_string().into()),
            transport,
            client_id,
            headers,
        }
    }

    /// A WebSocket client that is no longer connected (its session ended).
    pub fn departed(client_id: Arc<str>) -> Self {
        Self {
            remote_addr: None,
            remote_addr_text: None,
            transport: Transport::Websocket,
            client_id: Some(client_id),
            headers: RequestHeaders::default(),
        }
    }

    /// The same caller with the headers of another request on its
    /// connection.
    pub fn with_headers(&self, headers: RequestHeaders) -> Self {
        Self {
            headers,
            ..self.clone()
        }
    }

    /// This caller as WebSocket client `client_id`.
    pub fn with_client_id(self, client_id: Arc<str>) -> Self {
        Self {
            client_id: Some(client_id),
            ..self
        }
    }

    /// The WebSocket client id, for WebSocket connections.
    pub fn client_id(&self) -> Option<&Arc<str>> {
        self.client_id.as_ref()
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// What a plugin can ask about one request of this caller (or, without
    /// an id, about its connection).
    pub fn context(&self, request_id: Option<&RawValue>) -> CallContext {
        CallContext {
            request_id: request_id.map(|id| id.get().into()),
            transport: self.transport,
            client_id: self.client_id.clone(),
            remote_addr: self.remote_addr_text.clone(),
            headers: self.headers.clone(),
        }
    }
}
