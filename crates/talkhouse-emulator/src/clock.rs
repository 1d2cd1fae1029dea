//! The emulators' "now", under the tests' control.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, DurationRound, Utc};

/// A shared clock: cloning shares it. Emulators serve only data whose time has come.
#[derive(Debug, Clone)]
pub struct Clock {
    micros: Arc<AtomicI64>,
}

impl Clock {
    /// A clock set to `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(now.timestamp_micros())),
        }
    }

    /// A clock at the wall-clock time rounded down to the hour (stable within an hour, so the
    /// same seed gives the same data in a test run).
    pub fn at_now_rounded() -> Self {
        let now = Utc::now();
        Self::at(now.duration_trunc(Duration::hours(1)).unwrap_or(now))
    }

    /// The current emulated time.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst)).unwrap_or_default()
    }

    /// Sets the emulated time.
    pub fn set(&self, now: DateTime<Utc>) {
        self.micros.store(now.timestamp_micros(), Ordering::SeqCst);
    }

    /// Moves the emulated time forward.
    pub fn advance(&self, by: Duration) {
        self.micros
            .fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

/// Parses `90s`, `15m`, `2h`, `7d`, `50ms` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::seconds(n)),
        "ms" => Some(Duration::milliseconds(n)),
        "m" | "min" => Some(Duration::minutes(n)),
        "h" => Some(Duration::hours(n)),
        "d" => Some(Duration::days(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_time() {
        let c = Clock::at(DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default());
        let d = c.clone();
        c.advance(Duration::days(1));
        assert_eq!(d.now().timestamp(), 1_700_000_000 + 86_400);
        assert_eq!(parse_duration("50ms"), Some(Duration::milliseconds(50)));
        assert_eq!(parse_duration("7d"), Some(Duration::days(7)));
        assert_eq!(parse_duration("7y"), None);
    }
}
