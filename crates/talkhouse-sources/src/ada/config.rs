//! The `[sources.<name>]` settings of an Ada source.

use chrono::{DateTime, Duration, Utc};
use talkhouse_model::Secret;

use crate::ConfigError;

/// Which Data Export API to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub enum ApiVersion {
    /// `/data_api/v1.3/…` with the Data Export token.
    #[serde(rename = "v1.3")]
    V13,
    /// `/data_api/v1.4/…` with the Data Export token.
    #[serde(rename = "v1.4")]
    V14,
    /// `/api/v2/export/…` with a v2 API key (legacy Data API keys are rejected there).
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl ApiVersion {
    /// The endpoint path of `endpoint` (`conversations` or `messages`).
    pub fn path(self, endpoint: &str) -> String {
        match self {
            ApiVersion::V13 => format!("/data_api/v1.3/{endpoint}"),
            ApiVersion::V14 => format!("/data_api/v1.4/{endpoint}"),
            ApiVersion::V2 => format!("/api/v2/export/{endpoint}"),
        }
    }

    /// `v1.3`, `v1.4` or `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V13 => "v1.3",
            ApiVersion::V14 => "v1.4",
            ApiVersion::V2 => "v2",
        }
    }
}

const fn default_page_size() -> u32 {
    10_000
}
const fn default_rps() -> f64 {
    3.0
}
const fn default_window_days() -> u32 {
    60
}
fn default_lag() -> String {
    "2h".to_owned()
}
fn default_lookback() -> String {
    "2d".to_owned()
}
/// The longest look-back accepted: one Ada window.
const MAX_LOOKBACK_DAYS: i64 = 60;

/// Settings as written in the config file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaConfig {
    /// The Data Export token (v1.x) or v2 API key. Only one Data Export token exists at a time:
    /// generating a new one in the dashboard invalidates this one.
    pub token: Secret,
    /// The bot handle: the API lives at `https://{bot_handle}.ada.support`.
    #[serde(default)]
    pub bot_handle: Option<String>,
    /// Overrides the host (the emulator, a proxy). Takes precedence over `bot_handle`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// `v1.3`, `v1.4` or `v2` (default).
    #[serde(default)]
    pub api_version: ApiVersion,
    /// Where the first sync starts (RFC 3339 or `YYYY-MM-DD`); default and floor: 12 months back
    /// (older starts are clamped with a warning).
    #[serde(default)]
    pub start_date: Option<String>,
    /// Ingestion lag: the upper bound of every window is now minus this (`2h`, `48h`, `30m`,
    /// `0`). Default `2h`, as Ada documents; some tenants need `48h`.
    #[serde(default = "default_lag")]
    pub lag: String,
    /// How far behind its cursor every run reads again, for records Ada ingested later than
    /// `lag` (`2d` default, `0` to turn it off, at most `60d`). Re-read records merge on `_id`.
    #[serde(default = "default_lookback")]
    pub lookback: String,
    /// Records per page, 100–10,000 (default 10,000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Requests per second per endpoint, shared by all concurrent requests (default 3).
    #[serde(default = "default_rps")]
    pub requests_per_second: f64,
    /// Days per window, 1–60 (default 60, Ada's maximum).
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Count conversations of test users (`is_test_user`) in `talkhouse.*` and the metrics. By
    /// default they load into `ada.conversations` but every view and metric leaves them out.
    #[serde(default)]
    pub include_test: bool,
}

/// Parses `2h`, `48h`, `30m`, `90s`, `1d`, `0`.
pub fn parse_lag(s: &str) -> Option<Duration> {
    talkhouse_model::time::parse_duration(s)
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Credentials.
    pub token: Secret,
    /// Scheme and host, no trailing slash.
    pub base_url: String,
    /// API version.
    pub api_version: ApiVersion,
    /// Configured start, if any.
    pub start_date: Option<DateTime<Utc>>,
    /// Ingestion lag.
    pub lag: Duration,
    /// How far behind the cursor each run reads again.
    pub lookback: Duration,
    /// Records per page.
    pub page_size: u32,
    /// Requests per second per endpoint.
    pub requests_per_second: f64,
    /// Window length.
    pub window: Duration,
    /// Keep test users' conversations in the model and metrics.
    pub include_test: bool,
}

impl AdaConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Names the offending key.
    pub fn validate(self) -> Result<Settings, ConfigError> {
        if self.token.is_empty() {
            return Err(ConfigError::key("token", "`token` is empty")
                .hint("v1.x: Settings > Integrations > API Integrations > Data Export API; v2: Platform > APIs"));
        }
        let base_url = match (&self.base_url, &self.bot_handle) {
            (Some(u), _) => u.trim_end_matches('/').to_owned(),
            (None, Some(h))
                if !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                format!("https://{h}.ada.support")
            }
            (None, Some(h)) => {
                return Err(ConfigError::key(
                    "bot_handle",
                    format!("`bot_handle` `{h}` is not a bot handle"),
                ));
            }
            (None, None) => {
                return Err(ConfigError::key(
                    "bot_handle",
                    "set `bot_handle` (the API host is https://{bot_handle}.ada.support) or `base_url`",
                ));
            }
        };
        if url::Url::parse(&base_url).is_err() {
            return Err(ConfigError::key(
                "base_url",
                format!("`base_url` `{base_url}` is not a URL"),
            ));
        }
        if !(100..=10_000).contains(&self.page_size) {
            return Err(ConfigError::key(
                "page_size",
                format!(
                    "`page_size` must be between 100 and 10000, got {}",
                    self.page_size
                ),
            ));
        }
        if !(self.requests_per_second.is_finite() && self.requests_per_second > 0.0) {
            return Err(ConfigError::key(
                "requests_per_second",
                "`requests_per_second` must be a positive number",
            ));
        }
        if !(1..=60).contains(&self.window_days) {
            return Err(ConfigError::key(
                "window_days",
                format!(
                    "`window_days` must be between 1 and 60 (Ada's limit), got {}",
                    self.window_days
                ),
            ));
        }
        let lag = parse_lag(&self.lag)
            .filter(|d| *d >= Duration::zero())
            .ok_or_else(|| {
                ConfigError::key(
                    "lag",
                    format!(
                        "`lag` must be a duration like 2h, 48h or 30m, got `{}`",
                        self.lag
                    ),
                )
            })?;
        let lookback = parse_lag(&self.lookback)
            .filter(|d| *d >= Duration::zero() && *d <= Duration::days(MAX_LOOKBACK_DAYS))
            .ok_or_else(|| {
                ConfigError::key(
                    "lookback",
                    format!(
                        "`lookback` must be a duration from 0 to {MAX_LOOKBACK_DAYS}d like 2d or 12h, got `{}`",
                        self.lookback
                    ),
                )
            })?;
        let start_date = match &self.start_date {
            None => None,
            Some(s) => Some(talkhouse_model::time::parse_timestamp(s).ok_or_else(|| {
                ConfigError::key(
                    "start_date",
                    format!("`start_date` `{s}` is not a date (use 2025-01-31 or RFC 3339)"),
                )
            })?),
        };
        Ok(Settings {
            token: self.token,
            base_url,
            api_version: self.api_version,
            start_date,
            lag,
            lookback,
            page_size: self.page_size,
            requests_per_second: self.requests_per_second,
            window: Duration::days(i64::from(self.window_days)),
            include_test: self.include_test,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Settings, ConfigError> {
        let t: toml::Table = toml::from_str(s).map_err(ConfigError::from)?;
        let c: AdaConfig = t.try_into()?;
        c.validate()
    }

    #[test]
    fn sample_config_parses_with_defaults() {
        let s = parse("token = \"t\"\nbot_handle = \"acme\"\n").expect("valid");
        assert_eq!(s.base_url, "https://acme.ada.support");
        assert_eq!(s.api_version, ApiVersion::V2);
        assert_eq!(s.page_size, 10_000);
        assert_eq!(s.lag, Duration::hours(2));
        assert_eq!(s.lookback, Duration::days(2));
        assert!((s.requests_per_second - 3.0).abs() < f64::EPSILON);
        assert_eq!(s.window, Duration::days(60));
        let s = parse("token = \"t\"\nbase_url = \"http://127.0.0.1:9/\"\napi_version = \"v1.4\"\nlag = \"48h\"\nlookback = \"0\"\nstart_date = \"2025-01-01\"\n").expect("valid");
        assert_eq!(s.base_url, "http://127.0.0.1:9");
        assert_eq!(s.api_version, ApiVersion::V14);
        assert_eq!(s.lag, Duration::hours(48));
        assert_eq!(s.lookback, Duration::zero());
    }

    #[test]
    fn rejects_bad_values() {
        for (cfg, key) in [
            (
                "token = \"t\"\nbot_handle = \"a\"\npage_size = 50\n",
                "page_size",
            ),
            (
                "token = \"t\"\nbot_handle = \"a\"\npage_size = 20000\n",
                "page_size",
            ),
            (
                "token = \"t\"\nbot_handle = \"a\"\nwindow_days = 61\n",
                "window_days",
            ),
            ("token = \"t\"\nbot_handle = \"a\"\nlag = \"soon\"\n", "lag"),
            (
                "token = \"t\"\nbot_handle = \"a\"\nlookback = \"90d\"\n",
                "lookback",
            ),
            ("token = \"t\"\n", "bot_handle"),
            ("token = \"t\"\nbot_handle = \"a\"\ntokn = 1\n", "tokn"),
            (
                "token = \"t\"\nbot_handle = \"a\"\napi_version = \"v3\"\n",
                "variant",
            ),
        ] {
            let err = parse(cfg)
                .err()
                .unwrap_or_else(|| panic!("{cfg} should fail"));
            assert!(
                err.key.as_deref() == Some(key) || err.message.contains(key),
                "{cfg}: {err:?}"
            );
        }
    }
}
