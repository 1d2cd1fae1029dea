//! One sync of the four vendor emulators into DuckDB, PostgreSQL and Delta Lake, through the
//! `talkhouse` binary: every vendor and model table holds the same rows in all three, `report`
//! and `status` agree, and `purge` removes a merged customer from all three.
//!
//! Needs the `delta` feature (`cargo test --all-features`) and PostgreSQL at
//! `TALKHOUSE_TEST_POSTGRES_URL`; without the URL the test skips, except under `CI=true`. It
//! works in a database of its own, dropped at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

mod support;

use std::process::Command;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use support::{
    FreshDatabase, assert_close, json_of, postgres_url, rows, sources_toml, sync, tables,
};
use talkhouse_destinations::delta::DeltaDestination;
use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_destinations::postgres::connect;
use talkhouse_emulator::{EmulatorOptions, Vendor};
use talkhouse_model::{
    Cell, Column, ColumnType as T, Destination, Event, EventStream, Row, Source, StreamContext,
    StreamDef, TableRef, TableSpec,
};

#[tokio::test(flavor = "multi_thread")]
async fn duckdb_postgres_and_delta_hold_the_same_rows() {
    let Some(base) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let opts = EmulatorOptions::new(11, 0.1);
    let mut running = Vec::new();
    for v in Vendor::ALL {
        running.push(talkhouse_emulator::start(v, &opts, 0).await.unwrap());
    }
    let sources = sources_toml(&running);

    let db = FreshDatabase::create(&base, "th_dest").await;
    let pg_url = db.url.clone();
    let duck_path = dir.path().join("warehouse.duckdb");
    let delta_root = dir.path().join("delta");
    sync(
        dir.path(),
        "duckdb",
        &format!(
            "kind = \"duckdb\"\npath = {:?}",
            duck_path.display().to_string()
        ),
        &sources,
    );
    sync(
        dir.path(),
        "postgres",
        &format!("kind = \"postgres\"\nurl = {:?}", pg_url.to_string()),
        &sources,
    );
    sync(
        dir.path(),
        "delta",
        &format!(
            "kind = \"delta\"\nroot = {:?}",
            delta_root.display().to_string()
        ),
        &sources,
    );
    for r in running {
        r.stop().await;
    }

    let duck = DuckDbDestination::open(&duck_path).unwrap();
    let pg = connect(pg_url.as_str()).await.unwrap();
    let delta = DeltaDestination::open(&delta_root.display().to_string()).unwrap();
    let tables = tables(&duck).await;
    assert!(tables.len() >= 15, "{:?}", tables.keys());
    let mut compared = 0;
    for (table, columns) in &tables {
        let want = rows(&duck, table, columns).await;
        let from_pg = rows(&pg, table, columns).await;
        let from_delta = rows(&delta, table, columns).await;
        assert_eq!(from_pg.len(), want.len(), "rows of {table} in PostgreSQL");
        assert_eq!(
            from_delta.len(),
            want.len(),
            "rows of {table} in Delta Lake"
        );
        for (i, w) in want.iter().enumerate() {
            assert_eq!(&from_pg[i], w, "{table} in PostgreSQL, row {i}");
            assert_eq!(&from_delta[i], w, "{table} in Delta Lake, row {i}");
        }
        compared += want.len();
    }
    eprintln!(
        "{} tables, {compared} rows identical in DuckDB, PostgreSQL and Delta Lake",
        tables.len()
    );
    assert!(compared > 1_000);

    // `purge` removes a merged customer everywhere, in every destination.
    let merged = duck
        .query("SELECT new_id, old_id FROM gladly.customer_merges ORDER BY new_id LIMIT 1")
        .await
        .unwrap();
    assert!(!merged.is_empty(), "the emulator merges customers");
    let ids: Vec<String> = ["new_id", "old_id"]
        .iter()
        .map(|k| merged[0][*k].as_str().unwrap().to_owned())
        .collect();
    let list = |values: &[String]| {
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let conversations: Vec<String> = duck
        .query(&format!(
            "SELECT conversation_id FROM talkhouse.model_conversations \
             WHERE source = 'gladly' AND customer_id IN ({})",
            list(&ids)
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r["conversation_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !conversations.is_empty(),
        "the merged customer has conversations"
    );
    drop(duck); // DuckDB admits one process per file

    // `report` and `status` read every destination alike.
    let mut want = json_of(dir.path(), "duckdb", "report");
    want["generated_at"] = Value::Null;
    assert!(
        want["conversations"]["total"].as_u64().unwrap_or(0) > 0,
        "{want}"
    );
    for name in ["postgres", "delta"] {
        let mut got = json_of(dir.path(), name, "report");
        got["generated_at"] = Value::Null;
        assert_close(&got, &want, name);
    }
    for name in ["duckdb", "postgres", "delta"] {
        let status = json_of(dir.path(), name, "status");
        let streams = status["streams"].as_array().unwrap();
        assert!(
            streams.len() >= 10 && streams.iter().all(|s| s["status"] == "succeeded"),
            "{name}: {status}"
        );
        // `talkhouse.loads` carries the vendor requests of each run in every destination.
        let export = streams
            .iter()
            .find(|s| s["source"] == "gladly" && s["stream"] == "export")
            .unwrap();
        assert!(export["requests"].as_i64().unwrap() > 0, "{name}: {export}");
    }

    for name in ["duckdb", "postgres", "delta"] {
        let out = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
            .args(["purge", "--customer", &ids[0], "--config"])
            .arg(dir.path().join(format!("{name}.toml")))
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "purge on {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&ids[1]) && text.contains("gladly.conversation_items"),
            "{name}: {text}"
        );
    }
    let duck = DuckDbDestination::open(&duck_path).unwrap();
    let checks = [
        ("gladly.customers", "id", &ids),
        ("gladly.conversation_items", "customer_id", &ids),
        ("gladly.conversations", "customer_id", &ids),
        ("gladly.customer_merges", "old_id", &ids),
        ("gladly.customer_merges", "new_id", &ids),
        ("talkhouse.model_conversations", "customer_id", &ids),
        (
            "talkhouse.model_messages",
            "conversation_id",
            &conversations,
        ),
        (
            "gladly.conversation_items",
            "conversation_id",
            &conversations,
        ),
        (
            "gladly.conversation_assignments",
            "conversation_id",
            &conversations,
        ),
    ];
    for (name, dest) in [
        ("duckdb", &duck as &dyn Destination),
        ("postgres", &pg),
        ("delta", &delta),
    ] {
        for (table, column, values) in &checks {
            let n = dest
                .query(&format!(
                    "SELECT count(*) AS n FROM {table} WHERE {column} IN ({})",
                    list(values)
                ))
                .await
                .unwrap();
            assert_eq!(
                n[0]["n"].as_u64(),
                Some(0),
                "{name}: {table}.{column} after purge"
            );
        }
        let left = dest
            .query("SELECT count(*) AS n FROM gladly.conversation_items")
            .await
            .unwrap();
        assert!(
            left[0]["n"].as_u64().unwrap_or(0) > 0,
            "{name}: other customers stay"
        );
    }
    drop(pg);
    db.drop_it().await;
}

/// A source whose one table receives values of the wrong type, as vendors send them.
struct Awkward;

const CELLS: TableRef = TableRef::source("cells");

/// The records the source sends: id 1 to 4 try the rules on every column, id 5 has a key of
/// the wrong type.
fn awkward_rows() -> Vec<Row> {
    let nan = f64::NAN;
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 23, 59, 59).unwrap();
    let cases: Vec<Vec<(&'static str, Cell)>> = vec![
        // 1: converted without loss.
        vec![
            ("i", Cell::Float(3.0)),
            ("f", Cell::Integer(2)),
            ("b", Cell::Text("yes".into())),
            ("ts", Cell::Text("2026-03-01T10:00:00+02:00".into())),
            ("d", Cell::Text("2026-03-01T23:30:00-02:00".into())),
            ("t", Cell::Float(1.5)),
            ("j", Cell::Text("s".into())),
        ],
        // 2: a fraction, NaN, an integer that is no boolean; a timestamp without a zone; NUL.
        vec![
            ("i", Cell::Float(3.5)),
            ("f", Cell::Float(nan)),
            ("b", Cell::Integer(2)),
            ("ts", Cell::Text("2026-03-01T10:00:00".into())),
            ("d", Cell::Text("2026-03-01".into())),
            ("t", Cell::Text("a\0b".into())),
            ("j", Cell::Json(json!({"k": "x\u{0}y"}))),
        ],
        // 3: a number too large for an integer; huge float text; a bare date as a timestamp.
        vec![
            ("i", Cell::Text("99999999999999999999".into())),
            ("f", Cell::Text("1e308".into())),
            ("b", Cell::Text("".into())),
            ("ts", Cell::Text("2026-03-01".into())),
            ("d", Cell::Timestamp(at)),
            ("t", Cell::Boolean(true)),
            ("j", Cell::Integer(3)),
        ],
        // 4: numeric text, text that is no number, epoch seconds, a JSON document as text.
        vec![
            ("i", Cell::Text(" 42 ".into())),
            ("f", Cell::Text("abc".into())),
            ("b", Cell::Integer(0)),
            ("ts", Cell::Integer(1_772_323_200)),
            ("d", Cell::Text("yesterday".into())),
            ("t", Cell::Json(json!({"a": [1, 2]}))),
            ("j", Cell::Float(0.25)),
        ],
    ];
    let mut rows: Vec<Row> = cases
        .into_iter()
        .enumerate()
        .map(|(n, cells)| {
            let mut row = Row::new(CELLS).set("id", i64::try_from(n + 1).unwrap());
            for (c, v) in cells {
                row.put(c, v);
            }
            row.with_raw(format!("{{\"case\":{}}}", n + 1))
        })
        .collect();
    // 5: a key of the wrong type: the record cannot be stored anywhere.
    rows.push(
        Row::new(CELLS)
            .set("id", "five")
            .set("t", "lost")
            .with_raw("{\"case\":5}"),
    );
    rows
}

impl Source for Awkward {
    fn name(&self) -> &str {
        "awkward"
    }
    fn vendor(&self) -> &'static str {
        "awkward"
    }
    fn tables(&self) -> Vec<TableSpec> {
        vec![TableSpec::new(
            CELLS,
            vec![
                Column::new("id", T::Integer),
                Column::new("i", T::Integer),
                Column::new("f", T::Float),
                Column::new("b", T::Boolean),
                Column::new("ts", T::Timestamp),
                Column::new("d", T::Date),
                Column::new("t", T::Text),
                Column::new("j", T::Json),
            ],
            &["id"],
        )]
    }
    fn streams(&self) -> Vec<StreamDef> {
        vec![StreamDef::new("cells")]
    }
    fn run_stream(&self, _stream: &str, _ctx: StreamContext) -> EventStream<'_> {
        let mut events: Vec<Result<Event, talkhouse_model::SourceError>> = awkward_rows()
            .into_iter()
            .map(|r| Ok(Event::Records(vec![r])))
            .collect();
        events.push(Ok(Event::Checkpoint(json!({"done": true}))));
        Box::pin(futures::stream::iter(events))
    }
}

/// One rule set turns every cell into its column's type before any destination sees it
/// (`talkhouse_model::coerce`): the same awkward values land as the same cells in DuckDB,
/// PostgreSQL and Delta Lake, those that have no value of the column's type are NULL with a
/// note in `talkhouse.quarantine`, and a record whose key has the wrong type is quarantined
/// whole.
#[tokio::test(flavor = "multi_thread")]
async fn awkward_values_land_alike_in_every_destination() {
    let Some(base) = postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = FreshDatabase::create(&base, "th_coerce").await;
    let duck: Arc<dyn Destination> =
        Arc::new(DuckDbDestination::open(&dir.path().join("w.duckdb")).unwrap());
    let pg: Arc<dyn Destination> = Arc::new(connect(db.url.as_str()).await.unwrap());
    let delta: Arc<dyn Destination> =
        Arc::new(DeltaDestination::open(&dir.path().join("delta").display().to_string()).unwrap());
    let dests = [("duckdb", duck), ("postgres", pg), ("delta", delta)];
    for (name, dest) in &dests {
        let report = talkhouse_sync::sync_source(
            Arc::new(Awkward),
            dest.clone(),
            &talkhouse_sync::SyncOptions::default(),
        )
        .await;
        assert!(report.ok(), "{name}: {report:?}");
    }
    let columns: Vec<(String, String)> = [
        ("id", "BIGINT"),
        ("i", "BIGINT"),
        ("f", "DOUBLE"),
        ("b", "BOOLEAN"),
        ("ts", "TIMESTAMP WITH TIME ZONE"),
        ("d", "DATE"),
        ("t", "VARCHAR"),
        ("j", "JSON"),
    ]
    .iter()
    .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
    .collect();
    let micros = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    };
    let want: Vec<Value> = vec![
        json!({"id": 1, "i": 3, "f": 2.0, "b": true, "ts": micros("2026-03-01T08:00:00Z"),
               "d": "2026-03-02", "t": "1.5", "j": "s"}),
        json!({"id": 2, "i": null, "f": null, "b": null, "ts": micros("2026-03-01T10:00:00Z"),
               "d": "2026-03-01", "t": "a\u{fffd}b", "j": {"k": "x\u{fffd}y"}}),
        json!({"id": 3, "i": null, "f": 1e308, "b": null, "ts": micros("2026-03-01T00:00:00Z"),
               "d": "2026-03-01", "t": "true", "j": 3}),
        json!({"id": 4, "i": 42, "f": null, "b": false, "ts": micros("2026-03-01T00:00:00Z"),
               "d": null, "t": "{\"a\":[1,2]}", "j": 0.25}),
    ];
    for (name, dest) in &dests {
        let mut got: Vec<Value> = rows(&**dest, "awkward.cells", &columns)
            .await
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect();
        got.sort_by_key(|r| r["id"].as_i64());
        assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert_close(g, w, name);
        }
        // Row 2: i, b; row 3: i; row 4: f, d; and the record with the bad key. (NaN and blank
        // text are NULL by rule, without a note.)
        let q = dest
            .query(
                "SELECT location, error FROM talkhouse.quarantine WHERE source = 'awkward' \
                 ORDER BY location",
            )
            .await
            .unwrap();
        assert_eq!(q.len(), 6, "{name}: {q:#?}");
        assert!(
            q.iter().any(|r| r["error"]
                .as_str()
                .is_some_and(|e| e.contains("key column `id`"))),
            "{name}: {q:#?}"
        );
        assert!(
            q.iter().any(|r| r["location"]
                .as_str()
                .is_some_and(|l| l.starts_with("awkward.cells.i (id=2)"))),
            "{name}: {q:#?}"
        );
    }
    drop(dests);
    db.drop_it().await;
}
