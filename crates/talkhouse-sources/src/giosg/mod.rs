//! The Giosg connector: live chats with their messages, members, tags and visitor variables.
//!
//! # What it syncs
//! Stream `chats`: every chat the organisation owns (or the configured `rooms`' chats) into
//! `giosg.chats`; per new or changed chat its messages (`giosg.chat_messages`), memberships
//! (`giosg.chat_memberships`), tags (`giosg.chat_tags`) and the visitor's variables
//! (`giosg.visitor_variables`, the visitor being the membership with `member_type = visitor`);
//! plus `talkhouse.model_conversations` (one per chat, `customer_id` = visitor id, channel
//! `chat`) and `talkhouse.model_messages` (content messages: join/leave and other status types
//! are left out; `sender_role` from `sender_type`: visitor → customer, user → agent, or bot when
//! the member `is_bot`, rule and anything else → system; `session_id` = chat id). Encrypted chats
//! are decrypted with the configured private key: plaintext in `message`, the ciphertext kept in
//! `encrypted_message`, `decrypted = true`. Chat-end App triggers (`GET /triggers/giosg`) fetch
//! one chat the same way ([`Source::verify_push`](talkhouse_model::Source::verify_push)).
//!
//! Webhooks (`POST /webhooks/giosg?key=<webhook_secret>`): Giosg posts `{channel, action,
//! resource_id, resource, app_user_auth}` with `action` `added` (whole resource), `changed`
//! (only the changed fields) or `removed`, and retries failed deliveries. An event is only a
//! signal: the chat its channel names (`…/owned_chats` with the chat as resource, or
//! `…/owned_chats/{chat_id}/messages` and the other child lists) is fetched again with its
//! children, as a sync fetches it, and stored; nothing of the body is kept. A `removed` event
//! whose chat Giosg no longer serves (404) marks the chat's rows in every table deleted, per
//! `on_vendor_delete` (`redact` by default); a removed child of a chat that still exists
//! leaves its table when the chat's lists are stored again, as in a sync. Retries of one event
//! share an id (a digest of channel, action, resource id and resource), so `serve` stores and
//! processes each event once.
//!
//! [`end_stale`] lists and optionally ends idle open chats (`talkhouse giosg end-stale`); with
//! `end_stale_after`, `talkhouse serve` does it before each scheduled sync of the source
//! ([`Source::scheduled_upkeep`](talkhouse_model::Source::scheduled_upkeep)), logging each chat
//! with its line of the same report ([`stale_report`]); `end_stale_dry_run = true` only logs.
//!
//! # Auth
//! `Authorization: Token <token>` (or `Bearer` with `auth_scheme = "bearer"`). Tokens die with
//! the user that created them: a 401/403 with a token that used to work usually means that user
//! was deleted or deactivated, and the error says so (for the sync, triggers and `end-stale`).
//! Triggers are verified with `app_secret` (HS256 `data` JWT, `exp` enforced). Giosg signs no
//! webhook: the registered webhook URL carries `?key=<webhook_secret>`, compared in constant
//! time (missing or wrong: 401), and the event's organisation (the channel's `/orgs/{org}/`, else
//! `app_user_auth.organization_id`) must be `organization_id` (else 401).
//!
//! # Pagination
//! `{next, previous, results}` with absolute `next` URLs carrying opaque cursors; the connector
//! follows `next` until it is null and never assumes a page size. A cursor that expires mid-list
//! (404) restarts that list; items dedupe on id. Child lists are read in full per chat.
//!
//! # Rate limits
//! Giosg documents none. Requests in flight are capped by `concurrency` (default 8), optionally
//! `requests_per_second`; 429 and 5xx are retried with `Retry-After` by the shared HTTP policy.
//!
//! # Incremental cursor
//! Per scope (`org` or a room): the highest `updated_at` seen (`watermark`) and the chats whose
//! `updated_at` lies within `overlap` (default 10 minutes) below it, with that `updated_at`
//! (`recent`). Each run lists `?ordering=updated_at&updated_at__gte=<watermark − overlap>`;
//! listed chats whose `updated_at` equals the stored one are not fetched again. The range filter
//! and the ordering are unconfirmed vendor features: when the server ignores the filter, chats
//! older than the window are skipped client-side; when it refuses it (400), the run lists
//! without it; when the order is not ascending, the cursor is only committed at the end of the
//! run. The state also carries `warnings` (for `talkhouse status`), e.g. encrypted data stored
//! without text because no key is configured.
//!
//! # Quirks
//! * Encrypted chats: `message` is null once Giosg's 90-minute key cache expired; with a key the
//!   connector unwraps the chat key (RSA-OAEP-SHA1), verifies HMAC-SHA1 over header ‖ IV ‖
//!   ciphertext and decrypts AES-256-CBC. A wrong key or a bad tag quarantines that record with
//!   the reason; the rest of the chat loads. Keys: PKCS#1 or PKCS#8 PEM, plain or encrypted
//!   (legacy `Proc-Type: 4,ENCRYPTED` included), via `private_key_path` or `private_key_pem`.
//! * Message order is unconfirmed (ascending or descending): messages are sorted client-side.
//! * Unknown message types, chat types and sender types load as they are.
//! * Visitor ids are 32 hex characters, other ids dashed UUIDs; variables are keyed on
//!   `visitor_id` + `key` and keep the `chat_id` they came with.
//! * `external` chats never end by themselves (ghost chats): see [`end_stale`].

mod config;
mod crypto;
pub mod inputs;
mod records;
mod source;
mod stale;
mod tables;
mod webhook;

use std::sync::Arc;

use talkhouse_http::{Auth, Client, ClientConfig};
use talkhouse_model::Source;

pub use config::{AuthScheme, GiosgConfig};
pub use crypto::{ChatKeys, CryptoError, KeyError, load_private_key};
pub use records::sender_role;
pub use source::GiosgSource;
pub use stale::{StaleChat, end_stale, stale_report, stale_summary};
pub use tables::{CHATS, MEMBERSHIPS, MESSAGES, TAGS, VARIABLES};

use crate::ConfigError;

/// Builds a configured Giosg source.
///
/// # Errors
/// Unknown or missing keys, a bad `overlap`, or a private key that cannot be read or opened.
pub fn build(name: &str, section: toml::Table) -> Result<Arc<dyn Source>, ConfigError> {
    Ok(Arc::new(build_source(name, section)?))
}

/// Builds the concrete source (the CLI's `giosg end-stale` needs it).
///
/// # Errors
/// As [`build`].
pub fn build_source(name: &str, section: toml::Table) -> Result<GiosgSource, ConfigError> {
    let cfg: GiosgConfig = section.try_into()?;
    let overlap = config::parse_duration(&cfg.overlap).ok_or_else(|| {
        ConfigError::key("overlap", format!("`{}` is not a duration", cfg.overlap))
            .hint("use 90s, 10m, 2h or 1d")
    })?;
    let end_stale_after = match cfg.end_stale_after.as_deref() {
        None => None,
        Some(s) => Some(
            config::parse_duration(s)
                .filter(|d| *d > chrono::Duration::zero())
                .ok_or_else(|| {
                    ConfigError::key("end_stale_after", format!("`{s}` is not a duration"))
                        .hint("use an idle window such as 7d, 12h or 30d")
                })?,
        ),
    };
    if cfg.organization_id.trim().is_empty() {
        return Err(ConfigError::key(
            "organization_id",
            "organization_id is empty",
        ));
    }
    let pem = match (&cfg.private_key_path, &cfg.private_key_pem) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::key(
                "private_key_pem",
                "set private_key_path or private_key_pem, not both",
            ));
        }
        (Some(path), None) => Some(std::fs::read_to_string(path).map_err(|e| {
            ConfigError::key("private_key_path", format!("cannot read {path}: {e}"))
        })?),
        (None, Some(p)) => Some(p.expose().to_owned()),
        (None, None) => None,
    };
    let key = match pem {
        None => None,
        Some(pem) => {
            let which = if cfg.private_key_path.is_some() {
                "private_key_path"
            } else {
                "private_key_pem"
            };
            let pass = cfg
                .private_key_passphrase
                .as_ref()
                .map(|p| p.expose().to_owned());
            let k = load_private_key(&pem, pass.as_deref()).map_err(|e| {
                let err = ConfigError::key(which, e.to_string());
                if e == KeyError::PassphraseRequired || e == KeyError::BadPassphrase {
                    err.hint("set private_key_passphrase (e.g. \"${GIOSG_KEY_PASSPHRASE}\")")
                } else {
                    err
                }
            })?;
            Some(Arc::new(k))
        }
    };
    let auth = match cfg.auth_scheme {
        AuthScheme::Token => Auth::Token(cfg.token.clone()),
        AuthScheme::Bearer => Auth::Bearer(cfg.token.clone()),
    };
    let mut client_cfg = ClientConfig::new("giosg", auth)
        .concurrency(cfg.concurrency.max(1))
        .header("Accept", "application/json");
    if let Some(rps) = cfg.requests_per_second {
        client_cfg = client_cfg.rate(rps);
    }
    let client = Client::new(client_cfg).map_err(|e| ConfigError {
        key: None,
        message: e.to_string(),
        hint: None,
    })?;
    let api = cfg.base_url.trim_end_matches('/').to_owned();
    Ok(GiosgSource {
        name: name.to_owned(),
        cfg,
        client,
        api,
        key,
        overlap,
        end_stale_after,
    })
}
