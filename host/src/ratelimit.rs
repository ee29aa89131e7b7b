//! Optional built-in rate limiting: a token bucket per client (the WebSocket
//! client id, or the remote IP address over HTTP). Each request, including
//! each request of a batch, takes one token.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

/// A token bucket: `per_second` requests on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second, on average.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: u32,
}

/// Buckets kept before idle ones are swept.
const SWEEP_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by client.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Buckets that refill at `limit.per_second` up to `limit.burst`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::default(),
        }
    }

    /// The limit in force.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Take a token for `client`; false when it has none left.
    pub fn allow(&self, client: &str) -> bool {
        let now = Instant::now();
        let burst = f64::from(self.limit.burst);
        let mut buckets = self.buckets.lock();
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(client) {
            // Buckets that have refilled completely carry no information.
            let per_second = self.limit.per_second;
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * per_second
                    < burst
            });
        }
        let bucket = match buckets.get_mut(client) {
            Some(bucket) => bucket,
            None => buckets.entry(client.to_owned()).or_insert(Bucket {
                tokens: burst,
                updated: now,
            }),
        };
        let refill = now.duration_since(bucket.updated).as_secs_f64() * self.limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_per_client() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.001,
            burst: 3,
        });
        assert!((0..3).all(|_| limiter.allow("a")));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"));
    }
}
