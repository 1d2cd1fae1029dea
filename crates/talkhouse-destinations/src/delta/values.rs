//! Cells to Arrow columns (for writes) and Arrow columns to JSON (for `query`).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::{
    DataType as ArrowType, Date32Type, Date64Type, Field, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use deltalake::kernel::{DataType, PrimitiveType, StructField};
use serde_json::Value as J;
use talkhouse_model::{Cell, ColumnType, DestinationError, TableSpec};

/// The partition column added to tables with a [`TableSpec::day_column`].
pub(crate) const DAY: &str = "_day";

/// The time zone of every timestamp column (Delta's `timestamp` is an instant in UTC).
const UTC: &str = "UTC";

fn delta_type(ty: ColumnType) -> DataType {
    DataType::Primitive(match ty {
        ColumnType::Text | ColumnType::Json => PrimitiveType::String,
        ColumnType::Integer => PrimitiveType::Long,
        ColumnType::Float => PrimitiveType::Double,
        ColumnType::Boolean => PrimitiveType::Boolean,
        ColumnType::Timestamp => PrimitiveType::Timestamp,
        ColumnType::Date => PrimitiveType::Date,
    })
}

fn arrow_type(ty: ColumnType) -> ArrowType {
    match ty {
        ColumnType::Text | ColumnType::Json => ArrowType::Utf8,
        ColumnType::Integer => ArrowType::Int64,
        ColumnType::Float => ArrowType::Float64,
        ColumnType::Boolean => ArrowType::Boolean,
        ColumnType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        ColumnType::Date => ArrowType::Date32,
    }
}

/// A table's columns: the spec's, then the bookkeeping ones, then `_day` where partitioned.
pub(crate) fn columns(spec: &TableSpec) -> Vec<(String, ColumnType)> {
    let mut cols: Vec<(String, ColumnType)> = spec
        .columns
        .iter()
        .map(|c| (c.name.to_owned(), c.ty))
        .collect();
    cols.extend([
        ("_raw".to_owned(), ColumnType::Json),
        ("_synced_at".to_owned(), ColumnType::Timestamp),
        ("_load_id".to_owned(), ColumnType::Text),
        ("_deleted_at".to_owned(), ColumnType::Timestamp),
    ]);
    if spec.day_column.is_some() {
        cols.push((DAY.to_owned(), ColumnType::Date));
    }
    cols
}

/// Delta schema fields for `columns`.
pub(crate) fn fields(columns: &[(String, ColumnType)]) -> Vec<StructField> {
    columns
        .iter()
        .map(|(name, ty)| StructField::new(name.clone(), delta_type(*ty), true))
        .collect()
}

/// Builds one Arrow column from cells. The engine has already converted every cell to its
/// column's type (`talkhouse_model::coerce`), so only exact pairs are mapped (and a timestamp to
/// its day, for `_day`); anything else is NULL.
pub(crate) fn column<'a>(
    ty: ColumnType,
    cells: impl Iterator<Item = Option<&'a Cell>>,
) -> ArrayRef {
    match ty {
        ColumnType::Text | ColumnType::Json => {
            let mut b = StringBuilder::new();
            for c in cells {
                b.append_option(c.and_then(|c| c.column_text(ty)));
            }
            Arc::new(b.finish())
        }
        ColumnType::Integer => {
            let mut b = Int64Builder::new();
            for c in cells {
                b.append_option(c.and_then(|c| match c {
                    Cell::Integer(i) => Some(*i),
                    _ => None,
                }));
            }
            Arc::new(b.finish())
        }
        ColumnType::Float => {
            let mut b = Float64Builder::new();
            for c in cells {
                b.append_option(c.and_then(|c| match c {
                    Cell::Float(f) => Some(*f),
                    _ => None,
                }));
            }
            Arc::new(b.finish())
        }
        ColumnType::Boolean => {
            let mut b = BooleanBuilder::new();
            for c in cells {
                b.append_option(c.and_then(|c| match c {
                    Cell::Boolean(v) => Some(*v),
                    _ => None,
                }));
            }
            Arc::new(b.finish())
        }
        ColumnType::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::new().with_timezone(UTC);
            for c in cells {
                b.append_option(c.and_then(|c| match c {
                    Cell::Timestamp(t) => Some(t.timestamp_micros()),
                    _ => None,
                }));
            }
            Arc::new(b.finish())
        }
        ColumnType::Date => {
            let mut b = Date32Builder::new();
            for c in cells {
                b.append_option(c.and_then(|c| match c {
                    Cell::Date(d) => Some(days(*d)),
                    // The `_day` partition column, built from the table's day column.
                    Cell::Timestamp(t) => Some(days(t.date_naive())),
                    _ => None,
                }));
            }
            Arc::new(b.finish())
        }
    }
}

fn days(d: NaiveDate) -> i32 {
    let n = d.signed_duration_since(NaiveDate::default()).num_days();
    i32::try_from(n).unwrap_or(0)
}

/// The Arrow schema of `columns`.
pub(crate) fn arrow_schema(columns: &[(String, ColumnType)]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, ty)| Field::new(name, arrow_type(*ty), true))
            .collect::<Vec<_>>(),
    ))
}

/// A record batch from per-column arrays, in `columns` order.
pub(crate) fn batch(
    columns: &[(String, ColumnType)],
    arrays: Vec<ArrayRef>,
) -> Result<RecordBatch, DestinationError> {
    RecordBatch::try_new(arrow_schema(columns), arrays)
        .map_err(|e| DestinationError::query("building a Delta batch", e))
}

fn ts_json(micros: i64) -> J {
    DateTime::<Utc>::from_timestamp_micros(micros).map_or(J::Null, |t| {
        J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    })
}

fn float_json(f: f64) -> J {
    serde_json::Number::from_f64(f).map_or(J::Null, J::Number)
}

/// The value at `row` of an Arrow column, as `Destination::query` answers it: numbers as
/// numbers, text as strings, timestamps as RFC 3339 in UTC, dates as `YYYY-MM-DD`.
pub(crate) fn json_at(array: &dyn Array, row: usize) -> J {
    if array.is_null(row) {
        return J::Null;
    }
    match array.data_type() {
        ArrowType::Boolean => J::Bool(array.as_boolean().value(row)),
        ArrowType::Int8 => J::from(array.as_primitive::<Int8Type>().value(row)),
        ArrowType::Int16 => J::from(array.as_primitive::<Int16Type>().value(row)),
        ArrowType::Int32 => J::from(array.as_primitive::<Int32Type>().value(row)),
        ArrowType::Int64 => J::from(array.as_primitive::<Int64Type>().value(row)),
        ArrowType::UInt8 => J::from(array.as_primitive::<UInt8Type>().value(row)),
        ArrowType::UInt16 => J::from(array.as_primitive::<UInt16Type>().value(row)),
        ArrowType::UInt32 => J::from(array.as_primitive::<UInt32Type>().value(row)),
        ArrowType::UInt64 => J::from(array.as_primitive::<UInt64Type>().value(row)),
        ArrowType::Float32 => float_json(f64::from(array.as_primitive::<Float32Type>().value(row))),
        ArrowType::Float64 => float_json(array.as_primitive::<Float64Type>().value(row)),
        ArrowType::Utf8 => J::String(array.as_string::<i32>().value(row).to_owned()),
        ArrowType::LargeUtf8 => J::String(array.as_string::<i64>().value(row).to_owned()),
        ArrowType::Utf8View => J::String(array.as_string_view().value(row).to_owned()),
        ArrowType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => {
                    array.as_primitive::<TimestampNanosecondType>().value(row) / 1_000
                }
            };
            ts_json(v)
        }
        ArrowType::Date32 => {
            let d = array.as_primitive::<Date32Type>().value(row);
            NaiveDate::default()
                .checked_add_signed(chrono::Duration::days(i64::from(d)))
                .map_or(J::Null, |d| J::String(d.to_string()))
        }
        ArrowType::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(row);
            DateTime::<Utc>::from_timestamp_millis(ms)
                .map_or(J::Null, |t| J::String(t.date_naive().to_string()))
        }
        ArrowType::Decimal128(_, _) | ArrowType::Decimal256(_, _) => {
            let text = deltalake::arrow::util::display::array_value_to_string(array, row)
                .unwrap_or_default();
            text.parse::<f64>().map_or(J::String(text), float_json)
        }
        ArrowType::Dictionary(_, _) => {
            match deltalake::arrow::compute::cast(&array.slice(row, 1), &ArrowType::Utf8) {
                Ok(a) => json_at(a.as_ref(), 0),
                Err(_) => J::Null,
            }
        }
        _ => deltalake::arrow::util::display::array_value_to_string(array, row)
            .map_or(J::Null, J::String),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_become_typed_columns_and_come_back_as_json() {
        let t = DateTime::parse_from_rfc3339("2026-11-05T10:00:00.5Z")
            .map(|t| t.with_timezone(&Utc))
            .ok();
        let cells = [
            Cell::Timestamp(t.unwrap_or_default()),
            Cell::Null,
            Cell::Text("x".into()),
        ];
        let a = column(ColumnType::Timestamp, cells.iter().map(Some));
        assert_eq!(json_at(a.as_ref(), 0), J::from("2026-11-05T10:00:00.500Z"));
        assert_eq!(json_at(a.as_ref(), 1), J::Null);
        assert_eq!(json_at(a.as_ref(), 2), J::Null, "text is no instant");
        let a = column(
            ColumnType::Json,
            [
                Cell::Text("plain".into()),
                Cell::Json(serde_json::json!({"a": 1})),
            ]
            .iter()
            .map(Some),
        );
        assert_eq!(json_at(a.as_ref(), 0), J::from("\"plain\""));
        assert_eq!(json_at(a.as_ref(), 1), J::from("{\"a\":1}"));
        // The engine converts cells before they get here; a mismatch is NULL, never a guess.
        let a = column(
            ColumnType::Integer,
            [Cell::Text(" 42 ".into()), Cell::Integer(7)]
                .iter()
                .map(Some),
        );
        assert_eq!(json_at(a.as_ref(), 0), J::Null);
        assert_eq!(json_at(a.as_ref(), 1), J::from(7));
    }
}
