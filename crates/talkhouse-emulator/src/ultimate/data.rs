//! Deterministic synthetic conversations: bots, intents, statuses, day semantics.
//!
//! Conversations are generated per (bot, start day) from the seed, so any day file can be
//! rendered without holding the whole data set in memory.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::text;

/// Days of data before the anchor day (the clock's day when the emulator was built).
pub const PAST_DAYS: i64 = 30;
/// Days of data after the anchor day, revealed as the clock advances.
pub const FUTURE_DAYS: i64 = 7;
/// Conversations may start up to this many days before the day file they end in.
pub const MAX_SPAN_DAYS: i64 = 4;

/// The intent catalogue: name, `not_meaningful`.
pub const INTENTS: &[(&str, bool)] = &[
    ("Greeting", true),
    ("Talk to a human/agent", false),
    ("Goodbye", true),
    ("Thanks", true),
    ("Order status", false),
    ("Refund request", false),
    ("Change address", false),
    ("Reset password", false),
    ("Opening hours", false),
    ("Cancel order", false),
    ("Delivery time", false),
    ("Payment issue", false),
];

const LABELS: &[&str] = &[
    "refund",
    "vip",
    "delivery",
    "complaint",
    "returning",
    "mobile",
];
const REPLY_TYPES: &[&str] = &["text", "action", "llm_answer", "carousel"];

/// One bot of the organization.
#[derive(Debug, Clone)]
pub struct Bot {
    /// 24-hex bot id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// First day the bot had conversations (earlier days have no export: 404).
    pub created: NaiveDate,
    /// Whether this bot flags "Greeting" as meaningful (so only the name filter removes it).
    pub greeting_meaningful: bool,
}

/// One recognised intent.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// When it was recognised.
    pub ts: DateTime<Utc>,
    /// Intent id.
    pub id: String,
    /// Intent name.
    pub name: &'static str,
    /// `not_meaningful`.
    pub not_meaningful: bool,
}

/// One triggered reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// When it fired.
    pub ts: DateTime<Utc>,
    /// Reply id.
    pub id: String,
    /// Reply language.
    pub language: &'static str,
    /// Reply name.
    pub name: String,
    /// Reply type.
    pub kind: &'static str,
    /// Intent it answered, if any.
    pub intent_id: Option<String>,
}

/// One version of a conversation as it appears in a day file.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Conversation id (24 hex).
    pub id: String,
    /// Index of the bot in [`World::bots`].
    pub bot: usize,
    /// CRM-side id.
    pub platform_id: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End: decides the day file.
    pub end: DateTime<Utc>,
    /// ISO language.
    pub language: &'static str,
    /// `chat` or `ticket`.
    pub channel: &'static str,
    /// Labels.
    pub labels: Vec<&'static str>,
    /// `conversations_data`: a JSON object as text, or (rarely) text that is not JSON.
    pub data: String,
    /// Whether `data` is valid JSON.
    pub data_ok: bool,
    /// Test conversation.
    pub test_mode: bool,
    /// Normalised status (`botHandled`, `agent`, …) or none.
    pub status: Option<&'static str>,
    /// Last resolution.
    pub resolution: &'static str,
    /// Intents in array order.
    pub intents: Vec<Intent>,
    /// Replies.
    pub replies: Vec<Reply>,
    /// LLM conversation.
    pub is_llm: bool,
    /// notUnderstood, responseGenerated, errorOccurred, escalationRequired, fallback.
    pub llm: [i64; 5],
    /// Bot messages (0: suggestion-engine conversation).
    pub bot_messages: i64,
    /// Visitor messages.
    pub visitor_messages: i64,
    /// Not understood messages.
    pub not_understood: i64,
    /// Appears in its day file only some hours after midnight (the file grows).
    pub late: bool,
    /// Appears twice in its day file.
    pub duplicate: bool,
    /// Re-opened: a second, later version ends on a later day.
    pub reopened: Option<Box<Conv>>,
    /// `automated_resolution` (observed field set).
    pub automated_resolution: bool,
    /// `triggered_use_cases` (observed field set).
    pub use_cases: Vec<&'static str>,
}

impl Conv {
    /// The UTC day whose file holds this version.
    pub fn end_day(&self) -> NaiveDate {
        self.end.date_naive()
    }
}

/// The whole synthetic organization.
#[derive(Debug, Clone)]
pub struct World {
    /// Seed.
    pub seed: u64,
    /// Conversations per day, all bots together.
    pub per_day: f64,
    /// The anchor day.
    pub day0: NaiveDate,
    /// Organization id.
    pub org_id: String,
    /// Bots.
    pub bots: Vec<Bot>,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Days since 1970-01-01 (for ids and seeds).
pub fn day_number(d: NaiveDate) -> i64 {
    (d - NaiveDate::default()).num_days()
}

fn at(d: NaiveDate, secs: f64) -> DateTime<Utc> {
    // Millisecond precision, as the vendor writes it.
    #[allow(clippy::cast_possible_truncation)]
    let ms = (secs * 1000.0).round() as i64;
    d.and_time(NaiveTime::MIN).and_utc() + Duration::milliseconds(ms)
}

impl World {
    /// Builds the organization for a seed, a total conversation count over [`PAST_DAYS`] and
    /// an anchor day.
    pub fn new(seed: u64, conversations: u64, day0: NaiveDate, bots: usize) -> Self {
        let bots = (0..bots.max(1))
            .map(|i| Bot {
                id: format!(
                    "64aa{:012x}{:08x}",
                    mix(seed ^ 0xb07) & 0xffff_ffff_ffff,
                    i + 1
                ),
                name: ["Support bot", "Sales bot", "Returns bot", "Billing bot"][i % 4].to_owned(),
                // The first bot has always existed; the others start later.
                created: if i == 0 {
                    day0 - Duration::days(PAST_DAYS + 1)
                } else {
                    day0 - Duration::days(20 / (i as i64))
                },
                greeting_meaningful: i % 2 == 1,
            })
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let per_day = conversations as f64 / PAST_DAYS as f64;
        Self {
            seed,
            per_day,
            day0,
            org_id: format!("{:024x}", u128::from(mix(seed ^ 0x0e9)) << 32 | 0xabcd),
            bots,
        }
    }

    /// First day with data.
    pub fn first_day(&self) -> NaiveDate {
        self.day0 - Duration::days(PAST_DAYS)
    }

    /// Index of a bot by id.
    pub fn bot_index(&self, id: &str) -> Option<usize> {
        self.bots.iter().position(|b| b.id == id)
    }

    /// Conversations of bot `b` that started on day `d` (first versions; re-opened ones carry
    /// their later version in [`Conv::reopened`]).
    pub fn started(&self, b: usize, d: NaiveDate) -> Vec<Conv> {
        let Some(bot) = self.bots.get(b) else {
            return Vec::new();
        };
        if d < self.first_day() || d < bot.created || d >= self.day0 + Duration::days(FUTURE_DAYS) {
            return Vec::new();
        }
        let dn = day_number(d);
        #[allow(clippy::cast_sign_loss)]
        let mut rng = StdRng::seed_from_u64(mix(self.seed ^ mix((dn as u64) << 8 | b as u64)));
        // The first bot takes 70 % of the traffic.
        #[allow(clippy::cast_precision_loss)]
        let share = if self.bots.len() == 1 {
            1.0
        } else if b == 0 {
            0.7
        } else {
            0.3 / (self.bots.len() - 1) as f64
        };
        let mean = self.per_day * share;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = mean.floor() as usize + usize::from(rng.random::<f64>() < mean.fract());
        (0..n)
            .map(|k| self.conversation(&mut rng, b, d, k))
            .collect()
    }

    fn conversation(&self, rng: &mut StdRng, b: usize, d: NaiveDate, k: usize) -> Conv {
        let bot = &self.bots[b];
        #[allow(clippy::cast_sign_loss)]
        let id = format!(
            "{:08x}{:02x}{:06x}{:08x}",
            day_number(d) as u32,
            b,
            k,
            mix(self.seed ^ k as u64) as u32
        );
        let channel = if rng.random::<f64>() < 0.2 {
            "ticket"
        } else {
            "chat"
        };
        let start = at(d, rng.random_range(0.0..86_400.0));
        let minutes: f64 = if channel == "ticket" {
            rng.random_range(60.0..4320.0)
        } else {
            match rng.random_range(0..100) {
                0..=69 => rng.random_range(1.0..20.0),
                70..=94 => rng.random_range(20.0..120.0),
                _ => rng.random_range(120.0..360.0),
            }
        };
        #[allow(clippy::cast_possible_truncation)]
        let end = start + Duration::milliseconds((minutes * 60_000.0) as i64);
        let lang = text::pick_lang(rng).code();
        // Intents: often a greeting first, then meaningful ones, sometimes a human request.
        let mut intents = Vec::new();
        let mut t = start + Duration::seconds(rng.random_range(1..30));
        let step = |rng: &mut StdRng, t: &mut DateTime<Utc>| {
            *t += Duration::milliseconds(rng.random_range(1_000..120_000));
            *t
        };
        let mut push = |rng: &mut StdRng, name_idx: usize, t: &mut DateTime<Utc>| {
            let (name, nm) = INTENTS[name_idx];
            let not_meaningful = if name == "Greeting" {
                !bot.greeting_meaningful
            } else {
                nm
            };
            intents.push(Intent {
                ts: step(rng, t),
                id: format!("i{:02}", name_idx),
                name,
                not_meaningful,
            });
        };
        if rng.random::<f64>() < 0.6 {
            push(rng, 0, &mut t);
        }
        for _ in 0..rng.random_range(0..4) {
            let idx = rng.random_range(2..INTENTS.len());
            push(rng, idx, &mut t);
        }
        let wants_human = rng.random::<f64>() < 0.25;
        if wants_human {
            push(rng, 1, &mut t);
        }
        // Array order is not always timestamp order: swap two elements now and then.
        if intents.len() >= 3 && rng.random::<f64>() < 0.15 {
            intents.swap(0, 2);
        }
        let fallback = rng.random::<f64>() < 0.2;
        let replies: Vec<Reply> = intents
            .iter()
            .enumerate()
            .map(|(i, it)| Reply {
                ts: it.ts + Duration::milliseconds(800),
                id: format!("r{}{:02}", it.id, i),
                language: lang,
                name: format!("{} reply", it.name),
                kind: REPLY_TYPES[rng.random_range(0..REPLY_TYPES.len())],
                intent_id: Some(it.id.clone()),
            })
            .chain(fallback.then(|| Reply {
                ts: end - Duration::seconds(5),
                id: "fallback".into(),
                language: lang,
                name: "Fallback".into(),
                kind: "text",
                intent_id: None,
            }))
            .collect();
        let suggestion = rng.random::<f64>() < 0.04;
        let visitor_messages = rng.random_range(1..12);
        let not_understood = rng.random_range(0..=visitor_messages.min(3));
        let bot_messages = if suggestion {
            0
        } else {
            visitor_messages + rng.random_range(0..4)
        };
        let status = if channel == "ticket" {
            [
                Some("answered"),
                Some("escalated"),
                Some("notUnderstood"),
                Some("botHandled"),
            ][rng.random_range(0..4)]
        } else if wants_human {
            [
                Some("agent"),
                Some("agent"),
                Some("email"),
                Some("customEscalation"),
                Some("failedEscalation"),
            ][rng.random_range(0..5)]
        } else {
            match rng.random_range(0..20) {
                0 => None,
                1 => Some("customEscalation"),
                2..=4 => Some("failedEscalation"),
                _ => Some("botHandled"),
            }
        };
        let resolution = if matches!(status, Some("agent" | "email" | "customEscalation")) {
            "escalated"
        } else {
            [
                "informed",
                "informed",
                "resolved",
                "resolved",
                "undefined",
                "unresolved",
            ][rng.random_range(0..6)]
        };
        let is_llm = rng.random::<f64>() < 0.4;
        let llm = if is_llm {
            [0, 1, 2, 3, 4].map(|_| rng.random_range(0..4))
        } else {
            [0; 5]
        };
        let name = text::person_name(rng);
        let data_ok = rng.random::<f64>() >= 0.03;
        let data = if data_ok {
            serde_json::json!({
                "order_id": format!("A-{}", rng.random_range(1000..99999)),
                "escalation_wish": wants_human,
                "customer_name": name,
                "customer_email": text::email(&name, rng.random_range(1..10_000)),
            })
            .to_string()
        } else {
            format!("{{order_id: A-{}", rng.random_range(1000..9999))
        };
        let labels: Vec<&'static str> = LABELS
            .iter()
            .copied()
            .filter(|_| rng.random::<f64>() < 0.15)
            .collect();
        let late = rng.random::<f64>() < 0.06;
        let duplicate = rng.random::<f64>() < 0.03;
        let reopen = rng.random::<f64>() < 0.03;
        let mut conv = Conv {
            id,
            bot: b,
            platform_id: format!(
                "{:012x}",
                mix(self.seed ^ 0x91a7 ^ (k as u64) << 20 ^ day_number(d).unsigned_abs())
                    & 0xffff_ffff_ffff
            ),
            start,
            end,
            language: lang,
            channel,
            labels,
            data,
            data_ok,
            test_mode: rng.random::<f64>() < 0.03,
            status,
            resolution,
            intents,
            replies,
            is_llm,
            llm,
            bot_messages,
            visitor_messages,
            not_understood,
            late,
            duplicate,
            reopened: None,
            automated_resolution: matches!(resolution, "informed" | "resolved"),
            use_cases: if wants_human {
                vec!["handover"]
            } else {
                vec!["self_service"]
            },
        };
        if reopen {
            // The visitor comes back the next morning: a later version ends on the next day,
            // with one more intent and an escalation.
            let mut v2 = conv.clone();
            let next_midnight = (conv.end_day() + Duration::days(1))
                .and_time(NaiveTime::MIN)
                .and_utc();
            v2.end = next_midnight + Duration::minutes(rng.random_range(60..600));
            let ts = v2.end - Duration::minutes(10);
            v2.intents.push(Intent {
                ts,
                id: "i01".into(),
                name: INTENTS[1].0,
                not_meaningful: INTENTS[1].1,
            });
            v2.status = Some("agent");
            v2.resolution = "escalated";
            v2.visitor_messages += 2;
            v2.bot_messages += 2;
            v2.late = false;
            v2.duplicate = false;
            conv.reopened = Some(Box::new(v2));
        }
        conv
    }

    /// Every version whose day file is day `x` for bot `b` (before availability filtering).
    pub fn ending_on(&self, b: usize, x: NaiveDate) -> Vec<Conv> {
        let mut out = Vec::new();
        for back in 0..=MAX_SPAN_DAYS {
            for c in self.started(b, x - Duration::days(back)) {
                if let Some(v2) = &c.reopened
                    && v2.end_day() == x
                {
                    out.push((**v2).clone());
                }
                if c.end_day() == x {
                    out.push(c);
                }
            }
        }
        out.sort_by(|a, b| a.end.cmp(&b.end).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// Whether bot `b`'s day file `x` has a malformed line.
    pub fn has_malformed_line(&self, b: usize, x: NaiveDate) -> bool {
        #[allow(clippy::cast_sign_loss)]
        let h = mix(self.seed ^ 0x6a1f ^ ((day_number(x) as u64) << 4) ^ b as u64);
        h.is_multiple_of(3)
    }
}
