//! The retry decision, as a pure function of the answer and the attempt number.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

/// How many times, and how long, to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included, that failed (5xx, 408, transport errors).
    pub max_attempts: u32,
    /// 429 answers tolerated for one request. Being throttled is the server pacing us, not a
    /// failure, so it has a budget of its own; the client also pauses all its requests for the
    /// wait the 429 asked for.
    pub max_throttled: u32,
    /// First backoff ceiling; doubles each attempt.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// Longest `Retry-After` we accept; a longer one is capped to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            max_throttled: 30,
            base: Duration::from_millis(250),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The answer is final (success, or an error not worth retrying).
    Done,
    /// Try again after this wait.
    RetryAfter(Duration),
    /// Retriable, but out of attempts.
    GiveUp,
}

/// The outcome of one attempt, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The server answered.
    Status(StatusCode, &'a HeaderMap),
    /// Connection failed, dropped, or timed out.
    Transport,
}

/// Whether a status is worth retrying: 429, 408 and 5xx except 501.
pub fn retriable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// Decides whether to retry attempt number `attempt` (1-based, counting the answers of the
/// same kind: 429s for a 429, failures otherwise). `jitter` is a number in [0, 1)
/// (the caller draws it, so the decision stays pure); `now` anchors HTTP-date headers.
pub fn decide(
    outcome: Outcome<'_>,
    attempt: u32,
    policy: &RetryPolicy,
    jitter: f64,
    now: SystemTime,
) -> Decision {
    let (headers, budget) = match outcome {
        Outcome::Status(status, headers) => {
            if !retriable(status) {
                return Decision::Done;
            }
            let budget = if status == StatusCode::TOO_MANY_REQUESTS {
                policy.max_throttled
            } else {
                policy.max_attempts
            };
            (Some(headers), budget)
        }
        Outcome::Transport => (None, policy.max_attempts),
    };
    if attempt >= budget {
        return Decision::GiveUp;
    }
    if let Some(wait) = headers.and_then(|h| server_wait(h, now)) {
        return Decision::RetryAfter(wait.min(policy.max_retry_after));
    }
    let exp = policy
        .base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(policy.max_backoff);
    Decision::RetryAfter(ceiling.mul_f64(jitter.clamp(0.0, 1.0)))
}

/// The wait the server asked for: `Retry-After` (seconds or HTTP date), else
/// `X-RateLimit-Reset` / `RateLimit-Reset` (seconds to wait, or a Unix time).
pub fn server_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(v) = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Ok(secs) = v.parse::<f64>()
            && secs.is_finite()
            && secs >= 0.0
        {
            return Some(Duration::from_secs_f64(secs));
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    for name in ["x-ratelimit-reset", "ratelimit-reset"] {
        if let Some(n) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            // A large number is a Unix time; a small one is seconds to wait.
            if n > 1_000_000_000 {
                let at = SystemTime::UNIX_EPOCH + Duration::from_secs(n);
                return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
            }
            return Some(Duration::from_secs(n));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        h
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn statuses() {
        let p = RetryPolicy::default();
        let h = HeaderMap::new();
        for code in [429, 408, 500, 502, 503, 504] {
            let s = StatusCode::from_u16(code).expect("valid");
            assert!(
                matches!(
                    decide(Outcome::Status(s, &h), 1, &p, 0.5, now()),
                    Decision::RetryAfter(_)
                ),
                "{code}"
            );
        }
        for code in [200, 301, 400, 401, 403, 404, 501] {
            let s = StatusCode::from_u16(code).expect("valid");
            assert_eq!(
                decide(Outcome::Status(s, &h), 1, &p, 0.5, now()),
                Decision::Done,
                "{code}"
            );
        }
        assert!(matches!(
            decide(Outcome::Transport, 1, &p, 0.5, now()),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn throttling_has_a_budget_of_its_own() {
        let p = RetryPolicy {
            max_attempts: 3,
            max_throttled: 10,
            ..RetryPolicy::default()
        };
        let h = headers(&[("retry-after", "1")]);
        let s = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(
            decide(Outcome::Status(s, &h), 5, &p, 0.5, now()),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            decide(Outcome::Status(s, &h), 10, &p, 0.5, now()),
            Decision::GiveUp
        );
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let h = HeaderMap::new();
        let s = StatusCode::SERVICE_UNAVAILABLE;
        assert!(matches!(
            decide(Outcome::Status(s, &h), 2, &p, 0.5, now()),
            Decision::RetryAfter(_)
        ));
        assert_eq!(
            decide(Outcome::Status(s, &h), 3, &p, 0.5, now()),
            Decision::GiveUp
        );
        assert_eq!(
            decide(Outcome::Transport, 3, &p, 0.5, now()),
            Decision::GiveUp
        );
    }

    #[test]
    fn full_jitter_grows_and_caps() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let h = HeaderMap::new();
        let s = StatusCode::BAD_GATEWAY;
        let wait =
            |attempt, jitter| match decide(Outcome::Status(s, &h), attempt, &p, jitter, now()) {
                Decision::RetryAfter(d) => d,
                other => panic!("expected a retry, got {other:?}"),
            };
        assert_eq!(wait(1, 0.999_999).as_millis(), 99);
        assert_eq!(wait(3, 0.999_999).as_millis(), 399);
        assert_eq!(wait(7, 0.999_999).as_millis(), 999);
        assert_eq!(wait(5, 0.0), Duration::ZERO);
    }

    #[test]
    fn honours_retry_after_seconds_and_date() {
        let p = RetryPolicy::default();
        let s = StatusCode::TOO_MANY_REQUESTS;
        let h = headers(&[("retry-after", "2")]);
        assert_eq!(
            decide(Outcome::Status(s, &h), 1, &p, 0.0, now()),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(7));
        let h = headers(&[("retry-after", &date)]);
        assert_eq!(
            decide(Outcome::Status(s, &h), 1, &p, 0.0, now()),
            Decision::RetryAfter(Duration::from_secs(7))
        );
        let h = headers(&[("retry-after", "100000")]);
        assert_eq!(
            decide(Outcome::Status(s, &h), 1, &p, 0.0, now()),
            Decision::RetryAfter(p.max_retry_after)
        );
    }

    #[test]
    fn honours_rate_limit_reset() {
        let p = RetryPolicy::default();
        let s = StatusCode::TOO_MANY_REQUESTS;
        let h = headers(&[("x-ratelimit-reset", "1700000003")]);
        assert_eq!(
            decide(Outcome::Status(s, &h), 1, &p, 0.0, now()),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        let h = headers(&[("ratelimit-reset", "4")]);
        assert_eq!(
            decide(Outcome::Status(s, &h), 1, &p, 0.0, now()),
            Decision::RetryAfter(Duration::from_secs(4))
        );
    }
}
