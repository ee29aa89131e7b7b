//! The timer behind `header_read_timeout`, one per HTTP connection.
//!
//! hyper arms a new sleep each time it starts reading a request head and
//! drops it once the head is in. With tokio's timer that is an allocation, an
//! insertion into the timer wheel and a removal from it (each under the
//! wheel's lock) for every request on a keep-alive connection. This timer
//! keeps one tokio sleep per connection and moves its deadline instead: tokio
//! moves a pending deadline later with one atomic operation, and only a sleep
//! that has already fired goes back into the wheel.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;

/// The header-read timer of one connection. hyper asks it for one header
/// deadline at a time; any other sleep is an ordinary tokio sleep.
#[derive(Clone, Default)]
pub struct HeaderTimer {
    sleep: SharedSleep,
}

/// The connection's one sleep, made at the first request head.
type SharedSleep = Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>;

impl Timer for HeaderTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        let mut sleep = self.sleep.lock().expect("header timer lock");
        match sleep.as_mut() {
            Some(sleep) => sleep.as_mut().reset(deadline.into()),
            None => *sleep = Some(Box::pin(tokio::time::sleep_until(deadline.into()))),
        }
        Box::pin(HeaderDeadline(Arc::clone(&self.sleep)))
    }
}

/// The connection's current header deadline, as hyper polls it. Dropping it
/// leaves the sleep in place for the next request to move.
struct HeaderDeadline(SharedSleep);

impl Future for HeaderDeadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut sleep = self.0.lock().expect("header timer lock");
        sleep
            .as_mut()
            .expect("a deadline exists only after its sleep was set")
            .as_mut()
            .poll(cx)
    }
}

impl Sleep for HeaderDeadline {}
