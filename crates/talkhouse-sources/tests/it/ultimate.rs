//! Ultimate connector against the emulator: full sync = ground truth, late data picked up by
//! re-reading trailing days. (The metric views' SQL is checked against the emulator's own
//! computation in DuckDB, PostgreSQL and Delta Lake by `talkhouse-cli`'s `destinations` test.)

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use talkhouse_emulator::{Clock, EmulatorOptions, GroundTruth, Running, Variants, Vendor, serve};
use talkhouse_model::{Cell, Source};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::{SyncOptions, sync_source};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-10T09:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

type Truth = Arc<dyn Fn() -> GroundTruth + Send + Sync>;

async fn emulator(variants: Variants, scale: f64, now: DateTime<Utc>) -> (Running, Truth) {
    let mut opts = EmulatorOptions::new(11, scale);
    opts.clock = Clock::at(now);
    opts.variants = variants;
    let app = talkhouse_emulator::server::app(Vendor::Ultimate, &opts);
    let truth = app.truth.clone();
    (
        serve(Vendor::Ultimate, app, &opts, 0)
            .await
            .expect("emulator starts"),
        truth,
    )
}

fn source(run: &Running, truth: &GroundTruth, token: Option<&str>) -> Arc<dyn Source> {
    let mut t = toml::Table::new();
    t.insert("base_url".into(), run.base_url.clone().into());
    for (k, v) in &run.credentials.fields {
        let v: toml::Value = toml::Value::try_from(v).expect("toml value");
        t.insert((*k).to_owned(), v);
    }
    if let Some(tok) = token {
        t.insert("token".into(), tok.into());
    }
    for k in ["first_day", "last_day"] {
        let d = truth.extra[k].as_str().expect("day");
        let key = if k == "first_day" {
            "start_date"
        } else {
            "end_date"
        };
        t.insert(key.into(), toml::Value::Datetime(d.parse().expect("date")));
    }
    t.insert("requests_per_second".into(), 1000.0.into());
    talkhouse_sources::ultimate::build("ultimate", t).expect("builds")
}

async fn sync_and_check(variants: Variants) {
    let (run, truth) = emulator(variants, 0.4, t0()).await;
    let truth = truth();
    let dest = Arc::new(MemoryDestination::new());
    let report = sync_source(
        source(&run, &truth, None),
        dest.clone(),
        &SyncOptions::default(),
    )
    .await;
    assert!(report.ok(), "{report:?}");
    for (table, schema) in [
        ("conversations", "ultimate"),
        ("triggered_intent_replies", "ultimate"),
        ("triggered_replies", "ultimate"),
        ("model_conversations", "talkhouse"),
    ] {
        assert_eq!(
            dest.count(schema, table) as u64,
            truth.tables[table],
            "{schema}.{table}"
        );
    }
    assert!(
        dest.count("talkhouse", "model_messages") == 0,
        "the export has no message text"
    );
    // Quarantine: every malformed line once (distinct locations), and each conversation whose
    // conversations_data is not JSON (its row loads with the column NULL).
    let q = dest.quarantine();
    let lines: BTreeSet<String> = q
        .iter()
        .filter(|(_, _, r)| !r.error.contains("conversations_data"))
        .map(|(_, _, r)| r.location.clone())
        .collect();
    assert_eq!(
        lines.len() as u64,
        truth.extra["malformed_lines"].as_u64().unwrap_or(0)
    );
    let null_data = dest
        .rows("ultimate", "conversations")
        .iter()
        .filter(|r| !r.cells.contains_key("conversations_data"))
        .count();
    assert_eq!(
        null_data as u64,
        truth.extra["bad_conversations_data"].as_u64().unwrap_or(0)
    );
    assert!(
        q.iter()
            .any(|(_, _, r)| r.error.contains("conversations_data"))
    );
    // Every (bot, day) read is recorded, so the views can tell which days are final.
    assert_eq!(
        dest.count("ultimate", "export_days") as u64,
        truth.tables["export_days"]
    );
    // Test conversations are marked in the model (the views leave them out).
    let tests = dest
        .rows("talkhouse", "model_conversations")
        .iter()
        .filter(|r| r.cells.get("is_test") == Some(&Cell::Boolean(true)))
        .count();
    assert_eq!(
        tests as u64,
        truth.extra["test_conversations"]
            .as_u64()
            .unwrap_or(u64::MAX)
    );
    // Every bot has a cursor at the last day.
    let state = dest.state("ultimate", "conversations").expect("state");
    for bot in truth.extra["bot_ids"].as_array().expect("bots") {
        let bot = bot.as_str().unwrap_or_default();
        assert_eq!(
            state["bots"][bot]["through"], truth.extra["last_day"],
            "{bot}"
        );
    }
    // A second run changes nothing.
    let before = dest.snapshot();
    let report = sync_source(
        source(&run, &truth, None),
        dest.clone(),
        &SyncOptions::default(),
    )
    .await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(before, dest.snapshot());
}

#[tokio::test]
async fn full_sync_equals_truth_seed_shapes() {
    sync_and_check(Variants::default()).await;
}

#[tokio::test]
async fn full_sync_equals_truth_observed_shapes() {
    let v = Variants::default()
        .with("ultimate.response_key", "signed_urls")
        .with("ultimate.format", "array")
        .with("ultimate.gzip", "magic")
        .with("ultimate.keys", "upper")
        .with("ultimate.counts", "int")
        .with("ultimate.booleans", "string")
        .with("ultimate.timestamps", "utc")
        .with("ultimate.intents", "strings")
        .with("ultimate.fields", "both")
        .with("ultimate.status", "snake")
        .with("ultimate.expire_first", "on");
    sync_and_check(v).await;
}

#[tokio::test]
async fn gzip_encoding_epoch_times_and_one_string_lists() {
    let v = Variants::default()
        .with("ultimate.gzip", "encoding")
        .with("ultimate.timestamps", "epoch")
        .with("ultimate.intents", "string")
        .with("ultimate.fields", "knowledge")
        .with("ultimate.shards", "1");
    sync_and_check(v).await;
}

#[tokio::test]
async fn late_rows_and_late_endings_are_picked_up_by_rereading() {
    // 02:00: yesterday's file exists but its late rows have not joined it yet.
    let early = t0() - Duration::hours(7);
    let (run, truth) = emulator(Variants::default(), 1.0, early).await;
    let first = truth();
    let dest = Arc::new(MemoryDestination::new());
    let report = sync_source(
        source(&run, &first, None),
        dest.clone(),
        &SyncOptions::default(),
    )
    .await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(
        dest.count("ultimate", "conversations") as u64,
        first.tables["conversations"]
    );
    // A day later, after 06:00: the previous day's file grew, and conversations that began
    // before midnight ended in the new day's file.
    run.clock
        .set(early + Duration::days(1) + Duration::hours(6));
    let second = truth();
    assert!(second.tables["conversations"] > first.tables["conversations"]);
    let report = sync_source(
        source(&run, &second, None),
        dest.clone(),
        &SyncOptions::default(),
    )
    .await;
    assert!(report.ok(), "{report:?}");
    for table in [
        "conversations",
        "triggered_intent_replies",
        "triggered_replies",
    ] {
        assert_eq!(
            dest.count("ultimate", table) as u64,
            second.tables[table],
            "{table}"
        );
    }
}

#[tokio::test]
async fn bad_key_fails_loudly() {
    let (run, truth) = emulator(Variants::default(), 0.1, t0()).await;
    let truth = truth();
    let dest = Arc::new(MemoryDestination::new());
    let report = sync_source(
        source(&run, &truth, Some("nope")),
        dest.clone(),
        &SyncOptions::default(),
    )
    .await;
    assert!(!report.ok());
    let err = report.streams[0].error.clone().unwrap_or_default();
    assert!(err.contains("401") && !err.contains("nope"), "{err}");
}
