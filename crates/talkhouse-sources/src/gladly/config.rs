//! `[sources.<name>]` settings of a Gladly source.

use serde::Deserialize;
use talkhouse_model::{EraseMode, Secret};

/// A static header Gladly sends with every webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderAuth {
    /// Header name.
    pub name: String,
    /// Header value (a shared secret).
    pub value: Secret,
}

const fn default_rps() -> f64 {
    10.0
}
const fn default_concurrency() -> usize {
    4
}
const fn default_retention_days() -> i64 {
    12
}
const fn default_checkpoint_every() -> u64 {
    2000
}
fn default_reports() -> Vec<String> {
    ["contacts", "work_sessions", "conversation_report"]
        .map(str::to_owned)
        .to_vec()
}
const fn default_backfill_days() -> u32 {
    90
}
const fn default_reread_days() -> u32 {
    7
}
const fn default_conversation_reread_days() -> u32 {
    30
}
const fn default_window_days() -> u32 {
    7
}
const fn default_reports_per_minute() -> u32 {
    10
}
const fn default_reports_concurrency() -> usize {
    2
}
const fn default_true() -> bool {
    true
}
fn default_row_caps() -> Vec<u64> {
    vec![100_000, 1_000_000]
}

/// The settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GladlyConfig {
    /// API root (`https://acme.gladly.com`); `/api/v1` is appended. Required for syncing, not
    /// for `load gladly --dir`.
    pub base_url: Option<String>,
    /// E-mail of the Gladly user with the API User permission.
    pub email: Option<String>,
    /// That user's API token.
    pub token: Option<Secret>,
    /// Requests per second, for the whole organisation (Gladly allows 10).
    #[serde(default = "default_rps")]
    pub requests_per_second: f64,
    /// Enrichment requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// What to do with rows of customers and conversations Gladly says are gone.
    #[serde(default)]
    pub on_vendor_delete: EraseMode,
    /// Warn when the newest processed export job is older than this many days (jobs are kept 14).
    #[serde(default = "default_retention_days")]
    pub retention_warning_days: i64,
    /// Lines of an export file between two checkpoints.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// Basic user name Gladly's webhooks authenticate with.
    pub webhook_username: Option<String>,
    /// Basic password Gladly's webhooks authenticate with.
    pub webhook_password: Option<Secret>,
    /// Or a static header Gladly's webhooks carry.
    pub webhook_header: Option<HeaderAuth>,
    /// Poll Gladly's Events API (stream `events`, default off): the conversations, contacts and
    /// customers that changed since the last poll are fetched again, as webhooks would have
    /// them fetched, for organisations that cannot take webhooks. Gladly keeps events 24 hours:
    /// sync at least daily, or the stream's state warns of the hours it missed.
    #[serde(default)]
    pub events: bool,
    /// Report streams to sync: `contacts`, `work_sessions`, `conversation_report` (default all
    /// three; `[]` syncs none).
    #[serde(default = "default_reports")]
    pub reports: Vec<String>,
    /// Days a report stream reads back on its first sync (default 90).
    #[serde(default = "default_backfill_days")]
    pub reports_backfill_days: u32,
    /// Days of `contacts` and `work_sessions` read again on every sync, the last day read
    /// included (default 7): after-contact time keeps growing after a contact ends.
    #[serde(default = "default_reread_days")]
    pub reports_reread_days: u32,
    /// Days of `conversation_report` read again on every sync (default 30): that report is
    /// computed when it is requested, so a conversation's row changes long after it started.
    #[serde(default = "default_conversation_reread_days")]
    pub conversation_report_reread_days: u32,
    /// Days one report request covers (default 7); smaller windows stay further below the
    /// row caps, larger ones spend fewer of the 10 report requests a minute.
    #[serde(default = "default_window_days")]
    pub reports_window_days: u32,
    /// Report requests per minute for the whole organisation (Gladly allows 10), on a budget
    /// of their own: the other requests keep `requests_per_second`.
    #[serde(default = "default_reports_per_minute")]
    pub reports_per_minute: u32,
    /// Report requests in flight at once (Gladly allows 2).
    #[serde(default = "default_reports_concurrency")]
    pub reports_concurrency: usize,
    /// Row counts at which reports are known to stop without saying so (default 100000 and
    /// 1000000): a report of exactly that many rows is a warning in `talkhouse status`.
    #[serde(default = "default_row_caps")]
    pub reports_row_caps: Vec<u64>,
    /// Take the metadata of the conversations new export jobs name from the conversation
    /// report read in the same sync (default true), instead of one `GET /conversations/{id}`
    /// each: their `topic_ids` and `custom_attributes` stay NULL and their times have the
    /// report's precision. `false` reads every conversation over REST again (needs `reports`
    /// to hold `conversation_report` to matter).
    #[serde(default = "default_true")]
    pub conversations_from_report: bool,
}

impl GladlyConfig {
    /// The `/api/v1` root.
    pub fn api_root(&self) -> Option<String> {
        let b = self.base_url.as_deref()?.trim_end_matches('/');
        Some(if b.ends_with("/api/v1") {
            b.to_owned()
        } else {
            format!("{b}/api/v1")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_sample_and_rejects_unknown_keys() {
        let t: toml::Table = toml::from_str(
            r#"base_url = "https://acme.gladly.com"
email = "api@acme.com"
token = "t"
on_vendor_delete = "delete"
webhook_header = { name = "x-hook", value = "s3cret" }
events = true"#,
        )
        .expect("toml");
        let c: GladlyConfig = t.try_into().expect("valid");
        assert_eq!(
            c.api_root().as_deref(),
            Some("https://acme.gladly.com/api/v1")
        );
        assert_eq!(c.on_vendor_delete, EraseMode::Delete);
        assert!(c.events);
        let plain: GladlyConfig = toml::Table::new().try_into().expect("all optional");
        assert!(!plain.events, "events are off by default");
        let bad: toml::Table = toml::from_str("tokn = \"x\"").expect("toml");
        assert!(bad.try_into::<GladlyConfig>().is_err());
    }
}
