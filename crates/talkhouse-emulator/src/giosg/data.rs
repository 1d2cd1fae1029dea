//! The emulated organisation: rooms, users and chats planned from the seed, seen at a clock time.
//!
//! Every chat is planned once at start-up as a timeline (members joining, messages, tags,
//! visitor variables, the end, a GDPR purge). What the API serves is that timeline cut at the
//! clock's "now", so chats appear, grow and end as the clock advances. Chats ended through the
//! API (`PATCH {"is_ended": true}`) and chats removed (a `removed` webhook's GDPR deletion:
//! gone from every endpoint) are the only mutable state.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsa::RsaPublicKey;

use super::crypto::ChatKey;
use crate::text;

/// How long the server keeps a chat's plaintext key after its last message.
pub const KEY_CACHE: Duration = Duration::minutes(90);
/// How long the server keeps a visitor's plaintext key.
pub const VISITOR_KEY_CACHE: Duration = Duration::minutes(30);

/// A room.
#[derive(Debug, Clone)]
pub struct Room {
    /// Room uuid.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether chats in it are encrypted.
    pub encrypted: bool,
}

/// An operator or a bot.
#[derive(Debug, Clone)]
pub struct User {
    /// User uuid.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Bot user.
    pub is_bot: bool,
}

/// Who sent a message or holds a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The chat's visitor.
    Visitor,
    /// A user (index into [`Org::users`]).
    User(usize),
    /// An automation rule.
    Rule,
}

/// One planned message.
#[derive(Debug, Clone)]
pub struct MsgPlan {
    /// Message uuid.
    pub id: String,
    /// When it is sent.
    pub at: DateTime<Utc>,
    /// `type`.
    pub kind: &'static str,
    /// Sender.
    pub who: Who,
    /// Plaintext (`None` for join/leave, whose `message` is always null).
    pub text: Option<String>,
    /// Its HMAC tag is corrupted (encrypted chats only).
    pub corrupt: bool,
}

/// One planned membership.
#[derive(Debug, Clone)]
pub struct MemberPlan {
    /// Who.
    pub who: Who,
    /// When they joined.
    pub at: DateTime<Utc>,
}

/// One planned visitor variable.
#[derive(Debug, Clone)]
pub struct VarPlan {
    /// Key.
    pub key: &'static str,
    /// Value.
    pub value: String,
    /// When it was set.
    pub at: DateTime<Utc>,
}

/// One chat's whole timeline.
#[derive(Debug, Clone)]
pub struct ChatPlan {
    /// Chat uuid.
    pub id: String,
    /// `chat_type`.
    pub chat_type: &'static str,
    /// Index into [`Org::rooms`].
    pub room: usize,
    /// The visitor's 32-hex id, when the chat has a visitor.
    pub visitor_id: Option<String>,
    /// The visitor's name (when they told it).
    pub visitor_name: Option<String>,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// When the chat ends by itself (`None`: a ghost chat that never ends).
    pub natural_end: Option<DateTime<Utc>>,
    /// When the chat's sensitive data is purged.
    pub purge_at: Option<DateTime<Utc>>,
    /// Messages in time order.
    pub messages: Vec<MsgPlan>,
    /// Memberships in time order.
    pub members: Vec<MemberPlan>,
    /// Tags and when they were added.
    pub tags: Vec<(&'static str, DateTime<Utc>)>,
    /// Visitor variables.
    pub variables: Vec<VarPlan>,
    /// Chat key, when encrypted.
    pub key: Option<ChatKey>,
    /// Visitor-data key, when encrypted.
    pub visitor_key: Option<ChatKey>,
}

/// A chat as it looks at one instant.
#[derive(Debug, Clone)]
pub struct ChatView<'a> {
    /// Index into [`Org::chats`].
    pub idx: usize,
    /// The plan.
    pub plan: &'a ChatPlan,
    /// Visible messages.
    pub messages: Vec<&'a MsgPlan>,
    /// Visible memberships.
    pub members: Vec<&'a MemberPlan>,
    /// Visible tags.
    pub tags: Vec<(&'static str, DateTime<Utc>)>,
    /// Visible variables.
    pub variables: Vec<&'a VarPlan>,
    /// End, if ended by now.
    pub ended_at: Option<DateTime<Utc>>,
    /// Purge time, if purged by now.
    pub purged_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Whether the server still holds the plaintext chat key.
    pub key_cached: bool,
    /// Whether the server still holds the plaintext visitor key.
    pub visitor_key_cached: bool,
}

impl ChatView<'_> {
    /// `msg` messages only (what Giosg's counters count).
    pub fn count(&self, who: Option<Who>) -> usize {
        self.messages
            .iter()
            .filter(|m| m.kind == "msg")
            .filter(|m| match who {
                None => true,
                Some(Who::Visitor) => m.who == Who::Visitor,
                Some(_) => matches!(m.who, Who::User(_)),
            })
            .count()
    }
}

/// The organisation.
#[derive(Debug)]
pub struct Org {
    /// Organisation uuid.
    pub id: String,
    /// Rooms.
    pub rooms: Vec<Room>,
    /// Operators and bots.
    pub users: Vec<User>,
    /// The API user (owner of the token; a manager).
    pub api_user: User,
    /// Chats in creation order.
    pub chats: Vec<ChatPlan>,
    /// Chat id → index.
    pub index: HashMap<String, usize>,
    /// Chats ended through the API, and when.
    pub ended: Mutex<HashMap<usize, DateTime<Utc>>>,
    /// Chats deleted for good: no endpoint serves them any more.
    pub removed: Mutex<HashSet<usize>>,
}

/// A uuid (v4 layout) from the generator.
pub fn uuid(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        ["8", "9", "a", "b"][usize::from(b[8] & 3)],
        &h[17..20],
        &h[20..32]
    )
}

fn hex32(rng: &mut StdRng) -> String {
    let b: [u8; 16] = rng.random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const TAGS: [&str; 8] = [
    "billing",
    "refund",
    "delivery",
    "vip",
    "bug",
    "feedback",
    "returns",
    "sales-lead",
];

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

impl Org {
    /// Plans the organisation: `visible` chats created in the 30 days before `t0`, and about
    /// one more day's worth every 15 visible ones spread over the two days after it.
    pub fn plan(seed: u64, visible: u64, t0: DateTime<Utc>, public: &RsaPublicKey) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x0006_1056);
        let id = uuid(&mut rng);
        let rooms = vec![
            Room {
                id: uuid(&mut rng),
                name: "Customer Support".into(),
                encrypted: false,
            },
            Room {
                id: uuid(&mut rng),
                name: "Sales".into(),
                encrypted: false,
            },
            Room {
                id: uuid(&mut rng),
                name: "Secure Support".into(),
                encrypted: true,
            },
            Room {
                id: uuid(&mut rng),
                name: "Partner chats".into(),
                encrypted: false,
            },
        ];
        let mut users: Vec<User> = (0..8)
            .map(|_| User {
                id: uuid(&mut rng),
                name: text::person_name(&mut rng),
                is_bot: false,
            })
            .collect();
        users.push(User {
            id: uuid(&mut rng),
            name: "Giosg Assistant".into(),
            is_bot: true,
        });
        users.push(User {
            id: uuid(&mut rng),
            name: "Order Bot".into(),
            is_bot: true,
        });
        let api_user = User {
            id: uuid(&mut rng),
            name: "Reporting api-user do not delete".into(),
            is_bot: false,
        };
        let future = (visible / 15).max(1);
        let total = visible + future;
        let start = t0 - Duration::days(30);
        let span_ms = Duration::days(32).num_milliseconds();
        let mut chats: Vec<ChatPlan> = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for i in 0..total {
            // Visible chats fill [t0-30d, t0); the rest fill (t0, t0+2d].
            let frac = if i < visible {
                (i as f64 + 0.5) / visible as f64 * 30.0 / 32.0
            } else {
                (30.0 + ((i - visible) as f64 + 0.5) / future as f64 * 2.0) / 32.0
            };
            #[allow(clippy::cast_possible_truncation)]
            let created_at = start + Duration::milliseconds((frac * span_ms as f64) as i64);
            let chat = plan_chat(seed, i, created_at, &rooms, &users, &chats, public);
            chats.push(chat);
        }
        let index = chats
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        Self {
            id,
            rooms,
            users,
            api_user,
            chats,
            index,
            ended: Mutex::new(HashMap::new()),
            removed: Mutex::new(HashSet::new()),
        }
    }

    /// The chat as it looks at `now`, or `None` before it exists or once it was removed.
    pub fn view(&self, idx: usize, now: DateTime<Utc>) -> Option<ChatView<'_>> {
        let plan = self.chats.get(idx)?;
        if plan.created_at > now || self.is_removed(idx) {
            return None;
        }
        let patched = self
            .ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&idx)
            .copied();
        let end = match (plan.natural_end, patched) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ended_at = end.filter(|e| *e <= now);
        let limit = ended_at.unwrap_or(now);
        let messages: Vec<&MsgPlan> = plan.messages.iter().filter(|m| m.at <= limit).collect();
        let members: Vec<&MemberPlan> = plan.members.iter().filter(|m| m.at <= limit).collect();
        let tags: Vec<_> = plan
            .tags
            .iter()
            .copied()
            .filter(|(_, at)| *at <= limit)
            .collect();
        let variables: Vec<&VarPlan> = plan.variables.iter().filter(|v| v.at <= limit).collect();
        let purged_at = plan.purge_at.filter(|p| ended_at.is_some() && *p <= now);
        let last_msg = messages.last().map_or(plan.created_at, |m| m.at);
        let mut updated_at = plan.created_at.max(last_msg);
        for m in &members {
            updated_at = updated_at.max(m.at);
        }
        for (_, at) in &tags {
            updated_at = updated_at.max(*at);
        }
        for v in &variables {
            updated_at = updated_at.max(v.at);
        }
        if let Some(e) = ended_at {
            updated_at = updated_at.max(e + Duration::milliseconds(12));
        }
        if let Some(p) = purged_at {
            updated_at = updated_at.max(p);
        }
        let last_var = variables
            .iter()
            .map(|v| v.at)
            .max()
            .unwrap_or(plan.created_at)
            .max(last_msg);
        Some(ChatView {
            idx,
            plan,
            messages,
            members,
            tags,
            variables,
            ended_at,
            purged_at,
            updated_at,
            key_cached: now - last_msg < KEY_CACHE,
            visitor_key_cached: now - last_var < VISITOR_KEY_CACHE,
        })
    }

    /// Every chat that exists at `now`.
    pub fn visible(&self, now: DateTime<Utc>) -> impl Iterator<Item = ChatView<'_>> {
        // Chats are in creation order: stop at the first one in the future.
        (0..self.chats.len())
            .take_while(move |&i| self.chats.get(i).is_some_and(|c| c.created_at <= now))
            .filter_map(move |i| self.view(i, now))
    }

    /// Whether the chat was removed.
    pub fn is_removed(&self, idx: usize) -> bool {
        self.removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&idx)
    }

    /// Removes a chat for good (a GDPR deletion); `false` when it was gone already.
    pub fn remove(&self, idx: usize) -> bool {
        self.removed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(idx)
    }
}

#[allow(clippy::too_many_lines)]
fn plan_chat(
    seed: u64,
    i: u64,
    created_at: DateTime<Utc>,
    rooms: &[Room],
    _users: &[User],
    earlier: &[ChatPlan],
    public: &RsaPublicKey,
) -> ChatPlan {
    let mut rng = StdRng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    let id = uuid(&mut rng);
    let chat_type = match rng.random_range(0..100) {
        0..72 => "visitor",
        72..84 => "external",
        84..90 => "operator",
        90..94 => "group",
        94..97 => "task",
        _ => "visitor",
    };
    let room = if chat_type == "external" {
        3
    } else {
        match rng.random_range(0..100) {
            0..25 => 2,
            25..45 => 1,
            _ => 0,
        }
    };
    let encrypted = rooms.get(room).is_some_and(|r| r.encrypted);
    let has_visitor = matches!(chat_type, "visitor" | "external" | "group");
    // One visitor in ten comes back: same id and name as an earlier chat's visitor.
    let returning = if has_visitor && rng.random_range(0..10) == 0 && !earlier.is_empty() {
        let back = rng.random_range(1..=earlier.len().min(20));
        earlier
            .get(earlier.len() - back)
            .and_then(|c| c.visitor_id.clone().map(|v| (v, c.visitor_name.clone())))
    } else {
        None
    };
    let (visitor_id, visitor_name) = match (has_visitor, returning) {
        (false, _) => (None, None),
        (true, Some((v, n))) => (Some(v), n),
        (true, None) => {
            let v = hex32(&mut rng);
            let name = if rng.random_range(0..3) == 0 {
                None
            } else {
                Some(text::person_name(&mut rng))
            };
            (Some(v), name)
        }
    };
    let lang = text::pick_lang(&mut rng);
    let tone = text::pick_tone(&mut rng);
    let agent = rng.random_range(0..8usize);
    let bot = 8 + rng.random_range(0..2usize);
    let mut messages = Vec::new();
    let mut members = Vec::new();
    let mut t = created_at + Duration::milliseconds(rng.random_range(20..900));
    let mut msg = |rng: &mut StdRng,
                   at: DateTime<Utc>,
                   kind: &'static str,
                   who: Who,
                   text: Option<String>| {
        messages.push(MsgPlan {
            id: uuid(rng),
            at,
            kind,
            who,
            text,
            corrupt: false,
        });
    };
    if has_visitor {
        members.push(MemberPlan {
            who: Who::Visitor,
            at: created_at,
        });
    }
    if rng.random_range(0..10) == 0 {
        {
            let x = text::bot(&mut rng, lang);
            msg(&mut rng, t, "autosuggest", Who::Rule, Some(x));
        }
        t += secs(rng.random_range(5..60));
    }
    // Conversation shape: visitor only, bot only, bot then agent, agent only.
    let shape = if !has_visitor {
        3
    } else {
        match rng.random_range(0..100) {
            0..10 => 0,
            10..35 => 1,
            35..55 => 2,
            _ => 3,
        }
    };
    let turns = rng.random_range(1..=5);
    let gap = |rng: &mut StdRng| -> Duration {
        if chat_type == "external" {
            secs(rng.random_range(600..40_000))
        } else {
            secs(rng.random_range(8..200))
        }
    };
    if has_visitor {
        {
            let x = text::customer(&mut rng, lang, tone);
            msg(&mut rng, t, "msg", Who::Visitor, Some(x));
        }
        t += gap(&mut rng);
    }
    let mut staff: Vec<usize> = Vec::new();
    if shape == 1 || shape == 2 {
        members.push(MemberPlan {
            who: Who::User(bot),
            at: t,
        });
        staff.push(bot);
        msg(&mut rng, t, "join", Who::User(bot), None);
        t += secs(1);
        for _ in 0..turns {
            {
                let x = text::bot(&mut rng, lang);
                msg(&mut rng, t, "msg", Who::User(bot), Some(x));
            }
            t += gap(&mut rng);
            {
                let x = text::customer(&mut rng, lang, tone);
                msg(&mut rng, t, "msg", Who::Visitor, Some(x));
            }
            t += gap(&mut rng);
        }
    }
    if shape == 2 || shape == 3 {
        members.push(MemberPlan {
            who: Who::User(agent),
            at: t,
        });
        staff.push(agent);
        msg(&mut rng, t, "join", Who::User(agent), None);
        t += secs(2);
        if rng.random_range(0..20) == 0 {
            msg(
                &mut rng,
                t,
                "system",
                Who::Rule,
                Some("Chat was transferred to the room queue.".into()),
            );
            t += secs(3);
        }
        if !has_visitor && chat_type != "task" {
            let other = (agent + 1) % 8;
            members.push(MemberPlan {
                who: Who::User(other),
                at: t,
            });
            staff.push(other);
        }
        for k in 0..turns {
            {
                let x = text::agent(&mut rng, lang);
                msg(&mut rng, t, "msg", Who::User(agent), Some(x));
            }
            t += gap(&mut rng);
            if has_visitor {
                {
                    let x = text::customer(&mut rng, lang, tone);
                    msg(&mut rng, t, "msg", Who::Visitor, Some(x));
                }
                t += gap(&mut rng);
            } else if let Some(other) = staff.get(1).copied() {
                {
                    let x = text::agent(&mut rng, lang);
                    msg(&mut rng, t, "msg", Who::User(other), Some(x));
                }
                t += gap(&mut rng);
            }
            if k == 0 && rng.random_range(0..30) == 0 {
                // A message type outside the documented list: connectors must keep it.
                msg(
                    &mut rng,
                    t,
                    "cobrowse_started",
                    Who::User(agent),
                    Some("Co-browsing started".into()),
                );
                t += secs(4);
            }
        }
    }
    for s in &staff {
        msg(&mut rng, t, "leave", Who::User(*s), None);
        t += secs(1);
    }
    let last = messages.last().map_or(created_at, |m| m.at);
    let natural_end = match chat_type {
        // Ghost chats: external chats are never ended by Giosg.
        "external" => None,
        "visitor" => Some(last + secs(rng.random_range(60..600))),
        _ => {
            if rng.random_range(0..4) == 0 {
                None
            } else {
                Some(last + secs(rng.random_range(600..3600)))
            }
        }
    };
    let mut tags = Vec::new();
    for _ in 0..rng.random_range(0..3) {
        let name = TAGS[rng.random_range(0..TAGS.len())];
        if !tags.iter().any(|(n, _)| *n == name) {
            tags.push((name, last + secs(rng.random_range(1..50))));
        }
    }
    let mut variables = Vec::new();
    if let Some(v) = &visitor_id {
        let at = created_at + secs(1);
        if let Some(n) = &visitor_name {
            variables.push(VarPlan {
                key: "username",
                value: n.clone(),
                at,
            });
            variables.push(VarPlan {
                key: "email",
                value: text::email(n, u64::from_str_radix(&v[..8], 16).unwrap_or(i)),
                at,
            });
        }
        variables.push(VarPlan {
            key: "plan",
            value: ["free", "pro", "enterprise"][rng.random_range(0..3)].into(),
            at,
        });
        variables.push(VarPlan {
            key: "language",
            value: lang.code().into(),
            at,
        });
    }
    let (key, visitor_key) = if encrypted {
        (
            Some(ChatKey::derive(public, seed ^ i.wrapping_mul(31) ^ 0xc4a7)),
            Some(ChatKey::derive(public, seed ^ i.wrapping_mul(37) ^ 0x715)),
        )
    } else {
        (None, None)
    };
    // One encrypted chat in 12 carries a message whose HMAC tag does not verify.
    if encrypted
        && i % 12 == 5
        && let Some(m) = messages.iter_mut().find(|m| m.kind == "msg")
    {
        m.corrupt = true;
    }
    let purge_at = match natural_end {
        Some(e) if !encrypted && rng.random_range(0..25) == 0 => Some(e + Duration::hours(2)),
        _ => None,
    };
    ChatPlan {
        id,
        chat_type,
        room,
        visitor_id,
        visitor_name,
        created_at,
        natural_end,
        purge_at,
        messages,
        members,
        tags,
        variables,
        key,
        visitor_key,
    }
}
