//! `talkhouse serve` end to end, as a child process against the Gladly and Giosg emulators:
//! 1,000 Gladly webhook events posted at 200/s (a PING first, every tenth event twice) are all
//! acknowledged, every item they name lands once, bad credentials get 401; a Giosg chat-end
//! trigger fetches its chat, a forged or expired one gets 401. SIGTERM stops it cleanly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

mod support;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Duration as Span;
use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_emulator::giosg::trigger::{ChatEndTrigger, TriggerFault};
use talkhouse_emulator::gladly::data::World;
use talkhouse_emulator::gladly::{SendOptions, WebhookTarget, send_webhooks, webhooks};
use talkhouse_emulator::{EmulatorOptions, FaultSpec, GroundTruth, Vendor};
use talkhouse_model::Destination;

use support::{free_port, sources_toml};

const USER: &str = "gladly-hooks";
const PASSWORD: &str = "hook-pa55";

/// The serve process; SIGKILLed on drop if still running.
struct Serve(Child);

impl Serve {
    /// `talkhouse serve --config <config>` in `dir`, its output discarded.
    fn start(config: &std::path::Path, dir: &std::path::Path) -> Self {
        Self(
            Command::new(env!("CARGO_BIN_EXE_talkhouse"))
                .args(["serve", "--config"])
                .arg(config)
                .current_dir(dir)
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// SIGTERM, then asserts a clean exit.
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let code = self.0.wait().unwrap();
        assert!(code.success(), "serve exits 0 on SIGTERM: {code:?}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn metric(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `serve` at `base` answers and its scheduler has finished `runs` syncs (by
/// `/metrics`), failing the test after `limit`.
async fn wait_for_scheduled_runs(base: &str, runs: usize, limit: Duration) {
    let started = Instant::now();
    loop {
        if reqwest::get(format!("{base}/healthz")).await.is_ok()
            && metric(base, "talkhouse_sync_runs_total").await >= runs as f64
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "the scheduled syncs did not finish in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn truth(base_url: &str) -> GroundTruth {
    reqwest::get(format!("{base_url}/_emulator/truth"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_and_triggers_through_serve() {
    let opts = EmulatorOptions::new(13, 0.3);
    let gladly = talkhouse_emulator::start(Vendor::Gladly, &opts, 0)
        .await
        .unwrap();
    let giosg = talkhouse_emulator::start(Vendor::Giosg, &opts, 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let warehouse = dir.path().join("warehouse.duckdb");
    let sources = sources_toml([&gladly, &giosg]).replacen(
        "[sources.gladly]\n",
        &format!(
            "[sources.gladly]\nwebhook_username = \"{USER}\"\nwebhook_password = \"{PASSWORD}\"\n"
        ),
        1,
    );
    let config = dir.path().join("talkhouse.toml");
    std::fs::write(
        &config,
        format!(
            "[destination]\nkind = \"duckdb\"\npath = {:?}\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ninbox_dir = {:?}\n\n{sources}",
            warehouse.display().to_string(),
            dir.path().join("inbox").display().to_string()
        ),
    )
    .unwrap();
    let serve = Serve::start(&config, dir.path());
    let started = Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1,000 events of the emulator's last days, as Gladly would post them.
    let world = World::new(&opts);
    let now = opts.clock.now();
    let mut events = Vec::new();
    let mut hours = 24;
    while events.len() < 1_000 && hours < 24 * 30 {
        events = webhooks::events_between(&world, now - Span::hours(hours), now);
        hours *= 2;
    }
    events.truncate(1_000);
    assert_eq!(events.len(), 1_000, "the emulator has 1,000 events to send");
    let target = WebhookTarget {
        url: format!("{base}/webhooks/gladly"),
        username: USER.into(),
        password: PASSWORD.into(),
    };
    let send = SendOptions {
        ping_first: true,
        duplicate_every: 10,
        per_second: Some(200.0),
        concurrency: 32,
    };
    let report = send_webhooks(&target, &events, &send).await.unwrap();
    assert_eq!(report.statuses.len(), 1 + 1_000 + 100);
    assert!(
        report.statuses.iter().all(|s| *s == 200),
        "every post acknowledged"
    );
    eprintln!(
        "webhooks: {} posts at 200/s, ack latency p50 {:?} p99 {:?} max {:?}",
        report.statuses.len(),
        report.latency_quantile(0.5),
        report.latency_quantile(0.99),
        report.latency_quantile(1.0),
    );
    let forged = WebhookTarget {
        password: "wrong".into(),
        ..target.clone()
    };
    let refused = send_webhooks(&forged, &events[..1], &SendOptions::default())
        .await
        .unwrap();
    assert_eq!(refused.statuses, vec![401]);

    // A chat-end trigger: valid is accepted, forged and expired are refused.
    let t = truth(&giosg.base_url).await;
    let org = t.extra["organization_id"].as_str().unwrap().to_owned();
    let chat = t.extra["latest_ended_chat"].as_str().unwrap().to_owned();
    let trigger = ChatEndTrigger::new(&org, &chat, None, talkhouse_emulator::giosg::APP_SECRET);
    let url = format!("{base}/triggers/giosg");
    let status = |t: ChatEndTrigger| {
        let url = url.clone();
        async move {
            talkhouse_emulator::giosg::trigger::send(&url, &t)
                .await
                .unwrap()
        }
    };
    assert_eq!(status(trigger.clone()).await, 200);
    assert_eq!(
        status(trigger.clone().with_fault(TriggerFault::BadSignature)).await,
        401
    );
    assert_eq!(
        status(trigger.clone().with_fault(TriggerFault::Expired)).await,
        401
    );

    // Everything acknowledged is processed: unique events once, duplicates not again.
    let unique = events
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect::<BTreeSet<_>>()
        .len() as f64;
    let started = Instant::now();
    loop {
        let processed = metric(&base, "talkhouse_events_processed_total").await;
        // Every unique webhook event, and the trigger.
        if processed >= unique + 1.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "only {processed} of {unique} events processed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        metric(&base, "talkhouse_events_duplicate_total").await,
        100.0
    );

    // SIGTERM: a clean stop, then the warehouse holds every item the webhooks named.
    serve.stop();
    let dest = DuckDbDestination::open(&warehouse).unwrap();
    let items: BTreeSet<String> = dest
        .query("SELECT id FROM gladly.conversation_items")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    let named: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "CONTACT/MESSAGE_RECEIVED")
        .filter_map(|e| e["content"]["messageId"].as_str())
        .collect();
    assert!(!named.is_empty());
    // An item the API cannot serve (Gladly answers 400 for a content type it does not support
    // over REST) is quarantined; the export brings it later.
    let quarantined: Vec<String> = dest
        .query("SELECT location, error FROM talkhouse.quarantine")
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r["location"], r["error"]))
        .collect();
    // An item whose conversation was merged away or erased since its event is gone at the
    // vendor too (404): it must not linger in the warehouse either.
    let mut missing = Vec::new();
    for id in named
        .iter()
        .filter(|id| !items.contains(**id) && !quarantined.iter().any(|q| q.contains(**id)))
    {
        let status = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/conversation-items/{id}",
                gladly.base_url
            ))
            .basic_auth(
                talkhouse_emulator::gladly::API_USER,
                Some(talkhouse_emulator::gladly::API_TOKEN),
            )
            .send()
            .await
            .unwrap()
            .status();
        if status != reqwest::StatusCode::NOT_FOUND {
            missing.push(id);
        }
    }
    assert!(
        missing.is_empty(),
        "{} named items neither landed nor were quarantined: {missing:?}; quarantine: {quarantined:?}",
        missing.len()
    );
    // Every merge a webhook brought has its row in the model's id history, written with it.
    let n = |sql: &'static str| {
        let dest = &dest;
        async move { dest.query(sql).await.unwrap()[0]["n"].as_u64().unwrap() }
    };
    let vendor_merges = n("SELECT count(*) AS n FROM gladly.customer_merges").await
        + n("SELECT count(*) AS n FROM gladly.conversation_merges").await;
    assert_eq!(
        n("SELECT count(*) AS n FROM talkhouse.model_id_merges WHERE source = 'gladly'").await,
        vendor_merges
    );
    let chats = dest
        .query(&format!(
            "SELECT count(*) AS n FROM giosg.chats WHERE id = '{chat}'"
        ))
        .await
        .unwrap();
    assert_eq!(
        chats[0]["n"].as_u64(),
        Some(1),
        "the trigger fetched its chat"
    );
    gladly.stop().await;
    giosg.stop().await;
}

/// The path a record took does not change the row that lands: a `serve`-scheduled sync and a
/// `talkhouse sync` of the same emulators leave the same rows in every vendor and model table
/// (sentiment and language included), and `/metrics` counts the vendor requests of the
/// scheduled runs, per source.
#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_sync_writes_the_rows_of_talkhouse_sync() {
    let opts = EmulatorOptions::new(17, 0.1);
    let vendors = [Vendor::Giosg, Vendor::Ada, Vendor::Ultimate];
    let mut running = Vec::new();
    for v in vendors {
        running.push(talkhouse_emulator::start(v, &opts, 0).await.unwrap());
    }
    let sources = sources_toml(&running);
    let dir = tempfile::tempdir().unwrap();
    let synced = dir.path().join("synced.duckdb");
    support::sync(
        dir.path(),
        "synced",
        &format!(
            "kind = \"duckdb\"\npath = {:?}",
            synced.display().to_string()
        ),
        &sources,
    );

    let served = dir.path().join("served.duckdb");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let schedule: Vec<String> = vendors.iter().map(|v| format!("{v} = \"1h\"")).collect();
    let config = support::write_config(
        dir.path(),
        "served",
        &format!(
            "kind = \"duckdb\"\npath = {:?}\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ninbox_dir = {:?}\nschedule = {{ {} }}",
            served.display().to_string(),
            dir.path().join("inbox").display().to_string(),
            schedule.join(", ")
        ),
        &sources,
    );
    let serve = Serve::start(&config, dir.path());
    wait_for_scheduled_runs(&base, vendors.len(), Duration::from_secs(180)).await;
    for v in vendors {
        let failed = format!("talkhouse_sync_runs_total{{source=\"{v}\",status=\"failed\"}}");
        assert_eq!(
            metric(&base, &failed).await,
            0.0,
            "{v}'s scheduled sync failed"
        );
        let requests = metric(
            &base,
            &format!("talkhouse_vendor_requests_total{{source=\"{v}\",vendor=\"{v}\"}}"),
        )
        .await;
        assert!(requests > 0.0, "/metrics counts {v}'s requests");
    }
    serve.stop();
    for r in running {
        r.stop().await;
    }

    let want = DuckDbDestination::open(&synced).unwrap();
    let got = DuckDbDestination::open(&served).unwrap();
    let tables = support::tables(&want).await;
    assert_eq!(tables, support::tables(&got).await, "the same tables");
    assert!(tables.len() >= 8, "{:?}", tables.keys());
    for (table, columns) in &tables {
        let a = support::rows(&want, table, columns).await;
        let b = support::rows(&got, table, columns).await;
        assert_eq!(a.len(), b.len(), "{table}: row counts");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{table}: a row differs");
        }
    }
    let scored = got
        .query(
            "SELECT count(*) AS n FROM talkhouse.model_messages \
             WHERE source = 'ada' AND sentiment IS NOT NULL",
        )
        .await
        .unwrap();
    assert!(
        scored[0]["n"].as_u64().unwrap_or(0) > 0,
        "the scheduled sync scored sentiment"
    );
}

/// Vendor requests are counted once, by the source's HTTP client, and shown in two places:
/// `/metrics` (running totals per source and vendor) and `talkhouse status` (what each stream
/// run added, from `talkhouse.loads`). After a scheduled sync through injected 500s and 429s,
/// both agree with each other and with the requests the emulator saw.
#[tokio::test(flavor = "multi_thread")]
async fn vendor_requests_reach_metrics_and_status_alike() {
    let mut opts = EmulatorOptions::new(23, 0.05);
    opts.faults = FaultSpec::parse("http500=0.3,http429=0.3").unwrap();
    let ada = talkhouse_emulator::start(Vendor::Ada, &opts, 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = support::write_config(
        dir.path(),
        "served",
        &format!(
            "kind = \"duckdb\"\npath = {:?}\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ninbox_dir = {:?}\nschedule = {{ ada = \"1h\" }}",
            dir.path().join("served.duckdb").display().to_string(),
            dir.path().join("inbox").display().to_string(),
        ),
        &sources_toml([&ada]),
    );
    let serve = Serve::start(&config, dir.path());
    wait_for_scheduled_runs(&base, 1, Duration::from_secs(120)).await;
    assert_eq!(
        metric(
            &base,
            "talkhouse_sync_runs_total{source=\"ada\",status=\"succeeded\"}"
        )
        .await,
        1.0,
        "the scheduled sync succeeded"
    );
    // `/metrics` family → `talkhouse status` column.
    let mut scraped = Vec::new();
    for (family, column) in [
        ("requests", "requests"),
        ("retries", "retries"),
        ("throttled", "throttled"),
        ("failures", "request_failures"),
    ] {
        let name = format!("talkhouse_vendor_{family}_total{{source=\"ada\",vendor=\"ada\"}}");
        scraped.push((column, metric(&base, &name).await));
    }
    serve.stop();
    let load =
        |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let seen = &ada.faults.counters;
    let (requests, injected_429, injected_500) = (
        load(&seen.requests),
        load(&seen.http429),
        load(&seen.http500),
    );
    ada.stop().await;
    assert!(
        injected_429 > 0.0 && injected_500 > 0.0,
        "faults were injected"
    );
    assert_eq!(
        scraped[0].1, requests,
        "/metrics counts every request the emulator saw"
    );
    assert!(
        scraped[1].1 >= injected_500,
        "every 500 was retried: {scraped:?}"
    );
    assert!(
        scraped[2].1 >= injected_429,
        "every 429 was counted: {scraped:?}"
    );

    let status = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
            .args(["status", "--format", format, "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let json: serde_json::Value = serde_json::from_str(&status("json")).unwrap();
    let streams: Vec<&serde_json::Value> = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == "ada")
        .collect();
    assert!(!streams.is_empty(), "{json:#}");
    for (column, want) in &scraped {
        let got: f64 = streams
            .iter()
            .map(|s| s[*column].as_f64().unwrap_or(0.0))
            .sum();
        assert_eq!(
            got, *want,
            "{column}: status {got}, /metrics {want}\n{json:#}"
        );
    }
    let table = status("table");
    assert!(
        table.contains("retried") && table.contains("answered 429"),
        "status notes the retries and 429s:\n{table}"
    );
}

/// Every item of a Giosg list, following `next`.
async fn giosg_all(url: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(u) = next {
        let page: serde_json::Value = reqwest::Client::new()
            .get(&u)
            .header(
                "Authorization",
                format!("Token {}", talkhouse_emulator::giosg::TOKEN),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["results"].as_array().cloned().unwrap_or_default());
        next = page["next"].as_str().map(str::to_owned);
    }
    out
}

/// Giosg through `serve`: the scheduled run ends only the open chats idle past
/// `end_stale_after` (and the sync after it stores them ended); every webhook event type the
/// emulator posts lands exactly once though each is delivered twice (a lost acknowledgement);
/// a missing key, a wrong key and another organisation get 401, on every retry.
#[tokio::test(flavor = "multi_thread")]
async fn giosg_webhooks_and_stale_chats_through_serve() {
    use talkhouse_emulator::giosg::WEBHOOK_SECRET;
    let opts = EmulatorOptions::new(29, 0.1);
    let giosg = talkhouse_emulator::start(Vendor::Giosg, &opts, 0)
        .await
        .unwrap();
    // The oracle, from the API itself: open chats idle for more than a week, and the others.
    let t = truth(&giosg.base_url).await;
    let org = t.extra["organization_id"].as_str().unwrap().to_owned();
    let now = chrono::DateTime::parse_from_rfc3339(t.extra["now"].as_str().unwrap()).unwrap();
    let chats_url = format!("{}/api/v5/orgs/{org}/owned_chats", giosg.base_url);
    let (stale, fresh): (Vec<String>, Vec<String>) = {
        let open = giosg_all(&format!("{chats_url}?is_ended=false")).await;
        let (a, b): (Vec<_>, Vec<_>) = open.iter().partition(|c| {
            let updated =
                chrono::DateTime::parse_from_rfc3339(c["updated_at"].as_str().unwrap()).unwrap();
            now - updated > Span::days(7)
        });
        let ids = |v: Vec<&serde_json::Value>| -> Vec<String> {
            v.iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect()
        };
        (ids(a), ids(b))
    };
    assert!(
        !stale.is_empty() && !fresh.is_empty(),
        "{stale:?} {fresh:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let warehouse = dir.path().join("warehouse.duckdb");
    let sources = sources_toml([&giosg]).replacen(
        "[sources.giosg]\n",
        "[sources.giosg]\nend_stale_after = \"7d\"\n",
        1,
    );
    let config = support::write_config(
        dir.path(),
        "talkhouse",
        &format!(
            "kind = \"duckdb\"\npath = {:?}\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ninbox_dir = {:?}\nschedule = {{ giosg = \"1h\" }}",
            warehouse.display().to_string(),
            dir.path().join("inbox").display().to_string(),
        ),
        &sources,
    );
    let serve = Serve::start(&config, dir.path());
    let started = Instant::now();
    loop {
        if reqwest::get(format!("{base}/healthz")).await.is_ok()
            && metric(&base, "talkhouse_sync_runs_total").await >= 1.0
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the scheduled run did not finish"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        metric(
            &base,
            "talkhouse_upkeep_runs_total{source=\"giosg\",status=\"succeeded\"}"
        )
        .await,
        1.0
    );
    let requests: serde_json::Value =
        reqwest::get(format!("{}/_emulator/giosg/requests", giosg.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        requests["endpoints"]["patch"].as_u64(),
        Some(stale.len() as u64),
        "one end per stale chat, no other"
    );
    let still_open: BTreeSet<String> = giosg_all(&format!("{chats_url}?is_ended=false"))
        .await
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(still_open, fresh.iter().cloned().collect::<BTreeSet<_>>());

    // Webhooks: each event type, each delivered twice (the first acknowledgement lost).
    let ended = t.extra["latest_ended_chat"].as_str().unwrap().to_owned();
    let doomed = fresh[0].clone();
    let hook = |spec: serde_json::Value| {
        let url = format!("{}/_emulator/giosg/webhook", giosg.base_url);
        async move {
            let out: serde_json::Value = reqwest::Client::new()
                .post(url)
                .json(&spec)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            out["statuses"].clone()
        }
    };
    let good = format!("{base}/webhooks/giosg?key={WEBHOOK_SECRET}");
    for spec in [
        serde_json::json!({"action": "added", "chat_id": ended}),
        serde_json::json!({"action": "changed", "chat_id": ended}),
        serde_json::json!({"action": "added", "chat_id": ended, "resource": "message"}),
        serde_json::json!({"action": "removed", "chat_id": doomed}),
    ] {
        let mut spec = spec;
        spec["url"] = serde_json::json!(good);
        spec["lost_acks"] = serde_json::json!(1);
        assert_eq!(
            hook(spec.clone()).await,
            serde_json::json!([200, 200]),
            "{spec}"
        );
    }
    // Forged: no key, a wrong key, another organisation; Giosg retries each three times.
    for (url, fault) in [
        (format!("{base}/webhooks/giosg"), "none"),
        (format!("{base}/webhooks/giosg?key=guess"), "none"),
        (good.clone(), "wrong_org"),
    ] {
        let spec =
            serde_json::json!({"url": url, "action": "added", "chat_id": ended, "fault": fault});
        assert_eq!(
            hook(spec).await,
            serde_json::json!([401, 401, 401, 401]),
            "{url} {fault}"
        );
    }
    let started = Instant::now();
    while metric(&base, "talkhouse_events_processed_total").await < 4.0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the webhook events were not processed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(metric(&base, "talkhouse_events_received_total").await, 4.0);
    assert_eq!(metric(&base, "talkhouse_events_duplicate_total").await, 4.0);
    assert_eq!(metric(&base, "talkhouse_events_processed_total").await, 4.0);
    assert_eq!(
        metric(
            &base,
            "talkhouse_events_rejected_total{source=\"giosg\",status=\"401\"}"
        )
        .await,
        12.0
    );
    serve.stop();

    let dest = DuckDbDestination::open(&warehouse).unwrap();
    let rows = dest
        .query("SELECT id, is_ended, _deleted_at FROM giosg.chats")
        .await
        .unwrap();
    let row = |id: &str| {
        let found: Vec<_> = rows.iter().filter(|r| r["id"] == id).collect();
        assert_eq!(found.len(), 1, "{id} is stored once");
        found[0].clone()
    };
    for id in &stale {
        assert_eq!(row(id)["is_ended"], true, "{id} was ended and stored ended");
    }
    for id in fresh.iter().filter(|id| **id != doomed) {
        assert_eq!(row(id)["is_ended"], false, "{id} is inside the window");
    }
    assert!(row(&ended)["_deleted_at"].is_null());
    assert!(
        !row(&doomed)["_deleted_at"].is_null(),
        "the removed chat is soft-deleted"
    );
    giosg.stop().await;
}
