//! The vocabulary every talkhouse crate shares.
//!
//! Data flows `vendor → records → batches → destination`:
//!
//! * a [`Source`] declares its tables ([`TableSpec`]) and streams ([`StreamDef`]), and runs each
//!   stream as a lazy stream of [`Event`]s: groups of [`Row`]s, quarantined records, erasures and
//!   checkpoints carrying the stream's new cursor;
//! * the sync engine (`talkhouse-sync`) batches those events and hands each batch to a
//!   [`Destination`] as one [`Commit`]: rows, erasures, quarantine and the cursor, written in one
//!   transaction.
//!
//! ```
//! use talkhouse_model::{Cell, Row, TableRef};
//! const CUSTOMERS: TableRef = TableRef::source("customers");
//! let row = Row::new(CUSTOMERS).set("id", "c-1").set("age", 42_i64);
//! assert_eq!(row.get("id"), Some(&Cell::Text("c-1".into())));
//! ```

pub mod bookkeeping;
mod cell;
pub mod coerce;
mod destination;
mod error;
mod event;
pub mod model;
mod secret;
mod source;
mod table;
pub mod time;

pub use cell::Cell;
pub use destination::{
    Commit, CommitStats, Destination, LoadRecord, LoadStatus, MaintainOptions, Maintenance,
    QueryRows,
};
pub use error::{DestinationError, SourceError};
pub use event::{EraseMode, Erasure, Event, Quarantined, Row};
pub use secret::{Secret, constant_time_eq};
pub use source::{
    EventStream, HttpCounters, IdHistory, PushRequest, PushVerdict, Source, SourceSettings,
    StreamContext, StreamDef,
};
pub use table::{Column, ColumnType, MODEL_SCHEMA, TableRef, TableSpec};
