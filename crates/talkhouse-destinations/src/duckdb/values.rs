//! Conversions between talkhouse cells, DuckDB values and JSON.

use duckdb::types::{TimeUnit, Value, ValueRef};
use talkhouse_model::{Cell, ColumnType};

/// The DuckDB type of a column.
pub(crate) fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "VARCHAR",
        ColumnType::Integer => "BIGINT",
        ColumnType::Float => "DOUBLE",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Timestamp => "TIMESTAMP",
        ColumnType::Date => "DATE",
        ColumnType::Json => "JSON",
    }
}

/// The type of a column in a staging table: JSON arrives as text (Arrow has no JSON type) and
/// becomes JSON when merged into the table.
pub(crate) fn stage_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Json => "VARCHAR",
        other => sql_type(other),
    }
}

/// A cell as a DuckDB value of the column's type (a mismatched cell is converted, not refused:
/// a number in a text column becomes its text).
pub(crate) fn to_value(cell: &Cell, ty: ColumnType) -> Value {
    match (cell, ty) {
        (Cell::Null, _) => Value::Null,
        (Cell::Json(v), _) => Value::Text(v.to_string()),
        (Cell::Text(s), ColumnType::Json) => {
            Value::Text(serde_json::Value::String(s.clone()).to_string())
        }
        (Cell::Text(s), _) => Value::Text(s.clone()),
        (Cell::Integer(i), ColumnType::Float) => {
            // Integers that large are not exact in a float column anyway.
            #[allow(clippy::cast_precision_loss)]
            let f = *i as f64;
            Value::Double(f)
        }
        (Cell::Integer(i), ColumnType::Text) => Value::Text(i.to_string()),
        (Cell::Integer(i), _) => Value::BigInt(*i),
        (Cell::Float(f), ColumnType::Text) => Value::Text(f.to_string()),
        (Cell::Float(f), _) => Value::Double(*f),
        (Cell::Boolean(b), ColumnType::Text) => Value::Text(b.to_string()),
        (Cell::Boolean(b), _) => Value::Boolean(*b),
        (Cell::Timestamp(t), ColumnType::Text) => Value::Text(t.to_rfc3339()),
        (Cell::Timestamp(t), _) => Value::Timestamp(TimeUnit::Microsecond, t.timestamp_micros()),
        (Cell::Date(d), ColumnType::Text) => Value::Text(d.to_string()),
        (Cell::Date(d), _) => {
            let days = d
                .signed_duration_since(chrono::NaiveDate::default())
                .num_days();
            Value::Date32(i32::try_from(days).unwrap_or(0))
        }
    }
}

fn micros_of(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1_000,
    }
}

/// A query result value as JSON.
pub(crate) fn to_json(v: ValueRef<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        ValueRef::Null => J::Null,
        ValueRef::Boolean(b) => J::Bool(b),
        ValueRef::TinyInt(i) => J::from(i),
        ValueRef::SmallInt(i) => J::from(i),
        ValueRef::Int(i) => J::from(i),
        ValueRef::BigInt(i) => J::from(i),
        ValueRef::HugeInt(i) => i64::try_from(i).map_or_else(|_| J::String(i.to_string()), J::from),
        ValueRef::UHugeInt(i) => {
            u64::try_from(i).map_or_else(|_| J::String(i.to_string()), J::from)
        }
        ValueRef::UTinyInt(i) => J::from(i),
        ValueRef::USmallInt(i) => J::from(i),
        ValueRef::UInt(i) => J::from(i),
        ValueRef::UBigInt(i) => J::from(i),
        ValueRef::Float(f) => J::from(f64::from(f)),
        ValueRef::Double(f) => J::from(f),
        ValueRef::Decimal(d) => d.to_string().parse::<f64>().map_or(J::Null, J::from),
        ValueRef::Timestamp(unit, v) => chrono::DateTime::from_timestamp_micros(micros_of(unit, v))
            .map_or(J::Null, |t| {
                J::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }),
        ValueRef::Date32(days) => chrono::NaiveDate::default()
            .checked_add_signed(chrono::Duration::days(i64::from(days)))
            .map_or(J::Null, |d| J::String(d.to_string())),
        ValueRef::Text(bytes) => J::String(String::from_utf8_lossy(bytes).into_owned()),
        other => J::String(format!("{other:?}")),
    }
}
