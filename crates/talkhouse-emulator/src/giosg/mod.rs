//! The Giosg emulator: the v5 chat API as Giosg documents and serves it.
//!
//! # What it serves
//! * `GET /api/v5/users/me`;
//! * `GET /api/v5/orgs/{org}/owned_chats` and `GET /api/v5/orgs/{org}/rooms/{room}/chats`:
//!   `{next, previous, results}` with **absolute** `next`/`previous` URLs carrying opaque 32-hex
//!   cursors, page sizes that vary page to page (10–50), `ordering` (`created_at`, `updated_at`,
//!   `ended_at`, `-` for descending; default `-created_at`), filters `has_user_messages`,
//!   `has_visitor_messages`, `has_messages`, `is_ended`, `is_waiting`, `chat_type`, and the range
//!   filters `updated_at__gte`, `updated_at__lt`, `created_at__gte`, `created_at__lt`;
//! * per chat: `GET …/owned_chats/{id}`, `…/messages`, `…/memberships` (and `POST`), `…/tags`
//!   (`hashed_name` = SHA-1), `…/visitors/{visitor_id}/variables` (with `username`), all paged
//!   the same way;
//! * ending chats: `PATCH /api/v5/users/{user_id}/chats/{chat_id}` (and `GET`) with
//!   `{"is_ended": true}` fills `ended_at` and locks the chat: later writes are refused.
//!
//! # Auth
//! `Authorization: Token <t>` or `Bearer <t>` (or the historical `?token=`), with [`TOKEN`].
//! Failures answer as Django REST Framework does: 401 with `WWW-Authenticate: Token` and
//! `{"detail": "Authentication credentials were not provided."}` or `{"detail": "Invalid
//! token."}`; [`DELETED_USER_TOKEN`] stands for a token whose user was deleted (401 `User
//! inactive or deleted.`, or 403, see switches); another organisation's id answers 403.
//!
//! # Data and clock
//! Chats are planned from the seed over the 30 days before the clock's start and the two days
//! after it ([`data`]); what is served is that plan cut at the clock's "now", so new chats appear
//! and open chats grow, end and change `updated_at` as the clock advances. All chat types occur;
//! `external` chats never end by themselves (ghost chats, some idle for weeks). Chats in the room
//! "Secure Support" are encrypted: RSA-OAEP-SHA1-wrapped AES-256 key, messages as
//! header ‖ IV ‖ AES-256-CBC ‖ HMAC-SHA1 ([`crypto`]); `message` stays plaintext only while the
//! 90-minute key cache is alive (renewed by each message), so older chats serve `null`; one
//! encrypted chat in twelve has a message whose tag does not verify. Visitor variables of
//! encrypted chats carry `encrypted_value` and `encrypted_symmetric_key` (30-minute cache). One
//! chat in 25 of the unencrypted ended ones is purged two hours after it ended
//! (`sensitive_data_purged_at`; texts and visitor names null). A few messages have a type
//! outside the documented list (`cobrowse_started`).
//!
//! Data is held in memory (about 1 KB per chat): scales up to a few dozen are comfortable.
//!
//! # Rate limits
//! Giosg documents none. In strict mode the emulator allows 10 requests per second with bursts
//! of 20 per token (a choice, not a vendor fact) and answers DRF's throttle: 429,
//! `Retry-After: <s>`, `{"detail": "Request was throttled. Expected available in N seconds."}`.
//!
//! # Control endpoints (besides the shared `/_emulator/*`)
//! * `GET /_emulator/giosg/requests`: requests served per endpoint and per chat (see
//!   [`Counts`]);
//! * `POST /_emulator/giosg/trigger` `{"url": "...", "chat_id": "...", "fault":
//!   "none|bad_signature|expired|duplicate"}`: sends a chat-end App trigger to `url` (the latest
//!   ended chat when `chat_id` is absent) and answers `{"chat_id", "statuses": [...]}`;
//! * `POST /_emulator/giosg/webhook` `{"url": "...", "action": "added|changed|removed",
//!   "chat_id": "...", "resource": "chat|message", "fault": "none|wrong_org", "lost_acks": N}`:
//!   posts one webhook event ([`webhook`]) about the chat (the newest one when `chat_id` is
//!   absent) or its latest message: `added` carries the whole resource, `changed` a few fields
//!   (`updated_at`, `is_ended`, `ended_at`, … for a chat; `message` for a message), `removed` (chats
//!   only) deletes the chat first, so that every endpoint answers 404 for it from then on and
//!   the ground truth leaves it out. Failed deliveries are retried up to three times; `lost_acks`
//!   makes the emulator deliver the same event again after that many 2xx answers, as Giosg does
//!   when an acknowledgement is lost. `wrong_org` names [`OTHER_ORG_ID`] in the channel and the
//!   token (and removes nothing). Without `url` the event is composed (and a removal done) but
//!   not posted. Answers `{"chat_id", "resource_id", "event", "statuses"}`, `event` being the
//!   first attempt's body.
//!
//! Giosg signs no webhook: the receiver's URL carries a secret of the customer's, for the
//! emulated account [`WEBHOOK_SECRET`] (in the credentials, as `webhook_secret`).
//!
//! # Switches (`--variant giosg.<switch>=<value>`; default first)
//! | switch | values | what |
//! |---|---|---|
//! | `giosg.message_order` | `asc` \| `desc` | message list order |
//! | `giosg.ordering` | `all` \| `created` | ordering fields allowed on chat lists; others are ignored as DRF does |
//! | `giosg.range_filters` | `on` \| `off` | `updated_at__*`/`created_at__*` honoured or ignored |
//! | `giosg.unknown_params` | `ignore` \| `reject` | unknown query parameters ignored or 400 |
//! | `giosg.page_size` | `vary` \| N | page size |
//! | `giosg.deleted_user_status` | `401` \| `403` | answer to a deleted user's token |
//! | `giosg.ended_write_status` | `400` \| `403` \| `409` | answer to writes to an ended chat |
//! | `giosg.owned_patch` | `off` \| `on` | whether `PATCH …/owned_chats/{id}` ends chats (405 when off) |
//! | `giosg.header` | `zeros` \| `keyhash` | ciphertext header: ASCII `00000` (2023) or `0x00`+key hash (2019) |
//! | `giosg.join_ciphertext` | `present` \| `absent` | join/leave messages of encrypted chats carry `encrypted_message` (as the 2019 sample does) or lack it |
//! | `giosg.cursor_expiry` | `never` \| `once` | the first cursor used for a third page or later answers 404 `Invalid cursor` once |
//! | `giosg.variables_scope` | `chat` \| `visitor` | variables of this chat, or of the visitor across chats |

mod api;
pub mod crypto;
pub mod data;
pub mod trigger;
mod truth;
pub mod webhook;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use api::Counts;
pub use trigger::{ChatEndTrigger, TriggerFault};

use crate::server::VendorApp;
use crate::{Credentials, EmulatorOptions, GroundTruth};
use truth::truth;

/// The emulator's API token.
pub const TOKEN: &str = "giosg-emulator-token-0b5e";
/// A token whose user was deleted.
pub const DELETED_USER_TOKEN: &str = "giosg-emulator-token-deleted-user";
/// The secret of the emulated Giosg App (signs trigger JWTs).
pub const APP_SECRET: &str = "giosg-emulator-app-secret";
/// The secret the emulated account's webhook URL carries (`?key=`).
pub const WEBHOOK_SECRET: &str = "giosg-emulator-webhook-key";
/// Another organisation, for forged webhook events.
pub const OTHER_ORG_ID: &str = "9f1d7c3e-0000-4000-8000-0a1b2c3d4e5f";
/// The emulated App's id.
pub const APP_ID: &str = "3c1e5d2a-7f40-4b8e-9d61-a2c4f9e0b7d3";
/// The user id in trigger claims (the operator who ended the chat).
pub const APP_USER_ID: &str = "5a0f3e7c-1b2d-4c8e-a9f6-0d3b7e1c4a52";

/// Message types that only mark status (no content); the model leaves them out.
pub const STATUS_TYPES: [&str; 5] = [
    "join",
    "leave",
    "shoppingcart_locked",
    "action",
    "call_ended",
];

/// Builds the Giosg emulator.
pub fn app(opts: &EmulatorOptions) -> VendorApp {
    let public = match crypto::org_public_key() {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "giosg emulator key fixture is broken");
            return VendorApp {
                router: axum::Router::new(),
                credentials: Credentials { fields: Vec::new() },
                truth: Arc::new(GroundTruth::default),
            };
        }
    };
    let now = opts.clock.now();
    let org = data::Org::plan(opts.seed, opts.conversations(), now, &public);
    let switches = api::Switches::read(&opts.variants);
    let shared: api::Shared = Arc::new(api::Giosg::new(
        org,
        opts.clock.clone(),
        switches,
        opts.seed,
        opts.strict_rate_limits,
    ));
    let credentials = Credentials {
        fields: vec![
            ("organization_id", json!(shared.org.id)),
            ("token", json!(TOKEN)),
            ("private_key_pem", json!(crypto::PRIVATE_KEY_PEM)),
            ("app_secret", json!(APP_SECRET)),
            ("webhook_secret", json!(WEBHOOK_SECRET)),
        ],
    };
    let router = axum::Router::new()
        .route("/api/v5/users/me", get(api::me))
        .route(
            "/api/v5/users/{user}/chats/{chat}",
            get(api::user_chat).patch(api::patch_user_chat),
        )
        .route("/api/v5/orgs/{org}/owned_chats", get(api::owned_chats))
        .route(
            "/api/v5/orgs/{org}/owned_chats/{chat}",
            get(api::one_chat).patch(api::patch_owned_chat),
        )
        .route(
            "/api/v5/orgs/{org}/owned_chats/{chat}/messages",
            get(api::messages),
        )
        .route(
            "/api/v5/orgs/{org}/owned_chats/{chat}/memberships",
            get(api::memberships).post(api::add_membership),
        )
        .route("/api/v5/orgs/{org}/owned_chats/{chat}/tags", get(api::tags))
        .route(
            "/api/v5/orgs/{org}/owned_chats/{chat}/visitors/{visitor}/variables",
            get(api::variables),
        )
        .route(
            "/api/v5/orgs/{org}/rooms/{room}/chats",
            get(api::room_chats),
        )
        .route("/_emulator/giosg/requests", get(api::request_counts))
        .route("/_emulator/giosg/trigger", post(send_trigger))
        .route("/_emulator/giosg/webhook", post(send_webhook))
        .fallback(|| async { api::detail(StatusCode::NOT_FOUND, "Not found.") })
        .with_state(shared.clone());
    let truth_state = shared.clone();
    VendorApp {
        router,
        credentials,
        truth: Arc::new(move || truth(&truth_state)),
    }
}

#[derive(serde::Deserialize)]
struct TriggerRequest {
    url: String,
    chat_id: Option<String>,
    #[serde(default)]
    fault: Option<String>,
}

async fn send_trigger(State(g): State<api::Shared>, Json(req): Json<TriggerRequest>) -> Response {
    let now = g.clock.now();
    let chat = match &req.chat_id {
        Some(id) => g.org.index.get(id).and_then(|&i| g.org.view(i, now)),
        None => g
            .org
            .visible(now)
            .filter(|v| v.ended_at.is_some())
            .max_by_key(|v| v.ended_at),
    };
    let Some(chat) = chat else {
        return api::detail(StatusCode::NOT_FOUND, "No such chat.");
    };
    let fault_name = req.fault.as_deref().unwrap_or("none");
    let (fault, times) = match fault_name {
        "duplicate" => (TriggerFault::None, 2),
        other => match TriggerFault::parse(other) {
            Some(f) => (f, 1),
            None => {
                return api::detail(
                    StatusCode::BAD_REQUEST,
                    "fault must be none, bad_signature, expired or duplicate",
                );
            }
        },
    };
    let t = ChatEndTrigger::new(
        &g.org.id,
        &chat.plan.id,
        chat.plan.visitor_id.as_deref(),
        APP_SECRET,
    )
    .with_fault(fault);
    let mut statuses: Vec<Value> = Vec::new();
    for _ in 0..times {
        match trigger::send(&req.url, &t).await {
            Ok(s) => statuses.push(json!(s)),
            Err(e) => statuses.push(json!(e)),
        }
    }
    Json(json!({ "chat_id": chat.plan.id, "statuses": statuses })).into_response()
}

#[derive(serde::Deserialize)]
struct WebhookRequest {
    url: Option<String>,
    action: String,
    chat_id: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    fault: Option<String>,
    #[serde(default)]
    lost_acks: u32,
}

/// Only these fields of `full`, as a `changed` event carries them.
fn changed_fields(full: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .filter_map(|k| Some(((*k).to_owned(), full.get(*k)?.clone())))
            .collect(),
    )
}

async fn send_webhook(State(g): State<api::Shared>, Json(req): Json<WebhookRequest>) -> Response {
    let Some(action) = webhook::Action::parse(&req.action) else {
        return api::detail(
            StatusCode::BAD_REQUEST,
            "action must be added, changed or removed",
        );
    };
    let forged = match req.fault.as_deref().unwrap_or("none") {
        "none" | "" => false,
        "wrong_org" => true,
        _ => return api::detail(StatusCode::BAD_REQUEST, "fault must be none or wrong_org"),
    };
    let now = g.clock.now();
    let view = match &req.chat_id {
        Some(id) => g.org.index.get(id).and_then(|&i| g.org.view(i, now)),
        None => g.org.visible(now).last(),
    };
    let Some(v) = view else {
        return api::detail(StatusCode::NOT_FOUND, "No such chat.");
    };
    let org = if forged {
        OTHER_ORG_ID
    } else {
        g.org.id.as_str()
    };
    let chat_id = v.plan.id.clone();
    let (channel, resource_id, resource) = match (req.resource.as_deref().unwrap_or("chat"), action)
    {
        ("chat", webhook::Action::Added) => (
            format!("/api/v5/orgs/{org}/owned_chats"),
            chat_id.clone(),
            api::chat_json(&g, &v),
        ),
        ("chat", webhook::Action::Changed) => (
            format!("/api/v5/orgs/{org}/owned_chats"),
            chat_id.clone(),
            changed_fields(
                &api::chat_json(&g, &v),
                &[
                    "updated_at",
                    "is_ended",
                    "ended_at",
                    "message_count",
                    "is_waiting",
                ],
            ),
        ),
        ("chat", webhook::Action::Removed) => {
            if !forged {
                g.org.remove(v.idx);
            }
            (
                format!("/api/v5/orgs/{org}/owned_chats"),
                chat_id.clone(),
                json!({ "id": chat_id }),
            )
        }
        ("message", webhook::Action::Added | webhook::Action::Changed) => {
            let Some(m) = v.messages.last() else {
                return api::detail(StatusCode::NOT_FOUND, "The chat has no messages.");
            };
            let full = api::message_json(&g, &v, m);
            let resource = if action == webhook::Action::Added {
                full
            } else {
                changed_fields(&full, &["message", "sensitive_data_purged_at"])
            };
            (
                format!("/api/v5/orgs/{org}/owned_chats/{chat_id}/messages"),
                m.id.clone(),
                resource,
            )
        }
        _ => {
            return api::detail(
                StatusCode::BAD_REQUEST,
                "resource must be chat, or message with added or changed",
            );
        }
    };
    let event = webhook::WebhookEvent {
        channel,
        action,
        resource_id: resource_id.clone(),
        resource,
        organization_id: org.to_owned(),
        user_id: APP_USER_ID.to_owned(),
    };
    let delivery = webhook::Delivery {
        max_retries: 3,
        lost_acks: req.lost_acks.min(10),
    };
    let statuses = match &req.url {
        Some(url) => webhook::deliver(url, &event, delivery).await,
        None => Vec::new(),
    };
    Json(json!({
        "chat_id": chat_id,
        "resource_id": resource_id,
        "event": event.body(0),
        "statuses": statuses,
    }))
    .into_response()
}
