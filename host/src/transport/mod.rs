//! The two transports on one port: JSON-RPC over HTTP POST and over WebSocket.

pub mod header_timer;
pub mod http;
pub mod ws;
