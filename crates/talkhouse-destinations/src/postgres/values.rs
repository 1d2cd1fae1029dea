//! Conversions between talkhouse cells, PostgreSQL wire values and JSON.

use std::borrow::Cow;
use std::error::Error;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::Value as J;
use talkhouse_model::{Cell, ColumnType};
use tokio_postgres::Row as PgRow;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

/// The PostgreSQL type of a column.
pub(crate) fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "text",
        ColumnType::Integer => "bigint",
        ColumnType::Float => "double precision",
        ColumnType::Boolean => "boolean",
        ColumnType::Timestamp => "timestamptz",
        ColumnType::Date => "date",
        ColumnType::Json => "jsonb",
    }
}

/// The wire type of a column (for binary `COPY`).
pub(crate) fn wire_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Text => Type::TEXT,
        ColumnType::Integer => Type::INT8,
        ColumnType::Float => Type::FLOAT8,
        ColumnType::Boolean => Type::BOOL,
        ColumnType::Timestamp => Type::TIMESTAMPTZ,
        ColumnType::Date => Type::DATE,
        ColumnType::Json => Type::JSONB,
    }
}

/// A value already converted to its column's type, ready for the wire.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PgValue<'a> {
    /// NULL.
    Null,
    /// `text`.
    Text(Cow<'a, str>),
    /// `bigint`.
    Int(i64),
    /// `double precision`.
    Float(f64),
    /// `boolean`.
    Bool(bool),
    /// `timestamptz`.
    Timestamp(DateTime<Utc>),
    /// `date`.
    Date(NaiveDate),
    /// `jsonb` (or `json`), as valid JSON text without `\u0000`.
    Json(Cow<'a, str>),
}

impl PgValue<'_> {
    /// Appends a type-tagged form of the value, for primary-key deduplication.
    pub(crate) fn key_part(&self, out: &mut String) {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = match self {
            PgValue::Null => write!(out, "n"),
            PgValue::Text(s) => write!(out, "s{}:{s}", s.len()),
            PgValue::Int(i) => write!(out, "i{i}"),
            PgValue::Float(f) => write!(out, "f{}", f.to_bits()),
            PgValue::Bool(b) => write!(out, "b{b}"),
            PgValue::Timestamp(t) => write!(out, "t{}", t.timestamp_micros()),
            PgValue::Date(d) => write!(out, "d{d}"),
            PgValue::Json(s) => write!(out, "j{}:{s}", s.len()),
        };
        out.push('\u{1f}');
    }
}

impl ToSql for PgValue<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            PgValue::Null => Ok(IsNull::Yes),
            PgValue::Text(s) => s.as_ref().to_sql(ty, out),
            PgValue::Int(i) => i.to_sql(ty, out),
            PgValue::Float(f) => f.to_sql(ty, out),
            PgValue::Bool(b) => b.to_sql(ty, out),
            PgValue::Timestamp(t) => t.to_sql(ty, out),
            PgValue::Date(d) => d.to_sql(ty, out),
            PgValue::Json(s) => {
                if *ty == Type::JSONB {
                    out.put_u8(1);
                }
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Values are converted to their column's type before they are bound.
        true
    }

    to_sql_checked!();
}

/// Text without NUL characters (PostgreSQL refuses them): each becomes U+FFFD.
pub(crate) fn clean_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn clean_json_value(v: &mut J) {
    match v {
        J::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
        J::Array(items) => items.iter_mut().for_each(clean_json_value),
        J::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    clean_json_value(&mut v);
                    map.insert(k.replace('\0', "\u{fffd}"), v);
                }
            } else {
                map.values_mut().for_each(clean_json_value);
            }
        }
        _ => {}
    }
}

/// A JSON value as text `jsonb` accepts.
pub(crate) fn json_text(v: &J) -> String {
    let text = v.to_string();
    if text.contains("\\u0000") {
        let mut v = v.clone();
        clean_json_value(&mut v);
        v.to_string()
    } else {
        text
    }
}

/// JSON text as `jsonb` accepts it: checked, and re-serialised without `\u0000` when needed.
///
/// # Errors
/// When the text is not JSON.
pub(crate) fn raw_json(raw: &str) -> Result<Cow<'_, str>, String> {
    if raw.contains("\\u") {
        // Escapes may hide NUL or lone surrogates: parse fully (serde_json refuses the latter).
        let mut v: J =
            serde_json::from_str(raw).map_err(|e| format!("`_raw` is not valid JSON: {e}"))?;
        if raw.contains("\\u0000") {
            clean_json_value(&mut v);
            return Ok(Cow::Owned(v.to_string()));
        }
        Ok(Cow::Borrowed(raw))
    } else {
        serde_json::from_str::<serde::de::IgnoredAny>(raw)
            .map_err(|e| format!("`_raw` is not valid JSON: {e}"))?;
        Ok(Cow::Borrowed(raw))
    }
}

fn cell_kind(cell: &Cell) -> &'static str {
    match cell {
        Cell::Null => "null",
        Cell::Text(_) => "text",
        Cell::Integer(_) => "integer",
        Cell::Float(_) => "float",
        Cell::Boolean(_) => "boolean",
        Cell::Timestamp(_) => "timestamp",
        Cell::Date(_) => "date",
        Cell::Json(_) => "JSON",
    }
}

/// A cell as a value of the column's type. The engine has already converted every cell to its
/// column's type (`talkhouse_model::coerce`), so only exact pairs are mapped.
///
/// # Errors
/// When the cell is not of the column's type (a row that did not come through the engine).
pub(crate) fn to_pg(cell: &Cell, ty: ColumnType) -> Result<PgValue<'_>, String> {
    use ColumnType as T;
    Ok(match (cell, ty) {
        (Cell::Null, _) => PgValue::Null,
        (Cell::Text(s), T::Text) => PgValue::Text(clean_text(s)),
        (Cell::Json(v), T::Json) => PgValue::Json(Cow::Owned(json_text(v))),
        (Cell::Integer(i), T::Integer) => PgValue::Int(*i),
        (Cell::Float(f), T::Float) => PgValue::Float(*f),
        (Cell::Boolean(b), T::Boolean) => PgValue::Bool(*b),
        (Cell::Timestamp(t), T::Timestamp) => PgValue::Timestamp(*t),
        (Cell::Date(d), T::Date) => PgValue::Date(*d),
        _ => {
            return Err(format!(
                "a {} value cannot be stored in a {} column",
                cell_kind(cell),
                sql_type(ty)
            ));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Query answers as JSON.

/// `numeric` in binary form, read as JSON: an integer when whole and within 64 bits, else a float.
struct Numeric(J);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        numeric_json(raw)
            .map(Numeric)
            .ok_or_else(|| "malformed numeric".into())
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// Decodes PostgreSQL's binary `numeric` (base-10000 digits) into JSON.
pub(crate) fn numeric_json(raw: &[u8]) -> Option<J> {
    let word = |i: usize| -> Option<i32> {
        let b = raw.get(i * 2..i * 2 + 2)?;
        Some(i32::from(i16::from_be_bytes([b[0], b[1]])))
    };
    let ndigits = usize::try_from(word(0)?).ok()?;
    let weight = word(1)?;
    let sign = u16::from_be_bytes([*raw.get(4)?, *raw.get(5)?]);
    let dscale = usize::from(u16::from_be_bytes([*raw.get(6)?, *raw.get(7)?]));
    if sign != 0 && sign != 0x4000 {
        return Some(J::Null); // NaN, ±Infinity
    }
    let digit = |exp: i32| -> Option<i32> {
        let idx = weight - exp;
        if idx < 0 || usize::try_from(idx).ok()? >= ndigits {
            return Some(0);
        }
        word(4 + usize::try_from(idx).ok()?)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for exp in (0..=weight).rev() {
            let d = digit(exp)?;
            if exp == weight {
                text.push_str(&d.to_string())
            } else {
                text.push_str(&format!("{d:04}"))
            }
        }
    }
    if dscale > 0 {
        let groups = i32::try_from(dscale.div_ceil(4)).ok()?;
        let mut frac = String::new();
        for k in 1..=groups {
            frac.push_str(&format!("{:04}", digit(-k)?));
        }
        frac.truncate(dscale);
        text.push('.');
        text.push_str(&frac);
        return text.parse::<f64>().ok().map(J::from);
    }
    match text.parse::<i64>() {
        Ok(i) => Some(J::from(i)),
        Err(_) => text.parse::<f64>().ok().map(J::from),
    }
}

/// Any value whose binary form is UTF-8 text (enums, `name`, `citext`, …).
struct AnyText(String);

impl<'a> FromSql<'a> for AnyText {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(AnyText(String::from_utf8_lossy(raw).into_owned()))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// A `uuid` in its usual text form.
struct Uuid(String);

impl<'a> FromSql<'a> for Uuid {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        if raw.len() != 16 {
            return Err("malformed uuid".into());
        }
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Uuid(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

fn ts_json(t: DateTime<Utc>) -> J {
    J::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

fn get<'a, T: FromSql<'a>>(row: &'a PgRow, i: usize) -> Result<Option<T>, String> {
    row.try_get::<_, Option<T>>(i).map_err(|e| e.to_string())
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> J) -> J {
    v.map_or(J::Null, f)
}

fn array<'a, T: FromSql<'a>>(row: &'a PgRow, i: usize, f: impl Fn(T) -> J) -> Result<J, String> {
    Ok(opt(get::<Vec<Option<T>>>(row, i)?, |items| {
        J::Array(items.into_iter().map(|v| opt(v, &f)).collect())
    }))
}

/// Column `i` of a query answer as JSON.
///
/// # Errors
/// For a type talkhouse does not read (the message suggests a cast to text).
pub(crate) fn column_json(row: &PgRow, i: usize) -> Result<J, String> {
    let ty = row.columns()[i].type_();
    let v = match *ty {
        Type::BOOL => opt(get::<bool>(row, i)?, J::Bool),
        Type::INT2 => opt(get::<i16>(row, i)?, J::from),
        Type::INT4 => opt(get::<i32>(row, i)?, J::from),
        Type::INT8 => opt(get::<i64>(row, i)?, J::from),
        Type::OID => opt(get::<u32>(row, i)?, J::from),
        Type::FLOAT4 => opt(get::<f32>(row, i)?, |f| J::from(f64::from(f))),
        Type::FLOAT8 => opt(get::<f64>(row, i)?, J::from),
        Type::NUMERIC => opt(get::<Numeric>(row, i)?, |n| n.0),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            opt(get::<String>(row, i)?, J::String)
        }
        Type::TIMESTAMPTZ => opt(get::<DateTime<Utc>>(row, i)?, ts_json),
        Type::TIMESTAMP => opt(get::<NaiveDateTime>(row, i)?, |t| ts_json(t.and_utc())),
        Type::DATE => opt(get::<NaiveDate>(row, i)?, |d| J::String(d.to_string())),
        Type::TIME => opt(get::<NaiveTime>(row, i)?, |t| J::String(t.to_string())),
        Type::JSON | Type::JSONB => get::<J>(row, i)?.unwrap_or(J::Null),
        Type::UUID => opt(get::<Uuid>(row, i)?, |u| J::String(u.0)),
        Type::BOOL_ARRAY => array::<bool>(row, i, J::Bool)?,
        Type::INT2_ARRAY => array::<i16>(row, i, J::from)?,
        Type::INT4_ARRAY => array::<i32>(row, i, J::from)?,
        Type::INT8_ARRAY => array::<i64>(row, i, J::from)?,
        Type::FLOAT8_ARRAY => array::<f64>(row, i, J::from)?,
        Type::NUMERIC_ARRAY => array::<Numeric>(row, i, |n| n.0)?,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => array::<String>(row, i, J::String)?,
        Type::TIMESTAMPTZ_ARRAY => array::<DateTime<Utc>>(row, i, ts_json)?,
        Type::JSONB_ARRAY | Type::JSON_ARRAY => array::<J>(row, i, |v| v)?,
        _ if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" => {
            opt(get::<AnyText>(row, i)?, |t| J::String(t.0))
        }
        _ => {
            return Err(format!(
                "column `{}` has type {}, which talkhouse does not read; cast it (`::text`)",
                row.columns()[i].name(),
                ty.name()
            ));
        }
    };
    Ok(v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(ndigits.to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numerics() {
        // 12345678 = [1234, 5678], weight 1
        assert_eq!(
            numeric_json(&numeric(2, 1, 0, 0, &[1234, 5678])),
            Some(J::from(12_345_678))
        );
        // -0.05 = [500] weight -1 dscale 2
        assert_eq!(
            numeric_json(&numeric(1, -1, 0x4000, 2, &[500])),
            Some(J::from(-0.05))
        );
        // 10000 = [1] weight 1
        assert_eq!(
            numeric_json(&numeric(1, 1, 0, 0, &[1])),
            Some(J::from(10_000))
        );
        // 0
        assert_eq!(numeric_json(&numeric(0, 0, 0, 0, &[])), Some(J::from(0)));
        // 1.23456 = [1, 2345, 6000] weight 0 dscale 5
        assert_eq!(
            numeric_json(&numeric(3, 0, 0, 5, &[1, 2345, 6000])),
            Some(J::from(1.23456))
        );
        // NaN
        assert_eq!(numeric_json(&numeric(0, 0, 0xC000, 0, &[])), Some(J::Null));
    }

    #[test]
    fn exact_pairs_only() {
        assert_eq!(
            to_pg(&Cell::Integer(5), ColumnType::Integer),
            Ok(PgValue::Int(5))
        );
        // The engine converts; a mismatch reaching the destination is refused, not guessed.
        assert!(to_pg(&Cell::Integer(5), ColumnType::Text).is_err());
        assert!(to_pg(&Cell::Text("7".into()), ColumnType::Integer).is_err());
        assert_eq!(
            to_pg(&Cell::Text("a\0b".into()), ColumnType::Text),
            Ok(PgValue::Text("a\u{fffd}b".into()))
        );
        assert_eq!(
            to_pg(
                &Cell::Json(serde_json::json!({"k": "a\u{0}"})),
                ColumnType::Json
            ),
            Ok(PgValue::Json(r#"{"k":"a�"}"#.into()))
        );
    }

    #[test]
    fn raw_json_checks() {
        assert!(raw_json("{\"a\":1}").is_ok());
        assert!(raw_json("{\"a\":").is_err());
        assert_eq!(
            raw_json("{\"a\":\"x\\u0000\"}").unwrap(),
            "{\"a\":\"x\u{fffd}\"}"
        );
        assert!(raw_json("{\"a\":\"\\ud800\"}").is_err());
    }
}
