//! The bookkeeping tables of schema `talkhouse`, declared once for every destination.
//!
//! Each destination creates these tables from the lists below with its own type names (and
//! adds the columns a newer version declares to a table an older one created), writes
//! `talkhouse.loads` from [`LoadRecord::cells`] in the order of [`LOADS`], and cuts quarantined
//! payloads with [`truncate_payload`]. Nothing here is repeated in a destination.

use crate::{Cell, ColumnType, LoadRecord};

/// One column of a bookkeeping table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookColumn {
    /// Column name.
    pub name: &'static str,
    /// Logical type.
    pub ty: ColumnType,
    /// Whether every row has a value (`NOT NULL` where the destination enforces it).
    pub required: bool,
    /// Declared after the first release: a destination adds it to a table an older release
    /// created (always nullable).
    pub added_later: bool,
}

const fn col(name: &'static str, ty: ColumnType, required: bool) -> BookColumn {
    BookColumn {
        name,
        ty,
        required,
        added_later: false,
    }
}

const fn later(name: &'static str, ty: ColumnType) -> BookColumn {
    BookColumn {
        name,
        ty,
        required: false,
        added_later: true,
    }
}

use ColumnType as T;

/// `talkhouse.state`: one cursor per source and stream (key `source`, `stream`).
pub const STATE: &[BookColumn] = &[
    col("source", T::Text, true),
    col("stream", T::Text, true),
    col("cursor", T::Json, false),
    col("updated_at", T::Timestamp, true),
];

/// Key of `talkhouse.state`.
pub const STATE_KEY: &[&str] = &["source", "stream"];

/// `talkhouse.loads`: one row per stream run (key `load_id`, `source`, `stream`), with the
/// vendor requests the stream made.
pub const LOADS: &[BookColumn] = &[
    col("load_id", T::Text, true),
    col("source", T::Text, true),
    col("stream", T::Text, true),
    col("started_at", T::Timestamp, true),
    col("finished_at", T::Timestamp, false),
    col("status", T::Text, true),
    col("rows", T::Integer, true),
    col("quarantined", T::Integer, true),
    col("error", T::Text, false),
    later("requests", T::Integer),
    later("retries", T::Integer),
    later("throttled", T::Integer),
    later("request_failures", T::Integer),
];

/// Key of `talkhouse.loads`.
pub const LOADS_KEY: &[&str] = &["load_id", "source", "stream"];

/// `talkhouse.quarantine`: records that could not be loaded, with where they came from.
pub const QUARANTINE: &[BookColumn] = &[
    col("source", T::Text, true),
    col("stream", T::Text, true),
    col("location", T::Text, false),
    col("error", T::Text, false),
    col("payload", T::Text, false),
    col("load_id", T::Text, false),
    col("quarantined_at", T::Timestamp, true),
];

/// The bookkeeping tables, by name.
pub const TABLES: &[(&str, &[BookColumn])] = &[
    ("state", STATE),
    ("loads", LOADS),
    ("quarantine", QUARANTINE),
];

/// Longest quarantined payload kept, in bytes: enough to see what was wrong, bounded so that
/// a runaway record cannot bloat the table.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// The first [`MAX_PAYLOAD`] bytes of a payload, cut at a character boundary.
pub fn truncate_payload(payload: &str) -> &str {
    let mut end = payload.len().min(MAX_PAYLOAD);
    while !payload.is_char_boundary(end) {
        end -= 1;
    }
    &payload[..end]
}

fn count(n: u64) -> Cell {
    Cell::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

impl LoadRecord {
    /// The row of `talkhouse.loads`, one cell per column of [`LOADS`], in that order.
    pub fn cells(&self) -> Vec<Cell> {
        let text = |s: &str| Cell::Text(s.to_owned());
        let http = self.http.unwrap_or_default();
        let known = |n: u64| {
            if self.http.is_some() {
                count(n)
            } else {
                Cell::Null
            }
        };
        vec![
            text(&self.load_id),
            text(&self.source),
            text(&self.stream),
            Cell::Timestamp(self.started_at),
            self.finished_at.map_or(Cell::Null, Cell::Timestamp),
            text(self.status.as_str()),
            count(self.rows),
            count(self.quarantined),
            self.error.as_deref().map_or(Cell::Null, text),
            known(http.attempts),
            known(http.retries),
            known(http.throttled),
            known(http.failures),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LoadStatus;

    #[test]
    fn a_load_has_one_cell_per_declared_column() {
        let mut load = LoadRecord {
            load_id: "l".into(),
            source: "s".into(),
            stream: "x".into(),
            started_at: chrono::Utc::now(),
            finished_at: None,
            status: LoadStatus::Running,
            rows: 3,
            quarantined: 1,
            error: None,
            http: None,
        };
        let cells = load.cells();
        assert_eq!(cells.len(), LOADS.len());
        let at = |name: &str| {
            LOADS
                .iter()
                .position(|c| c.name == name)
                .unwrap_or(usize::MAX)
        };
        assert_eq!(cells[at("rows")], Cell::Integer(3));
        assert_eq!(cells[at("requests")], Cell::Null);
        load.http = Some(crate::HttpCounters {
            attempts: 7,
            retries: 2,
            throttled: 1,
            failures: 0,
        });
        let cells = load.cells();
        assert_eq!(cells[at("requests")], Cell::Integer(7));
        assert_eq!(cells[at("throttled")], Cell::Integer(1));
        assert_eq!(cells[at("request_failures")], Cell::Integer(0));
    }

    #[test]
    fn payloads_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_PAYLOAD);
        let cut = truncate_payload(&long);
        assert!(cut.len() <= MAX_PAYLOAD && cut.len() >= MAX_PAYLOAD - 1);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_payload("short"), "short");
    }
}
