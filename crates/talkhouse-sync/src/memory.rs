//! An in-memory destination with the merge semantics of the real ones, for tests.
//!
//! * rows merge by primary key; a row whose `_raw` (or, for model rows, cells) is unchanged is
//!   not rewritten (its `_synced_at` and `_load_id` stay);
//! * child tables: rows of a parent in a batch replace every earlier row of that parent;
//! * erasures redact, delete or mark rows (model tables always delete);
//! * rows, erasures, quarantine and the cursor of one commit land together or not at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use talkhouse_model::{
    Cell, Commit, CommitStats, Destination, DestinationError, EraseMode, LoadRecord, Quarantined,
    QueryRows, TableRef, TableSpec,
};

/// One stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// Column values (unset columns absent).
    pub cells: BTreeMap<String, Cell>,
    /// `_raw`.
    pub raw: Option<String>,
    /// `_synced_at`.
    pub synced_at: DateTime<Utc>,
    /// `_load_id`.
    pub load_id: String,
    /// `_deleted_at`.
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Table {
    spec: Option<TableSpec>,
    rows: BTreeMap<Vec<String>, StoredRow>,
}

#[derive(Debug, Default)]
struct Inner {
    tables: HashMap<(String, String), Table>,
    state: HashMap<(String, String), serde_json::Value>,
    quarantine: Vec<(String, String, Quarantined)>,
    loads: Vec<LoadRecord>,
    commits: u64,
}

/// The in-memory destination.
#[derive(Debug)]
pub struct MemoryDestination {
    inner: Mutex<Inner>,
    fail_after: AtomicI64,
}

impl Default for MemoryDestination {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            fail_after: AtomicI64::new(-1),
        }
    }
}

/// A row as [`MemoryDestination::snapshot`] shows it: cells, `_raw`, and whether it is deleted.
pub type SnapshotRow = (BTreeMap<String, Cell>, Option<String>, bool);

type Incoming = BTreeMap<Vec<String>, (BTreeMap<String, Cell>, Option<String>)>;

fn key_of(cells: &BTreeMap<String, Cell>, cols: &[&'static str]) -> Vec<String> {
    cols.iter()
        .map(|c| {
            cells
                .get(*c)
                .map_or_else(|| "∅".to_owned(), |v| v.to_json().to_string())
        })
        .collect()
}

impl MemoryDestination {
    /// An empty destination.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `f` of the rows of `schema.table`, read under the lock without copying them; `None`
    /// when there is no such table.
    fn with_rows<T>(
        &self,
        schema: &str,
        table: &str,
        f: impl FnOnce(&BTreeMap<Vec<String>, StoredRow>) -> T,
    ) -> Option<T> {
        self.lock()
            .tables
            .get(&(schema.to_owned(), table.to_owned()))
            .map(|t| f(&t.rows))
    }

    /// Makes every commit after the next `n` fail (a crash between batches).
    pub fn fail_commits_after(&self, n: i64) {
        self.fail_after.store(n, Ordering::SeqCst);
    }

    /// Lets commits succeed again.
    pub fn heal(&self) {
        self.fail_after.store(-1, Ordering::SeqCst);
    }

    /// Rows in `schema.table`, deleted ones included.
    pub fn rows(&self, schema: &str, table: &str) -> Vec<StoredRow> {
        self.with_rows(schema, table, |rows| rows.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of rows in `schema.table` without `_deleted_at`.
    pub fn count(&self, schema: &str, table: &str) -> usize {
        self.with_rows(schema, table, |rows| {
            rows.values().filter(|r| r.deleted_at.is_none()).count()
        })
        .unwrap_or(0)
    }

    /// Number of rows in `schema.table`, deleted ones included.
    pub fn count_all(&self, schema: &str, table: &str) -> usize {
        self.with_rows(schema, table, BTreeMap::len).unwrap_or(0)
    }

    /// The tables that hold rows, as `schema.table`.
    pub fn tables(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lock()
            .tables
            .keys()
            .map(|(s, t)| format!("{s}.{t}"))
            .collect();
        v.sort();
        v
    }

    /// A stream's committed cursor.
    pub fn state(&self, source: &str, stream: &str) -> Option<serde_json::Value> {
        self.lock()
            .state
            .get(&(source.to_owned(), stream.to_owned()))
            .cloned()
    }

    /// Quarantined records as `(source, stream, record)`.
    pub fn quarantine(&self) -> Vec<(String, String, Quarantined)> {
        self.lock().quarantine.clone()
    }

    /// Rows of `talkhouse.loads`.
    pub fn loads(&self) -> Vec<LoadRecord> {
        self.lock().loads.clone()
    }

    /// Commits that succeeded.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// Everything but bookkeeping (`_synced_at`, `_load_id`), for comparing two runs:
    /// `schema.table` → rows as (cells, `_raw`, deleted).
    pub fn snapshot(&self) -> BTreeMap<String, Vec<SnapshotRow>> {
        let inner = self.lock();
        let mut out = BTreeMap::new();
        for ((s, t), table) in &inner.tables {
            let rows = table
                .rows
                .values()
                .map(|r| (r.cells.clone(), r.raw.clone(), r.deleted_at.is_some()))
                .collect();
            out.insert(format!("{s}.{t}"), rows);
        }
        out
    }
}

fn apply(inner: &mut Inner, c: Commit) -> CommitStats {
    let mut stats = CommitStats::default();
    // Group rows per table, last version of a key wins.
    let mut by_table: BTreeMap<TableRef, Vec<BTreeMap<String, Cell>>> = BTreeMap::new();
    let mut raws: BTreeMap<TableRef, Vec<Option<String>>> = BTreeMap::new();
    for row in c.rows {
        let cells: BTreeMap<String, Cell> = row
            .cells
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        by_table.entry(row.table).or_default().push(cells);
        raws.entry(row.table).or_default().push(row.raw);
    }
    for (table_ref, rows) in by_table {
        let schema = table_ref.schema(&c.source).to_owned();
        let table = inner
            .tables
            .entry((schema, table_ref.name.to_owned()))
            .or_default();
        let Some(spec) = table.spec.clone() else {
            continue;
        };
        let raws = raws.remove(&table_ref).unwrap_or_default();
        let mut incoming: Incoming = BTreeMap::new();
        for (cells, raw) in rows.into_iter().zip(raws) {
            incoming.insert(key_of(&cells, &spec.primary_key), (cells, raw));
        }
        // Drop earlier rows of these groups that are absent or changed.
        let changed = |r: &StoredRow, (cells, raw): &(BTreeMap<String, Cell>, Option<String>)| {
            *cells != r.cells || *raw != r.raw || r.deleted_at.is_some()
        };
        let stale: Vec<Vec<String>> = if spec.group_key() == spec.primary_key.as_slice() {
            // A group is one key: only the incoming keys' rows can be stale. (Looking them up
            // keeps a commit's cost to its own rows; serve's benchmark commits thousands of
            // small batches into one table.)
            incoming
                .iter()
                .filter(|(k, new)| table.rows.get(*k).is_some_and(|r| changed(r, new)))
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            let groups: std::collections::BTreeSet<Vec<String>> = incoming
                .values()
                .map(|(cells, _)| key_of(cells, spec.group_key()))
                .collect();
            table
                .rows
                .iter()
                .filter(|(k, r)| {
                    groups.contains(&key_of(&r.cells, spec.group_key()))
                        && incoming.get(*k).is_none_or(|new| changed(r, new))
                })
                .map(|(k, _)| k.clone())
                .collect()
        };
        for k in stale {
            table.rows.remove(&k);
        }
        for (k, (cells, raw)) in incoming {
            if let std::collections::btree_map::Entry::Vacant(slot) = table.rows.entry(k) {
                stats.rows_written += 1;
                slot.insert(StoredRow {
                    cells,
                    raw,
                    synced_at: c.synced_at,
                    load_id: c.load_id.clone(),
                    deleted_at: None,
                });
            }
        }
    }
    for e in c.erasures {
        let schema = e.table.schema(&c.source).to_owned();
        let Some(table) = inner.tables.get_mut(&(schema, e.table.name.to_owned())) else {
            continue;
        };
        let personal: Vec<&'static str> = table
            .spec
            .as_ref()
            .map(|s| {
                s.columns
                    .iter()
                    .filter(|c| c.personal)
                    .map(|c| c.name)
                    .collect()
            })
            .unwrap_or_default();
        let mode = if e.table.model {
            EraseMode::Delete
        } else {
            e.mode
        };
        let hits: Vec<Vec<String>> = table
            .rows
            .iter()
            // Model tables hold every source's rows: erase only this source's.
            .filter(|(_, r)| {
                r.cells.get(e.column) == Some(&e.value)
                    && (!e.table.model
                        || r.cells.get("source").and_then(Cell::as_str) == Some(&c.source))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in hits {
            stats.rows_erased += 1;
            match mode {
                EraseMode::Delete => {
                    table.rows.remove(&k);
                }
                EraseMode::Keep | EraseMode::Redact => {
                    if let Some(r) = table.rows.get_mut(&k) {
                        if r.deleted_at.is_none() {
                            r.deleted_at = Some(c.synced_at);
                        }
                        if mode == EraseMode::Redact {
                            for p in &personal {
                                r.cells.remove(*p);
                            }
                            r.raw = None;
                        }
                    }
                }
            }
        }
    }
    for q in c.quarantine {
        inner
            .quarantine
            .push((c.source.clone(), c.stream.clone(), q));
    }
    if let Some(s) = c.state {
        inner.state.insert((c.source, c.stream), s);
    }
    inner.commits += 1;
    stats
}

#[async_trait::async_trait]
impl Destination for MemoryDestination {
    fn describe(&self) -> String {
        "memory".into()
    }

    async fn init(&self) -> Result<(), DestinationError> {
        Ok(())
    }

    async fn prepare(&self, source: &str, tables: &[TableSpec]) -> Result<(), DestinationError> {
        let mut inner = self.lock();
        for spec in tables {
            let key = (
                spec.table.schema(source).to_owned(),
                spec.table.name.to_owned(),
            );
            inner.tables.entry(key).or_default().spec = Some(spec.clone());
        }
        Ok(())
    }

    async fn read_state(
        &self,
        source: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, DestinationError> {
        Ok(self.state(source, stream))
    }

    async fn commit(&self, commit: Commit) -> Result<CommitStats, DestinationError> {
        let left = self.fail_after.load(Ordering::SeqCst);
        if left == 0 {
            return Err(DestinationError::Injected(format!(
                "commit of {}.{} refused",
                commit.source, commit.stream
            )));
        }
        if left > 0 {
            self.fail_after.fetch_sub(1, Ordering::SeqCst);
        }
        let mut inner = self.lock();
        for row in &commit.rows {
            let key = (
                row.table.schema(&commit.source).to_owned(),
                row.table.name.to_owned(),
            );
            if inner.tables.get(&key).is_none_or(|t| t.spec.is_none()) {
                return Err(DestinationError::query(
                    format!("writing {}.{}", key.0, key.1),
                    "table was not declared by the source's tables()",
                ));
            }
        }
        Ok(apply(&mut inner, commit))
    }

    async fn record_load(&self, load: &LoadRecord) -> Result<(), DestinationError> {
        let mut inner = self.lock();
        if let Some(l) = inner
            .loads
            .iter_mut()
            .find(|l| l.load_id == load.load_id && l.stream == load.stream)
        {
            *l = load.clone();
        } else {
            inner.loads.push(load.clone());
        }
        Ok(())
    }

    async fn query(&self, _sql: &str) -> Result<QueryRows, DestinationError> {
        Err(DestinationError::query(
            "query",
            "the memory destination does not run SQL",
        ))
    }

    async fn execute(&self, _sql: &str) -> Result<(), DestinationError> {
        Ok(())
    }

    async fn ping(&self) -> Result<(), DestinationError> {
        Ok(())
    }
}
