//! `header_read_timeout`: an HTTP connection with no request in flight must
//! send the next request head within the timeout, or it is closed. This is
//! the defence against clients that open connections and then send their
//! headers slowly, or never.
//!
//! The clock is kept here rather than by hyper: hyper arms a timer for each
//! request head and makes one more pass of its connection loop after each
//! response when a header deadline is set. Here a request costs a clock read
//! and two atomic operations, and the connection's sleep wakes about once per
//! timeout, not once per request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The header deadline of one connection.
#[derive(Debug)]
pub struct HeadDeadline {
    timeout: Duration,
    opened: Instant,
    /// Requests whose head is in and whose answer is not yet handed over.
    in_flight: AtomicUsize,
    /// When the last request was answered, in µs since `opened`.
    idle_since_us: AtomicU64,
}

impl HeadDeadline {
    /// The deadline of a connection opened now: its first head is due
    /// `timeout` from now.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_us: AtomicU64::new(0),
        }
    }

    /// Stops the clock for a request whose head is in, until the returned
    /// guard drops with the answer; then the next head is due `timeout`
    /// later.
    pub fn request(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Completes once the connection has had no request in flight for the
    /// timeout.
    pub async fn expired(&self) {
        let mut check_at = self.opened + self.timeout;
        loop {
            tokio::time::sleep_until(check_at.into()).await;
            let now = Instant::now();
            check_at = if self.in_flight.load(Ordering::Acquire) > 0 {
                // The clock starts again when that request is answered, so
                // the next head is due no sooner than this.
                now + self.timeout
            } else {
                let idle_since = Duration::from_micros(self.idle_since_us.load(Ordering::Relaxed));
                let due = self.opened + idle_since + self.timeout;
                if now >= due {
                    return;
                }
                due
            };
        }
    }
}

/// A request in flight on a connection; see [`HeadDeadline::request`].
#[derive(Debug)]
pub struct InFlight<'a>(&'a HeadDeadline);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let deadline = self.0;
        let since_opened = deadline.opened.elapsed().as_micros() as u64;
        deadline
            .idle_since_us
            .store(since_opened, Ordering::Relaxed);
        // Release: whoever sees the count drop also sees the time above.
        deadline.in_flight.fetch_sub(1, Ordering::Release);
    }
}
