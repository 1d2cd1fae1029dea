//! The push side: Giosg webhooks.
//!
//! Giosg POSTs JSON `{channel, action, resource_id, resource, app_user_auth}` to every URL
//! subscribed to a channel (`/api/v5/orgs/{org}/owned_chats`,
//! `/api/v5/orgs/{org}/owned_chats/{chat_id}/messages`, …): `added` with the whole resource,
//! `changed` with only the fields that changed, `removed` when a resource is deleted (a GDPR
//! purge). `app_user_auth` is a short-lived access token (`token_type` `Bearer`, `expires_in`
//! 300, `user_id`, `organization_id`), new on every attempt. Giosg signs nothing. A delivery that
//! gets no 2xx is retried (Giosg's delivery log counts `retry_index`); the emulator retries at
//! once, without backoff.

use serde_json::{Value, json};

use super::crypto::sha1_hex;

/// What happened to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Created: the whole resource.
    Added,
    /// Changed: only the changed fields.
    Changed,
    /// Deleted.
    Removed,
}

impl Action {
    /// Parses `added`, `changed`, `removed`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "added" => Some(Self::Added),
            "changed" => Some(Self::Changed),
            "removed" => Some(Self::Removed),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Changed => "changed",
            Self::Removed => "removed",
        }
    }
}

/// One webhook event, ready to post.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// The subscribed channel the resource belongs to.
    pub channel: String,
    /// What happened.
    pub action: Action,
    /// The resource's id.
    pub resource_id: String,
    /// The resource (whole for `added`, the changed fields for `changed`).
    pub resource: Value,
    /// The organisation in the access token.
    pub organization_id: String,
    /// The user in the access token (the App's user).
    pub user_id: String,
}

impl WebhookEvent {
    /// The body of delivery attempt `retry_index` (0 for the first): the same event, with a
    /// fresh access token.
    pub fn body(&self, retry_index: u32) -> Value {
        let token = sha1_hex(&format!(
            "webhook-token {} {} {retry_index}",
            self.resource_id,
            self.action.as_str()
        ));
        json!({
            "channel": self.channel,
            "action": self.action.as_str(),
            "resource_id": self.resource_id,
            "resource": self.resource,
            "app_user_auth": {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 300,
                "user_id": self.user_id,
                "organization_id": self.organization_id,
            },
        })
    }
}

/// How to deliver an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery {
    /// Retries after failed attempts (non-2xx or unreachable) before giving up.
    pub max_retries: u32,
    /// Acknowledgements lost on the way: after each of the first `lost_acks` 2xx answers Giosg
    /// sees a failure and delivers the same event again.
    pub lost_acks: u32,
}

/// Posts `event` to `url` as Giosg does and returns every attempt's status (0 when the
/// receiver could not be reached).
pub async fn deliver(url: &str, event: &WebhookEvent, delivery: Delivery) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    let (mut failures, mut lost) = (0u32, 0u32);
    for retry_index in 0u32.. {
        let status = match client.post(url).json(&event.body(retry_index)).send().await {
            Ok(resp) => resp.status().as_u16(),
            Err(_) => 0,
        };
        statuses.push(status);
        if (200..300).contains(&status) {
            if lost >= delivery.lost_acks {
                break;
            }
            lost += 1;
        } else {
            failures += 1;
            if failures > delivery.max_retries {
                break;
            }
        }
    }
    statuses
}
