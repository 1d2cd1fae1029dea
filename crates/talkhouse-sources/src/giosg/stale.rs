//! `talkhouse giosg end-stale`: open chats idle longer than a window, ended on request.
//!
//! Giosg's tutorial: list open chats with `?ordering=-created_at&is_ended=false`, check
//! `updated_at`, and end those idle longer than the window with `PATCH {"is_ended": true}`.
//! Ending is a write and happens only with `apply`. "Now" is the server's `Date` header when it
//! sends one (no clock skew between the two sides), else the local clock.
//!
//! `talkhouse serve` does the same before each scheduled sync of a source with
//! `end_stale_after` (ending, or only reporting with `end_stale_dry_run`), logging each chat
//! with the line [`stale_report`] prints for it.

use chrono::{DateTime, Duration, Utc};
use http::Method;
use serde_json::{Value, json};
use talkhouse_http::Request;
use talkhouse_model::SourceError;
use talkhouse_model::time::parse_timestamp;

use super::records::str_field;

/// How a scheduled dry run says to end the chats it listed.
const DRY_RUN_HINT: &str = "end_stale_dry_run is set";
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

impl StaleChat {
    /// What the run did with it: `ended`, `failed: …`, or `would end (<dry_run_hint>)`.
    pub fn action(&self, dry_run_hint: &str) -> String {
        match (&self.error, self.ended) {
            (Some(e), _) => format!("failed: {e}"),
            (None, true) => "ended".to_owned(),
            (None, false) => format!("would end ({dry_run_hint})"),
        }
    }

    /// Its line in [`stale_report`].
    pub fn report_line(&self, dry_run_hint: &str) -> String {
        format!(
            "{:<38} {:<10} {:<22} {:>8}  {}",
            self.chat_id,
            self.chat_type.as_deref().unwrap_or("-"),
            self.updated_at.format("%Y-%m-%d %H:%M:%S"),
            self.idle.num_hours(),
            self.action(dry_run_hint)
        )
    }
}

/// The last line of [`stale_report`]: how many chats were stale, ended, failed.
pub fn stale_summary(chats: &[StaleChat]) -> String {
    let ended = chats.iter().filter(|c| c.ended).count();
    let failed = chats.iter().filter(|c| c.error.is_some()).count();
    let mut out = format!("{} stale chat(s), {ended} ended", chats.len());
    if failed > 0 {
        out.push_str(&format!(", {failed} failed"));
    }
    out
}

/// The report of `talkhouse giosg end-stale` and of `serve`'s scheduled runs: a header, one
/// line per chat (id, type, last change, hours idle, what was done), and the summary.
/// `dry_run_hint` says how to end the chats a dry run only listed.
pub fn stale_report(chats: &[StaleChat], dry_run_hint: &str) -> String {
    let mut out = format!(
        "{:<38} {:<10} {:<22} {:>8}  {}\n",
        "chat_id", "type", "updated_at", "idle_h", "action"
    );
    for c in chats {
        out.push_str(&c.report_line(dry_run_hint));
        out.push('\n');
    }
    out.push_str(&stale_summary(chats));
    out
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
    /// `serve`'s scheduled run: [`GiosgSource::end_stale`] with `end_stale_after`, ending the
    /// chats unless `end_stale_dry_run`; logs each chat's report line and returns the summary.
    ///
    /// # Errors
    /// When the chats cannot be listed, or some could not be ended (the summary says how many).
    pub(crate) async fn scheduled_end_stale(&self, after: Duration) -> Result<String, SourceError> {
        let apply = !self.cfg.end_stale_dry_run;
        let chats = self.end_stale(after, apply).await?;
        for c in &chats {
            tracing::info!(
                source = %self.name,
                chat_id = %c.chat_id,
                action = %c.action(DRY_RUN_HINT),
                "stale Giosg chat: {}",
                c.report_line(DRY_RUN_HINT)
            );
        }
        let summary = stale_summary(&chats);
        if chats.iter().any(|c| c.error.is_some()) {
            return Err(SourceError::Other(format!(
                "ending stale Giosg chats: {summary}"
            )));
        }
        Ok(summary)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(id: &str, ended: bool, error: Option<&str>) -> StaleChat {
        let updated = parse_timestamp("2024-05-02T08:00:00.000Z").unwrap_or_default();
        StaleChat {
            chat_id: id.to_owned(),
            room_id: None,
            chat_type: Some("external".into()),
            created_at: None,
            updated_at: updated,
            idle: Duration::hours(200),
            ended,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn the_report_says_what_happened_to_each_chat() {
        let listed = [chat("a", false, None), chat("b", false, None)];
        let dry = stale_report(&listed, "use --apply");
        let lines: Vec<&str> = dry.lines().collect();
        assert_eq!(lines.len(), 4, "{dry}");
        assert!(lines[0].starts_with("chat_id"));
        assert!(lines[1].starts_with("a ") && lines[1].contains("external"));
        assert!(lines[1].contains("2024-05-02 08:00:00") && lines[1].contains(" 200  "));
        assert!(lines[1].ends_with("would end (use --apply)"));
        assert_eq!(lines[3], "2 stale chat(s), 0 ended");
        let done = [
            chat("a", true, None),
            chat("b", false, Some("HTTP 400: locked")),
        ];
        let report = stale_report(&done, "use --apply");
        assert!(report.contains("ended\n") && report.contains("failed: HTTP 400: locked"));
        assert_eq!(stale_summary(&done), "2 stale chat(s), 1 ended, 1 failed");
    }
}
