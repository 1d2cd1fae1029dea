//! Batch writes into DuckDB: rows/s for 1M rows of an 8-column table.
//!
//! `cargo bench --workspace --all-features --profile dev --bench duckdb_write` prints one figure per batch size.

#![allow(clippy::print_stdout, missing_docs)]

use std::time::Instant;

use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_model::{Column, ColumnType as T, Commit, Destination, Row, TableRef, TableSpec};

/// The allocator of the `talkhouse` binary, so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TABLE: TableRef = TableRef::source("bench");

fn spec() -> TableSpec {
    TableSpec::new(
        TABLE,
        vec![
            Column::new("id", T::Integer),
            Column::new("conversation_id", T::Text),
            Column::new("channel", T::Text),
            Column::new("sent_at", T::Timestamp),
            Column::new("body", T::Text),
            Column::new("score", T::Float),
            Column::new("is_bot", T::Boolean),
            Column::new("position", T::Integer),
        ],
        &["id"],
    )
}

fn row(i: i64, t0: chrono::DateTime<chrono::Utc>) -> Row {
    Row::new(TABLE)
        .set("id", i)
        .set("conversation_id", format!("c{}", i / 10))
        .set("channel", if i % 3 == 0 { "chat" } else { "email" })
        .set("sent_at", t0 + chrono::Duration::seconds(i))
        .set("body", format!("message number {i}"))
        .set("score", (i % 100) as f64 / 100.0)
        .set("is_bot", i % 2 == 0)
        .set("position", i % 10)
        .with_raw(format!("{{\"id\":{i}}}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let total: i64 = 1_000_000;
    let t0 = chrono::Utc::now();
    for batch in [50_000_i64, 200_000] {
        let dest = DuckDbDestination::in_memory().expect("duckdb");
        dest.init().await.expect("init");
        dest.prepare("bench", &[spec()]).await.expect("prepare");
        let mut build = std::time::Duration::ZERO;
        let start = Instant::now();
        let mut from = 0;
        while from < total {
            let b = Instant::now();
            let rows: Vec<Row> = (from..(from + batch).min(total))
                .map(|i| row(i, t0))
                .collect();
            build += b.elapsed();
            let commit = Commit {
                source: "bench".into(),
                stream: "bench".into(),
                load_id: "bench".into(),
                synced_at: t0,
                rows,
                erasures: vec![],
                quarantine: vec![],
                state: Some(serde_json::json!({ "done": from + batch })),
                more_follows: false,
            };
            dest.commit(commit).await.expect("commit");
            from += batch;
        }
        let write = start.elapsed() - build;
        let n = dest
            .query("SELECT count(*) AS n FROM bench.bench")
            .await
            .expect("count");
        println!(
            "duckdb_write: {total} rows, batches of {batch}: {:.0} rows/s written ({:.2} s; {} rows in table; row building excluded: {:.2} s)",
            total as f64 / write.as_secs_f64(),
            write.as_secs_f64(),
            n[0]["n"],
            build.as_secs_f64()
        );
    }
}
