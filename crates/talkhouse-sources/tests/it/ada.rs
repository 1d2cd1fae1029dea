//! Ada connector against the Ada emulator.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, DurationRound, Utc};
use serde_json::Value;
use talkhouse_emulator::{EmulatorOptions, GroundTruth, Running, Variants, Vendor};
use talkhouse_model::{Cell, Source};
use talkhouse_sources::ada::{AdaSource, from_section};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::{SyncOptions, sync_source};

async fn emulator(scale: f64, variants: Variants, strict: bool) -> Running {
    let mut opts = EmulatorOptions::new(7, scale);
    opts.variants = variants;
    opts.strict_rate_limits = strict;
    talkhouse_emulator::start(Vendor::Ada, &opts, 0)
        .await
        .expect("emulator starts")
}

fn source(emu: &Running, version: &str, token: &str, extra: &str) -> AdaSource {
    let cfg = format!(
        "token = \"{token}\"\nbase_url = \"{}\"\napi_version = \"{version}\"\npage_size = 100\nrequests_per_second = 1000\n{extra}",
        emu.base_url
    );
    let section: toml::Table = toml::from_str(&cfg).expect("toml");
    let clock = emu.clock.clone();
    from_section("ada", section)
        .expect("valid config")
        .with_clock(Arc::new(move || clock.now()))
}

fn token_for(version: &str) -> &'static str {
    if version == "v2" {
        talkhouse_emulator::ada::V2_TOKEN
    } else {
        talkhouse_emulator::ada::LEGACY_TOKEN
    }
}

fn control() -> talkhouse_http::Client {
    talkhouse_http::Client::new(talkhouse_http::ClientConfig::new(
        "ada",
        talkhouse_http::Auth::None,
    ))
    .expect("client")
}

async fn truth(emu: &Running) -> GroundTruth {
    let v: Value = control()
        .json(talkhouse_http::Request::get(
            format!("{}/_emulator/truth", emu.base_url),
            "control",
        ))
        .await
        .expect("truth");
    serde_json::from_value(v).expect("truth json")
}

async fn stats(emu: &Running) -> Value {
    control()
        .json(talkhouse_http::Request::get(
            format!("{}/_emulator/ada/stats", emu.base_url),
            "control",
        ))
        .await
        .expect("stats")
}

async fn post(emu: &Running, path: &str) {
    control()
        .bytes(talkhouse_http::Request::post_json(
            format!("{}{path}", emu.base_url),
            "control",
            serde_json::json!({}),
        ))
        .await
        .expect("control call");
}

fn expect(t: &GroundTruth, table: &str) -> usize {
    usize::try_from(t.tables.get(table).copied().unwrap_or(u64::MAX)).unwrap_or(usize::MAX)
}

async fn full_sync_equals_truth(version: &str, variants: Variants) {
    let emu = emulator(0.3, variants, false).await;
    let src = Arc::new(source(&emu, version, token_for(version), ""));
    let dest = Arc::new(MemoryDestination::new());
    let report = sync_source(src.clone(), dest.clone(), &SyncOptions::default()).await;
    assert!(report.ok(), "{version}: {report:?}");
    let t = truth(&emu).await;
    for table in ["conversations", "messages"] {
        assert_eq!(
            dest.count("ada", table),
            expect(&t, table),
            "{version} ada.{table}"
        );
    }
    assert_eq!(
        dest.count("talkhouse", "model_conversations"),
        expect(&t, "model_conversations")
    );
    assert_eq!(
        dest.count("talkhouse", "model_messages"),
        expect(&t, "model_messages")
    );
    assert!(dest.quarantine().is_empty(), "{:?}", dest.quarantine());
    // Boundary repeats were served and deduplicated: the emulator sent more records than landed.
    let served = stats(&emu).await["served"].as_u64().unwrap_or(0);
    let landed = dest.count("ada", "conversations") + dest.count("ada", "messages");
    assert!(
        served > landed as u64,
        "{version}: expected boundary repeats (served {served}, landed {landed})"
    );
    // Vendor rows received (before the merge) equal the distinct records: repeats were skipped.
    let received: u64 = report.streams.iter().map(|s| s.rows).sum();
    assert_eq!(
        received, landed as u64,
        "{version}: boundary repeats were emitted twice"
    );
    // Escalations and roles agree with the emulator.
    let escalated = dest
        .rows("talkhouse", "model_conversations")
        .iter()
        .filter(|r| r.cells.get("escalated") == Some(&Cell::Boolean(true)))
        .count();
    assert_eq!(
        escalated as u64,
        t.extra["escalated"].as_u64().unwrap_or(u64::MAX),
        "{version} escalated"
    );
    for role in ["customer", "bot", "agent"] {
        let n = dest
            .rows("talkhouse", "model_messages")
            .iter()
            .filter(|r| r.cells.get("sender_role") == Some(&Cell::Text(role.into())))
            .count();
        assert_eq!(
            n as u64,
            t.extra["sender_roles"][role].as_u64().unwrap_or(u64::MAX),
            "{version} {role}"
        );
    }
    let types: HashSet<String> = dest
        .rows("ada", "messages")
        .iter()
        .filter_map(|r| {
            r.cells
                .get("message_type")
                .and_then(Cell::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert!(types.len() >= 5, "{types:?}");
    let csat = dest
        .rows("ada", "conversations")
        .iter()
        .filter(|r| matches!(r.cells.get("csat_score"), Some(Cell::Float(_))))
        .count();
    assert_eq!(
        csat as u64,
        t.extra["with_csat"].as_u64().unwrap_or(u64::MAX),
        "{version} csat"
    );
    // Every request stayed within 60 days and the lag.
    let horizon = talkhouse_model::time::parse_timestamp(t.extra["horizon"].as_str().unwrap_or(""))
        .expect("horizon");
    for r in stats(&emu).await["requests"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert_eq!(r["status"], 200, "{r}");
        let to = r["to"]
            .as_str()
            .and_then(talkhouse_model::time::parse_timestamp)
            .expect("to");
        let since = r["since"]
            .as_str()
            .and_then(talkhouse_model::time::parse_timestamp)
            .expect("since");
        assert!(
            to <= horizon && to - since <= chrono::Duration::days(60),
            "{r}"
        );
    }
    emu.stop().await;
}

#[tokio::test]
async fn full_sync_v2_equals_ground_truth() {
    full_sync_equals_truth("v2", Variants::default()).await;
}

#[tokio::test]
async fn full_sync_v1_4_equals_ground_truth() {
    full_sync_equals_truth("v1.4", Variants::default()).await;
}

#[tokio::test]
async fn full_sync_v1_3_relative_links_bot_literal_equals_ground_truth() {
    full_sync_equals_truth(
        "v1.3",
        Variants::default()
            .with("ada.link", "relative")
            .with("ada.bot_sender", "Ada"),
    )
    .await;
}

#[tokio::test]
async fn full_sync_v2_absolute_links_zoneless_everywhere() {
    full_sync_equals_truth(
        "v2",
        Variants::default()
            .with("ada.link", "absolute")
            .with("ada.zoneless", "all"),
    )
    .await;
}

#[tokio::test]
async fn incremental_sync_reads_only_the_new_window() {
    let emu = emulator(0.3, Variants::default(), false).await;
    // Without the look-back (tested on its own below), a run reads nothing it has read.
    let src = Arc::new(source(
        &emu,
        "v2",
        talkhouse_emulator::ada::V2_TOKEN,
        "lookback = \"0\"\n",
    ));
    let dest = Arc::new(MemoryDestination::new());
    assert!(
        sync_source(src.clone(), dest.clone(), &SyncOptions::default())
            .await
            .ok()
    );
    let first = stats(&emu).await["requests"].as_array().map_or(0, Vec::len);
    let cursor = dest.state("ada", "messages").expect("cursor")["cursor"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let cursor_at = talkhouse_model::time::parse_timestamp(&cursor).expect("cursor time");
    post(&emu, "/_emulator/ada/stats/reset").await;

    // Nothing new: no window to read, no request.
    assert!(
        sync_source(src.clone(), dest.clone(), &SyncOptions::default())
            .await
            .ok()
    );
    assert_eq!(
        stats(&emu).await["requests"].as_array().map_or(0, Vec::len),
        0
    );

    emu.clock.advance(chrono::Duration::days(1));
    let before = dest.count("ada", "messages");
    assert!(
        sync_source(src.clone(), dest.clone(), &SyncOptions::default())
            .await
            .ok()
    );
    let t = truth(&emu).await;
    assert_eq!(dest.count("ada", "messages"), expect(&t, "messages"));
    assert_eq!(
        dest.count("ada", "conversations"),
        expect(&t, "conversations")
    );
    let new = expect(&t, "messages") - before;
    assert!(new > 0);
    let log = stats(&emu).await["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let messages: Vec<&Value> = log.iter().filter(|r| r["endpoint"] == "messages").collect();
    for r in &messages {
        let since = r["since"]
            .as_str()
            .and_then(talkhouse_model::time::parse_timestamp)
            .expect("since");
        assert!(since >= cursor_at, "second sync asked for old data: {r}");
    }
    // Pages of 100 with one boundary record repeated: at most new/99 + 1 requests.
    assert!(
        messages.len() <= new / 99 + 1,
        "{} requests for {new} new messages",
        messages.len()
    );
    assert!(
        log.len() < first,
        "second sync made {} requests, the first {first}",
        log.len()
    );
    emu.stop().await;
}

#[tokio::test]
async fn killed_sync_resumes_from_the_page_checkpoint() {
    let emu = emulator(0.3, Variants::default(), false).await;
    let src = Arc::new(source(
        &emu,
        "v1.4",
        talkhouse_emulator::ada::LEGACY_TOKEN,
        "",
    ));
    let dest = Arc::new(MemoryDestination::new());
    let opts = SyncOptions {
        batch: talkhouse_sync::BatchConfig {
            max_rows: 150,
            ..Default::default()
        },
        streams: Some(vec!["messages".into()]),
        ..Default::default()
    };
    dest.fail_commits_after(5);
    let report = sync_source(src.clone(), dest.clone(), &opts).await;
    assert!(!report.ok());
    let state = dest.state("ada", "messages").expect("a checkpoint landed");
    assert!(state.get("window_end").is_some(), "{state}");
    post(&emu, "/_emulator/ada/stats/reset").await;
    dest.heal();
    assert!(sync_source(src.clone(), dest.clone(), &opts).await.ok());
    let t = truth(&emu).await;
    assert_eq!(dest.count("ada", "messages"), expect(&t, "messages"));
    let cursor = talkhouse_model::time::parse_timestamp(state["cursor"].as_str().unwrap_or(""))
        .expect("cursor");
    let first = &stats(&emu).await["requests"][0];
    assert_eq!(
        first["since"]
            .as_str()
            .and_then(talkhouse_model::time::parse_timestamp),
        Some(cursor),
        "resumed elsewhere: {first}"
    );
    emu.stop().await;
}

#[tokio::test]
async fn bad_credentials_fail_with_a_hint() {
    let emu = emulator(0.05, Variants::default(), false).await;
    // A legacy Data Export token on v2.
    let src = Arc::new(source(
        &emu,
        "v2",
        talkhouse_emulator::ada::LEGACY_TOKEN,
        "",
    ));
    let dest = Arc::new(MemoryDestination::new());
    let report = sync_source(src, dest.clone(), &SyncOptions::default()).await;
    assert!(!report.ok());
    let err = report.streams[0].error.clone().unwrap_or_default();
    assert!(
        err.contains("401") && err.contains("Legacy") && err.contains("hint"),
        "{err}"
    );
    // A regenerated token invalidates the old one on v1.4.
    let v14 = Arc::new(source(
        &emu,
        "v1.4",
        talkhouse_emulator::ada::LEGACY_TOKEN,
        "",
    ));
    assert!(
        sync_source(
            v14.clone(),
            Arc::new(MemoryDestination::new()),
            &SyncOptions::default()
        )
        .await
        .ok()
    );
    post(&emu, "/_emulator/ada/regenerate_token").await;
    let report = sync_source(
        v14,
        Arc::new(MemoryDestination::new()),
        &SyncOptions {
            full_refresh: true,
            ..Default::default()
        },
    )
    .await;
    let err = report.streams[0].error.clone().unwrap_or_default();
    assert!(
        err.contains("401")
            && err.contains("generating a new one")
            && err.contains("invalidates the old"),
        "{err}"
    );
    emu.stop().await;
}

/// The messages a destination holds: id → `date_created`.
fn messages(dest: &MemoryDestination) -> BTreeMap<String, DateTime<Utc>> {
    dest.rows("ada", "messages")
        .into_iter()
        .filter_map(|r| match (r.cells.get("id"), r.cells.get("date_created")) {
            (Some(Cell::Text(id)), Some(Cell::Timestamp(at))) => Some((id.clone(), *at)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn late_messages_are_loaded_by_the_next_run_and_counted_in_status() {
    // One message in five is ingested 5 h after the 2 h lag.
    let emu = emulator(
        0.3,
        Variants::default()
            .with("ada.late_every", "5")
            .with("ada.late_delay", "5h"),
        false,
    )
    .await;
    let messages_only = SyncOptions {
        streams: Some(vec!["messages".into()]),
        ..Default::default()
    };
    let token = talkhouse_emulator::ada::V2_TOKEN;
    let with = Arc::new(source(&emu, "v2", token, ""));
    let without = Arc::new(source(&emu, "v2", token, "lookback = \"0\"\n"));
    let (a, b) = (
        Arc::new(MemoryDestination::new()),
        Arc::new(MemoryDestination::new()),
    );
    assert!(
        sync_source(with.clone(), a.clone(), &messages_only)
            .await
            .ok()
    );
    assert!(
        sync_source(without.clone(), b.clone(), &messages_only)
            .await
            .ok()
    );
    let first = messages(&a);
    assert_eq!(first.len(), expect(&truth(&emu).await, "messages"));
    let state = a.state("ada", "messages").expect("state");
    assert!(
        state.get("lookback_found").is_none(),
        "a first run has no look-back: {state}"
    );
    let until = state["cursor"]
        .as_str()
        .and_then(talkhouse_model::time::parse_timestamp)
        .expect("cursor");

    // Six hours on, the late messages of the five hours before the first run's cursor are in.
    emu.clock.advance(chrono::Duration::hours(6));
    post(&emu, "/_emulator/ada/stats/reset").await;
    assert!(
        sync_source(with.clone(), a.clone(), &messages_only)
            .await
            .ok()
    );
    assert!(sync_source(without, b.clone(), &messages_only).await.ok());
    let t = truth(&emu).await;
    let second = messages(&a);
    assert_eq!(
        second.len(),
        expect(&t, "messages"),
        "every message, the late ones too"
    );
    let late = second
        .iter()
        .filter(|(id, at)| **at < until && !first.contains_key(*id))
        .count();
    assert!(late > 0, "the emulator ingested no message late");
    let state = a.state("ada", "messages").expect("state");
    assert_eq!(state["lookback_found"], late, "{state}");
    let w = warnings(Some(state));
    assert!(
        w.iter().any(|w| w.contains(&format!(
            "the look-back found {late} messages that earlier runs had missed"
        ))),
        "{w:?}"
    );
    // The look-back started two days (whole hours) behind the cursor.
    let since = stats(&emu).await["requests"][0]["since"]
        .as_str()
        .and_then(talkhouse_model::time::parse_timestamp)
        .expect("since");
    assert_eq!(
        since,
        (until - chrono::Duration::days(2))
            .duration_trunc(chrono::Duration::hours(1))
            .expect("an hour")
    );
    // Without the look-back they stay missing.
    assert_eq!(messages(&b).len() + late, expect(&t, "messages"));

    // At the same instant nothing more is late: the look-back finds none, the warning goes.
    assert!(sync_source(with, a.clone(), &messages_only).await.ok());
    assert_eq!(messages(&a).len(), expect(&t, "messages"));
    let state = a.state("ada", "messages").expect("state");
    assert_eq!(state["lookback_found"], 0, "{state}");
    assert_eq!(warnings(Some(state)), Vec::<String>::new());
    emu.stop().await;
}

fn warnings(state: Option<Value>) -> Vec<String> {
    state
        .and_then(|s| s.get("warnings").cloned())
        .and_then(|w| serde_json::from_value(w).ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn starts_older_than_a_year_are_clamped_with_a_status_warning() {
    let emu = emulator(0.05, Variants::default(), false).await;
    let messages_only = SyncOptions {
        streams: Some(vec!["messages".into()]),
        ..Default::default()
    };
    // Without `start_date` the floor is the default: nothing to warn about.
    let plain = Arc::new(MemoryDestination::new());
    let src = Arc::new(source(&emu, "v2", talkhouse_emulator::ada::V2_TOKEN, ""));
    assert!(sync_source(src, plain.clone(), &messages_only).await.ok());
    assert_eq!(
        warnings(plain.state("ada", "messages")),
        Vec::<String>::new()
    );

    let old = (emu.clock.now() - chrono::Duration::days(400)).format("%Y-%m-%d");
    let src = Arc::new(source(
        &emu,
        "v2",
        talkhouse_emulator::ada::V2_TOKEN,
        &format!("start_date = \"{old}\"\n"),
    ));
    let dest = Arc::new(MemoryDestination::new());
    post(&emu, "/_emulator/ada/stats/reset").await;
    assert!(
        sync_source(src.clone(), dest.clone(), &messages_only)
            .await
            .ok()
    );
    let w = warnings(dest.state("ada", "messages"));
    assert!(
        w.iter()
            .any(|w| w.contains("previous 12 months") && w.contains(&format!("`start_date` {old}"))),
        "{w:?}"
    );
    // It did start at the floor, not at `start_date`.
    let floor = talkhouse_model::time::parse_timestamp(
        truth(&emu).await.extra["floor"].as_str().unwrap_or(""),
    )
    .expect("floor");
    let first = &stats(&emu).await["requests"][0];
    let since = first["since"]
        .as_str()
        .and_then(talkhouse_model::time::parse_timestamp)
        .expect("since");
    assert!(
        since >= floor && since - floor < chrono::Duration::hours(1),
        "{first}"
    );
    assert_eq!(
        dest.count("ada", "messages"),
        expect(&truth(&emu).await, "messages")
    );

    // A cursor left more than a year behind (no sync for a year) says so too.
    let stale = serde_json::json!({
        "cursor": (floor - chrono::Duration::days(30)).format("%Y-%m-%dT%H:%M:%SZ").to_string()
    });
    let events: Vec<_> = futures::StreamExt::collect::<Vec<_>>(src.run_stream(
        "messages",
        talkhouse_model::StreamContext {
            state: Some(stale),
            ..Default::default()
        },
    ))
    .await;
    let checkpoint = events.into_iter().rev().find_map(|e| match e {
        Ok(talkhouse_model::Event::Checkpoint(s)) => Some(s),
        _ => None,
    });
    let w = warnings(checkpoint);
    assert!(
        w.iter()
            .any(|w| w.contains("previous 12 months") && w.contains("the cursor")),
        "{w:?}"
    );

    // The next run starts from its own cursor: the warning is gone.
    emu.clock.advance(chrono::Duration::days(1));
    assert!(sync_source(src, dest.clone(), &messages_only).await.ok());
    assert_eq!(
        warnings(dest.state("ada", "messages")),
        Vec::<String>::new()
    );
    emu.stop().await;
}

#[tokio::test]
async fn throttled_requests_are_retried_to_completion() {
    // Strict limits at 3/s with Retry-After, while the client is allowed 20/s: 429s come, and
    // the sync still lands everything.
    let emu = emulator(
        0.1,
        Variants::default().with("ada.rate_headers", "on"),
        true,
    )
    .await;
    let cfg = format!(
        "token = \"{}\"\nbase_url = \"{}\"\npage_size = 100\nrequests_per_second = 20\n",
        talkhouse_emulator::ada::V2_TOKEN,
        emu.base_url
    );
    let clock = emu.clock.clone();
    let src = Arc::new(
        from_section("ada", toml::from_str(&cfg).expect("toml"))
            .expect("config")
            .with_clock(Arc::new(move || clock.now())),
    );
    let dest = Arc::new(MemoryDestination::new());
    let report = sync_source(src.clone(), dest.clone(), &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    assert!(
        src.http_stats().throttled.load(Ordering::Relaxed) > 0,
        "expected 429s"
    );
    let t = truth(&emu).await;
    assert_eq!(dest.count("ada", "messages"), expect(&t, "messages"));
    emu.stop().await;
}

/// At 3 requests/s over many full pages the messages stream uses at least 90 % of the
/// endpoint's budget with no failed request and no 429 from the strict emulator.
/// Run alone with `cargo test --workspace --all-features --test it ada::rate_budget -- --nocapture`.
#[tokio::test]
#[allow(clippy::print_stdout)] // the figure is the point of the test
async fn rate_budget_at_3_per_second() {
    let emu = emulator(0.3, Variants::default(), true).await;
    let cfg = format!(
        "token = \"{}\"\nbase_url = \"{}\"\npage_size = 100\nrequests_per_second = 3\nstart_date = \"{}\"\n",
        talkhouse_emulator::ada::V2_TOKEN,
        emu.base_url,
        (emu.clock.now() - chrono::Duration::days(31)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let clock = emu.clock.clone();
    let src: Arc<AdaSource> = Arc::new(
        from_section("ada", toml::from_str(&cfg).expect("toml"))
            .expect("config")
            .with_clock(Arc::new(move || clock.now())),
    );
    let dest = Arc::new(MemoryDestination::new());
    let opts = SyncOptions {
        streams: Some(vec!["messages".into()]),
        ..Default::default()
    };
    let report = sync_source(src.clone() as Arc<dyn Source>, dest.clone(), &opts).await;
    assert!(report.ok(), "{report:?}");
    let s = stats(&emu).await;
    assert_eq!(s["throttled"], 0);
    assert_eq!(src.http_stats().failures.load(Ordering::Relaxed), 0);
    let log = s["requests"].as_array().cloned().unwrap_or_default();
    let full = log.iter().filter(|r| r["records"] == 100).count();
    assert!(
        log.len() >= 20 && full >= log.len() - 2,
        "{} requests, {full} full pages",
        log.len()
    );
    let first = log.first().and_then(|r| r["at_ms"].as_f64()).unwrap_or(0.0);
    let last = log.last().and_then(|r| r["at_ms"].as_f64()).unwrap_or(0.0);
    let used = (log.len() as f64 - 1.0) / ((last - first) / 1000.0 * 3.0);
    println!(
        "ada rate budget: {} requests in {:.2} s at 3 req/s = {:.1} % of the budget",
        log.len(),
        (last - first) / 1000.0,
        used * 100.0
    );
    assert!(used >= 0.9, "used {:.1} % of the budget", used * 100.0);
    emu.stop().await;
}
