//! Random values from the operating system: session tokens, stream epochs
//! and retry jitter.

use std::fmt::Write as _;
use std::time::Duration;

/// `bytes` random bytes from the operating system, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random source failed");
    hex(&buffer)
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// `delay` moved by up to a fifth either way, so that peers that failed
/// together do not all retry at once.
pub fn jittered(delay: Duration) -> Duration {
    let mut bytes = [0u8; 2];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    let unit = f64::from(u16::from_le_bytes(bytes)) / f64::from(u16::MAX);
    delay.mul_f64(0.8 + 0.4 * unit)
}
