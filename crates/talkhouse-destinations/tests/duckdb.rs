//! The DuckDB destination against the engine's guarantees.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_model::{
    Cell, Commit, CommitStats, Destination, DestinationError, EraseMode, Erasure, LoadRecord,
    QueryRows, Source, TableSpec,
};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::testing::{CounterSource, ITEMS};
use talkhouse_sync::{BatchConfig, SyncOptions, sync_source};

fn opts(rows: usize) -> SyncOptions {
    SyncOptions {
        batch: BatchConfig {
            max_rows: rows,
            ..BatchConfig::default()
        },
        ..SyncOptions::default()
    }
}

/// Refuses every commit after the first `n` (a crash between batches).
struct FailAfter {
    inner: Arc<DuckDbDestination>,
    left: AtomicI64,
}

#[async_trait::async_trait]
impl Destination for FailAfter {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn init(&self) -> Result<(), DestinationError> {
        self.inner.init().await
    }
    async fn prepare(&self, s: &str, t: &[TableSpec]) -> Result<(), DestinationError> {
        self.inner.prepare(s, t).await
    }
    async fn read_state(
        &self,
        s: &str,
        st: &str,
    ) -> Result<Option<serde_json::Value>, DestinationError> {
        self.inner.read_state(s, st).await
    }
    async fn commit(&self, c: Commit) -> Result<CommitStats, DestinationError> {
        if self.left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(DestinationError::Injected("crash".into()));
        }
        self.inner.commit(c).await
    }
    async fn record_load(&self, l: &LoadRecord) -> Result<(), DestinationError> {
        self.inner.record_load(l).await
    }
    async fn query(&self, sql: &str) -> Result<QueryRows, DestinationError> {
        self.inner.query(sql).await
    }
    async fn execute(&self, sql: &str) -> Result<(), DestinationError> {
        self.inner.execute(sql).await
    }
}

async fn table(dest: &dyn Destination, name: &str, order: &str) -> QueryRows {
    dest.query(&format!(
        "SELECT * EXCLUDE (_synced_at, _load_id) FROM {name} ORDER BY {order}"
    ))
    .await
    .expect("query")
}

async fn all_tables(dest: &dyn Destination) -> Vec<QueryRows> {
    vec![
        table(dest, "counter.items", "id").await,
        table(dest, "counter.item_tags", "item_id, position").await,
        table(dest, "talkhouse.model_messages", "message_id").await,
        dest.query("SELECT source, stream, CAST(cursor AS VARCHAR) AS cursor FROM talkhouse.state")
            .await
            .expect("state"),
    ]
}

#[tokio::test]
async fn a_failure_after_n_batches_then_a_rerun_ends_exact() {
    let src = Arc::new(CounterSource::new("counter", 2_000, 100));
    let clean = Arc::new(DuckDbDestination::in_memory().expect("duckdb"));
    assert!(
        sync_source(src.clone(), clean.clone(), &opts(250))
            .await
            .ok()
    );
    let want = all_tables(&*clean).await;
    assert_eq!(want[0].len(), 2_000);

    for n in [0, 2, 5] {
        let inner = Arc::new(DuckDbDestination::in_memory().expect("duckdb"));
        let failing = Arc::new(FailAfter {
            inner: inner.clone(),
            left: AtomicI64::new(n),
        });
        assert!(!sync_source(src.clone(), failing, &opts(250)).await.ok());
        assert!(
            sync_source(src.clone(), inner.clone(), &opts(250))
                .await
                .ok()
        );
        assert_eq!(
            all_tables(&*inner).await,
            want,
            "after a crash at commit {n}"
        );
    }
}

#[tokio::test]
async fn rows_equal_the_in_memory_reference() {
    let src = Arc::new(CounterSource {
        bad_every: 7,
        ..CounterSource::new("counter", 500, 60)
    });
    let mem = Arc::new(MemoryDestination::new());
    let duck = Arc::new(DuckDbDestination::in_memory().expect("duckdb"));
    assert!(sync_source(src.clone(), mem.clone(), &opts(100)).await.ok());
    assert!(
        sync_source(src.clone(), duck.clone(), &opts(100))
            .await
            .ok()
    );
    for t in ["items", "item_tags"] {
        let n = duck
            .query(&format!("SELECT count(*) AS n FROM counter.{t}"))
            .await
            .expect("count");
        assert_eq!(n[0]["n"], serde_json::json!(mem.count("counter", t)), "{t}");
    }
    let q = duck
        .query("SELECT count(*) AS n FROM talkhouse.quarantine")
        .await
        .expect("q");
    assert_eq!(q[0]["n"], serde_json::json!(mem.quarantine().len()));
    assert_eq!(q[0]["n"], serde_json::json!(500 / 7));
}

#[tokio::test]
async fn a_second_run_with_nothing_new_changes_nothing_but_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.duckdb");
    let src = Arc::new(CounterSource::new("counter", 300, 100));
    let snapshot = |d: Arc<DuckDbDestination>| async move {
        let mut v = Vec::new();
        for (t, o) in [
            ("counter.items", "id"),
            ("counter.item_tags", "item_id, position"),
            ("talkhouse.model_messages", "message_id"),
        ] {
            v.push(
                d.query(&format!("SELECT * FROM {t} ORDER BY {o}"))
                    .await
                    .expect("select"),
            );
        }
        v
    };
    {
        let d = Arc::new(DuckDbDestination::open(&path).expect("open"));
        assert!(sync_source(src.clone(), d.clone(), &opts(1000)).await.ok());
    }
    let d = Arc::new(DuckDbDestination::open(&path).expect("reopen"));
    let before = snapshot(d.clone()).await;
    let full = SyncOptions {
        full_refresh: true,
        ..opts(1000)
    };
    assert!(sync_source(src.clone(), d.clone(), &full).await.ok());
    assert_eq!(
        snapshot(d.clone()).await,
        before,
        "_synced_at and _load_id included"
    );
    let loads = d
        .query("SELECT count(*) AS n FROM talkhouse.loads")
        .await
        .expect("loads");
    assert_eq!(loads[0]["n"], serde_json::json!(2));
}

#[tokio::test]
async fn erasure_modes_and_new_columns() {
    let d = Arc::new(DuckDbDestination::in_memory().expect("duckdb"));
    let src = Arc::new(CounterSource::new("counter", 30, 30));
    assert!(sync_source(src.clone(), d.clone(), &opts(1000)).await.ok());
    let erase = |id: i64, mode| Erasure {
        table: ITEMS,
        column: "id",
        value: Cell::Integer(id),
        mode,
    };
    let commit = Commit {
        source: "counter".into(),
        stream: "items".into(),
        load_id: "l".into(),
        synced_at: chrono::Utc::now(),
        rows: vec![],
        erasures: vec![
            erase(1, EraseMode::Redact),
            erase(2, EraseMode::Delete),
            erase(3, EraseMode::Keep),
        ],
        quarantine: vec![],
        state: None,
        more_follows: false,
    };
    let stats = d.commit(commit).await.expect("commit");
    assert_eq!(stats.rows_erased, 3);
    let rows = d.query("SELECT id, name, _raw IS NULL AS raw_gone, _deleted_at IS NOT NULL AS deleted FROM counter.items WHERE id IN (1,2,3) ORDER BY id").await.expect("q");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], serde_json::Value::Null);
    assert_eq!(rows[0]["raw_gone"], true);
    assert_eq!(rows[0]["deleted"], true);
    assert_eq!(rows[1]["name"], "Item 3");
    assert_eq!(rows[1]["deleted"], true);

    // A later spec adds a column: the table evolves, old rows stay.
    let mut specs = src.tables();
    specs[0].columns.push(talkhouse_model::Column::new(
        "added_later",
        talkhouse_model::ColumnType::Text,
    ));
    d.prepare("counter", &specs).await.expect("evolve");
    let n = d
        .query("SELECT count(*) AS n FROM counter.items WHERE added_later IS NULL")
        .await
        .expect("q");
    assert_eq!(n[0]["n"], serde_json::json!(29));
}

/// One commit of `rows` into the `m` schema at `at`.
const PARENT: talkhouse_model::TableRef = talkhouse_model::TableRef::source("parent");
const CHILD: talkhouse_model::TableRef = talkhouse_model::TableRef::source("child");

/// `m.parent` (`id`, `v`, `doc`) and its child table `m.child` (`parent_id`, `pos`, `tag`).
fn parent_child_specs() -> Vec<TableSpec> {
    use talkhouse_model::{Column, ColumnType as T};
    vec![
        TableSpec::new(
            PARENT,
            vec![
                Column::new("id", T::Text),
                Column::new("v", T::Integer),
                Column::new("doc", T::Json),
            ],
            &["id"],
        ),
        TableSpec::new(
            CHILD,
            vec![
                Column::new("parent_id", T::Text),
                Column::new("pos", T::Integer),
                Column::new("tag", T::Text),
            ],
            &["parent_id", "pos"],
        )
        .child_of(&["parent_id"]),
    ]
}

fn parent(id: &str, v: i64) -> talkhouse_model::Row {
    talkhouse_model::Row::new(PARENT)
        .set("id", id)
        .set("v", v)
        .set("doc", Cell::Json(serde_json::json!({ "v": v })))
        .with_raw(format!("{{\"id\":\"{id}\",\"v\":{v}}}"))
}

fn child(p: &str, pos: i64, tag: &str) -> talkhouse_model::Row {
    talkhouse_model::Row::new(CHILD)
        .set("parent_id", p)
        .set("pos", pos)
        .set("tag", tag)
}

fn merge_commit(rows: Vec<talkhouse_model::Row>, at: chrono::DateTime<chrono::Utc>) -> Commit {
    Commit {
        source: "m".into(),
        stream: "s".into(),
        load_id: at.to_rfc3339(),
        synced_at: at,
        rows,
        erasures: vec![],
        quarantine: vec![],
        state: None,
        more_follows: false,
    }
}

#[tokio::test]
async fn the_merge_keeps_identical_rows_replaces_changed_ones_and_whole_groups() {
    let specs = parent_child_specs();
    let d = DuckDbDestination::in_memory().expect("duckdb");
    d.init().await.expect("init");
    d.prepare("m", &specs).await.expect("prepare");
    let t1 = chrono::Utc::now();
    let t2 = t1 + chrono::Duration::seconds(60);
    let stats = d
        .commit(merge_commit(
            vec![
                parent("a", 1),
                parent("b", 1),
                parent("c", 1),
                child("a", 0, "x"),
                child("a", 1, "y"),
                child("b", 0, "z"),
            ],
            t1,
        ))
        .await
        .expect("first");
    assert_eq!(stats.rows_written, 6);
    d.execute("UPDATE m.parent SET _deleted_at = now() WHERE id = 'c'")
        .await
        .expect("soft delete");
    // a unchanged, b changed twice in one batch (the last wins), c soft-deleted and sent again,
    // d new; group a shrinks to one child, group b is not in the batch and stays.
    let stats = d
        .commit(merge_commit(
            vec![
                parent("a", 1),
                parent("b", 2),
                parent("b", 3),
                parent("c", 1),
                parent("d", 1),
                child("a", 0, "x"),
            ],
            t2,
        ))
        .await
        .expect("second");
    assert_eq!(
        stats.rows_written, 3,
        "b, c and d; a and its child are unchanged"
    );
    let rows = d
        .query(
            "SELECT id, v, CAST(doc AS VARCHAR) AS doc, _deleted_at IS NULL AS live \
             FROM m.parent ORDER BY id",
        )
        .await
        .expect("parents");
    let first = t1.to_rfc3339();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1]["v"], serde_json::json!(3));
    assert_eq!(rows[1]["doc"], r#"{"v":3}"#);
    assert!(rows.iter().all(|r| r["live"] == true));
    let loads = d
        .query("SELECT id, _load_id FROM m.parent ORDER BY id")
        .await
        .expect("loads");
    let ids: Vec<(String, bool)> = loads
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or_default().to_owned(),
                r["_load_id"] == first.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("a".to_owned(), true),
            ("b".to_owned(), false),
            ("c".to_owned(), false),
            ("d".to_owned(), false)
        ]
    );
    let children = d
        .query("SELECT parent_id, pos, tag, _load_id FROM m.child ORDER BY parent_id, pos")
        .await
        .expect("children");
    let children: Vec<(String, i64, bool)> = children
        .iter()
        .map(|r| {
            (
                r["parent_id"].as_str().unwrap_or_default().to_owned(),
                r["pos"].as_i64().unwrap_or(-1),
                r["_load_id"] == first.as_str(),
            )
        })
        .collect();
    assert_eq!(
        children,
        [("a".to_owned(), 0, true), ("b".to_owned(), 0, true)],
        "a's second child is gone, its first untouched; b's group was not in the batch"
    );
}

#[tokio::test]
async fn memory_limit_is_applied_and_a_bad_one_is_refused_clearly() {
    use talkhouse_destinations::duckdb::DuckDbOptions;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.duckdb");
    let options = DuckDbOptions {
        memory_limit: Some("300MB".into()),
        ..DuckDbOptions::default()
    };
    let dest = DuckDbDestination::open_with(&path, &options).expect("open");
    let rows = dest
        .query("SELECT current_setting('memory_limit') AS m")
        .await
        .expect("query");
    // DuckDB reports the limit in its own units (300MB is 286.1 MiB).
    let shown = rows[0]["m"].as_str().unwrap_or_default().to_owned();
    assert!(shown.contains("286"), "memory_limit is {shown}");
    drop(dest);
    let bad = DuckDbOptions {
        memory_limit: Some("lots".into()),
        ..DuckDbOptions::default()
    };
    let e = DuckDbDestination::open_with(&path, &bad).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("memory_limit") && text.contains("512MB"),
        "{text}"
    );
}

#[tokio::test]
async fn commits_that_say_more_follow_land_together_or_not_at_all() {
    use talkhouse_model::{Column, ColumnType as T, Row, TableRef};
    const ITEM: TableRef = TableRef::source("item");
    const UNPREPARED: TableRef = TableRef::source("nowhere");
    let specs = vec![TableSpec::new(
        ITEM,
        vec![Column::new("id", T::Integer)],
        &["id"],
    )];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("w.duckdb");
    let item = |id: i64| {
        Row::new(ITEM)
            .set("id", id)
            .with_raw(format!("{{\"id\":{id}}}"))
    };
    let batch = |load: &str, ids: std::ops::Range<i64>, more: bool| Commit {
        load_id: load.into(),
        rows: ids.clone().map(item).collect(),
        state: Some(serde_json::json!({ "upto": ids.end })),
        more_follows: more,
        ..merge_commit(Vec::new(), chrono::Utc::now())
    };
    async fn count(d: &DuckDbDestination) -> i64 {
        let rows = d.query("SELECT count(*) AS n FROM m.item").await;
        rows.expect("count")[0]["n"].as_i64().unwrap_or(-1)
    }

    // 1. Two deferred commits and a crash (the process ends with the group open): neither
    //    their rows nor their cursor are there.
    {
        let d = DuckDbDestination::open(&path).expect("open");
        d.init().await.expect("init");
        d.prepare("m", &specs).await.expect("prepare");
        d.commit(batch("a", 0..10, true)).await.expect("commit");
        d.commit(batch("a", 10..20, true)).await.expect("commit");
    }
    let d = DuckDbDestination::open(&path).expect("reopen");
    assert_eq!(count(&d).await, 0, "an open group is lost whole");
    assert_eq!(d.read_state("m", "s").await.expect("state"), None);
    d.prepare("m", &specs).await.expect("prepare");

    // 2. Deferred commits, then the load's last: all durable.
    d.commit(batch("b", 0..10, true)).await.expect("commit");
    d.commit(batch("b", 10..20, false)).await.expect("commit");
    drop(d);
    let d = DuckDbDestination::open(&path).expect("reopen");
    assert_eq!(count(&d).await, 20);
    assert_eq!(
        d.read_state("m", "s").await.expect("state"),
        Some(serde_json::json!({ "upto": 20 }))
    );
    d.prepare("m", &specs).await.expect("prepare");

    // 3. Another call (a query) makes a deferred commit durable.
    d.commit(batch("c", 20..30, true)).await.expect("commit");
    assert_eq!(count(&d).await, 30);
    drop(d);
    let d = DuckDbDestination::open(&path).expect("reopen");
    assert_eq!(count(&d).await, 30);
    d.prepare("m", &specs).await.expect("prepare");

    // 4. A failed commit rolls its group back; the load whose deferred commit was lost is
    //    refused from then on, other loads go on.
    d.commit(batch("d", 30..40, true)).await.expect("commit");
    let mut failing = batch("e", 40..41, true);
    failing.rows.push(Row::new(UNPREPARED).set("id", 1));
    d.commit(failing)
        .await
        .expect_err("a table that was not prepared");
    let refused = d
        .commit(batch("d", 40..50, false))
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("rolled back"), "{refused}");
    assert_eq!(count(&d).await, 30, "the group of d and e was rolled back");
    assert_eq!(
        d.read_state("m", "s").await.expect("state"),
        Some(serde_json::json!({ "upto": 30 }))
    );
    d.commit(batch("f", 30..50, false))
        .await
        .expect("a new load");
    assert_eq!(count(&d).await, 50);
}

/// A table the session fills from empty takes new keys by appending them, and every other row
/// through the merge: the rows that land are the ones a table that already held rows gets from
/// the same commits (kept identical rows, replaced changed ones, shrunk child groups).
#[tokio::test]
async fn a_table_filled_from_empty_ends_as_one_merged_into() {
    let specs = parent_child_specs();
    let t0 = chrono::Utc::now();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    // One load in three commits, the first two saying more follow (one open transaction).
    let commits = |more: bool| {
        let mut cs = vec![
            merge_commit(
                vec![
                    parent("a", 1),
                    parent("b", 1),
                    parent("c", 1),
                    child("a", 0, "x"),
                    child("a", 1, "y"),
                    child("b", 0, "z"),
                ],
                at(1),
            ),
            merge_commit(
                vec![
                    parent("a", 1),
                    parent("b", 2),
                    parent("b", 3),
                    parent("d", 1),
                    child("a", 0, "x"),
                    child("d", 0, "w"),
                ],
                at(2),
            ),
            merge_commit(
                vec![
                    parent("b", 3),
                    parent("e", 1),
                    child("a", 0, "x2"),
                    child("e", 0, "v"),
                ],
                at(3),
            ),
        ];
        for c in cs.iter_mut().take(2) {
            c.more_follows = more;
        }
        cs
    };
    let rows = async |d: &DuckDbDestination| {
        (
            d.query(
                "SELECT * EXCLUDE (_raw, doc), CAST(_raw AS VARCHAR) AS raw, \
                 CAST(doc AS VARCHAR) AS doc FROM m.parent \
                 WHERE id <> 'zz' ORDER BY id",
            )
            .await
            .expect("parents"),
            d.query(
                "SELECT * EXCLUDE (_raw), CAST(_raw AS VARCHAR) AS raw FROM m.child \
                 WHERE parent_id <> 'zz' ORDER BY parent_id, pos",
            )
            .await
            .expect("children"),
        )
    };
    for more in [false, true] {
        // From empty: new keys are appended.
        let fresh = DuckDbDestination::in_memory().expect("duckdb");
        fresh.init().await.expect("init");
        fresh.prepare("m", &specs).await.expect("prepare");
        // Holding a row before the load: everything goes through the merge.
        let merged = DuckDbDestination::in_memory().expect("duckdb");
        merged.init().await.expect("init");
        merged.prepare("m", &specs).await.expect("prepare");
        merged
            .commit(merge_commit(
                vec![parent("zz", 0), child("zz", 0, "-")],
                at(0),
            ))
            .await
            .expect("a row before");
        // Any other statement ends what the session knows of the keys: from here on the
        // table is one that held rows.
        merged.query("SELECT 1 AS one").await.expect("query");
        let mut written = (Vec::new(), Vec::new());
        for (f, m) in commits(more).into_iter().zip(commits(more)) {
            written
                .0
                .push(fresh.commit(f).await.expect("fresh").rows_written);
            written
                .1
                .push(merged.commit(m).await.expect("merged").rows_written);
        }
        assert_eq!(
            written.0.iter().sum::<u64>(),
            written.1.iter().sum::<u64>(),
            "rows written (more follow: {more})"
        );
        assert_eq!(written.1, [6, 3, 3], "unchanged rows are not written again");
        // In one open group, the rows of keys written before are merged when the group ends
        // and counted by the commit that ends it.
        let want: [u64; 3] = if more { [6, 2, 4] } else { [6, 3, 3] };
        assert_eq!(written.0, want);
        let (fresh_rows, merged_rows) = (rows(&fresh).await, rows(&merged).await);
        assert_eq!(fresh_rows, merged_rows, "more follow: {more}");
        assert_eq!(fresh_rows.0.len(), 5);
        assert_eq!(fresh_rows.0[0]["raw"], r#"{"id":"a","v":1}"#);
        assert_eq!(fresh_rows.0[0]["doc"], r#"{"v":1}"#);
        let tags: Vec<&str> = fresh_rows
            .1
            .iter()
            .filter_map(|r| r["tag"].as_str())
            .collect();
        assert_eq!(tags, ["x2", "z", "w", "v"]);
    }
}
