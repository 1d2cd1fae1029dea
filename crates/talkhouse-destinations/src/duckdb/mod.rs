//! The embedded DuckDB destination (the default).
//!
//! One file (`warehouse.duckdb`); a schema per source plus `talkhouse`. Each batch keeps the last
//! version of each key, is built as one Arrow record batch and appended to a per-table temporary
//! staging table through DuckDB's Appender (no row-by-row `INSERT`), then merged in SQL inside the
//! same transaction as the erasures, quarantine and the stream's cursor.
//!
//! The merge scans the target once per batch, on its key columns only, to find the rows the batch
//! touches; those few are fetched by `rowid` and compared column by column, and only changed or
//! new rows are written. A batch of new keys costs one key scan and an append. A table that was
//! empty when the session first wrote to it skips even that for the keys the session knows it
//! does not hold (a Bloom filter of the keys it wrote): those rows are appended to the table
//! itself, and only the rest go through the staging table (the first load of a warehouse). Tables carry no
//! primary-key constraint: the merge keeps keys unique. (A unique index with `INSERT … ON
//! CONFLICT DO UPDATE` measured half as fast as even the earlier join-based merge on a 5M-row
//! table, with 400 MB more memory.)
//!
//! Group commit: a commit that says more follow ([`talkhouse_model::Commit::more_follows`], a
//! bulk load cut into batches) stays in an open transaction with the next ones, up to 2,000,000
//! rows, 30 seconds, or staging tables holding half of DuckDB's `memory_limit` (DuckDB keeps each
//! batch's dropped staging table until the transaction ends), and the group is committed at once. DuckDB writes a big transaction's
//! full row groups straight to the file, compressed; small transactions each pass through the
//! write-ahead log and a checkpoint, which took half of a bulk load's time. Rows and cursors still
//! land together: a crash loses the open group whole, and the next sync reads it again. A failed
//! commit rolls its group back, and the loads that had commits in it are refused from then on
//! (their cursors must not pass the lost rows). Any other call first commits the open group.
//!
//! Memory: DuckDB's buffer pool keeps table blocks cached up to its `memory_limit`, so a long load
//! grows the process to that size. DuckDB's own default is 80% of the machine's memory; talkhouse
//! sets a quarter of it, at most 512 MiB ([`default_memory_limit`]), unless `[destination]
//! memory_limit` says otherwise ([`DuckDbOptions`]); below 64 MiB a limit is refused.
//!
//! Threads: a commit runs on `write_threads` of DuckDB's threads (by default one less than the
//! machine's cores, at least one), since talkhouse parses and enriches the next batch meanwhile;
//! queries run on all of them. On 2 cores, DuckDB's second worker took turns with the parser
//! and a 1M-item load took a quarter longer.
//!
//! DuckDB allows one writing process per file: `talkhouse sync` and `talkhouse serve` on the same
//! file at the same time is refused with a clear error (use PostgreSQL for several writers).

mod batch;
mod destination;
mod fresh;
mod values;

pub use destination::{
    DEFAULT_MEMORY_LIMIT_CAP, DuckDbDestination, DuckDbOptions, MIN_MEMORY_LIMIT,
    default_memory_limit,
};
