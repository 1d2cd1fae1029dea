//! The views and the report against real SQL engines, checked against figures computed here in
//! plain Rust from the same generated data.
//!
//! * PostgreSQL: the local server (`TALKHOUSE_TEST_PG`, default
//!   `host=127.0.0.1 user=postgres dbname=test`); a fresh database per run, dropped afterwards.
//! * DuckDB: the embedded destination, in memory; same SQL, same checks.
//!
//! Both read Ada's and Ultimate's metrics through the connectors' own views (the SQL that a sync
//! creates), and leave test conversations out, as the reference does. A second source of vendor
//! `gladly` reports contacts, agent work, teams and merges (`support::work`): its sessions,
//! work, handle time, top agents and teams and first response per contact are checked too.
//!
//! Without a PostgreSQL server its test skips, saying so, except under `CI=true`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

mod support;

use serde_json::{Map, Value};
use support::{Dataset, Engine, check_report};
use talkhouse_analytics::sql;

/// How many rows of `own` (one query's answer) have a row in `taken` (the same query's rows
/// taken from a merged query) with the same value in each of `own`'s columns: integers equal,
/// other numbers equal to 1e-12 relative (a sum over another grouping may add in another
/// order), text equal. Numbers may come as text (NUMERIC).
fn same_rows(taken: &[Map<String, Value>], own: &[Map<String, Value>]) -> usize {
    let same = |a: Option<&Value>, b: &Value| -> bool {
        let a = a.unwrap_or(&Value::Null);
        let number = |v: &Value| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse::<f64>().ok()))
        };
        match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => a == b,
        }
    };
    own.iter()
        .filter(|o| {
            taken
                .iter()
                .any(|t| o.iter().all(|(k, v)| same(t.get(k), v)))
        })
        .count()
}

#[tokio::test]
async fn postgres_views_and_report_match_reference() {
    let Some(engine) = support::pg::connect().await else {
        eprintln!("SKIPPED: no PostgreSQL reachable");
        return;
    };
    run(&engine).await;
    engine.cleanup().await;
}

#[tokio::test]
async fn duckdb_views_and_report_match_reference() {
    run(&support::duck::connect()).await;
}

async fn run(engine: &dyn Engine) {
    let data = Dataset::generate(7, 240);
    engine.load(&data).await;
    for stmt in talkhouse_analytics::model_view_statements() {
        engine
            .dest()
            .execute(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}\n{e}"));
    }
    // Row-level checks of the views.
    support::check_views(engine.dest(), &data).await;
    support::work::check_views(engine.dest(), &data.work).await;
    // The report takes the first-response histogram from the first response's own row: the
    // same buckets and counts as the histogram's own query.
    for since in [None, Some(data.since_day())] {
        let pairs = |rows: &[serde_json::Map<String, serde_json::Value>]| -> Vec<(u64, u64)> {
            let n = |v: Option<&serde_json::Value>| {
                let v = v.unwrap();
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .unwrap()
            };
            rows.iter()
                .map(|r| (n(r.get("bucket")), n(r.get("n"))))
                .collect()
        };
        let own = engine
            .dest()
            .query(&talkhouse_analytics::sql::first_response_histogram(since))
            .await
            .unwrap();
        let combined = engine
            .dest()
            .query(&talkhouse_analytics::sql::first_response_with_histogram(
                since,
            ))
            .await
            .unwrap();
        assert!(!own.is_empty());
        let taken = talkhouse_analytics::sql::histogram_rows(&combined);
        assert_eq!(pairs(taken.as_slice()), pairs(own.as_slice()));
    }
    // The report takes conversation counts, outcomes and messages per conversation from one
    // query, split by part: the same rows as the three queries of their own.
    for since in [None, Some(data.since_day())] {
        let merged = engine
            .dest()
            .query(&sql::conversation_figures(since))
            .await
            .unwrap();
        let [counts, outcomes, per_conversation] = sql::conversation_rows(&merged);
        assert_eq!(
            counts.len() + outcomes.len() + per_conversation.len(),
            merged.len()
        );
        assert_eq!(per_conversation.len(), 1);
        for (taken, own) in [
            (counts, sql::conversation_counts(since)),
            (outcomes, sql::outcomes(since)),
            (per_conversation, sql::per_conversation(since)),
        ] {
            let own = engine.dest().query(&own).await.unwrap();
            assert!(!own.is_empty());
            assert_eq!(taken.len(), own.len(), "{taken:?}\n{own:?}");
            assert_eq!(same_rows(&taken, &own), own.len(), "{taken:?}\n{own:?}");
        }
    }
    // The report, whole and with --since.
    let report = talkhouse_analytics::report(engine.dest(), None)
        .await
        .unwrap();
    check_report(&report, &data, None);
    support::work::check_report(&report, &data.visible_messages(), &data.work, None);
    let since = data.since_day();
    let report = talkhouse_analytics::report(engine.dest(), Some(since))
        .await
        .unwrap();
    check_report(&report, &data, Some(since));
    support::work::check_report(&report, &data.visible_messages(), &data.work, Some(since));
    // Renders without panicking and carries the figures.
    let html = report.to_html();
    assert!(html.contains("<svg") && html.contains("</html>"));
    let table = report.to_table();
    assert!(table.contains("First response"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    for key in [
        "generated_at",
        "since",
        "sources",
        "conversations",
        "messages",
        "first_response_seconds",
        "sentiment",
        "ultimate",
        "ada",
        "gladly",
    ] {
        assert!(json.get(key).is_some(), "missing key {key}");
    }
}
