//! Giosg webhooks: `POST /webhooks/<name>?key=<webhook_secret>`.
//!
//! Giosg posts `{channel, action, resource_id, resource, app_user_auth}` for the channels a
//! subscription names (`/api/v5/orgs/{org}/owned_chats`, `…/owned_chats/{chat_id}/messages`, …):
//! `added` carries the whole resource, `changed` only the fields that changed, `removed` says a
//! resource is gone (a GDPR purge, for instance). Giosg keeps a delivery log and retries failed
//! deliveries, so one event can arrive more than once; its access token (`app_user_auth`) may
//! differ between attempts.
//!
//! Giosg signs nothing. The user registers a webhook URL holding a secret of their own
//! (`webhook_secret`, sent as `?key=…`, compared in constant time), and the event's organisation
//! (from the channel, else `app_user_auth`, else the resource) must be the configured one. Even
//! then an event is only a signal: it names a chat, and the chat is fetched again from the API,
//! with its children, exactly as a sync fetches it. Nothing of the event's body is stored.

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use talkhouse_model::{Cell, EraseMode, Erasure, Event, PushRequest, PushVerdict, TableRef, model};

use super::config::GiosgConfig;
use super::tables;

/// The actions Giosg documents.
const ACTIONS: [&str; 3] = ["added", "changed", "removed"];

/// The payload key that marks an inbox event as a webhook (triggers have none).
pub(crate) const WEBHOOK_KEY: &str = "webhook";

fn reject(status: u16, message: &str) -> PushVerdict {
    PushVerdict::Reject {
        status,
        message: message.to_owned(),
    }
}

/// A vendor id that may go into a URL path: letters, digits and dashes (UUIDs, 32-hex ids).
pub(crate) fn safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The organisation ids an event names: the channel's `/orgs/{org}/` and
/// `app_user_auth.organization_id`, or, when it names neither, the resource's
/// `room_organization_id` / `organization_id`.
fn organizations(event: &Map<String, Value>, channel: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(i) = channel.iter().position(|s| *s == "orgs")
        && let Some(org) = channel.get(i + 1)
    {
        out.push((*org).to_owned());
    }
    if let Some(org) = text(
        event
            .get("app_user_auth")
            .and_then(|a| a.get("organization_id")),
    ) {
        out.push(org);
    }
    if out.is_empty()
        && let Some(r) = event.get("resource")
    {
        out.extend(text(r.get("room_organization_id")));
        out.extend(text(r.get("organization_id")));
    }
    out
}

/// `(resource kind, chat id)` the event is about: `chat` when the channel lists chats
/// (`…/owned_chats`, `…/rooms/{room}/chats`, `…/chats/{chat_id}`), else the child list the
/// channel names under a chat (`messages`, `memberships`, `tags`, `visitors`). A wildcard or
/// missing chat id in the channel falls back to the resource's `chat_id`.
fn chat_of(
    channel: &[&str],
    resource_id: Option<&str>,
    resource: Option<&Value>,
) -> Option<(String, String)> {
    let i = channel
        .iter()
        .position(|s| *s == "owned_chats" || *s == "chats")?;
    let from_resource = || text(resource.and_then(|r| r.get("chat_id")));
    match channel.get(i + 1) {
        None => {
            let id = resource_id
                .map(str::to_owned)
                .or_else(|| text(resource.and_then(|r| r.get("id"))))?;
            Some(("chat".to_owned(), id))
        }
        Some(id) => {
            let kind = channel.get(i + 2).map_or("chat", |k| *k).to_owned();
            let id = if *id == "*" || id.is_empty() {
                from_resource()?
            } else {
                (*id).to_owned()
            };
            Some((kind, id))
        }
    }
}

/// A stable id for one event, the same on every delivery attempt: a digest of what Giosg
/// says happened (`channel`, `action`, `resource_id`, `resource`), without the per-attempt
/// access token.
fn event_id(event: &Map<String, Value>) -> String {
    let basis = json!([
        event.get("channel"),
        event.get("action"),
        event.get("resource_id"),
        event.get("resource"),
    ]);
    let digest = Sha1::digest(basis.to_string().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("webhook-{hex}")
}

/// Checks a webhook delivery: the key, the body, the organisation; then says which chat to
/// fetch again.
pub(crate) fn verify(cfg: &GiosgConfig, source: &str, request: &PushRequest) -> PushVerdict {
    if !request.method.eq_ignore_ascii_case("POST") {
        return reject(405, "Giosg webhooks arrive as POST");
    }
    let Some(secret) = cfg.webhook_secret.as_ref().filter(|s| !s.is_empty()) else {
        tracing::warn!(
            source,
            "Giosg webhook refused: no webhook_secret configured"
        );
        return reject(
            401,
            "webhooks are not enabled for this source (set webhook_secret)",
        );
    };
    match request.param("key") {
        Some(key) if secret.matches(key) => {}
        Some(_) => return reject(401, "wrong webhook key"),
        None => return reject(401, "missing webhook key (?key=…)"),
    }
    let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&request.body) else {
        return reject(400, "body is not a JSON object");
    };
    let channel_text = event.get("channel").and_then(Value::as_str).unwrap_or("");
    let channel: Vec<&str> = channel_text
        .split('?')
        .next()
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let orgs = organizations(&event, &channel);
    if orgs.is_empty() {
        return reject(400, "the event names no organization");
    }
    if orgs.iter().any(|o| *o != cfg.organization_id) {
        return reject(401, "event for another organization");
    }
    let action = event
        .get("action")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !ACTIONS.contains(&action.as_str()) {
        tracing::debug!(source, action = %action, "Giosg webhook action needs no fetch");
        return PushVerdict::Ignore;
    }
    let resource_id = text(event.get("resource_id"));
    let Some((kind, chat_id)) = chat_of(&channel, resource_id.as_deref(), event.get("resource"))
    else {
        tracing::debug!(
            source,
            channel = channel_text,
            "Giosg webhook channel names no chat"
        );
        return PushVerdict::Ignore;
    };
    if !safe_id(&chat_id) {
        return reject(400, "the event's chat id is not an id");
    }
    PushVerdict::Accept {
        event_id: event_id(&event),
        payload: json!({
            WEBHOOK_KEY: action,
            "chat_id": chat_id,
            "resource": kind,
            "resource_id": resource_id,
        }),
    }
}

/// A chat Giosg confirmed gone: its rows in every table, vendor and model, per
/// `on_vendor_delete`.
pub(crate) fn erase_chat(chat_id: &str, mode: EraseMode) -> Vec<Event> {
    let erase = |table: TableRef, column: &'static str| {
        Event::Erase(Erasure {
            table,
            column,
            value: Cell::Text(chat_id.to_owned()),
            mode,
        })
    };
    vec![
        erase(tables::CHATS, "id"),
        erase(tables::MESSAGES, "chat_id"),
        erase(tables::MEMBERSHIPS, "chat_id"),
        erase(tables::TAGS, "chat_id"),
        erase(tables::VARIABLES, "chat_id"),
        erase(model::CONVERSATIONS, "conversation_id"),
        erase(model::MESSAGES, "conversation_id"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GiosgConfig {
        toml::from_str("organization_id = \"org-1\"\ntoken = \"t\"\nwebhook_secret = \"k3y\"")
            .expect("config")
    }

    fn post(query: &str, body: &Value) -> PushRequest {
        PushRequest {
            method: "POST".into(),
            path: "/webhooks/giosg".into(),
            query: url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn accepted(v: PushVerdict) -> (String, Value) {
        match v {
            PushVerdict::Accept { event_id, payload } => (event_id, payload),
            other => panic!("not accepted: {other:?}"),
        }
    }

    #[test]
    fn every_channel_shape_names_its_chat() {
        let c = cfg();
        let chat = json!({"channel": "/api/v5/orgs/org-1/owned_chats", "action": "added",
            "resource_id": "c-1", "resource": {"id": "c-1"}});
        let (_, p) = accepted(verify(&c, "giosg", &post("key=k3y", &chat)));
        assert_eq!(
            p,
            json!({"webhook": "added", "chat_id": "c-1", "resource": "chat", "resource_id": "c-1"})
        );
        let msg = json!({"channel": "/api/v5/orgs/org-1/owned_chats/c-2/messages", "action": "Changed",
            "resource_id": "m-1", "resource": {"message": "x"}});
        let (_, p) = accepted(verify(&c, "giosg", &post("key=k3y", &msg)));
        assert_eq!(
            (
                p["chat_id"].as_str(),
                p["resource"].as_str(),
                p["webhook"].as_str()
            ),
            (Some("c-2"), Some("messages"), Some("changed"))
        );
        let wild = json!({"channel": "/api/v5/orgs/org-1/owned_chats/*/messages", "action": "removed",
            "resource_id": "m-1", "resource": {"chat_id": "c-3"}});
        assert_eq!(
            accepted(verify(&c, "giosg", &post("key=k3y", &wild))).1["chat_id"],
            "c-3"
        );
        // No org in the channel: the access token's organisation decides.
        let user = json!({"channel": "/api/v5/users/u-1/chats", "action": "changed", "resource_id": "c-4",
            "resource": {"updated_at": "2024-01-01T00:00:00.000Z"},
            "app_user_auth": {"organization_id": "org-1"}});
        assert_eq!(
            accepted(verify(&c, "giosg", &post("key=k3y", &user))).1["chat_id"],
            "c-4"
        );
        // Channels without chats are acknowledged and stored nowhere.
        let rooms =
            json!({"channel": "/api/v5/orgs/org-1/rooms", "action": "added", "resource_id": "r"});
        assert_eq!(
            verify(&c, "giosg", &post("key=k3y", &rooms)),
            PushVerdict::Ignore
        );
    }

    #[test]
    fn forgeries_are_refused() {
        let c = cfg();
        let ok = json!({"channel": "/api/v5/orgs/org-1/owned_chats", "action": "added", "resource_id": "c-1"});
        for q in ["", "key=", "key=k3", "key=k3y2", "token=k3y"] {
            assert!(
                matches!(
                    verify(&c, "giosg", &post(q, &ok)),
                    PushVerdict::Reject { status: 401, .. }
                ),
                "{q}"
            );
        }
        let other = json!({"channel": "/api/v5/orgs/org-2/owned_chats", "action": "added", "resource_id": "c-1"});
        assert!(matches!(
            verify(&c, "giosg", &post("key=k3y", &other)),
            PushVerdict::Reject { status: 401, .. }
        ));
        let mixed = json!({"channel": "/api/v5/orgs/org-1/owned_chats", "action": "added", "resource_id": "c-1",
            "app_user_auth": {"organization_id": "org-2"}});
        assert!(matches!(
            verify(&c, "giosg", &post("key=k3y", &mixed)),
            PushVerdict::Reject { status: 401, .. }
        ));
        let traversal = json!({"channel": "/api/v5/orgs/org-1/owned_chats", "action": "added", "resource_id": "../../users/me"});
        assert!(matches!(
            verify(&c, "giosg", &post("key=k3y", &traversal)),
            PushVerdict::Reject { status: 400, .. }
        ));
        let mut get = post("key=k3y", &ok);
        get.method = "GET".into();
        assert!(matches!(
            verify(&c, "giosg", &get),
            PushVerdict::Reject { status: 405, .. }
        ));
        let mut unset = cfg();
        unset.webhook_secret = None;
        assert!(matches!(
            verify(&unset, "giosg", &post("key=k3y", &ok)),
            PushVerdict::Reject { status: 401, .. }
        ));
    }

    #[test]
    fn retries_share_an_id_and_distinct_events_do_not() {
        let c = cfg();
        let first = json!({"channel": "/api/v5/orgs/org-1/owned_chats", "action": "changed", "resource_id": "c-1",
            "resource": {"updated_at": "2024-01-01T00:00:00.000Z"},
            "app_user_auth": {"access_token": "a", "organization_id": "org-1"}});
        let mut retry = first.clone();
        retry["app_user_auth"]["access_token"] = json!("b");
        let mut later = first.clone();
        later["resource"]["updated_at"] = json!("2024-01-01T00:05:00.000Z");
        let id = |v: &Value| accepted(verify(&c, "giosg", &post("key=k3y", v))).0;
        assert_eq!(id(&first), id(&retry));
        assert_ne!(id(&first), id(&later));
    }
}
