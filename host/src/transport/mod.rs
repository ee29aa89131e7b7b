//! The two transports on one port: JSON-RPC over HTTP POST and over WebSocket.

pub mod head_deadline;
pub mod http;
pub mod ws;
