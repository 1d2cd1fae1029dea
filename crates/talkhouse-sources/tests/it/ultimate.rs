//! Ultimate connector against the emulator: full sync = ground truth, metrics = truth's
//! independent computation, late data picked up by re-reading trailing days.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use talkhouse_emulator::{Clock, EmulatorOptions, GroundTruth, Running, Variants, Vendor, serve};
use talkhouse_model::{Cell, Source};
use talkhouse_sources::ultimate::views::{self, ConversationFacts, IntentFacts, MetricOptions};
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

fn text(c: Option<&Cell>) -> Option<String> {
    match c {
        Some(Cell::Text(s)) => Some(s.clone()),
        Some(Cell::Date(d)) => Some(d.to_string()),
        _ => None,
    }
}

fn int(c: Option<&Cell>) -> Option<i64> {
    match c {
        Some(Cell::Integer(i)) => Some(*i),
        _ => None,
    }
}

fn facts(dest: &MemoryDestination) -> (Vec<ConversationFacts>, Vec<IntentFacts>) {
    let convs = dest
        .rows("ultimate", "conversations")
        .into_iter()
        .map(|r| ConversationFacts {
            conversation_id: text(r.cells.get("conversation_id")).unwrap_or_default(),
            start_date: text(r.cells.get("start_date")),
            status: text(r.cells.get("conversation_status")),
            last_resolution: text(r.cells.get("last_resolution")),
            bot_messages: int(r.cells.get("bot_messages_count")),
            visitor_messages: int(r.cells.get("visitor_messages_count")),
            not_understood: int(r.cells.get("not_understood_messages_count")),
        })
        .collect();
    let intents = dest
        .rows("ultimate", "triggered_intent_replies")
        .into_iter()
        .map(|r| IntentFacts {
            conversation_id: text(r.cells.get("conversation_id")).unwrap_or_default(),
            position: int(r.cells.get("position")).unwrap_or_default(),
            timestamp: match r.cells.get("intent_timestamp") {
                Some(Cell::Timestamp(t)) => Some(t.timestamp_micros()),
                _ => None,
            },
            name: text(r.cells.get("intent_name")),
            not_meaningful: match r.cells.get("not_meaningful") {
                Some(Cell::Boolean(b)) => Some(*b),
                _ => None,
            },
        })
        .collect();
    (convs, intents)
}

/// Compares two JSON documents, numbers within 1e-9.
fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            assert!((x - y).abs() < 1e-9, "{path}: {x} != {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            let kx: BTreeSet<&String> = x.keys().collect();
            let ky: BTreeSet<&String> = y.keys().collect();
            assert_eq!(kx, ky, "{path}: keys differ");
            for (k, v) in x {
                assert_close(v, &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
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
    // Metrics from the synced rows equal the emulator's, computed from its own data.
    let (convs, intents) = facts(&dest);
    let got = views::metrics(&convs, &intents, &MetricOptions::default());
    assert_close(&got, &truth.extra["metrics"], "metrics");
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
    let (convs, intents) = facts(&dest);
    assert_close(
        &views::metrics(&convs, &intents, &MetricOptions::default()),
        &second.extra["metrics"],
        "metrics",
    );
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
