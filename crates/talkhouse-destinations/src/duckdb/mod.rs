//! The embedded DuckDB destination (the default).
//!
//! One file (`warehouse.duckdb`); a schema per source plus `talkhouse`. Batches are appended to a
//! per-table staging table in schema `talkhouse_staging` through DuckDB's Appender (no row-by-row
//! `INSERT`), then merged in SQL inside the same transaction as the erasures, quarantine and the
//! stream's cursor. Tables carry no primary-key constraint: the merge keeps keys unique, and
//! DuckDB loads faster without the index.
//!
//! DuckDB allows one writing process per file: `talkhouse sync` and `talkhouse serve` on the same
//! file at the same time is refused with a clear error (use PostgreSQL for several writers).

mod destination;
mod values;

pub use destination::DuckDbDestination;
