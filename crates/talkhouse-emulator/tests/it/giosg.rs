//! Giosg emulator: shapes, auth, encryption like the real samples, ground truth, clock, writes.

use std::collections::BTreeSet;

use serde_json::Value;
use talkhouse_emulator::giosg::{DELETED_USER_TOKEN, TOKEN};
use talkhouse_emulator::{EmulatorOptions, Running, Variants, Vendor, start};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/giosg");

fn opts(scale: f64) -> EmulatorOptions {
    EmulatorOptions::new(7, scale)
}

fn org(r: &Running) -> String {
    r.credentials
        .fields
        .iter()
        .find(|(k, _)| *k == "organization_id")
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("")
        .to_owned()
}

async fn get(url: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Token {t}"));
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// Every item of a list, following `next`.
async fn all(url: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = Some(url.to_owned());
    let mut pages = 0;
    while let Some(u) = next {
        let (status, _, body) = get(&u, Some(TOKEN)).await;
        assert_eq!(status, 200, "{u}: {body}");
        out.extend(body["results"].as_array().cloned().unwrap_or_default());
        next = body["next"].as_str().map(str::to_owned);
        pages += 1;
        assert!(pages < 10_000);
    }
    out
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn one_page_per_endpoint_has_the_documented_shape() {
    let r = start(Vendor::Giosg, &opts(0.1), 0).await.expect("start");
    let org = org(&r);
    let base = format!("{}/api/v5/orgs/{org}", r.base_url);
    let (status, headers, page) = get(
        &format!("{base}/owned_chats?ordering=-created_at"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.get("date").is_some());
    assert_eq!(
        keys(&page),
        BTreeSet::from(["next".into(), "previous".into(), "results".into()])
    );
    assert!(page["previous"].is_null());
    let next = page["next"].as_str().expect("a second page");
    assert!(next.starts_with(&r.base_url), "absolute next URL: {next}");
    let cursor = next
        .split("cursor=")
        .nth(1)
        .and_then(|c| c.split('&').next())
        .unwrap_or("");
    assert_eq!(cursor.len(), 32);
    assert!(cursor.chars().all(|c| c.is_ascii_hexdigit()));
    let chats = page["results"].as_array().expect("results");
    let created: Vec<&str> = chats
        .iter()
        .filter_map(|c| c["created_at"].as_str())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let chat = &chats[0];
    for k in [
        "id",
        "chat_type",
        "created_at",
        "updated_at",
        "ended_at",
        "room_id",
        "room_organization_id",
        "room_name",
        "message_count",
        "user_message_count",
        "visitor_message_count",
        "has_user_messages",
        "is_ended",
        "is_encrypted",
        "encrypted_symmetric_key",
        "duration",
        "active_duration",
        "legacy_conversation_state",
    ] {
        assert!(chat.get(k).is_some(), "chat lacks {k}");
    }
    // The second page: previous set.
    let (_, _, page2) = get(next, Some(TOKEN)).await;
    assert!(page2["previous"].is_string());

    // A chat with a visitor: messages, memberships, tags, variables.
    let every = all(&format!("{base}/owned_chats")).await;
    let with_visitor = every
        .iter()
        .find(|c| {
            c["visitor_member_count"] == 1
                && c["tag_count"].as_u64() > Some(0)
                && c["is_encrypted"] == false
        })
        .expect("a chat with a visitor and tags");
    let id = with_visitor["id"].as_str().unwrap_or_default();
    let messages = all(&format!("{base}/owned_chats/{id}/messages")).await;
    assert!(!messages.is_empty());
    for k in [
        "id",
        "type",
        "chat_id",
        "room_id",
        "created_at",
        "sender_type",
        "sender_id",
        "message",
        "is_encrypted",
        "attachments",
    ] {
        assert!(messages[0].get(k).is_some(), "message lacks {k}");
    }
    let times: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["created_at"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "ascending by default"
    );
    let members = all(&format!("{base}/owned_chats/{id}/memberships")).await;
    let visitor = members
        .iter()
        .find(|m| m["member_type"] == "visitor")
        .expect("visitor member");
    let vid = visitor["member_id"].as_str().unwrap_or("");
    assert_eq!(vid.len(), 32);
    assert!(vid.chars().all(|c| c.is_ascii_hexdigit()));
    let tags = all(&format!("{base}/owned_chats/{id}/tags")).await;
    let tag = &tags[0];
    let name = tag["name"].as_str().unwrap_or("");
    assert_eq!(
        tag["hashed_name"].as_str(),
        Some(talkhouse_emulator::giosg::crypto::sha1_hex(name).as_str())
    );
    let vars = all(&format!("{base}/owned_chats/{id}/visitors/{vid}/variables")).await;
    assert!(vars.iter().any(|v| v["key"] == "plan"));
    // Some visitor somewhere told their name.
    let mut named = false;
    for c in every
        .iter()
        .filter(|c| c["visitor_member_count"] == 1)
        .take(20)
    {
        let cid = c["id"].as_str().unwrap_or_default();
        let m = all(&format!("{base}/owned_chats/{cid}/memberships")).await;
        if let Some(v) = m
            .iter()
            .find(|m| m["member_type"] == "visitor")
            .and_then(|m| m["member_id"].as_str())
        {
            named |= all(&format!("{base}/owned_chats/{cid}/visitors/{v}/variables"))
                .await
                .iter()
                .any(|x| x["key"] == "username");
        }
    }
    assert!(named, "username variables exist");
    // Page sizes vary.
    let mut sizes = BTreeSet::new();
    let mut next = Some(format!("{base}/owned_chats"));
    while let Some(u) = next {
        let (_, _, p) = get(&u, Some(TOKEN)).await;
        sizes.insert(p["results"].as_array().map_or(0, Vec::len));
        next = p["next"].as_str().map(str::to_owned);
    }
    assert!(sizes.len() > 1, "page sizes vary: {sizes:?}");
    r.stop().await;
}

#[tokio::test]
async fn rejects_bad_credentials_the_drf_way() {
    let r = start(Vendor::Giosg, &opts(0.02), 0).await.expect("start");
    let url = format!("{}/api/v5/orgs/{}/owned_chats", r.base_url, org(&r));
    let (s, h, b) = get(&url, None).await;
    assert_eq!(
        (s, b["detail"].as_str()),
        (401, Some("Authentication credentials were not provided."))
    );
    assert_eq!(
        h.get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Token")
    );
    let (s, _, b) = get(&url, Some("nope")).await;
    assert_eq!((s, b["detail"].as_str()), (401, Some("Invalid token.")));
    let (s, _, b) = get(&url, Some(DELETED_USER_TOKEN)).await;
    assert_eq!(
        (s, b["detail"].as_str()),
        (401, Some("User inactive or deleted."))
    );
    let (s, _, b) = get(
        &format!("{}/api/v5/orgs/someone-else/owned_chats", r.base_url),
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    // Bearer works too.
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    r.stop().await;

    let mut o = opts(0.02);
    o.variants = Variants::default().with("giosg.deleted_user_status", "403");
    let r = start(Vendor::Giosg, &o, 0).await.expect("start");
    let url = format!("{}/api/v5/orgs/{}/owned_chats", r.base_url, org(&r));
    let (s, _, b) = get(&url, Some(DELETED_USER_TOKEN)).await;
    assert_eq!(s, 403, "{b}");
    r.stop().await;
}

#[tokio::test]
async fn strict_mode_throttles_bursts_with_retry_after() {
    let mut o = opts(0.02);
    o.strict_rate_limits = true;
    let r = start(Vendor::Giosg, &o, 0).await.expect("start");
    let url = format!("{}/api/v5/users/me", r.base_url);
    let mut throttled = None;
    for _ in 0..40 {
        let (s, h, b) = get(&url, Some(TOKEN)).await;
        if s == 429 {
            throttled = Some((h, b));
            break;
        }
    }
    let (h, b) = throttled.expect("a 429 within a burst of 40");
    assert!(h.get("retry-after").is_some());
    assert!(
        b["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Request was throttled."))
    );
    r.stop().await;
}

#[tokio::test]
async fn encrypted_chats_are_shaped_like_the_real_samples() {
    let sample_chat: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{SAMPLES}/chat.json")).expect("sample chat"),
    )
    .expect("json");
    let sample_msgs: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{SAMPLES}/messages.json")).expect("sample messages"),
    )
    .expect("json");
    let mut o = opts(0.1);
    o.variants = Variants::default().with("giosg.header", "keyhash");
    let r = start(Vendor::Giosg, &o, 0).await.expect("start");
    let base = format!("{}/api/v5/orgs/{}", r.base_url, org(&r));
    let chats = all(&format!("{base}/owned_chats")).await;
    let enc = chats
        .iter()
        .find(|c| {
            c["is_encrypted"] == true
                && c["is_ended"] == true
                && c["user_message_count"].as_u64() > Some(0)
        })
        .expect("an encrypted chat");
    assert_eq!(
        keys(enc),
        keys(&sample_chat),
        "same chat fields as the real sample"
    );
    let wrapped = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(v["encrypted_symmetric_key"].as_str().unwrap_or(""))
            .map(|b| b.len())
    };
    assert_eq!(
        wrapped(enc).ok(),
        wrapped(&sample_chat).ok(),
        "2048-bit RSA-wrapped key like the sample"
    );
    let msgs = all(&format!(
        "{base}/owned_chats/{}/messages",
        enc["id"].as_str().unwrap_or("")
    ))
    .await;
    let join = msgs
        .iter()
        .find(|m| m["type"] == "join")
        .expect("a join message");
    let sample_join = &sample_msgs[0];
    assert_eq!(
        keys(join),
        keys(sample_join),
        "same message fields as the real sample"
    );
    assert!(join["message"].is_null());
    let ct = join["encrypted_message"].as_str().unwrap_or("");
    let sample_ct = sample_join["encrypted_message"].as_str().unwrap_or("");
    // Same layout: 0x00 + key hash header, one IV, "The Line is Open!" in two blocks, the tag.
    assert_eq!(ct.len(), sample_ct.len());
    assert_eq!(&ct[..1], &sample_ct[..1], "header starts with 0x00");
    // Old encrypted chats have no plaintext left; data messages carry ciphertext.
    let data = msgs
        .iter()
        .find(|m| m["type"] == "msg")
        .expect("a data message");
    assert!(
        data["message"].is_null(),
        "key cache expired on an old chat"
    );
    assert!(data["encrypted_message"].is_string());
    r.stop().await;
}

#[tokio::test]
async fn ground_truth_agrees_with_the_served_data() {
    let r = start(Vendor::Giosg, &opts(0.08), 0).await.expect("start");
    let base = format!("{}/api/v5/orgs/{}", r.base_url, org(&r));
    let truth: talkhouse_emulator::GroundTruth =
        reqwest::get(format!("{}/_emulator/truth", r.base_url))
            .await
            .expect("truth")
            .json()
            .await
            .expect("json");
    let chats = all(&format!("{base}/owned_chats")).await;
    let (mut messages, mut members, mut tags, mut with_both) = (0u64, 0u64, 0u64, 0u64);
    let mut vars = BTreeSet::new();
    for c in &chats {
        let id = c["id"].as_str().unwrap_or_default();
        messages += all(&format!("{base}/owned_chats/{id}/messages"))
            .await
            .len() as u64;
        let m = all(&format!("{base}/owned_chats/{id}/memberships")).await;
        members += m.len() as u64;
        tags += all(&format!("{base}/owned_chats/{id}/tags")).await.len() as u64;
        if c["has_user_messages"] == true && c["has_visitor_messages"] == true {
            with_both += 1;
        }
        for v in m
            .iter()
            .filter(|m| m["member_type"] == "visitor")
            .filter_map(|m| m["member_id"].as_str())
        {
            for var in all(&format!("{base}/owned_chats/{id}/visitors/{v}/variables")).await {
                vars.insert((v.to_owned(), var["key"].as_str().unwrap_or("").to_owned()));
            }
        }
    }
    let t = |k: &str| truth.tables.get(k).copied().unwrap_or(u64::MAX);
    assert_eq!(chats.len() as u64, t("chats"));
    assert_eq!(
        messages,
        t("chat_messages") + truth.extra["quarantined_messages"].as_u64().unwrap_or(0)
    );
    assert_eq!(members, t("chat_memberships"));
    assert_eq!(tags, t("chat_tags"));
    assert_eq!(vars.len() as u64, t("visitor_variables"));
    assert_eq!(
        with_both,
        truth.extra["only_with_messages"]["chats"]
            .as_u64()
            .unwrap_or(0)
    );
    // The filtered list agrees.
    let filtered = all(&format!(
        "{base}/owned_chats?has_user_messages=true&has_visitor_messages=true"
    ))
    .await;
    assert_eq!(filtered.len() as u64, with_both);
    r.stop().await;
}

#[tokio::test]
async fn the_clock_brings_new_chats_and_changes_open_ones() {
    let r = start(Vendor::Giosg, &opts(0.1), 0).await.expect("start");
    let base = format!("{}/api/v5/orgs/{}", r.base_url, org(&r));
    let before = all(&format!("{base}/owned_chats")).await;
    let open_before: Vec<&Value> = before.iter().filter(|c| c["is_ended"] == false).collect();
    assert!(
        open_before.iter().any(|c| c["chat_type"] == "external"),
        "ghost chats are open"
    );
    r.clock.advance(chrono::Duration::hours(12));
    let after = all(&format!("{base}/owned_chats")).await;
    assert!(after.len() > before.len(), "new chats appeared");
    let changed = before
        .iter()
        .filter(|b| {
            after
                .iter()
                .any(|a| a["id"] == b["id"] && a["updated_at"] != b["updated_at"])
        })
        .count();
    assert!(changed > 0, "open chats changed");
    // updated_at filter and ordering.
    let since = "2000-01-01T00:00:00.000Z";
    let asc = all(&format!(
        "{base}/owned_chats?ordering=updated_at&updated_at__gte={since}"
    ))
    .await;
    let u: Vec<&str> = asc
        .iter()
        .filter_map(|c| c["updated_at"].as_str())
        .collect();
    assert!(u.windows(2).all(|w| w[0] <= w[1]));
    let cut = u[u.len() / 2];
    let newer = all(&format!(
        "{base}/owned_chats?ordering=updated_at&updated_at__gte={cut}"
    ))
    .await;
    assert!(newer.iter().all(|c| c["updated_at"].as_str() >= Some(cut)));
    assert!(newer.len() < asc.len());
    r.stop().await;
}

#[tokio::test]
async fn patch_ends_a_chat_and_locks_it() {
    let r = start(Vendor::Giosg, &opts(0.1), 0).await.expect("start");
    let base = format!("{}/api/v5/orgs/{}", r.base_url, org(&r));
    let open = all(&format!("{base}/owned_chats?is_ended=false")).await;
    let chat = open
        .iter()
        .find(|c| c["chat_type"] == "external")
        .expect("an open ghost chat");
    let id = chat["id"].as_str().unwrap_or_default();
    let (_, _, me) = get(&format!("{}/api/v5/users/me", r.base_url), Some(TOKEN)).await;
    let user = me["id"].as_str().unwrap_or_default();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v5/users/{user}/chats/{id}", r.base_url);
    let patch = |body: Value| {
        client
            .patch(&url)
            .header("Authorization", format!("Token {TOKEN}"))
            .json(&body)
            .send()
    };
    let resp = patch(serde_json::json!({"is_ended": true}))
        .await
        .expect("patch");
    assert_eq!(resp.status().as_u16(), 200);
    let ended: Value = resp.json().await.expect("json");
    assert_eq!(ended["is_ended"], true);
    assert!(ended["ended_at"].is_string());
    let again = patch(serde_json::json!({"is_ended": true}))
        .await
        .expect("patch");
    assert_eq!(again.status().as_u16(), 400);
    let add = client
        .post(format!("{base}/owned_chats/{id}/memberships"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&serde_json::json!({"member_id": user}))
        .send()
        .await
        .expect("post");
    assert_eq!(add.status().as_u16(), 400);
    // PATCH on the owned_chats path is off by default.
    let owned = client
        .patch(format!("{base}/owned_chats/{id}"))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&serde_json::json!({"is_ended": true}))
        .send()
        .await
        .expect("patch");
    assert_eq!(owned.status().as_u16(), 405);
    r.stop().await;
}

/// A receiver on loopback that records every body and answers 500 to the first post, 200 after.
async fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::http::StatusCode;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = std::sync::Arc::default();
    let record = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let record = record.clone();
            async move {
                let mut s = record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                s.push(body);
                if s.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}/hook?key=k"), seen)
}

#[tokio::test]
async fn webhooks_are_shaped_retried_and_removed_chats_vanish() {
    let r = start(Vendor::Giosg, &opts(0.05), 0).await.expect("start");
    let org = org(&r);
    let (url, seen) = receiver().await;
    let client = reqwest::Client::new();
    let send = |body: Value| {
        let req = client
            .post(format!("{}/_emulator/giosg/webhook", r.base_url))
            .json(&body);
        async move {
            req.send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let bodies = || {
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    };
    let truth = |r: &Running| {
        let url = format!("{}/_emulator/truth", r.base_url);
        async move {
            reqwest::get(url)
                .await
                .expect("truth")
                .json::<talkhouse_emulator::GroundTruth>()
                .await
                .expect("json")
        }
    };
    let chat = truth(&r).await.extra["latest_ended_chat"]
        .as_str()
        .expect("an ended chat")
        .to_owned();
    // `added`: the whole chat; the failed first attempt is retried with a fresh token.
    let out = send(serde_json::json!({"url": url, "action": "added", "chat_id": chat})).await;
    assert_eq!(out["statuses"], serde_json::json!([500, 200]), "{out}");
    let b = bodies();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["resource"], b[1]["resource"]);
    assert_ne!(
        b[0]["app_user_auth"]["access_token"],
        b[1]["app_user_auth"]["access_token"]
    );
    assert_eq!(b[0]["channel"], format!("/api/v5/orgs/{org}/owned_chats"));
    assert_eq!(b[0]["action"], "added");
    assert_eq!(b[0]["resource_id"], chat.as_str());
    assert_eq!(b[0]["resource"]["id"], chat.as_str());
    assert_eq!(b[0]["app_user_auth"]["organization_id"], org.as_str());
    assert_eq!(b[0]["app_user_auth"]["token_type"], "Bearer");
    assert!(keys(&b[0]["resource"]).contains("room_organization_id"));
    // `changed`: only the changed fields; a lost acknowledgement brings the event again.
    let out =
        send(serde_json::json!({"url": url, "action": "changed", "chat_id": chat, "lost_acks": 1}))
            .await;
    assert_eq!(out["statuses"], serde_json::json!([200, 200]), "{out}");
    let b = bodies();
    assert_eq!(b.len(), 4);
    assert_eq!(b[2]["resource"], b[3]["resource"]);
    let changed = keys(&b[2]["resource"]);
    assert!(
        changed.contains("updated_at") && !changed.contains("room_name"),
        "{changed:?}"
    );
    // A message event names its chat in the channel.
    let out = send(
        serde_json::json!({"url": url, "action": "added", "chat_id": chat, "resource": "message"}),
    )
    .await;
    let b = bodies();
    assert_eq!(
        b[4]["channel"],
        format!("/api/v5/orgs/{org}/owned_chats/{chat}/messages"),
        "{out}"
    );
    assert_eq!(b[4]["resource"]["chat_id"], chat.as_str());
    // A forged organisation removes nothing.
    let forged = send(
        serde_json::json!({"url": url, "action": "removed", "chat_id": chat, "fault": "wrong_org"}),
    )
    .await;
    assert_eq!(
        bodies()[5]["app_user_auth"]["organization_id"],
        talkhouse_emulator::giosg::OTHER_ORG_ID,
        "{forged}"
    );
    let chat_url = format!("{}/api/v5/orgs/{org}/owned_chats/{chat}", r.base_url);
    assert_eq!(get(&chat_url, Some(TOKEN)).await.0, 200);
    // `removed`: the chat is gone from every endpoint and from the ground truth.
    let before = truth(&r).await.tables["chats"];
    let out = send(serde_json::json!({"url": url, "action": "removed", "chat_id": chat})).await;
    assert_eq!(out["statuses"], serde_json::json!([200]), "{out}");
    assert_eq!(bodies()[6]["action"], "removed");
    assert_eq!(get(&chat_url, Some(TOKEN)).await.0, 404);
    assert_eq!(
        get(&format!("{chat_url}/messages"), Some(TOKEN)).await.0,
        404
    );
    let listed = all(&format!("{}/api/v5/orgs/{org}/owned_chats", r.base_url)).await;
    assert!(listed.iter().all(|c| c["id"] != chat.as_str()));
    assert_eq!(listed.len() as u64, before - 1);
    assert_eq!(truth(&r).await.tables["chats"], before - 1);
    // Removing a message is not emulated.
    let bad = client
        .post(format!("{}/_emulator/giosg/webhook", r.base_url))
        .json(&serde_json::json!({"url": url, "action": "removed", "resource": "message"}))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status().as_u16(), 400);
    r.stop().await;
}
