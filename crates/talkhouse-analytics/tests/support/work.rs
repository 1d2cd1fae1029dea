//! Generated contacts, agent work, teams and merges of a source that reports its sessions itself
//! (vendor `gladly`, source [`SOURCE`]), their reference figures, and the checks of the
//! `talkhouse.current_ids`, `talkhouse.sessions`, `talkhouse.work` views and the report's
//! `gladly` section against them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use talkhouse_analytics::metrics::{Distribution, TimedMessage, first_response_seconds};
use talkhouse_analytics::report::{Report, WorkerStat};
use talkhouse_model::Destination;

use super::{Conv, Msg, close, deleted, f, lit, opt_lit, since_ok, ts};

/// The source with contacts (its vendor is `gladly`, as is that of source `gladly`, which has
/// none and so gets its sessions from its messages).
pub const SOURCE: &str = "helpdesk";

/// A contact, with the ids the vendor reported it with (maybe retired by a merge since).
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub conversation_id: String,
    pub customer_id: String,
    pub channel: Option<&'static str>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub message_count: i64,
    pub handle: Option<f64>,
    pub deleted: bool,
}

/// An agent work session.
#[derive(Debug, Clone)]
pub struct Work {
    pub id: String,
    pub session_id: String,
    pub conversation_id: String,
    pub customer_id: String,
    pub agent_id: String,
    pub team_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub handle: Option<f64>,
    pub deleted: bool,
}

/// What the source with contacts holds.
#[derive(Debug, Clone, Default)]
pub struct WorkData {
    pub contacts: Vec<Contact>,
    pub work: Vec<Work>,
    /// Team id → its agents.
    pub teams: BTreeMap<String, Vec<String>>,
    /// `(entity, old id) → new id`.
    pub merges: BTreeMap<(&'static str, String), String>,
}

impl WorkData {
    /// Contacts for the conversations of [`SOURCE`]: some reported under a conversation or
    /// customer id that one merge or a chain of two retired, some not ended, some without a
    /// handle time; zero to three work sessions each, agents in zero, one or two teams.
    pub fn generate(rng: &mut StdRng, convs: &[Conv], base: DateTime<Utc>) -> WorkData {
        let mut d = WorkData::default();
        let team = |agents: &[u32]| -> Vec<String> {
            agents.iter().map(|a| format!("agent-{a}")).collect()
        };
        d.teams.insert("team-a".into(), team(&[0, 1, 2]));
        d.teams.insert("team-b".into(), team(&[2, 3]));
        d.teams.insert("team-c".into(), team(&[4]));
        for (i, c) in convs.iter().filter(|c| c.source == SOURCE).enumerate() {
            let started = c.started_at.unwrap_or(base);
            let mut conversation = c.id.clone();
            match i % 11 {
                0 => {
                    // Reported under an id that one merge retired.
                    let old = format!("{}-old", c.id);
                    d.merges
                        .insert(("conversation", old.clone()), conversation.clone());
                    conversation = old;
                }
                1 => {
                    // A chain of two merges.
                    let older = format!("{}-older", c.id);
                    let old = format!("{}-old", c.id);
                    d.merges
                        .insert(("conversation", old.clone()), conversation.clone());
                    d.merges.insert(("conversation", older.clone()), old);
                    conversation = older;
                }
                _ => {}
            }
            let mut customer = c
                .customer_id
                .clone()
                .unwrap_or_else(|| format!("{SOURCE}-nobody"));
            if i % 7 == 3 {
                let old = format!("{customer}-was");
                d.merges.insert(("customer", old.clone()), customer);
                customer = old;
            }
            let contact = format!("{}-k", c.id);
            let ended = (rng.random_range(0..8) != 0)
                .then(|| started + Duration::seconds(rng.random_range(60..4 * 3600)));
            let handle = (rng.random_range(0..10) != 0)
                .then(|| f64::from(rng.random_range(300..60_000_i32)) / 10.0);
            for n in 0..rng.random_range(0..4_u32) {
                let agent = rng.random_range(0..7u32);
                d.work.push(Work {
                    id: format!("{contact}-w{n}"),
                    session_id: contact.clone(),
                    conversation_id: conversation.clone(),
                    customer_id: customer.clone(),
                    agent_id: format!("agent-{agent}"),
                    team_id: (rng.random_range(0..15) == 0).then(|| "team-z".to_owned()),
                    started_at: started + Duration::seconds(rng.random_range(0..600)),
                    handle: (rng.random_range(0..12) != 0)
                        .then(|| f64::from(rng.random_range(100..30_000_i32)) / 10.0),
                    deleted: rng.random_range(0..40) == 0,
                });
            }
            d.contacts.push(Contact {
                id: contact,
                conversation_id: conversation,
                customer_id: customer,
                channel: c.channel,
                started_at: started,
                ended_at: ended,
                message_count: rng.random_range(0..20_i64),
                handle,
                deleted: rng.random_range(0..40) == 0,
            });
        }
        d
    }

    /// DDL and inserts of the model tables.
    pub fn statements(&self, ts_type: &str, book: &str) -> Vec<String> {
        let mut out = vec![
            format!(
                "CREATE TABLE talkhouse.model_sessions (source TEXT, session_id TEXT, conversation_id TEXT, \
customer_id TEXT, channel TEXT, started_at {ts_type}, ended_at {ts_type}, message_count BIGINT, \
handle_seconds DOUBLE PRECISION, {book}, PRIMARY KEY (source, session_id))"
            ),
            format!(
                "CREATE TABLE talkhouse.model_work (source TEXT, work_session_id TEXT, session_id TEXT, \
conversation_id TEXT, customer_id TEXT, agent_id TEXT, team_id TEXT, started_at {ts_type}, \
ended_at {ts_type}, handle_seconds DOUBLE PRECISION, {book}, PRIMARY KEY (source, work_session_id))"
            ),
            format!(
                "CREATE TABLE talkhouse.model_teams (source TEXT, team_id TEXT, name TEXT, agent_ids TEXT, \
{book}, PRIMARY KEY (source, team_id))"
            ),
            format!(
                "CREATE TABLE talkhouse.model_id_merges (source TEXT, entity TEXT, old_id TEXT, new_id TEXT, \
seen_at {ts_type}, {book}, PRIMARY KEY (source, entity, old_id))"
            ),
        ];
        let src = lit(SOURCE);
        let rows: Vec<String> = self
            .contacts
            .iter()
            .map(|c| {
                format!(
                    "({src}, {}, {}, {}, {}, {}, {}, {}, {}, NULL, NULL, NULL, {})",
                    lit(&c.id),
                    lit(&c.conversation_id),
                    lit(&c.customer_id),
                    opt_lit(c.channel),
                    ts(Some(c.started_at)),
                    ts(c.ended_at),
                    c.message_count,
                    f(c.handle),
                    deleted(c.deleted)
                )
            })
            .collect();
        for chunk in rows.chunks(200) {
            out.push(format!(
                "INSERT INTO talkhouse.model_sessions VALUES {}",
                chunk.join(", ")
            ));
        }
        let rows: Vec<String> = self
            .work
            .iter()
            .map(|w| {
                format!(
                    "({src}, {}, {}, {}, {}, {}, {}, {}, NULL, {}, NULL, NULL, NULL, {})",
                    lit(&w.id),
                    lit(&w.session_id),
                    lit(&w.conversation_id),
                    lit(&w.customer_id),
                    lit(&w.agent_id),
                    opt_lit(w.team_id.as_deref()),
                    ts(Some(w.started_at)),
                    f(w.handle),
                    deleted(w.deleted)
                )
            })
            .collect();
        for chunk in rows.chunks(200) {
            out.push(format!(
                "INSERT INTO talkhouse.model_work VALUES {}",
                chunk.join(", ")
            ));
        }
        let rows: Vec<String> = self
            .teams
            .iter()
            .map(|(id, agents)| {
                format!(
                    "({src}, {}, NULL, {}, NULL, NULL, NULL, NULL)",
                    lit(id),
                    lit(&format!(",{},", agents.join(",")))
                )
            })
            .collect();
        out.push(format!(
            "INSERT INTO talkhouse.model_teams VALUES {}",
            rows.join(", ")
        ));
        let rows: Vec<String> = self
            .merges
            .iter()
            .map(|((entity, old), new)| {
                format!(
                    "({src}, {}, {}, {}, NULL, NULL, NULL, NULL, NULL)",
                    lit(entity),
                    lit(old),
                    lit(new)
                )
            })
            .collect();
        out.push(format!(
            "INSERT INTO talkhouse.model_id_merges VALUES {}",
            rows.join(", ")
        ));
        out
    }

    /// The id `id` of `entity` goes by now.
    pub fn current(&self, entity: &'static str, id: &str) -> String {
        let mut id = id.to_owned();
        for _ in 0..8 {
            match self.merges.get(&(entity, id.clone())) {
                Some(next) => id = next.clone(),
                None => break,
            }
        }
        id
    }

    fn live_contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.iter().filter(|c| !c.deleted)
    }

    /// The team `talkhouse.work` gives a work session: its own, else its agent's first team.
    fn team_of(&self, w: &Work) -> Option<String> {
        w.team_id.clone().or_else(|| {
            self.teams
                .iter()
                .find(|(_, agents)| agents.contains(&w.agent_id))
                .map(|(id, _)| id.clone())
        })
    }
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// Row-level checks of `talkhouse.sessions` (the contacts, with current ids) and `talkhouse.work`
/// (current ids, teams).
pub async fn check_views(dest: &dyn Destination, d: &WorkData) {
    let rows = dest
        .query(&format!(
            "SELECT session_id, conversation_id, customer_id, handle_seconds FROM talkhouse.sessions \
WHERE source = {} ORDER BY session_id",
            lit(SOURCE)
        ))
        .await
        .unwrap();
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                text(&r["session_id"]),
                text(&r["conversation_id"]),
                text(&r["customer_id"]),
            )
        })
        .collect();
    let mut want: Vec<(String, String, String)> = d
        .live_contacts()
        .map(|c| {
            (
                c.id.clone(),
                d.current("conversation", &c.conversation_id),
                d.current("customer", &c.customer_id),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "talkhouse.sessions of {SOURCE}: merges followed");
    let rows = dest
        .query(&format!(
            "SELECT work_session_id, conversation_id, customer_id, team_id FROM talkhouse.work \
WHERE source = {} ORDER BY work_session_id",
            lit(SOURCE)
        ))
        .await
        .unwrap();
    let got: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                text(&r["work_session_id"]),
                text(&r["conversation_id"]),
                text(&r["customer_id"]),
                text(&r["team_id"]),
            )
        })
        .collect();
    let mut want: Vec<(String, String, String, String)> = d
        .work
        .iter()
        .filter(|w| !w.deleted)
        .map(|w| {
            (
                w.id.clone(),
                d.current("conversation", &w.conversation_id),
                d.current("customer", &w.customer_id),
                d.team_of(w).unwrap_or_else(|| "NULL".into()),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "talkhouse.work: merges followed, teams found");
}

/// The sessions of the messages of sources that report none: `(source, session) → (messages,
/// start)`.
pub fn chat_sessions<'a>(
    msgs: &[(&'a Msg, Option<&'static str>)],
) -> BTreeMap<(&'a str, &'a str), (u64, Option<DateTime<Utc>>)> {
    let mut sessions: BTreeMap<(&str, &str), (u64, Option<DateTime<Utc>>)> = BTreeMap::new();
    for &(m, _) in msgs {
        if m.source == SOURCE {
            continue;
        }
        if let Some(s) = m.session_id.as_deref() {
            let e = sessions.entry((m.source, s)).or_default();
            e.0 += 1;
            e.1 = match (e.1, m.sent_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    sessions
}

/// Messages per session the report should show: chat sessions, then contacts.
pub fn session_sizes(
    msgs: &[(&Msg, Option<&'static str>)],
    d: &WorkData,
    since: Option<NaiveDate>,
) -> Vec<f64> {
    let mut out: Vec<f64> = chat_sessions(msgs)
        .values()
        .filter(|(_, start)| since_ok(*start, since))
        .map(|(n, _)| *n as f64)
        .collect();
    out.extend(
        d.live_contacts()
            .filter(|c| since_ok(Some(c.started_at), since))
            .map(|c| c.message_count as f64),
    );
    out
}

fn median_of(values: &[f64]) -> Option<f64> {
    Distribution::of(values).median
}

/// Compares the report's `gladly` section with the reference: sources `gladly` (chat sessions
/// from messages) and [`SOURCE`] (contacts).
pub fn check_report(
    r: &Report,
    msgs: &[(&Msg, Option<&'static str>)],
    d: &WorkData,
    since: Option<NaiveDate>,
) {
    let g = &r.gladly;
    assert!(g.present);
    assert_eq!(g.sources, ["gladly", SOURCE]);
    let chats: BTreeMap<_, _> = chat_sessions(msgs)
        .into_iter()
        .filter(|((source, _), _)| *source == "gladly")
        .collect();
    let contacts: Vec<&Contact> = d
        .live_contacts()
        .filter(|c| since_ok(Some(c.started_at), since))
        .collect();
    let n_chats = chats.values().filter(|(_, t)| since_ok(*t, since)).count();
    assert_eq!(
        g.contacts as usize,
        n_chats + contacts.len(),
        "gladly.contacts"
    );

    // Handle time, over all and per channel.
    let handles: Vec<f64> = contacts.iter().filter_map(|c| c.handle).collect();
    let want = Distribution::of(&handles);
    assert_eq!(g.handle_seconds.contacts as usize, handles.len());
    close(g.handle_seconds.mean, want.mean, "handle.mean");
    close(g.handle_seconds.median, want.median, "handle.median");
    close(g.handle_seconds.p90, want.p90, "handle.p90");
    let mut by_channel: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for c in &contacts {
        if let Some(h) = c.handle {
            by_channel
                .entry(c.channel.unwrap_or("unknown").to_owned())
                .or_default()
                .push(h);
        }
    }
    assert_eq!(
        g.handle_seconds_by_channel.keys().collect::<Vec<_>>(),
        by_channel.keys().collect::<Vec<_>>()
    );
    for (channel, values) in &by_channel {
        let got = &g.handle_seconds_by_channel[channel];
        let want = Distribution::of(values);
        assert_eq!(got.contacts as usize, values.len(), "{channel}");
        close(got.median, want.median, &format!("handle.{channel}.median"));
        close(got.p90, want.p90, &format!("handle.{channel}.p90"));
    }

    // Top agents and teams.
    let work: Vec<&Work> = d
        .work
        .iter()
        .filter(|w| !w.deleted && since_ok(Some(w.started_at), since))
        .collect();
    let top = |key: &dyn Fn(&Work) -> Option<String>| -> Vec<WorkerStat> {
        let mut groups: BTreeMap<String, (BTreeSet<&str>, u64, Vec<f64>)> = BTreeMap::new();
        for w in &work {
            let Some(k) = key(w) else { continue };
            let e = groups.entry(k).or_default();
            e.0.insert(w.session_id.as_str());
            e.1 += 1;
            e.2.extend(w.handle);
        }
        let mut out: Vec<WorkerStat> = groups
            .into_iter()
            .map(|(id, (sessions, n, handles))| WorkerStat {
                name: None,
                id,
                contacts: sessions.len() as u64,
                work_sessions: n,
                handle_seconds_median: median_of(&handles),
            })
            .collect();
        out.sort_by(|a, b| b.contacts.cmp(&a.contacts).then_with(|| a.id.cmp(&b.id)));
        out.truncate(talkhouse_analytics::sql::TOP_WORKERS);
        out
    };
    for (what, got, want) in [
        ("agents", &g.top_agents, top(&|w| Some(w.agent_id.clone()))),
        ("teams", &g.top_teams, top(&|w| d.team_of(w))),
    ] {
        assert_eq!(got.len(), want.len(), "top {what}");
        for (a, b) in got.iter().zip(&want) {
            assert_eq!(
                (&a.id, a.contacts, a.work_sessions),
                (&b.id, b.contacts, b.work_sessions),
                "top {what}"
            );
            close(
                a.handle_seconds_median,
                b.handle_seconds_median,
                &format!("top {what} {} median", a.id),
            );
        }
    }

    // First response within each session: a chat session's messages by its id, a contact's
    // by its conversation (the current id) and its time.
    let mut sessions: Vec<Vec<TimedMessage<'_>>> = Vec::new();
    let timed = |m: &Msg| TimedMessage {
        sender_role: m.role,
        sent_at: m.sent_at,
    };
    let mut by_chat: BTreeMap<&str, Vec<TimedMessage<'_>>> = BTreeMap::new();
    for &(m, _) in msgs {
        if m.source == "gladly"
            && m.sent_at.is_some()
            && let Some(s) = m.session_id.as_deref()
        {
            by_chat.entry(s).or_default().push(timed(m));
        }
    }
    sessions.extend(by_chat.into_values());
    for c in d.live_contacts() {
        let conversation = d.current("conversation", &c.conversation_id);
        sessions.push(
            msgs.iter()
                .filter(|(m, _)| {
                    m.source == SOURCE
                        && m.conversation_id == conversation
                        && m.sent_at
                            .is_some_and(|t| t >= c.started_at && c.ended_at.is_none_or(|e| t <= e))
                })
                .map(|&(m, _)| timed(m))
                .collect(),
        );
    }
    let (mut with_customer, mut any, mut agents) = (0u64, Vec::new(), Vec::new());
    for ms in &sessions {
        let first = ms
            .iter()
            .filter(|m| m.sender_role == "customer")
            .filter_map(|m| m.sent_at)
            .min();
        if first.is_none() || !since_ok(first, since) {
            continue;
        }
        with_customer += 1;
        any.extend(first_response_seconds(ms, false));
        agents.extend(first_response_seconds(ms, true));
    }
    let fr = &g.contact_first_response_seconds;
    assert!(
        with_customer > 0 && !any.is_empty(),
        "the data has answered contacts"
    );
    assert_eq!(
        fr.contacts, with_customer,
        "contact first response: contacts"
    );
    assert_eq!(
        fr.responded,
        any.len() as u64,
        "contact first response: responded"
    );
    assert_eq!(fr.agent_responded, agents.len() as u64);
    let want = Distribution::of(&any);
    close(fr.median, want.median, "contact first response median");
    close(fr.p90, want.p90, "contact first response p90");
    close(
        fr.agent_median,
        median_of(&agents),
        "contact first response agent median",
    );
}
