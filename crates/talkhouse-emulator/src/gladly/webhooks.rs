//! The push side: Gladly webhook events, and a sender that posts them to a URL the way Gladly
//! does (Basic auth, a PING first, optional duplicates).
//!
//! Events are thin (ids only), `{id, type, timestamp, initiator?, content}`. Only the events
//! Gladly fires are made: a customer's message (`CONTACT/MESSAGE_RECEIVED`), a conversation's
//! creation and closing, customer merges (with the source and destination conversation: the
//! same id where the conversation kept it, the survivor's where an OPEN→OPEN merge retired it)
//! and deletions; an agent's replies fire nothing, so the export stays the backstop. The Events
//! API (`GET /api/v1/events`) serves the same events.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::data::{Ct, SPECIAL, Who, World, kind, mix, special};

/// Where to post, and with which Basic credentials.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The receiver's URL (`http://127.0.0.1:8080/webhooks/gladly`).
    pub url: String,
    /// Basic user name.
    pub username: String,
    /// Basic password.
    pub password: String,
}

/// How to send.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Post a PING before the events (as Gladly does when a webhook is enabled).
    pub ping_first: bool,
    /// Post every n-th event twice (0: never).
    pub duplicate_every: usize,
    /// Events per second (`None`: as fast as the receiver answers).
    pub per_second: Option<f64>,
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
}

/// What the receiver answered.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    /// Status of each post, in sending order (PING and duplicates included).
    pub statuses: Vec<u16>,
    /// Time to each answer.
    pub latencies: Vec<Duration>,
}

impl SendReport {
    /// The `q` quantile of the latencies (0.99 for p99).
    pub fn latency_quantile(&self, q: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        if l.is_empty() {
            return Duration::ZERO;
        }
        // The index is within [0, len): the cast is safe.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((l.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
        l[i]
    }
}

/// The PING Gladly sends when a webhook is enabled or its URL changes.
pub fn ping() -> Value {
    json!({"id": "ping", "type": "PING", "timestamp": Utc::now().to_rfc3339()})
}

fn event(
    w: &World,
    seq: &[u64],
    ty: &str,
    at: DateTime<Utc>,
    initiator: Option<Value>,
    content: Value,
) -> Value {
    let id = w.id(b'V', mix(seq) >> 24, 0);
    let mut v = json!({"id": id, "type": ty, "timestamp": World::ts(at, 3), "content": content});
    if let Some(i) = initiator {
        v["initiator"] = i;
    }
    v
}

/// The events Gladly would have sent for what happened in `[from, to)`.
pub fn events_between(w: &World, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Value> {
    let mut out: Vec<(DateTime<Utc>, Value)> = Vec::new();
    let keys = w
        .regular_range(from, to)
        .chain(SPECIAL..SPECIAL + special::COUNT);
    for key in keys {
        let Some(c) = w.conversation(key) else {
            continue;
        };
        let conv_id = w.id(kind::CONVERSATION, key, 0);
        for i in &c.items {
            if i.at < from || i.at >= to || !w.conversation_exists(&c, i.at) {
                continue;
            }
            let cust = w.customer_id(w.customer_at(&c, i.at));
            let assignee = json!({"inboxId": w.id(kind::INBOX, u64::from(w.inbox_at(&c, i.at)), 0), "agentId": w.id(kind::AGENT, u64::from(c.agent), 0)});
            if i.pos == 0 {
                out.push((i.at, event(w, &[key, 1], "CONVERSATION/CREATED", i.at, Some(json!({"id": cust, "type": "CUSTOMER"})), json!({"customerId": cust, "conversationId": conv_id, "context": {"assignee": assignee}}))));
            }
            if i.who == Who::Customer && i.ct.is_message() {
                let channel = match i.ct {
                    Ct::Chat => "CHAT",
                    Ct::Email => "EMAIL",
                    Ct::Facebook => "FB_MESSENGER",
                    Ct::Instagram => "INSTAGRAM_DIRECT",
                    Ct::Sms => "SMS",
                    Ct::Voicemail => "VOICEMAIL",
                    Ct::Whatsapp => "WHATSAPP",
                    Ct::Phone => "PHONE_CALL",
                    _ => "CHAT",
                };
                out.push((
                    i.at,
                    event(
                        w,
                        &[key, 2, u64::from(i.pos)],
                        "CONTACT/MESSAGE_RECEIVED",
                        i.at,
                        Some(json!({"id": cust, "type": "CUSTOMER"})),
                        json!({
                            "channel": channel,
                            "contactId": w.id(b'K', key, 0),
                            "conversationId": conv_id,
                            "customerId": cust,
                            "messageId": w.id(kind::ITEM, key, i.pos),
                            "context": {"assignee": assignee},
                        }),
                    ),
                ));
            }
            if i.closes {
                out.push((i.at, event(w, &[key, 3], "CONVERSATION/CLOSED", i.at, Some(json!({"id": w.id(kind::AGENT, u64::from(c.agent), 0), "type": "AGENT"})), json!({"customerId": cust, "conversationId": conv_id, "context": {"assignee": assignee}}))));
            }
        }
    }
    for s in [special::MERGE_SRC, special::OPEN_SRC] {
        if let Some((to_c, at)) = w.merge_of(SPECIAL + s)
            && at >= from
            && at < to
        {
            let dst_conv = if s == special::OPEN_SRC {
                SPECIAL + special::OPEN_DST
            } else {
                SPECIAL + s
            };
            out.push((
                at,
                event(
                    w,
                    &[s, 4],
                    "CUSTOMER/MERGED",
                    at,
                    Some(json!({"id": w.id(kind::AGENT, 0, 0), "type": "AGENT"})),
                    json!({
                        "sourceCustomerId": w.customer_id(SPECIAL + s),
                        "destinationCustomerId": w.customer_id(to_c),
                        "sourceConversationId": w.id(kind::CONVERSATION, SPECIAL + s, 0),
                        "destinationConversationId": w.id(kind::CONVERSATION, dst_conv, 0),
                    }),
                ),
            ));
        }
    }
    if let Some(at) = w.customer_deleted_at(SPECIAL + special::GDPR)
        && at >= from
        && at < to
    {
        out.push((
            at,
            event(
                w,
                &[special::GDPR, 5],
                "CUSTOMER_PROFILE/DELETED",
                at,
                None,
                json!({"customerId": w.customer_id(SPECIAL + special::GDPR)}),
            ),
        ));
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, v)| v).collect()
}

/// The entities the Events API filters on (its `entities` parameter).
pub const ENTITIES: [&str; 8] = [
    "AGENT_AVAILABILITY",
    "AGENT_STATUS",
    "CONTACT",
    "CONVERSATION",
    "CUSTOMER",
    "CUSTOMER_PROFILE",
    "PAYMENT_REQUEST",
    "TASK",
];

/// The Events API entity of an event type: what comes before `/`, with
/// `CONVERSATION_ASSIGNEE/*` and `CONVERSATION_STATUS/*` under `CONVERSATION`.
pub fn entity_of(event_type: &str) -> &str {
    let head = event_type.split('/').next().unwrap_or(event_type);
    if head.starts_with("CONVERSATION") {
        "CONVERSATION"
    } else {
        head
    }
}

/// Fetches the events of `[from, to)` from a running Gladly emulator.
///
/// # Errors
/// When the emulator cannot be reached or answers something else than a JSON array.
pub async fn fetch_events(
    base_url: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Value>, reqwest::Error> {
    let url = format!("{base_url}/_emulator/gladly/events");
    reqwest::Client::new()
        .get(url)
        .query(&[("from", from.to_rfc3339()), ("to", to.to_rfc3339())])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

/// Posts `events` to the target as Gladly would: JSON bodies, Basic auth, a PING first and
/// duplicates if asked, paced to `per_second`.
///
/// # Errors
/// When a post cannot be sent at all (connection refused); non-2xx answers are reported in
/// [`SendReport::statuses`].
pub async fn send_webhooks(
    target: &WebhookTarget,
    events: &[Value],
    opts: &SendOptions,
) -> Result<SendReport, reqwest::Error> {
    use futures::StreamExt;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let mut queue: Vec<Value> = Vec::new();
    if opts.ping_first {
        queue.push(ping());
    }
    for (n, e) in events.iter().enumerate() {
        queue.push(e.clone());
        if opts.duplicate_every > 0 && n.is_multiple_of(opts.duplicate_every) {
            queue.push(e.clone());
        }
    }
    let start = Instant::now();
    let pace = opts
        .per_second
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let sends = queue.into_iter().enumerate().map(|(n, body)| {
        let client = client.clone();
        async move {
            if let Some(p) = pace {
                let due = start + p.mul_f64(n as f64);
                tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
            }
            let t = Instant::now();
            let resp = client
                .post(&target.url)
                .basic_auth(&target.username, Some(&target.password))
                .json(&body)
                .send()
                .await?;
            Ok::<_, reqwest::Error>((resp.status().as_u16(), t.elapsed()))
        }
    });
    let results: Vec<Result<(u16, Duration), reqwest::Error>> = futures::stream::iter(sends)
        .buffered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut report = SendReport::default();
    for r in results {
        let (s, l) = r?;
        report.statuses.push(s);
        report.latencies.push(l);
    }
    Ok(report)
}
