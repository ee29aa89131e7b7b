//! JSON-RPC: the wire format ([`wire`]), who sent a message ([`caller`]),
//! dispatch through hooks to handlers ([`dispatch`]) and the host's own
//! `rpc.` methods ([`builtin`]).

pub mod builtin;
pub mod caller;
pub mod dispatch;
pub mod wire;

pub use caller::Caller;
pub use dispatch::{Call, Dispatcher};
