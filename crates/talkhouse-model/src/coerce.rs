//! The one rule set that turns a cell into its column's declared type.
//!
//! The engine applies [`coerce`] to every cell of every row before any destination sees it, so
//! DuckDB, PostgreSQL and Delta Lake receive the same typed value and only map exact type pairs.
//! Sources should already produce the declared type; these rules decide what happens when a
//! vendor sends something else.
//!
//! | column | converted | stored as NULL (the row loads; a note goes to quarantine) |
//! |---|---|---|
//! | `Text` | numbers and booleans as their text, timestamps as RFC 3339 (µs, `Z`), dates as `YYYY-MM-DD`, JSON as its text (a JSON string as its content) | — |
//! | `Integer` | a float without fraction within ±2⁶³; text holding such a number (`" 42 "`, `"42.0"`, `"1e3"`); booleans as 0/1 | a fraction, NaN, ±∞, a number out of range, other text, a timestamp, a date, a JSON document |
//! | `Float` | integers; text holding a finite number | NaN and ±∞ (engines disagree on them), other text, a timestamp, a date, a boolean, a JSON document |
//! | `Boolean` | text `true`/`false`/`t`/`f`/`yes`/`no`/`1`/`0` (any case); integers 0 and 1 | other text or numbers, a timestamp, a date, a JSON document |
//! | `Timestamp` | a date (midnight UTC); RFC 3339 text with a zone, without one (taken as UTC), or a bare date; Unix epoch seconds as a number or text (milliseconds when above 10¹¹) | other text, a boolean, a JSON document |
//! | `Date` | a timestamp (its UTC day); text holding a date or a timestamp (its UTC day) | other text, a number, a boolean, a JSON document |
//! | `Json` | every other cell, as its JSON value (text as a JSON string) | — |
//!
//! Blank text (empty or only spaces) is NULL in every column but `Text`. Text everywhere, and
//! the strings inside JSON documents, lose NUL characters (U+0000), which PostgreSQL cannot
//! store: each becomes U+FFFD. A value that cannot be converted in a **key** column leaves no
//! way to merge the row: the engine quarantines the whole record instead.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::{Cell, ColumnType};

/// Why a cell could not be converted to its column's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} is not a valid {ty}")]
pub struct CoerceError {
    /// The value as received (shortened).
    pub value: String,
    /// The column's type, in words.
    pub ty: &'static str,
}

/// Converts `cell` to type `ty` by the rules above: `Ok` with the converted cell (NULL for
/// blank text), `Err` when it has no value of that type (the caller stores NULL or
/// quarantines the record).
///
/// # Errors
/// When the value cannot be represented in the column's type.
pub fn coerce(cell: Cell, ty: ColumnType) -> Result<Cell, CoerceError> {
    use ColumnType as T;
    let fail = |cell: &Cell, ty: &'static str| CoerceError {
        value: shown(cell),
        ty,
    };
    if let Cell::Text(s) = &cell
        && ty != T::Text
        && s.trim().is_empty()
    {
        return Ok(Cell::Null);
    }
    Ok(match (cell, ty) {
        (Cell::Null, _) => Cell::Null,
        // Exact pairs: the common case.
        (Cell::Text(s), T::Text) => Cell::Text(without_nul(s)),
        (Cell::Integer(i), T::Integer) => Cell::Integer(i),
        (Cell::Boolean(b), T::Integer) => Cell::Integer(i64::from(b)),
        (Cell::Float(f), T::Float) => finite(f),
        (Cell::Boolean(b), T::Boolean) => Cell::Boolean(b),
        (Cell::Timestamp(t), T::Timestamp) => Cell::Timestamp(t),
        (Cell::Date(d), T::Date) => Cell::Date(d),
        (Cell::Json(v), T::Json) => json(v),
        // Text columns take anything as text.
        (Cell::Json(serde_json::Value::String(s)), T::Text) => Cell::Text(without_nul(s)),
        (Cell::Json(v), T::Text) => Cell::Text(without_nul(v.to_string())),
        (Cell::Integer(i), T::Text) => Cell::Text(i.to_string()),
        (Cell::Float(f), T::Text) => Cell::Text(f.to_string()),
        (Cell::Boolean(b), T::Text) => Cell::Text(b.to_string()),
        (Cell::Timestamp(t), T::Text) => Cell::Text(timestamp_text(t)),
        (Cell::Date(d), T::Text) => Cell::Text(d.to_string()),
        // Numbers.
        (Cell::Float(f), T::Integer) => match float_to_int(f) {
            Some(i) => Cell::Integer(i),
            None => return Err(fail(&Cell::Float(f), "integer")),
        },
        (Cell::Text(s), T::Integer) => match text_to_int(&s) {
            Some(i) => Cell::Integer(i),
            None => return Err(fail(&Cell::Text(s), "integer")),
        },
        #[allow(clippy::cast_precision_loss)]
        (Cell::Integer(i), T::Float) => Cell::Float(i as f64),
        (Cell::Text(s), T::Float) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Cell::Float(f),
            _ => return Err(fail(&Cell::Text(s), "number")),
        },
        // Booleans.
        (Cell::Text(s), T::Boolean) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "1" => Cell::Boolean(true),
            "false" | "f" | "no" | "0" => Cell::Boolean(false),
            _ => return Err(fail(&Cell::Text(s), "boolean")),
        },
        (Cell::Integer(i @ (0 | 1)), T::Boolean) => Cell::Boolean(i == 1),
        // Time.
        (Cell::Date(d), T::Timestamp) => Cell::Timestamp(midnight(d)),
        #[allow(clippy::cast_precision_loss)]
        (Cell::Integer(i), T::Timestamp) => match crate::time::from_epoch(i as f64) {
            Some(t) => Cell::Timestamp(t),
            None => return Err(fail(&Cell::Integer(i), "timestamp")),
        },
        (Cell::Float(f), T::Timestamp) => match crate::time::from_epoch(f) {
            Some(t) => Cell::Timestamp(t),
            None => return Err(fail(&Cell::Float(f), "timestamp")),
        },
        (Cell::Text(s), T::Timestamp) => match crate::time::parse_timestamp(s.trim()) {
            Some(t) => Cell::Timestamp(t),
            None => return Err(fail(&Cell::Text(s), "timestamp")),
        },
        (Cell::Timestamp(t), T::Date) => Cell::Date(t.date_naive()),
        (Cell::Text(s), T::Date) => match text_to_date(&s) {
            Some(d) => Cell::Date(d),
            None => return Err(fail(&Cell::Text(s), "date")),
        },
        // JSON takes anything as its JSON value.
        (other, T::Json) => json(other.to_json()),
        (other, T::Integer) => return Err(fail(&other, "integer")),
        (other, T::Float) => return Err(fail(&other, "number")),
        (other, T::Boolean) => return Err(fail(&other, "boolean")),
        (other, T::Timestamp) => return Err(fail(&other, "timestamp")),
        (other, T::Date) => return Err(fail(&other, "date")),
    })
}

/// A float as an integer when it has no fraction and fits an `i64`.
fn float_to_int(f: f64) -> Option<i64> {
    // 2^63 is exact as a float; every float of smaller magnitude fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    #[allow(clippy::cast_possible_truncation)]
    (f.is_finite() && f.fract() == 0.0 && f.abs() < LIMIT).then_some(f as i64)
}

fn text_to_int(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>()
        .ok()
        .or_else(|| s.parse::<f64>().ok().and_then(float_to_int))
}

fn text_to_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    s.parse::<NaiveDate>()
        .ok()
        .or_else(|| crate::time::parse_timestamp(s).map(|t| t.date_naive()))
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

fn finite(f: f64) -> Cell {
    if f.is_finite() {
        Cell::Float(f)
    } else {
        Cell::Null
    }
}

fn timestamp_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s
    }
}

fn json(mut v: serde_json::Value) -> Cell {
    fn clean(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => {
                *s = s.replace('\0', "\u{fffd}");
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(clean),
            serde_json::Value::Object(o) => {
                if o.keys().any(|k| k.contains('\0')) {
                    let entries: Vec<(String, serde_json::Value)> = std::mem::take(o)
                        .into_iter()
                        .map(|(k, v)| (k.replace('\0', "\u{fffd}"), v))
                        .collect();
                    o.extend(entries);
                }
                o.values_mut().for_each(clean);
            }
            _ => {}
        }
    }
    if v.is_null() {
        return Cell::Null;
    }
    clean(&mut v);
    Cell::Json(v)
}

/// A value for an error message: its text, at most 80 characters.
fn shown(cell: &Cell) -> String {
    let text = match cell {
        Cell::Text(s) => format!("text {s:?}"),
        Cell::Json(v) => format!("JSON {v}"),
        Cell::Float(f) => format!("number {f}"),
        Cell::Integer(i) => format!("integer {i}"),
        Cell::Boolean(b) => format!("boolean {b}"),
        Cell::Timestamp(t) => format!("timestamp {}", timestamp_text(*t)),
        Cell::Date(d) => format!("date {d}"),
        Cell::Null => "NULL".to_owned(),
    };
    if text.chars().count() > 80 {
        let mut short: String = text.chars().take(79).collect();
        short.push('…');
        short
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType as T;
    use serde_json::json;

    fn ok(cell: impl Into<Cell>, ty: ColumnType) -> Cell {
        coerce(cell.into(), ty).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn exact_pairs_pass_unchanged() {
        assert_eq!(ok(7i64, T::Integer), Cell::Integer(7));
        assert_eq!(ok(1.5, T::Float), Cell::Float(1.5));
        assert_eq!(ok("x", T::Text), Cell::Text("x".into()));
        assert_eq!(ok(true, T::Boolean), Cell::Boolean(true));
        assert_eq!(ok(json!({"a": 1}), T::Json), Cell::Json(json!({"a": 1})));
    }

    #[test]
    fn numbers() {
        assert_eq!(ok(3.0, T::Integer), Cell::Integer(3));
        assert!(coerce(Cell::Float(3.5), T::Integer).is_err());
        assert!(coerce(Cell::Float(f64::NAN), T::Integer).is_err());
        assert!(coerce(Cell::Float(1e30), T::Integer).is_err());
        assert_eq!(ok(" 42 ", T::Integer), Cell::Integer(42));
        assert_eq!(ok("42.0", T::Integer), Cell::Integer(42));
        assert_eq!(ok("1e3", T::Integer), Cell::Integer(1000));
        assert!(coerce(Cell::Text("99999999999999999999".into()), T::Integer).is_err());
        assert!(coerce(Cell::Text("abc".into()), T::Integer).is_err());
        assert_eq!(ok(i64::MAX, T::Integer), Cell::Integer(i64::MAX));
        assert_eq!(ok(2i64, T::Float), Cell::Float(2.0));
        assert_eq!(ok("2.5", T::Float), Cell::Float(2.5));
        assert_eq!(ok(f64::NAN, T::Float), Cell::Null);
        assert_eq!(ok(f64::INFINITY, T::Float), Cell::Null);
        assert!(coerce(Cell::Text("NaN".into()), T::Float).is_err());
        assert_eq!(ok("", T::Integer), Cell::Null);
        assert_eq!(ok("  ", T::Float), Cell::Null);
    }

    #[test]
    fn booleans() {
        assert_eq!(ok("TRUE", T::Boolean), Cell::Boolean(true));
        assert_eq!(ok("no", T::Boolean), Cell::Boolean(false));
        assert_eq!(ok(1i64, T::Boolean), Cell::Boolean(true));
        assert!(coerce(Cell::Integer(2), T::Boolean).is_err());
        assert!(coerce(Cell::Text("maybe".into()), T::Boolean).is_err());
    }

    #[test]
    fn time() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        assert_eq!(
            ok("2026-03-01T10:00:00+02:00", T::Timestamp),
            Cell::Timestamp(t("2026-03-01T08:00:00Z"))
        );
        assert_eq!(
            ok("2026-03-01T10:00:00", T::Timestamp),
            Cell::Timestamp(t("2026-03-01T10:00:00Z"))
        );
        assert_eq!(
            ok("2026-03-01", T::Timestamp),
            Cell::Timestamp(t("2026-03-01T00:00:00Z"))
        );
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
        assert_eq!(
            ok(day, T::Timestamp),
            Cell::Timestamp(t("2026-03-01T00:00:00Z"))
        );
        assert_eq!(
            ok("2026-03-01T23:30:00-02:00", T::Date),
            Cell::Date(day + chrono::Duration::days(1))
        );
        assert_eq!(ok(t("2026-03-01T23:59:59Z"), T::Date), Cell::Date(day));
        assert!(coerce(Cell::Text("yesterday".into()), T::Timestamp).is_err());
        assert_eq!(
            ok(1_772_323_200i64, T::Timestamp),
            Cell::Timestamp(t("2026-03-01T00:00:00Z"))
        );
        assert_eq!(
            ok("1772323200000", T::Timestamp),
            Cell::Timestamp(t("2026-03-01T00:00:00Z"))
        );
        assert!(coerce(Cell::Boolean(true), T::Timestamp).is_err());
    }

    #[test]
    fn text_and_json() {
        assert_eq!(ok(1.5, T::Text), Cell::Text("1.5".into()));
        assert_eq!(ok(json!("s"), T::Text), Cell::Text("s".into()));
        assert_eq!(ok(json!([1]), T::Text), Cell::Text("[1]".into()));
        assert_eq!(ok("a\0b", T::Text), Cell::Text("a\u{fffd}b".into()));
        assert_eq!(ok("s", T::Json), Cell::Json(json!("s")));
        assert_eq!(ok(3i64, T::Json), Cell::Json(json!(3)));
        assert_eq!(
            ok(json!({"k\u{0}": ["x\u{0}"]}), T::Json),
            Cell::Json(json!({"k\u{fffd}": ["x\u{fffd}"]}))
        );
        let Err(e) = coerce(Cell::Text("x".repeat(200)), T::Integer) else {
            panic!("long text is no integer");
        };
        assert!(e.to_string().chars().count() < 120, "{e}");
    }
}
