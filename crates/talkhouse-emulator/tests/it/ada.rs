//! Ada emulator: shapes per endpoint and version, validation against Ada's published OpenAPI
//! documents, auth failures, parameter errors, 429 bursts, pagination and ground truth.

use std::collections::HashSet;

use serde_json::Value;
use talkhouse_emulator::ada::{LEGACY_TOKEN, V2_TOKEN};
use talkhouse_emulator::{EmulatorOptions, Running, Variants, Vendor};

async fn start(scale: f64, variants: Variants, strict: bool) -> Running {
    let mut opts = EmulatorOptions::new(11, scale);
    opts.variants = variants;
    opts.strict_rate_limits = strict;
    talkhouse_emulator::start(Vendor::Ada, &opts, 0)
        .await
        .expect("emulator starts")
}

fn q(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Path, token and bound parameter names of one endpoint of one version.
fn endpoint(version: &str, kind: &str) -> (String, &'static str, &'static str) {
    let path = if version == "v2" {
        format!("/api/v2/export/{kind}")
    } else {
        format!("/data_api/{version}/{kind}")
    };
    let token = if version == "v2" {
        V2_TOKEN
    } else {
        LEGACY_TOKEN
    };
    let since = if kind == "conversations" {
        "updated_since"
    } else {
        "created_since"
    };
    (path, token, since)
}

async fn get(
    emu: &Running,
    path_and_query: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path_and_query.starts_with("http") {
        path_and_query.to_owned()
    } else {
        format!("{}{path_and_query}", emu.base_url)
    };
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("answer");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn first_page(emu: &Running, version: &str, kind: &str) -> Value {
    let (path, token, since) = endpoint(version, kind);
    let now = emu.clock.now();
    let to = if kind == "conversations" {
        "updated_to"
    } else {
        "created_to"
    };
    let url = format!(
        "{path}?{since}={}&{to}={}&page_size=100",
        q(now - chrono::Duration::days(31)),
        q(now)
    );
    let (status, _, body) = get(emu, &url, Some(token)).await;
    assert_eq!(status, 200, "{version} {kind}: {body}");
    body
}

// ---- OpenAPI validation -------------------------------------------------------------------

fn spec(version: &str) -> Value {
    let file = if version == "v2" {
        "ada-data-export-v2.openapi.yml"
    } else {
        "ada-data-export-v1.4.openapi.yml"
    };
    let path = format!("{}/tests/fixtures/ada/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("spec file");
    serde_yaml::from_str(&text).expect("spec parses")
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            spec.pointer(&format!("/components/schemas/{name}"))
                .unwrap_or(&Value::Null)
        }
        None => schema,
    }
}

fn type_ok(ty: &str, v: &Value, format: Option<&str>) -> bool {
    match ty {
        "string" => match (v.as_str(), format) {
            (Some(s), Some("date-time")) => {
                // Ada's own quirk: v2 conversation dates come without a zone.
                chrono::DateTime::parse_from_rfc3339(s).is_ok()
                    || chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
            }
            (Some(_), _) => true,
            (None, _) => false,
        },
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// Checks `v` against `schema`: types (with `null` only where allowed), required properties,
/// array items and nested objects. Returns the problems found.
fn validate(spec: &Value, schema: &Value, v: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    let format = schema.get("format").and_then(Value::as_str);
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, v, format)) {
        problems.push(format!("{at}: expected {types:?}, got {v}"));
        return;
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(req) {
                problems.push(format!("{at}: missing required `{req}`"));
            }
        }
        for (k, sub) in props {
            if let Some(val) = obj.get(k) {
                validate(spec, sub, val, &format!("{at}.{k}"), problems);
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(spec, items, item, &format!("{at}[{i}]"), problems);
        }
    }
}

fn response_schema<'a>(spec: &'a Value, path: &str, status: &str) -> &'a Value {
    let key = path.replace('~', "~0").replace('/', "~1");
    spec.pointer(&format!(
        "/paths/{key}/get/responses/{status}/content/application~1json/schema"
    ))
    .expect("schema in the spec")
}

fn spec_path(version: &str, kind: &str) -> String {
    if version == "v2" {
        format!("/v2/export/{kind}")
    } else {
        format!("/data_api/v1.4/{kind}")
    }
}

#[tokio::test]
async fn answers_validate_against_the_published_openapi_documents() {
    let emu = start(0.2, Variants::default(), false).await;
    for version in ["v1.3", "v1.4", "v2"] {
        let spec = spec(version);
        for kind in ["conversations", "messages"] {
            let page = first_page(&emu, version, kind).await;
            let schema = response_schema(&spec, &spec_path(version, kind), "200");
            let mut problems = Vec::new();
            validate(&spec, schema, &page, "$", &mut problems);
            assert!(problems.is_empty(), "{version} {kind}: {problems:#?}");
            assert_eq!(page["data"].as_array().map(Vec::len), Some(100));

            // The check can fail: a wrong shape is caught.
            let mut broken = page.clone();
            broken["data"][0]["is_engaged"] = Value::from("yes");
            broken["data"][1]["_id"] = Value::from(42);
            broken["data"][2]["date_created"] = Value::from("last tuesday");
            if version == "v2" {
                broken["meta"]["next_page_uri"] = Value::from(7);
            }
            let mut found = Vec::new();
            validate(&spec, schema, &broken, "$", &mut found);
            let want = if kind == "conversations" { 3 } else { 2 } + usize::from(version == "v2");
            assert_eq!(found.len(), want, "{version} {kind}: {found:#?}");
        }
    }
    // v2 errors follow the `Errors` schema (required `errors`, `type`, `message`).
    let v2 = spec("v2");
    let (status, _, body) = get(
        &emu,
        "/api/v2/export/messages?page_size=100",
        Some(V2_TOKEN),
    )
    .await;
    assert_eq!(status, 400);
    let mut problems = Vec::new();
    validate(
        &v2,
        response_schema(&v2, "/v2/export/messages", "400"),
        &body,
        "$",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:?}");
    let mut problems = Vec::new();
    validate(
        &v2,
        response_schema(&v2, "/v2/export/messages", "400"),
        &serde_json::json!({"message": "x"}),
        "$",
        &mut problems,
    );
    assert_eq!(
        problems.len(),
        1,
        "a v1-style error body must not pass as v2"
    );
    emu.stop().await;
}

// ---- shapes --------------------------------------------------------------------------------

#[tokio::test]
async fn shapes_per_endpoint_and_version() {
    let emu = start(0.2, Variants::default(), false).await;
    for version in ["v1.3", "v1.4", "v2"] {
        let conv = first_page(&emu, version, "conversations").await;
        let msgs = first_page(&emu, version, "messages").await;
        let c = &conv["data"][0];
        let m = &msgs["data"][0];
        let cdate = c["date_created"].as_str().unwrap_or("");
        let mdate = m["date_created"].as_str().unwrap_or("");
        assert!(mdate.ends_with("+00:00"), "{version} message date {mdate}");
        if version == "v2" {
            assert!(
                !cdate.ends_with("+00:00") && !cdate.ends_with('Z'),
                "v2 conversation date {cdate}"
            );
            assert!(
                conv["meta"]["next_page_uri"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("http://"),
                "{conv}"
            );
            assert!(conv.get("message").is_none());
            assert!(c.get("classifications").is_some());
        } else {
            assert!(
                cdate.ends_with("+00:00"),
                "{version} conversation date {cdate}"
            );
            assert_eq!(conv["message"], "OK");
            let link = conv["next_page_uri"].as_str().unwrap_or("");
            assert!(
                link.starts_with(&format!("/data_api/{version}/conversations?updated_since=")),
                "{link}"
            );
            assert!(c.get("classifications").is_none());
        }
        assert_eq!(
            c.get("generated_topic_id").is_some(),
            version != "v1.3",
            "{version}"
        );
        for key in [
            "_id",
            "chatter_id",
            "date_updated",
            "is_engaged",
            "is_escalated",
            "platform",
            "csat",
            "variables",
            "metavariables",
        ] {
            assert!(c.get(key).is_some(), "{version} conversation lacks {key}");
        }
        for key in [
            "_id",
            "conversation_id",
            "sender",
            "recipient",
            "message_data",
        ] {
            assert!(m.get(key).is_some(), "{version} message lacks {key}");
        }
        assert_eq!(c["_id"].as_str().map(str::len), Some(24));
    }
    // The `/api/data_api/…` mount writes links under `/api`.
    let now = emu.clock.now();
    let url = format!(
        "/api/data_api/v1.4/messages?created_since={}&page_size=100",
        q(now - chrono::Duration::days(20))
    );
    let (status, _, body) = get(&emu, &url, Some(LEGACY_TOKEN)).await;
    assert_eq!(status, 200);
    assert!(
        body["next_page_uri"]
            .as_str()
            .unwrap_or("")
            .starts_with("/api/data_api/v1.4/messages?"),
        "{body}"
    );
    emu.stop().await;
}

#[tokio::test]
async fn bad_credentials_are_rejected_the_vendor_way() {
    let emu = start(0.05, Variants::default(), false).await;
    let since = q(emu.clock.now() - chrono::Duration::days(3));
    let v2 = format!("/api/v2/export/messages?created_since={since}");
    let v1 = format!("/data_api/v1.4/messages?created_since={since}");
    let (s, _, b) = get(&emu, &v2, None).await;
    assert_eq!(s, 401);
    assert!(b["errors"][0]["type"].is_string(), "{b}");
    let (s, _, b) = get(&emu, &v2, Some(LEGACY_TOKEN)).await;
    assert_eq!(s, 401);
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Legacy"),
        "{b}"
    );
    let (s, _, b) = get(&emu, &v1, Some("wrong")).await;
    assert_eq!(s, 401);
    assert!(b["message"].is_string() && b.get("errors").is_none(), "{b}");
    assert_eq!(get(&emu, &v1, Some(LEGACY_TOKEN)).await.0, 200);
    // Only one Data Export token: regenerating invalidates the old one.
    let new: Value = reqwest::Client::new()
        .post(format!("{}/_emulator/ada/regenerate_token", emu.base_url))
        .send()
        .await
        .expect("regenerate")
        .json()
        .await
        .expect("json");
    let token = new["token"].as_str().unwrap_or("").to_owned();
    assert_eq!(get(&emu, &v1, Some(LEGACY_TOKEN)).await.0, 401);
    assert_eq!(get(&emu, &v1, Some(&token)).await.0, 200);
    emu.stop().await;
}

#[tokio::test]
async fn parameter_errors() {
    let emu = start(0.05, Variants::default(), false).await;
    let now = emu.clock.now();
    let since = q(now - chrono::Duration::days(3));
    let far = q(now - chrono::Duration::days(70));
    for (url, v2_status, v1_status) in [
        (
            format!("messages?created_since={since}&page_size=50"),
            400,
            422,
        ),
        (
            format!("messages?created_since={since}&page_size=10001"),
            400,
            422,
        ),
        ("messages?page_size=100".to_owned(), 400, 422),
        (
            format!("conversations?created_since={since}&updated_since={since}"),
            400,
            400,
        ),
        (
            format!("messages?created_since={far}&created_to={since}"),
            400,
            400,
        ),
        (
            format!("messages?created_since={}", since.trim_end_matches('Z')),
            400,
            422,
        ),
    ] {
        let (s, _, b) = get(&emu, &format!("/api/v2/export/{url}"), Some(V2_TOKEN)).await;
        assert_eq!(s, v2_status, "v2 {url}: {b}");
        let (s, _, b) = get(&emu, &format!("/data_api/v1.4/{url}"), Some(LEGACY_TOKEN)).await;
        assert_eq!(s, v1_status, "v1.4 {url}: {b}");
    }
    emu.stop().await;
}

async fn burst(emu: &Running, n: usize) -> Vec<(u16, reqwest::header::HeaderMap)> {
    let since = q(emu.clock.now() - chrono::Duration::days(1));
    let url = format!("/api/v2/export/messages?created_since={since}");
    let calls = (0..n).map(|_| get(emu, &url, Some(V2_TOKEN)));
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|(s, h, _)| (s, h))
        .collect()
}

#[tokio::test]
async fn bursts_get_429_with_or_without_rate_headers() {
    let emu = start(
        0.05,
        Variants::default().with("ada.rate_headers", "on"),
        true,
    )
    .await;
    let answers = burst(&emu, 12).await;
    let throttled: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert!(
        throttled.len() >= 12 - 4,
        "{} of 12 throttled at 3/s",
        throttled.len()
    );
    assert!(
        throttled
            .iter()
            .all(|(_, h)| h.contains_key("retry-after") && h.contains_key("x-ratelimit-reset"))
    );
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s == 200)
            .all(|(_, h)| h.contains_key("x-ratelimit-remaining"))
    );
    emu.stop().await;

    let emu = start(0.05, Variants::default(), true).await;
    let answers = burst(&emu, 12).await;
    assert!(answers.iter().any(|(s, _)| *s == 429));
    assert!(
        answers
            .iter()
            .all(|(_, h)| !h.contains_key("retry-after") && !h.contains_key("x-ratelimit-limit"))
    );
    emu.stop().await;
}

/// Follows `next_page_uri` through one window; returns every record served and the ids.
async fn walk(emu: &Running, version: &str, kind: &str, days: i64) -> Vec<Value> {
    let (path, token, since) = endpoint(version, kind);
    let now = emu.clock.now();
    let to = if kind == "conversations" {
        "updated_to"
    } else {
        "created_to"
    };
    let mut url = format!(
        "{path}?{since}={}&{to}={}&page_size=100",
        q(now - chrono::Duration::days(days)),
        q(now)
    );
    let mut all = Vec::new();
    for _ in 0..1000 {
        let (status, _, body) = get(emu, &url, Some(token)).await;
        assert_eq!(status, 200, "{body}");
        all.extend(body["data"].as_array().cloned().unwrap_or_default());
        let next = body["meta"]["next_page_uri"]
            .as_str()
            .or_else(|| body["next_page_uri"].as_str())
            .map(str::to_owned);
        match next {
            Some(n) if n.starts_with("http") || n.starts_with('/') => url = n,
            Some(n) => url = format!("/api/v2/export/{n}"),
            None => break,
        }
    }
    all
}

#[tokio::test]
async fn pages_repeat_boundary_records_and_cover_the_window_once() {
    let emu = start(0.2, Variants::default(), false).await;
    let served = walk(&emu, "v2", "messages", 31).await;
    let ids: HashSet<&str> = served.iter().filter_map(|r| r["_id"].as_str()).collect();
    assert!(served.len() > ids.len(), "no boundary repeats");
    let truth: talkhouse_emulator::GroundTruth =
        reqwest::get(format!("{}/_emulator/truth", emu.base_url))
            .await
            .expect("truth")
            .json()
            .await
            .expect("json");
    assert_eq!(ids.len() as u64, truth.tables["messages"]);
    let conversations = walk(&emu, "v1.4", "conversations", 35).await;
    let ids: HashSet<&str> = conversations
        .iter()
        .filter_map(|r| r["_id"].as_str())
        .collect();
    assert_eq!(ids.len() as u64, truth.tables["conversations"]);
    // Ordered by the bound's field, never beyond the ingestion horizon.
    let horizon = emu.clock.now() - chrono::Duration::hours(2);
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = served
        .iter()
        .filter_map(|r| r["date_created"].as_str())
        .filter_map(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .collect();
    assert_eq!(times.len(), served.len());
    assert!(times.iter().all(|t| *t < horizon));
    emu.stop().await;
}

#[tokio::test]
async fn advancing_the_clock_brings_new_records_after_the_lag() {
    let emu = start(0.2, Variants::default(), false).await;
    let get_truth = || async {
        let t: talkhouse_emulator::GroundTruth =
            reqwest::get(format!("{}/_emulator/truth", emu.base_url))
                .await
                .expect("truth")
                .json()
                .await
                .expect("json");
        t
    };
    let before = get_truth().await;
    emu.clock.advance(chrono::Duration::days(2));
    let after = get_truth().await;
    assert!(after.tables["messages"] > before.tables["messages"]);
    assert!(after.tables["conversations"] > before.tables["conversations"]);
    // With no lag, an emulator with the same data and clock shows more.
    let mut opts = EmulatorOptions::new(11, 0.2);
    opts.clock = talkhouse_emulator::Clock::at(emu.clock.now());
    let lagged = talkhouse_emulator::start(Vendor::Ada, &opts, 0)
        .await
        .expect("starts");
    opts.variants = Variants::default().with("ada.lag", "0");
    let realtime = talkhouse_emulator::start(Vendor::Ada, &opts, 0)
        .await
        .expect("starts");
    let truth_of = |r: &Running| {
        let url = format!("{}/_emulator/truth", r.base_url);
        async move {
            let t: talkhouse_emulator::GroundTruth = reqwest::get(url)
                .await
                .expect("truth")
                .json()
                .await
                .expect("json");
            t
        }
    };
    let (slow, fast) = (truth_of(&lagged).await, truth_of(&realtime).await);
    assert!(
        fast.tables["messages"] > slow.tables["messages"],
        "{fast:?} vs {slow:?}"
    );
    lagged.stop().await;
    realtime.stop().await;
    emu.stop().await;
}
