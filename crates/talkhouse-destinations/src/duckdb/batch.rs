//! A batch of rows as one Arrow record batch, column by column, for DuckDB's Appender.
//!
//! Appending Arrow hands DuckDB whole vectors instead of one C call per value, and text cells are
//! copied once, straight from the row. The batch holds one version per primary key, the last to
//! arrive, so the merge needs no deduplicating pass in SQL.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BooleanArray, BooleanBuilder, Date32Builder, Float64Builder, Int64Array,
    Int64Builder, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;
use talkhouse_model::{Cell, ColumnType, Row, TableSpec};

/// One column being built.
enum Builder {
    Text(StringBuilder),
    Integer(Int64Builder),
    Float(Float64Builder),
    Boolean(BooleanBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

impl Builder {
    fn new(ty: ColumnType, rows: usize) -> Self {
        match ty {
            ColumnType::Text | ColumnType::Json => {
                Self::Text(StringBuilder::with_capacity(rows, rows * 16))
            }
            ColumnType::Integer => Self::Integer(Int64Builder::with_capacity(rows)),
            ColumnType::Float => Self::Float(Float64Builder::with_capacity(rows)),
            ColumnType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Timestamp => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows))
            }
            ColumnType::Date => Self::Date(Date32Builder::with_capacity(rows)),
        }
    }

    /// Appends a cell. The engine has already converted every cell to its column's type
    /// (`talkhouse_model::coerce`), so only exact pairs are mapped; anything else is NULL.
    fn push(&mut self, cell: Option<&Cell>, ty: ColumnType) {
        let cell = cell.unwrap_or(&Cell::Null);
        match (self, cell) {
            // Borrowed as it is: the common case, no copy.
            (Self::Text(b), Cell::Text(s)) if ty == ColumnType::Text => b.append_value(s),
            (Self::Text(b), _) => b.append_option(cell.column_text(ty)),
            (Self::Integer(b), Cell::Integer(i)) => b.append_value(*i),
            (Self::Float(b), Cell::Float(f)) => b.append_value(*f),
            (Self::Boolean(b), Cell::Boolean(v)) => b.append_value(*v),
            (Self::Timestamp(b), Cell::Timestamp(t)) => b.append_value(t.timestamp_micros()),
            (Self::Date(b), Cell::Date(d)) => {
                let days = d.signed_duration_since(chrono::NaiveDate::default());
                b.append_option(i32::try_from(days.num_days()).ok());
            }
            (Self::Integer(b), _) => b.append_null(),
            (Self::Float(b), _) => b.append_null(),
            (Self::Boolean(b), _) => b.append_null(),
            (Self::Timestamp(b), _) => b.append_null(),
            (Self::Date(b), _) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::Text(mut b) => Arc::new(b.finish()),
            Self::Integer(mut b) => Arc::new(b.finish()),
            Self::Float(mut b) => Arc::new(b.finish()),
            Self::Boolean(mut b) => Arc::new(b.finish()),
            Self::Timestamp(mut b) => Arc::new(b.finish()),
            Self::Date(mut b) => Arc::new(b.finish()),
        }
    }
}

fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text | ColumnType::Json => DataType::Utf8,
        ColumnType::Integer => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Date => DataType::Date32,
    }
}

/// The last version of each primary key in `rows`, in arrival order (`rows` itself when no key
/// repeats, the common case).
///
/// Keys are compared as the text of their cells ([`write_key`]), hashed from one reused buffer:
/// no allocation per row.
pub(crate) fn last_versions<'r>(spec: &TableSpec, rows: &[&'r Row]) -> Vec<&'r Row> {
    let hasher = foldhash::fast::RandomState::default();
    let (mut key, mut other) = (String::new(), String::new());
    // Hash of a key → the index of its latest version so far.
    let mut latest: HashMap<u64, usize, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(rows.len(), foldhash::fast::RandomState::default());
    let mut superseded = vec![false; rows.len()];
    let mut any = false;
    for (i, row) in rows.iter().enumerate() {
        write_key(spec, row, &mut key);
        let slot = latest.entry(hasher.hash_one(key.as_str())).or_insert(i);
        if *slot != i {
            write_key(spec, rows[*slot], &mut other);
            if other != key {
                // Two keys share a 64-bit hash: settle it exactly, without hashes.
                return last_versions_exact(spec, rows);
            }
            superseded[*slot] = true;
            any = true;
            *slot = i;
        }
    }
    if !any {
        return rows.to_vec();
    }
    rows.iter()
        .zip(superseded)
        .filter_map(|(row, old)| (!old).then_some(*row))
        .collect()
}

/// [`last_versions`] by comparing whole keys, for the (astronomically rare) hash collision.
fn last_versions_exact<'r>(spec: &TableSpec, rows: &[&'r Row]) -> Vec<&'r Row> {
    let mut latest: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let mut key = String::new();
        write_key(spec, row, &mut key);
        latest.insert(key, i);
    }
    let mut keep = vec![false; rows.len()];
    for i in latest.into_values() {
        keep[i] = true;
    }
    rows.iter()
        .zip(keep)
        .filter_map(|(row, k)| k.then_some(*row))
        .collect()
}

/// Writes a row's primary key into `out` (cleared first): each cell as the text of the value it
/// lands as, so that an integer 7 and a text "7" in the same column are one key, and NULL as a
/// marker of its own (NULL keys group together, as in SQL's `GROUP BY`).
fn write_key(spec: &TableSpec, row: &Row, out: &mut String) {
    write_columns(&spec.primary_key, row, out);
}

/// The hash of each row's group key ([`TableSpec::group_key`]), written as [`write_key`] writes
/// a primary key.
pub(crate) fn group_key_hashes(spec: &TableSpec, rows: &[&Row]) -> Vec<u64> {
    let hasher = foldhash::fast::FixedState::with_seed(GROUP_KEY_SEED);
    let mut key = String::new();
    rows.iter()
        .map(|row| {
            write_columns(spec.group_key(), row, &mut key);
            hasher.hash_one(key.as_str())
        })
        .collect()
}

/// Any fixed seed: group-key hashes are kept across batches ([`super::fresh::NewKeys`]).
const GROUP_KEY_SEED: u64 = 0x7461_6c6b_686f_7573;

fn write_columns(columns: &[&str], row: &Row, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    for column in columns {
        // A separator no vendor id holds, then `N` for NULL or `V` and the value.
        out.push('\u{1f}');
        // Writing into a String cannot fail.
        let _ = match row.get(column).unwrap_or(&Cell::Null) {
            Cell::Null => out.write_char('N'),
            Cell::Text(s) => write!(out, "V{s}"),
            Cell::Integer(i) => write!(out, "V{i}"),
            Cell::Float(f) => write!(out, "V{f}"),
            Cell::Boolean(b) => write!(out, "V{b}"),
            Cell::Timestamp(t) => write!(out, "V{}", t.timestamp_micros()),
            Cell::Date(d) => write!(out, "V{d}"),
            Cell::Json(v) => write!(out, "V{v}"),
        };
    }
}

/// The staging table's columns after the spec's and `_raw`, with their DuckDB types: `_same`
/// (NULL, set by the merge), the batch's number in the session (`_seq`: a later batch's version
/// of a group replaces an earlier one's), the `_synced_at` and `_load_id` the merge writes to the
/// table (the batch's, or an earlier batch's that staged the same row), and `_first` (true: the
/// row is as the first batch that staged its group brought it, so a stored row identical to it
/// is kept as it is).
pub(crate) const STAGE_TAIL: [(&str, &str); 5] = [
    ("_same", "BOOLEAN"),
    ("_seq", "BIGINT"),
    ("_synced_at", "TIMESTAMP"),
    ("_load_id", "VARCHAR"),
    ("_first", "BOOLEAN"),
];

/// The columns after the spec's in a batch: what the batch is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tail<'a> {
    /// The staging table of the merge: `_raw`, then [`STAGE_TAIL`].
    Stage {
        /// The batch's number in the session.
        seq: i64,
        /// `_synced_at`, as microseconds since the epoch.
        synced_at_micros: i64,
        /// `_load_id`.
        load_id: &'a str,
    },
    /// The table itself, for rows whose keys it does not hold: `_raw`, `_synced_at`,
    /// `_load_id`, `_deleted_at` (NULL), in the table's column order.
    Table {
        /// `_synced_at`, as microseconds since the epoch.
        synced_at_micros: i64,
        /// `_load_id`.
        load_id: &'a str,
    },
}

/// The staging table's (or the table's, see [`Tail`]) columns for `rows`: the spec's columns,
/// then `_raw` (the vendor's record, or the cells as JSON for derived rows) and the tail. `rows`
/// must hold one version per key ([`last_versions`]).
pub(crate) fn stage_batch(
    spec: &TableSpec,
    rows: &[&Row],
    tail: Tail<'_>,
) -> Result<RecordBatch, ArrowError> {
    let mut fields: Vec<Field> = spec
        .columns
        .iter()
        .map(|c| Field::new(c.name, arrow_type(c.ty), true))
        .collect();
    let [raw_name, synced_at, load, deleted_at] = crate::sql::bookkeeping_columns();
    fields.push(Field::new(raw_name, DataType::Utf8, true));
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, None);
    match tail {
        Tail::Stage { .. } => {
            let [same, seq, synced_at, load, first] = STAGE_TAIL.map(|(name, _)| name);
            fields.extend([
                Field::new(same, DataType::Boolean, true),
                Field::new(seq, DataType::Int64, true),
                Field::new(synced_at, timestamp.clone(), true),
                Field::new(load, DataType::Utf8, true),
                Field::new(first, DataType::Boolean, true),
            ]);
        }
        Tail::Table { .. } => fields.extend([
            Field::new(synced_at, timestamp.clone(), true),
            Field::new(load, DataType::Utf8, true),
            Field::new(deleted_at, timestamp, true),
        ]),
    }

    let mut builders: Vec<Builder> = spec
        .columns
        .iter()
        .map(|c| Builder::new(c.ty, rows.len()))
        .collect();
    let raw_bytes: usize = rows
        .iter()
        .map(|r| r.raw.as_ref().map_or(64, String::len))
        .sum();
    let mut raw = StringBuilder::with_capacity(rows.len(), raw_bytes);
    let mut slots = Slots::new(spec);
    let mut cells: Vec<Option<&Cell>> = vec![None; spec.columns.len()];
    for row in rows {
        slots.fill(row, &mut cells);
        for ((b, c), cell) in builders.iter_mut().zip(&spec.columns).zip(&cells) {
            b.push(*cell, c.ty);
        }
        match &row.raw {
            Some(text) => raw.append_value(text),
            None => raw.append_value(row.cells_json().to_string()),
        }
    }
    let mut columns: Vec<ArrayRef> = builders.into_iter().map(Builder::finish).collect();
    columns.push(Arc::new(raw.finish()));
    let n = rows.len();
    match tail {
        // Set by the merge for rows identical to the stored ones.
        Tail::Stage {
            seq,
            synced_at_micros,
            load_id,
        } => columns.extend([
            Arc::new(BooleanArray::new_null(n)) as ArrayRef,
            Arc::new(Int64Array::from_value(seq, n)),
            Arc::new(TimestampMicrosecondArray::from_value(synced_at_micros, n)),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                load_id, n,
            ))),
            Arc::new(BooleanArray::from(vec![true; n])),
        ]),
        Tail::Table {
            synced_at_micros,
            load_id,
        } => columns.extend([
            Arc::new(TimestampMicrosecondArray::from_value(synced_at_micros, n)) as ArrayRef,
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                load_id, n,
            ))),
            Arc::new(TimestampMicrosecondArray::new_null(n)),
        ]),
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// Places a row's cells at their columns' positions in the spec.
struct Slots<'s> {
    spec: &'s TableSpec,
    by_name: HashMap<&'s str, usize, foldhash::fast::RandomState>,
    /// The column of each cell position in the previous row: rows of one table are built by the
    /// same code, so the guess almost always holds and each cell costs one comparison.
    guess: Vec<usize>,
}

impl<'s> Slots<'s> {
    fn new(spec: &'s TableSpec) -> Self {
        Self {
            spec,
            by_name: spec
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name, i))
                .collect(),
            guess: Vec::new(),
        }
    }

    /// Sets `out[i]` to the row's cell of column `i`, `None` where the row has none (NULL).
    /// Cells of columns the spec does not have are left out.
    fn fill<'r>(&mut self, row: &'r Row, out: &mut [Option<&'r Cell>]) {
        out.fill(None);
        for (k, (name, cell)) in row.cells.iter().enumerate() {
            let column = match self.guess.get(k) {
                Some(&g) if self.spec.columns[g].name == *name => Some(g),
                _ => {
                    let found = self.by_name.get(name).copied();
                    if let Some(i) = found {
                        if k < self.guess.len() {
                            self.guess[k] = i;
                        } else if k == self.guess.len() {
                            self.guess.push(i);
                        }
                    }
                    found
                }
            };
            if let Some(i) = column {
                out[i] = Some(cell);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use talkhouse_model::{Column, ColumnType as T, TableRef};

    use super::*;

    const TABLE: TableRef = TableRef::source("t");

    fn spec() -> TableSpec {
        TableSpec::new(
            TABLE,
            vec![
                Column::new("a", T::Text),
                Column::new("b", T::Integer),
                Column::new("v", T::Text),
            ],
            &["a", "b"],
        )
    }

    fn row(a: Option<&str>, b: Cell, v: &str) -> Row {
        let mut r = Row::new(TABLE);
        if let Some(a) = a {
            r.put("a", a);
        }
        // Cells in another order than the spec's: lookups must still find them.
        r.put("v", v);
        r.put("b", b);
        r
    }

    const STAGE: Tail<'static> = Tail::Stage {
        seq: 1,
        synced_at_micros: 0,
        load_id: "l",
    };

    fn values(rows: &[&Row]) -> Vec<String> {
        rows.iter()
            .map(|r| match r.get("v") {
                Some(Cell::Text(s)) => s.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn last_versions_keeps_the_last_of_each_key_in_arrival_order() {
        let rows = [
            row(Some("x"), Cell::Integer(1), "x1-old"),
            row(Some("x"), Cell::Integer(2), "x2"),
            row(None, Cell::Integer(1), "null-old"),
            row(Some("x"), Cell::Text("1".into()), "x1-new"),
            row(None, Cell::Integer(1), "null-new"),
            row(Some("y"), Cell::Null, "y"),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        assert_eq!(
            values(&last_versions(&spec(), &refs)),
            ["x2", "x1-new", "null-new", "y"],
            "an integer 1 and a text \"1\" are one key; NULL keys group together"
        );
        assert_eq!(
            values(&last_versions_exact(&spec(), &refs)),
            values(&last_versions(&spec(), &refs))
        );
        let unique: Vec<&Row> = refs[..3].to_vec();
        assert_eq!(last_versions(&spec(), &unique).len(), 3);
    }

    #[test]
    fn stage_batch_finds_cells_in_any_order() {
        let rows = [
            row(Some("x"), Cell::Integer(1), "one"),
            row(Some("y"), Cell::Integer(2), "two"),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let batch = stage_batch(&spec(), &refs, STAGE).expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            batch.num_columns(),
            9,
            "a, b, v, _raw, _same, _seq, _synced_at, _load_id, _first"
        );
        let b = batch
            .column(1)
            .as_any()
            .downcast_ref::<duckdb::arrow::array::Int64Array>()
            .expect("b is BIGINT");
        assert_eq!((b.value(0), b.value(1)), (1, 2));
    }

    #[test]
    fn stage_batch_reads_rows_that_leave_different_columns_unset() {
        // Unset columns are not stored, so the same column sits at different positions from
        // row to row.
        let rows = [
            Row::new(TABLE).set("a", "x").set("b", 1).set("v", "one"),
            Row::new(TABLE).set("a", "y").set("v", "two"),
            Row::new(TABLE).set("v", "three").set("b", 3),
            Row::new(TABLE).set("a", "z").set("b", 4).set("v", "four"),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let batch = stage_batch(&spec(), &refs, STAGE).expect("batch");
        let text = |col: usize| -> Vec<Option<String>> {
            let a = batch
                .column(col)
                .as_any()
                .downcast_ref::<duckdb::arrow::array::StringArray>()
                .expect("text");
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
                .collect()
        };
        use duckdb::arrow::array::Array;
        let b = batch
            .column(1)
            .as_any()
            .downcast_ref::<duckdb::arrow::array::Int64Array>()
            .expect("b is BIGINT");
        let b: Vec<Option<i64>> = (0..b.len())
            .map(|i| b.is_valid(i).then(|| b.value(i)))
            .collect();
        assert_eq!(
            text(0),
            [Some("x".into()), Some("y".into()), None, Some("z".into())]
        );
        assert_eq!(b, [Some(1), None, Some(3), Some(4)]);
        assert_eq!(
            text(2),
            ["one", "two", "three", "four"].map(|v| Some(v.to_owned()))
        );
    }
}
