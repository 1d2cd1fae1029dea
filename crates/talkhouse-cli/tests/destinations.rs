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

use serde_json::Value;
use support::{
    FreshDatabase, assert_close, json_of, postgres_url, rows, sources_toml, sync, tables,
};
use talkhouse_destinations::delta::DeltaDestination;
use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_destinations::postgres::connect;
use talkhouse_emulator::{EmulatorOptions, Vendor};
use talkhouse_model::Destination;

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
