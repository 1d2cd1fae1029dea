//! The PostgreSQL destination against a real server, compared with the in-memory destination
//! (`talkhouse_sync::memory::MemoryDestination`), whose merge semantics it must reproduce.
//!
//! Needs `TALKHOUSE_TEST_POSTGRES_URL` (for example `postgres://postgres@127.0.0.1:5432/test`);
//! without it each test prints why it skips, unless `CI=true`, where a missing URL fails.
//! Every test works on its own source names (random suffix), so tests run in parallel, and drops
//! what it wrote at the end.
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

mod support;

use support::*;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use serde_json::{Value, json};
use talkhouse_destinations::postgres::{PostgresDestination, connect};
use talkhouse_model::{
    Cell, Column, ColumnType, Destination, EraseMode, Erasure, LoadStatus, Quarantined, Row,
    TableRef, TableSpec, model,
};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::testing::CounterSource;
use talkhouse_sync::{SyncOptions, sync_source};

fn url() -> Option<String> {
    match std::env::var("TALKHOUSE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TALKHOUSE_TEST_POSTGRES_URL is not set, and CI=true requires the PostgreSQL tests to run"
            );
            eprintln!("skipping: TALKHOUSE_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// Connects and creates the bookkeeping tables, or `None` to skip.
async fn dest() -> Option<Arc<PostgresDestination>> {
    let url = url()?;
    let d = connect(&url).await.unwrap();
    d.init().await.unwrap();
    Some(Arc::new(d))
}

/// Drops everything a test wrote under source `name`.
async fn cleanup(d: &PostgresDestination, name: &str) {
    let lit = format!("'{name}'");
    d.execute(&format!(
        "DROP SCHEMA IF EXISTS \"{name}\" CASCADE;
         DELETE FROM talkhouse.state WHERE source = {lit};
         DELETE FROM talkhouse.loads WHERE source = {lit};
         DELETE FROM talkhouse.quarantine WHERE source = {lit};
         DO $$ BEGIN
           IF to_regclass('talkhouse.model_messages') IS NOT NULL THEN
             DELETE FROM talkhouse.model_messages WHERE source = {lit}; END IF;
           IF to_regclass('talkhouse.model_conversations') IS NOT NULL THEN
             DELETE FROM talkhouse.model_conversations WHERE source = {lit}; END IF;
         END $$;"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn sync_matches_the_memory_destination() {
    let Some(pg) = dest().await else { return };
    let name = fresh("thpg_same");
    let src = Arc::new(CounterSource {
        bad_every: 7,
        ..CounterSource::new(&name, 400, 40)
    });
    let mem = Arc::new(MemoryDestination::new());
    assert!(sync_source(src.clone(), mem.clone(), &opts(90)).await.ok());
    let report = sync_source(src.clone(), pg.clone(), &opts(90)).await;
    assert!(report.ok(), "{report:?}");
    assert_same(&*pg, &mem, &name, &counter_tables()).await;
    assert_eq!(dest_state(&*pg, &name).await, mem.state(&name, "items"));
    // Quarantine lands, as in memory.
    let q = dest_quarantine(&*pg, &name).await;
    assert_eq!(q, mem_quarantine(&mem, &name));
    assert_eq!(q.len(), mem.quarantine().len());
    assert!(!q.is_empty());
    // Loads are recorded.
    let loads = pg
        .query(&format!(
            "SELECT status, rows, quarantined FROM talkhouse.loads WHERE source = '{name}'"
        ))
        .await
        .unwrap();
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0]["status"], json!("succeeded"));
    assert_eq!(
        loads[0]["quarantined"].as_u64(),
        Some(report.streams[0].quarantined)
    );
    assert_eq!(loads[0]["rows"].as_u64(), Some(report.streams[0].rows));
    cleanup(&pg, &name).await;
}

#[tokio::test]
async fn failure_after_n_commits_then_rerun_is_exact() {
    let Some(pg) = dest().await else { return };
    // Commit 0 of every sync records the source's row of `talkhouse.source_settings`.
    for n in [1, 3, 6] {
        let name = fresh("thpg_crash");
        let src = Arc::new(CounterSource {
            bad_every: 11,
            ..CounterSource::new(&name, 300, 25)
        });
        let clean = Arc::new(MemoryDestination::new());
        assert!(
            sync_source(src.clone(), clean.clone(), &opts(60))
                .await
                .ok()
        );

        let failing = Arc::new(Failing {
            inner: pg.clone(),
            left: AtomicI64::new(n),
        });
        let report = sync_source(src.clone(), failing.clone(), &opts(60)).await;
        assert!(!report.ok(), "the injected failure must fail the stream");
        assert_eq!(report.streams[0].status, LoadStatus::Failed);
        let committed = pg
            .query(&format!("SELECT count(*) AS n FROM \"{name}\".items"))
            .await
            .unwrap();
        assert!(
            committed[0]["n"].as_u64().unwrap() < 300 - 300 / 11,
            "the crash left work undone"
        );

        assert!(sync_source(src.clone(), pg.clone(), &opts(60)).await.ok());
        assert_same(&*pg, &clean, &name, &counter_tables()).await;
        assert_eq!(
            dest_state(&*pg, &name).await,
            clean.state(&name, "items"),
            "after failing at commit {n}"
        );
        // Quarantine is a log, not merged: records the crashed run committed past its last
        // checkpoint are quarantined again by the rerun, exactly as in memory.
        let crashed = Arc::new(MemoryDestination::new());
        crashed.fail_commits_after(n);
        assert!(
            !sync_source(src.clone(), crashed.clone(), &opts(60))
                .await
                .ok()
        );
        crashed.heal();
        assert!(
            sync_source(src.clone(), crashed.clone(), &opts(60))
                .await
                .ok()
        );
        assert_eq!(
            dest_quarantine(&*pg, &name).await,
            mem_quarantine(&crashed, &name)
        );
        cleanup(&pg, &name).await;
    }
}

#[tokio::test]
async fn second_run_with_nothing_new_changes_no_row() {
    let Some(pg) = dest().await else { return };
    let name = fresh("thpg_again");
    let src = Arc::new(CounterSource::new(&name, 300, 100));
    assert!(sync_source(src.clone(), pg.clone(), &opts(1000)).await.ok());
    let items = format!("SELECT id AS k, _synced_at, _load_id FROM \"{name}\".items ORDER BY id");
    let tags = format!(
        "SELECT item_id || '/' || position AS k, _synced_at, _load_id FROM \"{name}\".item_tags ORDER BY 1"
    );
    let msgs = format!(
        "SELECT message_id AS k, _synced_at, _load_id FROM talkhouse.model_messages WHERE source = '{name}' ORDER BY 1"
    );
    let before = (
        bookkeeping(&*pg, &items).await,
        bookkeeping(&*pg, &tags).await,
        bookkeeping(&*pg, &msgs).await,
    );
    assert_eq!(before.0.len(), 300);

    let again = SyncOptions {
        full_refresh: true,
        ..opts(1000)
    };
    let report = sync_source(src.clone(), pg.clone(), &again).await;
    assert!(report.ok());
    assert_eq!(
        report.streams[0].rows,
        300 + (0..300).map(|i| i % 3).sum::<u64>(),
        "every record arrived again"
    );
    let after = (
        bookkeeping(&*pg, &items).await,
        bookkeeping(&*pg, &tags).await,
        bookkeeping(&*pg, &msgs).await,
    );
    assert_eq!(
        before, after,
        "unchanged records must not be rewritten (_synced_at, _load_id included)"
    );
    let loads = pg
        .query(&format!(
            "SELECT load_id FROM talkhouse.loads WHERE source = '{name}'"
        ))
        .await
        .unwrap();
    assert_eq!(loads.len(), 2);

    // A new version of every record does rewrite them.
    let v2 = Arc::new(CounterSource {
        version: 2,
        ..CounterSource::new(&name, 300, 100)
    });
    assert!(sync_source(v2, pg.clone(), &again).await.ok());
    let rewritten = bookkeeping(&*pg, &items).await;
    assert!(
        rewritten
            .iter()
            .zip(&before.0)
            .all(|(a, b)| a.0 == b.0 && a.2 != b.2)
    );
    cleanup(&pg, &name).await;
}

#[tokio::test]
async fn merges_children_and_erasures_like_memory() {
    let Some(pg) = dest().await else { return };
    let name = fresh("thpg_erase");
    let mem = MemoryDestination::new();
    setup_people(&*pg, &mem, &name).await;
    let erase = |column: &'static str, value: &str, mode: EraseMode, table: TableRef| Erasure {
        table,
        column,
        value: Cell::Text(value.into()),
        mode,
    };
    let people_t = TableRef::source("people");
    let notes_t = TableRef::source("notes");
    replay(
        &*pg,
        &mem,
        &name,
        vec![
            commit(
                &name,
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
                    // Last version of a key wins within a batch.
                    person("p4", "c4", "d2@x"),
                    message(&name, "m1", "c1"),
                    message(&name, "m2", "c2"),
                ],
                vec![],
            ),
            // p1's list shrank to one note; p2 unchanged (not rewritten); p3 changed.
            commit(
                &name,
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
            // Redact c1, delete c2, keep c3; model rows always go.
            commit(
                &name,
                3,
                vec![],
                vec![
                    erase("customer_id", "c1", EraseMode::Redact, people_t),
                    erase("person_id", "p1", EraseMode::Redact, notes_t),
                    erase("customer_id", "c2", EraseMode::Delete, people_t),
                    erase("person_id", "p2", EraseMode::Delete, notes_t),
                    erase("customer_id", "c3", EraseMode::Keep, people_t),
                    erase("conversation_id", "c1", EraseMode::Keep, model::MESSAGES),
                    // Unknown column and unknown value erase nothing.
                    erase("nope", "c1", EraseMode::Delete, people_t),
                    erase("customer_id", "zzz", EraseMode::Delete, people_t),
                ],
            ),
            // Erasing again counts the rows again, and does not move `_deleted_at`.
            commit(
                &name,
                4,
                vec![],
                vec![erase("customer_id", "c1", EraseMode::Redact, people_t)],
            ),
            // A deleted row that comes back is written afresh.
            commit(&name, 5, vec![person("p3", "c3", "c-new@x")], vec![]),
        ],
    )
    .await;
    let p1 = pg
        .query(&format!(
            "SELECT email, _raw, _deleted_at, _load_id FROM \"{name}\".people WHERE id = 'p1'"
        ))
        .await
        .unwrap();
    assert_eq!(p1[0]["email"], Value::Null);
    assert_eq!(p1[0]["_raw"], Value::Null);
    assert_eq!(
        p1[0]["_deleted_at"],
        json!("2024-06-01T00:00:03Z"),
        "first erasure's time stays"
    );
    assert_eq!(
        p1[0]["_load_id"],
        json!("load-1"),
        "unchanged in commit 2, so not rewritten"
    );

    // Model tables hold every source's rows: an erasure touches only its own source's.
    let other = fresh("thpg_other");
    pg.prepare(&other, &[model::tables().remove(1)])
        .await
        .unwrap();
    pg.commit(commit(&other, 1, vec![message(&other, "m9", "c9")], vec![]))
        .await
        .unwrap();
    pg.commit(commit(&name, 6, vec![message(&name, "m9", "c9")], vec![]))
        .await
        .unwrap();
    let gone = Erasure {
        table: model::MESSAGES,
        column: "conversation_id",
        value: Cell::Text("c9".into()),
        mode: EraseMode::Keep,
    };
    let stats = pg
        .commit(commit(&name, 7, vec![], vec![gone]))
        .await
        .unwrap();
    assert_eq!(stats.rows_erased, 1);
    let left = pg
        .query("SELECT source FROM talkhouse.model_messages WHERE conversation_id = 'c9'")
        .await
        .unwrap();
    assert!(
        left.iter().any(|r| r["source"] == json!(other))
            && !left.iter().any(|r| r["source"] == json!(name))
    );
    cleanup(&pg, &other).await;
    cleanup(&pg, &name).await;
}

#[tokio::test]
async fn rows_postgres_cannot_store_are_quarantined() {
    let Some(pg) = dest().await else { return };
    let name = fresh("thpg_bad");
    let mem = MemoryDestination::new();
    setup_people(&*pg, &mem, &name).await;
    let mut c = commit(
        &name,
        1,
        vec![
            person("ok", "c1", "a\0b@x"),
            Row::new(TableRef::source("people"))
                .set("customer_id", "no-id")
                .with_raw("{}"),
            person("badraw", "c1", "x").with_raw("{not json"),
            note("ok", 0, "fine"),
            Row::new(TableRef::source("notes"))
                .set("person_id", "ok")
                .set("position", "first")
                .with_raw("{}"),
        ],
        vec![],
    );
    c.quarantine.push(Quarantined {
        location: "file:3".into(),
        error: "bad".into(),
        payload: "{\"x\":".into(),
    });
    let stats = pg.commit(c).await.unwrap();
    assert_eq!(stats.rows_written, 2);
    let q = dest_quarantine(&*pg, &name).await;
    let locations: Vec<&str> = q.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        locations,
        vec![
            "file:3",
            &format!("{name}.notes"),
            &format!("{name}.people"),
            &format!("{name}.people")
        ]
    );
    assert!(
        q.iter().any(|r| r.2.contains("primary key column `id`")),
        "{q:?}"
    );
    assert!(q.iter().any(|r| r.2.contains("not valid JSON")), "{q:?}");
    assert!(q.iter().any(|r| r.2.contains("`position`")), "{q:?}");
    let ok = pg
        .query(&format!("SELECT email FROM \"{name}\".people"))
        .await
        .unwrap();
    assert_eq!(
        ok[0]["email"],
        json!("a\u{fffd}b@x"),
        "NUL stored as U+FFFD"
    );
    cleanup(&pg, &name).await;
}

#[tokio::test]
async fn a_later_spec_adds_columns() {
    let Some(pg) = dest().await else { return };
    let name = fresh("thpg_evolve");
    let mem = MemoryDestination::new();
    let v1 = TableSpec::new(
        TableRef::source("people"),
        vec![Column::new("id", ColumnType::Text)],
        &["id"],
    );
    pg.prepare(&name, std::slice::from_ref(&v1)).await.unwrap();
    mem.prepare(&name, &[v1]).await.unwrap();
    let row = |id: &str| {
        Row::new(TableRef::source("people"))
            .set("id", id)
            .with_raw(json!({ "id": id }).to_string())
    };
    let c1 = commit(&name, 1, vec![row("a")], vec![]);
    assert_eq!(
        pg.commit(c1.clone()).await.unwrap(),
        mem.commit(c1).await.unwrap()
    );

    pg.prepare(&name, &[people()]).await.unwrap();
    mem.prepare(&name, &[people()]).await.unwrap();
    let cols = pg
        .query(&format!(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = '{name}' AND table_name = 'people' ORDER BY ordinal_position"
        ))
        .await
        .unwrap();
    let names: Vec<&str> = cols
        .iter()
        .map(|c| c["column_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "_raw",
            "_synced_at",
            "_load_id",
            "_deleted_at",
            "customer_id",
            "email",
            "seen_at",
            "born",
            "extra"
        ]
    );
    assert_eq!(cols[7]["data_type"], json!("timestamp with time zone"));
    assert_eq!(cols[9]["data_type"], json!("jsonb"));
    let c2 = commit(&name, 2, vec![person("b", "c", "e@x")], vec![]);
    assert_eq!(
        pg.commit(c2.clone()).await.unwrap(),
        mem.commit(c2).await.unwrap()
    );
    assert_same(&*pg, &mem, &name, &[TableRef::source("people")]).await;
    // Preparing the same spec again changes nothing.
    pg.prepare(&name, &[people()]).await.unwrap();
    cleanup(&pg, &name).await;
}

#[tokio::test]
async fn query_converts_common_types() {
    let Some(pg) = dest().await else { return };
    let rows = pg
        .query(
            "SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 1.5::float4 AS d, 2.25::float8 AS e,
                    12.50::numeric AS f, sum(x) AS g, true AS h,
                    '2024-01-02T03:04:05.123456+02:00'::timestamptz AS i, '2024-01-02 03:04:05'::timestamp AS j,
                    '2024-01-02'::date AS k, '{\"x\": [1, \"y\"]}'::jsonb AS l, '[1]'::json AS m,
                    NULL::text AS n, 'hi'::text AS o, 'v'::varchar AS p, -0.001::numeric AS q,
                    ARRAY['a', NULL] AS r, '123e4567-e89b-12d3-a456-426614174000'::uuid AS s
             FROM (VALUES (10::bigint), (32::bigint)) AS t(x)",
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let got = Value::Object(rows[0].clone());
    let want = json!({
        "a": 1, "b": 2, "c": 3, "d": 1.5, "e": 2.25, "f": 12.5, "g": 42, "h": true,
        "i": "2024-01-02T01:04:05.123456Z", "j": "2024-01-02T03:04:05Z", "k": "2024-01-02",
        "l": {"x": [1, "y"]}, "m": [1], "n": null, "o": "hi", "p": "v", "q": -0.001,
        "r": ["a", null], "s": "123e4567-e89b-12d3-a456-426614174000"
    });
    assert_eq!(got, want);
    let keys: Vec<&String> = rows[0].keys().collect();
    assert_eq!(
        keys.first().map(|k| k.as_str()),
        Some("a"),
        "columns in select order"
    );
    // Unsupported types say what to do.
    let err = pg
        .query("SELECT '1 day'::interval AS iv")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("interval") && err.contains("::text"), "{err}");
    // DDL through execute, and a view whose columns change is replaced.
    let name = fresh("thpg_view");
    pg.execute(&format!("CREATE SCHEMA \"{name}\""))
        .await
        .unwrap();
    pg.execute(&format!(
        "CREATE OR REPLACE VIEW \"{name}\".v AS SELECT 1 AS a, 2 AS b"
    ))
    .await
    .unwrap();
    pg.execute(&format!(
        "CREATE OR REPLACE VIEW \"{name}\".v AS SELECT 3 AS c"
    ))
    .await
    .unwrap();
    let v = pg
        .query(&format!("SELECT * FROM \"{name}\".v"))
        .await
        .unwrap();
    assert_eq!(Value::Object(v[0].clone()), json!({"c": 3}));
    pg.ping().await.unwrap();
    cleanup(&pg, &name).await;
}

#[tokio::test]
async fn secrets_stay_out_of_messages() {
    let Some(url) = url() else { return };
    // The test server trusts every password, so this one connects.
    let with_password = url
        .replacen("://", "://postgres:hunter2secret@", 1)
        .replacen("postgres@", "", 1);
    let d = connect(&with_password).await.unwrap();
    assert!(!d.describe().contains("hunter2secret"), "{}", d.describe());
    assert!(!format!("{d:?}").contains("hunter2secret"));
    let err = d
        .query("SELECT nonsense_column FROM nowhere")
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2secret"));
    // Nothing listens on port 1.
    let err = connect("postgres://u:hunter2secret@127.0.0.1:1/db")
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("hunter2secret") && text.contains("127.0.0.1:1"),
        "{text}"
    );
    // TLS asked of a server that may not offer it: either way, no secret in the message.
    if let Err(err) = connect(&format!("{with_password}?sslmode=require")).await {
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2secret"), "{text}");
    }
}

#[tokio::test]
async fn tls_verifies_the_server_certificate() {
    let Some(pg) = dest().await else { return };
    let Some(url) = url() else { return };
    let setting = |name: &'static str| {
        let pg = pg.clone();
        async move {
            pg.query(&format!("SELECT current_setting('{name}') AS v"))
                .await
                .unwrap()[0]["v"]
                .clone()
        }
    };
    if setting("ssl").await != json!("on") {
        eprintln!("skipping: the test server does not offer TLS");
        return;
    }
    let cert = setting("ssl_cert_file")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let readable =
        std::fs::read_to_string(&cert).is_ok_and(|pem| pem.contains("BEGIN CERTIFICATE"));
    let local = url.replace("127.0.0.1", "localhost");
    if !readable || !local.contains("localhost") {
        eprintln!(
            "skipping: the server certificate {cert} is not readable here, or the URL is not local"
        );
        return;
    }
    let sep = if local.contains('?') { '&' } else { '?' };
    // A self-signed certificate is not in the webpki roots: refused.
    let err = connect(&format!("{local}{sep}sslmode=require"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // With the server's certificate as root (it names `localhost`), the connection is encrypted.
    let d = connect(&format!("{local}{sep}sslmode=require&sslrootcert={cert}")).await;
    match d {
        Ok(d) => {
            assert!(d.describe().ends_with("?sslmode=require"));
            let ssl = d
                .query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .await
                .unwrap();
            assert_eq!(ssl[0]["ssl"], json!(true));
        }
        // A certificate that does not name `localhost` cannot verify; that is not our bug.
        Err(e) if e.to_string().contains("NotValidForName") => eprintln!("skipping: {e}"),
        Err(e) => panic!("TLS connection failed: {e}"),
    }
}
