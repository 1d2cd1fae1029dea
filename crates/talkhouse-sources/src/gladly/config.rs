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
webhook_header = { name = "x-hook", value = "s3cret" }"#,
        )
        .expect("toml");
        let c: GladlyConfig = t.try_into().expect("valid");
        assert_eq!(
            c.api_root().as_deref(),
            Some("https://acme.gladly.com/api/v1")
        );
        assert_eq!(c.on_vendor_delete, EraseMode::Delete);
        let bad: toml::Table = toml::from_str("tokn = \"x\"").expect("toml");
        assert!(bad.try_into::<GladlyConfig>().is_err());
    }
}
