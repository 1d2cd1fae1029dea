//! [`DuckDbDestination`]: the Destination implementation.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duckdb::types::Value;
use duckdb::{Connection, params};
use talkhouse_model::bookkeeping::{LOADS, truncate_payload};
use talkhouse_model::{
    ColumnType, Commit, CommitStats, Destination, DestinationError, EraseMode, Erasure, LoadRecord,
    MODEL_SCHEMA, QueryRows, Row, TableRef, TableSpec,
};

use super::batch::{STAGE_TAIL, Tail, group_key_hashes, last_versions, stage_batch};
use super::fresh::NewKeys;
use super::values::{sql_type, stage_type, to_json, to_value};
use crate::quote_ident as q;
use crate::sql::bookkeeping_ddl;

type Result<T> = std::result::Result<T, DestinationError>;

/// A DuckDB warehouse file (or an in-memory database for tests).
pub struct DuckDbDestination {
    target: String,
    session: Arc<Mutex<Session>>,
    specs: Arc<Mutex<HashMap<(String, String), TableSpec>>>,
}

/// A group is made durable once it holds this many rows…
const GROUP_MAX_ROWS: usize = 2_000_000;
/// …or has been open this long…
const GROUP_MAX_AGE: Duration = Duration::from_secs(30);
/// …or its batches' staging tables hold this share of DuckDB's `memory_limit` (one over this).
///
/// A batch's staging table is replaced by the next batch's, but DuckDB keeps a table dropped in a
/// transaction until the transaction ends (it could roll back): an open group holds every one of
/// its batches' staging tables (and a table filled from empty keeps its staged rows until the
/// group's one merge, [`merge_table`]). At 2,000,000 rows that was some 2 GB of dead rows for a
/// 512 MiB limit; they filled DuckDB's memory and spilled to disk (measured on the 3M-item Gladly
/// load: 505 MiB of DuckDB's 512 MiB in staging tables and up to 660 MB spilled, per group).
const GROUP_STAGE_SHARE: u64 = 2;

/// Commits that said more follow, in one open transaction: DuckDB writes a large transaction's
/// full row groups straight to the file, compressed, where small transactions each go through
/// the write-ahead log and a checkpoint (measured: half the time for a bulk load).
struct Group {
    rows: usize,
    /// Bytes of the batches staged in the group (their Arrow form), dead once merged.
    staged: u64,
    since: Instant,
    /// Load ids with commits in the group.
    loads: HashSet<String>,
}

/// The connection and what is open on it.
struct Session {
    conn: Connection,
    group: Option<Group>,
    /// The group is made durable once its staged bytes reach this ([`GROUP_STAGE_SHARE`]);
    /// `None` without a known `memory_limit`.
    stage_budget: Option<u64>,
    threads: Threads,
    /// Loads whose deferred commits were rolled back with a failed one: their later commits are
    /// refused, so their cursors never pass the lost rows.
    poisoned: HashSet<String>,
    /// Per table merged into since the last other statement: the keys it may hold when it was
    /// empty then (`None`: it was not, so every row goes through the merge). Cleared before
    /// any other statement, which could write to the tables.
    fresh: HashMap<(String, String), Option<NewKeys>>,
    /// Tables filled from empty whose staging tables hold rows not merged yet: the rows the
    /// new-key filter could not rule out, gathered over the open group and merged once, before
    /// it commits or anything else reads or erases ([`merge_table`]).
    deferred: Vec<Deferred>,
    /// The number of the last batch staged in this session (`_seq`).
    seq: i64,
}

/// A staging table holding rows whose merge waits for the end of the group: one version of
/// each group ([`fold_stage`]).
struct Deferred {
    schema: String,
    spec: TableSpec,
}

/// DuckDB's worker threads for writing and for everything else.
///
/// A commit runs beside talkhouse's own work on the next batches (parsing, enrichment), so it
/// leaves them a core: with DuckDB on every core, its workers and the parser took turns on the
/// same cores, and a 1M-item Gladly load on 2 cores took 27 s instead of 21 s (`docs/benchmarks.md`).
/// Queries run on all of DuckDB's threads.
#[derive(Debug)]
struct Threads {
    /// For commits.
    write: usize,
    /// For queries: DuckDB's own setting when the warehouse was opened.
    query: usize,
    /// What DuckDB is set to now.
    now: usize,
}

/// DuckDB's `threads` setting as it is now.
fn current_threads(conn: &Connection) -> Result<usize> {
    let n: i64 = conn
        .query_row("SELECT current_setting('threads')::BIGINT", [], |r| {
            r.get(0)
        })
        .map_err(db_err("reading DuckDB's threads"))?;
    Ok(usize::try_from(n).unwrap_or(1).max(1))
}

impl Threads {
    /// Reads DuckDB's setting; `write` of `None` leaves one core to talkhouse.
    fn read(conn: &Connection, write: Option<usize>) -> Result<Self> {
        let query = current_threads(conn)?;
        let write = write.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1))
        });
        Ok(Self {
            write: write.clamp(1, query),
            query,
            now: query,
        })
    }
}

impl Session {
    /// Sets DuckDB's worker threads for writing (`true`) or querying, when it is not already.
    fn use_threads(&mut self, writing: bool) -> Result<()> {
        let want = if writing {
            self.threads.write
        } else {
            self.threads.query
        };
        if self.threads.now != want {
            self.conn
                .execute_batch(&format!("SET threads = {want}"))
                .map_err(db_err("setting DuckDB's threads"))?;
            self.threads.now = want;
        }
        Ok(())
    }

    /// Merges the open group's deferred rows, then makes the group durable (nothing to do
    /// without one). When that fails, its commits are rolled back and their loads refused from
    /// then on. Returns the rows the deferred merges wrote.
    fn settle(&mut self) -> Result<u64> {
        let Some(group) = self.group.take() else {
            return Ok(0);
        };
        let committed = merge_deferred(&self.conn, &mut self.deferred).and_then(|written| {
            self.conn
                .execute_batch("COMMIT")
                .map(|()| written)
                .map_err(|e| DestinationError::query("committing", e))
        });
        if committed.is_err() {
            // Best effort: DuckDB may have rolled back already.
            let _ = self.conn.execute_batch("ROLLBACK");
            self.deferred.clear();
            self.poisoned.extend(group.loads);
        }
        committed
    }

    /// Rolls back the open group after a failed commit and refuses its loads from then on.
    fn abort(&mut self, load_id: &str) {
        let _ = self.conn.execute_batch("ROLLBACK");
        self.deferred.clear();
        if let Some(group) = self.group.take() {
            self.poisoned.extend(group.loads);
        }
        self.poisoned.insert(load_id.to_owned());
    }

    /// Writes one commit, in the open group or a new one, and settles the group when the commit
    /// is the last of its load or the group is big or old enough.
    fn commit(
        &mut self,
        specs: &HashMap<(String, String), TableSpec>,
        commit: &Commit,
    ) -> Result<CommitStats> {
        if self.poisoned.contains(&commit.load_id) {
            return Err(DestinationError::query(
                "committing",
                "an earlier batch of this load was rolled back with a failed commit; the cursor \
                 was not stored past it, so the next sync reads those records again",
            ));
        }
        if self.group.is_none() {
            self.use_threads(true)?;
            self.conn
                .execute_batch("BEGIN TRANSACTION")
                .map_err(db_err("starting a transaction"))?;
            self.group = Some(Group {
                rows: 0,
                staged: 0,
                since: Instant::now(),
                loads: HashSet::new(),
            });
        }
        let mut batch = Batch {
            fresh: &mut self.fresh,
            deferred: &mut self.deferred,
            seq: &mut self.seq,
        };
        let (mut stats, staged) = match apply_commit(&self.conn, specs, &mut batch, commit) {
            Ok(done) => done,
            Err(e) => {
                self.abort(&commit.load_id);
                return Err(e);
            }
        };
        let due = match self.group.as_mut() {
            Some(g) => {
                g.rows += commit.rows.len();
                g.staged += staged;
                g.loads.insert(commit.load_id.clone());
                !commit.more_follows
                    || g.rows >= GROUP_MAX_ROWS
                    || g.since.elapsed() >= GROUP_MAX_AGE
                    || self.stage_budget.is_some_and(|b| g.staged >= b)
            }
            None => true,
        };
        if due {
            stats.rows_written += self.settle()?;
        }
        Ok(stats)
    }
}

impl std::fmt::Debug for DuckDbDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DuckDbDestination")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn db_err(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> DestinationError {
    let context = context.into();
    move |e| DestinationError::query(context, e)
}

/// The catalog name a warehouse file is attached under.
const WAREHOUSE_CATALOG: &str = "talkhouse_warehouse";

fn staging_name(schema: &str, table: &str) -> String {
    format!("stage__{schema}__{table}")
}

fn naive_micros(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::Timestamp(duckdb::types::TimeUnit::Microsecond, t.timestamp_micros())
}

/// The most memory the default [`DuckDbOptions::memory_limit`] gives DuckDB: 512 MiB. A bulk load
/// of 10M items peaks under 1 GiB of process memory with it, no faster with more.
pub const DEFAULT_MEMORY_LIMIT_CAP: u64 = 512 << 20;

/// The smallest `memory_limit` accepted: 64 MiB. Below it a batch of wide rows fails half-way
/// with DuckDB's out-of-memory error; refusing it up front says what to change.
pub const MIN_MEMORY_LIMIT: u64 = 64 << 20;

/// The `memory_limit` DuckDB gets when none is configured: a quarter of the machine's memory (as
/// `/proc/meminfo` tells it), at most [`DEFAULT_MEMORY_LIMIT_CAP`]; the cap where the machine
/// does not say.
pub fn default_memory_limit() -> String {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib.saturating_mul(1024))
        });
    let bytes = total.map_or(DEFAULT_MEMORY_LIMIT_CAP, |t| {
        (t / 4).clamp(MIN_MEMORY_LIMIT, DEFAULT_MEMORY_LIMIT_CAP)
    });
    format!("{}MiB", bytes >> 20)
}

/// The connection's `memory_limit` in bytes, read back from DuckDB (`None` when its display
/// form, such as `286.1 MiB`, cannot be read).
fn memory_limit_bytes(conn: &Connection) -> duckdb::Result<Option<u64>> {
    let shown: String =
        conn.query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))?;
    Ok(human_bytes(&shown))
}

/// `286.1 MiB`, `1.5 GB`, `1000 bytes` → bytes.
fn human_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "byte" | "bytes" => 1.0,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return None,
    };
    // A memory size far below 2^53: the float is exact enough, and never negative.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((number * scale) as u64)
}

/// Settings of a DuckDB warehouse beyond its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuckDbOptions {
    /// DuckDB's `memory_limit` (`"1GB"`, `"512MB"`): past it DuckDB evicts its buffers and
    /// spills to disk. `None` takes [`default_memory_limit`]: a quarter of the machine's memory,
    /// at most 512 MiB (DuckDB's own default, 80% of the memory, lets a long load grow the
    /// process to that size).
    pub memory_limit: Option<String>,
    /// DuckDB's worker threads while it writes a batch, from one to DuckDB's own `threads`.
    /// `None` leaves one core to talkhouse's own parsing and enrichment of the next batch (at
    /// least one thread); queries always run on DuckDB's full `threads`.
    pub write_threads: Option<usize>,
}

impl DuckDbDestination {
    /// Opens (or creates) a warehouse file with DuckDB's default settings.
    ///
    /// # Errors
    /// When the file cannot be opened, for instance because another process holds it.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &DuckDbOptions::default())
    }

    /// Opens (or creates) a warehouse file.
    ///
    /// # Errors
    /// When the file cannot be opened (another process holds it), or a setting is refused.
    pub fn open_with(path: &Path, options: &DuckDbOptions) -> Result<Self> {
        let target = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| DestinationError::Connect {
                target: target.clone(),
                message: e.to_string(),
            })?;
        }
        // The file is attached under a fixed catalog name: opened directly, DuckDB names its
        // catalog after the file, and a `talkhouse.duckdb` or `gladly.duckdb` would make every
        // `talkhouse.…` or `gladly.…` reference ambiguous between the catalog and the schema.
        let connect_err = |e: duckdb::Error| {
            let mut message = e.to_string();
            if message.contains("lock") {
                message.push_str(
                    " (another talkhouse process has this file open; DuckDB allows one writer per file — \
                     stop it, or use a PostgreSQL destination for several processes)",
                );
            }
            DestinationError::Connect {
                target: target.clone(),
                message,
            }
        };
        let conn = Connection::open_in_memory().map_err(connect_err)?;
        let limit = options
            .memory_limit
            .clone()
            .unwrap_or_else(default_memory_limit);
        conn.execute_batch(&format!(
            "SET memory_limit = {}",
            crate::quote_literal(&limit)
        ))
        .map_err(|e| DestinationError::Connect {
            target: target.clone(),
            message: format!(
                "memory_limit {limit:?} refused: {e} (give a size such as \"1GB\" or \"512MB\")"
            ),
        })?;
        let bytes = memory_limit_bytes(&conn).map_err(connect_err)?;
        if bytes.is_some_and(|b| b < MIN_MEMORY_LIMIT) {
            return Err(DestinationError::Connect {
                target: target.clone(),
                message: format!(
                    "memory_limit {limit:?} is too small for a load: DuckDB needs at least {} MiB \
                     (give \"{}MiB\" or more, or leave it out for the default)",
                    MIN_MEMORY_LIMIT >> 20,
                    MIN_MEMORY_LIMIT >> 20
                ),
            });
        }
        conn.execute_batch(&format!(
            "ATTACH {} AS {WAREHOUSE_CATALOG}; USE {WAREHOUSE_CATALOG};",
            crate::quote_literal(&path.to_string_lossy())
        ))
        .map_err(connect_err)?;
        let threads = Threads::read(&conn, options.write_threads)?;
        let stage_budget = bytes.map(|b| b / GROUP_STAGE_SHARE);
        Ok(Self::with_connection(target, conn, threads, stage_budget))
    }

    /// An in-memory database (tests, and reading Delta tables for reports).
    ///
    /// # Errors
    /// When DuckDB cannot start.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| DestinationError::Connect {
            target: ":memory:".into(),
            message: e.to_string(),
        })?;
        let threads = Threads::read(&conn, None)?;
        Ok(Self::with_connection(
            ":memory:".into(),
            conn,
            threads,
            None,
        ))
    }

    fn with_connection(
        target: String,
        conn: Connection,
        threads: Threads,
        stage_budget: Option<u64>,
    ) -> Self {
        Self {
            target,
            session: Arc::new(Mutex::new(Session {
                conn,
                group: None,
                stage_budget,
                threads,
                poisoned: HashSet::new(),
                fresh: HashMap::new(),
                deferred: Vec::new(),
                seq: 0,
            })),
            specs: Arc::default(),
        }
    }

    /// Runs `f` on the session on a blocking thread.
    async fn with_session<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Session, &Mutex<HashMap<(String, String), TableSpec>>) -> Result<T>
            + Send
            + 'static,
    {
        let session = self.session.clone();
        let specs = self.specs.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = session
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard, &specs)
        })
        .await
        .map_err(|e| DestinationError::query("duckdb worker", e))?
    }

    /// Runs `f` on the connection once any open group of commits is durable.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Mutex<HashMap<(String, String), TableSpec>>) -> Result<T>
            + Send
            + 'static,
    {
        self.with_session(move |session, specs| {
            session.settle()?;
            session.use_threads(false)?;
            session.fresh.clear();
            f(&mut session.conn, specs)
        })
        .await
    }
}

fn prepare_table(conn: &Connection, schema: &str, spec: &TableSpec) -> Result<()> {
    let table = spec.table.name;
    let ctx = format!("creating {schema}.{table}");
    let mut cols: Vec<String> = spec
        .columns
        .iter()
        .map(|c| format!("{} {}", q(c.name), sql_type(c.ty)))
        .collect();
    cols.extend([
        "_raw JSON".to_owned(),
        "_synced_at TIMESTAMP".to_owned(),
        "_load_id VARCHAR".to_owned(),
        "_deleted_at TIMESTAMP".to_owned(),
    ]);
    conn.execute_batch(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s}; CREATE TABLE IF NOT EXISTS {s}.{t} ({cols});",
        s = q(schema),
        t = q(table),
        cols = cols.join(", ")
    ))
    .map_err(db_err(ctx.clone()))?;
    // Evolve: add columns a newer spec declares.
    let mut stmt = conn
        .prepare("SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?")
        .map_err(db_err(ctx.clone()))?;
    let existing: Vec<String> = stmt
        .query_map(params![schema, table], |r| r.get::<_, String>(0))
        .map_err(db_err(ctx.clone()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(db_err(ctx.clone()))?;
    for c in &spec.columns {
        if !existing.iter().any(|e| e == c.name) {
            tracing::info!(schema, table, column = c.name, "adding column");
            conn.execute_batch(&format!(
                "ALTER TABLE {}.{} ADD COLUMN {} {}",
                q(schema),
                q(table),
                q(c.name),
                sql_type(c.ty)
            ))
            .map_err(db_err(ctx.clone()))?;
        }
    }
    conn.execute_batch(&create_stage(schema, spec))
        .map_err(db_err(ctx))?;
    Ok(())
}

/// (Re)creates the empty staging table of `schema.table`. A new table for each batch rather
/// than `DELETE`: rows deleted from a temporary table keep their memory until it is dropped.
fn create_stage(schema: &str, spec: &TableSpec) -> String {
    let mut cols: Vec<String> = spec
        .columns
        .iter()
        .map(|c| format!("{} {}", q(c.name), stage_type(c.ty)))
        .collect();
    cols.push("_raw VARCHAR".to_owned());
    cols.extend(STAGE_TAIL.map(|(name, ty)| format!("{name} {ty}")));
    format!(
        "CREATE OR REPLACE TEMP TABLE {} ({})",
        q(&staging_name(schema, spec.table.name)),
        cols.join(", ")
    )
}

fn eq_on(cols: &[&str], a: &str, b: &str) -> String {
    cols.iter()
        .map(|c| format!("{a}.{col} = {b}.{col}", col = q(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// ` AND a.c IS NOT DISTINCT FROM b.c` for every column `c` of the spec; with `b_is_table`,
/// `b` holds the table's types, whose JSON columns are compared as the staging table's text.
fn same_cells(spec: &TableSpec, a: &str, b: &str, b_is_table: bool) -> String {
    spec.columns
        .iter()
        .map(|c| {
            let col = q(c.name);
            if b_is_table && c.ty == ColumnType::Json {
                format!(" AND {a}.{col} IS NOT DISTINCT FROM CAST({b}.{col} AS VARCHAR)")
            } else {
                format!(" AND {a}.{col} IS NOT DISTINCT FROM {b}.{col}")
            }
        })
        .collect()
}

/// What a batch may change in the session besides the tables: the new-key filters, the
/// deferred merges and the batch counter.
struct Batch<'s> {
    fresh: &'s mut HashMap<(String, String), Option<NewKeys>>,
    deferred: &'s mut Vec<Deferred>,
    seq: &'s mut i64,
}

/// Merges `rows` into `schema.table`: each key's last version replaces the stored one, a stored
/// row identical to its new version stays as it is (with its `_synced_at` and `_load_id`), and
/// for child tables the rows of a group the batch brings and does not hold again are removed.
///
/// The rows are staged (a temporary table) and merged from there ([`merge_stage`]). With `known`
/// (the table was empty when the session first wrote to it, [`NewKeys`]), the rows whose group
/// keys the table cannot hold are appended to it as they are, and the others are staged but
/// their merge is deferred to the end of the group: the merge scans the table's keys, which in a
/// bulk load would be once per batch over an ever larger table for a few repeated keys and
/// filter false positives. Returns the rows written now and the bytes staged.
fn merge_table(
    conn: &Connection,
    schema: &str,
    spec: &TableSpec,
    batch: &mut Batch<'_>,
    rows: &[&Row],
    synced_at: chrono::DateTime<chrono::Utc>,
    load_id: &str,
) -> Result<(u64, u64)> {
    let table = spec.table.name;
    let ctx = format!("merging {schema}.{table}");
    let known = match batch.fresh.entry((schema.to_owned(), table.to_owned())) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => e.insert(new_keys_of(conn, schema, spec)?),
    };
    let mut rows = last_versions(spec, rows);
    let mut appended = 0;
    let defer = known.is_some();
    if let Some(known) = known {
        let hashes = group_key_hashes(spec, &rows);
        let (mut new, mut merge) = (Vec::new(), Vec::new());
        for (row, hash) in rows.iter().zip(&hashes) {
            if known.may_hold(*hash) {
                merge.push(*row);
            } else {
                new.push(*row);
            }
        }
        for hash in hashes {
            known.insert(hash);
        }
        if !new.is_empty() {
            let arrow = stage_batch(
                spec,
                &new,
                Tail::Table {
                    synced_at_micros: synced_at.timestamp_micros(),
                    load_id,
                },
            )
            .map_err(|e| DestinationError::query(ctx.clone(), e))?;
            let mut app = conn
                .appender_to_db(table, schema)
                .map_err(db_err(ctx.clone()))?;
            app.append_record_batch(arrow)
                .map_err(db_err(ctx.clone()))?;
            app.flush().map_err(db_err(ctx.clone()))?;
            appended = new.len() as u64;
        }
        if merge.is_empty() {
            return Ok((appended, 0));
        }
        rows = merge;
    }
    let waiting = batch
        .deferred
        .iter()
        .position(|d| d.schema == schema && d.spec.table == spec.table);
    if waiting.is_none() {
        conn.execute_batch(&create_stage(schema, spec))
            .map_err(db_err(ctx.clone()))?;
    }
    *batch.seq += 1;
    let staged = {
        let arrow = stage_batch(
            spec,
            &rows,
            Tail::Stage {
                seq: *batch.seq,
                synced_at_micros: synced_at.timestamp_micros(),
                load_id,
            },
        )
        .map_err(|e| DestinationError::query(ctx.clone(), e))?;
        let staged = arrow.get_array_memory_size() as u64;
        let mut app = conn
            .appender_to_catalog_and_db(&staging_name(schema, table), "temp", "main")
            .map_err(db_err(ctx.clone()))?;
        app.append_record_batch(arrow)
            .map_err(db_err(ctx.clone()))?;
        app.flush().map_err(db_err(ctx))?;
        staged
    };
    if !defer {
        return Ok((appended + merge_stage(conn, schema, spec)?, staged));
    }
    match waiting {
        Some(_) => fold_stage(conn, schema, spec, *batch.seq)?,
        None => batch.deferred.push(Deferred {
            schema: schema.to_owned(),
            spec: spec.clone(),
        }),
    }
    Ok((appended, staged))
}

/// Folds batch `seq`, just staged, into the deferred staging table of `schema.table`, which
/// holds one earlier version of some groups: the merge must end where merging each batch in turn
/// would have. A row identical to its earlier staged version keeps that version's `_synced_at`,
/// `_load_id` and `_first` (it did not change then); any other row of a group staged before is
/// not `_first` (a stored row identical to it was replaced in between, so it is written anew);
/// then the earlier versions of the batch's groups are dropped. The staging table is small (the
/// rows the new-key filter could not rule out), the table itself is not read.
fn fold_stage(conn: &Connection, schema: &str, spec: &TableSpec, seq: i64) -> Result<()> {
    let stage = q(&staging_name(schema, spec.table.name));
    let same = same_cells(spec, "n", "o", false);
    conn.execute_batch(&format!(
        "UPDATE {stage} SET _first = false
           WHERE _seq = {seq} AND EXISTS (
             SELECT 1 FROM {stage} o WHERE o._seq < {seq} AND {group_o});
         UPDATE {stage} SET _synced_at = o._synced_at, _load_id = o._load_id, _first = o._first
           FROM (SELECT n.rowid AS _row, o._synced_at, o._load_id, o._first
                 FROM {stage} n JOIN {stage} o ON {pk}
                 WHERE n._seq = {seq} AND o._seq < {seq}
                   AND n._raw IS NOT DISTINCT FROM o._raw{same}) o
           WHERE {stage}.rowid = o._row;
         DELETE FROM {stage} WHERE _seq < {seq} AND EXISTS (
           SELECT 1 FROM {stage} n WHERE n._seq = {seq} AND {group_n});",
        group_o = eq_on(spec.group_key(), "o", &stage),
        group_n = eq_on(spec.group_key(), "n", &stage),
        pk = eq_on(&spec.primary_key, "n", "o"),
    ))
    .map_err(db_err(format!("merging {schema}.{}", spec.table.name)))
}

/// Merges every deferred staging table ([`merge_table`]); returns the rows written.
fn merge_deferred(conn: &Connection, deferred: &mut Vec<Deferred>) -> Result<u64> {
    let mut written = 0;
    for d in deferred.drain(..) {
        written += merge_stage(conn, &d.schema, &d.spec)?;
    }
    Ok(written)
}

/// Merges the staging table of `schema.table` (one version of each group) into the table.
///
/// The target is scanned once, on its group-key columns only, for the rows the staged ones
/// touch; the touched rows are fetched by `rowid` into a small temporary table, so the comparison
/// of every column reads them and not the whole table. Returns the rows written.
fn merge_stage(conn: &Connection, schema: &str, spec: &TableSpec) -> Result<u64> {
    let table = spec.table.name;
    let ctx = format!("merging {schema}.{table}");
    let stage_name = staging_name(schema, table);
    let stage = q(&stage_name);
    let target = format!("{}.{}", q(schema), q(table));
    let cols: Vec<String> = spec.columns.iter().map(|c| q(c.name)).collect();
    let cols = cols.join(", ");
    let touched = q(&format!("{stage_name}__touched"));
    let n_touched = conn
        .execute(
            &format!(
                "CREATE OR REPLACE TEMP TABLE {touched} AS
                 SELECT rowid AS _row, {cols}, CAST(_raw AS VARCHAR) AS _raw, _deleted_at
                 FROM {target} WHERE rowid IN (
                     SELECT t.rowid FROM {target} t WHERE EXISTS (SELECT 1 FROM {stage} s WHERE {group}))",
                group = eq_on(spec.group_key(), "s", "t"),
            ),
            [],
        )
        .map_err(db_err(ctx.clone()))?;
    if n_touched > 0 {
        let same = same_cells(spec, &stage, "x", true);
        conn.execute_batch(&format!(
            "UPDATE {stage} SET _same = true FROM {touched} x
               WHERE {pk_stage} AND {stage}._first AND x._deleted_at IS NULL AND {stage}._raw = x._raw{same};
             DELETE FROM {target} WHERE rowid IN (
               SELECT x._row FROM {touched} x
               WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE s._same AND {pk_eq}));",
            pk_stage = eq_on(&spec.primary_key, &stage, "x"),
            pk_eq = eq_on(&spec.primary_key, "s", "x"),
        ))
        .map_err(db_err(ctx.clone()))?;
    }
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {touched}"))
        .map_err(db_err(ctx.clone()))?;
    let insert = format!(
        "INSERT INTO {target} ({cols}, _raw, _synced_at, _load_id, _deleted_at)
         SELECT {cols}, CAST(_raw AS JSON), _synced_at, _load_id, NULL FROM {stage} WHERE _same IS NOT TRUE",
    );
    let written = conn.execute(&insert, []).map_err(db_err(ctx))?;
    Ok(written as u64)
}

/// What the session knows of the keys of `schema.table` when it first writes to it: an empty
/// [`NewKeys`] when the table holds no row and its columns are in the order of a batch built for
/// it ([`Tail::Table`]), `None` otherwise.
fn new_keys_of(conn: &Connection, schema: &str, spec: &TableSpec) -> Result<Option<NewKeys>> {
    let table = spec.table.name;
    let ctx = format!("reading {schema}.{table}");
    let rows: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM {}.{}", q(schema), q(table)),
            [],
            |r| r.get(0),
        )
        .map_err(db_err(ctx.clone()))?;
    if rows > 0 {
        return Ok(None);
    }
    // A table created by an older version has the columns added since at its end.
    let mut stmt = conn
        .prepare(
            "SELECT column_name FROM information_schema.columns
             WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        )
        .map_err(db_err(ctx.clone()))?;
    let columns: Vec<String> = stmt
        .query_map(params![schema, table], |r| r.get::<_, String>(0))
        .map_err(db_err(ctx.clone()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(db_err(ctx))?;
    let expected = spec
        .columns
        .iter()
        .map(|c| c.name)
        .chain(crate::sql::bookkeeping_columns());
    Ok(columns
        .iter()
        .map(String::as_str)
        .eq(expected)
        .then(NewKeys::new))
}

fn erase(
    conn: &Connection,
    c: &Commit,
    schema: &str,
    spec: &TableSpec,
    e: &Erasure,
) -> Result<u64> {
    let (column, value, at) = (e.column, &e.value, c.synced_at);
    let target = format!("{}.{}", q(schema), q(spec.table.name));
    let ctx = format!("erasing from {schema}.{}", spec.table.name);
    let ty = spec.column(column).map_or(ColumnType::Text, |c| c.ty);
    let v = to_value(value, ty);
    let mode = if spec.table.model {
        EraseMode::Delete
    } else {
        e.mode
    };
    // Model tables hold every source's rows: erase only this source's.
    let scope = if spec.table.model && spec.column("source").is_some() {
        format!(" AND source = {}", crate::quote_literal(&c.source))
    } else {
        String::new()
    };
    let n = match mode {
        EraseMode::Delete => conn.execute(
            &format!("DELETE FROM {target} WHERE {} = ?{scope}", q(column)),
            params![v],
        ),
        EraseMode::Keep => conn.execute(
            &format!(
                "UPDATE {target} SET _deleted_at = coalesce(_deleted_at, ?) WHERE {} = ?{scope}",
                q(column)
            ),
            params![naive_micros(at), v],
        ),
        EraseMode::Redact => {
            let mut sets = vec![
                "_deleted_at = coalesce(_deleted_at, ?)".to_owned(),
                "_raw = NULL".to_owned(),
            ];
            sets.extend(
                spec.columns
                    .iter()
                    .filter(|c| c.personal)
                    .map(|c| format!("{} = NULL", q(c.name))),
            );
            conn.execute(
                &format!(
                    "UPDATE {target} SET {} WHERE {} = ?{scope}",
                    sets.join(", "),
                    q(column)
                ),
                params![naive_micros(at), v],
            )
        }
    }
    .map_err(db_err(ctx))?;
    Ok(n as u64)
}

/// Writes one commit; returns its stats and the bytes it staged.
fn apply_commit(
    conn: &Connection,
    specs: &HashMap<(String, String), TableSpec>,
    batch: &mut Batch<'_>,
    c: &Commit,
) -> Result<(CommitStats, u64)> {
    let mut stats = CommitStats::default();
    let mut staged = 0;
    // Group rows per table, keeping arrival order.
    let mut order: Vec<TableRef> = Vec::new();
    let mut groups: HashMap<TableRef, Vec<&Row>> = HashMap::new();
    for row in &c.rows {
        groups
            .entry(row.table)
            .or_insert_with(|| {
                order.push(row.table);
                Vec::new()
            })
            .push(row);
    }
    let spec_of = |t: &TableRef| {
        let schema = t.schema(&c.source).to_owned();
        specs
            .get(&(schema.clone(), t.name.to_owned()))
            .map(|s| (schema, s))
            .ok_or_else(|| {
                DestinationError::query(
                    format!("writing {}.{}", t.schema(&c.source), t.name),
                    "table was not prepared",
                )
            })
    };
    for t in &order {
        let (schema, spec) = spec_of(t)?;
        let (written, bytes) = merge_table(
            conn,
            &schema,
            spec,
            batch,
            &groups[t],
            c.synced_at,
            &c.load_id,
        )?;
        stats.rows_written += written;
        staged += bytes;
    }
    if !c.erasures.is_empty() {
        // An erasure must find every row written before it.
        stats.rows_written += merge_deferred(conn, batch.deferred)?;
    }
    for e in &c.erasures {
        let (schema, spec) = spec_of(&e.table)?;
        stats.rows_erased += erase(conn, c, &schema, spec, e)?;
    }
    if !c.quarantine.is_empty() {
        let mut stmt = conn
            .prepare("INSERT INTO talkhouse.quarantine VALUES (?, ?, ?, ?, ?, ?, ?)")
            .map_err(db_err("writing quarantine"))?;
        for qr in &c.quarantine {
            let payload = truncate_payload(&qr.payload);
            stmt.execute(params![
                c.source,
                c.stream,
                qr.location,
                qr.error,
                payload,
                c.load_id,
                naive_micros(c.synced_at)
            ])
            .map_err(db_err("writing quarantine"))?;
        }
    }
    if let Some(state) = &c.state {
        conn.execute(
            "DELETE FROM talkhouse.state WHERE source = ? AND stream = ?",
            params![c.source, c.stream],
        )
        .map_err(db_err("writing state"))?;
        conn.execute(
            "INSERT INTO talkhouse.state VALUES (?, ?, ?, ?)",
            params![
                c.source,
                c.stream,
                state.to_string(),
                naive_micros(c.synced_at)
            ],
        )
        .map_err(db_err("writing state"))?;
    }
    Ok((stats, staged))
}

/// Frees a written batch on a thread of its own: a batch is hundreds of thousands of small
/// allocations, and the DuckDB connection has the next batch to write.
fn drop_elsewhere(commit: Commit) {
    let spawned = std::thread::Builder::new()
        .name("talkhouse-free".into())
        .spawn(move || drop(commit));
    // Without a thread (resources exhausted) the batch was moved in and is freed with the error.
    drop(spawned);
}

fn run_query(conn: &Connection, sql: &str) -> Result<QueryRows> {
    let ctx = "query";
    let mut stmt = conn.prepare(sql).map_err(db_err(ctx))?;
    let mut rows = stmt.query([]).map_err(db_err(ctx))?;
    let mut out = Vec::new();
    let mut names: Option<Vec<String>> = None;
    while let Some(row) = rows.next().map_err(db_err(ctx))? {
        let names = names.get_or_insert_with(|| row.as_ref().column_names());
        let mut obj = serde_json::Map::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let v = row.get_ref(i).map_err(db_err(ctx))?;
            obj.insert(name.clone(), to_json(v));
        }
        out.push(obj);
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Destination for DuckDbDestination {
    fn describe(&self) -> String {
        format!("duckdb:{}", self.target)
    }

    async fn init(&self) -> Result<()> {
        self.blocking(|conn, _| {
            conn.execute_batch(&bookkeeping_ddl(sql_type, false))
                .map_err(db_err("creating schema talkhouse"))
        })
        .await
    }

    async fn prepare(&self, source: &str, tables: &[TableSpec]) -> Result<()> {
        let source = source.to_owned();
        let tables = tables.to_vec();
        self.blocking(move |conn, specs| {
            for spec in tables {
                let schema = spec.table.schema(&source).to_owned();
                prepare_table(conn, &schema, &spec)?;
                specs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert((schema, spec.table.name.to_owned()), spec);
            }
            Ok(())
        })
        .await
    }

    async fn read_state(&self, source: &str, stream: &str) -> Result<Option<serde_json::Value>> {
        let (source, stream) = (source.to_owned(), stream.to_owned());
        self.blocking(move |conn, _| {
            let mut stmt = conn
                .prepare("SELECT CAST(cursor AS VARCHAR) FROM talkhouse.state WHERE source = ? AND stream = ?")
                .map_err(db_err("reading state"))?;
            let mut rows = stmt.query(params![source, stream]).map_err(db_err("reading state"))?;
            let Some(row) = rows.next().map_err(db_err("reading state"))? else { return Ok(None) };
            let text: Option<String> = row.get(0).map_err(db_err("reading state"))?;
            Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
        })
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<CommitStats> {
        self.with_session(move |session, specs| {
            let specs = specs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let stats = session.commit(&specs, &commit)?;
            drop_elsewhere(commit);
            Ok(stats)
        })
        .await
    }

    async fn record_load(&self, load: &LoadRecord) -> Result<()> {
        let l = load.clone();
        self.blocking(move |conn, _| {
            let tx = conn.transaction().map_err(db_err("recording the load"))?;
            tx.execute(
                "DELETE FROM talkhouse.loads WHERE load_id = ? AND stream = ?",
                params![l.load_id, l.stream],
            )
            .map_err(db_err("recording the load"))?;
            let names: Vec<String> = LOADS.iter().map(|c| q(c.name)).collect();
            let values: Vec<Value> = LOADS
                .iter()
                .zip(l.cells())
                .map(|(c, cell)| to_value(&cell, c.ty))
                .collect();
            tx.execute(
                &format!(
                    "INSERT INTO talkhouse.loads ({}) VALUES ({})",
                    names.join(", "),
                    vec!["?"; names.len()].join(", ")
                ),
                duckdb::params_from_iter(values),
            )
            .map_err(db_err("recording the load"))?;
            tx.commit().map_err(db_err("recording the load"))
        })
        .await
    }

    async fn query(&self, sql: &str) -> Result<QueryRows> {
        let sql = sql.to_owned();
        self.blocking(move |conn, _| run_query(conn, &sql)).await
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        let sql = sql.to_owned();
        self.blocking(move |conn, _| {
            if sql.contains(&format!("{MODEL_SCHEMA}.")) {
                conn.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {MODEL_SCHEMA}"))
                    .map_err(db_err("creating schema"))?;
            }
            conn.execute_batch(&sql).map_err(db_err("executing DDL"))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use talkhouse_model::{Cell, Column, ColumnType as T};

    #[test]
    fn sizes_read_back_from_duckdb_are_understood() {
        assert_eq!(human_bytes("286.1 MiB"), Some(299_997_593));
        assert_eq!(human_bytes("1.5 GB"), Some(1_500_000_000));
        assert_eq!(human_bytes("1000 bytes"), Some(1000));
        assert_eq!(human_bytes("512MiB"), Some(512 << 20));
        assert_eq!(human_bytes("lots"), None);
    }

    #[test]
    fn the_default_memory_limit_is_a_quarter_of_the_machine_at_most_512_mib() {
        let limit = default_memory_limit();
        let bytes = human_bytes(&limit).expect("a size");
        assert!(
            (MIN_MEMORY_LIMIT..=DEFAULT_MEMORY_LIMIT_CAP).contains(&bytes),
            "{limit}"
        );
    }

    #[tokio::test]
    async fn without_a_setting_duckdb_gets_the_default_limit_and_a_tiny_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.duckdb");
        let dest = DuckDbDestination::open(&path).expect("open");
        let shown = dest
            .query("SELECT current_setting('memory_limit') AS m")
            .await
            .expect("query");
        let bytes = shown[0]["m"]
            .as_str()
            .and_then(human_bytes)
            .expect("a size");
        let want = human_bytes(&default_memory_limit()).expect("a size");
        // DuckDB rounds what it shows to a tenth of the unit.
        assert!(bytes.abs_diff(want) < want / 100, "{bytes} vs {want}");
        drop(dest);
        let tiny = DuckDbOptions {
            memory_limit: Some("10MB".into()),
            ..DuckDbOptions::default()
        };
        let text = DuckDbDestination::open_with(&path, &tiny)
            .expect_err("refused")
            .to_string();
        assert!(
            text.contains("too small") && text.contains("64MiB"),
            "{text}"
        );
    }

    /// Into a table that was empty, new keys are appended to it without the staging table; a
    /// repeated key, and every row once another statement ran, goes through the merge.
    #[tokio::test]
    async fn new_keys_into_an_empty_table_skip_the_staging_table() {
        const ITEM: TableRef = TableRef::source("item");
        let dest = DuckDbDestination::in_memory().expect("duckdb");
        dest.init().await.expect("init");
        let spec = TableSpec::new(
            ITEM,
            vec![Column::new("id", T::Text), Column::new("v", T::Integer)],
            &["id"],
        );
        dest.prepare("m", &[spec]).await.expect("prepare");
        let commit = |ids: &[(&str, i64)]| Commit {
            source: "m".into(),
            stream: "s".into(),
            load_id: "l".into(),
            synced_at: chrono::Utc::now(),
            rows: ids
                .iter()
                .map(|(id, v)| Row::new(ITEM).set("id", *id).set("v", *v))
                .collect(),
            erasures: vec![],
            quarantine: vec![],
            state: None,
            more_follows: true,
        };
        let staged = || async {
            let n = dest
                .query(&format!(
                    "SELECT count(*) AS n FROM temp.main.{}",
                    q(&staging_name("m", "item"))
                ))
                .await
                .expect("stage");
            n[0]["n"].as_i64().expect("count")
        };
        let specs = dest.specs.lock().expect("specs").clone();
        {
            let mut session = dest.session.lock().expect("session");
            session
                .commit(&specs, &commit(&[("a", 1), ("b", 1)]))
                .expect("commit");
            session
                .commit(&specs, &commit(&[("a", 2), ("c", 1)]))
                .expect("commit");
            session.settle().expect("settle");
        }
        assert_eq!(staged().await, 1, "only the repeated key a was staged");
        // The query above may have written anything: from now on every row is merged.
        dest.commit(commit(&[("d", 1), ("e", 1)]))
            .await
            .expect("commit");
        assert_eq!(staged().await, 2);
        let rows = dest
            .query("SELECT id, v FROM m.item ORDER BY id")
            .await
            .expect("rows");
        let rows: Vec<(String, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap_or("").to_owned(),
                    r["v"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        let want =
            [("a", 2), ("b", 1), ("c", 1), ("d", 1), ("e", 1)].map(|(id, v)| (id.to_owned(), v));
        assert_eq!(rows, want);
    }

    /// Into a table filled from empty, the rows of keys written before are merged once, at the
    /// end of the group: a group's last version wins (a child list that shrank leaves nothing
    /// behind) with its own batch's `_synced_at`, and an erasure sees what came before it.
    #[tokio::test]
    async fn repeated_keys_of_a_bulk_load_are_merged_once_at_the_end_of_the_group() {
        const ITEM: TableRef = TableRef::source("item");
        const PART: TableRef = TableRef::source("part");
        let dest = DuckDbDestination::in_memory().expect("duckdb");
        dest.init().await.expect("init");
        let item = TableSpec::new(
            ITEM,
            vec![Column::new("id", T::Text), Column::new("v", T::Integer)],
            &["id"],
        );
        let part = TableSpec::new(
            PART,
            vec![
                Column::new("item_id", T::Text),
                Column::new("pos", T::Integer),
                Column::new("v", T::Integer),
            ],
            &["item_id", "pos"],
        )
        .child_of(&["item_id"]);
        dest.prepare("m", &[item, part]).await.expect("prepare");
        let specs = dest.specs.lock().expect("specs").clone();
        let base = chrono::Utc::now();
        // Item `id` at version `v` with `parts` child rows, in commit `n`.
        let commit = |n: i64, items: &[(&str, i64, i64)], erase: Option<&str>| Commit {
            source: "m".into(),
            stream: "s".into(),
            load_id: format!("l{n}"),
            synced_at: base + chrono::Duration::seconds(n),
            rows: items
                .iter()
                .flat_map(|(id, v, parts)| {
                    std::iter::once(Row::new(ITEM).set("id", *id).set("v", *v)).chain(
                        (0..*parts).map(move |pos| {
                            Row::new(PART)
                                .set("item_id", *id)
                                .set("pos", pos)
                                .set("v", *v)
                        }),
                    )
                })
                .collect(),
            erasures: erase
                .map(|id| Erasure {
                    table: ITEM,
                    column: "id",
                    value: Cell::Text(id.into()),
                    mode: EraseMode::Delete,
                })
                .into_iter()
                .collect(),
            quarantine: vec![],
            state: None,
            more_follows: true,
        };
        let mut session = dest.session.lock().expect("session");
        let count = |session: &Session, sql: &str| -> i64 {
            session
                .conn
                .query_row(sql, [], |r| r.get(0))
                .expect("count")
        };
        let mut written = 0;
        for c in [
            commit(
                1,
                &[("a", 1, 3), ("c", 1, 0), ("e", 1, 0), ("f", 1, 0)],
                None,
            ),
            commit(2, &[("a", 2, 2), ("e", 2, 0), ("f", 2, 0)], None),
            // e back as it was stored: still written anew, as v2 replaced it in between; f
            // unchanged since commit 2: written as commit 2 wrote it.
            commit(
                3,
                &[("a", 3, 1), ("b", 1, 2), ("e", 1, 0), ("f", 2, 0)],
                None,
            ),
        ] {
            written += session.commit(&specs, &c).expect("commit").rows_written;
        }
        assert_eq!(
            count(
                &session,
                "SELECT sum(v) FROM m.item WHERE id IN ('a', 'e', 'f')"
            ),
            3,
            "later versions wait in the staging table"
        );
        let stage = q(&staging_name("m", "item"));
        assert_eq!(
            count(&session, &format!("SELECT count(*) FROM temp.main.{stage}")),
            3,
            "one version of each key waits"
        );
        // `c` again, and erased in the same commit.
        let c = commit(4, &[("c", 2, 0)], Some("c"));
        written += session.commit(&specs, &c).expect("commit").rows_written;
        let mut last = commit(5, &[("d", 1, 0)], None);
        last.more_follows = false;
        written += session.commit(&specs, &last).expect("commit").rows_written;
        assert!(session.group.is_none() && session.deferred.is_empty());
        let rows = |sql: &str| -> Vec<String> {
            let mut stmt = session.conn.prepare(sql).expect("prepare");
            stmt.query_map([], |r| r.get::<_, String>(0))
                .expect("query")
                .collect::<std::result::Result<_, _>>()
                .expect("rows")
        };
        assert_eq!(
            rows("SELECT concat(id, v, _load_id) FROM m.item ORDER BY id"),
            ["a3l3", "b1l3", "d1l5", "e1l3", "f2l2"],
            "c erased after its second version was merged"
        );
        assert_eq!(
            rows("SELECT concat(item_id, pos, v) FROM m.part ORDER BY item_id, pos"),
            ["a03", "b01", "b11"],
            "a's list shrank to one"
        );
        let synced: i64 = session
            .conn
            .query_row(
                "SELECT epoch_us(_synced_at) FROM m.item WHERE id = 'a'",
                [],
                |r| r.get(0),
            )
            .expect("synced");
        assert_eq!(
            synced,
            (base + chrono::Duration::seconds(3)).timestamp_micros()
        );
        // Commit 1: a, its 3 parts, c, e and f; 3: b and its 2 parts; 4, merging before the
        // erasure: the last versions of a, c, e and f and a's one part; 5: d.
        assert_eq!(written, 7 + 3 + 5 + 1);
    }

    #[tokio::test]
    async fn a_group_is_made_durable_once_its_staging_tables_hold_half_the_memory_limit() {
        const ITEM: TableRef = TableRef::source("item");
        let dir = tempfile::tempdir().expect("tempdir");
        let options = DuckDbOptions {
            memory_limit: Some("64MiB".into()),
            ..DuckDbOptions::default()
        };
        let dest =
            DuckDbDestination::open_with(&dir.path().join("w.duckdb"), &options).expect("open");
        dest.init().await.expect("init");
        let spec = TableSpec::new(
            ITEM,
            vec![Column::new("id", T::Text), Column::new("body", T::Text)],
            &["id"],
        );
        dest.prepare("m", &[spec]).await.expect("prepare");
        let specs = dest.specs.lock().expect("specs").clone();
        let commit = |first: usize, rows: usize, body: usize| Commit {
            source: "m".into(),
            stream: "s".into(),
            load_id: "l".into(),
            synced_at: chrono::Utc::now(),
            rows: (first..first + rows)
                .map(|i| {
                    Row::new(ITEM)
                        .set("id", i.to_string())
                        .set("body", "x".repeat(body))
                })
                .collect(),
            erasures: vec![],
            quarantine: vec![],
            state: None,
            more_follows: true,
        };
        let mut session = dest.session.lock().expect("session");
        assert_eq!(
            session.stage_budget,
            Some(32 << 20),
            "half the memory limit"
        );
        // A smaller budget, so a few rows cross it.
        session.stage_budget = Some(1 << 20);
        // Through the staging table, as into a table that held rows (new keys into an empty
        // table are appended without it).
        session.fresh.insert(("m".into(), "item".into()), None);
        session.commit(&specs, &commit(0, 10, 10)).expect("commit");
        assert!(session.group.is_some(), "a small batch waits for more");
        // 4 MiB staged: over the budget.
        session
            .commit(&specs, &commit(10, 4, 1 << 20))
            .expect("commit");
        assert!(
            session.group.is_none(),
            "the group was made durable once its staging reached the budget"
        );
        let n: i64 = session
            .conn
            .query_row("SELECT count(*) FROM m.item", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 14);
    }

    #[tokio::test]
    async fn commits_write_on_write_threads_and_queries_get_them_all_back() {
        const ITEM: TableRef = TableRef::source("item");
        let dir = tempfile::tempdir().expect("tempdir");
        let options = DuckDbOptions {
            write_threads: Some(1),
            ..DuckDbOptions::default()
        };
        let dest =
            DuckDbDestination::open_with(&dir.path().join("w.duckdb"), &options).expect("open");
        dest.init().await.expect("init");
        let spec = TableSpec::new(ITEM, vec![Column::new("id", T::Text)], &["id"]);
        dest.prepare("m", &[spec]).await.expect("prepare");
        let all = {
            let session = dest.session.lock().expect("session");
            current_threads(&session.conn).expect("threads")
        };
        assert!(all >= 1);
        {
            let specs = dest.specs.lock().expect("specs").clone();
            let mut session = dest.session.lock().expect("session");
            let commit = Commit {
                source: "m".into(),
                stream: "s".into(),
                load_id: "l".into(),
                synced_at: chrono::Utc::now(),
                rows: vec![Row::new(ITEM).set("id", "a")],
                erasures: vec![],
                quarantine: vec![],
                state: None,
                // The group stays open, so the setting it wrote with is still there to read.
                more_follows: true,
            };
            session.commit(&specs, &commit).expect("commit");
            assert_eq!(
                current_threads(&session.conn).expect("threads"),
                1,
                "a commit writes on write_threads"
            );
        }
        let rows = dest
            .query("SELECT current_setting('threads')::BIGINT AS t, (SELECT count(*) FROM m.item) AS n")
            .await
            .expect("query");
        assert_eq!(
            rows[0]["t"],
            serde_json::json!(all),
            "a query gets every thread back"
        );
        assert_eq!(rows[0]["n"], serde_json::json!(1));
    }
}
