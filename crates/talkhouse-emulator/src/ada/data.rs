//! Deterministic Ada data: bot conversations and their messages, as a pure function of the seed
//! and the conversation's index.
//!
//! Conversation `i` starts in slot `i` of a timeline that begins 30 days before the emulator's
//! start time and goes on forever at the same pace (scale 1 ≈ 1,000 conversations per 30 days),
//! so advancing the clock brings new conversations. Nothing is held in memory: a query turns its
//! time range into a range of indexes and generates only those conversations.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::text::{self, Lang, Tone};

/// Longest time from a conversation's start to its last message.
pub const MAX_MESSAGE_SPAN: Duration = Duration::hours(4);
/// Longest time from a conversation's start to its last update.
pub const MAX_UPDATE_SPAN: Duration = Duration::days(4);

/// Which documented field set and envelope to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `/data_api/v1.3/…`: no topic fields, no `in_response_to`.
    V13,
    /// `/data_api/v1.4/…`.
    V14,
    /// `/api/v2/export/…`.
    V2,
}

impl Version {
    /// Parses `v1.3`, `v1.4`.
    pub fn parse_v1(s: &str) -> Option<Self> {
        match s {
            "v1.3" => Some(Self::V13),
            "v1.4" => Some(Self::V14),
            _ => None,
        }
    }

    /// Whether fields the spec declares non-nullable are sent as `null` (v2 allows null for
    /// many fields v1.4 declares as plain strings; where null is not allowed the key is left out).
    fn nullable(self) -> bool {
        self == Self::V2
    }
}

/// How timestamps are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// `2025-01-02T10:00:00.123000` (v2 conversations).
    None,
    /// `2025-01-02T10:00:00.123000+00:00`.
    Offset,
}

/// Formats a timestamp the way Ada writes record dates (6 fraction digits).
pub fn fmt_ts(t: DateTime<Utc>, zone: Zone) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    match zone {
        Zone::None => base,
        Zone::Offset => format!("{base}+00:00"),
    }
}

/// Formats a query bound (`…Z`, 6 fraction digits).
pub fn fmt_query(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Rendering switches that change record shapes.
#[derive(Debug, Clone)]
pub struct Shape {
    /// The bot's literal in `sender`/`recipient` (`ada`, `Ada`, `bot`).
    pub bot_literal: String,
    /// Zone-less timestamps on v2 conversations only (default), everywhere, or nowhere.
    pub zoneless: Zoneless,
    /// Serve the 2026 v2 fields (`classifications`, `used_*`, `last_agent_*`).
    pub v2_2026: bool,
}

/// Where timestamps lack a zone suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zoneless {
    /// v2 conversations only (as Estuary reports).
    V2Conversations,
    /// Every conversation and message date.
    All,
    /// Nowhere.
    None,
}

/// SplitMix64: a cheap, well-mixed hash for ids and per-conversation seeds.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash3(seed: u64, a: u64, b: u64) -> u64 {
    mix(seed ^ mix(a.wrapping_mul(0x1000_0000_01B3) ^ mix(b)))
}

/// A 24-hex ObjectId: 4 bytes of Unix seconds, 8 bytes of hash.
pub fn object_id(t: DateTime<Utc>, h: u64) -> String {
    // ObjectIds hold the low 32 bits of the seconds, as MongoDB does.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let secs = t.timestamp() as u32;
    format!("{secs:08x}{h:016x}")
}

/// The timeline: where conversation `i` starts.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Seed of all data.
    pub seed: u64,
    /// Start of slot 0 (the emulator's start time minus 30 days).
    pub start: DateTime<Utc>,
    /// Length of one slot in milliseconds.
    pub slot_ms: i64,
}

const PLATFORMS: &[(&str, u32)] = &[
    ("chat", 55),
    ("whatsapp", 10),
    ("facebook", 8),
    ("sms", 8),
    ("email", 7),
    ("zendesk_messaging", 5),
    ("instagram", 4),
    ("voice", 3),
];
const BROWSERS: &[(&str, &str)] = &[
    ("chrome", "131.0.0"),
    ("safari", "18.1"),
    ("firefox", "133.0"),
    ("edge", "131.0.2903"),
];
const DEVICES: &[&str] = &["desktop", "iphone", "android", "ipad"];
const TOPICS: &[(&str, &str, &str)] = &[
    (
        "order_status",
        "Order status",
        "Where is my order and when will it arrive",
    ),
    (
        "returns",
        "Returns and refunds",
        "Returning items and getting money back",
    ),
    (
        "billing",
        "Billing",
        "Charges, invoices and payment problems",
    ),
    (
        "account",
        "Account access",
        "Passwords, log-in and profile changes",
    ),
    (
        "delivery",
        "Delivery address",
        "Changing where an order is delivered",
    ),
];
const ANSWERS: &[(&str, &str)] = &[
    ("5f1a000000000000000000a1", "Track my order"),
    ("5f1a000000000000000000a2", "Return policy"),
    ("5f1a000000000000000000a3", "Refund timing"),
    ("5f1a000000000000000000a4", "Reset password"),
    ("5f1a000000000000000000a5", "Change address"),
];
const AGENTS: u64 = 12;

/// One human agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// ObjectId.
    pub id: String,
    /// Full name.
    pub name: String,
}

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    /// The chatter (customer).
    Chatter,
    /// The bot.
    Bot,
    /// A human agent (index into the conversation's agents).
    Agent(usize),
}

/// One generated message.
#[derive(Debug, Clone)]
pub struct Msg {
    /// ObjectId.
    pub id: String,
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// Sender.
    pub from: Party,
    /// `message_data`.
    pub data: Value,
    /// Answer id and title when a scripted answer sent it.
    pub answer: Option<(&'static str, &'static str)>,
    /// Thumbs up (1) or down (-1).
    pub review: Option<i64>,
    /// The message this one answers.
    pub in_response_to: Option<String>,
    /// Whether the link in it was clicked (link messages only).
    pub link_clicked: Option<bool>,
}

/// One generated conversation with its messages.
#[derive(Debug, Clone)]
pub struct Conv {
    /// Index on the timeline.
    pub idx: u64,
    /// ObjectId.
    pub id: String,
    /// The chatter's ObjectId.
    pub chatter_id: String,
    /// End-user id (v1.4+), absent for some.
    pub end_user_id: Option<String>,
    /// Start.
    pub created: DateTime<Utc>,
    /// First version's `date_updated` (the session closing).
    pub first_update: DateTime<Utc>,
    /// A later version (CSAT filled in, classification revised), if any.
    pub late_update: Option<DateTime<Utc>>,
    /// Chatter wrote after the greeting.
    pub engaged: bool,
    /// Handed to a human.
    pub escalated: bool,
    /// Ada platform.
    pub platform: &'static str,
    /// Language.
    pub lang: Lang,
    /// The chatter's mood.
    pub tone: Tone,
    /// CSAT score 1–5 given in the late version.
    pub csat_score: Option<i64>,
    /// CSAT comment.
    pub csat_comment: Option<String>,
    /// Test user.
    pub test_user: bool,
    /// Browser and version.
    pub browser: (&'static str, &'static str),
    /// Device.
    pub device: &'static str,
    /// Topic index.
    pub topic: usize,
    /// Whether the topic has a parent category.
    pub topic_parent: bool,
    /// Agents who handled it.
    pub agents: Vec<Agent>,
    /// Chatter's name and e-mail when captured.
    pub identity: Option<(String, String)>,
    /// Order number variable.
    pub order_number: Option<u32>,
    /// Seconds the bot and the agents spent.
    pub handle_times: (f64, f64),
    /// Messages in order of time.
    pub messages: Vec<Msg>,
}

impl Conv {
    /// The `date_updated` served at `horizon` (records become visible once older than the
    /// horizon), or `None` when the conversation is not visible yet.
    pub fn updated_at(&self, horizon: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.late_update {
            Some(late) if late < horizon => Some(late),
            _ if self.first_update < horizon => Some(self.first_update),
            _ => None,
        }
    }

    /// Whether the late version is the one served at `horizon`.
    fn late_visible(&self, horizon: DateTime<Utc>) -> bool {
        self.late_update.is_some_and(|l| l < horizon)
    }
}

fn weighted<R: Rng + ?Sized>(rng: &mut R, items: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total.max(1));
    for (name, w) in items {
        if r < *w {
            return name;
        }
        r -= w;
    }
    items.first().map_or("chat", |(n, _)| n)
}

/// A UUID-shaped chat id from two hashes.
fn external_chat_id(a: u64, b: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        a & 0xffff,
        (b >> 52) & 0xfff,
        (b >> 40) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl Timeline {
    /// A timeline of `per_30_days` conversations per 30 days starting 30 days before `anchor`.
    pub fn new(seed: u64, anchor: DateTime<Utc>, per_30_days: u64) -> Self {
        let span_ms = Duration::days(30).num_milliseconds();
        let n = i64::try_from(per_30_days.max(1)).unwrap_or(i64::MAX);
        Self {
            seed,
            start: anchor - Duration::days(30),
            slot_ms: (span_ms / n).max(1),
        }
    }

    fn base(&self, i: u64) -> DateTime<Utc> {
        let jitter =
            i64::try_from(hash3(self.seed, i, 1) % u64::try_from(self.slot_ms).unwrap_or(1))
                .unwrap_or(0);
        let slot = i64::try_from(i)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(self.slot_ms);
        self.start + Duration::milliseconds(slot.saturating_add(jitter))
    }

    /// Start of conversation `i`. About one in twenty starts at exactly the same instant as its
    /// predecessor (a bulk of proactive campaigns), so equal timestamps meet page boundaries.
    pub fn start_of(&self, i: u64) -> DateTime<Utc> {
        if i > 0 && hash3(self.seed, i, 2).is_multiple_of(20) {
            self.base(i - 1)
        } else {
            self.base(i)
        }
    }

    /// The first index whose conversation may start at or after `t`.
    pub fn index_at(&self, t: DateTime<Utc>) -> u64 {
        let d = (t - self.start).num_milliseconds();
        if d <= 0 {
            return 0;
        }
        u64::try_from(d / self.slot_ms)
            .unwrap_or(0)
            .saturating_sub(1)
    }

    /// Agent `k` of the pool.
    fn agent(&self, k: u64) -> Agent {
        let mut rng = StdRng::seed_from_u64(hash3(self.seed, k, 77));
        Agent {
            id: object_id(self.start, hash3(self.seed, k, 78)),
            name: text::person_name(&mut rng),
        }
    }

    /// Generates conversation `i`.
    pub fn conversation(&self, i: u64) -> Conv {
        let mut rng = StdRng::seed_from_u64(hash3(self.seed, i, 3));
        let created = ms(self.start_of(i));
        let lang = text::pick_lang(&mut rng);
        let tone = text::pick_tone(&mut rng);
        let engaged = rng.random_bool(0.8);
        let escalated = engaged && rng.random_bool(0.28);
        let platform = weighted(&mut rng, PLATFORMS);
        // About one chatter in seven is returning: they reuse an earlier conversation's chatter.
        let returning = rng.random_bool(0.15) && i > 0;
        let chatter_key = if returning {
            hash3(self.seed, i, 4) % i
        } else {
            i
        };
        let chatter_id = object_id(self.start, hash3(self.seed, chatter_key, 5));
        let end_user_id = rng
            .random_bool(0.7)
            .then(|| object_id(self.start, hash3(self.seed, chatter_key, 6)));
        let browser = BROWSERS[rng.random_range(0..BROWSERS.len())];
        let device = DEVICES[rng.random_range(0..DEVICES.len())];
        let topic = rng.random_range(0..TOPICS.len());
        let topic_parent = rng.random_bool(0.6);
        let test_user = rng.random_bool(0.02);
        let identity = rng.random_bool(0.5).then(|| {
            let name = text::person_name(&mut rng);
            let mail = text::email(&name, i);
            (name, mail)
        });
        let order_number = rng
            .random_bool(0.4)
            .then(|| rng.random_range(10_000..99_999));
        let agents: Vec<Agent> = if escalated {
            let n = if rng.random_bool(0.2) { 2 } else { 1 };
            (0..n)
                .map(|_| self.agent(rng.random_range(0..AGENTS)))
                .collect()
        } else {
            Vec::new()
        };

        let mut messages = Vec::new();
        let mut t = created;
        let mut j = 0u64;
        let mut next_id = |at: DateTime<Utc>| {
            j += 1;
            object_id(at, hash3(self.seed, i, 1000 + j))
        };
        // The greeting, the welcome text and the quick replies share one instant.
        messages.push(Msg {
            id: next_id(t),
            at: t,
            from: Party::Bot,
            data: json!({"_type": "greeting", "external_chat_id": external_chat_id(hash3(self.seed, i, 9), hash3(self.seed, i, 10)), "reviewable_message": false}),
            answer: None,
            review: None,
            in_response_to: None,
            link_clicked: None,
        });
        messages.push(Msg {
            id: next_id(t),
            at: t,
            from: Party::Bot,
            data: json!({"_type": "text", "body": text::bot(&mut rng, lang), "has_variables": false, "reviewable_message": false}),
            answer: Some(("5f1a000000000000000000a0", "Greeting")),
            review: None,
            in_response_to: None,
            link_clicked: None,
        });
        messages.push(Msg {
            id: next_id(t),
            at: t,
            from: Party::Bot,
            data: json!({"_type": "quick_replies", "body": "What can I help you with?", "has_variables": false,
                "reviewable_message": false,
                "quick_replies": ANSWERS.iter().take(3).map(|(_, title)| json!({"title": title})).collect::<Vec<_>>()}),
            answer: Some(("5f1a000000000000000000a0", "Greeting")),
            review: None,
            in_response_to: None,
            link_clicked: None,
        });
        if engaged {
            let turns = rng.random_range(1..=3);
            for _ in 0..turns {
                t += Duration::milliseconds(rng.random_range(4_000..90_000));
                let q = next_id(t);
                messages.push(Msg {
                    id: q.clone(),
                    at: t,
                    from: Party::Chatter,
                    data: json!({"_type": "text", "body": text::customer(&mut rng, lang, tone), "has_variables": false, "reviewable_message": false}),
                    answer: None,
                    review: None,
                    in_response_to: None,
                    link_clicked: None,
                });
                t += Duration::milliseconds(rng.random_range(500..4_000));
                let answer = ANSWERS[rng.random_range(0..ANSWERS.len())];
                let review = if rng.random_bool(0.15) {
                    Some(if rng.random_bool(0.6) { 1 } else { -1 })
                } else {
                    None
                };
                let (data, link_clicked) = match rng.random_range(0..10) {
                    0 => (
                        json!({"_type": "picture", "pic_url": format!("https://cdn.example.com/help/{}.png", answer.0), "alt_text": answer.1, "has_variables": false, "reviewable_message": true}),
                        None,
                    ),
                    1 | 2 => (
                        json!({"_type": "link", "url": format!("https://help.example.com/{}", answer.0), "link_text": answer.1, "body": text::bot(&mut rng, lang), "has_variables": false, "reviewable_message": true}),
                        Some(rng.random_bool(0.5)),
                    ),
                    _ => (
                        json!({"_type": "text", "body": text::bot(&mut rng, lang), "has_variables": rng.random_bool(0.2), "reviewable_message": true}),
                        None,
                    ),
                };
                messages.push(Msg {
                    id: next_id(t),
                    at: t,
                    from: Party::Bot,
                    data,
                    answer: Some(answer),
                    review,
                    in_response_to: Some(q),
                    link_clicked,
                });
            }
            if escalated {
                t += Duration::milliseconds(rng.random_range(1_000..10_000));
                messages.push(Msg {
                    id: next_id(t),
                    at: t,
                    from: Party::Bot,
                    data: json!({"_type": "handoff", "body": "Let me connect you with a human agent.", "handoff_type": "live_chat", "reviewable_message": false}),
                    answer: Some(("5f1a000000000000000000af", "Handoff")),
                    review: None,
                    in_response_to: None,
                    link_clicked: None,
                });
                for (k, _) in agents.iter().enumerate() {
                    for _ in 0..rng.random_range(1..=2) {
                        t += Duration::milliseconds(rng.random_range(20_000..600_000));
                        messages.push(Msg {
                            id: next_id(t),
                            at: t,
                            from: Party::Agent(k),
                            data: json!({"_type": "text", "body": text::agent(&mut rng, lang), "has_variables": false, "reviewable_message": false}),
                            answer: None,
                            review: None,
                            in_response_to: None,
                            link_clicked: None,
                        });
                        t += Duration::milliseconds(rng.random_range(5_000..120_000));
                        messages.push(Msg {
                            id: next_id(t),
                            at: t,
                            from: Party::Chatter,
                            data: json!({"_type": "text", "body": text::customer(&mut rng, lang, tone), "has_variables": false, "reviewable_message": false}),
                            answer: None,
                            review: None,
                            in_response_to: None,
                            link_clicked: None,
                        });
                    }
                }
            }
        }
        let ended = t;
        let first_update = ended + Duration::milliseconds(rng.random_range(60_000..600_000));
        let csat_score = (engaged && rng.random_bool(0.35)).then(|| match tone {
            Tone::Positive => rng.random_range(4..=5),
            Tone::Negative => rng.random_range(1..=2),
            Tone::Neutral => rng.random_range(3..=4),
        });
        let csat_comment = csat_score
            .filter(|_| rng.random_bool(0.5))
            .map(|_| text::customer(&mut rng, lang, tone));
        let late_update = (csat_score.is_some() || rng.random_bool(0.1)).then(|| {
            first_update + Duration::milliseconds(rng.random_range(3_600_000..259_200_000))
        });
        let bot_time = (ended - created).num_milliseconds() as f64 / 1000.0;
        let agent_time = if escalated {
            rng.random_range(120.0..1800.0_f64).round()
        } else {
            0.0
        };
        Conv {
            idx: i,
            id: object_id(created, hash3(self.seed, i, 11)),
            chatter_id,
            end_user_id,
            created,
            first_update,
            late_update,
            engaged,
            escalated,
            platform,
            lang,
            tone,
            csat_score,
            csat_comment,
            test_user,
            browser,
            device,
            topic,
            topic_parent,
            agents,
            identity,
            order_number,
            handle_times: (bot_time, agent_time),
            messages,
        }
    }
}

fn put_opt(obj: &mut Map<String, Value>, key: &str, value: Option<Value>, nullable: bool) {
    match value {
        Some(v) => {
            obj.insert(key.to_owned(), v);
        }
        None if nullable => {
            obj.insert(key.to_owned(), Value::Null);
        }
        None => {}
    }
}

/// The conversation record served at `horizon` (call only when [`Conv::updated_at`] is `Some`).
pub fn conversation_json(
    c: &Conv,
    horizon: DateTime<Utc>,
    version: Version,
    shape: &Shape,
) -> Value {
    let zone = match (shape.zoneless, version) {
        (Zoneless::All, _) | (Zoneless::V2Conversations, Version::V2) => Zone::None,
        _ => Zone::Offset,
    };
    let late = c.late_visible(horizon);
    let updated = c.updated_at(horizon).unwrap_or(c.first_update);
    let nullable = version.nullable();
    let topic = TOPICS
        .get(c.topic)
        .copied()
        .unwrap_or(("other", "Other", "Other"));
    let mut o = Map::new();
    o.insert("_id".into(), json!(c.id));
    o.insert("chatter_id".into(), json!(c.chatter_id));
    o.insert("date_created".into(), json!(fmt_ts(c.created, zone)));
    o.insert("date_updated".into(), json!(fmt_ts(updated, zone)));
    o.insert("is_engaged".into(), json!(c.engaged));
    o.insert("is_escalated".into(), json!(c.escalated));
    o.insert("platform".into(), json!(c.platform));
    o.insert("language".into(), json!(c.lang.code()));
    let csat = match (late, c.csat_score) {
        (true, Some(score)) => {
            let mut m = Map::new();
            m.insert("score".into(), json!(score));
            m.insert("style".into(), json!("numeric_5"));
            m.insert("resolved".into(), json!(score >= 3));
            if let Some(comment) = &c.csat_comment {
                m.insert("comment".into(), json!(comment));
            }
            m.insert("date_created".into(), json!(fmt_ts(updated, Zone::Offset)));
            Value::Object(m)
        }
        _ => json!({}),
    };
    o.insert("csat".into(), csat);
    let mut vars = Map::new();
    if let Some((name, mail)) = &c.identity {
        vars.insert("name".into(), json!(name));
        vars.insert("email".into(), json!(mail));
    }
    if let Some(n) = c.order_number {
        vars.insert("order_number".into(), json!(n.to_string()));
    }
    vars.insert("topic".into(), json!(topic.0));
    o.insert("variables".into(), Value::Object(vars));
    o.insert(
        "metavariables".into(),
        json!({"browser": c.browser.0, "device": c.device, "language": c.lang.code(), "introshown": "True",
               "initialurl": format!("https://shop.example.com/{}", topic.0)}),
    );
    o.insert(
        "agent_id".into(),
        json!(c.agents.iter().map(|a| a.id.clone()).collect::<Vec<_>>()),
    );
    o.insert(
        "agent_name".into(),
        json!(c.agents.iter().map(|a| a.name.clone()).collect::<Vec<_>>()),
    );
    o.insert("browser".into(), json!(c.browser.0));
    o.insert("browser_version".into(), json!(c.browser.1));
    o.insert("device".into(), json!(c.device));
    o.insert("is_test_user".into(), json!(c.test_user));
    if c.platform == "chat" {
        o.insert("oauth_channel".into(), json!("web"));
    }
    let resolved = !c.escalated && c.engaged;
    o.insert(
        "automated_resolution_classification".into(),
        json!(if resolved { "Resolved" } else { "Not Resolved" }),
    );
    o.insert(
        "automated_resolution_classification_reason".into(),
        json!(if resolved {
            "The AI agent answered the question."
        } else {
            "The customer needed a human or left."
        }),
    );
    o.insert(
        "inquiry_summary".into(),
        json!(format!(
            "The customer asked about {}.",
            topic.1.to_lowercase()
        )),
    );
    o.insert("bot_handle_time".into(), json!(c.handle_times.0));
    o.insert("agent_handle_time".into(), json!(c.handle_times.1));
    o.insert(
        "record_last_updated".into(),
        json!(fmt_ts(updated + Duration::minutes(5), zone)),
    );
    if version >= Version::V14 {
        put_opt(
            &mut o,
            "end_user_id",
            c.end_user_id.clone().map(Value::from),
            nullable,
        );
        o.insert(
            "generated_topic_id".into(),
            json!(format!("topic-{}", topic.0)),
        );
        o.insert("generated_topic_label".into(), json!(topic.1));
        o.insert(
            "generated_topic_v2_id".into(),
            json!(format!("t2-{}", topic.0)),
        );
        o.insert("generated_topic_v2_title".into(), json!(topic.1));
        o.insert("generated_topic_v2_desc".into(), json!(topic.2));
        put_opt(
            &mut o,
            "generated_topic_v2_parent_id",
            c.topic_parent.then(|| json!("t2-customer-care")),
            nullable,
        );
    }
    if version == Version::V2 && shape.v2_2026 {
        o.insert(
            "classifications".into(),
            json!([{"topic_id": format!("t2-{}", topic.0), "topic_name": topic.1,
                     "intents": [{"intent_id": format!("intent-{}", topic.0), "intent_name": topic.2, "status": "active"}]}]),
        );
        o.insert(
            "used_articles".into(),
            if c.engaged {
                json!([{"id": format!("art-{}", topic.0), "name": topic.1, "url": format!("https://help.example.com/{}", topic.0), "source": "zendesk"}])
            } else {
                json!([])
            },
        );
        o.insert(
            "used_playbooks".into(),
            if c.escalated {
                json!([{"id": "pb-handoff", "name": "Hand off to a human", "playbook_execution_id": format!("pbx-{}", c.idx), "outcome_status": "completed"}])
            } else {
                json!([])
            },
        );
        o.insert("used_coaching".into(), json!([]));
        if let Some(a) = c.agents.last() {
            o.insert("last_agent_id".into(), json!(a.id));
            o.insert("last_agent_name".into(), json!(a.name));
        }
    }
    Value::Object(o)
}

/// The message record.
pub fn message_json(c: &Conv, m: &Msg, version: Version, shape: &Shape) -> Value {
    let zone = if shape.zoneless == Zoneless::All {
        Zone::None
    } else {
        Zone::Offset
    };
    let nullable = version.nullable();
    let bot = shape.bot_literal.as_str();
    let party = |p: &Party| -> String {
        match p {
            Party::Chatter => c.chatter_id.clone(),
            Party::Bot => bot.to_owned(),
            Party::Agent(k) => c
                .agents
                .get(*k)
                .map_or_else(|| "agent".to_owned(), |a| a.id.clone()),
        }
    };
    let sender = party(&m.from);
    let recipient = match m.from {
        Party::Chatter => {
            // Answered by whoever holds the conversation: the last agent after a handoff.
            let after_handoff = c
                .messages
                .iter()
                .take_while(|x| x.id != m.id)
                .any(|x| matches!(x.from, Party::Agent(_)));
            if after_handoff {
                party(&Party::Agent(c.agents.len().saturating_sub(1)))
            } else {
                bot.to_owned()
            }
        }
        _ => c.chatter_id.clone(),
    };
    let mut o = Map::new();
    o.insert("_id".into(), json!(m.id));
    o.insert("conversation_id".into(), json!(c.id));
    o.insert("chatter_id".into(), json!(c.chatter_id));
    o.insert("date_created".into(), json!(fmt_ts(m.at, zone)));
    o.insert(
        "record_last_updated".into(),
        json!(fmt_ts(m.at + Duration::minutes(45), zone)),
    );
    o.insert("sender".into(), json!(sender));
    o.insert("recipient".into(), json!(recipient));
    put_opt(&mut o, "answer_id", m.answer.map(|a| json!(a.0)), nullable);
    put_opt(
        &mut o,
        "answer_title",
        m.answer.map(|a| json!(a.1)),
        nullable,
    );
    put_opt(
        &mut o,
        "link_was_clicked",
        m.link_clicked.map(Value::from),
        nullable,
    );
    // `review` is a plain integer in both specs: absent when not given.
    put_opt(&mut o, "review", m.review.map(Value::from), false);
    if version >= Version::V14 {
        put_opt(
            &mut o,
            "in_response_to",
            m.in_response_to.clone().map(Value::from),
            false,
        );
    }
    o.insert("message_data".into(), m.data.clone());
    Value::Object(o)
}
