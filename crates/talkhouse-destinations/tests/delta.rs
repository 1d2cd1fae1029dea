//! The Delta Lake destination in a local folder, compared with the in-memory destination
//! (`talkhouse_sync::memory::MemoryDestination`), whose merge semantics it must reproduce.
//! Object stores are exercised by the CLI's S3 test (`talkhouse-cli/tests/delta_s3.rs`).
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use serde_json::{Value, json};
use support::*;
use talkhouse_destinations::delta::DeltaDestination;
use talkhouse_model::{
    Cell, Column, ColumnType, Destination, EraseMode, Erasure, LoadStatus, MaintainOptions,
    Quarantined, TableRef, TableSpec, model,
};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::testing::CounterSource;
use talkhouse_sync::{SyncOptions, sync_source};

fn open(dir: &tempfile::TempDir) -> Arc<DeltaDestination> {
    Arc::new(DeltaDestination::open(&dir.path().display().to_string()).unwrap())
}

/// Quarantine as a set: Delta keeps one entry per source, stream, location and error.
fn as_set(q: Vec<(String, String, String, String)>) -> BTreeSet<(String, String, String)> {
    q.into_iter().map(|(s, l, e, _)| (s, l, e)).collect()
}

#[tokio::test]
async fn sync_matches_the_memory_destination() {
    let dir = tempfile::tempdir().unwrap();
    let delta = open(&dir);
    let name = "counter";
    let src = Arc::new(CounterSource {
        bad_every: 7,
        ..CounterSource::new(name, 400, 40)
    });
    let mem = Arc::new(MemoryDestination::new());
    assert!(sync_source(src.clone(), mem.clone(), &opts(90)).await.ok());
    let report = sync_source(src.clone(), delta.clone(), &opts(90)).await;
    assert!(report.ok(), "{report:?}");
    assert_same(&*delta, &mem, name, &counter_tables()).await;
    assert_eq!(dest_state(&*delta, name).await, mem.state(name, "items"));
    let q = dest_quarantine(&*delta, name).await;
    assert!(!q.is_empty());
    assert_eq!(q, mem_quarantine(&mem, name));
    let loads = delta
        .query("SELECT status, rows, quarantined FROM talkhouse.loads")
        .await
        .unwrap();
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0]["status"], json!("succeeded"));
    assert_eq!(loads[0]["rows"].as_u64(), Some(report.streams[0].rows));

    // A later process finds every table and view in the catalog.
    delta
        .execute(
            "CREATE OR REPLACE VIEW counter.busy AS SELECT id FROM counter.items WHERE id < 10",
        )
        .await
        .unwrap();
    let again = open(&dir);
    let n = again
        .query("SELECT count(*) AS n FROM counter.busy")
        .await
        .unwrap();
    let want = delta
        .query("SELECT count(*) AS n FROM counter.items WHERE id < 10")
        .await
        .unwrap();
    assert!(n[0]["n"].as_u64().unwrap() > 0);
    assert_eq!(n[0]["n"], want[0]["n"]);
    assert_same(&*again, &mem, name, &counter_tables()).await;
    assert!(
        again.execute("DELETE FROM counter.items").await.is_err(),
        "rows change through commits only"
    );
}

#[tokio::test]
async fn failure_after_n_commits_then_rerun_is_exact() {
    // Commit 0 of every sync records the source's row of `talkhouse.source_settings`.
    for n in [1, 3, 6] {
        let dir = tempfile::tempdir().unwrap();
        let delta = open(&dir);
        let name = "crash";
        let src = Arc::new(CounterSource {
            bad_every: 11,
            ..CounterSource::new(name, 300, 25)
        });
        let clean = Arc::new(MemoryDestination::new());
        assert!(
            sync_source(src.clone(), clean.clone(), &opts(60))
                .await
                .ok()
        );

        let failing = Arc::new(Failing {
            inner: delta.clone(),
            left: AtomicI64::new(n),
        });
        let report = sync_source(src.clone(), failing, &opts(60)).await;
        assert!(!report.ok(), "the injected failure must fail the stream");
        assert_eq!(report.streams[0].status, LoadStatus::Failed);
        let committed = delta
            .query("SELECT count(*) AS n FROM crash.items")
            .await
            .unwrap();
        assert!(
            committed[0]["n"].as_u64().unwrap() < 300 - 300 / 11,
            "the crash left work undone"
        );

        assert!(
            sync_source(src.clone(), delta.clone(), &opts(60))
                .await
                .ok()
        );
        assert_same(&*delta, &clean, name, &counter_tables()).await;
        assert_eq!(
            dest_state(&*delta, name).await,
            clean.state(name, "items"),
            "after failing at commit {n}"
        );
        assert_eq!(
            as_set(dest_quarantine(&*delta, name).await),
            as_set(mem_quarantine(&clean, name))
        );
    }
}

#[tokio::test]
async fn second_run_with_nothing_new_changes_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let delta = open(&dir);
    let name = "again";
    let src = Arc::new(CounterSource::new(name, 300, 100));
    assert!(
        sync_source(src.clone(), delta.clone(), &opts(1000))
            .await
            .ok()
    );
    let items = "SELECT id AS k, _synced_at, _load_id FROM again.items ORDER BY id";
    let tags = "SELECT item_id || '/' || CAST(position AS VARCHAR) AS k, _synced_at, _load_id \
                FROM again.item_tags ORDER BY 1";
    let before = (
        bookkeeping(&*delta, items).await,
        bookkeeping(&*delta, tags).await,
    );
    assert_eq!(before.0.len(), 300);
    let full = SyncOptions {
        full_refresh: true,
        ..opts(1000)
    };
    assert!(sync_source(src.clone(), delta.clone(), &full).await.ok());
    let after = (
        bookkeeping(&*delta, items).await,
        bookkeeping(&*delta, tags).await,
    );
    assert_eq!(
        before, after,
        "unchanged records must not be rewritten (_synced_at, _load_id included)"
    );
    let v2 = Arc::new(CounterSource {
        version: 2,
        ..CounterSource::new(name, 300, 100)
    });
    assert!(sync_source(v2, delta.clone(), &full).await.ok());
    let rewritten = bookkeeping(&*delta, items).await;
    assert!(
        rewritten
            .iter()
            .zip(&before.0)
            .all(|(a, b)| a.0 == b.0 && a.2 != b.2)
    );
}

#[tokio::test]
async fn merges_children_and_erasures_like_memory() {
    let dir = tempfile::tempdir().unwrap();
    let delta = open(&dir);
    let name = "people_src";
    let mem = MemoryDestination::new();
    setup_people(&*delta, &mem, name).await;
    let erase = |column: &'static str, value: &str, mode: EraseMode, table: TableRef| Erasure {
        table,
        column,
        value: Cell::Text(value.into()),
        mode,
    };
    let people_t = TableRef::source("people");
    let notes_t = TableRef::source("notes");
    replay(
        &*delta,
        &mem,
        name,
        vec![
            commit(
                name,
                1,
                vec![
                    person("p1", "c1", "a@x"),
                    note("p1", 0, "n0"),
                    note("p1", 1, "n1"),
                    note("p1", 2, "n2"),
                    person("p2", "c2", "b@x"),
                    note("p2", 0, "m0"),
                    person("p3", "c3", "c@x"),
                    person("p4", "c4", "d@x"),
                    person("p4", "c4", "d2@x"),
                    message(name, "m1", "c1"),
                    message(name, "m2", "c2"),
                ],
                vec![],
            ),
            commit(
                name,
                2,
                vec![
                    person("p1", "c1", "a@x"),
                    note("p1", 0, "n0 edited"),
                    person("p2", "c2", "b@x"),
                    note("p2", 0, "m0"),
                    person("p3", "c3", "c-new@x"),
                ],
                vec![],
            ),
            commit(
                name,
                3,
                vec![],
                vec![
                    erase("customer_id", "c1", EraseMode::Redact, people_t),
                    erase("person_id", "p1", EraseMode::Redact, notes_t),
                    erase("customer_id", "c2", EraseMode::Delete, people_t),
                    erase("person_id", "p2", EraseMode::Delete, notes_t),
                    erase("customer_id", "c3", EraseMode::Keep, people_t),
                    erase("conversation_id", "c1", EraseMode::Keep, model::MESSAGES),
                    erase("customer_id", "zzz", EraseMode::Delete, people_t),
                ],
            ),
            commit(
                name,
                4,
                vec![],
                vec![erase("customer_id", "c1", EraseMode::Redact, people_t)],
            ),
            commit(name, 5, vec![person("p3", "c3", "c-new@x")], vec![]),
        ],
    )
    .await;
    let p1 = delta
        .query("SELECT email, _raw, _deleted_at, _load_id FROM people_src.people WHERE id = 'p1'")
        .await
        .unwrap();
    assert_eq!(p1[0]["email"], Value::Null);
    assert_eq!(p1[0]["_raw"], Value::Null);
    assert_eq!(p1[0]["_deleted_at"], json!("2024-06-01T00:00:03Z"));
    assert_eq!(p1[0]["_load_id"], json!("load-1"));
}

#[tokio::test]
async fn partitions_evolution_quarantine_and_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let delta = open(&dir);
    let name = "evolve";
    let mem = MemoryDestination::new();
    // Messages are partitioned by the day they were sent.
    let messages = model::tables().remove(1);
    assert_eq!(messages.day_column, Some("sent_at"));
    delta
        .prepare(name, &[people(), messages.clone()])
        .await
        .unwrap();
    mem.prepare(name, &[people(), messages]).await.unwrap();
    for n in 0..4 {
        let day =
            chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2024, 5, 1 + n, 9, 0, 0).unwrap();
        let row = message(name, &format!("m{n}"), "c1").set("sent_at", day);
        let mut c = commit(
            name,
            n,
            vec![row, person(&format!("p{n}"), "c1", "x@y")],
            vec![],
        );
        c.quarantine.push(Quarantined {
            location: "file.jsonl:3".into(),
            error: "malformed JSON".into(),
            payload: "{".into(),
        });
        assert_eq!(
            delta.commit(c.clone()).await.unwrap(),
            mem.commit(c).await.unwrap()
        );
    }
    let parts: Vec<_> = std::fs::read_dir(dir.path().join("talkhouse/model_messages"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("_day="))
        .collect();
    assert_eq!(parts.len(), 4, "one partition per day: {parts:?}");
    assert_eq!(
        dest_quarantine(&*delta, name).await.len(),
        1,
        "the same record at the same place is kept once"
    );

    // A column the spec adds later appears, old rows null.
    let mut wider = people();
    wider.columns.push(Column::new("tier", ColumnType::Text));
    delta.prepare(name, &[wider.clone()]).await.unwrap();
    mem.prepare(name, &[wider]).await.unwrap();
    let c = commit(
        name,
        9,
        vec![person("p9", "c9", "z@y").set("tier", "gold")],
        vec![],
    );
    delta.commit(c.clone()).await.unwrap();
    mem.commit(c).await.unwrap();
    assert_same(&*delta, &mem, name, &[TableRef::source("people")]).await;

    // Four small files per table compact into one; nothing younger than the retention goes.
    let report = delta.maintain(&MaintainOptions::default()).await.unwrap();
    let people_report = report.iter().find(|m| m.table == "evolve.people").unwrap();
    assert!(people_report.files_compacted >= 4, "{report:?}");
    assert_eq!(people_report.files_vacuumed, 0);
    let now = delta
        .maintain(&MaintainOptions {
            retention: std::time::Duration::ZERO,
            dry_run: false,
        })
        .await
        .unwrap();
    assert!(
        now.iter().any(|m| m.files_vacuumed >= 4),
        "with zero retention the compacted files go: {now:?}"
    );
    // (Model rows keep their cells as `_raw`, timestamps in full microseconds, so the
    // reference compares them by count here.)
    assert_same(&*delta, &mem, name, &[TableRef::source("people")]).await;
    let messages = delta
        .query("SELECT count(*) AS n FROM talkhouse.model_messages")
        .await
        .unwrap();
    assert_eq!(messages[0]["n"], json!(4));
}

#[tokio::test]
async fn query_converts_common_types_and_reads_information_schema() {
    let dir = tempfile::tempdir().unwrap();
    let delta = open(&dir);
    let mem = MemoryDestination::new();
    setup_people(&*delta, &mem, "types").await;
    delta
        .commit(commit("types", 1, vec![person("p1", "c1", "a@x")], vec![]))
        .await
        .unwrap();
    let r = delta
        .query(
            "SELECT id, seen_at, born, extra, CAST(1.5 AS DOUBLE PRECISION) AS f, \
             count(*) OVER () AS n, seen_at >= CAST('2024-05-01 00:00:00' AS TIMESTAMP) AS after \
             FROM types.people",
        )
        .await
        .unwrap();
    assert_eq!(r[0]["id"], json!("p1"));
    assert_eq!(r[0]["seen_at"], json!("2024-05-01T12:00:00Z"));
    assert_eq!(r[0]["born"], json!("1990-01-02"));
    assert_eq!(
        serde_json::from_str::<Value>(r[0]["extra"].as_str().unwrap()).unwrap(),
        json!({"tier": "gold", "n": [1, 2]})
    );
    assert_eq!(r[0]["f"], json!(1.5));
    assert_eq!(r[0]["n"], json!(1));
    assert_eq!(r[0]["after"], json!(true));
    let cols = delta
        .query(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = 'types' AND table_name = 'people' ORDER BY column_name",
        )
        .await
        .unwrap();
    assert!(cols.iter().any(|c| c["column_name"] == json!("_raw")));
    let spec: &TableSpec = &people();
    assert_eq!(cols.len(), spec.columns.len() + 4);
}

/// `report`'s percentiles through `query`: exact, as in PostgreSQL and DuckDB. DataFusion's
/// built-in gives 53.99982 for this p90 (seven zeros and 180, position 6.3).
#[tokio::test]
async fn query_percentile_cont_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let delta = open(&dir);
    let r = delta
        .query(
            "SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY x) AS p90 FROM (VALUES \
             (0.0), (0.0), (0.0), (0.0), (0.0), (0.0), (0.0), (180.0)) AS t(x)",
        )
        .await
        .unwrap();
    let p90 = r[0]["p90"].as_f64().unwrap();
    assert!((p90 - 54.0).abs() < 1e-9, "{p90}");
}
