//! What a stream yields.

use crate::{Cell, TableRef};

/// One row of one table: named typed cells plus the vendor's whole record.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The table the row belongs to.
    pub table: TableRef,
    /// Column values by name; columns the row does not set are NULL.
    pub cells: Vec<(&'static str, Cell)>,
    /// The vendor's record as JSON text, stored in `_raw`. `None` for derived rows (the model
    /// tables), whose destinations serialise the cells instead.
    pub raw: Option<String>,
}

impl Row {
    /// An empty row of `table`.
    pub fn new(table: TableRef) -> Self {
        Self {
            table,
            cells: Vec::new(),
            raw: None,
        }
    }

    /// Sets a column (builder style).
    #[must_use]
    pub fn set(mut self, column: &'static str, value: impl Into<Cell>) -> Self {
        self.put(column, value);
        self
    }

    /// Sets a column, replacing an earlier value of it. A NULL for a column the row does not
    /// hold yet is not stored: an unset column is NULL already, and most vendor records leave
    /// most columns empty.
    pub fn put(&mut self, column: &'static str, value: impl Into<Cell>) {
        let value = value.into();
        if let Some(slot) = self.cells.iter_mut().find(|(c, _)| *c == column) {
            slot.1 = value;
        } else if !value.is_null() {
            self.cells.push((column, value));
        }
    }

    /// Sets `_raw` (builder style).
    #[must_use]
    pub fn with_raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = Some(raw.into());
        self
    }

    /// The value of a column, if set.
    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| v)
    }

    /// The row's non-NULL cells as one JSON object: what stands in for `_raw` in rows that have
    /// no vendor record (the model tables).
    pub fn cells_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .cells
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| ((*k).to_owned(), v.to_json()))
            .collect();
        serde_json::Value::Object(map)
    }

    /// The memory the row holds, in bytes (close to, not exactly, what the allocator gives
    /// it), for batch caps.
    pub fn approx_bytes(&self) -> usize {
        let heap: usize = self
            .cells
            .iter()
            .map(|(_, c)| match c {
                Cell::Text(s) => s.capacity(),
                Cell::Json(v) => json_heap_bytes(v),
                _ => 0,
            })
            .sum();
        std::mem::size_of::<Self>()
            + self.cells.capacity() * std::mem::size_of::<(&str, Cell)>()
            + heap
            + self.raw.as_ref().map_or(0, String::capacity)
    }
}

/// Heap bytes held by a JSON value (its nodes, strings and map entries).
fn json_heap_bytes(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    const NODE: usize = std::mem::size_of::<Value>();
    match v {
        Value::String(s) => s.capacity(),
        Value::Array(a) => a.capacity() * NODE + a.iter().map(json_heap_bytes).sum::<usize>(),
        // A map entry: its key, its value, and the tree's bookkeeping (about two words).
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| k.capacity() + NODE + 16 + json_heap_bytes(v))
            .sum(),
        _ => 0,
    }
}

/// A record that could not be parsed: it goes to `talkhouse.quarantine`, the sync goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    /// Where it came from: `file:line` or a URL.
    pub location: String,
    /// Why it was rejected.
    pub error: String,
    /// The record as received (text), possibly truncated by the destination.
    pub payload: String,
}

/// What to do with the rows of a record the vendor says is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EraseMode {
    /// Keep the rows with `_deleted_at` set and personal columns (and `_raw`) nulled.
    #[default]
    Redact,
    /// Remove the rows.
    Delete,
    /// Only set `_deleted_at`.
    Keep,
}

/// Erase every row of `table` whose `column` equals `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Erasure {
    /// The table.
    pub table: TableRef,
    /// The identifying column (`customer_id`, `conversation_id`, …).
    pub column: &'static str,
    /// The identifying value.
    pub value: Cell,
    /// Redact, delete or keep. Model tables (`talkhouse.*`) always drop erased rows.
    pub mode: EraseMode,
}

/// One item of a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// One vendor record with its child rows (and derived model rows). A group is never split
    /// across transactions.
    Records(Vec<Row>),
    /// A record that could not be parsed.
    Quarantine(Quarantined),
    /// The vendor says a record is gone.
    Erase(Erasure),
    /// Everything yielded so far is covered: persist this cursor with it.
    Checkpoint(serde_json::Value),
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TableRef = TableRef::source("t");

    #[test]
    fn a_null_for_an_unset_column_is_not_stored_but_clears_a_set_one() {
        let mut row = Row::new(T).set("a", "x").set("b", Cell::Null);
        assert_eq!(row.cells.len(), 1, "an unset column is NULL already");
        assert_eq!(row.get("b"), None);
        row.put("a", Cell::Null);
        assert_eq!(
            row.get("a"),
            Some(&Cell::Null),
            "a set column can be cleared"
        );
        assert_eq!(
            Row::new(T).set("a", "x").set("b", Cell::Null),
            Row::new(T).set("a", "x")
        );
    }

    #[test]
    fn approx_bytes_counts_what_the_row_holds() {
        let small = Row::new(T).set("a", "x");
        let text = Row::new(T).set("a", "x".repeat(10_000));
        let json = Row::new(T).set(
            "a",
            Cell::Json(serde_json::json!({"list": ["y".repeat(10_000), "z"]})),
        );
        let raw = Row::new(T).set("a", "x").with_raw("r".repeat(10_000));
        for (name, row) in [("text", &text), ("json", &json), ("raw", &raw)] {
            let extra = row.approx_bytes() - small.approx_bytes();
            assert!(
                (9_999..12_000).contains(&extra),
                "{name}: {extra} bytes over a one-letter row"
            );
        }
        assert!(small.approx_bytes() >= std::mem::size_of::<Row>());
    }
}
