//! Batch writes into PostgreSQL: rows/s for an 8-column table, written in commits of
//! `TALKHOUSE_BENCH_BATCH` rows (default 50 000, the engine's default batch cap).
//!
//! ```text
//! TALKHOUSE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --workspace --all-features --profile dev --bench postgres_write
//! ```
//! `TALKHOUSE_BENCH_ROWS` sets the row count (default 1 000 000). Three passes: a first load
//! (every row new), the same rows again (nothing changes: the unchanged-row path), and a new
//! version of every row (everything rewritten).
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::time::Instant;

use chrono::{TimeZone, Utc};
use talkhouse_destinations::postgres::connect;
use talkhouse_model::{Column, ColumnType, Commit, Destination, Row, TableRef, TableSpec};

const ITEMS: TableRef = TableRef::source("items");

fn spec() -> TableSpec {
    TableSpec::new(
        ITEMS,
        vec![
            Column::new("id", ColumnType::Text),
            Column::new("conversation_id", ColumnType::Text),
            Column::new("customer_id", ColumnType::Text),
            Column::new("kind", ColumnType::Text),
            Column::personal("body", ColumnType::Text),
            Column::new("position", ColumnType::Integer),
            Column::new("score", ColumnType::Float),
            Column::new("created_at", ColumnType::Timestamp),
        ],
        &["id"],
    )
}

fn row(i: u64, version: u64) -> Row {
    let id = format!("item-{i:08}");
    let conv = format!("conv-{:07}", i / 10);
    let customer = format!("cust-{:06}", i / 40);
    let body = format!(
        "Hello, this is message {i} (v{version}) about order {}",
        i * 7 % 10_007
    );
    let at = Utc
        .timestamp_opt(1_700_000_000 + i64::try_from(i).unwrap_or(0), 0)
        .single()
        .unwrap_or_default();
    let raw = serde_json::json!({
        "id": id, "conversationId": conv, "customerId": customer, "type": "CHAT_MESSAGE",
        "content": {"body": body}, "position": i % 10, "score": 0.25, "timestamp": at.to_rfc3339(), "v": version,
    })
    .to_string();
    Row::new(ITEMS)
        .set("id", id)
        .set("conversation_id", conv)
        .set("customer_id", customer)
        .set("kind", "CHAT_MESSAGE")
        .set("body", body)
        .set("position", i64::try_from(i % 10).unwrap_or(0))
        .set("score", 0.25)
        .set("created_at", at)
        .with_raw(raw)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Ok(url) = std::env::var("TALKHOUSE_TEST_POSTGRES_URL") else {
        eprintln!("skipping: TALKHOUSE_TEST_POSTGRES_URL is not set");
        return;
    };
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let total = env("TALKHOUSE_BENCH_ROWS", 1_000_000);
    let batch = env("TALKHOUSE_BENCH_BATCH", 50_000).max(1);
    let dest = match connect(&url).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            std::process::exit(1);
        }
    };
    let source = format!("bench_{}", std::process::id());
    let run = async {
        dest.init().await?;
        dest.prepare(&source, &[spec()]).await?;
        for (pass, version) in [("first load", 1), ("unchanged", 1), ("all changed", 2)] {
            let mut written = 0;
            let mut elapsed = std::time::Duration::ZERO;
            let mut from = 0;
            while from < total {
                let to = (from + batch).min(total);
                let rows: Vec<Row> = (from..to).map(|i| row(i, version)).collect();
                let commit = Commit {
                    source: source.clone(),
                    stream: "items".into(),
                    load_id: format!("bench-{pass}"),
                    synced_at: Utc::now(),
                    rows,
                    erasures: Vec::new(),
                    quarantine: Vec::new(),
                    state: Some(serde_json::json!({ "done": to })),
                    more_follows: false,
                };
                let start = Instant::now();
                written += dest.commit(commit).await?.rows_written;
                elapsed += start.elapsed();
                from = to;
            }
            #[allow(clippy::cast_precision_loss)]
            let rate = total as f64 / elapsed.as_secs_f64();
            println!(
                "postgres_write {pass:>12}: {total} rows in {:.2} s = {rate:.0} rows/s ({written} written, batches of {batch})",
                elapsed.as_secs_f64()
            );
        }
        Ok::<_, talkhouse_model::DestinationError>(())
    };
    let result = run.await;
    let _ = dest.execute(&format!("DROP SCHEMA IF EXISTS \"{source}\" CASCADE; DELETE FROM talkhouse.state WHERE source = '{source}'")).await;
    if let Err(e) = result {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}
