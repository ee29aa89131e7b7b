//! Wall-clock time for timestamps in notifications.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, with the fraction: what Python's
/// `time.time()` gives, so notifications carry the timestamps the RpcNode
/// seed's clients read.
pub fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}
