//! The `[sources.ultimate]` settings.

use chrono::NaiveDate;
use serde::Deserialize;
use talkhouse_model::Secret;

/// Default host (EU); the US host is `https://api.us.ultimate.ai`.
pub const DEFAULT_BASE_URL: &str = "https://api.ultimate.ai";

/// Intent names that "metrics by first meaningful intent" leaves out by default (the seed's).
pub const DEFAULT_EXCLUDED_INTENTS: [&str; 2] = ["Greeting", "Talk to a human/agent"];

const fn default_reread_days() -> u32 {
    2
}

const fn default_backfill_days() -> u32 {
    30
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

fn default_api_version() -> String {
    "v3".to_owned()
}

fn default_excluded_intents() -> Vec<String> {
    DEFAULT_EXCLUDED_INTENTS
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

const fn default_rps() -> f64 {
    2.0
}

/// One Ultimate organization and the bots to export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UltimateConfig {
    /// API root: `https://api.ultimate.ai` (EU, default), `https://api.us.ultimate.ai` (US),
    /// `https://{subdomain}.zendesk.com/ai-agents/api`, or an emulator.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The organization id (24 hex digits, from the dashboard URL).
    pub organization_id: String,
    /// The bots to export: one export per bot per day.
    pub bot_ids: Vec<String>,
    /// The organization API key (sent raw in `authorization`).
    pub token: Secret,
    /// Send `authorization: Bearer <key>` instead of the raw key (some docs say so; the live
    /// API answered 401 to it).
    #[serde(default)]
    pub bearer: bool,
    /// `v3` (default) or `v2` (legacy, 30-day window).
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// First day to export when there is no cursor (default: `backfill_days` ago).
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// Days back to start from when neither a cursor nor `start_date` is set.
    #[serde(default = "default_backfill_days")]
    pub backfill_days: u32,
    /// Last day to export (default: yesterday, UTC; today's file is never complete).
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    /// Trailing days read again on every run (late rows, conversations ending after midnight).
    #[serde(default = "default_reread_days")]
    pub reread_days: u32,
    /// Signed-URL lifetime to ask for, in minutes (the vendor's default is one day).
    #[serde(default)]
    pub ttl_minutes: Option<u32>,
    /// Requests per second to the export endpoint (undocumented limits: be gentle).
    #[serde(default = "default_rps")]
    pub requests_per_second: f64,
    /// Intent names left out of "first meaningful intent" (default: `Greeting`,
    /// `Talk to a human/agent`).
    #[serde(default = "default_excluded_intents")]
    pub excluded_intents: Vec<String>,
    /// Apply the seed's Bot Summary parity filter (`bot_messages_count > 0`) in the metric views.
    #[serde(default)]
    pub parity_filter: bool,
    /// Count test conversations (`test_mode`) in `talkhouse.*` and the metrics. By default they
    /// load into `ultimate.conversations` but every view and metric leaves them out.
    #[serde(default)]
    pub include_test: bool,
}

impl UltimateConfig {
    /// The export endpoint for this configuration.
    pub fn endpoint(&self) -> String {
        format!(
            "{}/data-export/{}/get-signed-urls",
            self.base_url.trim_end_matches('/'),
            self.api_version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_sample_config() {
        let section: toml::Table = toml::from_str(
            r#"
            base_url = "https://api.ultimate.ai"
            organization_id = "64aa00000000000000000001"
            bot_ids = ["64aa0000000000000000b001"]
            token = "k"
            reread_days = 3
            start_date = "2025-01-01"
            "#,
        )
        .expect("toml");
        let c: UltimateConfig = section.try_into().expect("config");
        assert_eq!(c.reread_days, 3);
        assert_eq!(
            c.endpoint(),
            "https://api.ultimate.ai/data-export/v3/get-signed-urls"
        );
        assert_eq!(
            c.excluded_intents,
            vec!["Greeting", "Talk to a human/agent"]
        );
        let bad: Result<UltimateConfig, _> =
            toml::from_str::<toml::Table>("organization_id='o'\nbot_ids=[]\ntoken='t'\ntokn='x'")
                .expect("toml")
                .try_into();
        assert!(bad.is_err());
    }
}
