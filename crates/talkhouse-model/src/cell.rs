//! Typed values of a row.

use chrono::{DateTime, NaiveDate, Utc};

/// One typed value. Sources parse vendor strings into cells, so destinations never re-parse.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Text.
    Text(String),
    /// 64-bit integer.
    Integer(i64),
    /// 64-bit float.
    Float(f64),
    /// Boolean.
    Boolean(bool),
    /// An instant in UTC.
    Timestamp(DateTime<Utc>),
    /// A calendar date.
    Date(NaiveDate),
    /// A JSON document.
    Json(serde_json::Value),
}

impl Cell {
    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Cell::Null)
    }

    /// The text a text or JSON column of type `ty` stores for this cell (JSON text in a JSON
    /// column, so a plain string becomes a quoted JSON string); `None` for NULL.
    pub fn column_text(&self, ty: crate::ColumnType) -> Option<String> {
        Some(match self {
            Cell::Null => return None,
            Cell::Json(v) => v.to_string(),
            Cell::Text(s) if ty == crate::ColumnType::Json => {
                serde_json::Value::String(s.clone()).to_string()
            }
            Cell::Text(s) => s.clone(),
            Cell::Integer(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Boolean(b) => b.to_string(),
            Cell::Timestamp(t) => t.to_rfc3339(),
            Cell::Date(d) => d.to_string(),
        })
    }

    /// The value as JSON, for `_raw`-less rows and for destinations without a native type.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Cell::Null => Value::Null,
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Integer(i) => Value::from(*i),
            Cell::Float(f) => Value::from(*f),
            Cell::Boolean(b) => Value::Bool(*b),
            Cell::Timestamp(t) => {
                Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
            Cell::Date(d) => Value::String(d.to_string()),
            Cell::Json(v) => v.clone(),
        }
    }

    /// Text content, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_owned())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Integer(v)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Float(v)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Boolean(v)
    }
}
impl From<DateTime<Utc>> for Cell {
    fn from(v: DateTime<Utc>) -> Self {
        Cell::Timestamp(v)
    }
}
impl From<NaiveDate> for Cell {
    fn from(v: NaiveDate) -> Self {
        Cell::Date(v)
    }
}
impl From<serde_json::Value> for Cell {
    fn from(v: serde_json::Value) -> Self {
        if v.is_null() {
            Cell::Null
        } else {
            Cell::Json(v)
        }
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}
