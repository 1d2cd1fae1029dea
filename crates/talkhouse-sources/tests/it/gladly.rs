//! Gladly connector against the in-process emulator: ground truth, incremental jobs, crash and
//! rerun, merge and deletion rules, retention warnings, webhooks, the Events API stream,
//! `load --dir`, the report streams (their budget, a 429, row caps and unknown headers).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use talkhouse_emulator::gladly::data::{World, kind};
use talkhouse_emulator::gladly::{API_TOKEN, API_USER};
use talkhouse_emulator::{Clock, EmulatorOptions, GroundTruth, Running, Vendor, start};
use talkhouse_http::{Auth, Client, ClientConfig, Request};
use talkhouse_model::{Cell, Commit, Destination, Event, PushRequest, PushVerdict, Source};
use talkhouse_sources::gladly;
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::{BatchConfig, SyncOptions, sync_source};

/// One report request per stream covers the emulator's history (30 days before the start
/// clock, and the days tests move it on), so a sync stays inside 10 report requests a minute.
const REPORT_SIZING: &str = "reports_backfill_days = 60\nreports_window_days = 61\n";

const WEBHOOK_USER: &str = "gladly-hooks";
const WEBHOOK_PASS: &str = "hook-secret";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

struct Env {
    emu: Running,
    opts: EmulatorOptions,
    world: World,
}

impl Env {
    async fn new(scale: f64, strict: bool) -> Self {
        Self::with_variants(scale, strict, "").await
    }

    async fn with_variants(scale: f64, strict: bool, variants: &str) -> Self {
        let mut opts = EmulatorOptions::new(11, scale);
        opts.clock = Clock::at(t0());
        opts.strict_rate_limits = strict;
        opts.variants = talkhouse_emulator::Variants::parse(variants).expect("variants");
        let world = World::new(&opts);
        let emu = start(Vendor::Gladly, &opts, 0)
            .await
            .expect("emulator starts");
        Self { emu, opts, world }
    }

    fn truth(&self) -> GroundTruth {
        talkhouse_emulator::gladly::truth(&self.world, self.opts.clock.now())
    }

    fn section(&self, extra: &str) -> toml::Table {
        let text = format!(
            "base_url = \"{}\"\nemail = \"{API_USER}\"\ntoken = \"{API_TOKEN}\"\nrequests_per_second = 500\nmax_concurrency = 8\nwebhook_username = \"{WEBHOOK_USER}\"\nwebhook_password = \"{WEBHOOK_PASS}\"\n{REPORT_SIZING}{extra}",
            self.emu.base_url
        );
        toml::from_str(&text).expect("valid toml")
    }

    /// The emulator's log of report requests.
    async fn report_log(&self) -> Value {
        let c = Client::new(ClientConfig::new("test", Auth::None)).expect("client");
        c.json(Request::get(
            format!("{}/_emulator/gladly/reports", self.emu.base_url),
            "test",
        ))
        .await
        .expect("report log")
    }

    fn source(&self, extra: &str) -> Arc<dyn Source> {
        gladly::build("gladly", self.section(extra)).expect("source builds")
    }

    async fn downloads(&self) -> BTreeMap<String, u64> {
        let c = Client::new(ClientConfig::new("test", Auth::None)).expect("client");
        c.json(Request::get(
            format!("{}/_emulator/gladly/downloads", self.emu.base_url),
            "test",
        ))
        .await
        .expect("downloads")
    }
}

async fn sync(
    src: &Arc<dyn Source>,
    dest: &Arc<MemoryDestination>,
    opts: &SyncOptions,
) -> talkhouse_sync::SyncReport {
    let d: Arc<dyn Destination> = dest.clone();
    sync_source(src.clone(), d, opts).await
}

fn schema_of(table: &str) -> &'static str {
    if table.starts_with("model_") {
        "talkhouse"
    } else {
        "gladly"
    }
}

fn assert_matches_truth(dest: &MemoryDestination, truth: &GroundTruth) {
    for (table, want) in &truth.tables {
        let got = dest.count(schema_of(table), table) as u64;
        assert_eq!(
            got, *want,
            "table {table}: warehouse has {got}, ground truth says {want}"
        );
    }
    let quarantined = dest.quarantine().len() as u64;
    assert_eq!(
        Some(quarantined),
        truth.extra["quarantined"].as_u64(),
        "quarantined lines"
    );
}

fn text(c: Option<&Cell>) -> Option<&str> {
    c.and_then(Cell::as_str)
}

/// Every merge of the ground truth (`extra.merged_customers`, `extra.merged_conversations`)
/// is in its vendor table and in `talkhouse.model_id_merges` with its entity, and the model's
/// history holds nothing else.
fn assert_merges_recorded(dest: &MemoryDestination, x: &Value) {
    let model = dest.rows("talkhouse", "model_id_merges");
    let mut want = 0;
    for (table, entity, key) in [
        ("customer_merges", "customer", "merged_customers"),
        (
            "conversation_merges",
            "conversation",
            "merged_conversations",
        ),
    ] {
        let vendor = dest.rows("gladly", table);
        for (old, new) in x[key].as_object().expect("a map of merges") {
            let v = vendor
                .iter()
                .find(|r| text(r.cells.get("old_id")) == Some(old.as_str()))
                .unwrap_or_else(|| panic!("{old} in gladly.{table}"));
            assert_eq!(text(v.cells.get("new_id")), new.as_str());
            let m = model
                .iter()
                .find(|r| text(r.cells.get("old_id")) == Some(old.as_str()))
                .unwrap_or_else(|| panic!("{old} in talkhouse.model_id_merges"));
            assert_eq!(text(m.cells.get("entity")), Some(entity));
            assert_eq!(text(m.cells.get("new_id")), new.as_str());
            assert_eq!(text(m.cells.get("source")), Some("gladly"));
            assert_eq!(m.cells.get("seen_at"), v.cells.get("seen_at"));
            want += 1;
        }
    }
    assert_eq!(model.len(), want, "one model row per merge");
}

#[tokio::test]
async fn full_sync_equals_ground_truth_table_by_table() {
    let env = Env::new(0.1, false).await;
    let dest = Arc::new(MemoryDestination::new());
    let report = sync(&env.source(""), &dest, &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    assert_matches_truth(&dest, &env.truth());
    // Every content type landed, the unknown one included, with its raw record.
    let types: BTreeSet<String> = dest
        .rows("gladly", "conversation_items")
        .iter()
        .filter_map(|r| text(r.cells.get("content_type")).map(str::to_owned))
        .collect();
    assert!(
        types.contains("VIDEO_CALL")
            && types.contains("PHONE_CALL")
            && types.contains("CUSTOMER_ACTIVITY"),
        "{types:?}"
    );
    // Topics carry their parents.
    assert!(
        dest.rows("gladly", "topics")
            .iter()
            .any(|r| r.cells.contains_key("parent_id"))
    );
    // Teams name agents that exist; every agent is in a team, one of them in two.
    let agents: BTreeSet<String> = dest
        .rows("gladly", "agents")
        .iter()
        .filter_map(|r| text(r.cells.get("id")).map(str::to_owned))
        .collect();
    let mut memberships: BTreeMap<String, usize> = BTreeMap::new();
    for team in dest.rows("gladly", "teams") {
        let Some(Cell::Json(serde_json::Value::Array(ids))) = team.cells.get("agent_ids") else {
            panic!("a team without agent_ids: {team:?}");
        };
        for id in ids {
            let id = id.as_str().expect("agent ids are text").to_owned();
            assert!(agents.contains(&id), "team member {id} is no agent");
            *memberships.entry(id).or_default() += 1;
        }
    }
    assert_eq!(memberships.len(), agents.len(), "every agent is in a team");
    assert_eq!(memberships.values().filter(|n| **n == 2).count(), 1);
    assert_reports_as_gladly_keeps_them(&env, &dest);
    assert_model_has_the_contacts_and_work(&env, &dest);
    // A re-run with nothing new writes nothing.
    let commits_before = dest.snapshot();
    let report = sync(&env.source(""), &dest, &SyncOptions::default()).await;
    assert!(report.ok());
    assert_eq!(dest.snapshot(), commits_before);
}

#[tokio::test]
async fn second_sync_after_a_day_downloads_only_the_new_job() {
    let env = Env::new(0.1, false).await;
    let dest = Arc::new(MemoryDestination::new());
    assert!(
        sync(&env.source(""), &dest, &SyncOptions::default())
            .await
            .ok()
    );
    let first = env.downloads().await;
    env.opts.clock.advance(Duration::days(1));
    assert!(
        sync(&env.source(""), &dest, &SyncOptions::default())
            .await
            .ok()
    );
    let second = env.downloads().await;
    let new: BTreeMap<&String, u64> = second
        .iter()
        .map(|(k, n)| (k, n - first.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let jobs: BTreeSet<&str> = new.keys().filter_map(|k| k.split('/').next()).collect();
    assert_eq!(
        jobs.len(),
        1,
        "only the new job's files were downloaded: {new:?}"
    );
    assert!(new.values().all(|n| *n == 1), "each new file once: {new:?}");
    assert!(
        !first
            .keys()
            .any(|k| k.starts_with(jobs.iter().next().copied().unwrap_or("?")))
    );
    assert_matches_truth(&dest, &env.truth());
    // Rule: a conversation's inbox changes over time → both assignments are kept.
    let moving = env.truth().extra["inbox_move_conversation"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let inboxes: BTreeSet<String> = dest
        .rows("gladly", "conversation_assignments")
        .iter()
        .filter(|r| text(r.cells.get("conversation_id")) == Some(moving.as_str()))
        .filter_map(|r| text(r.cells.get("inbox_id")).map(str::to_owned))
        .collect();
    assert_eq!(inboxes.len(), 2, "inbox history of {moving}: {inboxes:?}");
}

#[tokio::test]
async fn a_sync_killed_mid_file_and_rerun_ends_exact() {
    let env = Env::new(0.1, false).await;
    let clean = Arc::new(MemoryDestination::new());
    let small = SyncOptions {
        batch: BatchConfig {
            max_rows: 150,
            ..BatchConfig::default()
        },
        ..SyncOptions::default()
    };
    assert!(
        sync(&env.source("checkpoint_every = 100"), &clean, &small)
            .await
            .ok()
    );

    let crashed = Arc::new(MemoryDestination::new());
    crashed.fail_commits_after(6);
    let report = sync(&env.source("checkpoint_every = 100"), &crashed, &small).await;
    assert!(!report.ok(), "the injected failure stops the sync");
    let state = crashed
        .state("gladly", "export")
        .expect("a cursor was committed");
    assert!(
        state["current"]["line"].as_u64().unwrap_or(0) > 0,
        "stopped inside a file: {state}"
    );
    crashed.heal();
    let report = sync(&env.source("checkpoint_every = 100"), &crashed, &small).await;
    assert!(report.ok(), "{report:?}");
    let (a, b) = (crashed.snapshot(), clean.snapshot());
    // The jobs exported before the crash are not in the export's cache of the rerun, so their
    // conversations are read over REST, not from the conversation report: more columns and
    // times to the millisecond. What both give must agree.
    let from_report = ["gladly.conversations", "talkhouse.model_conversations"];
    for (table, rows) in b.iter().filter(|(t, _)| !from_report.contains(&t.as_str())) {
        let other = a.get(table).cloned().unwrap_or_default();
        let only_clean: Vec<_> = rows.iter().filter(|r| !other.contains(r)).take(2).collect();
        let only_crashed: Vec<_> = other.iter().filter(|r| !rows.contains(r)).take(2).collect();
        assert!(
            only_clean.is_empty() && only_crashed.is_empty(),
            "{table}: clean-only {only_clean:?}\ncrashed-only {only_crashed:?}"
        );
    }
    assert_eq!(a.len(), b.len(), "rerun after a crash equals a clean run");
    assert_eq!(
        conversation_summary(crashed.as_ref()),
        conversation_summary(clean.as_ref())
    );
    assert_matches_truth(&crashed, &env.truth());
}

#[tokio::test]
async fn merge_and_deletion_rules() {
    let env = Env::new(0.1, false).await;
    let truth = env.truth();
    let x = &truth.extra;
    let dest = Arc::new(MemoryDestination::new());
    assert!(
        sync(&env.source(""), &dest, &SyncOptions::default())
            .await
            .ok()
    );
    let customers = dest.rows("gladly", "customers");
    let by_id = |id: &str| {
        customers
            .iter()
            .find(|r| text(r.cells.get("id")) == Some(id))
            .cloned()
    };

    // Rule 1: a 301 `moved` records old → new in customer_merges, marks the old profile
    // deleted without redacting it, and the survivor is live.
    let merges = dest.rows("gladly", "customer_merges");
    for (old, new) in x["merged_customers"].as_object().expect("map") {
        let m = merges
            .iter()
            .find(|r| text(r.cells.get("old_id")) == Some(old.as_str()))
            .expect("merge recorded");
        assert_eq!(text(m.cells.get("new_id")), new.as_str());
        let o = by_id(old).expect("old profile kept");
        assert!(
            o.deleted_at.is_some() && o.cells.contains_key("name"),
            "merged profile marked, not redacted"
        );
        assert!(by_id(new.as_str().unwrap_or("")).is_some_and(|r| r.deleted_at.is_none()));
        // Rule 2: the model counts a merged customer once (no model conversation keeps the old id).
        assert!(
            !dest
                .rows("talkhouse", "model_conversations")
                .iter()
                .any(|r| text(r.cells.get("customer_id")) == Some(old.as_str()))
        );
    }

    // Rule 3: a GDPR deletion (404) redacts by default: rows stay, marked, personal fields null.
    let gone = x["deleted_customers"][0].as_str().unwrap_or("");
    let g = by_id(gone).expect("deleted profile row kept under redact");
    assert!(g.deleted_at.is_some() && !g.cells.contains_key("name") && g.raw.is_none());
    let items = dest.rows("gladly", "conversation_items");
    let of_gone: Vec<_> = items
        .iter()
        .filter(|r| text(r.cells.get("customer_id")) == Some(gone))
        .collect();
    assert!(
        !of_gone.is_empty()
            && of_gone
                .iter()
                .all(|r| r.deleted_at.is_some() && !r.cells.contains_key("body"))
    );

    // Rule 4: the loser of an OPEN→OPEN merge 404s: the merge lands in conversation_merges
    // (and the model's id history), its items are marked deleted but not redacted (the
    // conversation lives on), and its items reappear under new ids in the survivor (re-read
    // after the customer's 301).
    let loser = x["deleted_conversations"][0].as_str().unwrap_or("");
    let survivor = x["surviving_conversation"].as_str().unwrap_or("");
    assert_eq!(x["merged_conversations"][loser].as_str(), Some(survivor));
    assert_merges_recorded(&dest, x);
    let loser_items: Vec<_> = items
        .iter()
        .filter(|r| text(r.cells.get("conversation_id")) == Some(loser))
        .collect();
    assert!(
        !loser_items.is_empty()
            && loser_items
                .iter()
                .all(|r| r.deleted_at.is_some() && r.cells.contains_key("body")),
        "the loser's items are marked, not redacted"
    );
    let live_survivor = items
        .iter()
        .filter(|r| {
            text(r.cells.get("conversation_id")) == Some(survivor) && r.deleted_at.is_none()
        })
        .count();
    assert!(
        live_survivor > loser_items.len(),
        "survivor holds its own and the moved items ({live_survivor})"
    );
    assert!(
        !dest
            .rows("talkhouse", "model_messages")
            .iter()
            .any(|r| text(r.cells.get("conversation_id")) == Some(loser))
    );

    // Rule 5: on_vendor_delete = "delete" removes the rows instead.
    let del = Arc::new(MemoryDestination::new());
    assert!(
        sync(
            &env.source("on_vendor_delete = \"delete\""),
            &del,
            &SyncOptions::default()
        )
        .await
        .ok()
    );
    assert!(
        !del.rows("gladly", "customers")
            .iter()
            .any(|r| text(r.cells.get("id")) == Some(gone))
    );
    // A merge is no deletion: the loser's items stay, marked, whatever on_vendor_delete says.
    let del_items = del.rows("gladly", "conversation_items");
    let of_loser: Vec<_> = del_items
        .iter()
        .filter(|r| text(r.cells.get("conversation_id")) == Some(loser))
        .collect();
    assert!(!of_loser.is_empty() && of_loser.iter().all(|r| r.deleted_at.is_some()));
    assert!(
        !del_items
            .iter()
            .any(|r| text(r.cells.get("customer_id")) == Some(gone)),
        "the deleted customer's items are removed"
    );
    assert_matches_truth(&del, &truth);

    // Rule 6: "keep" only marks.
    let keep = Arc::new(MemoryDestination::new());
    assert!(
        sync(
            &env.source("on_vendor_delete = \"keep\""),
            &keep,
            &SyncOptions::default()
        )
        .await
        .ok()
    );
    let k = keep
        .rows("gladly", "customers")
        .into_iter()
        .find(|r| text(r.cells.get("id")) == Some(gone))
        .expect("kept");
    assert!(k.deleted_at.is_some() && k.cells.contains_key("name"));
}

#[tokio::test]
async fn warns_when_the_newest_job_nears_retention() {
    let env = Env::new(0.05, false).await;
    let dest = Arc::new(MemoryDestination::new());
    let only_export = SyncOptions {
        streams: Some(vec!["export".into()]),
        ..SyncOptions::default()
    };
    assert!(sync(&env.source(""), &dest, &only_export).await.ok());
    assert!(
        dest.state("gladly", "export")
            .and_then(|s| s.get("warnings").cloned())
            .is_none()
    );
    env.opts.clock.advance(Duration::days(13));
    assert!(sync(&env.source(""), &dest, &only_export).await.ok());
    let warnings = dest
        .state("gladly", "export")
        .and_then(|s| s.get("warnings").cloned())
        .unwrap_or(Value::Null);
    assert!(
        warnings.as_array().is_some_and(|w| w
            .iter()
            .any(|m| m.as_str().unwrap_or("").contains("14 days"))),
        "{warnings}"
    );
}

#[tokio::test]
async fn warns_of_the_gap_when_jobs_were_deleted_before_they_were_read() {
    let env = Env::new(0.05, false).await;
    let dest = Arc::new(MemoryDestination::new());
    let only_export = SyncOptions {
        streams: Some(vec!["export".into()]),
        ..SyncOptions::default()
    };
    assert!(sync(&env.source(""), &dest, &only_export).await.ok());
    // Twenty days without a sync: the jobs of the first six are gone from the API.
    env.opts.clock.advance(Duration::days(20));
    assert!(sync(&env.source(""), &dest, &only_export).await.ok());
    let warnings: Vec<String> = dest
        .state("gladly", "export")
        .and_then(|s| s.get("warnings").cloned())
        .and_then(|w| serde_json::from_value(w).ok())
        .unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("gap in Gladly export jobs") && w.contains("lost to the export")),
        "{warnings:?}"
    );
    // Once the jobs still kept are read, nothing is missing: the next run warns no more.
    env.opts.clock.advance(Duration::days(1));
    assert!(sync(&env.source(""), &dest, &only_export).await.ok());
    let after = dest
        .state("gladly", "export")
        .and_then(|s| s.get("warnings").cloned());
    assert!(
        after
            .as_ref()
            .is_none_or(|w| w.as_array().is_some_and(Vec::is_empty)),
        "{after:?}"
    );
}

#[tokio::test]
async fn strict_rate_limits_are_respected() {
    let env = Env::new(0.05, true).await;
    let text = format!(
        "base_url = \"{}\"\nemail = \"{API_USER}\"\ntoken = \"{API_TOKEN}\"\n",
        env.emu.base_url
    );
    let src = gladly::build("gladly", toml::from_str(&text).expect("toml")).expect("source");
    let dest = Arc::new(MemoryDestination::new());
    let opts = SyncOptions {
        streams: Some(vec!["export".into(), "agents".into(), "inboxes".into()]),
        ..SyncOptions::default()
    };
    let started = std::time::Instant::now();
    let report = sync(&src, &dest, &opts).await;
    assert!(report.ok(), "{report:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1500),
        "10 requests/s spreads the requests out"
    );
}

#[tokio::test]
async fn bad_credentials_fail_the_stream_with_a_hint() {
    let env = Env::new(0.05, false).await;
    let text = format!(
        "base_url = \"{}\"\nemail = \"{API_USER}\"\ntoken = \"nope\"\n",
        env.emu.base_url
    );
    let src = gladly::build("gladly", toml::from_str(&text).expect("toml")).expect("source");
    let dest = Arc::new(MemoryDestination::new());
    let report = sync(&src, &dest, &SyncOptions::default()).await;
    let err = report
        .streams
        .iter()
        .find(|s| s.stream == "export")
        .and_then(|s| s.error.clone())
        .unwrap_or_default();
    assert!(err.contains("401") && err.contains("hint"), "{err}");
}

fn push_request(body: &Value, auth: Option<(&str, &str)>) -> PushRequest {
    use base64::Engine;
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some((u, p)) = auth {
        headers.push((
            "authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            ),
        ));
    }
    PushRequest {
        method: "POST".into(),
        path: "/webhooks/gladly".into(),
        headers,
        body: body.to_string().into_bytes(),
        ..PushRequest::default()
    }
}

async fn apply(src: &dyn Source, dest: &MemoryDestination, payload: Value) {
    use futures::StreamExt;
    let events: Vec<Event> = src
        .process_push(payload)
        .map(|e| e.expect("push processed"))
        .collect()
        .await;
    let mut commit = Commit {
        source: "gladly".into(),
        stream: "push".into(),
        load_id: "push".into(),
        synced_at: Utc::now(),
        rows: Vec::new(),
        erasures: Vec::new(),
        quarantine: Vec::new(),
        state: None,
        more_follows: false,
    };
    for e in events {
        match e {
            Event::Records(r) => commit.rows.extend(r.into_iter().map(|mut row| {
                // The engine stamps `source` on model rows; this helper stands in for it.
                if row.table.model {
                    row.put("source", "gladly");
                }
                row
            })),
            Event::Erase(e) => commit.erasures.push(e),
            Event::Quarantine(q) => commit.quarantine.push(q),
            Event::Checkpoint(_) => {}
        }
    }
    dest.commit(commit).await.expect("commit");
}

#[tokio::test]
async fn webhooks_verify_and_process_idempotently() {
    let env = Env::new(0.1, false).await;
    let src = env.source("");
    let events = talkhouse_emulator::gladly::webhooks::events_between(
        &env.world,
        t0() - Duration::days(2),
        t0(),
    );
    assert!(events.len() > 10);
    // Verify: credentials, PING, ids.
    let ev = &events[0];
    assert!(matches!(
        src.verify_push(&push_request(ev, None)),
        PushVerdict::Reject { status: 401, .. }
    ));
    assert!(matches!(
        src.verify_push(&push_request(ev, Some((WEBHOOK_USER, "wrong")))),
        PushVerdict::Reject { status: 401, .. }
    ));
    let ping = talkhouse_emulator::gladly::webhooks::ping();
    assert_eq!(
        src.verify_push(&push_request(&ping, Some((WEBHOOK_USER, WEBHOOK_PASS)))),
        PushVerdict::Ignore
    );
    match src.verify_push(&push_request(ev, Some((WEBHOOK_USER, WEBHOOK_PASS)))) {
        PushVerdict::Accept { event_id, .. } => {
            assert_eq!(Some(event_id.as_str()), ev["id"].as_str())
        }
        other => panic!("expected Accept, got {other:?}"),
    }
    // A header-authenticated source.
    let hdr = gladly::build("gladly", {
        let mut t = env.section("");
        t.remove("webhook_username");
        t.remove("webhook_password");
        t.insert(
            "webhook_header".into(),
            toml::Value::Table(toml::from_str("name = \"X-Hook\"\nvalue = \"v1\"").expect("toml")),
        );
        t
    })
    .expect("source");
    let mut req = push_request(ev, None);
    req.headers.push(("x-hook".into(), "v1".into()));
    assert!(matches!(hdr.verify_push(&req), PushVerdict::Accept { .. }));
    req.headers.pop();
    req.headers.push(("x-hook".into(), "v2".into()));
    assert!(matches!(
        hdr.verify_push(&req),
        PushVerdict::Reject { status: 401, .. }
    ));

    // Process: every message a webhook names lands; duplicates change nothing.
    let dest = MemoryDestination::new();
    talkhouse_sync::prepare(&*src, &dest)
        .await
        .expect("prepare");
    for e in &events {
        apply(&*src, &dest, e.clone()).await;
    }
    let once = dest.snapshot();
    for e in &events {
        apply(&*src, &dest, e.clone()).await;
    }
    assert_eq!(dest.snapshot(), once, "duplicates are processed once");
    let items: BTreeSet<String> = dest
        .rows("gladly", "conversation_items")
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .filter_map(|r| text(r.cells.get("id")).map(str::to_owned))
        .collect();
    let truth = env.truth();
    let deleted: BTreeSet<&str> = truth.extra["deleted_conversations"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for e in events
        .iter()
        .filter(|e| e["type"] == "CONTACT/MESSAGE_RECEIVED")
    {
        if deleted.contains(e["content"]["conversationId"].as_str().unwrap_or("")) {
            continue;
        }
        assert!(
            items.contains(e["content"]["messageId"].as_str().unwrap_or("")),
            "{e}"
        );
    }
    assert!(
        dest.count("gladly", "customer_merges") >= 1,
        "CUSTOMER/MERGED recorded"
    );
    // The OPEN→OPEN merge's event names the conversation it retired.
    let merged = dest.rows("gladly", "conversation_merges");
    assert_eq!(merged.len(), 1);
    let (loser, survivor) = truth.extra["merged_conversations"]
        .as_object()
        .and_then(|m| m.iter().next())
        .expect("a merged conversation");
    assert_eq!(text(merged[0].cells.get("old_id")), Some(loser.as_str()));
    assert_eq!(text(merged[0].cells.get("new_id")), survivor.as_str());
    assert_eq!(
        dest.count("talkhouse", "model_id_merges"),
        dest.count("gladly", "customer_merges") + 1,
        "every merge has its model row"
    );
    assert_messages_are_the_live_items(&dest);
}

/// Live items of a conversation in `dest`.
fn live_items_of(dest: &MemoryDestination, conversation: &str) -> usize {
    dest.rows("gladly", "conversation_items")
        .iter()
        .filter(|r| {
            text(r.cells.get("conversation_id")) == Some(conversation) && r.deleted_at.is_none()
        })
        .count()
}

/// `talkhouse.model_messages` holds exactly the live messages of `gladly.conversation_items`:
/// no message of a merged-away or deleted conversation is counted beside its new id.
fn assert_messages_are_the_live_items(dest: &MemoryDestination) {
    let live: BTreeSet<String> = dest
        .rows("gladly", "conversation_items")
        .iter()
        .filter(|r| r.deleted_at.is_none() && r.cells.contains_key("conversation_id"))
        .filter(|r| {
            text(r.cells.get("content_type"))
                .and_then(gladly::channel_of)
                .is_some()
        })
        .filter_map(|r| text(r.cells.get("id")).map(str::to_owned))
        .collect();
    let model: BTreeSet<String> = dest
        .rows("talkhouse", "model_messages")
        .iter()
        .filter_map(|r| text(r.cells.get("message_id")).map(str::to_owned))
        .collect();
    assert_eq!(model, live, "model messages are the live message items");
}

#[tokio::test]
async fn the_events_stream_follows_a_merge_no_export_shows() {
    let env = Env::new(0.1, false).await;
    let (loser_key, survivor_key, merged_at) = env.world.open_merge();
    let loser = env.world.id(kind::CONVERSATION, loser_key, 0);
    let survivor = env.world.id(kind::CONVERSATION, survivor_key, 0);
    let src = env.source("events = true\nreports = []\n");
    let dest = Arc::new(MemoryDestination::new());

    // An hour before the OPEN→OPEN merge: both conversations are synced and live.
    env.opts.clock.set(merged_at - Duration::hours(1));
    let report = sync(&src, &dest, &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    assert!(live_items_of(&dest, &loser) > 0);
    assert_eq!(dest.count("gladly", "conversation_merges"), 0);

    // The merge happens. No export job names either conversation again (the next one is a
    // day away): only the CUSTOMER/MERGED event tells.
    env.opts.clock.set(merged_at + Duration::hours(1));
    let report = sync(&src, &dest, &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    let truth = env.truth();
    for table in ["customer_merges", "conversation_merges", "model_id_merges"] {
        assert_eq!(
            dest.count(schema_of(table), table) as u64,
            truth.tables[table],
            "{table}"
        );
    }
    assert_merges_recorded(&dest, &truth.extra);
    let loser_rows: Vec<_> = dest
        .rows("gladly", "conversation_items")
        .into_iter()
        .filter(|r| text(r.cells.get("conversation_id")) == Some(loser.as_str()))
        .collect();
    assert!(
        !loser_rows.is_empty()
            && loser_rows
                .iter()
                .all(|r| r.deleted_at.is_some() && r.cells.contains_key("body")),
        "the loser's items are marked deleted, not redacted"
    );
    // The survivor holds what Gladly lists for it now: its own items and the loser's under
    // their new ids, and the model counts each message once.
    let now = env.opts.clock.now();
    let spec = env.world.conversation(survivor_key).expect("the survivor");
    let listed = env.world.items_at(&spec, now);
    assert!(listed.iter().any(|(id, _, _)| {
        env.world
            .parse_id(id)
            .is_some_and(|(k, idx, _)| k == kind::MOVED_ITEM && idx == loser_key)
    }));
    assert_eq!(live_items_of(&dest, &survivor), listed.len());
    let messages_of = |conv: &str| {
        dest.rows("talkhouse", "model_messages")
            .iter()
            .filter(|r| text(r.cells.get("conversation_id")) == Some(conv))
            .count()
    };
    assert_eq!(
        messages_of(&survivor),
        listed.iter().filter(|(_, _, i)| i.ct.is_message()).count()
    );
    assert_eq!(messages_of(&loser), 0);
    assert_messages_are_the_live_items(&dest);

    // The same merge event processed again (a webhook of it, say) changes nothing.
    let snap = dest.snapshot();
    let merge = talkhouse_emulator::gladly::webhooks::events_between(
        &env.world,
        merged_at,
        merged_at + Duration::seconds(1),
    )
    .into_iter()
    .find(|e| e["type"] == "CUSTOMER/MERGED")
    .expect("the merge event");
    apply(&*src, &dest, merge).await;
    assert_eq!(dest.snapshot(), snap, "a merge seen twice lands once");
}

#[tokio::test]
async fn the_events_stream_fetches_what_no_export_holds_and_names_a_gap() {
    let env = Env::new(0.1, false).await;
    let src = env.source("events = true\nreports = []\n");
    let dest = Arc::new(MemoryDestination::new());
    let report = sync(&src, &dest, &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    // The newest export job ends at the start of today: what is newer came from events, the
    // agents' replies included, which no webhook or event announces by themselves.
    let today = env.world.day0;
    let newer: Vec<_> = dest
        .rows("gladly", "conversation_items")
        .into_iter()
        .filter(|r| matches!(r.cells.get("timestamp"), Some(Cell::Timestamp(t)) if *t >= today))
        .collect();
    assert!(
        newer
            .iter()
            .any(|r| text(r.cells.get("initiator_type")) == Some("AGENT")),
        "{} items of today, none from an agent",
        newer.len()
    );
    // Every conversation created in the last day (an event named it) is read whole.
    let events = talkhouse_emulator::gladly::webhooks::events_between(
        &env.world,
        t0() - Duration::hours(23),
        t0() - Duration::minutes(1),
    );
    let named: BTreeSet<u64> = events
        .iter()
        .filter(|e| e["type"] == "CONVERSATION/CREATED")
        .filter_map(|e| e["content"]["conversationId"].as_str())
        .filter_map(|id| env.world.parse_id(id).map(|(_, key, _)| key))
        .collect();
    assert!(!named.is_empty());
    for key in named {
        let spec = env.world.conversation(key).expect("a conversation");
        let id = env.world.id(kind::CONVERSATION, key, 0);
        assert_eq!(
            live_items_of(&dest, &id),
            env.world.items_at(&spec, t0()).len(),
            "{id}"
        );
    }
    assert_messages_are_the_live_items(&dest);
    let state = dest.state("gladly", "events").expect("a cursor");
    assert!(state.get("warnings").is_none(), "{state}");

    // Thirty hours without a sync: six of them are past Gladly's 24 hours. The stream starts
    // at the oldest hour it may ask for (no 400) and says what it lost.
    env.opts.clock.advance(Duration::hours(30));
    let only_events = SyncOptions {
        streams: Some(vec!["events".into()]),
        ..SyncOptions::default()
    };
    let report = sync(&src, &dest, &only_events).await;
    assert!(report.ok(), "{report:?}");
    let state = dest.state("gladly", "events").expect("a cursor");
    let warnings: Vec<String> = state
        .get("warnings")
        .cloned()
        .and_then(|w| serde_json::from_value(w).ok())
        .unwrap_or_default();
    let cursor = state["cursor"].as_str().unwrap_or("");
    assert!(
        warnings.len() == 1
            && warnings[0].contains("were never read")
            && warnings[0].contains("24 hours"),
        "{warnings:?}"
    );
    assert!(cursor > "2026-03-11T17", "the cursor moved on: {cursor}");
}

#[tokio::test]
async fn load_dir_reads_downloaded_files_idempotently() {
    let env = Env::new(0.05, false).await;
    let c = Client::new(ClientConfig::new(
        "test",
        Auth::Basic {
            user: API_USER.into(),
            password: API_TOKEN.into(),
        },
    ))
    .expect("client");
    let jobs: Vec<Value> = c
        .json(Request::get(
            format!("{}/api/v1/export/jobs?status=COMPLETED", env.emu.base_url),
            "t",
        ))
        .await
        .expect("jobs");
    let root = std::env::temp_dir().join(format!(
        "gladly-dir-{}-{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    let mut item_ids = BTreeSet::new();
    let mut bad = 0;
    for (n, j) in jobs.iter().take(4).enumerate() {
        let id = j["id"].as_str().unwrap_or("");
        let dir = root.join(format!("{n:02}-{id}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in j["files"].as_array().cloned().unwrap_or_default() {
            let f = f.as_str().unwrap_or("");
            let body = c
                .bytes(Request::get(
                    format!("{}/api/v1/export/jobs/{id}/files/{f}", env.emu.base_url),
                    "t",
                ))
                .await
                .expect("file");
            if f == "conversation_items.jsonl" {
                for line in String::from_utf8_lossy(&body)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                {
                    match serde_json::from_str::<Value>(line) {
                        Ok(v) => {
                            item_ids.insert(v["id"].as_str().unwrap_or("").to_owned());
                        }
                        Err(_) => bad += 1,
                    }
                }
            }
            std::fs::write(dir.join(f), &body).expect("write");
        }
    }
    let src = gladly::load_dir_source("gladly", None, root.clone()).expect("dir source");
    let dest = Arc::new(MemoryDestination::new());
    assert!(sync(&src, &dest, &SyncOptions::default()).await.ok());
    assert_eq!(dest.count("gladly", "conversation_items"), item_ids.len());
    assert_eq!(dest.quarantine().len(), bad);
    let snap = dest.snapshot();
    assert!(sync(&src, &dest, &SyncOptions::default()).await.ok());
    assert_eq!(
        dest.snapshot(),
        snap,
        "loading the same folders again changes nothing"
    );
    assert_eq!(
        dest.state("gladly", "files")
            .and_then(|s| s["jobs"].as_object().map(serde_json::Map::len)),
        Some(jobs.len().min(4))
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn an_item_no_webhook_announced_arrives_with_the_next_export() {
    let env = Env::new(0.1, false).await;
    let src = env.source("");
    let dest = Arc::new(MemoryDestination::new());
    assert!(sync(&src, &dest, &SyncOptions::default()).await.ok());
    env.opts.clock.advance(Duration::days(1));
    // A receiver subscribed to message events only: customers' messages are announced, agents'
    // replies are not.
    let day = t0() - Duration::hours(12);
    let events = talkhouse_emulator::gladly::webhooks::events_between(
        &env.world,
        day,
        day + Duration::days(1),
    );
    for e in events
        .iter()
        .filter(|e| e["type"] == "CONTACT/MESSAGE_RECEIVED")
    {
        apply(&*src, &dest, e.clone()).await;
    }
    let agent_replies = |d: &MemoryDestination| -> BTreeSet<String> {
        d.rows("gladly", "conversation_items")
            .iter()
            .filter(|r| text(r.cells.get("initiator_type")) == Some("AGENT"))
            .filter(|r| matches!(r.cells.get("timestamp"), Some(Cell::Timestamp(t)) if *t >= day && *t < day + Duration::days(1)))
            .filter_map(|r| text(r.cells.get("id")).map(str::to_owned))
            .collect()
    };
    let announced: BTreeSet<String> = dest
        .rows("gladly", "conversation_items")
        .iter()
        .filter_map(|r| text(r.cells.get("id")).map(str::to_owned))
        .collect();
    assert!(
        agent_replies(&dest).is_empty(),
        "no webhook named an agent reply"
    );
    assert!(sync(&src, &dest, &SyncOptions::default()).await.ok());
    assert!(
        !agent_replies(&dest).is_empty(),
        "the next export brings the unannounced replies"
    );
    let after: BTreeSet<String> = dest
        .rows("gladly", "conversation_items")
        .iter()
        .filter_map(|r| text(r.cells.get("id")).map(str::to_owned))
        .collect();
    assert!(announced.is_subset(&after));
    let live: BTreeSet<String> = dest
        .rows("gladly", "conversation_items")
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .filter_map(|r| text(r.cells.get("id")).map(str::to_owned))
        .collect();
    let orphans: Vec<_> = dest
        .rows("talkhouse", "model_messages")
        .into_iter()
        .filter(|r| !live.contains(text(r.cells.get("message_id")).unwrap_or("")))
        .map(|r| r.cells)
        .collect();
    assert!(orphans.is_empty(), "{orphans:?}");
    assert_matches_truth(&dest, &env.truth());
}

/// The report tables hold what Gladly's reports say: old ids after merges and deletions, the
/// merge loser as MERGED in the (recomputed) conversation report, agent-less work sessions,
/// typed columns and `_raw`, the malformed row quarantined with its report and line, and no
/// warnings.
fn assert_reports_as_gladly_keeps_them(env: &Env, dest: &MemoryDestination) {
    let truth = env.truth();
    let x = &truth.extra;
    let ids = |table: &str, column: &str| -> BTreeSet<String> {
        dest.rows("gladly", table)
            .iter()
            .filter_map(|r| text(r.cells.get(column)).map(str::to_owned))
            .collect()
    };
    let contact_customers = ids("contacts", "customer_id");
    let contact_conversations = ids("contacts", "conversation_id");
    for (old, _) in x["merged_customers"].as_object().expect("merges") {
        assert!(
            contact_customers.contains(old),
            "the contact report keeps the merged-away customer {old}"
        );
    }
    for gone in x["deleted_conversations"].as_array().expect("deletions") {
        let gone = gone.as_str().unwrap_or("");
        assert!(
            contact_conversations.contains(gone),
            "the contact report keeps the deleted conversation {gone}"
        );
    }
    let loser = x["deleted_conversations"][0].as_str().unwrap_or("");
    let merged = dest
        .rows("gladly", "conversation_report")
        .into_iter()
        .find(|r| text(r.cells.get("conversation_id")) == Some(loser))
        .expect("the merge loser is in the conversation report");
    assert_eq!(text(merged.cells.get("status")), Some("MERGED"));
    let sessions = dest.rows("gladly", "work_sessions");
    assert!(
        sessions
            .iter()
            .any(|r| text(r.cells.get("agent_id")) == Some("")),
        "an abandoned contact's work session has no agent"
    );
    assert!(sessions.iter().all(|r| matches!(
        r.cells.get("contact_session_ended_at"),
        Some(Cell::Timestamp(_))
    )));
    let contact = dest
        .rows("gladly", "contacts")
        .into_iter()
        .find(|r| matches!(r.cells.get("contact_handle_time_sec"), Some(Cell::Float(_))))
        .expect("a contact with a handle time");
    assert!(matches!(
        contact.cells.get("queued_at"),
        Some(Cell::Timestamp(_))
    ));
    assert!(
        contact
            .raw
            .as_deref()
            .is_some_and(|r| r.contains("\"Contact Handle Time (sec)\"")),
        "_raw keeps the report's own headers"
    );
    let quarantined: Vec<String> = dest
        .quarantine()
        .into_iter()
        .filter(|(_, stream, _)| stream == "contacts")
        .map(|(_, _, q)| q.location)
        .collect();
    assert!(
        quarantined.len() == 1
            && quarantined[0].starts_with("ContactExportReportV3 ")
            && quarantined[0].contains("..2026-03-10:line "),
        "{quarantined:?}"
    );
    for stream in ["contacts", "work_sessions", "conversation_report"] {
        let state = dest.state("gladly", stream).expect("a report cursor");
        assert!(state.get("last_day").is_some(), "{stream}: {state}");
        assert!(state.get("warnings").is_none(), "{stream}: {state}");
    }
}

/// Contacts are sessions of the model with the contact report's handle time (agents' time plus
/// after-contact work), work sessions with an agent are agent work, per agent as the emulator
/// assigned them, and teams list their agents between commas.
fn assert_model_has_the_contacts_and_work(env: &Env, dest: &MemoryDestination) {
    let truth = env.truth();
    let work = &truth.extra["work"];
    let sessions = dest.rows("talkhouse", "model_sessions");
    let handles: Vec<f64> = sessions
        .iter()
        .filter_map(|r| match r.cells.get("handle_seconds") {
            Some(Cell::Float(f)) => Some(*f),
            _ => None,
        })
        .collect();
    assert_eq!(Some(handles.len() as u64), work["timed_contacts"].as_u64());
    let sum: f64 = handles.iter().sum();
    let want = work["handle_seconds_sum"].as_f64().expect("a sum");
    assert!(
        (sum - want).abs() < 1e-6 * want,
        "handle time {sum} vs {want}"
    );
    assert!(sessions.iter().all(|r| matches!(
        r.cells.get("channel"),
        Some(Cell::Text(c)) if talkhouse_model::model::CHANNELS.contains(&c.as_str())
    )));
    let mut per_agent: BTreeMap<String, u64> = BTreeMap::new();
    for r in dest.rows("talkhouse", "model_work") {
        let agent = text(r.cells.get("agent_id")).expect("work has an agent");
        *per_agent.entry(agent.to_owned()).or_default() += 1;
        assert!(matches!(
            r.cells.get("handle_seconds"),
            Some(Cell::Float(_))
        ));
    }
    let want: BTreeMap<String, u64> =
        serde_json::from_value(work["work_sessions_by_agent"].clone()).expect("a map");
    assert_eq!(per_agent, want, "work sessions per agent");
    for team in dest.rows("talkhouse", "model_teams") {
        let ids = text(team.cells.get("agent_ids")).expect("agent ids");
        assert!(
            ids.is_empty() || (ids.starts_with(',') && ids.ends_with(',')),
            "{ids}"
        );
    }
}

/// Requests in the busiest minute of the log (each request opens a minute).
fn busiest_minute(log: &Value) -> usize {
    let at: Vec<u64> = log["requests"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["at_ms"].as_u64()).collect())
        .unwrap_or_default();
    at.iter()
        .map(|a| at.iter().filter(|b| **b >= *a && **b < *a + 60_000).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn report_requests_keep_to_ten_a_minute_and_two_at_once() {
    // Strict: the emulator would answer 429 past the budget.
    let env = Env::new(0.05, true).await;
    // Five one-day windows per report: 15 requests, more than a minute's budget.
    let text = format!(
        "base_url = \"{}\"\nemail = \"{API_USER}\"\ntoken = \"{API_TOKEN}\"\nreports_backfill_days = 4\nreports_window_days = 1\n",
        env.emu.base_url
    );
    let src = gladly::build("gladly", toml::from_str(&text).expect("toml")).expect("source");
    let dest = Arc::new(MemoryDestination::new());
    let reports = SyncOptions {
        streams: Some(vec![
            "contacts".into(),
            "work_sessions".into(),
            "conversation_report".into(),
        ]),
        ..SyncOptions::default()
    };
    let report = sync(&src, &dest, &reports).await;
    assert!(report.ok(), "{report:?}");
    let log = env.report_log().await;
    let requests = log["requests"].as_array().cloned().unwrap_or_default();
    assert_eq!(requests.len(), 15, "{log}");
    assert!(
        requests.iter().all(|r| r["status"] == 200),
        "never refused: {log}"
    );
    assert!(busiest_minute(&log) <= 10, "{log}");
    assert!(log["max_in_flight"].as_u64().unwrap_or(99) <= 2, "{log}");
    // Every window once, every row once.
    let windows: BTreeSet<(String, String)> = requests
        .iter()
        .map(|r| (r["metric_set"].to_string(), r["start_at"].to_string()))
        .collect();
    assert_eq!(windows.len(), 15);
    let records = |metric: &str| -> u64 {
        requests
            .iter()
            .filter(|r| r["metric_set"] == metric)
            .filter_map(|r| r["records"].as_u64())
            .sum()
    };
    assert_eq!(
        dest.count("gladly", "contacts") as u64,
        records("ContactExportReportV3")
    );
    assert_eq!(
        dest.count("gladly", "conversation_report") as u64,
        records("ConversationExportReport")
    );
    assert!(dest.count("gladly", "contacts") > 0);
    let throttled: u64 = dest
        .loads()
        .iter()
        .filter_map(|l| l.http.map(|h| h.throttled))
        .sum();
    assert_eq!(throttled, 0);
}

#[tokio::test]
async fn a_report_429_waits_without_holding_up_the_other_streams() {
    let env = Env::with_variants(0.05, true, "gladly.retry_after=on").await;
    // Someone else spent this minute's report budget of the organisation.
    let other = Client::new(ClientConfig::new(
        "test",
        Auth::Basic {
            user: API_USER.into(),
            password: API_TOKEN.into(),
        },
    ))
    .expect("client");
    for _ in 0..10 {
        let (status, _, _) = other
            .fetch(Request::post_json(
                format!("{}/api/v1/reports", env.emu.base_url),
                "test",
                serde_json::json!({"metricSet": "ConversationExportReport", "startAt": "2026-03-09", "endAt": "2026-03-09"}),
            ))
            .await
            .expect("report");
        assert_eq!(status.as_u16(), 200);
    }
    // The organisation's 10 requests/s for the rest (strict), one report request per stream.
    let text = format!(
        "base_url = \"{}\"\nemail = \"{API_USER}\"\ntoken = \"{API_TOKEN}\"\n{REPORT_SIZING}",
        env.emu.base_url
    );
    let src = gladly::build("gladly", toml::from_str(&text).expect("toml")).expect("source");
    let dest = Arc::new(MemoryDestination::new());
    let report = sync(&src, &dest, &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    assert_matches_truth(&dest, &env.truth());
    let loads = dest.loads();
    let throttled = |stream: &str| -> u64 {
        loads
            .iter()
            .filter(|l| l.stream == stream)
            .filter_map(|l| l.http.map(|h| h.throttled))
            .sum()
    };
    // One 429 pauses the report client (not the main one): the others wait behind it.
    assert!(
        ["contacts", "work_sessions", "conversation_report"]
            .iter()
            .map(|s| throttled(s))
            .sum::<u64>()
            >= 1,
        "the report requests met the spent budget: {loads:?}"
    );
    for stream in [
        "export",
        "customers",
        "conversations",
        "agents",
        "topics",
        "inboxes",
        "teams",
    ] {
        assert_eq!(
            throttled(stream),
            0,
            "{stream} was not held back by reports"
        );
    }
}

#[tokio::test]
async fn a_report_at_its_row_cap_or_with_an_unknown_header_is_a_warning() {
    let env = Env::with_variants(
        0.05,
        false,
        "gladly.report_row_cap=5,gladly.report_extra_column=on",
    )
    .await;
    let dest = Arc::new(MemoryDestination::new());
    let only_contacts = SyncOptions {
        streams: Some(vec!["contacts".into()]),
        ..SyncOptions::default()
    };
    let src = env.source("reports = [\"contacts\"]\nreports_row_caps = [5]\n");
    assert!(sync(&src, &dest, &only_contacts).await.ok());
    let state = dest.state("gladly", "contacts").expect("a cursor");
    let warnings: Vec<String> =
        serde_json::from_value(state["warnings"].clone()).unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w.contains("exactly 5 rows")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("\"Sentiment Score\"")),
        "{warnings:?}"
    );
    // Four rows and the malformed one: five records, the cap.
    assert_eq!(dest.count("gladly", "contacts"), 4);
    assert!(dest.rows("gladly", "contacts").iter().all(|r| {
        r.raw
            .as_deref()
            .is_some_and(|raw| raw.contains("\"Sentiment Score\""))
    }));
    // Unknown report names are refused with the key.
    let err = gladly::build("gladly", env.section("reports = [\"contacs\"]\n"))
        .err()
        .expect("an unknown report");
    assert_eq!(err.key.as_deref(), Some("reports"));
}

/// What one sync into a fresh warehouse spent, as the source's clients count it.
struct Spent {
    /// Rows of `gladly.conversation_items` it landed.
    items: u64,
    /// Requests of the `customers` stream.
    customers: u64,
    /// Requests of the `conversations` stream.
    conversations: u64,
    /// Every request of the sync (lists, file downloads and reports included).
    total: u64,
    dest: Arc<MemoryDestination>,
}

impl Spent {
    /// Enrichment requests (`customers` and `conversations`) per 1,000 items.
    fn per_thousand(&self) -> f64 {
        (self.customers + self.conversations) as f64 * 1000.0 / self.items.max(1) as f64
    }

    /// Hours the enrichment of a day of 1,000,000 items takes at 10 requests/s.
    fn hours_per_million(&self) -> f64 {
        self.per_thousand() * 1000.0 / 10.0 / 3600.0
    }
}

async fn spend(env: &Env, extra: &str) -> Spent {
    let src = env.source(extra);
    let dest = Arc::new(MemoryDestination::new());
    let report = sync(&src, &dest, &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    let attempts = |s: &str| src.stream_http_counters(s).map_or(0, |c| c.attempts);
    Spent {
        items: dest.count_all("gladly", "conversation_items") as u64,
        customers: attempts("customers"),
        conversations: attempts("conversations"),
        total: src.http_counters().map_or(0, |c| c.attempts),
        dest,
    }
}

/// The emulator's count of authenticated API requests per `METHOD path`.
async fn request_log(env: &Env) -> BTreeMap<String, u64> {
    let c = Client::new(ClientConfig::new("test", Auth::None)).expect("client");
    c.json(Request::get(
        format!("{}/_emulator/gladly/requests", env.emu.base_url),
        "test",
    ))
    .await
    .expect("request log")
}

/// Rows of `schema.table` by `key`: the text columns `texts`, the time columns `times` to the
/// minute (the conversation report's precision), and whether the row is marked deleted.
fn summary(
    d: &MemoryDestination,
    (schema, table, key): (&str, &str, &str),
    texts: &[&str],
    times: &[&str],
) -> BTreeMap<String, Vec<Option<String>>> {
    d.rows(schema, table)
        .iter()
        .map(|r| {
            let cells = texts
                .iter()
                .map(|c| text(r.cells.get(*c)).map(str::to_owned))
                .chain(times.iter().map(|c| match r.cells.get(*c) {
                    Some(Cell::Timestamp(t)) => Some(t.format("%Y-%m-%d %H:%M").to_string()),
                    _ => None,
                }))
                .chain([r.deleted_at.map(|_| "deleted".to_owned())])
                .collect();
            (text(r.cells.get(key)).unwrap_or("").to_owned(), cells)
        })
        .collect()
}

/// `gladly.conversations` and `talkhouse.model_conversations` as far as the conversation
/// report and `GET /conversations/{id}` both give them.
fn conversation_summary(d: &MemoryDestination) -> Vec<BTreeMap<String, Vec<Option<String>>>> {
    vec![
        summary(
            d,
            ("gladly", "conversations", "id"),
            &["customer_id", "inbox_id", "agent_id", "status"],
            &["created_at", "closed_at"],
        ),
        summary(
            d,
            ("talkhouse", "model_conversations", "conversation_id"),
            &["customer_id", "channel", "status"],
            &["started_at", "ended_at"],
        ),
    ]
}

/// Issue 21: no GET per conversation the conversation report covers, nothing fetched twice in
/// one sync, and `gladly.conversations` (and what derives from it) says what the GETs said.
/// With `GLADLY_REQUESTS_SCALE` set (see `bench/gladly-requests`), it runs at that scale and
/// prints the figures of `docs/benchmarks.md`.
#[tokio::test]
#[allow(clippy::print_stdout)] // the figures are the bench's
async fn enrichment_spends_no_request_per_conversation_the_report_covers() {
    let scale = std::env::var("GLADLY_REQUESTS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.1);
    let env = Env::new(scale, false).await;
    let after = spend(&env, "").await;
    let log = request_log(&env).await;
    let before = spend(&env, "conversations_from_report = false").await;
    let truth = env.truth();
    assert_matches_truth(&after.dest, &truth);
    assert_merges_recorded(&after.dest, &truth.extra);

    // Nothing fetched twice in one sync, merges included: a 301 followed by `customers` and
    // read again to learn where an OPEN→OPEN merge loser went, the survivor's conversation
    // list and its items come from the run's memo.
    let twice: Vec<(&String, &u64)> = log
        .iter()
        .filter(|(path, n)| {
            **n > 1
                && (path.starts_with("GET /api/v1/customer-profiles/")
                    || path.starts_with("GET /api/v1/conversations/"))
        })
        .collect();
    assert!(twice.is_empty(), "fetched more than once: {twice:?}");

    // The report stands in for the GET of every conversation but the merge loser and the
    // deleted customer's (not in the report): a handful of requests, whatever the scale.
    let conversations = after.dest.count_all("gladly", "conversations") as u64;
    assert!(
        after.conversations <= 12,
        "{} requests for {conversations} conversations",
        after.conversations
    );
    assert!(before.conversations >= conversations.saturating_sub(2));
    // Issue 21 measured about 350 enrichment requests per 1,000 items before: 5× fewer.
    assert!(
        after.per_thousand() < before.per_thousand() && after.per_thousand() <= 70.0,
        "after {:.1}, before {:.1} requests per 1,000 items",
        after.per_thousand(),
        before.per_thousand()
    );

    // The same conversations, customers, inboxes, agents, statuses and deletions as the GETs
    // gave; times to the report's minute. The same for the model's conversations and the
    // assignments.
    assert_eq!(
        conversation_summary(after.dest.as_ref()),
        conversation_summary(before.dest.as_ref())
    );
    let pairs = |d: &MemoryDestination| -> BTreeSet<(String, String, String)> {
        d.rows("gladly", "conversation_assignments")
            .iter()
            .map(|r| {
                let t = |c: &str| text(r.cells.get(c)).unwrap_or("").to_owned();
                (t("conversation_id"), t("inbox_id"), t("agent_id"))
            })
            .collect()
    };
    assert_eq!(pairs(after.dest.as_ref()), pairs(before.dest.as_ref()));

    if std::env::var_os("GLADLY_REQUESTS_SCALE").is_some() {
        println!(
            "scale {scale}: {} items, {conversations} conversations",
            after.items
        );
        println!(
            "{:<44} {:>9} {:>13} {:>8} {:>10} {:>13} {:>11}",
            "run", "customers", "conversations", "all", "all/1k", "enrich/1k", "enrich h/1M"
        );
        for (name, s) in [
            ("before (conversations_from_report = false)", &before),
            ("after (default)", &after),
        ] {
            println!(
                "{name:<44} {:>9} {:>13} {:>8} {:>10.1} {:>13.1} {:>11.2}",
                s.customers,
                s.conversations,
                s.total,
                s.total as f64 * 1000.0 / s.items.max(1) as f64,
                s.per_thousand(),
                s.hours_per_million()
            );
        }
    }
}
