//! JSON-RPC: the wire format ([`wire`]), who sent a message ([`caller`]),
//! dispatch through hooks to handlers ([`dispatch`]), batches ([`batch`]), the host's own `rpc.`
//! methods ([`builtin`]) and the OpenRPC document ([`openrpc`]).

mod batch;
pub mod builtin;
pub mod caller;
pub mod dispatch;
pub mod openrpc;
pub mod wire;

pub use caller::Caller;
pub use dispatch::{Call, Dispatcher};
