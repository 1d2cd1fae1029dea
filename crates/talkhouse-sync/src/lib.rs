//! The sync engine.
//!
//! [`sync_source`] runs every stream of a source (concurrently, honouring
//! [`StreamDef::after`](talkhouse_model::StreamDef)), batches their events (capped by rows,
//! bytes and time, see [`BatchConfig`]) and writes each batch with the stream's latest cursor
//! as one [`Commit`](talkhouse_model::Commit). A cursor only moves when the rows it covers
//! land. Each stream run is a row in `talkhouse.loads`; a failing stream keeps what it and the
//! others committed.
//!
//! [`Pipeline`] is what every path that loads records shares (model views, enrichment, batch
//! caps): `sync`, `load`, `demo` and `serve` all go through one.
//!
//! [`memory::MemoryDestination`] is an in-memory destination with the same merge semantics as
//! the real ones, for connector tests.

mod engine;
pub mod memory;
mod pipeline;
pub mod testing;

pub use engine::{
    BatchConfig, Enricher, Progress, StreamReport, SyncOptions, SyncReport, commit_events,
    new_load_id, prepare, sync_source,
};
pub use pipeline::{Pipeline, Run};
