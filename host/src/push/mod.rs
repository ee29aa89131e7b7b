//! Server push: the clients of this node ([`clients`]), the broker that
//! appends every notification to its stream and delivers it from there
//! ([`broker`]), resumable sessions ([`sessions`]), and a live copy of what
//! is delivered for the dashboard ([`tail`]).

pub mod broker;
pub mod clients;
pub mod sessions;
pub mod tail;

pub use broker::{Broker, PushError};
pub use clients::{ClientError, Clients, Departure, Outbound, Registration};
pub use sessions::{SessionError, Sessions, StreamPosition};
