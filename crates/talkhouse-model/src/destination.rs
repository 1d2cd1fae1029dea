//! The destination side: "write one batch and the cursor atomically".

use chrono::{DateTime, Utc};

use crate::{DestinationError, Erasure, Quarantined, Row, TableSpec};

/// One atomic write: rows, erasures and quarantined records of one stream, plus its new cursor.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Source name (the vendor schema).
    pub source: String,
    /// Stream name.
    pub stream: String,
    /// Load id stamped on written rows.
    pub load_id: String,
    /// When the batch was written (stamped as `_synced_at`).
    pub synced_at: DateTime<Utc>,
    /// Rows to merge by primary key (child tables replace by parent key).
    pub rows: Vec<Row>,
    /// Erasures, applied after the rows.
    pub erasures: Vec<Erasure>,
    /// Records that could not be parsed.
    pub quarantine: Vec<Quarantined>,
    /// The stream's new cursor, if it moved.
    pub state: Option<serde_json::Value>,
    /// More commits of this load follow at once (a bulk load, cut into batches by size). A
    /// destination may then make this commit durable together with the next ones rather than
    /// on its own, as long as it stays atomic with its cursor: after a crash, the rows and the
    /// cursor of a commit are both there or both not. Everything must be durable once a commit
    /// without it, or any other call, returns. When `false` (a stream's last batch, a batch
    /// closed by age, a pushed event), the commit is durable when `commit` returns.
    pub more_follows: bool,
}

/// What a commit changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Rows inserted or replaced (unchanged rows are not rewritten and not counted).
    pub rows_written: u64,
    /// Rows erased.
    pub rows_erased: u64,
}

/// Outcome of a stream run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStatus {
    /// Still running (or killed while running).
    Running,
    /// Finished.
    Succeeded,
    /// Failed; what it committed stays.
    Failed,
}

impl LoadStatus {
    /// The name stored in `talkhouse.loads.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadStatus::Running => "running",
            LoadStatus::Succeeded => "succeeded",
            LoadStatus::Failed => "failed",
        }
    }
}

/// One row of `talkhouse.loads`: one stream of one sync.
#[derive(Debug, Clone)]
pub struct LoadRecord {
    /// Load id.
    pub load_id: String,
    /// Source name.
    pub source: String,
    /// Stream name.
    pub stream: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End, once finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: LoadStatus,
    /// Rows written.
    pub rows: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Error message when failed.
    pub error: Option<String>,
    /// Vendor requests the stream made (`None` where the source keeps no count).
    pub http: Option<crate::HttpCounters>,
}

/// Options of `talkhouse maintain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintainOptions {
    /// Files no longer referenced by a table are deleted once they are older than this.
    pub retention: std::time::Duration,
    /// Report what would be done, change nothing.
    pub dry_run: bool,
}

impl Default for MaintainOptions {
    fn default() -> Self {
        Self {
            // Delta Lake's own default (`delta.deletedFileRetentionDuration`).
            retention: std::time::Duration::from_secs(7 * 24 * 3600),
            dry_run: false,
        }
    }
}

/// What `talkhouse maintain` did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// `schema.table`.
    pub table: String,
    /// Small files rewritten by compaction.
    pub files_compacted: u64,
    /// Files compaction wrote.
    pub files_written: u64,
    /// Unreferenced files deleted (or, in a dry run, that would be).
    pub files_vacuumed: u64,
}

/// Rows of a query answer, as JSON objects with the columns in select order.
pub type QueryRows = Vec<serde_json::Map<String, serde_json::Value>>;

/// A warehouse talkhouse writes to.
#[async_trait::async_trait]
pub trait Destination: Send + Sync {
    /// A short name for logs (`duckdb:warehouse.duckdb`), without credentials.
    fn describe(&self) -> String;
    /// Creates the bookkeeping tables of schema `talkhouse` if missing.
    async fn init(&self) -> Result<(), DestinationError>;
    /// Creates missing schemas and tables and adds missing columns.
    async fn prepare(&self, source: &str, tables: &[TableSpec]) -> Result<(), DestinationError>;
    /// The stream's committed cursor.
    async fn read_state(
        &self,
        source: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, DestinationError>;
    /// Writes rows, erasures, quarantine and the cursor in one transaction (durable on return
    /// unless [`Commit::more_follows`] lets it wait for the next commits).
    async fn commit(&self, commit: Commit) -> Result<CommitStats, DestinationError>;
    /// Inserts or updates a row of `talkhouse.loads`.
    async fn record_load(&self, load: &LoadRecord) -> Result<(), DestinationError>;
    /// Runs a read-only SQL query (portable SQL: DuckDB and PostgreSQL agree on it).
    async fn query(&self, sql: &str) -> Result<QueryRows, DestinationError>;
    /// Runs DDL (views) in portable SQL.
    async fn execute(&self, sql: &str) -> Result<(), DestinationError>;
    /// Compaction and vacuum, where the destination needs them (Delta Lake); the others have
    /// nothing to do and answer an empty list.
    async fn maintain(
        &self,
        _opts: &MaintainOptions,
    ) -> Result<Vec<Maintenance>, DestinationError> {
        Ok(Vec::new())
    }
    /// Whether the destination answers (for `/readyz`).
    async fn ping(&self) -> Result<(), DestinationError> {
        self.query("SELECT 1 AS ok").await.map(|_| ())
    }
}
