//! Ultimate emulator: shapes, auth, 404 days, expiring URLs, switches, ground truth.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use talkhouse_emulator::ultimate::API_KEY;
use talkhouse_emulator::{Clock, EmulatorOptions, GroundTruth, Running, Variants, Vendor, start};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-10T09:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

async fn emulator(variants: Variants, scale: f64) -> (Running, GroundTruth) {
    let mut opts = EmulatorOptions::new(7, scale);
    opts.clock = Clock::at(t0());
    opts.variants = variants;
    let run = start(Vendor::Ultimate, &opts, 0)
        .await
        .expect("emulator starts");
    let truth: GroundTruth = reqwest::get(format!("{}/_emulator/truth", run.base_url))
        .await
        .expect("truth")
        .json()
        .await
        .expect("json");
    (run, truth)
}

fn field<'a>(run: &'a Running, name: &str) -> &'a Value {
    &run.credentials
        .fields
        .iter()
        .find(|(k, _)| *k == name)
        .expect("credential")
        .1
}

async fn post(run: &Running, key: &str, bot: &str, body: Value) -> (u16, String) {
    let org = field(run, "organization_id")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let resp = reqwest::Client::new()
        .post(format!("{}/data-export/v3/get-signed-urls", run.base_url))
        .header("authorization", key)
        .header("organizationId", org)
        .header("botId", bot)
        .json(&body)
        .send()
        .await
        .expect("post");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

fn bots(run: &Running) -> Vec<String> {
    field(run, "bot_ids")
        .as_array()
        .expect("bots")
        .iter()
        .filter_map(|b| b.as_str().map(str::to_owned))
        .collect()
}

/// Downloads a day's files and returns their records (malformed lines counted apart).
async fn day_records(run: &Running, bot: &str, day: NaiveDate) -> Option<(Vec<Value>, usize)> {
    let (status, body) = post(run, API_KEY, bot, json!({"date": day.to_string()})).await;
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    let urls = v
        .get("urls")
        .or_else(|| v.get("signed_urls"))
        .and_then(Value::as_array)
        .expect("url list")
        .clone();
    let (mut records, mut bad) = (Vec::new(), 0);
    for u in urls {
        let resp = reqwest::get(u.as_str().unwrap_or_default())
            .await
            .expect("download");
        assert_eq!(resp.status().as_u16(), 200);
        let bytes = resp.bytes().await.expect("body").to_vec();
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .expect("gunzip");
            out
        } else {
            bytes
        };
        let text = String::from_utf8(bytes).expect("utf8");
        if text.trim_start().starts_with('[') {
            for item in serde_json::from_str::<Vec<Value>>(&text).expect("array") {
                if item.is_object() {
                    records.push(item)
                } else {
                    bad += 1
                }
            }
        } else {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => records.push(v),
                    Err(_) => bad += 1,
                }
            }
        }
    }
    Some((records, bad))
}

fn get<'a>(rec: &'a Value, key: &str) -> Option<&'a Value> {
    rec.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

#[tokio::test]
async fn auth_errors_and_404_days() {
    let (run, _) = emulator(Variants::default(), 0.2).await;
    let bot = bots(&run)[0].clone();
    let yesterday = (t0() - Duration::days(1)).date_naive().to_string();
    assert_eq!(
        post(&run, "wrong", &bot, json!({"date": yesterday}))
            .await
            .0,
        401
    );
    assert_eq!(
        post(
            &run,
            &format!("Bearer {API_KEY}"),
            &bot,
            json!({"date": yesterday})
        )
        .await
        .0,
        401
    );
    assert_eq!(
        post(
            &run,
            API_KEY,
            "64aa00000000000000000000",
            json!({"date": yesterday})
        )
        .await
        .0,
        403
    );
    let (s, body) = post(&run, API_KEY, &bot, json!({"date": "14.03.2025"})).await;
    assert_eq!((s, body.as_str()), (400, "invalid date format"));
    // Today and the future have no export yet; nor has a day before the second bot existed.
    assert_eq!(
        post(
            &run,
            API_KEY,
            &bot,
            json!({"date": t0().date_naive().to_string()})
        )
        .await
        .0,
        404
    );
    let old = (t0() - Duration::days(25)).date_naive().to_string();
    assert_eq!(
        post(&run, API_KEY, &bots(&run)[1], json!({"date": old}))
            .await
            .0,
        404
    );
    let (s, body) = post(&run, API_KEY, &bot, json!({"date": yesterday, "ttl": 10})).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["date"], json!(yesterday));
    let urls = v["urls"].as_array().expect("urls");
    assert!(urls.len() > 1, "several shards");
    // Pre-signed URLs need no auth; they expire after the ttl (by the emulator's clock).
    let first = urls[0].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        reqwest::get(&first).await.expect("get").status().as_u16(),
        200
    );
    let tampered = first.replace("X-Goog-Expires=600", "X-Goog-Expires=60000");
    assert_eq!(
        reqwest::get(&tampered)
            .await
            .expect("get")
            .status()
            .as_u16(),
        403
    );
    run.clock.advance(Duration::minutes(11));
    let resp = reqwest::get(&first).await.expect("get");
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        resp.text()
            .await
            .unwrap_or_default()
            .contains("ExpiredToken")
    );
}

#[tokio::test]
async fn switches_change_the_wire_shape() {
    let variants = Variants::default()
        .with("ultimate.response_key", "signed_urls")
        .with("ultimate.format", "array")
        .with("ultimate.gzip", "magic")
        .with("ultimate.keys", "upper")
        .with("ultimate.counts", "int")
        .with("ultimate.fields", "both")
        .with("ultimate.bearer", "accept");
    let (run, _) = emulator(variants, 0.3).await;
    let bot = bots(&run)[0].clone();
    let day = (t0() - Duration::days(2)).date_naive();
    let (s, body) = post(
        &run,
        &format!("Bearer {API_KEY}"),
        &bot,
        json!({"date": day.to_string()}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"signed_urls\""));
    let (records, _) = day_records(&run, &bot, day).await.expect("export");
    let r = &records[0];
    assert!(r.get("CONVERSATION_ID").is_some(), "upper-case keys: {r}");
    assert!(r["BOT_MESSAGES_COUNT"].is_i64());
    assert!(r.get("KNOWLEDGE_FALLBACK_COUNT").is_some() && r.get("LLM_FALLBACK_COUNT").is_some());
    assert!(r["CONVERSATIONS_DATA"].is_string(), "JSON in a string");
    assert!(
        r["TRIGGERED_INTENT_REPLIES"]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_object))
    );

    let (run, _) = emulator(Variants::default().with("ultimate.gzip", "encoding"), 0.3).await;
    let (records, _) = day_records(&run, &bots(&run)[0], day)
        .await
        .expect("export");
    assert!(
        records[0]["bot_messages_count"].is_string(),
        "seed: counts are strings"
    );
}

#[tokio::test]
async fn truth_agrees_with_served_files() {
    let (run, truth) = emulator(Variants::default(), 0.5).await;
    let first: NaiveDate = truth.extra["first_day"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("first_day");
    let last: NaiveDate = truth.extra["last_day"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("last_day");
    let mut finals: BTreeMap<String, Value> = BTreeMap::new();
    let (mut rows, mut malformed, mut spill) = (0usize, 0usize, 0usize);
    for bot in bots(&run) {
        let mut d = first;
        while d <= last {
            if let Some((records, bad)) = day_records(&run, &bot, d).await {
                malformed += bad;
                rows += records.len();
                for r in records {
                    let start = get(&r, "conversation_start_time")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !start.starts_with(&d.to_string()) {
                        spill += 1;
                    }
                    let id = get(&r, "conversation_id")
                        .and_then(Value::as_str)
                        .expect("id")
                        .to_owned();
                    finals.insert(id, r);
                }
            }
            d += Duration::days(1);
        }
    }
    let intents: usize = finals
        .values()
        .map(|r| {
            get(r, "triggered_intent_replies")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        })
        .sum();
    let replies: usize = finals
        .values()
        .map(|r| {
            get(r, "triggered_replies")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(finals.len() as u64, truth.tables["conversations"]);
    assert_eq!(intents as u64, truth.tables["triggered_intent_replies"]);
    assert_eq!(replies as u64, truth.tables["triggered_replies"]);
    assert_eq!(
        malformed as u64,
        truth.extra["malformed_lines"].as_u64().unwrap_or(u64::MAX)
    );
    let dups = truth.extra["duplicates"].as_u64().unwrap_or(0);
    let reopened = truth.extra["reopened"].as_u64().unwrap_or(0);
    assert_eq!(
        rows as u64,
        finals.len() as u64 + dups + reopened,
        "rows = conversations + duplicates + re-opened"
    );
    assert!(
        dups > 0 && reopened > 0 && malformed > 0 && spill > 0,
        "quirks are exercised"
    );
    assert!(truth.extra["late_rows"].as_u64().unwrap_or(0) > 0);
    // The vendor's metrics leave test conversations (`test_mode`) out.
    let tests = finals
        .values()
        .filter(|r| {
            matches!(get(r, "test_mode"), Some(Value::Bool(true)))
                || get(r, "test_mode").and_then(Value::as_str) == Some("true")
        })
        .count();
    assert!(tests > 0, "test conversations are generated");
    assert_eq!(
        truth.extra["test_conversations"].as_u64(),
        Some(tests as u64)
    );
    let total = truth.extra["metrics"]["overall"]["total_conversations"].as_u64();
    assert_eq!(total, Some((finals.len() - tests) as u64));
}

#[tokio::test]
async fn files_grow_after_midnight() {
    let (run, _) = emulator(Variants::default(), 1.0).await;
    let bot = bots(&run)[0].clone();
    // 09:00 minus 8 h = 01:00 on the day after `day`: late rows are not there yet.
    run.clock.set(t0() - Duration::hours(8));
    let day = (t0() - Duration::days(1)).date_naive();
    let early = day_records(&run, &bot, day).await.expect("export").0.len();
    run.clock.set(t0());
    let later = day_records(&run, &bot, day).await.expect("export").0.len();
    assert!(later > early, "the day file grew: {early} → {later}");
}
