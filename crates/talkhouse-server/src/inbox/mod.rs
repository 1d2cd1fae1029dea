//! The durable inbox: accepted pushes wait here until they are processed.
//!
//! An event is stored (and synced to disk, or committed) before its request is acknowledged;
//! it is deduplicated by `(source, event_id)`; workers [`Inbox::claim`] events, process them and
//! mark them [`Inbox::complete`] or [`Inbox::fail`] (retried later with backoff). After a crash
//! or restart, everything not completed is claimed again, so processing must be (and is)
//! idempotent by event id.
//!
//! The same trait carries the cross-instance sync lock ([`Inbox::try_lock_sync`]) and the
//! schedule's memory ([`Inbox::last_sync`]), so that several `serve` processes sharing one
//! PostgreSQL inbox never run one source's sync twice at once.
//!
//! * [`file::FileInbox`]: an append-only, fsynced log in a folder (one instance);
//! * [`postgres::PostgresInbox`]: tables in PostgreSQL, claimed with `FOR UPDATE SKIP LOCKED`,
//!   syncs serialised with advisory locks (several instances).

pub mod file;
pub mod postgres;

use std::time::Duration;

use chrono::{DateTime, Utc};

/// One stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEvent {
    /// The source's configured name.
    pub source: String,
    /// The vendor's event id.
    pub event_id: String,
    /// What [`talkhouse_model::Source::process_push`] gets.
    pub payload: serde_json::Value,
    /// Processing attempts that failed so far.
    pub attempts: u32,
    /// When it was stored.
    pub received_at: DateTime<Utc>,
}

/// What [`Inbox::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored durably: it will be processed.
    New,
    /// This `(source, event_id)` was stored before: nothing new.
    Duplicate,
}

/// Why the inbox failed.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// Local file I/O.
    #[error("inbox {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A PostgreSQL statement failed.
    #[error("postgres inbox: {context}: {message}")]
    Postgres {
        /// What was being done.
        context: &'static str,
        /// The database's message (never the URL's password).
        message: String,
    },
    /// The inbox has shut down.
    #[error("the inbox is closed")]
    Closed,
}

/// Held while a source's sync runs; dropping it releases the lock.
pub type SyncLease = Box<dyn Send + Sync>;

/// Storage for pushed events, shared by the HTTP handlers and the workers.
#[async_trait::async_trait]
pub trait Inbox: Send + Sync {
    /// Stores an event durably unless `(source, event_id)` is already known.
    async fn put(
        &self,
        source: &str,
        event_id: &str,
        payload: &serde_json::Value,
    ) -> Result<Stored, InboxError>;
    /// Claims up to `max` due events of the named sources (instances sharing an inbox may be
    /// configured differently), waiting up to `wait` for one to arrive. A claimed event is not
    /// handed out again until it is completed, failed or (after a crash) its claim lapses.
    async fn claim(
        &self,
        sources: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<InboxEvent>, InboxError>;
    /// Marks an event processed.
    async fn complete(&self, event: &InboxEvent) -> Result<(), InboxError>;
    /// Marks several events processed.
    async fn complete_all(&self, events: &[InboxEvent]) -> Result<(), InboxError> {
        for e in events {
            self.complete(e).await?;
        }
        Ok(())
    }
    /// Records a failed attempt: the event is due again after `retry_in`, or set aside as dead
    /// when `dead` is true.
    async fn fail(
        &self,
        event: &InboxEvent,
        error: &str,
        retry_in: Duration,
        dead: bool,
    ) -> Result<(), InboxError>;
    /// Events stored and not yet processed (claimed ones included, dead ones not).
    async fn depth(&self) -> Result<u64, InboxError>;
    /// Takes the lock that keeps one source's sync from running twice at once (across every
    /// instance sharing this inbox). `None` when someone else holds it.
    async fn try_lock_sync(&self, source: &str) -> Result<Option<SyncLease>, InboxError>;
    /// When the source's scheduled sync last started.
    async fn last_sync(&self, source: &str) -> Result<Option<DateTime<Utc>>, InboxError>;
    /// Remembers that the source's scheduled sync started at `at`.
    async fn record_sync(&self, source: &str, at: DateTime<Utc>) -> Result<(), InboxError>;
    /// Writes what is buffered and stops accepting events.
    async fn close(&self) -> Result<(), InboxError>;
}

/// The delay before attempt `attempts + 1`: 1 s doubling, at most 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(9)).min(Duration::from_secs(300))
}
