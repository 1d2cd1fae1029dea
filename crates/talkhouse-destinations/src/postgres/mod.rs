//! The PostgreSQL destination (`kind = "postgres"`, `url = "postgres://…"`), behind the cargo
//! feature `postgres`.
//!
//! # What it writes
//! A schema per source plus `talkhouse`, with the tables of the warehouse contract.
//! Column types: text → `text`, integer → `bigint`, float → `double precision`, boolean →
//! `boolean`, timestamp → `timestamptz`, date → `date`, JSON → `jsonb`; every table also has
//! `_raw jsonb`, `_synced_at timestamptz`, `_load_id text`, `_deleted_at timestamptz` and a
//! primary key on the spec's key. A later spec with new columns adds them (`ALTER TABLE … ADD
//! COLUMN`). Bookkeeping: `talkhouse.state`, `talkhouse.loads`, `talkhouse.quarantine`.
//!
//! # How a commit lands
//! One transaction per [`Commit`](talkhouse_model::Commit): the batch (deduplicated by primary key,
//! last wins) is sent by binary `COPY` into a temporary staging table per target table; rows of the
//! batch's groups (parent key for child tables, else primary key) that are absent from the batch,
//! changed, or marked deleted are removed; staging rows whose key is then absent are inserted, so
//! an unchanged row keeps its `_synced_at` and `_load_id`. Then erasures, quarantine and the
//! stream's cursor, then `COMMIT`. The semantics are those of
//! `talkhouse_sync::memory::MemoryDestination`, which the tests compare against.
//!
//! # Connection
//! One connection behind a mutex (commits are serialised; the engine commits one batch at a time
//! per stream anyway), reconnected when it drops. The session runs with `TimeZone = UTC`, so dates
//! cut from timestamps agree with DuckDB. TLS through rustls with the Mozilla (webpki) roots when
//! the URL says `sslmode=require` (`verify-ca` and `verify-full` are accepted as synonyms:
//! certificates are always verified); `sslrootcert=<file.pem>` adds a private CA (Amazon RDS, a
//! company CA). Otherwise plain TCP or a Unix socket. Passwords never appear in
//! [`describe`](talkhouse_model::Destination::describe), errors or `Debug` output.
//!
//! # Quirks
//! * PostgreSQL text cannot hold NUL characters (nor can `jsonb` hold `\u0000`): they are stored as
//!   U+FFFD.
//! * A row PostgreSQL cannot store — a primary-key column without a value, a value that does not
//!   fit its column (text that is no number in a bigint column), a `_raw` that is not JSON — goes
//!   to `talkhouse.quarantine` with location `schema.table` instead of failing the batch (the
//!   in-memory destination would keep it).
//! * `query` answers `numeric` values as JSON integers when they are whole and fit in 64 bits
//!   (`sum(bigint)` is a count), else as floats; timestamps as RFC 3339 strings in UTC.

mod config;
mod destination;
mod sql;
mod values;

pub use config::PostgresConfig;
pub use destination::{PostgresDestination, connect};
