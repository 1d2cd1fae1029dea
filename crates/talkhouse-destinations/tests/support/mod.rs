//! What the destination tests share: the in-memory destination as the reference, rows in a
//! comparable form, a destination that fails after N commits, and a small people/notes model.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use talkhouse_model::{
    Cell, Column, ColumnType, Commit, CommitStats, Destination, DestinationError, Erasure,
    LoadRecord, QueryRows, Row, TableRef, TableSpec, model,
};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::{BatchConfig, SyncOptions};

/// A source name no other test (or earlier run) uses.
pub fn fresh(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn opts(rows: usize) -> SyncOptions {
    SyncOptions {
        batch: BatchConfig {
            max_rows: rows,
            ..BatchConfig::default()
        },
        ..SyncOptions::default()
    }
}

/// JSON with object keys sorted, so equal documents print equally.
pub fn canon(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, canon(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
        other => other.clone(),
    }
}

/// A row as comparable text: non-null columns, `_raw` as JSON, whether it is marked deleted.
pub fn row_text(cols: BTreeMap<String, Value>, raw: Value, deleted: bool) -> String {
    let mut obj: BTreeMap<String, Value> = cols.into_iter().filter(|(_, v)| !v.is_null()).collect();
    obj.insert("_raw".into(), raw);
    obj.insert("_deleted".into(), Value::Bool(deleted));
    canon(&serde_json::to_value(obj).unwrap()).to_string()
}

/// A cell as `query` answers it (timestamps in RFC 3339 with only the digits needed).
pub fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Timestamp(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        other => other.to_json(),
    }
}

/// Rows of a table in the in-memory destination.
pub fn memory_rows(
    mem: &MemoryDestination,
    schema: &str,
    table: &TableRef,
    source: &str,
) -> Vec<String> {
    let mut out: Vec<String> = mem
        .rows(schema, table.name)
        .into_iter()
        .filter(|r| !table.model || r.cells.get("source").and_then(Cell::as_str) == Some(source))
        .map(|r| {
            let cols: BTreeMap<String, Value> = r
                .cells
                .iter()
                .map(|(k, v)| (k.clone(), cell_json(v)))
                .collect();
            let raw = match &r.raw {
                Some(text) => serde_json::from_str(text).unwrap(),
                // Model rows keep their cells as `_raw`; redacted vendor rows have none.
                None if table.model => serde_json::to_value(&cols).unwrap(),
                None => Value::Null,
            };
            row_text(cols, raw, r.deleted_at.is_some())
        })
        .collect();
    out.sort();
    out
}

/// Rows of a table in a destination, in the same form.
pub async fn dest_rows(
    d: &dyn Destination,
    schema: &str,
    table: &TableRef,
    source: &str,
) -> Vec<String> {
    let filter = if table.model {
        format!(" WHERE source = '{source}'")
    } else {
        String::new()
    };
    let rows = d
        .query(&format!(
            "SELECT * FROM \"{schema}\".\"{}\"{filter}",
            table.name
        ))
        .await
        .unwrap();
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|mut r| {
            let raw = as_json(r.remove("_raw").unwrap_or(Value::Null));
            let deleted = !r.remove("_deleted_at").unwrap_or(Value::Null).is_null();
            r.remove("_synced_at");
            r.remove("_load_id");
            r.remove("_day"); // Delta Lake's partition column
            let cols = r.into_iter().map(|(k, v)| (k, as_json(v))).collect();
            row_text(cols, raw, deleted)
        })
        .collect();
    out.sort();
    out
}

/// JSON as text (DuckDB, Delta Lake) parsed, where it is an object or array; PostgreSQL's
/// `jsonb` arrives parsed already.
fn as_json(v: Value) -> Value {
    match &v {
        Value::String(s) if s.starts_with('{') || s.starts_with('[') => {
            serde_json::from_str(s).unwrap_or(v)
        }
        _ => v,
    }
}

/// Asserts that every table of `tables` holds the same rows in both destinations.
pub async fn assert_same(
    dest: &dyn Destination,
    mem: &MemoryDestination,
    source: &str,
    tables: &[TableRef],
) {
    for t in tables {
        let schema = t.schema(source);
        let want = memory_rows(mem, schema, t, source);
        let got = dest_rows(dest, schema, t, source).await;
        assert_eq!(got.len(), want.len(), "row count of {schema}.{}", t.name);
        assert_eq!(got, want, "rows of {schema}.{}", t.name);
    }
}

/// Bookkeeping of every row: key → (`_synced_at`, `_load_id`).
pub async fn bookkeeping(d: &dyn Destination, sql: &str) -> Vec<(String, String, String)> {
    d.query(sql)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r["k"].to_string(),
                r["_synced_at"].to_string(),
                r["_load_id"].to_string(),
            )
        })
        .collect()
}

pub fn counter_tables() -> Vec<TableRef> {
    vec![
        talkhouse_sync::testing::ITEMS,
        talkhouse_sync::testing::ITEM_TAGS,
        model::MESSAGES,
        model::CONVERSATIONS,
    ]
}

pub async fn dest_state(d: &dyn Destination, source: &str) -> Option<Value> {
    d.read_state(source, "items").await.unwrap()
}

/// Quarantine as sorted `(stream, location, error, payload)`.
pub async fn dest_quarantine(
    d: &dyn Destination,
    source: &str,
) -> Vec<(String, String, String, String)> {
    let rows = d
        .query(&format!("SELECT stream, location, error, payload FROM talkhouse.quarantine WHERE source = '{source}'"))
        .await
        .unwrap();
    let mut out: Vec<_> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("stream"), s("location"), s("error"), s("payload"))
        })
        .collect();
    out.sort();
    out
}

pub fn mem_quarantine(
    mem: &MemoryDestination,
    source: &str,
) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = mem
        .quarantine()
        .into_iter()
        .filter(|(s, _, _)| s == source)
        .map(|(_, stream, q)| (stream, q.location, q.error, q.payload))
        .collect();
    out.sort();
    out
}

/// Refuses the commit after `n` successful ones (a crash between batches).
pub struct Failing {
    /// The destination that does the work.
    pub inner: Arc<dyn Destination>,
    /// Commits still allowed.
    pub left: AtomicI64,
}

#[async_trait::async_trait]
impl Destination for Failing {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn init(&self) -> Result<(), DestinationError> {
        self.inner.init().await
    }
    async fn prepare(&self, source: &str, tables: &[TableSpec]) -> Result<(), DestinationError> {
        self.inner.prepare(source, tables).await
    }
    async fn read_state(
        &self,
        source: &str,
        stream: &str,
    ) -> Result<Option<Value>, DestinationError> {
        self.inner.read_state(source, stream).await
    }
    async fn commit(&self, commit: Commit) -> Result<CommitStats, DestinationError> {
        if self.left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(DestinationError::Injected("commit refused".into()));
        }
        self.inner.commit(commit).await
    }
    async fn record_load(&self, load: &LoadRecord) -> Result<(), DestinationError> {
        self.inner.record_load(load).await
    }
    async fn query(&self, sql: &str) -> Result<QueryRows, DestinationError> {
        self.inner.query(sql).await
    }
    async fn execute(&self, sql: &str) -> Result<(), DestinationError> {
        self.inner.execute(sql).await
    }
}

pub fn people() -> TableSpec {
    TableSpec::new(
        TableRef::source("people"),
        vec![
            Column::new("id", ColumnType::Text),
            Column::new("customer_id", ColumnType::Text),
            Column::personal("email", ColumnType::Text),
            Column::new("seen_at", ColumnType::Timestamp),
            Column::new("born", ColumnType::Date),
            Column::new("extra", ColumnType::Json),
        ],
        &["id"],
    )
}

pub fn notes() -> TableSpec {
    TableSpec::new(
        TableRef::source("notes"),
        vec![
            Column::new("person_id", ColumnType::Text),
            Column::new("position", ColumnType::Integer),
            Column::personal("body", ColumnType::Text),
        ],
        &["person_id", "position"],
    )
    .child_of(&["person_id"])
}

pub fn person(id: &str, customer: &str, email: &str) -> Row {
    Row::new(TableRef::source("people"))
        .set("id", id)
        .set("customer_id", customer)
        .set("email", email)
        .set(
            "seen_at",
            Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
        )
        .set("born", chrono::NaiveDate::from_ymd_opt(1990, 1, 2).unwrap())
        .set("extra", json!({"tier": "gold", "n": [1, 2]}))
        .with_raw(json!({"id": id, "customer": customer, "email": email}).to_string())
}

pub fn note(person: &str, pos: i64, body: &str) -> Row {
    Row::new(TableRef::source("notes"))
        .set("person_id", person)
        .set("position", pos)
        .set("body", body)
        .with_raw(json!({"body": body}).to_string())
}

pub fn message(source: &str, id: &str, customer: &str) -> Row {
    Row::new(model::MESSAGES)
        .set("source", source)
        .set("message_id", id)
        .set("conversation_id", customer)
        .set("sender_id", customer)
        .set("sender_role", "customer")
        .set("body", format!("hello from {customer}"))
}

pub fn commit(source: &str, n: u32, rows: Vec<Row>, erasures: Vec<Erasure>) -> Commit {
    Commit {
        source: source.to_owned(),
        stream: "people".into(),
        load_id: format!("load-{n}"),
        synced_at: Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, n).unwrap(),
        rows,
        erasures,
        quarantine: Vec::new(),
        state: Some(json!({ "n": n })),
        more_follows: false,
    }
}

/// Applies the same commits to both destinations, comparing stats and rows after each.
pub async fn replay(
    dest: &dyn Destination,
    mem: &MemoryDestination,
    source: &str,
    commits: Vec<Commit>,
) {
    let tables = [
        TableRef::source("people"),
        TableRef::source("notes"),
        model::MESSAGES,
    ];
    for (i, c) in commits.into_iter().enumerate() {
        let want = mem.commit(c.clone()).await.unwrap();
        let got = dest.commit(c).await.unwrap();
        assert_eq!(got, want, "stats of commit {i}");
        assert_same(dest, mem, source, &tables).await;
        assert_eq!(
            dest.read_state(source, "people").await.unwrap(),
            mem.state(source, "people")
        );
    }
}

pub async fn setup_people(dest: &dyn Destination, mem: &MemoryDestination, source: &str) {
    let specs = vec![people(), notes(), model::tables().remove(1)];
    assert_eq!(specs[2].table, model::MESSAGES);
    dest.prepare(source, &specs).await.unwrap();
    mem.prepare(source, &specs).await.unwrap();
}
