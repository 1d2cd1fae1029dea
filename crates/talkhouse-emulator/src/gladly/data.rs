//! The emulated Gladly organisation: every record is a pure function of the seed, the start
//! clock and an index, so nothing is held in memory and any record can be served by id.
//!
//! Regular conversations sit on a time grid: conversation `i` starts in slot `i` of
//! `30 days / n` after `origin = start clock − 30 days` and belongs to customer `i mod C`
//! (`C = n / 2`, so a customer's conversations are 15 days apart). The grid goes on past the
//! start clock, so new conversations appear as the clock advances. A few *special*
//! conversations and customers, laid out relative to the start day `day0`, carry the
//! data-model rules (merges, deletions, an inbox change, a conversation of more than 1,000
//! items, every content type).

use chrono::{DateTime, Duration, DurationRound, SecondsFormat, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::EmulatorOptions;
use crate::text::{self, Lang};

/// Base of the special (scenario) conversation and customer indices.
pub const SPECIAL: u64 = 1 << 40;

/// Special conversations (index = `SPECIAL + n`); each has its own special customer.
pub mod special {
    /// Customer merged away (rule: 301 `moved`), its conversation keeps its id.
    pub const MERGE_SRC: u64 = 0;
    /// The surviving customer of `MERGE_SRC`.
    pub const MERGE_DST: u64 = 1;
    /// OPEN conversation merged into `OPEN_DST`: its id 404s, its items move with new ids.
    pub const OPEN_SRC: u64 = 2;
    /// OPEN conversation that survives the OPEN→OPEN merge.
    pub const OPEN_DST: u64 = 3;
    /// Customer deleted on request (GDPR/CCPA): customer and conversation 404.
    pub const GDPR: u64 = 4;
    /// Conversation whose inbox changes after the start clock.
    pub const INBOX_MOVE: u64 = 5;
    /// Conversation of more than 1,000 items.
    pub const LONG: u64 = 6;
    /// Conversation with every content type (unknown one included).
    pub const ALL_TYPES: u64 = 7;
    /// How many special conversations there are.
    pub const COUNT: u64 = 8;
}

/// Items in the long conversation.
pub const LONG_ITEMS: u32 = 1100;

/// Id kinds (first byte of a decoded id).
pub mod kind {
    /// Conversation.
    pub const CONVERSATION: u8 = b'C';
    /// Conversation item.
    pub const ITEM: u8 = b'I';
    /// An item that moved to another conversation in an OPEN→OPEN merge (new id).
    pub const MOVED_ITEM: u8 = b'M';
    /// A customer activity outside any conversation.
    pub const ACTIVITY: u8 = b'Y';
    /// Customer.
    pub const CUSTOMER: u8 = b'U';
    /// Agent.
    pub const AGENT: u8 = b'A';
    /// Inbox.
    pub const INBOX: u8 = b'B';
    /// Topic.
    pub const TOPIC: u8 = b'T';
    /// Team.
    pub const TEAM: u8 = b'G';
    /// Export job (index = UTC day number).
    pub const JOB: u8 = b'J';
    /// Export schedule.
    pub const SCHEDULE: u8 = b'S';
    /// Contact (of the Reports API; index = conversation key).
    pub const CONTACT: u8 = b'K';
    /// Work session (index = conversation key, sub = its agent's place).
    pub const WORK_SESSION: u8 = b'W';
    /// The organisation.
    pub const ORGANIZATION: u8 = b'O';
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A stable hash of a few numbers.
pub fn mix(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x5151_u64, |h, p| splitmix(h ^ splitmix(*p)))
}

/// Content types of conversation items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct {
    /// CHAT_MESSAGE.
    Chat,
    /// CONVERSATION_STATUS_CHANGE.
    Status,
    /// CUSTOMER_ACTIVITY.
    Activity,
    /// EMAIL.
    Email,
    /// FACEBOOK_MESSAGE.
    Facebook,
    /// CONVERSATION_NOTE.
    Note,
    /// PHONE_CALL.
    Phone,
    /// SMS.
    Sms,
    /// TOPIC_CHANGE.
    Topic,
    /// VOICEMAIL.
    Voicemail,
    /// INSTAGRAM_DIRECT.
    Instagram,
    /// WHATSAPP.
    Whatsapp,
    /// VOICE_AI_MESSAGE (switch `gladly.extra_types`).
    VoiceAi,
    /// TWITTER (switch `gladly.extra_types`).
    Twitter,
    /// A type this emulator invents to stand for future ones (`VIDEO_CALL`).
    Unknown,
}

impl Ct {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Ct::Chat => "CHAT_MESSAGE",
            Ct::Status => "CONVERSATION_STATUS_CHANGE",
            Ct::Activity => "CUSTOMER_ACTIVITY",
            Ct::Email => "EMAIL",
            Ct::Facebook => "FACEBOOK_MESSAGE",
            Ct::Note => "CONVERSATION_NOTE",
            Ct::Phone => "PHONE_CALL",
            Ct::Sms => "SMS",
            Ct::Topic => "TOPIC_CHANGE",
            Ct::Voicemail => "VOICEMAIL",
            Ct::Instagram => "INSTAGRAM_DIRECT",
            Ct::Whatsapp => "WHATSAPP",
            Ct::VoiceAi => "VOICE_AI_MESSAGE",
            Ct::Twitter => "TWITTER",
            Ct::Unknown => "VIDEO_CALL",
        }
    }

    /// Whether talkhouse counts it as a message of `talkhouse.messages`.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            Ct::Chat
                | Ct::Email
                | Ct::Facebook
                | Ct::Phone
                | Ct::Sms
                | Ct::Voicemail
                | Ct::Instagram
                | Ct::Whatsapp
                | Ct::VoiceAi
                | Ct::Twitter
        )
    }
}

/// Who wrote an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The customer.
    Customer,
    /// The assigned agent.
    Agent,
    /// Gladly's AI (Sidekick).
    Sidekick,
    /// An automation rule.
    Automation,
}

/// One item of a conversation, before rendering.
#[derive(Debug, Clone)]
pub struct ItemSpec {
    /// Position in its conversation.
    pub pos: u32,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Content type.
    pub ct: Ct,
    /// Author.
    pub who: Who,
    /// Message text, if any.
    pub text: String,
    /// For chat: quick reply request (1) or response (2).
    pub quick: u8,
    /// For status changes: the new status.
    pub closes: bool,
    /// Fraction digits in the timestamp (0–9).
    pub digits: u8,
}

/// A conversation, before rendering.
#[derive(Debug, Clone)]
pub struct ConvSpec {
    /// Index (regular `i`, or `SPECIAL + n`).
    pub key: u64,
    /// The customer it was created for (before merges).
    pub customer: u64,
    /// Creation time.
    pub start: DateTime<Utc>,
    /// Assigned agent index.
    pub agent: u32,
    /// Inbox index.
    pub inbox: u32,
    /// Topic indices applied.
    pub topics: Vec<u32>,
    /// Its items, in time order.
    pub items: Vec<ItemSpec>,
    /// When it closed, if it did.
    pub closed_at: Option<DateTime<Utc>>,
    /// Message language.
    pub lang: Lang,
}

/// One export job (one per UTC day).
#[derive(Debug, Clone)]
pub struct Job {
    /// UTC day number.
    pub day: i64,
    /// Start of the day it covers.
    pub day_start: DateTime<Utc>,
    /// When it finished (or will).
    pub updated_at: DateTime<Utc>,
    /// Ended FAILED.
    pub failed: bool,
    /// Quirk of its files.
    pub quirk: Quirk,
}

/// What is odd about a job's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// Nothing.
    None,
    /// `conversation_items.jsonl` has a blank and a malformed line.
    Malformed,
    /// No `agents.jsonl` (not in `files`, 404).
    NoAgents,
    /// `topics.jsonl` is empty (0 bytes).
    EmptyTopics,
    /// `customers.jsonl` lacks its trailing newline.
    NoTrailingNewline,
}

/// The whole synthetic organisation.
#[derive(Debug, Clone)]
pub struct World {
    /// Seed.
    pub seed: u64,
    /// Conversations over 30 days.
    pub n: u64,
    /// Regular customers.
    pub customers: u64,
    /// Agents.
    pub agents: u32,
    /// Inboxes.
    pub inboxes: u32,
    /// Topics.
    pub topics: u32,
    /// Teams.
    pub teams: u32,
    /// Clock when the emulator was built.
    pub t0: DateTime<Utc>,
    /// `t0` truncated to the UTC day.
    pub day0: DateTime<Utc>,
    /// `t0 − 30 days`.
    pub origin: DateTime<Utc>,
    slot_us: i64,
    /// VOICE_AI_MESSAGE and TWITTER items appear (`gladly.extra_types`).
    pub extra_types: bool,
    /// `recordingDuration` as a string (`gladly.duration_string`).
    pub duration_string: bool,
    /// `topics.jsonl` carries `parentId` (`gladly.topic_parent_in_file`).
    pub topic_parent_in_file: bool,
    /// agents/topics files hold everyone, not only the job's (`gladly.population_files=full`).
    pub full_population: bool,
    /// The organisation's zone, in which its reports count days (`gladly.org_timezone`,
    /// default `America/New_York`).
    pub timezone: chrono_tz::Tz,
}

/// Regular conversations last at most this long.
const MAX_DURATION_H: i64 = 20;

impl World {
    /// Builds the organisation for these options.
    pub fn new(opts: &EmulatorOptions) -> Self {
        let n = opts.conversations();
        let t0 = opts.clock.now();
        let day0 = t0.duration_trunc(Duration::days(1)).unwrap_or(t0);
        let origin = t0 - Duration::days(30);
        let slot_us = (Duration::days(30).num_microseconds().unwrap_or(1)
            / i64::try_from(n).unwrap_or(1))
        .max(1);
        let agents = u32::try_from((n / 50).clamp(6, 200)).unwrap_or(6);
        let v = &opts.variants;
        Self {
            seed: opts.seed,
            n,
            customers: (n / 2).max(2),
            agents,
            inboxes: 5,
            topics: 12,
            teams: 3,
            t0,
            day0,
            origin,
            slot_us,
            extra_types: v.on("gladly.extra_types"),
            duration_string: v.on("gladly.duration_string"),
            topic_parent_in_file: v.on("gladly.topic_parent_in_file"),
            full_population: v.get_or("gladly.population_files", "scoped") == "full",
            timezone: v
                .get_or("gladly.org_timezone", "America/New_York")
                .parse()
                .unwrap_or(chrono_tz::Tz::America__New_York),
        }
    }

    // ----- ids ---------------------------------------------------------------------------

    /// The id of a record: 16 bytes (kind, index, sub, check), scrambled by the seed, as
    /// 22-character URL-safe base64.
    pub fn id(&self, kind: u8, index: u64, sub: u32) -> String {
        use base64::Engine;
        let mut b = [0u8; 16];
        b[0] = kind;
        b[1..9].copy_from_slice(&index.to_be_bytes());
        b[9..13].copy_from_slice(&sub.to_be_bytes());
        let check = mix(&[self.seed, u64::from(kind), index, u64::from(sub)]).to_be_bytes();
        b[13..16].copy_from_slice(&check[..3]);
        let key = mix(&[self.seed, 0xC0DE]).to_be_bytes();
        let key2 = mix(&[self.seed, 0xF00D]).to_be_bytes();
        for i in 0..15 {
            let k = if i < 8 { key[i] } else { key2[i - 8] };
            b[i + 1] ^= k;
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    /// Decodes an id made by [`World::id`]: `(kind, index, sub)`.
    pub fn parse_id(&self, id: &str) -> Option<(u8, u64, u32)> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(id)
            .ok()?;
        let mut b: [u8; 16] = raw.try_into().ok()?;
        let key = mix(&[self.seed, 0xC0DE]).to_be_bytes();
        let key2 = mix(&[self.seed, 0xF00D]).to_be_bytes();
        for i in 0..15 {
            let k = if i < 8 { key[i] } else { key2[i - 8] };
            b[i + 1] ^= k;
        }
        let kind = b[0];
        let index = u64::from_be_bytes(b[1..9].try_into().ok()?);
        let sub = u32::from_be_bytes(b[9..13].try_into().ok()?);
        (self.id(kind, index, sub) == id).then_some((kind, index, sub))
    }

    // ----- time grid -----------------------------------------------------------------------

    /// Index of the regular conversation whose slot holds `t` (negative before the origin).
    pub fn slot_of(&self, t: DateTime<Utc>) -> i64 {
        (t - self.origin)
            .num_microseconds()
            .unwrap_or(0)
            .div_euclid(self.slot_us)
    }

    /// Regular conversations that may have items in `[from, to)`.
    pub fn regular_range(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> std::ops::Range<u64> {
        let lo = self.slot_of(from - Duration::hours(MAX_DURATION_H)).max(0);
        let hi = (self.slot_of(to) + 1).max(0);
        u64::try_from(lo).unwrap_or(0)..u64::try_from(hi).unwrap_or(0)
    }

    fn h(&self, hours: i64, minutes: i64) -> DateTime<Utc> {
        self.day0 + Duration::hours(hours) + Duration::minutes(minutes)
    }

    // ----- merges and deletions ---------------------------------------------------------

    /// When customer `c` was merged away, and into whom.
    pub fn merge_of(&self, c: u64) -> Option<(u64, DateTime<Utc>)> {
        match c.checked_sub(SPECIAL)? {
            special::MERGE_SRC => Some((SPECIAL + special::MERGE_DST, self.h(-48, 0))),
            special::OPEN_SRC => Some((SPECIAL + special::OPEN_DST, self.h(-24 + 6, 0))),
            _ => None,
        }
    }

    /// When customer `c` was deleted on request.
    pub fn customer_deleted_at(&self, c: u64) -> Option<DateTime<Utc>> {
        (c == SPECIAL + special::GDPR).then(|| self.h(-24 + 12, 0))
    }

    /// When conversation `key` stopped existing (404).
    pub fn conversation_deleted_at(&self, key: u64) -> Option<DateTime<Utc>> {
        match key.checked_sub(SPECIAL)? {
            special::OPEN_SRC => self.merge_of(SPECIAL + special::OPEN_SRC).map(|(_, t)| t),
            special::GDPR => self.customer_deleted_at(SPECIAL + special::GDPR),
            _ => None,
        }
    }

    /// The customer a conversation belongs to at `as_of`.
    pub fn customer_at(&self, conv: &ConvSpec, as_of: DateTime<Utc>) -> u64 {
        match self.merge_of(conv.customer) {
            Some((to, at)) if as_of >= at || conv.start >= at => to,
            _ => conv.customer,
        }
    }

    /// The OPEN→OPEN merge: (loser, survivor, when).
    pub fn open_merge(&self) -> (u64, u64, DateTime<Utc>) {
        let at = self
            .merge_of(SPECIAL + special::OPEN_SRC)
            .map_or(self.t0, |(_, t)| t);
        (SPECIAL + special::OPEN_SRC, SPECIAL + special::OPEN_DST, at)
    }

    // ----- conversations -----------------------------------------------------------------

    /// Conversation `key` as generated (regardless of the clock).
    pub fn conversation(&self, key: u64) -> Option<ConvSpec> {
        if key >= SPECIAL {
            let s = key - SPECIAL;
            return (s < special::COUNT).then(|| self.special_conversation(s));
        }
        let mut rng = StdRng::seed_from_u64(mix(&[self.seed, u64::from(kind::CONVERSATION), key]));
        let jitter = rng.random_range(0..(self.slot_us / 2).max(1));
        let start = self.origin
            + Duration::microseconds(
                i64::try_from(key).unwrap_or(0).saturating_mul(self.slot_us) + jitter,
            );
        let channel = match rng.random_range(0..100) {
            0..40 => Ct::Chat,
            40..60 => Ct::Email,
            60..75 => Ct::Sms,
            75..85 => Ct::Phone,
            85..89 => Ct::Facebook,
            89..92 => Ct::Instagram,
            92..97 => Ct::Whatsapp,
            _ => Ct::Voicemail,
        };
        let channel = if self.extra_types && rng.random_range(0..40) == 0 {
            if channel == Ct::Phone {
                Ct::VoiceAi
            } else {
                Ct::Twitter
            }
        } else {
            channel
        };
        let mut c = self.base_conv(key, key % self.customers, start, &mut rng);
        let turns: u32 = match channel {
            Ct::Phone | Ct::Voicemail => 1,
            _ => rng.random_range(2..8),
        };
        let gap = |rng: &mut StdRng| -> Duration {
            match channel {
                Ct::Chat => Duration::seconds(rng.random_range(20..300)),
                Ct::Email => Duration::minutes(rng.random_range(10..180)),
                _ => Duration::minutes(rng.random_range(1..60)),
            }
        };
        let tone = text::pick_tone(&mut rng);
        let mut at = start;
        for t in 0..turns {
            let who = if t.is_multiple_of(2) {
                Who::Customer
            } else {
                Who::Agent
            };
            let (ct, who) = if channel == Ct::Voicemail {
                (Ct::Voicemail, Who::Customer)
            } else {
                (channel, who)
            };
            let text = match who {
                Who::Customer => text::customer(&mut rng, c.lang, tone),
                _ => text::agent(&mut rng, c.lang),
            };
            self.push(&mut c, &mut rng, at, ct, who, text);
            at += gap(&mut rng);
            if t == 1 && rng.random_range(0..3) == 0 {
                let tp = c.topics.clone();
                let _ = tp;
                self.push(&mut c, &mut rng, at, Ct::Topic, Who::Agent, String::new());
                at += Duration::seconds(5);
            }
            if t == 2 && rng.random_range(0..5) == 0 {
                self.push(
                    &mut c,
                    &mut rng,
                    at,
                    Ct::Note,
                    Who::Agent,
                    "Customer asked for a callback.".into(),
                );
                at += Duration::seconds(30);
            }
        }
        if rng.random_range(0..60) == 0 {
            self.push(&mut c, &mut rng, at, Ct::Unknown, Who::Agent, String::new());
            at += Duration::seconds(10);
        }
        self.close(&mut c, &mut rng, at + Duration::minutes(5));
        Some(c)
    }

    fn base_conv(
        &self,
        key: u64,
        customer: u64,
        start: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> ConvSpec {
        let lang = text::pick_lang(rng);
        let agent = rng.random_range(0..self.agents);
        let inbox = rng.random_range(0..self.inboxes);
        let mut topics = vec![rng.random_range(0..self.topics)];
        if rng.random_range(0..3) == 0 {
            topics.push(rng.random_range(0..self.topics));
            topics.dedup();
        }
        ConvSpec {
            key,
            customer,
            start,
            agent,
            inbox,
            topics,
            items: Vec::new(),
            closed_at: None,
            lang,
        }
    }

    fn push(
        &self,
        c: &mut ConvSpec,
        rng: &mut StdRng,
        at: DateTime<Utc>,
        ct: Ct,
        who: Who,
        text: String,
    ) {
        let pos = u32::try_from(c.items.len()).unwrap_or(u32::MAX);
        c.items.push(ItemSpec {
            pos,
            at,
            ct,
            who,
            text,
            quick: 0,
            closes: false,
            digits: rng.random_range(0..10),
        });
    }

    fn close(&self, c: &mut ConvSpec, rng: &mut StdRng, at: DateTime<Utc>) {
        self.push(c, rng, at, Ct::Status, Who::Agent, String::new());
        if let Some(last) = c.items.last_mut() {
            last.closes = true;
        }
        c.closed_at = Some(at);
    }

    fn special_conversation(&self, s: u64) -> ConvSpec {
        let mut rng = StdRng::seed_from_u64(mix(&[self.seed, 0x5BEC, s]));
        let key = SPECIAL + s;
        let start = match s {
            special::MERGE_SRC => self.h(-5 * 24 + 10, 0),
            special::MERGE_DST => self.h(-4 * 24 + 10, 0),
            special::OPEN_SRC => self.h(-2 * 24 + 10, 0),
            special::OPEN_DST => self.h(-2 * 24 + 10, 30),
            special::GDPR => self.h(-3 * 24 + 9, 0),
            special::INBOX_MOVE => self.h(-24 + 20, 0),
            special::LONG => self.h(-2 * 24 + 1, 0),
            _ => self.h(-2 * 24 + 14, 0),
        };
        let mut c = self.base_conv(key, key, start, &mut rng);
        c.inbox = 0;
        let tone = text::pick_tone(&mut rng);
        let chat = |c: &mut ConvSpec, rng: &mut StdRng, n: u32, ct: Ct, step: Duration| {
            let mut at = c.items.last().map_or(c.start, |i| i.at + step);
            for t in 0..n {
                let who = if t.is_multiple_of(2) {
                    Who::Customer
                } else {
                    Who::Agent
                };
                let text = if who == Who::Customer {
                    text::customer(rng, c.lang, tone)
                } else {
                    text::agent(rng, c.lang)
                };
                self.push(c, rng, at, ct, who, text);
                at += step;
            }
        };
        match s {
            special::MERGE_SRC | special::GDPR => {
                chat(
                    &mut c,
                    &mut rng,
                    4,
                    if s == special::GDPR {
                        Ct::Email
                    } else {
                        Ct::Chat
                    },
                    Duration::minutes(3),
                );
                let end = c.items.last().map_or(start, |i| i.at) + Duration::minutes(5);
                self.close(&mut c, &mut rng, end);
            }
            special::MERGE_DST => {
                chat(&mut c, &mut rng, 3, Ct::Email, Duration::minutes(40));
                let end = c.items.last().map_or(start, |i| i.at) + Duration::minutes(5);
                self.close(&mut c, &mut rng, end);
            }
            special::OPEN_SRC => chat(&mut c, &mut rng, 4, Ct::Chat, Duration::minutes(30)),
            special::OPEN_DST => {
                chat(&mut c, &mut rng, 3, Ct::Sms, Duration::minutes(30));
                // After the merge: the agent answers in the surviving conversation.
                let text = text::agent(&mut rng, c.lang);
                self.push(
                    &mut c,
                    &mut rng,
                    self.h(-24 + 8, 0),
                    Ct::Sms,
                    Who::Agent,
                    text,
                );
            }
            special::INBOX_MOVE => {
                chat(&mut c, &mut rng, 3, Ct::Chat, Duration::minutes(10));
                let text = text::agent(&mut rng, c.lang);
                self.push(&mut c, &mut rng, self.h(20, 0), Ct::Chat, Who::Agent, text);
                self.close(&mut c, &mut rng, self.h(21, 0));
            }
            special::LONG => {
                chat(
                    &mut c,
                    &mut rng,
                    LONG_ITEMS - 1,
                    Ct::Chat,
                    Duration::seconds(25),
                );
                let end = c.items.last().map_or(start, |i| i.at) + Duration::minutes(1);
                self.close(&mut c, &mut rng, end);
            }
            _ => {
                let step = Duration::minutes(2);
                let mut at = start;
                let mut types = vec![
                    (Ct::Chat, Who::Customer, 0u8),
                    (Ct::Chat, Who::Sidekick, 1),
                    (Ct::Chat, Who::Customer, 2),
                    (Ct::Email, Who::Customer, 0),
                    (Ct::Email, Who::Agent, 0),
                    (Ct::Sms, Who::Customer, 0),
                    (Ct::Facebook, Who::Customer, 0),
                    (Ct::Instagram, Who::Customer, 0),
                    (Ct::Whatsapp, Who::Customer, 0),
                    (Ct::Phone, Who::Customer, 0),
                    (Ct::Voicemail, Who::Customer, 0),
                    (Ct::Note, Who::Agent, 0),
                    (Ct::Topic, Who::Agent, 0),
                    (Ct::Activity, Who::Automation, 0),
                    (Ct::Unknown, Who::Agent, 0),
                ];
                if self.extra_types {
                    types.push((Ct::VoiceAi, Who::Sidekick, 0));
                    types.push((Ct::Twitter, Who::Customer, 0));
                }
                for (ct, who, quick) in types {
                    let text = match who {
                        Who::Customer => text::customer(&mut rng, c.lang, tone),
                        Who::Sidekick | Who::Automation => text::bot(&mut rng, c.lang),
                        Who::Agent => text::agent(&mut rng, c.lang),
                    };
                    self.push(&mut c, &mut rng, at, ct, who, text);
                    if let Some(last) = c.items.last_mut() {
                        last.quick = quick;
                    }
                    at += step;
                }
                self.close(&mut c, &mut rng, at);
            }
        }
        c
    }

    /// The inbox of a conversation at `as_of`.
    pub fn inbox_at(&self, c: &ConvSpec, as_of: DateTime<Utc>) -> u32 {
        if c.key == SPECIAL + special::INBOX_MOVE && as_of >= self.inbox_move_at() {
            1
        } else {
            c.inbox
        }
    }

    /// When the inbox of the `INBOX_MOVE` conversation changes.
    pub fn inbox_move_at(&self) -> DateTime<Utc> {
        self.h(18, 0)
    }

    /// Items of conversation `c` as they stand at `as_of` (ids, owners and moves applied):
    /// `(item id, conversation key it now belongs to, spec)`. The OPEN→OPEN survivor includes
    /// the loser's items under new ids.
    pub fn items_at(&self, c: &ConvSpec, as_of: DateTime<Utc>) -> Vec<(String, u64, ItemSpec)> {
        let mut out: Vec<(String, u64, ItemSpec)> = c
            .items
            .iter()
            .filter(|i| i.at <= as_of)
            .map(|i| (self.id(kind::ITEM, c.key, i.pos), c.key, i.clone()))
            .collect();
        let (loser, survivor, at) = self.open_merge();
        if c.key == survivor && as_of >= at {
            if let Some(l) = self.conversation(loser) {
                out.extend(
                    l.items
                        .iter()
                        .filter(|i| i.at <= as_of)
                        .map(|i| (self.id(kind::MOVED_ITEM, loser, i.pos), survivor, i.clone())),
                );
            }
            out.sort_by_key(|(_, _, i)| i.at);
        }
        out
    }

    /// Whether conversation `key` answers at `as_of`.
    pub fn conversation_exists(&self, c: &ConvSpec, as_of: DateTime<Utc>) -> bool {
        c.start <= as_of
            && self
                .conversation_deleted_at(c.key)
                .is_none_or(|d| as_of < d)
    }

    // ----- rendering -----------------------------------------------------------------------

    /// RFC 3339 with `digits` fraction digits.
    pub fn ts(t: DateTime<Utc>, digits: u8) -> String {
        let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
        if digits == 0 {
            return format!("{base}Z");
        }
        let nanos = format!("{:09}", t.timestamp_subsec_nanos());
        let d = usize::from(digits.min(9));
        format!("{base}.{}Z", &nanos[..d])
    }

    fn ts3(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// A rendered conversation item.
    pub fn render_item(
        &self,
        id: &str,
        conv_key: u64,
        c: &ConvSpec,
        i: &ItemSpec,
        as_of: DateTime<Utc>,
    ) -> Value {
        let customer = self.customer_id(self.customer_at(c, as_of));
        let agent = self.id(kind::AGENT, u64::from(c.agent), 0);
        let initiator = match i.who {
            Who::Customer => json!({"id": customer, "type": "CUSTOMER"}),
            Who::Agent => json!({"id": agent, "type": "AGENT"}),
            Who::Sidekick => json!({"id": "SIDEKICK_V2", "type": "SYSTEM"}),
            Who::Automation => json!({"id": "rule-autoreply", "type": "AUTOMATION"}),
        };
        let session = self.id(b'E', conv_key, 0);
        let phone_c = text::phone(c.customer % 10_000_000);
        let phone_o = "+14155550199";
        let email_c = self.customer_email(c.customer);
        let attach = |n: u32| -> Value {
            if n == 0 {
                json!([])
            } else {
                json!([{"id": self.id(b'F', c.key, i.pos), "contentType": "image/png", "filename": "receipt.png", "fileSize": 20_480}])
            }
        };
        let with_attach = u32::from(i.pos % 7 == 3);
        let duration: Value = if self.duration_string {
            json!("95")
        } else {
            json!(95)
        };
        let content = match i.ct {
            Ct::Chat => {
                let mut v = json!({"type": "CHAT_MESSAGE", "messageType": "TEXT", "sessionId": session, "content": i.text, "attachments": attach(with_attach)});
                if i.quick == 1 {
                    v["messageType"] = json!("QUICK_REPLY_REQUEST");
                    v["messageData"] = json!({"options": [{"id": "o1", "label": "Track order"}, {"id": "o2", "label": "Returns"}]});
                } else if i.quick == 2 {
                    v["messageType"] = json!("QUICK_REPLY_RESPONSE");
                    v["messageData"] = json!({"quickReplyRequest": {"options": [{"id": "o1", "label": "Track order"}, {"id": "o2", "label": "Returns"}]}, "selectedOptionId": "o1", "requestMessageId": self.id(kind::ITEM, conv_key, i.pos.saturating_sub(1))});
                }
                v
            }
            Ct::Status => {
                json!({"type": "CONVERSATION_STATUS_CHANGE", "status": if i.closes { "CLOSED" } else { "OPEN" }})
            }
            Ct::Activity => {
                json!({"type": "CUSTOMER_ACTIVITY", "title": "Order shipped", "body": format!("<p>{}</p>", i.text), "activityType": "EMAIL", "sourceName": "Shop", "link": {"url": "https://shop.example.com/o/1", "text": "Order"}, "expandByDefault": false, "occurredAt": Self::ts3(i.at), "receivedAt": Self::ts3(i.at)})
            }
            Ct::Email => {
                let (from, to) = if i.who == Who::Customer {
                    (email_c.clone(), "support@acme.example".to_owned())
                } else {
                    ("support@acme.example".to_owned(), email_c.clone())
                };
                json!({"type": "EMAIL", "from": from, "to": [to], "cc": [], "bcc": [], "subject": "Your order", "content": i.text, "attachments": attach(with_attach)})
            }
            Ct::Facebook => {
                json!({"type": "FACEBOOK_MESSAGE", "pageId": "fbpage-1", "userId": format!("fbuser-{}", c.customer % 100_000), "content": i.text, "attachments": attach(with_attach)})
            }
            Ct::Note => json!({"type": "CONVERSATION_NOTE", "body": i.text, "attachments": []}),
            Ct::Phone => {
                json!({"type": "PHONE_CALL", "from": phone_c, "to": phone_o, "startedAt": Self::ts3(i.at), "answeredAt": Self::ts3(i.at + Duration::seconds(4)), "completedAt": Self::ts3(i.at + Duration::seconds(99)), "recordingStatus": "AVAILABLE", "recordingUrl": format!("/api/v1/conversation-items/{id}/media/recording"), "recordingDuration": duration, "recordingSummary": {"status": "READY", "summary": i.text, "language": c.lang.code()}})
            }
            Ct::Sms => {
                let (from, to) = if i.who == Who::Customer {
                    (phone_c.clone(), phone_o.to_owned())
                } else {
                    (phone_o.to_owned(), phone_c.clone())
                };
                json!({"type": "SMS", "from": from, "to": to, "content": i.text, "attachments": []})
            }
            Ct::Topic => {
                let mut v = json!({"type": "TOPIC_CHANGE", "addedTopicIds": c.topics.iter().map(|t| self.id(kind::TOPIC, u64::from(*t), 0)).collect::<Vec<_>>()});
                if i.pos % 2 == 1 {
                    v["removedTopicIds"] = json!([]);
                }
                v
            }
            Ct::Voicemail => {
                json!({"type": "VOICEMAIL", "startedAt": Self::ts3(i.at), "recordingStatus": "AVAILABLE", "recordingUrl": format!("/api/v1/conversation-items/{id}/media/recording"), "recordingDuration": duration, "recordingSummary": {"status": "READY", "summary": i.text, "language": c.lang.code()}})
            }
            Ct::Instagram => {
                json!({"type": "INSTAGRAM_DIRECT", "content": i.text, "attachments": []})
            }
            Ct::Whatsapp => {
                json!({"type": "WHATSAPP", "content": i.text, "attachments": attach(with_attach)})
            }
            Ct::VoiceAi => {
                json!({"type": "VOICE_AI_MESSAGE", "customerNumber": phone_c, "companyNumber": phone_o, "body": i.text, "status": "PLAYED"})
            }
            Ct::Twitter => json!({"type": "TWITTER", "content": i.text}),
            Ct::Unknown => {
                json!({"type": "VIDEO_CALL", "durationSeconds": 42, "provider": "future"})
            }
        };
        let mut v = json!({
            "id": id,
            "conversationId": self.id(kind::CONVERSATION, conv_key, 0),
            "customerId": customer,
            "timestamp": Self::ts(i.at, i.digits),
            "initiator": initiator,
            "content": content,
        });
        if i.ct == Ct::Phone {
            v["responder"] = json!({"id": agent, "type": "AGENT"});
        }
        if i.ct == Ct::VoiceAi {
            v["sessionId"] = json!(session);
        }
        v
    }

    /// The customer activity outside any conversation of UTC day `day` (one per day).
    /// `None` before the first customer exists.
    pub fn activity(&self, day: i64) -> Option<(String, u64, DateTime<Utc>)> {
        let start = Utc.timestamp_opt(day * 86_400, 0).single()?;
        let at = start + Duration::hours(13) + Duration::minutes(7);
        // The customer of a conversation that started the day before: it exists by then.
        let idx = u64::try_from(self.slot_of(start - Duration::days(1))).ok()?;
        Some((
            self.id(kind::ACTIVITY, u64::try_from(day).unwrap_or(0), 0),
            idx % self.customers,
            at,
        ))
    }

    /// A rendered activity (no `conversationId`).
    pub fn render_activity(&self, day: i64) -> Value {
        let Some((id, customer, at)) = self.activity(day) else {
            return Value::Null;
        };
        json!({
            "id": id,
            "customerId": self.customer_id(customer),
            "timestamp": Self::ts(at, 3),
            "initiator": {"id": "api-user", "type": "API"},
            "content": {"type": "CUSTOMER_ACTIVITY", "title": "Survey answered", "body": "<p>Rated us 5/5</p>", "activityType": "SURVEY", "sourceName": "Surveys", "expandByDefault": true, "receivedAt": Self::ts3(at)},
        })
    }

    // ----- customers, agents, inboxes, topics ------------------------------------------------

    /// A customer's id.
    pub fn customer_id(&self, c: u64) -> String {
        self.id(kind::CUSTOMER, c, 0)
    }

    fn customer_name(&self, c: u64) -> String {
        let mut rng = StdRng::seed_from_u64(mix(&[self.seed, u64::from(kind::CUSTOMER), c]));
        text::person_name(&mut rng)
    }

    fn customer_email(&self, c: u64) -> String {
        text::email(
            &self.customer_name(c),
            c % SPECIAL + if c >= SPECIAL { 9_000_000 } else { 0 },
        )
    }

    /// When customer `c` came to be: the start of its first conversation.
    pub fn customer_created(&self, c: u64) -> Option<DateTime<Utc>> {
        if c >= SPECIAL {
            return self.conversation(c).map(|s| s.start);
        }
        self.conversation(c).map(|s| s.start)
    }

    /// A customer as `customers.jsonl` has it.
    pub fn customer_export(&self, c: u64) -> Value {
        let mut v = json!({
            "id": self.customer_id(c),
            "name": self.customer_name(c),
            "address": format!("{} Main St, Springfield", 1 + c % 900),
            "emailAddresses": [self.customer_email(c)],
            "phoneNumbers": [text::phone(c % 10_000_000)],
        });
        if c.is_multiple_of(3) {
            v["externalCustomerId"] = json!(format!("ext-{c}"));
            v["externalCustomerIds"] = json!({"shop": format!("shop-{c}")});
        }
        v
    }

    /// A customer as `GET /customer-profiles/{id}` has it.
    pub fn customer_rest(&self, c: u64) -> Value {
        let created = self.customer_created(c).unwrap_or(self.origin);
        let tier = ["gold", "silver", "bronze"][usize::try_from(c % 3).unwrap_or(0)];
        let mut v = json!({
            "id": self.customer_id(c),
            "name": self.customer_name(c),
            "address": format!("{} Main St, Springfield", 1 + c % 900),
            "emails": [{"original": self.customer_email(c), "normalized": self.customer_email(c), "primary": true}],
            "phones": [{"original": text::phone(c % 10_000_000), "normalized": text::phone(c % 10_000_000), "regionCode": "US", "primary": true, "smsPreference": "ON", "type": "MOBILE"}],
            "customAttributes": {"tier": tier, "lifetimeValue": format!("{}", (c * 37) % 5000)},
            "createdAt": Self::ts3(created),
            "updatedAt": Self::ts3(created + Duration::hours(1)),
        });
        if c.is_multiple_of(3) {
            v["externalCustomerId"] = json!(format!("ext-{c}"));
            v["externalCustomerIds"] = json!({"shop": format!("shop-{c}")});
        }
        v
    }

    /// Agent `a`.
    pub fn agent(&self, a: u32) -> Value {
        let mut rng =
            StdRng::seed_from_u64(mix(&[self.seed, u64::from(kind::AGENT), u64::from(a)]));
        let name = text::person_name(&mut rng);
        json!({"id": self.id(kind::AGENT, u64::from(a), 0), "name": name, "emailAddress": text::email(&name, u64::from(a)).replace("example.com", "acme.example")})
    }

    /// Team `t`: agent `a` works in team `a % teams`, and agent 0 in team 1 as well (an agent
    /// in two teams); the last team has no description.
    pub fn team(&self, t: u32) -> Value {
        const NAMES: [&str; 4] = ["Tier 1", "Tier 2", "Billing specialists", "Night shift"];
        let agent_ids: Vec<String> = (0..self.agents)
            .filter(|a| a % self.teams == t || (*a == 0 && t == 1))
            .map(|a| self.id(kind::AGENT, u64::from(a), 0))
            .collect();
        let name = NAMES[usize::try_from(t).unwrap_or(0) % NAMES.len()];
        let description = (t + 1 < self.teams).then(|| format!("{name} queue"));
        json!({"id": self.id(kind::TEAM, u64::from(t), 0), "name": name, "description": description, "agentIds": agent_ids})
    }

    /// Inbox `b`.
    pub fn inbox(&self, b: u32) -> Value {
        const NAMES: [&str; 5] = ["Support", "Billing", "Returns", "VIP", "Spanish Support"];
        json!({"id": self.id(kind::INBOX, u64::from(b), 0), "name": NAMES[usize::try_from(b).unwrap_or(0) % NAMES.len()], "disabled": b == 4})
    }

    /// Topic `t` at `as_of` (topic 3 is renamed and re-parented after the start day; topics 5
    /// and 9 share a name).
    pub fn topic(&self, t: u32, as_of: DateTime<Utc>, with_parent: bool) -> Value {
        const NAMES: [&str; 12] = [
            "Orders",
            "Billing",
            "Returns",
            "Shipping delay",
            "Refund",
            "Other",
            "Damaged item",
            "Wrong item",
            "Invoice copy",
            "Other",
            "Account",
            "Password reset",
        ];
        let moved = t == 3 && as_of >= self.inbox_move_at();
        let name = if moved {
            "Late delivery"
        } else {
            NAMES[usize::try_from(t).unwrap_or(0) % NAMES.len()]
        };
        let parent: Option<u32> = match t {
            0..=2 => None,
            3 if moved => Some(2),
            3 | 6 | 7 => Some(0),
            4 | 8 => Some(1),
            5 | 9 => Some(2),
            _ => Some(0),
        };
        let mut v =
            json!({"id": self.id(kind::TOPIC, u64::from(t), 0), "name": name, "disabled": t == 11});
        if with_parent && let Some(p) = parent {
            v["parentId"] = json!(self.id(kind::TOPIC, u64::from(p), 0));
        }
        v
    }

    /// A conversation as `GET /conversations/{id}` has it at `as_of`.
    pub fn conversation_rest(&self, c: &ConvSpec, as_of: DateTime<Utc>) -> Value {
        let items = self.items_at(c, as_of);
        let closed = c.closed_at.filter(|t| *t <= as_of);
        let status = if closed.is_some() {
            "CLOSED"
        } else if items.last().is_some_and(|(_, _, i)| i.who != Who::Customer) {
            "WAITING"
        } else {
            "OPEN"
        };
        let mut v = json!({
            "id": self.id(kind::CONVERSATION, c.key, 0),
            "customerId": self.customer_id(self.customer_at(c, as_of)),
            "inboxId": self.id(kind::INBOX, u64::from(self.inbox_at(c, as_of)), 0),
            "createdAt": Self::ts3(c.start),
            "status": status,
            "agentId": self.id(kind::AGENT, u64::from(c.agent), 0),
            "topicIds": c.topics.iter().map(|t| self.id(kind::TOPIC, u64::from(*t), 0)).collect::<Vec<_>>(),
            "customAttributes": [{"id": "ca-1", "value": format!("order-{}", c.key % 100_000)}],
        });
        if let Some(t) = closed {
            v["closedAt"] = json!(Self::ts3(t));
        }
        v
    }

    /// Conversations of customer `cust` at `as_of`, ascending by creation.
    pub fn conversations_of(&self, cust: u64, as_of: DateTime<Utc>) -> Vec<ConvSpec> {
        let mut keys: Vec<u64> = Vec::new();
        if cust < SPECIAL {
            let mut k = cust;
            while let Some(c) = self.conversation(k) {
                if c.start > as_of {
                    break;
                }
                keys.push(k);
                k += self.customers;
            }
        }
        let mut out: Vec<ConvSpec> = Vec::new();
        for s in 0..special::COUNT {
            if let Some(c) = self.conversation(SPECIAL + s)
                && self.customer_at(&c, as_of) == cust
                && self.conversation_exists(&c, as_of)
            {
                out.push(c);
            }
        }
        for k in keys {
            if let Some(c) = self.conversation(k)
                && self.customer_at(&c, as_of) == cust
                && self.conversation_exists(&c, as_of)
            {
                out.push(c);
            }
        }
        // Regular conversations of merge targets are never special; merged-in ones are.
        out.sort_by_key(|c| c.start);
        out
    }

    /// What `GET /customer-profiles/{id}` answers at `as_of`.
    pub fn customer_state(&self, c: u64, as_of: DateTime<Utc>) -> CustomerState {
        if c >= SPECIAL + special::COUNT || (c >= self.customers && c < SPECIAL) {
            return CustomerState::Missing;
        }
        if self.customer_deleted_at(c).is_some_and(|t| as_of >= t) {
            return CustomerState::Missing;
        }
        if let Some((to, at)) = self.merge_of(c)
            && as_of >= at
        {
            return CustomerState::Moved(to);
        }
        match self.customer_created(c) {
            Some(t) if t <= as_of => CustomerState::Live,
            _ => CustomerState::Missing,
        }
    }

    // ----- jobs ------------------------------------------------------------------------

    /// The job of UTC day `day`.
    pub fn job(&self, day: i64) -> Job {
        let day_start = Utc
            .timestamp_opt(day * 86_400, 0)
            .single()
            .unwrap_or(self.t0);
        let minutes = i64::try_from(mix(&[self.seed, 0x70B, u64::try_from(day).unwrap_or(0)]) % 50)
            .unwrap_or(0);
        let updated_at = day_start
            + Duration::days(1)
            + Duration::hours(3)
            + Duration::minutes(minutes)
            + Duration::milliseconds(512);
        let day0 = self.day0.timestamp().div_euclid(86_400);
        let offset = (day - day0).rem_euclid(7);
        let quirk = match offset {
            5 => Quirk::Malformed,   // day0 − 2
            4 => Quirk::NoAgents,    // day0 − 3
            3 => Quirk::EmptyTopics, // day0 − 4
            2 => Quirk::NoTrailingNewline,
            _ => Quirk::None,
        };
        Job {
            day,
            day_start,
            updated_at,
            failed: (day - day0).rem_euclid(14) == 4,
            quirk,
        }
    }

    /// Status of a job at `as_of`, or `None` when it does not exist (yet, or any more).
    pub fn job_status(&self, job: &Job, as_of: DateTime<Utc>) -> Option<&'static str> {
        let created = job.day_start + Duration::days(1);
        if as_of < created
            || job.day_start < self.origin - Duration::days(1)
            || as_of - job.updated_at > Duration::days(14)
        {
            return None;
        }
        Some(if as_of >= job.updated_at {
            if job.failed { "FAILED" } else { "COMPLETED" }
        } else if as_of >= created + Duration::hours(2) {
            "IN_PROGRESS"
        } else {
            "PENDING"
        })
    }

    /// Jobs that exist at `as_of`, oldest first.
    pub fn jobs_at(&self, as_of: DateTime<Utc>) -> Vec<Job> {
        let today = as_of.timestamp().div_euclid(86_400);
        (today - 16..=today)
            .map(|d| self.job(d))
            .filter(|j| self.job_status(j, as_of).is_some())
            .collect()
    }

    /// The files a job lists.
    pub fn job_files(&self, job: &Job, as_of: DateTime<Utc>) -> Vec<&'static str> {
        if self.job_status(job, as_of) != Some("COMPLETED") {
            return Vec::new();
        }
        let mut f = vec![
            "agents.jsonl",
            "conversation_items.jsonl",
            "customers.jsonl",
            "topics.jsonl",
        ];
        if job.quirk == Quirk::NoAgents {
            f.retain(|x| *x != "agents.jsonl");
        }
        f
    }

    /// A job as the API shows it.
    pub fn job_json(&self, job: &Job, as_of: DateTime<Utc>) -> Value {
        let status = self.job_status(job, as_of).unwrap_or("PENDING");
        let updated = if status == "COMPLETED" || status == "FAILED" {
            job.updated_at
        } else {
            as_of.min(job.updated_at)
        };
        json!({
            "id": self.id(kind::JOB, u64::try_from(job.day).unwrap_or(0), 0),
            "scheduleId": self.id(kind::SCHEDULE, 0, 0),
            "status": status,
            "updatedAt": Self::ts3(updated),
            "parameters": {"type": "CONVERSATIONS", "startAt": Self::ts(job.day_start - Duration::minutes(5), 0), "endAt": Self::ts(job.day_start + Duration::days(1), 0)},
            "files": self.job_files(job, as_of),
        })
    }

    /// The window of items a job exports: `[start − 5 min, start + 1 day)` (windows overlap
    /// by five minutes, so a few items appear in two jobs).
    pub fn job_window(job: &Job) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            job.day_start - Duration::minutes(5),
            job.day_start + Duration::days(1),
        )
    }

    /// Conversation keys whose items a job may hold: the regular range, then the specials.
    pub fn job_conversations(&self, job: &Job) -> impl Iterator<Item = u64> + Send + 'static {
        let (from, to) = Self::job_window(job);
        self.regular_range(from, to)
            .chain(SPECIAL..SPECIAL + special::COUNT)
    }

    /// The items of conversation `key` that a job exports, rendered as of the job's run.
    pub fn job_items_of(&self, job: &Job, key: u64) -> Vec<Value> {
        let (from, to) = Self::job_window(job);
        let as_of = job.updated_at;
        let Some(c) = self.conversation(key) else {
            return Vec::new();
        };
        if !self.conversation_exists(&c, as_of)
            || self
                .customer_deleted_at(c.customer)
                .is_some_and(|t| as_of >= t)
        {
            return Vec::new();
        }
        self.items_at(&c, as_of)
            .into_iter()
            .filter(|(_, _, i)| i.at >= from && i.at < to)
            .map(|(id, owner, i)| {
                let owner_spec = if owner == c.key {
                    c.clone()
                } else {
                    self.conversation(owner).unwrap_or_else(|| c.clone())
                };
                let mut v = self.render_item(&id, owner, &owner_spec, &i, as_of);
                if owner != c.key {
                    // A moved item keeps what it said but now belongs to the survivor.
                    let spec_owner = &owner_spec;
                    v["customerId"] = json!(self.customer_id(self.customer_at(spec_owner, as_of)));
                }
                v
            })
            .collect()
    }

    /// Every customer index a job's `customers.jsonl` names, with the job's view of merges.
    pub fn job_customer_of(&self, job: &Job, key: u64) -> Option<u64> {
        let (from, to) = Self::job_window(job);
        let c = self.conversation(key)?;
        let as_of = job.updated_at;
        if !self.conversation_exists(&c, as_of)
            || self
                .customer_deleted_at(c.customer)
                .is_some_and(|t| as_of >= t)
        {
            return None;
        }
        let any = self
            .items_at(&c, as_of)
            .iter()
            .any(|(_, _, i)| i.at >= from && i.at < to);
        any.then(|| self.customer_at(&c, as_of))
    }

    /// The activity of the job's day, if it falls in the window.
    pub fn job_activity(&self, job: &Job) -> Option<i64> {
        let (_, _, at) = self.activity(job.day)?;
        let (from, to) = Self::job_window(job);
        (at >= from && at < to).then_some(job.day)
    }

    /// Topic indices a TOPIC_CHANGE of conversation `c` names.
    pub fn topics_of(c: &ConvSpec) -> Vec<u32> {
        if c.items.iter().any(|i| i.ct == Ct::Topic) {
            c.topics.clone()
        } else {
            Vec::new()
        }
    }
}

/// What the customer endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerState {
    /// 200.
    Live,
    /// 301 `moved` to this customer.
    Moved(u64),
    /// 404.
    Missing,
}
