//! Authentication in `before-request`: every request must carry
//! `Authorization: Bearer <token>` (an HTTP header, or a header of the
//! WebSocket handshake) matching `token` in the plugin's configuration.
//! Others are rejected with error 401; with no token configured, everything
//! is rejected.

use rpcnode_sdk::host::{self, LogLevel};
use rpcnode_sdk::{Plugin, Request, RpcError, export};

/// The application error code for a missing or wrong token.
const UNAUTHORIZED: i32 = 401;

fn before_request(request: &Request) -> Result<(), RpcError> {
    let expected: Option<String> = host::config("token");
    let authorization = request.context().header("authorization");
    let presented = authorization
        .as_deref()
        .and_then(|value| value.strip_prefix("Bearer "));
    match (expected, presented) {
        (Some(expected), Some(presented))
            if constant_time_eq(expected.as_bytes(), presented.as_bytes()) =>
        {
            Ok(())
        }
        (None, _) => {
            host::log(
                LogLevel::Error,
                "no token configured: set token in auth.toml's [config]",
            );
            Err(RpcError::new(UNAUTHORIZED, "Authentication required"))
        }
        _ => Err(RpcError::new(UNAUTHORIZED, "Authentication required")),
    }
}

/// Compare without stopping at the first difference, so timing does not
/// reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(0u8, |difference, (x, y)| difference | (x ^ y))
            == 0
}

fn plugin() -> Plugin {
    Plugin::new("auth", env!("CARGO_PKG_VERSION")).before_request(before_request)
}

export!(plugin);
