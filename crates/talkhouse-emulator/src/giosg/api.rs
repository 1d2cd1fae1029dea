//! The HTTP side: auth, the v5 endpoints, cursor pages, DRF-style errors.

// Helpers return the finished error answer as `Err(Response)`; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::Mutex;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::crypto::{Header, sha1_hex};
use super::data::{ChatView, MsgPlan, Org, Who};
use super::{DELETED_USER_TOKEN, TOKEN};
use crate::Clock;
use crate::rate::Bucket;

/// The variant switches, read once.
#[derive(Debug, Clone)]
pub struct Switches {
    pub message_desc: bool,
    pub ordering_all: bool,
    pub range_filters: bool,
    pub reject_unknown: bool,
    pub page_size: Option<usize>,
    pub deleted_user_status: StatusCode,
    pub ended_write_status: StatusCode,
    pub owned_patch: bool,
    pub header: Header,
    pub join_ciphertext: bool,
    pub cursor_expiry_once: bool,
    pub variables_per_visitor: bool,
}

impl Switches {
    pub fn read(v: &crate::Variants) -> Self {
        let status = |key: &str, default: u16| {
            v.get(key)
                .and_then(|s| s.parse::<u16>().ok())
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::from_u16(default).unwrap_or(StatusCode::BAD_REQUEST))
        };
        Self {
            message_desc: v.get_or("giosg.message_order", "asc") == "desc",
            ordering_all: v.get_or("giosg.ordering", "all") != "created",
            range_filters: v.get_or("giosg.range_filters", "on") != "off",
            reject_unknown: v.get_or("giosg.unknown_params", "ignore") == "reject",
            page_size: v
                .get("giosg.page_size")
                .and_then(|s| s.parse().ok())
                .filter(|n: &usize| *n > 0),
            deleted_user_status: status("giosg.deleted_user_status", 401),
            ended_write_status: status("giosg.ended_write_status", 400),
            owned_patch: v.on("giosg.owned_patch"),
            header: if v.get_or("giosg.header", "zeros") == "keyhash" {
                Header::KeyHash
            } else {
                Header::Zeros
            },
            join_ciphertext: v.get_or("giosg.join_ciphertext", "present") != "absent",
            cursor_expiry_once: v.get_or("giosg.cursor_expiry", "never") == "once",
            variables_per_visitor: v.get_or("giosg.variables_scope", "chat") == "visitor",
        }
    }
}

/// One issued cursor.
#[derive(Debug, Clone)]
struct Cursor {
    /// The list it belongs to (path and filters).
    list: String,
    /// Sort key of the last item already served.
    after: Option<(String, String)>,
    /// Page number (1 = first).
    page: u32,
    /// The cursor of the page before, for `previous`.
    prev: Option<String>,
}

/// Requests served, for tests that count them.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Counts {
    /// Requests per endpoint kind (`list`, `chat`, `messages`, `memberships`, `tags`,
    /// `variables`, `patch`, `me`).
    pub endpoints: BTreeMap<String, u64>,
    /// Child-endpoint requests per chat id.
    pub by_chat: BTreeMap<String, u64>,
}

/// Shared state of the handlers.
pub struct Giosg {
    pub org: Org,
    pub clock: Clock,
    pub switches: Switches,
    pub seed: u64,
    cursors: Mutex<HashMap<String, Cursor>>,
    cursor_seq: Mutex<u64>,
    expired_once: Mutex<bool>,
    pub counts: Mutex<Counts>,
    bucket: Option<Bucket>,
}

pub type Shared = Arc<Giosg>;

impl Giosg {
    pub fn new(org: Org, clock: Clock, switches: Switches, seed: u64, strict: bool) -> Self {
        Self {
            org,
            clock,
            switches,
            seed,
            cursors: Mutex::new(HashMap::new()),
            cursor_seq: Mutex::new(0),
            expired_once: Mutex::new(false),
            counts: Mutex::new(Counts::default()),
            // Undocumented: strict mode allows 10 requests per second with bursts of 20.
            bucket: strict.then(|| Bucket::new(10.0, 20.0)),
        }
    }

    fn count(&self, endpoint: &str, chat: Option<&str>) {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *c.endpoints.entry(endpoint.to_owned()).or_default() += 1;
        if let Some(id) = chat {
            *c.by_chat.entry(id.to_owned()).or_default() += 1;
        }
    }
}

/// Giosg's timestamp form: milliseconds and `Z`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// A DRF-style error: `{"detail": "…"}`.
pub fn detail(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "detail": msg }))).into_response()
}

/// Checks the token (and the strict rate limit). `Ok(())` lets the request through.
fn authenticate(
    g: &Giosg,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), Response> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let token = match from_header {
        Some(h) => match h.split_once(' ') {
            Some((scheme, t))
                if scheme.eq_ignore_ascii_case("token")
                    || scheme.eq_ignore_ascii_case("bearer") =>
            {
                Some(t.trim().to_owned())
            }
            _ => {
                let mut r = detail(
                    StatusCode::UNAUTHORIZED,
                    "Invalid token header. No credentials provided.",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
                return Err(r);
            }
        },
        // Old docs allowed `?token=<key>`.
        None => query.get("token").cloned(),
    };
    let unauthorized = |msg: &str| {
        let mut r = detail(StatusCode::UNAUTHORIZED, msg);
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        r
    };
    match token.as_deref() {
        None | Some("") => Err(unauthorized(
            "Authentication credentials were not provided.",
        )),
        Some(TOKEN) => {
            if let Some(b) = &g.bucket
                && let Err(wait) = b.take()
            {
                let secs = wait.as_secs().max(1);
                let mut r = detail(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Request was throttled. Expected available in {secs} seconds."),
                );
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return Err(r);
            }
            Ok(())
        }
        Some(DELETED_USER_TOKEN) => {
            if g.switches.deleted_user_status == StatusCode::FORBIDDEN {
                Err(detail(
                    StatusCode::FORBIDDEN,
                    "You do not have permission to perform this action.",
                ))
            } else {
                Err(unauthorized("User inactive or deleted."))
            }
        }
        Some(_) => Err(unauthorized("Invalid token.")),
    }
}

fn check_org(g: &Giosg, org: &str) -> Result<(), Response> {
    if org == g.org.id {
        Ok(())
    } else {
        Err(detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        ))
    }
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

/// Query parameters each list endpoint knows.
const LIST_PARAMS: &[&str] = &[
    "cursor",
    "ordering",
    "format",
    "token",
    "has_user_messages",
    "has_visitor_messages",
    "has_messages",
    "is_ended",
    "is_waiting",
    "chat_type",
    "updated_at__gte",
    "updated_at__lt",
    "created_at__gte",
    "created_at__lt",
];
const CHILD_PARAMS: &[&str] = &["cursor", "format", "token", "ordering"];

fn unknown_param(g: &Giosg, q: &HashMap<String, String>, known: &[&str]) -> Result<(), Response> {
    if !g.switches.reject_unknown {
        return Ok(());
    }
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(detail(
            StatusCode::BAD_REQUEST,
            &format!("Unknown query parameter: {k}"),
        )),
        None => Ok(()),
    }
}

/// One page of a sorted list, keyset-paginated with opaque cursors.
fn page<T>(
    g: &Giosg,
    headers: &HeaderMap,
    path: &str,
    q: &HashMap<String, String>,
    items: Vec<((String, String), T)>,
    desc: bool,
    render: impl Fn(&T) -> Value,
) -> Response {
    let mut others: Vec<(&String, &String)> =
        q.iter().filter(|(k, _)| k.as_str() != "cursor").collect();
    others.sort();
    let list = format!("{path}?{others:?}");
    let (after, number, prev) = match q.get("cursor") {
        None => (None, 1, None),
        Some(tok) => {
            let found = g
                .cursors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(tok)
                .cloned();
            match found {
                Some(c) if c.list == list => {
                    if g.switches.cursor_expiry_once && c.page >= 3 {
                        let mut once = g
                            .expired_once
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if !*once {
                            *once = true;
                            return detail(StatusCode::NOT_FOUND, "Invalid cursor");
                        }
                    }
                    (c.after, c.page, c.prev)
                }
                _ => return detail(StatusCode::NOT_FOUND, "Invalid cursor"),
            }
        }
    };
    let start = match &after {
        None => 0,
        Some(k) => items.partition_point(|(key, _)| if desc { key >= k } else { key <= k }),
    };
    let size = g.switches.page_size.unwrap_or_else(|| {
        // Giosg promises the order, not the page size: vary it page by page.
        let h = sha1_hex(&format!("{}{list}{number}", g.seed));
        10 + usize::from_str_radix(&h[..4], 16).unwrap_or(0) % 41
    });
    let end = (start + size).min(items.len());
    let slice = items.get(start..end).unwrap_or(&[]);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let url_for = |tok: &str| {
        let mut u = format!("http://{host}{path}?cursor={tok}");
        for (k, v) in &others {
            u.push('&');
            u.push_str(&encode(k));
            u.push('=');
            u.push_str(&encode(v));
        }
        u
    };
    let this_tok = q.get("cursor").cloned();
    let next = if end < items.len() {
        let last = slice.last().map(|(k, _)| k.clone());
        let tok = new_token(g);
        let mut cursors = g
            .cursors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cursors.len() > 200_000 {
            cursors.clear();
        }
        cursors.insert(
            tok.clone(),
            Cursor {
                list: list.clone(),
                after: last,
                page: number + 1,
                prev: this_tok.clone(),
            },
        );
        Some(url_for(&tok))
    } else {
        None
    };
    let previous = match (number, prev) {
        (1, _) => None,
        (_, Some(p)) => Some(url_for(&p)),
        (_, None) => {
            let mut u = format!("http://{host}{path}");
            if !others.is_empty() {
                u.push('?');
                u.push_str(
                    &others
                        .iter()
                        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                        .collect::<Vec<_>>()
                        .join("&"),
                );
            }
            Some(u)
        }
    };
    let results: Vec<Value> = slice.iter().map(|(_, v)| render(v)).collect();
    let mut resp =
        Json(json!({ "next": next, "previous": previous, "results": results })).into_response();
    // The emulated clock's "now", so clients that trust the server's Date agree with the data.
    let date = g
        .clock
        .now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn new_token(g: &Giosg) -> String {
    let mut seq = g
        .cursor_seq
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *seq += 1;
    sha1_hex(&format!("cursor-{}-{}", g.seed, *seq))[..32].to_owned()
}

fn flag(q: &HashMap<String, String>, key: &str) -> Option<bool> {
    q.get(key)
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn time_param(q: &HashMap<String, String>, key: &str) -> Result<Option<DateTime<Utc>>, Response> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| Json(json!({ key: ["Enter a valid date/time."] })))
            .map_err(|j| (StatusCode::BAD_REQUEST, j).into_response()),
    }
}

/// Renders a chat as the v5 API does.
pub fn chat_json(g: &Giosg, v: &ChatView<'_>) -> Value {
    let p = v.plan;
    let room = g.org.rooms.get(p.room);
    let user_msgs = v.count(Some(Who::User(0)));
    let visitor_msgs = v.count(Some(Who::Visitor));
    let users = v
        .members
        .iter()
        .filter(|m| matches!(m.who, Who::User(_)))
        .count();
    let visitors = v.members.iter().filter(|m| m.who == Who::Visitor).count();
    let open = v.ended_at.is_none();
    let is_waiting = open && visitor_msgs > 0 && users == 0;
    let first_visitor = v
        .messages
        .iter()
        .find(|m| m.who == Who::Visitor && m.kind == "msg")
        .map(|m| m.at);
    let first_user = v
        .messages
        .iter()
        .find(|m| matches!(m.who, Who::User(_)) && m.kind == "msg")
        .map(|m| m.at);
    let wait = match (first_visitor, first_user) {
        (Some(a), Some(b)) if b > a => Some((b - a).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    let duration = v
        .ended_at
        .map(|e| (e - p.created_at).num_milliseconds() as f64 / 1000.0);
    let active = v.ended_at.map(|_| {
        // "Active" counts up to 60 s after each message.
        let mut total = 0.0;
        for w in v.messages.windows(2) {
            total += ((w[1].at - w[0].at).num_milliseconds() as f64 / 1000.0).min(60.0);
        }
        total + if v.messages.is_empty() { 0.0 } else { 60.0 }
    });
    json!({
        "id": p.id,
        "chat_type": p.chat_type,
        "created_at": ts(p.created_at),
        "updated_at": ts(v.updated_at),
        "ended_at": ts_opt(v.ended_at),
        "waiting_started_at": if visitor_msgs > 0 { ts_opt(first_visitor) } else { Value::Null },
        "room_id": room.map(|r| r.id.clone()),
        "room_organization_id": g.org.id,
        "room_name": room.map(|r| r.name.clone()),
        "tag_count": v.tags.len(),
        "message_count": v.count(None),
        "user_message_count": user_msgs,
        "visitor_message_count": visitor_msgs,
        "has_messages": v.count(None) > 0,
        "has_user_messages": user_msgs > 0,
        "has_visitor_messages": visitor_msgs > 0,
        "present_participant_count": if open { users + visitors } else { 0 },
        "present_user_participant_count": if open { users } else { 0 },
        "present_visitor_participant_count": if open { visitors } else { 0 },
        "member_count": users + visitors,
        "user_member_count": users,
        "visitor_member_count": visitors,
        "is_private": false,
        "is_real_conversation": user_msgs > 0 && visitor_msgs > 0,
        "is_autosuggested": v.messages.iter().any(|m| m.kind == "autosuggest"),
        "is_waiting": is_waiting,
        "is_pending": is_waiting,
        "is_ended": !open,
        "is_encrypted": p.key.is_some(),
        "encrypted_symmetric_key": p.key.as_ref().map(|k| k.wrapped.clone()),
        "autosuggest_url": Value::Null,
        "autosuggest_url_title": Value::Null,
        "first_visitor_message_url": if visitor_msgs > 0 { json!("https://shop.example.com/checkout") } else { Value::Null },
        "first_visitor_message_url_title": if visitor_msgs > 0 { json!("Checkout") } else { Value::Null },
        "token": sha1_hex(&format!("token{}", p.id)),
        "legacy_conversation_state": if open { if is_waiting { "waiting" } else { "open" } } else { "closed" },
        "legacy_room_id": room.map(|r| sha1_hex(&r.id)),
        "visitor_wait_time": wait,
        "duration": duration,
        "active_duration": active,
    })
}

/// The join/leave texts encrypted in the 2019 samples.
fn status_text(m: &MsgPlan) -> &'static str {
    if m.kind == "leave" {
        "The Line is Closed!"
    } else {
        "The Line is Open!"
    }
}

/// Renders a message as the v5 API does (the operator view).
pub fn message_json(g: &Giosg, v: &ChatView<'_>, m: &MsgPlan) -> Value {
    let p = v.plan;
    let purged = v.purged_at.is_some();
    let (sender_type, sender_id, name) = match m.who {
        Who::Visitor => (
            "visitor",
            p.visitor_id.clone().unwrap_or_default(),
            if purged { None } else { p.visitor_name.clone() },
        ),
        Who::User(u) => {
            let user = g.org.users.get(u);
            (
                "user",
                user.map(|x| x.id.clone()).unwrap_or_default(),
                user.map(|x| x.name.clone()),
            )
        }
        Who::Rule => (
            "rule",
            sha1_hex(&format!("rule{}", p.room))[..32].to_owned(),
            None,
        ),
    };
    let status = matches!(m.kind, "join" | "leave");
    let plaintext = if status || purged {
        None
    } else {
        m.text.clone()
    };
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(m.id));
    o.insert("type".into(), json!(m.kind));
    o.insert("chat_id".into(), json!(p.id));
    o.insert(
        "room_id".into(),
        json!(g.org.rooms.get(p.room).map(|r| r.id.clone())),
    );
    o.insert("created_at".into(), json!(ts(m.at)));
    o.insert("sender_type".into(), json!(sender_type));
    o.insert("sender_id".into(), json!(sender_id));
    o.insert("sender_public_name".into(), json!(name));
    o.insert("sender_name".into(), json!(name));
    o.insert("sender_avatar".into(), Value::Null);
    match &p.key {
        Some(key) => {
            let message = if v.key_cached {
                plaintext.clone()
            } else {
                None
            };
            o.insert("message".into(), json!(message));
            let sealed = match (&m.text, status) {
                (Some(t), false) => Some(key.seal(t, &m.id, g.switches.header, m.corrupt)),
                (_, true) if g.switches.join_ciphertext => {
                    Some(key.seal(status_text(m), &m.id, g.switches.header, false))
                }
                _ => None,
            };
            if let Some(s) = sealed {
                o.insert("encrypted_message".into(), json!(s));
            }
            o.insert("is_encrypted".into(), json!(true));
        }
        None => {
            o.insert("message".into(), json!(plaintext));
            o.insert("is_encrypted".into(), json!(false));
        }
    }
    o.insert("sensitive_data_purged_at".into(), ts_opt(v.purged_at));
    for k in ["selected_reply_suggestion_id", "selected_reply_suggestion"] {
        o.insert(k.into(), Value::Null);
    }
    o.insert("attachments".into(), json!([]));
    for k in [
        "attachment_template",
        "response_to_message_id",
        "response_to_attachment_id",
        "response_to_attachment",
        "response_to_action_id",
        "response_to_action",
        "response_text",
        "response_value",
    ] {
        o.insert(k.into(), Value::Null);
    }
    Value::Object(o)
}

fn membership_json(g: &Giosg, v: &ChatView<'_>, who: Who, at: DateTime<Utc>) -> Value {
    let p = v.plan;
    let open = v.ended_at.is_none();
    let messages = v
        .messages
        .iter()
        .filter(|m| m.who == who && m.kind == "msg")
        .count();
    let room = g.org.rooms.get(p.room).map(|r| r.id.clone());
    let mut o = json!({
        "member_id": "",
        "member_type": "visitor",
        "member_name": Value::Null,
        "member_public_name": Value::Null,
        "member_avatar": Value::Null,
        "room_id": room,
        "chat_id": p.id,
        "created_at": ts(at),
        "updated_at": ts(v.ended_at.unwrap_or(at).max(at)),
        "is_participating": true,
        "is_present": open,
        "composing_status": "idle",
        "message_count": messages,
        "room_organization_id": g.org.id,
        "member_organization_id": Value::Null,
        "legacy_member_id": Value::Null,
        "last_seen_at": ts_opt(v.messages.iter().filter(|m| m.who == who).map(|m| m.at).max()),
        "unread_message_count": 0,
    });
    match who {
        Who::User(u) => {
            let user = g.org.users.get(u);
            o["member_id"] = json!(user.map(|x| x.id.clone()));
            o["member_type"] = json!("user");
            o["member_name"] = json!(user.map(|x| x.name.clone()));
            o["member_public_name"] =
                json!(user.map(|x| x.name.split(' ').next().unwrap_or("").to_owned()));
            o["member_organization_id"] = json!(g.org.id);
            o["is_bot"] = json!(user.is_some_and(|x| x.is_bot));
            o["legacy_member_id"] = json!(u64::try_from(u).unwrap_or(0) + 1000);
        }
        _ => {
            let name = if v.purged_at.is_some() {
                None
            } else {
                p.visitor_name.clone()
            };
            o["member_id"] = json!(p.visitor_id);
            o["member_name"] = json!(name);
            o["member_public_name"] = json!(name);
        }
    }
    o
}

fn variable_json(g: &Giosg, v: &ChatView<'_>, var: &super::data::VarPlan) -> Value {
    let p = v.plan;
    let id = format!("{}{}{}", p.id, var.key, ts(var.at));
    let mut o = json!({
        "visitor_id": p.visitor_id,
        "room_id": g.org.rooms.get(p.room).map(|r| r.id.clone()),
        "key": var.key,
        "value": var.value,
        "session_id": sha1_hex(&format!("session{}", p.id))[..32].to_owned(),
        "created_at": ts(var.at),
        "updated_at": ts(var.at),
        "is_signed": false,
        "is_encrypted": false,
        "chat_id": p.id,
        "organization_id": g.org.id,
    });
    if let Some(k) = &p.visitor_key {
        o["is_encrypted"] = json!(true);
        o["encrypted_value"] = json!(k.seal(&var.value, &id, g.switches.header, false));
        o["encrypted_symmetric_key"] = json!(k.wrapped);
        if !v.visitor_key_cached {
            o["value"] = Value::Null;
        }
    }
    o
}

fn key_at(t: DateTime<Utc>, id: &str) -> (String, String) {
    (ts(t), id.to_owned())
}

// ---- handlers ----

type Q = Query<HashMap<String, String>>;

pub async fn me(State(g): State<Shared>, headers: HeaderMap, Query(q): Q) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q) {
        return r;
    }
    g.count("me", None);
    let u = &g.org.api_user;
    let (first, last) = u.name.split_once(' ').unwrap_or((&u.name, ""));
    Json(json!({
        "id": u.id, "first_name": first, "last_name": last, "full_name": u.name,
        "organization_id": g.org.id, "is_manager": true, "is_bot": false,
    }))
    .into_response()
}

/// Lists chats: org-wide or one room's.
fn list_chats(
    g: &Giosg,
    headers: &HeaderMap,
    path: &str,
    q: &HashMap<String, String>,
    room: Option<&str>,
) -> Response {
    if let Err(r) = unknown_param(g, q, LIST_PARAMS) {
        return r;
    }
    g.count("list", None);
    let now = g.clock.now();
    let (mut ugte, mut ult, mut cgte, mut clt) = (None, None, None, None);
    if g.switches.range_filters {
        match (
            time_param(q, "updated_at__gte"),
            time_param(q, "updated_at__lt"),
            time_param(q, "created_at__gte"),
            time_param(q, "created_at__lt"),
        ) {
            (Ok(a), Ok(b), Ok(c), Ok(d)) => (ugte, ult, cgte, clt) = (a, b, c, d),
            (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), _) | (.., Err(r)) => return r,
        }
    }
    let room_idx = match room {
        None => None,
        Some(r) => match g.org.rooms.iter().position(|x| x.id == r) {
            Some(i) => Some(i),
            None => return not_found(),
        },
    };
    // Ordering: DRF ignores fields it does not allow and falls back to the default.
    let allowed: &[&str] = if g.switches.ordering_all {
        &["created_at", "updated_at", "ended_at"]
    } else {
        &["created_at"]
    };
    let (field, desc) = q
        .get("ordering")
        .and_then(|o| o.split(',').next())
        .map(|o| (o.trim_start_matches('-'), o.starts_with('-')))
        .filter(|(f, _)| allowed.contains(f))
        .unwrap_or(("created_at", true));
    let mut items: Vec<((String, String), usize)> = Vec::new();
    for v in g.org.visible(now) {
        let idx = v.idx;
        if room_idx.is_some_and(|r| r != v.plan.room) {
            continue;
        }
        let has_user = v.count(Some(Who::User(0))) > 0;
        let has_visitor = v.count(Some(Who::Visitor)) > 0;
        let open = v.ended_at.is_none();
        let keep = flag(q, "has_user_messages").is_none_or(|b| b == has_user)
            && flag(q, "has_visitor_messages").is_none_or(|b| b == has_visitor)
            && flag(q, "has_messages").is_none_or(|b| b == (v.count(None) > 0))
            && flag(q, "is_ended").is_none_or(|b| b != open)
            && flag(q, "is_waiting").is_none_or(|b| {
                b == (open
                    && has_visitor
                    && !v.members.iter().any(|m| matches!(m.who, Who::User(_))))
            })
            && q.get("chat_type").is_none_or(|t| t == v.plan.chat_type)
            && ugte.is_none_or(|t| v.updated_at >= t)
            && ult.is_none_or(|t| v.updated_at < t)
            && cgte.is_none_or(|t| v.plan.created_at >= t)
            && clt.is_none_or(|t| v.plan.created_at < t);
        if !keep {
            continue;
        }
        let sort = match field {
            "updated_at" => ts(v.updated_at),
            // Open chats sort as if ended at the far end.
            "ended_at" => v.ended_at.map_or_else(|| "9999".to_owned(), ts),
            _ => ts(v.plan.created_at),
        };
        items.push(((sort, v.plan.id.clone()), idx));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if desc {
        items.reverse();
    }
    page(g, headers, path, q, items, desc, |&i| {
        g.org.view(i, now).map_or(Value::Null, |v| chat_json(g, &v))
    })
}

pub async fn owned_chats(
    State(g): State<Shared>,
    Path(org): Path<String>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q).and_then(|()| check_org(&g, &org)) {
        return r;
    }
    list_chats(
        &g,
        &headers,
        &format!("/api/v5/orgs/{org}/owned_chats"),
        &q,
        None,
    )
}

pub async fn room_chats(
    State(g): State<Shared>,
    Path((org, room)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q).and_then(|()| check_org(&g, &org)) {
        return r;
    }
    list_chats(
        &g,
        &headers,
        &format!("/api/v5/orgs/{org}/rooms/{room}/chats"),
        &q,
        Some(&room),
    )
}

fn find<'a>(g: &'a Giosg, chat: &str) -> Result<(usize, ChatView<'a>), Response> {
    let now = g.clock.now();
    g.org
        .index
        .get(chat)
        .and_then(|&i| g.org.view(i, now).map(|v| (i, v)))
        .ok_or_else(not_found)
}

pub async fn one_chat(
    State(g): State<Shared>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q).and_then(|()| check_org(&g, &org)) {
        return r;
    }
    g.count("chat", Some(&chat));
    match find(&g, &chat) {
        Ok((_, v)) => Json(chat_json(&g, &v)).into_response(),
        Err(r) => r,
    }
}

/// What a child endpoint lists.
#[derive(Clone, Copy)]
enum Child {
    Messages,
    Memberships,
    Tags,
}

fn child(
    g: &Giosg,
    headers: &HeaderMap,
    org: &str,
    chat: &str,
    q: &HashMap<String, String>,
    what: Child,
) -> Response {
    if let Err(r) = authenticate(g, headers, q)
        .and_then(|()| check_org(g, org))
        .and_then(|()| unknown_param(g, q, CHILD_PARAMS))
    {
        return r;
    }
    let (name, suffix) = match what {
        Child::Messages => ("messages", "messages"),
        Child::Memberships => ("memberships", "memberships"),
        Child::Tags => ("tags", "tags"),
    };
    g.count(name, Some(chat));
    let (_, v) = match find(g, chat) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut desc = false;
    let mut items: Vec<((String, String), Value)> = match what {
        Child::Messages => {
            desc = g.switches.message_desc;
            v.messages
                .iter()
                .map(|m| (key_at(m.at, &m.id), message_json(g, &v, m)))
                .collect()
        }
        Child::Memberships => v
            .members
            .iter()
            .map(|m| {
                let j = membership_json(g, &v, m.who, m.at);
                let id = j["member_id"].as_str().unwrap_or("").to_owned();
                (key_at(m.at, &id), j)
            })
            .collect(),
        Child::Tags => v
            .tags
            .iter()
            .map(|(name, at)| {
                (
                    key_at(*at, name),
                    json!({ "name": name, "hashed_name": sha1_hex(name), "created_at": ts(*at) }),
                )
            })
            .collect(),
    };
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if desc {
        items.reverse();
    }
    page(
        g,
        headers,
        &format!("/api/v5/orgs/{org}/owned_chats/{chat}/{suffix}"),
        q,
        items,
        desc,
        Value::clone,
    )
}

pub async fn messages(
    State(g): State<Shared>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    child(&g, &headers, &org, &chat, &q, Child::Messages)
}

pub async fn memberships(
    State(g): State<Shared>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    child(&g, &headers, &org, &chat, &q, Child::Memberships)
}

pub async fn tags(
    State(g): State<Shared>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    child(&g, &headers, &org, &chat, &q, Child::Tags)
}

/// `POST …/memberships`: accepted (not stored) while the chat is open; refused once it ended.
pub async fn add_membership(
    State(g): State<Shared>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q).and_then(|()| check_org(&g, &org)) {
        return r;
    }
    g.count("add_membership", Some(&chat));
    let (_, v) = match find(&g, &chat) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if v.ended_at.is_some() {
        return detail(
            g.switches.ended_write_status,
            "Chat has ended and cannot be modified.",
        );
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let Some(member) = body.get("member_id").and_then(Value::as_str) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "member_id": ["This field is required."] })),
        )
            .into_response();
    };
    (StatusCode::CREATED, Json(json!({ "member_id": member, "chat_id": chat, "is_participating": body.get("is_participating").cloned().unwrap_or(json!(true)), "composing_status": "idle" }))).into_response()
}

pub async fn variables(
    State(g): State<Shared>,
    Path((org, chat, visitor)): Path<(String, String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q)
        .and_then(|()| check_org(&g, &org))
        .and_then(|()| unknown_param(&g, &q, CHILD_PARAMS))
    {
        return r;
    }
    g.count("variables", Some(&chat));
    let (idx, v) = match find(&g, &chat) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if v.plan.visitor_id.as_deref() != Some(visitor.as_str()) {
        return not_found();
    }
    let now = g.clock.now();
    let mut items: Vec<((String, String), Value)> = Vec::new();
    if g.switches.variables_per_visitor {
        // Every chat of this visitor so far, latest value per key.
        let mut latest: BTreeMap<&str, Value> = BTreeMap::new();
        for other in g
            .org
            .visible(now)
            .filter(|o| o.plan.visitor_id.as_deref() == Some(visitor.as_str()))
        {
            for var in &other.variables {
                latest.insert(var.key, variable_json(&g, &other, var));
            }
        }
        for (k, j) in latest {
            let at = j["created_at"].as_str().unwrap_or("").to_owned();
            items.push(((at, k.to_owned()), j));
        }
    } else {
        let _ = idx;
        for var in &v.variables {
            items.push((key_at(var.at, var.key), variable_json(&g, &v, var)));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    page(
        &g,
        &headers,
        &format!("/api/v5/orgs/{org}/owned_chats/{chat}/visitors/{visitor}/variables"),
        &q,
        items,
        false,
        Value::clone,
    )
}

fn end_chat(g: &Giosg, chat: &str, body: &Value) -> Response {
    g.count("patch", Some(chat));
    let (idx, v) = match find(g, chat) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(obj) = body.as_object() else {
        return detail(
            StatusCode::BAD_REQUEST,
            "JSON parse error - Expecting value: line 1 column 1 (char 0)",
        );
    };
    if let Some(bad) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "is_ended" | "is_waiting"))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ bad: ["This field is read-only."] })),
        )
            .into_response();
    }
    if v.ended_at.is_some() {
        return detail(
            g.switches.ended_write_status,
            "Chat has ended and cannot be modified.",
        );
    }
    match obj.get("is_ended") {
        Some(Value::Bool(true)) => {
            let now = g.clock.now();
            g.org
                .ended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(idx, now);
        }
        Some(Value::Bool(false)) | None => {}
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "is_ended": ["Must be a valid boolean."] })),
            )
                .into_response();
        }
    }
    match find(g, chat) {
        Ok((_, v)) => Json(chat_json(g, &v)).into_response(),
        Err(r) => r,
    }
}

pub async fn user_chat(
    State(g): State<Shared>,
    Path((user, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q) {
        return r;
    }
    if user != g.org.api_user.id && user != "me" {
        return detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        );
    }
    g.count("chat", Some(&chat));
    match find(&g, &chat) {
        Ok((_, v)) => Json(chat_json(&g, &v)).into_response(),
        Err(r) => r,
    }
}

pub async fn patch_user_chat(
    State(g): State<Shared>,
    Path((user, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q) {
        return r;
    }
    if user != g.org.api_user.id && user != "me" {
        return detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        );
    }
    end_chat(&g, &chat, &body.map(|Json(b)| b).unwrap_or(Value::Null))
}

pub async fn patch_owned_chat(
    State(g): State<Shared>,
    Path((org, chat)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Q,
    body: Option<Json<Value>>,
) -> Response {
    if let Err(r) = authenticate(&g, &headers, &q).and_then(|()| check_org(&g, &org)) {
        return r;
    }
    if !g.switches.owned_patch {
        return detail(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method \"PATCH\" not allowed.",
        );
    }
    end_chat(&g, &chat, &body.map(|Json(b)| b).unwrap_or(Value::Null))
}

pub async fn request_counts(State(g): State<Shared>) -> Json<Counts> {
    Json(
        g.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    )
}
