//! The metric definitions in plain Rust: percentiles, rates and first response.
//!
//! The report computes its figures in SQL (so they scale with the warehouse); these functions
//! state the same definitions over in-memory values. Tests use them as the independent
//! reference, and the report uses the small ones (rates, weighted means) to combine SQL
//! aggregates.

use chrono::{DateTime, Utc};

/// Continuous percentile with linear interpolation, as SQL's
/// `percentile_cont(p) WITHIN GROUP (ORDER BY x)` (PostgreSQL and DuckDB agree): the value at
/// position `p · (n − 1)` of the sorted values. `None` for no values; NaNs are ignored.
pub fn percentile_cont(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let p = p.clamp(0.0, 1.0);
    #[allow(clippy::cast_precision_loss)]
    let pos = p * (v.len() - 1) as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let frac = pos - pos.floor();
    Some(v[lo] + (v[hi] - v[lo]) * frac)
}

/// Arithmetic mean; `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = values.len() as f64;
    Some(values.iter().sum::<f64>() / n)
}

/// `part / whole` as a fraction in [0, 1]; `None` when `whole` is 0.
pub fn rate(part: u64, whole: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (whole > 0).then(|| (part.min(whole)) as f64 / whole as f64)
}

/// `sum / count`, the mean recovered from SQL aggregates; `None` when `count` is 0.
pub fn mean_of(sum: f64, count: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (count > 0).then(|| sum / count as f64)
}

/// Mean, median and 90th percentile of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Distribution {
    /// Arithmetic mean.
    pub mean: Option<f64>,
    /// 50th percentile (`percentile_cont(0.5)`).
    pub median: Option<f64>,
    /// 90th percentile (`percentile_cont(0.9)`).
    pub p90: Option<f64>,
}

impl Distribution {
    /// The distribution of `values`.
    pub fn of(values: &[f64]) -> Self {
        Self {
            mean: mean(values),
            median: percentile_cont(values, 0.5),
            p90: percentile_cont(values, 0.9),
        }
    }
}

/// A message as first response needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedMessage<'a> {
    /// `customer`, `agent`, `bot` or `system`.
    pub sender_role: &'a str,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
}

/// First response time of one conversation, in seconds: from the first customer message to the
/// first agent or bot message strictly after it. `None` when there is no customer message or
/// no reply after it. With `agents_only`, bot messages do not count as a response.
pub fn first_response_seconds(messages: &[TimedMessage<'_>], agents_only: bool) -> Option<f64> {
    let first_customer = messages
        .iter()
        .filter(|m| m.sender_role == "customer")
        .filter_map(|m| m.sent_at)
        .min()?;
    let responds = |role: &str| role == "agent" || (!agents_only && role == "bot");
    let first_reply = messages
        .iter()
        .filter(|m| responds(m.sender_role))
        .filter_map(|m| m.sent_at)
        .filter(|t| *t > first_customer)
        .min()?;
    #[allow(clippy::cast_precision_loss)]
    Some((first_reply - first_customer).num_microseconds()? as f64 / 1e6)
}

/// Buckets of the first-response histogram: label and exclusive upper bound in seconds (the
/// last is open-ended). Shared by the SQL and the reference so both bucket the same way.
pub const RESPONSE_BUCKETS: [(&str, f64); 9] = [
    ("< 10 s", 10.0),
    ("10–30 s", 30.0),
    ("30–60 s", 60.0),
    ("1–2 min", 120.0),
    ("2–5 min", 300.0),
    ("5–15 min", 900.0),
    ("15–60 min", 3600.0),
    ("1–4 h", 14_400.0),
    ("≥ 4 h", f64::INFINITY),
];

/// The index into [`RESPONSE_BUCKETS`] of a response time.
pub fn response_bucket(seconds: f64) -> usize {
    RESPONSE_BUCKETS
        .iter()
        .position(|(_, upper)| seconds < *upper)
        .unwrap_or(RESPONSE_BUCKETS.len() - 1)
}

/// VADER's convention: compound ≥ 0.05 is positive, ≤ −0.05 negative, neutral between.
pub const SENTIMENT_THRESHOLD: f64 = 0.05;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_sql() {
        // PostgreSQL: percentile_cont(0.5) of 1,2,3,4 = 2.5; percentile_cont(0.9) = 3.7.
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile_cont(&v, 0.5), Some(2.5));
        let p90 = percentile_cont(&v, 0.9).unwrap_or_default();
        assert!((p90 - 3.7).abs() < 1e-12);
        assert_eq!(percentile_cont(&[7.0], 0.9), Some(7.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
        assert_eq!(percentile_cont(&[1.0, 2.0, 3.0], 0.0), Some(1.0));
        assert_eq!(percentile_cont(&[1.0, 2.0, 3.0], 1.0), Some(3.0));
    }

    #[test]
    fn rates() {
        assert_eq!(rate(1, 4), Some(0.25));
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(5, 4), Some(1.0), "clamped into [0, 1]");
        assert_eq!(mean_of(3.0, 2), Some(1.5));
        assert_eq!(mean(&[]), None);
    }

    fn at(s: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(1_700_000_000 + s, 0)
    }

    #[test]
    fn first_response_after_first_customer_message() {
        let m = |role, s| TimedMessage {
            sender_role: role,
            sent_at: at(s),
        };
        // A bot greeting before the customer writes is not a response.
        let conv = [
            m("bot", 0),
            m("customer", 10),
            m("customer", 15),
            m("bot", 12),
            m("agent", 70),
        ];
        assert_eq!(first_response_seconds(&conv, false), Some(2.0));
        assert_eq!(first_response_seconds(&conv, true), Some(60.0));
        // System messages never respond; no reply at all → None.
        assert_eq!(
            first_response_seconds(&[m("customer", 0), m("system", 5)], false),
            None
        );
        // No customer message → None.
        assert_eq!(first_response_seconds(&[m("agent", 0)], false), None);
        // A reply at the very same instant is not "after".
        assert_eq!(
            first_response_seconds(&[m("customer", 0), m("agent", 0), m("agent", 3)], false),
            Some(3.0)
        );
    }

    #[test]
    fn buckets() {
        assert_eq!(response_bucket(0.0), 0);
        assert_eq!(response_bucket(10.0), 1);
        assert_eq!(response_bucket(59.9), 2);
        assert_eq!(response_bucket(1e9), RESPONSE_BUCKETS.len() - 1);
    }
}
