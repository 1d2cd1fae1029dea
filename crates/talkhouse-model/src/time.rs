//! Lenient timestamp parsing for vendor data.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parses an instant as vendors send them: RFC 3339 with `Z` or an offset, 0 to 9 fractional
/// digits, or no zone at all (taken as UTC), with `T` or a space between date and time; a bare
/// date is midnight UTC; a number is Unix epoch seconds (or milliseconds when it is that large).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let replaced;
    let s2 = if s.as_bytes().get(10) == Some(&b' ') {
        replaced = format!("{}T{}", &s[..10], &s[11..]);
        replaced.as_str()
    } else {
        s
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s2) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s2, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s2, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s2, "%Y-%m-%dT%H:%M") {
        return Some(t.and_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    if let Ok(n) = s.parse::<f64>() {
        return from_epoch(n);
    }
    None
}

/// An epoch number: seconds, or milliseconds when larger than 10^11.
pub fn from_epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() {
        return None;
    }
    let micros = if n.abs() > 1e11 { n * 1e3 } else { n * 1e6 };
    // Truncation to whole microseconds is intended.
    #[allow(clippy::cast_possible_truncation)]
    DateTime::from_timestamp_micros(micros as i64)
}

/// Parses a JSON value holding an instant (string or epoch number).
pub fn parse_timestamp_value(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    match v {
        serde_json::Value::String(s) => parse_timestamp(s),
        serde_json::Value::Number(n) => n.as_f64().and_then(from_epoch),
        _ => None,
    }
}

/// Parses a span: `50ms`, `90s`, `30m` (or `30min`), `2h`, `7d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(chrono::Duration::seconds(n)),
        "ms" => Some(chrono::Duration::milliseconds(n)),
        "m" | "min" => Some(chrono::Duration::minutes(n)),
        "h" => Some(chrono::Duration::hours(n)),
        "d" => Some(chrono::Duration::days(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_vendor_variants() {
        let want = "2024-03-01T10:20:30Z";
        for s in [
            "2024-03-01T10:20:30Z",
            "2024-03-01T10:20:30.000Z",
            "2024-03-01T10:20:30.000000000Z",
            "2024-03-01T10:20:30+00:00",
            "2024-03-01T10:20:30",
            "2024-03-01 10:20:30",
            "2024-03-01T12:20:30+02:00",
            "2024-03-01T10:20:30.000+0000",
            "1709288430",
        ] {
            let t = parse_timestamp(s).unwrap_or_else(|| panic!("{s} did not parse"));
            assert_eq!(
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                want,
                "{s}"
            );
        }
        assert_eq!(
            parse_timestamp("2024-03-01T10:20:30.123456789Z").map(|t| t.timestamp_subsec_micros()),
            Some(123_456)
        );
        assert!(parse_timestamp("yesterday").is_none());
    }
}
