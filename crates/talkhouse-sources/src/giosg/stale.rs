//! `talkhouse giosg end-stale`: open chats idle longer than a window, ended on request.
//!
//! Giosg's tutorial: list open chats with `?ordering=-created_at&is_ended=false`, check
//! `updated_at`, and end those idle longer than the window with `PATCH {"is_ended": true}`.
//! Ending is a write and happens only with `apply`. "Now" is the server's `Date` header when it
//! sends one (no clock skew between the two sides), else the local clock.

use chrono::{DateTime, Duration, Utc};
use http::Method;
use serde_json::{Value, json};
use talkhouse_http::Request;
use talkhouse_model::SourceError;
use talkhouse_model::time::parse_timestamp;

use super::records::str_field;
use super::source::GiosgSource;

/// One open chat idle longer than the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleChat {
    /// Chat id.
    pub chat_id: String,
    /// Room id.
    pub room_id: Option<String>,
    /// `chat_type` (`external` for ghost chats).
    pub chat_type: Option<String>,
    /// Creation.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// How long it has been idle.
    pub idle: Duration,
    /// Ended by this run (only with `apply`).
    pub ended: bool,
    /// Why ending it failed.
    pub error: Option<String>,
}

/// Lists open chats idle longer than `older_than`; with `apply`, ends each of them.
///
/// # Errors
/// A configuration error, or when the chats cannot be listed (ending failures are reported per
/// chat in [`StaleChat::error`]).
pub async fn end_stale(
    name: &str,
    section: toml::Table,
    older_than: Duration,
    apply: bool,
) -> Result<Vec<StaleChat>, SourceError> {
    let source = super::build_source(name, section).map_err(|e| SourceError::Config(e.message))?;
    source.end_stale(older_than, apply).await
}

impl GiosgSource {
    /// See [`end_stale`].
    ///
    /// # Errors
    /// When the chats cannot be listed.
    pub async fn end_stale(
        &self,
        older_than: Duration,
        apply: bool,
    ) -> Result<Vec<StaleChat>, SourceError> {
        let mut out: Vec<StaleChat> = Vec::new();
        let mut now: Option<DateTime<Utc>> = None;
        let mut open: Vec<Value> = Vec::new();
        for (_, base) in self.scopes() {
            let first = url::Url::parse_with_params(
                &base,
                &[("ordering", "-created_at"), ("is_ended", "false")],
            )
            .map_or_else(|_| base.clone(), |u| u.to_string());
            let mut url = first.clone();
            loop {
                match self.page(&url).await? {
                    Ok(p) => {
                        if now.is_none() {
                            now = p.date;
                        }
                        open.extend(p.results);
                        match p.next {
                            Some(n) if n != url => url = n,
                            _ => break,
                        }
                    }
                    Err((status, body)) => return Err(self.error_for(&base, status, &body)),
                }
            }
        }
        let now = now.unwrap_or_else(Utc::now);
        let mut seen = std::collections::HashSet::new();
        for c in open {
            let Some(id) = str_field(&c, "id") else {
                continue;
            };
            // A chat listed twice while the list shifted, or one already ended.
            if !seen.insert(id.to_owned()) || c.get("is_ended") == Some(&Value::Bool(true)) {
                continue;
            }
            let Some(updated) = str_field(&c, "updated_at").and_then(parse_timestamp) else {
                continue;
            };
            let idle = now - updated;
            if idle <= older_than {
                continue;
            }
            out.push(StaleChat {
                chat_id: id.to_owned(),
                room_id: str_field(&c, "room_id").map(str::to_owned),
                chat_type: str_field(&c, "chat_type").map(str::to_owned),
                created_at: str_field(&c, "created_at").and_then(parse_timestamp),
                updated_at: updated,
                idle,
                ended: false,
                error: None,
            });
        }
        out.sort_by_key(|c| c.updated_at);
        if !apply || out.is_empty() {
            return Ok(out);
        }
        // The confirmed path is user-scoped: find out who we are.
        let me: Value = self
            .client
            .json(Request::get(
                format!("{}/api/v5/users/me", self.api),
                "end_stale",
            ))
            .await?;
        let user = str_field(&me, "id").map(str::to_owned);
        for chat in &mut out {
            let mut paths = Vec::new();
            if let Some(u) = &user {
                paths.push(format!(
                    "{}/api/v5/users/{u}/chats/{}",
                    self.api, chat.chat_id
                ));
            }
            paths.push(format!(
                "{}/api/v5/orgs/{}/owned_chats/{}",
                self.api, self.cfg.organization_id, chat.chat_id
            ));
            let mut last_error = None;
            for url in paths {
                let req = Request::post_json(&url, "end_stale", json!({ "is_ended": true }))
                    .method(Method::PATCH);
                match self.client.fetch(req).await {
                    Ok((status, _, _)) if status.is_success() => {
                        last_error = None;
                        chat.ended = true;
                        break;
                    }
                    // Not this path (or not this user's chat): try the next one.
                    Ok((status, _, body)) if matches!(status.as_u16(), 403..=405) => {
                        last_error = Some(format!(
                            "HTTP {}: {}",
                            status.as_u16(),
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(200)
                                .collect::<String>()
                        ));
                    }
                    Ok((status, _, body)) => {
                        last_error = Some(format!(
                            "HTTP {}: {}",
                            status.as_u16(),
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(200)
                                .collect::<String>()
                        ));
                        break;
                    }
                    Err(e) => {
                        last_error = Some(e.to_string());
                        break;
                    }
                }
            }
            chat.error = last_error;
            if chat.ended {
                tracing::info!(chat_id = %chat.chat_id, idle_days = chat.idle.num_days(), "ended a stale chat");
            }
        }
        Ok(out)
    }
}
