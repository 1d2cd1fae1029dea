//! `[sources.<name>]` settings of a Giosg source.

use serde::Deserialize;
use talkhouse_model::{EraseMode, Secret};

fn default_base_url() -> String {
    "https://service.giosg.com".to_owned()
}
fn default_overlap() -> String {
    "10m".to_owned()
}
const fn default_concurrency() -> usize {
    8
}

/// How the API token is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// `Authorization: Token <token>` (Console → Settings → Company → Access tokens).
    #[default]
    Token,
    /// `Authorization: Bearer <token>` (OAuth2 / bot access tokens).
    Bearer,
}

/// The settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiosgConfig {
    /// Service root; `/api/v5/…` is appended.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The organisation whose owned chats are synced.
    pub organization_id: String,
    /// API token of a dedicated user (tokens die with the user that created them).
    pub token: Secret,
    /// `token` (default) or `bearer`.
    #[serde(default)]
    pub auth_scheme: AuthScheme,
    /// Sync only these rooms' chats instead of every chat the organisation owns.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// Only chats with both user and visitor messages (the vendor tutorial's filter).
    #[serde(default)]
    pub only_with_messages: bool,
    /// How far before the last high-water mark of `updated_at` each run starts again, for
    /// updates that become visible late (`90s`, `10m`, `2h`).
    #[serde(default = "default_overlap")]
    pub overlap: String,
    /// Requests in flight at once (per-chat fetches run concurrently).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Requests per second across the source (unlimited when absent: Giosg documents no limit).
    pub requests_per_second: Option<f64>,
    /// PEM file with the RSA private key for encrypted chats (PKCS#1 or PKCS#8, plain or
    /// passphrase-protected, including OpenSSL's legacy `Proc-Type: 4,ENCRYPTED`).
    pub private_key_path: Option<String>,
    /// The same key inline, as PEM text.
    pub private_key_pem: Option<Secret>,
    /// Passphrase of an encrypted private key.
    pub private_key_passphrase: Option<Secret>,
    /// Secret of the Giosg App whose chat-end triggers `talkhouse serve` receives.
    pub app_secret: Option<Secret>,
    /// The key that `POST /webhooks/<name>?key=…` must carry: Giosg signs no webhook, so the
    /// webhook URL registered at Giosg holds this secret. Without it webhooks are refused.
    pub webhook_secret: Option<Secret>,
    /// `talkhouse serve` ends open chats idle longer than this (`7d`, `12h`) before each
    /// scheduled sync of this source. Off when absent.
    pub end_stale_after: Option<String>,
    /// With `end_stale_after`: only log the chats that would be ended, end none.
    #[serde(default)]
    pub end_stale_dry_run: bool,
    /// What a chat that Giosg says is gone (a `removed` webhook confirmed by a 404) leaves:
    /// `redact` (default: `_deleted_at` set, personal columns nulled), `delete` or `keep`
    /// (only `_deleted_at`).
    #[serde(default)]
    pub on_vendor_delete: EraseMode,
}

pub use talkhouse_model::time::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_sample_section() {
        let section: toml::Table = toml::from_str(
            r#"
            base_url = "http://127.0.0.1:9"
            organization_id = "org"
            token = "t"
            rooms = ["r1"]
            only_with_messages = true
            overlap = "15m"
            concurrency = 4
            private_key_path = "key.pem"
            private_key_passphrase = "p"
            app_secret = "s"
            webhook_secret = "k"
            end_stale_after = "7d"
            end_stale_dry_run = true
            on_vendor_delete = "keep"
            "#,
        )
        .expect("toml");
        let cfg: GiosgConfig = section.try_into().expect("valid section");
        assert_eq!(cfg.rooms, vec!["r1".to_owned()]);
        assert!(cfg.webhook_secret.as_ref().is_some_and(|k| k.matches("k")));
        assert_eq!(cfg.end_stale_after.as_deref(), Some("7d"));
        assert!(cfg.end_stale_dry_run);
        assert_eq!(cfg.on_vendor_delete, EraseMode::Keep);
        assert_eq!(
            parse_duration(&cfg.overlap),
            Some(chrono::Duration::minutes(15))
        );
        let bad: toml::Table =
            toml::from_str("organization_id = \"o\"\ntoken = \"t\"\ntokn = 1").expect("toml");
        assert!(bad.try_into::<GiosgConfig>().is_err());
    }
}
