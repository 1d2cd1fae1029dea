//! Giosg connector against the emulator and the vendor's real samples.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;
use talkhouse_emulator::giosg::crypto as keys;
use talkhouse_emulator::giosg::{ChatEndTrigger, TriggerFault};
use talkhouse_emulator::{EmulatorOptions, GroundTruth, Running, Variants, Vendor, start};
use talkhouse_model::{Cell, PushRequest, PushVerdict, Source, StreamContext};
use talkhouse_sources::giosg::{self, ChatKeys, KeyError, load_private_key};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::{SyncOptions, sync_source};

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../talkhouse-emulator/tests/fixtures/giosg"
);

fn section(r: &Running, extra: &[(&str, toml::Value)], with_key: bool) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("base_url".into(), toml::Value::String(r.base_url.clone()));
    for (k, v) in &r.credentials.fields {
        if *k == "private_key_pem" && !with_key {
            continue;
        }
        if let Some(s) = v.as_str() {
            t.insert((*k).to_owned(), toml::Value::String(s.to_owned()));
        }
    }
    for (k, v) in extra {
        t.insert((*k).to_owned(), v.clone());
    }
    t
}

async fn truth(r: &Running) -> GroundTruth {
    reqwest_get_json(&format!("{}/_emulator/truth", r.base_url))
        .await
        .and_then(|v| serde_json::from_value(v).ok())
        .expect("truth")
}

async fn reqwest_get_json(url: &str) -> Option<Value> {
    let client = talkhouse_http::Client::new(talkhouse_http::ClientConfig::new(
        "test",
        talkhouse_http::Auth::None,
    ))
    .ok()?;
    client
        .json(talkhouse_http::Request::get(url, "test"))
        .await
        .ok()
}

async fn counts(r: &Running) -> Value {
    reqwest_get_json(&format!("{}/_emulator/giosg/requests", r.base_url))
        .await
        .unwrap_or(Value::Null)
}

fn text_digest(dest: &MemoryDestination, schema: &str) -> (String, usize) {
    let mut lines: Vec<String> = dest
        .rows(schema, "chat_messages")
        .iter()
        .filter_map(|r| {
            let id = r.cells.get("id")?.as_str()?.to_owned();
            let text = r.cells.get("message")?.as_str()?.to_owned();
            Some(format!("{id}\t{text}"))
        })
        .collect();
    lines.sort();
    (keys::sha1_hex(&lines.join("\n")), lines.len())
}

fn assert_tables(dest: &MemoryDestination, schema: &str, expected: &BTreeMap<String, u64>) {
    for (table, want) in expected {
        let (s, t) = match table.as_str() {
            "model_conversations" | "model_messages" => ("talkhouse", table.as_str()),
            _ => (schema, table.as_str()),
        };
        assert_eq!(dest.count(s, t) as u64, *want, "{s}.{t}");
    }
}

async fn sync(
    source: Arc<dyn Source>,
    dest: &Arc<MemoryDestination>,
) -> talkhouse_sync::SyncReport {
    let report = sync_source(source, dest.clone(), &SyncOptions::default()).await;
    assert!(report.ok(), "{report:?}");
    report
}

#[test]
fn decrypts_the_vendors_real_samples() {
    let pem = std::fs::read_to_string(format!("{SAMPLES}/private.pem")).expect("sample key");
    let chat: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{SAMPLES}/chat.json")).expect("chat"),
    )
    .expect("json");
    let messages: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{SAMPLES}/messages.json")).expect("messages"),
    )
    .expect("json");
    let key = load_private_key(&pem, None).expect("PKCS#1 key");
    let chat_keys = ChatKeys::unwrap(
        &key,
        chat["encrypted_symmetric_key"]
            .as_str()
            .expect("wrapped key"),
    )
    .expect("unwrap");
    let texts: Vec<String> = messages
        .as_array()
        .expect("list")
        .iter()
        .map(|m| {
            chat_keys
                .open(m["encrypted_message"].as_str().expect("ciphertext"))
                .expect("decrypt")
        })
        .collect();
    assert_eq!(texts, vec!["The Line is Open!".to_owned(); 2]);
    // A flipped bit in the tag is caught.
    let ct = messages[0]["encrypted_message"]
        .as_str()
        .unwrap_or_default();
    let mut raw = base64_decode(ct);
    if let Some(b) = raw.last_mut() {
        *b ^= 1;
    }
    assert_eq!(
        chat_keys.open(&base64_encode(&raw)),
        Err(giosg::CryptoError::BadTag)
    );
    // Another key cannot unwrap it.
    let wrong = load_private_key(keys::WRONG_PRIVATE_KEY_PEM, None).expect("wrong key");
    assert_eq!(
        ChatKeys::unwrap(
            &wrong,
            chat["encrypted_symmetric_key"].as_str().unwrap_or("")
        )
        .err(),
        Some(giosg::CryptoError::Unwrap)
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn reads_every_pem_form_with_and_without_passphrase() {
    use rsa::traits::PublicKeyParts;
    let plain = load_private_key(keys::PRIVATE_KEY_PEM, None).expect("PKCS#1");
    let n = plain.n().clone();
    for (pem, pass) in [
        (keys::PRIVATE_KEY_PKCS8_PEM, None),
        (keys::PRIVATE_KEY_PEM_DES3, Some(keys::KEY_PASSPHRASE)),
        (keys::PRIVATE_KEY_PEM_AES256, Some(keys::KEY_PASSPHRASE)),
        (
            keys::PRIVATE_KEY_PKCS8_ENCRYPTED_PEM,
            Some(keys::KEY_PASSPHRASE),
        ),
    ] {
        let k = load_private_key(pem, pass)
            .unwrap_or_else(|e| panic!("{}: {e}", pem.lines().nth(1).unwrap_or("")));
        assert_eq!(k.n(), &n);
    }
    assert_eq!(
        load_private_key(keys::PRIVATE_KEY_PEM_DES3, None).err(),
        Some(KeyError::PassphraseRequired)
    );
    assert_eq!(
        load_private_key(keys::PRIVATE_KEY_PEM_DES3, Some("wrong")).err(),
        Some(KeyError::BadPassphrase)
    );
    assert_eq!(
        load_private_key(keys::PRIVATE_KEY_PKCS8_ENCRYPTED_PEM, Some("wrong")).err(),
        Some(KeyError::BadPassphrase)
    );
}

#[tokio::test]
async fn full_sync_equals_ground_truth_with_decrypted_texts() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(11, 0.15), 0)
        .await
        .expect("start");
    // The key as a passphrase-protected legacy PEM file, as real customers have it.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("giosg.pem");
    std::fs::write(&path, keys::PRIVATE_KEY_PEM_DES3).expect("write key");
    let sec = section(
        &r,
        &[
            (
                "private_key_path",
                toml::Value::String(path.display().to_string()),
            ),
            (
                "private_key_passphrase",
                toml::Value::String(keys::KEY_PASSPHRASE.into()),
            ),
        ],
        false,
    );
    let source = giosg::build("giosg", sec).expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source, &dest).await;
    let t = truth(&r).await;
    assert_tables(&dest, "giosg", &t.tables);
    let (digest, n) = text_digest(&dest, "giosg");
    assert_eq!(
        n as u64,
        t.extra["messages_with_text"].as_u64().unwrap_or(0)
    );
    assert_eq!(
        digest,
        t.extra["message_text_digest"].as_str().unwrap_or("")
    );
    let q = dest.quarantine();
    assert_eq!(
        q.len() as u64,
        t.extra["quarantined_messages"].as_u64().unwrap_or(0)
    );
    assert!(q.iter().all(|(_, _, r)| r.error.contains("HMAC")), "{q:?}");
    assert!(
        t.extra["quarantined_messages"].as_u64() > Some(0),
        "the emulator has corrupted messages"
    );
    // Decrypted rows keep their ciphertext; encrypted variables were decrypted too.
    let msgs = dest.rows("giosg", "chat_messages");
    assert!(
        msgs.iter()
            .any(|m| m.cells.get("decrypted") == Some(&Cell::Boolean(true))
                && m.cells.contains_key("encrypted_message"))
    );
    let vars = dest.rows("giosg", "visitor_variables");
    assert!(
        vars.iter()
            .any(|v| v.cells.get("decrypted") == Some(&Cell::Boolean(true)))
    );
    assert!(
        vars.iter().all(|v| v.cells.contains_key("value")),
        "every variable has its value"
    );
    // Model roles.
    let roles: BTreeSet<String> = dest
        .rows("talkhouse", "model_messages")
        .iter()
        .filter_map(|r| r.cells.get("sender_role")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from([
            "agent".into(),
            "bot".into(),
            "customer".into(),
            "system".into()
        ])
    );
    assert!(
        dest.rows("giosg", "chat_messages")
            .iter()
            .any(|m| m.cells.get("type") == Some(&Cell::Text("cobrowse_started".into()))),
        "unknown types kept"
    );
    let state = dest.state("giosg", "chats").expect("state");
    assert!(state["warnings"].as_array().is_some_and(Vec::is_empty));
    r.stop().await;
}

#[tokio::test]
async fn second_sync_fetches_only_changed_chats() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(12, 0.15), 0)
        .await
        .expect("start");
    let source = giosg::build("giosg", section(&r, &[], true)).expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source.clone(), &dest).await;
    let first_counts = counts(&r).await;
    let stored: BTreeMap<String, Option<Cell>> = dest
        .rows("giosg", "chats")
        .iter()
        .filter_map(|c| {
            Some((
                c.cells.get("id")?.as_str()?.to_owned(),
                c.cells.get("updated_at").cloned(),
            ))
        })
        .collect();
    // Nothing moved: a re-run lists but fetches no chat.
    sync(source.clone(), &dest).await;
    let again = counts(&r).await;
    assert_eq!(
        again["by_chat"], first_counts["by_chat"],
        "an unchanged re-run fetches no chat"
    );
    r.clock.advance(chrono::Duration::hours(6));
    sync(source.clone(), &dest).await;
    let after = counts(&r).await;
    let t = truth(&r).await;
    assert_tables(&dest, "giosg", &t.tables);
    let mut fetched: BTreeSet<String> = BTreeSet::new();
    if let Some(m) = after["by_chat"].as_object() {
        for (id, n) in m {
            if first_counts["by_chat"][id].as_u64().unwrap_or(0) != n.as_u64().unwrap_or(0) {
                fetched.insert(id.clone());
            }
        }
    }
    let changed: BTreeSet<String> = dest
        .rows("giosg", "chats")
        .iter()
        .filter_map(|c| {
            let id = c.cells.get("id")?.as_str()?.to_owned();
            (stored.get(&id) != Some(&c.cells.get("updated_at").cloned())).then_some(id)
        })
        .collect();
    assert!(!changed.is_empty(), "the clock changed some chats");
    assert!(
        changed.len() < stored.len() / 2,
        "most chats did not change"
    );
    assert_eq!(
        fetched, changed,
        "exactly the new and changed chats were fetched"
    );
    r.stop().await;
}

#[tokio::test]
async fn wrong_key_quarantines_encrypted_records_and_loads_the_rest() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(13, 0.1), 0)
        .await
        .expect("start");
    let sec = section(
        &r,
        &[(
            "private_key_pem",
            toml::Value::String(keys::WRONG_PRIVATE_KEY_PEM.into()),
        )],
        false,
    );
    let source = giosg::build("giosg", sec).expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source, &dest).await;
    let t = truth(&r).await;
    let q = dest.quarantine();
    let ciphertext_only = t.extra["ciphertext_only_messages"].as_u64().unwrap_or(0);
    let message_quarantines = q
        .iter()
        .filter(|(_, _, x)| x.location.ends_with("/messages"))
        .count() as u64;
    assert_eq!(message_quarantines, ciphertext_only);
    assert!(
        q.iter().all(|(_, _, x)| x.error.contains("wrong key")),
        "{:?}",
        q.first()
    );
    assert_eq!(dest.count("giosg", "chats") as u64, t.tables["chats"]);
    let served = t.tables["chat_messages"] + t.extra["quarantined_messages"].as_u64().unwrap_or(0);
    assert_eq!(
        dest.count("giosg", "chat_messages") as u64,
        served - ciphertext_only
    );
    r.stop().await;
}

#[tokio::test]
async fn without_a_key_encrypted_text_stays_null_and_status_warns() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(14, 0.1), 0)
        .await
        .expect("start");
    let source = giosg::build("giosg", section(&r, &[], false)).expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source, &dest).await;
    let t = truth(&r).await;
    assert!(dest.quarantine().is_empty());
    let served = t.tables["chat_messages"] + t.extra["quarantined_messages"].as_u64().unwrap_or(0);
    assert_eq!(dest.count("giosg", "chat_messages") as u64, served);
    let state = dest.state("giosg", "chats").expect("state");
    let warnings = state["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("no private key"))),
        "{state}"
    );
    let null_encrypted = dest
        .rows("giosg", "chat_messages")
        .iter()
        .filter(|m| m.cells.contains_key("encrypted_message") && !m.cells.contains_key("message"))
        .count() as u64;
    assert_eq!(
        null_encrypted,
        t.extra["undecrypted_without_key"].as_u64().unwrap_or(0)
    );
    r.stop().await;
}

#[tokio::test]
async fn only_with_messages_and_rooms() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(15, 0.1), 0)
        .await
        .expect("start");
    let t = truth(&r).await;
    let source = giosg::build(
        "giosg",
        section(
            &r,
            &[("only_with_messages", toml::Value::Boolean(true))],
            true,
        ),
    )
    .expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source, &dest).await;
    assert_eq!(
        dest.count("giosg", "chats") as u64,
        t.extra["only_with_messages"]["chats"].as_u64().unwrap_or(0)
    );
    // Per room: every room listed gives every chat.
    let rooms: Vec<toml::Value> = t.extra["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .map(|s| toml::Value::String(s.into()))
        .collect();
    let source = giosg::build(
        "giosg",
        section(&r, &[("rooms", toml::Value::Array(rooms))], true),
    )
    .expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source, &dest).await;
    assert_eq!(dest.count("giosg", "chats") as u64, t.tables["chats"]);
    r.stop().await;
}

#[tokio::test]
async fn tolerates_the_unconfirmed_variants() {
    let variants = Variants::default()
        .with("giosg.range_filters", "off")
        .with("giosg.ordering", "created")
        .with("giosg.message_order", "desc")
        .with("giosg.cursor_expiry", "once")
        .with("giosg.variables_scope", "visitor")
        .with("giosg.header", "keyhash")
        .with("giosg.join_ciphertext", "absent");
    let mut o = EmulatorOptions::new(16, 0.1);
    o.variants = variants;
    let r = start(Vendor::Giosg, &o, 0).await.expect("start");
    let source = giosg::build("giosg", section(&r, &[], true)).expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source.clone(), &dest).await;
    let t = truth(&r).await;
    assert_tables(&dest, "giosg", &t.tables);
    let (digest, _) = text_digest(&dest, "giosg");
    assert_eq!(
        digest,
        t.extra["message_text_digest"].as_str().unwrap_or("")
    );
    let before = counts(&r).await;
    r.clock.advance(chrono::Duration::hours(3));
    sync(source, &dest).await;
    let t = truth(&r).await;
    assert_tables(&dest, "giosg", &t.tables);
    let after = counts(&r).await;
    let refetched = after["endpoints"]["messages"].as_u64().unwrap_or(0)
        - before["endpoints"]["messages"].as_u64().unwrap_or(0);
    assert!(
        refetched < t.tables["chats"] / 2,
        "filters ignored, yet unchanged chats are not fetched again ({refetched})"
    );

    // A server that rejects unknown parameters.
    let mut o = EmulatorOptions::new(17, 0.05);
    o.variants = Variants::default()
        .with("giosg.range_filters", "off")
        .with("giosg.unknown_params", "reject");
    let r2 = start(Vendor::Giosg, &o, 0).await.expect("start");
    let source = giosg::build("giosg", section(&r2, &[], true)).expect("config");
    let dest = Arc::new(MemoryDestination::new());
    sync(source.clone(), &dest).await;
    sync(source, &dest).await;
    assert_tables(&dest, "giosg", &truth(&r2).await.tables);
    r.stop().await;
    r2.stop().await;
}

fn push_request(trigger: &ChatEndTrigger) -> PushRequest {
    PushRequest {
        method: "GET".into(),
        path: "/triggers/giosg".into(),
        query: trigger.query(),
        ..PushRequest::default()
    }
}

#[tokio::test]
async fn triggers_are_verified_and_fetch_their_chat() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(18, 0.05), 0)
        .await
        .expect("start");
    let t = truth(&r).await;
    let org = t.extra["organization_id"].as_str().unwrap_or("").to_owned();
    let chat_id = t.extra["latest_ended_chat"]
        .as_str()
        .expect("an ended chat")
        .to_owned();
    let source = giosg::build("giosg", section(&r, &[], true)).expect("config");
    let secret = talkhouse_emulator::giosg::APP_SECRET;
    let good = ChatEndTrigger::new(&org, &chat_id, None, secret);
    let PushVerdict::Accept { event_id, payload } = source.verify_push(&push_request(&good)) else {
        panic!("a valid trigger is accepted")
    };
    assert_eq!(event_id, chat_id);
    for fault in [TriggerFault::BadSignature, TriggerFault::Expired] {
        match source.verify_push(&push_request(&good.clone().with_fault(fault))) {
            PushVerdict::Reject { status, .. } => assert_eq!(status, 401, "{fault:?}"),
            other => panic!("{fault:?} accepted: {other:?}"),
        }
    }
    let other_org = ChatEndTrigger::new("another-org", &chat_id, None, secret);
    assert!(matches!(
        source.verify_push(&push_request(&other_org)),
        PushVerdict::Reject { .. }
    ));
    // Processing fetches the chat and its children; doing it twice changes nothing.
    let dest = Arc::new(MemoryDestination::new());
    talkhouse_sync::prepare(&*source, &*dest)
        .await
        .expect("prepare");
    let opts = SyncOptions::default();
    let report = talkhouse_sync::commit_events(
        &*source,
        &*dest,
        "push",
        source.process_push(payload.clone()),
        &opts,
    )
    .await;
    assert!(report.error.is_none(), "{report:?}");
    assert_eq!(dest.count("giosg", "chats"), 1);
    assert!(dest.count("giosg", "chat_messages") > 0);
    let snap = dest.snapshot();
    talkhouse_sync::commit_events(
        &*source,
        &*dest,
        "push",
        source.process_push(payload),
        &opts,
    )
    .await;
    assert_eq!(dest.snapshot(), snap);
    // Without app_secret, triggers are refused.
    let mut sec = section(&r, &[], true);
    sec.remove("app_secret");
    let no_secret = giosg::build("giosg", sec).expect("config");
    assert!(matches!(
        no_secret.verify_push(&push_request(&good)),
        PushVerdict::Reject { status: 404, .. }
    ));
    r.stop().await;
}

#[tokio::test]
async fn end_stale_lists_without_writing_and_ends_with_apply() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(19, 0.1), 0)
        .await
        .expect("start");
    let week = chrono::Duration::days(7);
    let dry = giosg::end_stale("giosg", section(&r, &[], true), week, false)
        .await
        .expect("dry run");
    assert!(
        !dry.is_empty(),
        "ghost chats idle for more than a week exist"
    );
    assert!(dry.iter().all(|c| c.idle > week && !c.ended));
    assert!(
        dry.iter()
            .any(|c| c.chat_type.as_deref() == Some("external"))
    );
    assert!(
        counts(&r).await["endpoints"]["patch"].is_null(),
        "a dry run sends no write"
    );
    let applied = giosg::end_stale("giosg", section(&r, &[], true), week, true)
        .await
        .expect("apply");
    assert_eq!(applied.len(), dry.len());
    assert!(
        applied.iter().all(|c| c.ended && c.error.is_none()),
        "{applied:?}"
    );
    assert_eq!(
        counts(&r).await["endpoints"]["patch"].as_u64(),
        Some(dry.len() as u64)
    );
    let after = giosg::end_stale("giosg", section(&r, &[], true), week, false)
        .await
        .expect("dry run");
    assert!(after.is_empty());
    r.stop().await;
}

#[tokio::test]
async fn auth_failures_fail_the_stream() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(20, 0.02), 0)
        .await
        .expect("start");
    let sec = section(
        &r,
        &[(
            "token",
            toml::Value::String(talkhouse_emulator::giosg::DELETED_USER_TOKEN.into()),
        )],
        true,
    );
    let source = giosg::build("giosg", sec.clone()).expect("config");
    let events: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(source.run_stream("chats", StreamContext::default()))
            .await;
    let err = events.into_iter().find_map(Result::err).expect("an error");
    assert!(
        matches!(err, talkhouse_model::SourceError::Auth { status: 401, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("hint: a Giosg API token dies with the user who created it"),
        "{err}"
    );
    // `end-stale` lists with the same token and says the same.
    let err = giosg::end_stale("giosg", sec, chrono::Duration::days(7), false)
        .await
        .expect_err("a deleted user's token is refused");
    assert!(
        matches!(err, talkhouse_model::SourceError::Auth { status: 401, .. })
            && err.to_string().contains("dies with the user"),
        "{err}"
    );
    r.stop().await;
}

/// A webhook delivery as `serve` hands it to the source.
fn webhook_request(key: Option<&str>, body: &Value) -> PushRequest {
    PushRequest {
        method: "POST".into(),
        path: "/webhooks/giosg".into(),
        query: key
            .map(|k| vec![("key".to_owned(), k.to_owned())])
            .unwrap_or_default(),
        body: body.to_string().into_bytes(),
        ..PushRequest::default()
    }
}

/// The emulator's webhook event for `spec` (action, chat, resource, fault), composed and not
/// posted; a removal is done at the emulator.
async fn emulator_event(r: &Running, spec: Value) -> Value {
    let client = talkhouse_http::Client::new(talkhouse_http::ClientConfig::new(
        "test",
        talkhouse_http::Auth::None,
    ))
    .expect("client");
    let out: Value = client
        .json(talkhouse_http::Request::post_json(
            format!("{}/_emulator/giosg/webhook", r.base_url),
            "test",
            spec,
        ))
        .await
        .expect("the emulator composes the event");
    out["event"].clone()
}

fn accept(source: &dyn Source, key: Option<&str>, event: &Value) -> (String, Value) {
    match source.verify_push(&webhook_request(key, event)) {
        PushVerdict::Accept { event_id, payload } => (event_id, payload),
        other => panic!("not accepted: {other:?}\n{event}"),
    }
}

fn status_of(source: &dyn Source, key: Option<&str>, event: &Value) -> u16 {
    match source.verify_push(&webhook_request(key, event)) {
        PushVerdict::Reject { status, .. } => status,
        other => panic!("not rejected: {other:?}"),
    }
}

async fn process(source: &dyn Source, dest: &MemoryDestination, payload: Value) {
    let report = talkhouse_sync::commit_events(
        source,
        dest,
        "push",
        source.process_push(payload),
        &SyncOptions::default(),
    )
    .await;
    assert!(report.error.is_none(), "{report:?}");
}

#[tokio::test]
async fn webhooks_are_verified_and_only_signal_a_fetch() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(22, 0.05), 0)
        .await
        .expect("start");
    let t = truth(&r).await;
    let chat = t.extra["latest_ended_chat"]
        .as_str()
        .expect("an ended chat")
        .to_owned();
    let source = giosg::build("giosg", section(&r, &[], true)).expect("config");
    let key = Some(talkhouse_emulator::giosg::WEBHOOK_SECRET);
    let dest = Arc::new(MemoryDestination::new());
    talkhouse_sync::prepare(&*source, &*dest)
        .await
        .expect("prepare");

    // `added`: accepted; a retry (new access token) has the same id; the body is not trusted:
    // what lands is the chat as the API serves it.
    let mut added =
        emulator_event(&r, serde_json::json!({"action": "added", "chat_id": chat})).await;
    added["resource"]["room_name"] = Value::String("forged room".into());
    let (id, payload) = accept(&*source, key, &added);
    assert_eq!(payload["chat_id"], chat.as_str());
    let mut retry = added.clone();
    retry["app_user_auth"]["access_token"] = Value::String("another-attempt".into());
    assert_eq!(
        accept(&*source, key, &retry).0,
        id,
        "a retry is the same event"
    );
    process(&*source, &dest, payload).await;
    assert_eq!(dest.count("giosg", "chats"), 1);
    assert!(dest.count("giosg", "chat_messages") > 0);
    let stored = dest.rows("giosg", "chats");
    assert_ne!(
        stored[0].cells.get("room_name").and_then(|c| c.as_str()),
        Some("forged room"),
        "the event's body is never stored"
    );
    let snap = dest.snapshot();

    // `changed` (only the changed fields) and a message's `added`: other events, same chat;
    // fetching it again changes nothing.
    let changed = emulator_event(
        &r,
        serde_json::json!({"action": "changed", "chat_id": chat}),
    )
    .await;
    let (changed_id, changed_payload) = accept(&*source, key, &changed);
    assert_ne!(changed_id, id);
    assert_eq!(changed_payload["chat_id"], chat.as_str());
    let message = emulator_event(
        &r,
        serde_json::json!({"action": "added", "chat_id": chat, "resource": "message"}),
    )
    .await;
    let (_, message_payload) = accept(&*source, key, &message);
    assert_eq!(message_payload["chat_id"], chat.as_str());
    assert_eq!(message_payload["resource"], "messages");
    process(&*source, &dest, changed_payload).await;
    process(&*source, &dest, message_payload).await;
    assert_eq!(dest.snapshot(), snap);

    // Forgeries: no key, a wrong key, another organisation.
    assert_eq!(status_of(&*source, None, &added), 401);
    assert_eq!(status_of(&*source, Some("not-the-key"), &added), 401);
    let other_org = emulator_event(
        &r,
        serde_json::json!({"action": "removed", "chat_id": chat, "fault": "wrong_org"}),
    )
    .await;
    assert_eq!(status_of(&*source, key, &other_org), 401);

    // `removed` while the API still serves the chat: not confirmed, nothing is deleted.
    let mut unconfirmed = added.clone();
    unconfirmed["action"] = Value::String("removed".into());
    let (_, payload) = accept(&*source, key, &unconfirmed);
    process(&*source, &dest, payload).await;
    assert_eq!(dest.snapshot(), snap);

    // `removed` for real (the emulator deletes the chat): the 404 confirms it, and the chat's
    // rows are kept as deleted (redacted), in every table; a second processing changes nothing.
    let removed = emulator_event(
        &r,
        serde_json::json!({"action": "removed", "chat_id": chat}),
    )
    .await;
    let (_, payload) = accept(&*source, key, &removed);
    process(&*source, &dest, payload.clone()).await;
    assert_eq!(dest.count("giosg", "chats"), 0);
    assert_eq!(
        dest.count_all("giosg", "chats"),
        1,
        "soft-deleted, not dropped"
    );
    assert!(dest.rows("giosg", "chats")[0].deleted_at.is_some());
    assert_eq!(dest.count("giosg", "chat_messages"), 0);
    assert!(dest.count_all("giosg", "chat_messages") > 0);
    assert!(
        dest.rows("giosg", "chat_messages")
            .iter()
            .all(|m| m.cells.get("message").is_none_or(Cell::is_null)),
        "message texts are redacted"
    );
    assert_eq!(dest.count("talkhouse", "model_conversations"), 0);
    let gone = dest.snapshot();
    process(&*source, &dest, payload).await;
    assert_eq!(dest.snapshot(), gone);

    // Without webhook_secret, webhooks are refused.
    let mut sec = section(&r, &[], true);
    sec.remove("webhook_secret");
    let closed = giosg::build("giosg", sec).expect("config");
    assert_eq!(status_of(&*closed, key, &changed), 401);
    r.stop().await;
}

#[tokio::test]
async fn scheduled_upkeep_ends_only_chats_past_the_window() {
    let r = start(Vendor::Giosg, &EmulatorOptions::new(23, 0.1), 0)
        .await
        .expect("start");
    let week = chrono::Duration::days(7);
    let window = ("end_stale_after", toml::Value::String("7d".into()));
    // Off unless configured.
    let plain = giosg::build("giosg", section(&r, &[], true)).expect("config");
    assert!(plain.scheduled_upkeep().is_none());
    let stale = giosg::end_stale("giosg", section(&r, &[], true), week, false)
        .await
        .expect("list");
    let n = stale.len();
    assert!(n > 0, "ghost chats idle for more than a week exist");

    // A dry run reports them and writes nothing.
    let dry = giosg::build(
        "giosg",
        section(
            &r,
            &[
                window.clone(),
                ("end_stale_dry_run", toml::Value::Boolean(true)),
            ],
            true,
        ),
    )
    .expect("config");
    let summary = dry
        .scheduled_upkeep()
        .expect("configured")
        .await
        .expect("dry run");
    assert_eq!(summary, format!("{n} stale chat(s), 0 ended"));
    assert!(counts(&r).await["endpoints"]["patch"].is_null());

    // For real: exactly the chats past the window are ended; the open ones inside it stay open.
    let open_before = truth(&r).await.extra["open_chats"].as_u64().unwrap_or(0);
    let live = giosg::build("giosg", section(&r, &[window], true)).expect("config");
    let summary = live
        .scheduled_upkeep()
        .expect("configured")
        .await
        .expect("upkeep");
    assert_eq!(summary, format!("{n} stale chat(s), {n} ended"));
    assert_eq!(
        counts(&r).await["endpoints"]["patch"].as_u64(),
        Some(n as u64)
    );
    let open_after = truth(&r).await.extra["open_chats"].as_u64().unwrap_or(0);
    assert_eq!(open_after, open_before - n as u64);
    assert!(open_after > 0, "chats idle less than a week stay open");
    let again = giosg::end_stale("giosg", section(&r, &[], true), week, false)
        .await
        .expect("list");
    assert!(again.is_empty(), "{again:?}");

    // A window that is not a duration is a configuration error naming the key.
    let err = giosg::build(
        "giosg",
        section(
            &r,
            &[("end_stale_after", toml::Value::String("soon".into()))],
            true,
        ),
    )
    .err()
    .expect("refused");
    assert_eq!(err.key.as_deref(), Some("end_stale_after"));
    r.stop().await;
}

/// 2,000 chats at 50 ms latency: `cargo test --workspace --all-features --test it giosg_latency -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes about a minute; run for the figure in the notes"]
#[allow(clippy::print_stdout)]
async fn giosg_latency_bound() {
    let mut o = EmulatorOptions::new(21, 2.0);
    o.faults = talkhouse_emulator::FaultSpec::parse("latency=50ms").expect("faults");
    let r = start(Vendor::Giosg, &o, 0).await.expect("start");
    let source = giosg::build("giosg", section(&r, &[], true)).expect("config");
    let dest = Arc::new(MemoryDestination::new());
    let started = std::time::Instant::now();
    sync(source, &dest).await;
    let took = started.elapsed().as_secs_f64();
    let c = counts(&r).await;
    let requests: u64 = c["endpoints"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let ideal = requests as f64 * 0.05 / 8.0;
    println!(
        "chats={} requests={requests} took={took:.1}s ideal={ideal:.1}s ratio={:.2}",
        dest.count("giosg", "chats"),
        took / ideal
    );
    assert!(
        took <= ideal * 1.2,
        "took {took:.1}s, bound {:.1}s",
        ideal * 1.2
    );
    r.stop().await;
}
