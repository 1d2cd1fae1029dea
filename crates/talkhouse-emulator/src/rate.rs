//! A small token bucket the emulators use to answer bursts with the vendor's own 429.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second, up to `burst`.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token, or says how long until one is available.
    ///
    /// # Errors
    /// The wait until the next token when the bucket is empty.
    pub fn take(&self) -> Result<(), Duration> {
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = &mut *guard;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }

    /// Tokens left, rounded down (for `*-Remaining` headers).
    pub fn remaining(&self) -> u64 {
        let guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Tokens are within [0, burst]: the cast cannot lose meaning.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = guard.0.max(0.0).floor() as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuses() {
        let b = Bucket::new(10.0, 3.0);
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().expect_err("fourth token in a burst of three");
        assert!(wait <= Duration::from_millis(100));
    }
}
