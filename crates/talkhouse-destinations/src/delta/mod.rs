//! The Delta Lake destination (`kind = "delta"`, `root = "<dir>" | "s3://…" | "gs://…" |
//! "az://…"`), behind the cargo feature `delta`.
//!
//! # What it writes
//! One Delta table per warehouse table under `root/<schema>/<table>/`, with the columns of the
//! warehouse contract: text and JSON → `string`, integer → `long`, float →
//! `double`, boolean → `boolean`, timestamp → `timestamp` (UTC), date → `date`, plus `_raw`,
//! `_synced_at`, `_load_id`, `_deleted_at`. Tables whose spec names a
//! [`day_column`](talkhouse_model::TableSpec::day_column) (items, messages, conversations) carry
//! a `_day` date column and are partitioned by it. Bookkeeping lives in `root/talkhouse/`:
//! `state`, `loads`, `quarantine`, and `_catalog`, which lists every table and the SQL of every
//! view so that a later process finds them on any object store. Spark, Trino or Databricks read
//! the tables by path.
//!
//! # How a commit lands
//! Each table of a [`Commit`](talkhouse_model::Commit) is one Delta `MERGE` on the primary key
//! (the batch deduplicated, last wins): a changed or soft-deleted row is replaced, an unchanged
//! one (same columns and `_raw`) is left alone, so `_synced_at` and `_load_id` stay; a child table's rows of
//! the batch's parents that the batch no longer holds are deleted. An empty table takes a plain
//! append. Erasures are Delta `DELETE`/`UPDATE`s, quarantine a merge that adds records not
//! already there, and the stream's cursor is merged into `talkhouse/state` **last**. Delta
//! commits are atomic per table, not across tables, so the guarantee comes from the order: the
//! cursor never moves before the rows it covers are committed, and a rerun after a crash
//! re-merges the same records, which changes nothing. Every commit carries `talkhouse` commit
//! metadata (source, stream, load id; the cursor on the state table), visible in the tables'
//! history.
//!
//! # Reads
//! `query` runs DataFusion SQL over every table in the catalog (registered as
//! `schema.table`, with `information_schema`) and the stored views, each at its latest version.
//! `percentile_cont` is exact there, as in PostgreSQL and DuckDB (DataFusion's own rounds its
//! interpolation weight to six decimals).
//!
//! # Quirks
//! * One writing process per root: commits within a process are serialised; a second process
//!   writing the same table at the same time makes one commit fail with a Delta conflict. Use
//!   PostgreSQL for several `serve` instances.
//! * Quarantine is keyed by source, stream, location and error: a record quarantined again for
//!   the same reason at the same place (a rerun, a full refresh) is not added twice, where the
//!   SQL destinations keep a log.
//! * `execute` accepts only `CREATE [OR REPLACE] VIEW`: rows change through commits.
//! * `talkhouse maintain` compacts small files (`OPTIMIZE`), vacuums unreferenced files older
//!   than the retention (default 7 days) and writes a checkpoint.

mod config;
mod destination;
mod percentile;
mod values;

pub use destination::DeltaDestination;
