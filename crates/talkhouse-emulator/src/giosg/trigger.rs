//! The push side: Giosg App triggers ("Run on background when chat ends").
//!
//! Giosg calls `GET <trigger_url>?type=chat_end&data=<jwt>&token=<jwt>`: `data` is an HS256 JWT
//! signed with the app secret (claims `user_id`, `org_id`, `chat_id`, `visitor_id`, `inst_id`,
//! `app_id`, `app_user_id`, `app_user_code`, `exp`), `token` an access token the app cannot
//! verify but whose `exp` it can read. Expiry is against the wall clock, not the
//! emulator's clock: the receiver checks `exp` with its own clock.

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

/// What to get wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerFault {
    /// A valid trigger.
    #[default]
    None,
    /// `data` signed with another secret (a forgery).
    BadSignature,
    /// `data` expired two minutes ago (a replay).
    Expired,
}

impl TriggerFault {
    /// Parses `none`, `bad_signature`, `expired`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" | "" => Some(Self::None),
            "bad_signature" => Some(Self::BadSignature),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// One chat-end trigger.
#[derive(Debug, Clone)]
pub struct ChatEndTrigger {
    /// Organisation uuid.
    pub org_id: String,
    /// The chat that ended.
    pub chat_id: String,
    /// The chat's visitor (32 hex), if any.
    pub visitor_id: Option<String>,
    /// The app's id.
    pub app_id: String,
    /// The app secret that signs `data`.
    pub secret: String,
    /// Seconds until `data` expires.
    pub lifetime_secs: i64,
    /// Deliberate fault.
    pub fault: TriggerFault,
}

#[derive(Serialize)]
struct DataClaims<'a> {
    user_id: &'a str,
    org_id: &'a str,
    chat_id: &'a str,
    visitor_id: Option<&'a str>,
    inst_id: String,
    app_id: &'a str,
    app_user_id: Option<&'a str>,
    app_user_code: String,
    exp: i64,
}

#[derive(Serialize)]
struct TokenClaims<'a> {
    sub: &'a str,
    org_id: &'a str,
    exp: i64,
}

impl ChatEndTrigger {
    /// A valid trigger for `chat_id`, signed with `secret`, valid for five minutes.
    pub fn new(org_id: &str, chat_id: &str, visitor_id: Option<&str>, secret: &str) -> Self {
        Self {
            org_id: org_id.to_owned(),
            chat_id: chat_id.to_owned(),
            visitor_id: visitor_id.map(str::to_owned),
            app_id: super::APP_ID.to_owned(),
            secret: secret.to_owned(),
            lifetime_secs: 300,
            fault: TriggerFault::None,
        }
    }

    /// The same trigger with a fault.
    #[must_use]
    pub fn with_fault(mut self, fault: TriggerFault) -> Self {
        self.fault = fault;
        self
    }

    /// The query parameters Giosg sends: `type`, `data`, `token`.
    pub fn query(&self) -> Vec<(String, String)> {
        let now = chrono::Utc::now().timestamp();
        let exp = if self.fault == TriggerFault::Expired {
            now - 120
        } else {
            now + self.lifetime_secs
        };
        let secret = if self.fault == TriggerFault::BadSignature {
            "not-the-app-secret"
        } else {
            self.secret.as_str()
        };
        let claims = DataClaims {
            user_id: super::APP_USER_ID,
            org_id: &self.org_id,
            chat_id: &self.chat_id,
            visitor_id: self.visitor_id.as_deref(),
            inst_id: format!("inst-{}", &self.app_id),
            app_id: &self.app_id,
            app_user_id: None,
            app_user_code: super::crypto::sha1_hex(&format!("code{}{now}", self.chat_id))[..24]
                .to_owned(),
            exp,
        };
        let data = jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap_or_default();
        // The access token is Giosg's own: signed with a key the app never sees.
        let token_claims = TokenClaims {
            sub: super::APP_USER_ID,
            org_id: &self.org_id,
            exp: now + 600,
        };
        let token = jsonwebtoken::encode(
            &Header::default(),
            &token_claims,
            &EncodingKey::from_secret(b"giosg-internal"),
        )
        .unwrap_or_default();
        vec![
            ("type".into(), "chat_end".into()),
            ("data".into(), data),
            ("token".into(), token),
        ]
    }

    /// The full trigger URL for a receiver at `target` (which may carry its own query).
    pub fn url(&self, target: &str) -> String {
        let mut u = url_with_query(target, &self.query());
        u.shrink_to_fit();
        u
    }
}

fn url_with_query(target: &str, q: &[(String, String)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let mut u = target.to_owned();
    u.push(if target.contains('?') { '&' } else { '?' });
    u.push_str(
        &q.iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&"),
    );
    u
}

/// Sends one trigger as Giosg does (HTTP GET) and returns the receiver's status code.
///
/// # Errors
/// When the receiver cannot be reached.
pub async fn send(target: &str, trigger: &ChatEndTrigger) -> Result<u16, String> {
    let client = reqwest::Client::new();
    let resp = client
        .get(trigger.url(target))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}
