//! The `[serve]` section of `talkhouse.toml`: serde types (durations as [`Interval`]) that the
//! CLI deserialises with the rest of the file, and the checks the types cannot make.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use talkhouse_model::Secret;

/// `[serve]`: every key is optional.
///
/// ```toml
/// [serve]
/// listen = "127.0.0.1:8080"                 # address to bind
/// schedule = { gladly = "1h", giosg = "15m" } # source name → sync interval
/// inbox = "file"                            # file (default) | postgres
/// inbox_dir = "./talkhouse-inbox"           # file inbox: folder of the append-only log
/// # inbox_url = "postgres://talkhouse@127.0.0.1:5432/warehouse"  # postgres inbox (scale-out)
/// workers = 4                               # workers processing the inbox
/// batch_events = 100                        # events a worker claims and commits together
/// max_body_bytes = 1048576                  # larger pushes get 413
/// request_timeout = "10s"                   # slower requests get 408
/// max_attempts = 20                         # processing attempts before an event is dead
/// dedupe_window = "7d"                      # how long processed event ids are remembered
/// shutdown_grace = "30s"                    # how long shutdown waits for in-flight work
/// lease = "5m"                              # postgres inbox: how long a claim is held
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to bind (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Source name (or vendor) → sync interval. Sources not listed are never synced on a
    /// schedule (their pushes are still processed).
    #[serde(default)]
    pub schedule: BTreeMap<String, Interval>,
    /// Where the inbox lives.
    #[serde(default)]
    pub inbox: InboxKind,
    /// File inbox: the folder holding `inbox.log` (default `./talkhouse-inbox`).
    #[serde(default = "default_inbox_dir")]
    pub inbox_dir: PathBuf,
    /// PostgreSQL inbox: connection URL (required when `inbox = "postgres"`).
    #[serde(default)]
    pub inbox_url: Option<Secret>,
    /// Workers processing the inbox concurrently (default 4).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Events a worker claims at once; those of one source are committed in one batch (and
    /// one by one if the batch fails). Default 100.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
    /// Largest accepted request body in bytes (default 1 MiB); larger ones get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Requests slower than this get 408 (default 10 s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Interval,
    /// Processing attempts before an event is set aside as dead (default 20; retries back off
    /// exponentially up to 5 minutes apart).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long processed event ids are remembered for deduplication (default 7 days).
    #[serde(default = "default_dedupe_window")]
    pub dedupe_window: Interval,
    /// How long shutdown waits for in-flight events and syncs before leaving them (default 30 s).
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: Interval,
    /// PostgreSQL inbox: how long a claimed event is reserved for the instance that claimed it
    /// (default 5 minutes); a crashed instance's claims return to the queue after it.
    #[serde(default = "default_lease")]
    pub lease: Interval,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            schedule: BTreeMap::new(),
            inbox: InboxKind::File,
            inbox_dir: default_inbox_dir(),
            inbox_url: None,
            workers: default_workers(),
            batch_events: default_batch_events(),
            max_body_bytes: default_max_body(),
            request_timeout: default_request_timeout(),
            max_attempts: default_max_attempts(),
            dedupe_window: default_dedupe_window(),
            shutdown_grace: default_shutdown_grace(),
            lease: default_lease(),
        }
    }
}

impl ServeConfig {
    /// Checks what the types cannot: that every `schedule` key names a configured source (by
    /// name or vendor, given as `(name, vendor)` pairs) and that there is a worker.
    /// [`Server::bind`](crate::Server::bind) runs it; the CLI runs it when it reads the file, so
    /// that the error can name the line.
    ///
    /// # Errors
    /// The first setting that cannot work.
    pub fn check(&self, sources: &[(&str, &str)]) -> Result<(), ServeConfigError> {
        for name in self.schedule.keys() {
            if !sources
                .iter()
                .any(|&(n, v)| n == name.as_str() || v == name.as_str())
            {
                return Err(ServeConfigError {
                    key: vec!["schedule".into(), name.clone()],
                    message: format!("schedule names `{name}`, which is not a configured source"),
                });
            }
        }
        if self.workers == 0 {
            return Err(ServeConfigError {
                key: vec!["workers".into()],
                message: "workers must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A `[serve]` setting that cannot work ([`ServeConfig::check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServeConfigError {
    /// The key to blame, as a path below `[serve]` (`["schedule", "gladly"]`).
    pub key: Vec<String>,
    /// What is wrong.
    pub message: String,
}

/// Which inbox implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxKind {
    /// An append-only, fsynced log in `inbox_dir` (one instance).
    #[default]
    File,
    /// Tables in PostgreSQL at `inbox_url` (several instances share it).
    Postgres,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_inbox_dir() -> PathBuf {
    PathBuf::from("./talkhouse-inbox")
}
const fn default_workers() -> usize {
    4
}
const fn default_batch_events() -> usize {
    100
}
const fn default_max_body() -> usize {
    1 << 20
}
const fn default_request_timeout() -> Interval {
    Interval(Duration::from_secs(10))
}
const fn default_max_attempts() -> u32 {
    20
}
const fn default_dedupe_window() -> Interval {
    Interval(Duration::from_secs(7 * 86_400))
}
const fn default_shutdown_grace() -> Interval {
    Interval(Duration::from_secs(30))
}
const fn default_lease() -> Interval {
    Interval(Duration::from_secs(300))
}

/// A duration written like `500ms`, `30s`, `15m`, `1h30m`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(pub Duration);

/// Why an interval could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid interval `{0}`: expected a number with a unit, like 500ms, 30s, 15m, 1h30m or 7d")]
pub struct IntervalError(String);

impl FromStr for Interval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IntervalError(s.to_owned());
        let text = s.trim();
        if text.is_empty() {
            return Err(err());
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
            if digits == 0 {
                return Err(err());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let part = match unit {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                "d" => Duration::from_secs(n.saturating_mul(86_400)),
                _ => return Err(err()),
            };
            total = total.saturating_add(part);
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        let cases = [
            ("500ms", 500),
            ("30s", 30_000),
            ("15m", 900_000),
            ("1h30m", 5_400_000),
            ("7d", 604_800_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                text.parse::<Interval>().map(|i| i.0).ok(),
                Some(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["", "15", "m", "15x", "1h 30m", "-1s"] {
            assert!(bad.parse::<Interval>().is_err(), "{bad}");
        }
    }
}
