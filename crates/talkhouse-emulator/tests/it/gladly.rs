//! Gladly emulator: shapes, auth failures, 429 bursts, retention, file quirks, ground truth,
//! reports, the Events API.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use talkhouse_emulator::gladly::{API_TOKEN, API_USER, NO_PERMISSION_USER, data::World};
use talkhouse_emulator::{Clock, EmulatorOptions, Running, Variants, Vendor, start};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn opts(scale: f64) -> EmulatorOptions {
    let mut o = EmulatorOptions::new(7, scale);
    o.clock = Clock::at(t0());
    o
}

async fn get(e: &Running, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/api/v1{path}", e.base_url))
        .basic_auth(API_USER, Some(API_TOKEN))
        .send()
        .await
        .expect("emulator answers")
}

async fn get_json(e: &Running, path: &str) -> Value {
    let r = get(e, path).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

async fn truth(e: &Running) -> talkhouse_emulator::GroundTruth {
    reqwest::get(format!("{}/_emulator/truth", e.base_url))
        .await
        .expect("truth")
        .json()
        .await
        .expect("json")
}

async fn lines(e: &Running, job: &str, file: &str) -> (u16, String) {
    let r = get(e, &format!("/export/jobs/{job}/files/{file}")).await;
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn auth_failures_the_gladly_way() {
    let e = start(Vendor::Gladly, &opts(0.05), 0).await.expect("start");
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1/agents", e.base_url);
    assert_eq!(c.get(&url).send().await.expect("answer").status(), 401);
    assert_eq!(
        c.get(&url)
            .basic_auth(API_USER, Some("wrong"))
            .send()
            .await
            .expect("answer")
            .status(),
        401
    );
    let r = c
        .get(&url)
        .basic_auth(NO_PERMISSION_USER, Some(API_TOKEN))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.expect("json");
    assert!(body["errors"][0]["code"].is_string(), "{body}");
    assert_eq!(get(&e, "/agents").await.status(), 200);
}

#[tokio::test]
async fn bursts_get_429_with_rate_limit_headers() {
    for retry_after in [false, true] {
        let mut o = opts(0.05);
        o.strict_rate_limits = true;
        if retry_after {
            o.variants = Variants::default().with("gladly.retry_after", "on");
        }
        let e = start(Vendor::Gladly, &o, 0).await.expect("start");
        let burst: Vec<_> = (0..30).map(|_| get(&e, "/inboxes")).collect();
        let answers = futures::future::join_all(burst).await;
        let limited: Vec<&reqwest::Response> =
            answers.iter().filter(|r| r.status() == 429).collect();
        assert!(!limited.is_empty(), "a burst of 30 exceeds 10/s");
        assert!(answers.iter().filter(|r| r.status() == 200).count() >= 10);
        for r in limited {
            assert_eq!(
                r.headers()
                    .get("ratelimit-limit-second")
                    .and_then(|v| v.to_str().ok()),
                Some("10")
            );
            assert_eq!(
                r.headers()
                    .get("ratelimit-remaining-second")
                    .and_then(|v| v.to_str().ok()),
                Some("0")
            );
            assert_eq!(r.headers().contains_key("retry-after"), retry_after);
        }
    }
}

#[tokio::test]
async fn export_jobs_files_and_quirks() {
    let e = start(Vendor::Gladly, &opts(0.1), 0).await.expect("start");
    let jobs = get_json(&e, "/export/jobs").await;
    let jobs = jobs.as_array().expect("array");
    assert!(
        jobs.len() >= 13,
        "about 14 days of daily jobs, got {}",
        jobs.len()
    );
    let failed = jobs.iter().filter(|j| j["status"] == "FAILED").count();
    assert_eq!(failed, 1);
    let completed: Vec<&Value> = jobs.iter().filter(|j| j["status"] == "COMPLETED").collect();
    for j in &completed {
        for k in ["id", "scheduleId", "updatedAt", "parameters", "files"] {
            assert!(!j[k].is_null(), "job lacks {k}: {j}");
        }
    }
    let schedules = get_json(&e, "/export/schedules").await;
    assert_eq!(schedules[0]["frequency"], "DAILY");

    let mut types = BTreeSet::new();
    let mut malformed = 0;
    let mut blank = 0;
    let mut without_conversation = 0;
    let mut lacking = 0;
    let mut empty_files = 0;
    let mut no_trailing = 0;
    let mut seen_items: BTreeSet<String> = BTreeSet::new();
    let mut in_two_jobs = 0;
    for j in &completed {
        let id = j["id"].as_str().expect("id");
        let files: Vec<&str> = j["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for f in [
            "agents.jsonl",
            "conversation_items.jsonl",
            "customers.jsonl",
            "topics.jsonl",
        ] {
            let (status, text) = lines(&e, id, f).await;
            if !files.contains(&f) {
                assert_eq!(status, 404);
                lacking += 1;
                continue;
            }
            assert_eq!(status, 200);
            if text.is_empty() {
                empty_files += 1;
            } else if !text.ends_with('\n') {
                no_trailing += 1;
            }
            if f != "conversation_items.jsonl" {
                continue;
            }
            for line in text.split('\n') {
                if line.is_empty() {
                    blank += 1;
                    continue;
                }
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    malformed += 1;
                    continue;
                };
                types.insert(v["content"]["type"].as_str().unwrap_or("").to_owned());
                if v.get("conversationId").is_none() {
                    without_conversation += 1;
                }
                if !seen_items.insert(v["id"].as_str().unwrap_or("").to_owned()) {
                    in_two_jobs += 1;
                }
            }
        }
    }
    for t in [
        "CHAT_MESSAGE",
        "CONVERSATION_STATUS_CHANGE",
        "CUSTOMER_ACTIVITY",
        "EMAIL",
        "FACEBOOK_MESSAGE",
        "CONVERSATION_NOTE",
        "PHONE_CALL",
        "SMS",
        "TOPIC_CHANGE",
        "VOICEMAIL",
        "INSTAGRAM_DIRECT",
        "WHATSAPP",
        "VIDEO_CALL",
    ] {
        assert!(types.contains(t), "no {t} item in {types:?}");
    }
    assert!(
        malformed >= 1 && blank >= 1,
        "malformed {malformed}, blank {blank}"
    );
    assert!(without_conversation >= 1);
    assert!(
        lacking >= 1 && empty_files >= 1 && no_trailing >= 1,
        "{lacking} {empty_files} {no_trailing}"
    );
    let truth = truth(&e).await;
    // The malformed lines of the jobs, and the malformed row of the contact report.
    assert_eq!(truth.extra["quarantined"].as_u64(), Some(malformed + 1));
    let _ = in_two_jobs;
}

#[tokio::test]
async fn rest_shapes_merges_deletions_and_caps() {
    let o = opts(0.1);
    let e = start(Vendor::Gladly, &o, 0).await.expect("start");
    let truth = truth(&e).await;
    let x = &truth.extra;
    // Customer merged: 301 `moved` with old and new ids.
    let merged = x["merged_customers"].as_object().expect("map");
    for (old, new) in merged {
        let r = get(&e, &format!("/customer-profiles/{old}")).await;
        assert_eq!(r.status(), 301);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["errors"][0]["code"], "moved");
        assert_eq!(body["errors"][0]["meta"]["new"], *new);
        let survivor = get_json(
            &e,
            &format!("/customer-profiles/{}", new.as_str().unwrap_or("")),
        )
        .await;
        for k in [
            "emails",
            "phones",
            "customAttributes",
            "createdAt",
            "updatedAt",
        ] {
            assert!(!survivor[k].is_null(), "profile lacks {k}");
        }
    }
    // GDPR deletion and the OPEN→OPEN loser: 404.
    for c in x["deleted_customers"].as_array().expect("list") {
        assert_eq!(
            get(
                &e,
                &format!("/customer-profiles/{}", c.as_str().unwrap_or(""))
            )
            .await
            .status(),
            404
        );
    }
    for c in x["deleted_conversations"].as_array().expect("list") {
        assert_eq!(
            get(&e, &format!("/conversations/{}", c.as_str().unwrap_or("")))
                .await
                .status(),
            404
        );
    }
    // The long conversation's list stops at 1000 with Gladly-Limited-Data.
    let r = get(
        &e,
        &format!(
            "/conversations/{}/items",
            x["long_conversation"].as_str().unwrap_or("")
        ),
    )
    .await;
    assert_eq!(
        r.headers()
            .get("gladly-limited-data")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let items: Vec<Value> = r.json().await.expect("json");
    assert_eq!(items.len(), 1000);
    // The unknown item type: 400 on GET item.
    let all = get_json(
        &e,
        &format!(
            "/conversations/{}/items",
            x["all_types_conversation"].as_str().unwrap_or("")
        ),
    )
    .await;
    let unknown = all
        .as_array()
        .expect("array")
        .iter()
        .find(|i| i["content"]["type"] == "VIDEO_CALL")
        .expect("unknown type");
    assert_eq!(
        get(
            &e,
            &format!(
                "/conversation-items/{}",
                unknown["id"].as_str().unwrap_or("")
            )
        )
        .await
        .status(),
        400
    );
    let chat = all
        .as_array()
        .expect("array")
        .iter()
        .find(|i| i["content"]["type"] == "CHAT_MESSAGE")
        .expect("chat");
    assert_eq!(
        get_json(
            &e,
            &format!("/conversation-items/{}", chat["id"].as_str().unwrap_or(""))
        )
        .await,
        *chat
    );
    // Conversation: inbox changes as the clock passes the move.
    let moving = x["inbox_move_conversation"].as_str().unwrap_or("");
    let before = get_json(&e, &format!("/conversations/{moving}")).await;
    e.clock.advance(Duration::days(1));
    let after = get_json(&e, &format!("/conversations/{moving}")).await;
    assert_ne!(before["inboxId"], after["inboxId"]);
    assert!(after.get("updatedAt").is_none());
    // Topics: a tree, two named alike.
    let topics = get_json(&e, "/topics").await;
    let topics = topics.as_array().expect("array");
    assert!(topics.iter().any(|t| t.get("parentId").is_some()));
    assert_eq!(topics.iter().filter(|t| t["name"] == "Other").count(), 2);
    assert_eq!(
        get_json(&e, "/inboxes").await.as_array().map(Vec::len),
        truth.tables.get("inboxes").map(|n| *n as usize)
    );
    assert_eq!(
        get_json(&e, "/agents").await.as_array().map(Vec::len),
        truth.tables.get("agents").map(|n| *n as usize)
    );
}

#[tokio::test]
async fn jobs_appear_daily_and_vanish_after_14_days() {
    let o = opts(0.05);
    let e = start(Vendor::Gladly, &o, 0).await.expect("start");
    let before: Vec<Value> = get_json(&e, "/export/jobs")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    let oldest = before
        .iter()
        .min_by_key(|j| j["updatedAt"].as_str().unwrap_or("").to_owned())
        .cloned()
        .expect("a job");
    e.clock.advance(Duration::days(1));
    let after: Vec<Value> = get_json(&e, "/export/jobs")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids = |v: &[Value]| {
        v.iter()
            .map(|j| j["id"].as_str().unwrap_or("").to_owned())
            .collect::<BTreeSet<_>>()
    };
    let new: Vec<String> = ids(&after).difference(&ids(&before)).cloned().collect();
    assert_eq!(new.len(), 1, "one new daily job");
    e.clock.advance(Duration::days(14));
    let id = oldest["id"].as_str().unwrap_or("");
    assert_eq!(get(&e, &format!("/export/jobs/{id}")).await.status(), 404);
    assert_eq!(lines(&e, id, "customers.jsonl").await.0, 404);
}

#[tokio::test]
async fn ground_truth_is_deterministic_and_counts_the_specials() {
    let o = opts(0.1);
    let w = World::new(&o);
    let a = talkhouse_emulator::gladly::truth(&w, t0());
    let b = talkhouse_emulator::gladly::truth(&World::new(&o), t0());
    assert_eq!(a, b);
    assert_eq!(a.tables.get("customer_merges"), Some(&2));
    // The OPEN→OPEN loser retired a conversation id; every merge has its model row.
    assert_eq!(a.tables.get("conversation_merges"), Some(&1));
    assert_eq!(a.tables.get("model_id_merges"), Some(&3));
    let merged = a.extra["merged_conversations"].as_object().expect("a map");
    assert_eq!(merged.len(), 1);
    let (loser, survivor) = merged.iter().next().expect("one merge");
    assert_eq!(
        Some(loser.as_str()),
        a.extra["deleted_conversations"][0].as_str()
    );
    assert_eq!(survivor, &a.extra["surviving_conversation"]);
    // Before the merge, nothing was merged.
    let (_, _, merged_at) = w.open_merge();
    let before = talkhouse_emulator::gladly::truth(&w, merged_at - Duration::hours(1));
    assert_eq!(before.tables.get("conversation_merges"), Some(&0));
    assert!(
        a.tables.get("conversation_items").copied().unwrap_or(0) > 1000,
        "the long conversation alone has 1100 items"
    );
    assert_eq!(
        a.tables.get("model_conversations"),
        a.tables.get("conversations")
    );
}

/// `talkhouse emulate --scale 1000` serves ≥1M items with flat memory: every job's items,
/// streamed, counted, while the peak RSS stays low. Slow; run with `--ignored`.
#[tokio::test]
#[ignore = "scale 1000 takes minutes"]
#[allow(clippy::print_stderr)]
async fn scale_1000_streams_a_million_items_in_flat_memory() {
    use futures::StreamExt;
    let o = opts(1000.0);
    let e = start(Vendor::Gladly, &o, 0).await.expect("start");
    let jobs = get_json(&e, "/export/jobs?status=COMPLETED").await;
    let mut total = 0u64;
    for j in jobs.as_array().cloned().unwrap_or_default() {
        let id = j["id"].as_str().unwrap_or("");
        let mut body = get(
            &e,
            &format!("/export/jobs/{id}/files/conversation_items.jsonl"),
        )
        .await
        .bytes_stream();
        while let Some(chunk) = body.next().await {
            total += chunk
                .expect("chunk")
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_owned();
    eprintln!("items served: {total}; peak RSS {hwm}");
    assert!(total >= 1_000_000, "{total}");
}

async fn post_report(e: &Running, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/reports", e.base_url))
        .basic_auth(API_USER, Some(API_TOKEN))
        .json(&body)
        .send()
        .await
        .expect("emulator answers")
}

#[tokio::test]
async fn reports_answer_csv_keep_old_ids_and_keep_their_budget() {
    let mut o = opts(0.05);
    o.strict_rate_limits = true;
    let e = start(Vendor::Gladly, &o, 0).await.expect("start");
    let org = get(&e, "/organization").await;
    let date = org
        .headers()
        .get("date")
        .and_then(|d| d.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_default();
    assert_eq!(
        date, "Tue, 10 Mar 2026 12:00:00 GMT",
        "Date is the emulator's clock"
    );
    let org: Value = org.json().await.expect("json");
    assert_eq!(org["timezone"], "America/New_York");
    // Bad requests: 400, and they do not count against the budget.
    let bad = post_report(&e, serde_json::json!({"metricSet": "NoSuchReport", "startAt": "2026-03-01", "endAt": "2026-03-01"})).await;
    assert_eq!(bad.status(), 400);
    let bad = post_report(&e, serde_json::json!({"metricSet": "ContactExportReportV3", "startAt": "2026-03-02", "endAt": "2026-03-01"})).await;
    assert_eq!(bad.status(), 400);
    let r = post_report(&e, serde_json::json!({"metricSet": "ContactExportReportV3", "timezone": "America/New_York", "startAt": "2026-02-01", "endAt": "2026-03-10"})).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/csv"))
    );
    // Bytes: a text decoder would drop the byte-order mark.
    let bytes = r.bytes().await.expect("body");
    assert!(
        bytes.starts_with("\u{feff}Timezone Filter,".as_bytes()),
        "a byte-order mark, then the filters"
    );
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let w = World::new(&o);
    let merged_away = w.customer_id(talkhouse_emulator::gladly::data::SPECIAL);
    assert!(
        body.contains(&merged_away),
        "the report keeps the merged-away customer's id"
    );
    // An empty window is an empty body.
    let empty = post_report(&e, serde_json::json!({"metricSet": "WorkSessionsReportV3", "startAt": "2025-01-01", "endAt": "2025-01-02"})).await;
    assert_eq!(empty.status(), 200);
    assert!(empty.text().await.unwrap_or_default().is_empty());
    // Eight more make ten this minute; the eleventh is refused.
    for _ in 0..8 {
        let r = post_report(&e, serde_json::json!({"metricSet": "ConversationExportReport", "startAt": "2026-03-09", "endAt": "2026-03-09"})).await;
        assert_eq!(r.status(), 200);
    }
    let refused = post_report(&e, serde_json::json!({"metricSet": "ConversationExportReport", "startAt": "2026-03-09", "endAt": "2026-03-09"})).await;
    assert_eq!(refused.status(), 429);
    let log: Value = reqwest::get(format!("{}/_emulator/gladly/reports", e.base_url))
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    assert_eq!(log["requests"].as_array().map(Vec::len), Some(11));
}

async fn events(e: &Running, query: &str) -> (u16, String, String) {
    let r = get(e, &format!("/events?{query}")).await;
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, kind, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn events_api_keeps_24_hours_filters_entities_and_carries_merges() {
    let o = opts(0.1);
    let w = World::new(&o);
    let (loser, survivor, merged_at) = w.open_merge();
    let e = start(Vendor::Gladly, &o, 0).await.expect("start");
    // Half an hour after the OPEN→OPEN merge.
    o.clock.set(merged_at + Duration::minutes(30));
    let now = o.clock.now();
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    // startAt is required and at most 24 hours old; endAt not before it; entities known.
    assert_eq!(events(&e, "").await.0, 400);
    let old = at(now - Duration::hours(25));
    assert_eq!(events(&e, &format!("startAt={old}")).await.0, 400);
    let (from, to) = (at(now - Duration::hours(2)), at(now - Duration::hours(3)));
    assert_eq!(
        events(&e, &format!("startAt={from}&endAt={to}")).await.0,
        400
    );
    assert_eq!(
        events(&e, &format!("startAt={from}&entities=NOPE")).await.0,
        400
    );

    // JSON lines, oldest first, the same events webhooks carry.
    let since = now - Duration::hours(23);
    let (status, kind, body) = events(&e, &format!("startAt={}", at(since))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kind, "application/x-jsonlines");
    let all: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        all,
        talkhouse_emulator::gladly::webhooks::events_between(&w, since, now)
    );
    let times: Vec<&str> = all.iter().filter_map(|v| v["timestamp"].as_str()).collect();
    assert!(times.windows(2).all(|p| p[0] <= p[1]), "ascending");
    let merge = all
        .iter()
        .find(|v| {
            v["type"] == "CUSTOMER/MERGED"
                && v["content"]["sourceConversationId"].as_str()
                    == Some(w.id(b'C', loser, 0).as_str())
        })
        .expect("the OPEN→OPEN merge is an event");
    assert_eq!(
        merge["content"]["destinationConversationId"].as_str(),
        Some(w.id(b'C', survivor, 0).as_str())
    );

    // Repeated `entities` filter: only what was asked for.
    let (_, _, some) = events(
        &e,
        &format!(
            "startAt={}&entities=CUSTOMER&entities=CUSTOMER_PROFILE",
            at(since)
        ),
    )
    .await;
    let types: BTreeSet<String> = some
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["type"].as_str().map(str::to_owned))
        .collect();
    assert!(types.contains("CUSTOMER/MERGED"), "{types:?}");
    assert!(
        types
            .iter()
            .all(|t| t.starts_with("CUSTOMER/") || t.starts_with("CUSTOMER_PROFILE/")),
        "{types:?}"
    );
    let (_, _, conversations) =
        events(&e, &format!("startAt={}&entities=CONVERSATION", at(since))).await;
    assert!(
        conversations
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .all(|v| v["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("CONVERSATION")))
    );

    // After the merge the loser is gone for good and its items live on in the survivor under
    // new ids.
    let loser_id = w.id(b'C', loser, 0);
    assert_eq!(
        get(&e, &format!("/conversations/{loser_id}"))
            .await
            .status(),
        404
    );
    let items = get_json(
        &e,
        &format!("/conversations/{}/items", w.id(b'C', survivor, 0)),
    )
    .await;
    let moved = items
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|i| {
                    w.parse_id(i["id"].as_str().unwrap_or(""))
                        .is_some_and(|(k, idx, _)| k == b'M' && idx == loser)
                })
                .count()
        })
        .unwrap_or(0);
    assert_eq!(moved, 4, "the loser's four messages, renumbered");
}
