//! Warehouse destinations. Each implements [`talkhouse_model::Destination`]: "write one batch,
//! its erasures, quarantine and the stream's cursor in one transaction", with the same tables
//! and merge semantics everywhere:
//!
//! * a schema per source, tables from the source's [`TableSpec`](talkhouse_model::TableSpec)s
//!   plus `_raw`, `_synced_at`, `_load_id`, `_deleted_at`; missing columns are added later;
//! * rows merge by primary key; an unchanged row (same columns and `_raw`) is not rewritten; rows of a
//!   child table's parent in a batch replace that parent's earlier rows;
//! * bookkeeping in schema `talkhouse`: `state`, `loads`, `quarantine`.
//!
//! | folder | feature | what |
//! |---|---|---|
//! | `duckdb/` | `duckdb` (default) | embedded DuckDB file, Appender bulk loads |
//! | `postgres/` | `postgres` | PostgreSQL, binary COPY + merge |
//! | `delta/` | `delta` | Delta Lake tables in a folder or object store, DataFusion merges |

#[cfg(feature = "delta")]
pub mod delta;
#[cfg(feature = "duckdb")]
pub mod duckdb;
#[cfg(feature = "postgres")]
pub mod postgres;
mod sql;

pub use sql::{bookkeeping_columns, quote_ident, quote_literal};
