//! Generated model data, engines to load it into, and the reference figures.

#![allow(dead_code, clippy::type_complexity)]

pub mod duck;
pub mod pg;
pub mod work;

/// The emulator's message text (en/fi/de/es, three tones), included directly so these tests do
/// not build the whole emulator.
#[path = "../../../talkhouse-emulator/src/text.rs"]
pub mod text;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use talkhouse_analytics::metrics::{
    Distribution, TimedMessage, first_response_seconds, mean_of, rate,
};
use talkhouse_analytics::report::Report;
use talkhouse_model::Destination;

/// A warehouse the test loads and queries.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// The destination the report reads.
    fn dest(&self) -> &dyn Destination;
    /// The SQL type of timestamp columns in this engine's destination.
    fn timestamp_type(&self) -> &'static str;
    /// Creates the tables, inserts `data`, and lays the Ada and Ultimate connectors' own metric
    /// views over them (the report reads those).
    async fn load(&self, data: &Dataset) {
        let mut stmts = data.statements(self.timestamp_type());
        stmts.extend(vendor_views());
        for stmt in stmts {
            self.dest()
                .execute(&stmt)
                .await
                .unwrap_or_else(|e| panic!("{stmt}\n{e}"));
        }
    }
}

/// The bot of the generated Ultimate data.
pub const BOT: &str = "b1";

/// `CREATE VIEW` statements of the Ada and Ultimate connectors' views, as a sync creates them.
fn vendor_views() -> Vec<String> {
    let ultimate = talkhouse_sources::ultimate::views::views(
        &talkhouse_sources::ultimate::views::MetricOptions {
            bot_ids: vec![BOT.to_owned()],
            ..Default::default()
        },
    );
    let ada = talkhouse_sources::ada::views::views(false);
    let create = |schema: &str, views: Vec<(&str, String)>| -> Vec<String> {
        views
            .into_iter()
            .map(|(name, sql)| {
                format!(
                    "CREATE OR REPLACE VIEW {schema}.{name} AS {}",
                    sql.replace("{schema}", schema)
                )
            })
            .collect()
    };
    let mut out = create("ada", ada);
    out.extend(create("ultimate", ultimate));
    out
}

#[derive(Debug, Clone)]
pub struct Conv {
    pub source: &'static str,
    pub id: String,
    pub customer_id: Option<String>,
    pub channel: Option<&'static str>,
    pub started_at: Option<DateTime<Utc>>,
    pub status: Option<&'static str>,
    pub message_count: Option<i64>,
    pub escalated: Option<bool>,
    pub bot_handled: Option<bool>,
    pub csat: Option<f64>,
    pub deleted: bool,
    /// `false`: only its messages exist (no model conversation row).
    pub in_model: bool,
    /// The vendor marks it as a test (`None`: the vendor has no such flag).
    pub is_test: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub source: &'static str,
    pub id: String,
    pub conversation_id: String,
    pub session_id: Option<String>,
    pub role: &'static str,
    pub sender_id: String,
    pub channel: Option<&'static str>,
    pub sent_at: Option<DateTime<Utc>>,
    pub body: Option<String>,
    pub sentiment: Option<f64>,
    pub deleted: bool,
}

#[derive(Debug, Clone)]
pub struct AdaConv {
    pub id: String,
    pub date_created: DateTime<Utc>,
    pub engaged: bool,
    pub escalated: bool,
    pub deleted: bool,
    pub test: bool,
}

#[derive(Debug, Clone)]
pub struct Intent {
    pub name: &'static str,
    pub at: DateTime<Utc>,
    pub not_meaningful: bool,
}

#[derive(Debug, Clone)]
pub struct UltConv {
    pub id: String,
    pub start: DateTime<Utc>,
    pub status: Option<&'static str>,
    pub resolution: Option<&'static str>,
    pub visitor: Option<u32>,
    pub not_understood: Option<u32>,
    pub intents: Vec<Intent>,
    pub deleted: bool,
    pub test: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub convs: Vec<Conv>,
    pub msgs: Vec<Msg>,
    pub ada: Vec<AdaConv>,
    pub ult: Vec<UltConv>,
    /// Contacts, work, teams and merges of [`work::SOURCE`].
    pub work: work::WorkData,
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
fn opt_lit(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".into(), lit)
}
fn ts(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "NULL".into(),
        |t| lit(&t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
    )
}
fn b(v: Option<bool>) -> String {
    v.map_or_else(|| "NULL".into(), |v| v.to_string())
}
fn f(v: Option<f64>) -> String {
    v.map_or_else(|| "NULL".into(), |v| format!("{v:?}"))
}
fn deleted(d: bool) -> String {
    if d {
        lit("2026-03-20 00:00:00")
    } else {
        "NULL".into()
    }
}

const DAY0: i64 = 1_772_323_200; // 2026-03-01T00:00:00Z

impl Dataset {
    /// Deterministic data for four sources, `n` conversations each (about).
    pub fn generate(seed: u64, n: usize) -> Dataset {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut d = Dataset::default();
        let base = Utc.timestamp_opt(DAY0, 0).single().unwrap();
        let channels: [&[&'static str]; 4] = [
            &["chat", "email", "sms", "voice"],
            &["chat"],
            &["chat", "messaging"],
            &["chat", "email", "voice"],
        ];
        for (si, source) in ["gladly", "giosg", "ada", work::SOURCE]
            .into_iter()
            .enumerate()
        {
            for i in 0..n {
                let id = format!("{source}-c{i}");
                let started = base + Duration::seconds(rng.random_range(0..10 * 86_400));
                let channel = channels[si][rng.random_range(0..channels[si].len())];
                let in_model = rng.random_range(0..20) != 0;
                let is_test = (source == "ada").then(|| rng.random_range(0..10) == 0);
                let conv = Conv {
                    source,
                    id: id.clone(),
                    customer_id: Some(format!("{source}-cust{}", rng.random_range(0..n / 2 + 1))),
                    channel: (rng.random_range(0..15) != 0).then_some(channel),
                    started_at: (rng.random_range(0..30) != 0).then_some(started),
                    status: Some(if rng.random_bool(0.5) {
                        "closed"
                    } else {
                        "open"
                    }),
                    message_count: None,
                    escalated: (rng.random_range(0..4) != 0).then(|| rng.random_bool(0.3)),
                    bot_handled: (rng.random_range(0..4) != 0).then(|| rng.random_bool(0.4)),
                    csat: (rng.random_range(0..3) == 0).then(|| f64::from(rng.random_range(1..=5))),
                    deleted: rng.random_range(0..25) == 0,
                    in_model,
                    is_test,
                };
                let lang = text::pick_lang(&mut rng);
                let tone = text::pick_tone(&mut rng);
                let mut t = started;
                let k = rng.random_range(0..9);
                let session = (channel == "chat").then(|| {
                    if source == "gladly" || source == work::SOURCE {
                        format!("{id}-s{}", rng.random_range(0..2))
                    } else {
                        id.clone()
                    }
                });
                for j in 0..k {
                    let role = match (j, rng.random_range(0..10)) {
                        (0, 0..=2) => "bot",
                        (0, _) => "customer",
                        (_, 0..=3) => "customer",
                        (_, 4..=6) => "agent",
                        (_, 7..=8) => "bot",
                        _ => "system",
                    };
                    t += Duration::milliseconds(rng.random_range(0..4_000_000));
                    let body = match role {
                        "customer" => Some(text::customer(&mut rng, lang, tone)),
                        "agent" => Some(text::agent(&mut rng, lang)),
                        "bot" => Some(text::bot(&mut rng, lang)),
                        _ => None,
                    };
                    let sentiment = body
                        .as_deref()
                        .and_then(|b| talkhouse_analytics::score_message(b, None).0);
                    d.msgs.push(Msg {
                        source,
                        id: format!("{id}-m{j}"),
                        conversation_id: id.clone(),
                        session_id: session.clone(),
                        role,
                        sender_id: format!("{role}-{}", rng.random_range(0..5)),
                        channel: if rng.random_range(0..6) == 0 && in_model {
                            None
                        } else {
                            Some(channel)
                        },
                        sent_at: (rng.random_range(0..40) != 0).then_some(t),
                        body,
                        sentiment,
                        deleted: rng.random_range(0..40) == 0,
                    });
                }
                d.convs.push(conv);
            }
        }
        d.work = work::WorkData::generate(&mut rng, &d.convs, base);
        // Ultimate: vendor counts, no messages.
        let statuses = [
            Some("botHandled"),
            Some("bot_handled"),
            Some("agent"),
            Some("email"),
            Some("customEscalation"),
            Some("failedEscalation"),
            None,
        ];
        let resolutions = [
            Some("informed"),
            Some("resolved"),
            Some("escalated"),
            Some("undefined"),
            None,
        ];
        let intents = [
            "refund_request",
            "order_status",
            "Greeting",
            "Talk to a human/agent",
            "returns",
        ];
        for i in 0..n {
            let id = format!("u-c{i}");
            let start = base + Duration::seconds(rng.random_range(0..10 * 86_400));
            let status = statuses[rng.random_range(0..statuses.len())];
            let count = rng.random_range(0..12);
            let test = rng.random_range(0..12) == 0;
            d.convs.push(Conv {
                source: "ultimate",
                id: id.clone(),
                customer_id: None,
                channel: Some("chat"),
                started_at: Some(start),
                status: status.map(|_| "closed"),
                message_count: Some(count),
                escalated: Some(matches!(
                    status,
                    Some("agent" | "email" | "customEscalation")
                )),
                bot_handled: Some(matches!(status, Some("botHandled" | "bot_handled"))),
                csat: None,
                deleted: false,
                in_model: true,
                is_test: Some(test),
            });
            let mut its = Vec::new();
            for _ in 0..rng.random_range(0..4) {
                its.push(Intent {
                    name: intents[rng.random_range(0..intents.len())],
                    at: start + Duration::seconds(rng.random_range(0..600)),
                    not_meaningful: rng.random_range(0..5) == 0,
                });
            }
            let visitor = rng.random_range(0..10);
            d.ult.push(UltConv {
                id,
                start,
                status,
                resolution: resolutions[rng.random_range(0..resolutions.len())],
                visitor: (rng.random_range(0..10) != 0).then_some(visitor),
                not_understood: Some(rng.random_range(0..=visitor)),
                intents: its,
                deleted: rng.random_range(0..30) == 0,
                test,
            });
        }
        // Ada's own table.
        for c in d.convs.iter().filter(|c| c.source == "ada") {
            d.ada.push(AdaConv {
                id: c.id.clone(),
                date_created: c.started_at.unwrap_or(base),
                engaged: rng.random_bool(0.7),
                escalated: rng.random_bool(0.2),
                deleted: c.deleted,
                test: c.is_test == Some(true),
            });
        }
        d
    }

    /// A `--since` day in the middle of the data.
    pub fn since_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 6).unwrap()
    }

    /// DDL and inserts.
    pub fn statements(&self, ts_type: &str) -> Vec<String> {
        let book = format!("_raw TEXT, _synced_at {ts_type}, _load_id TEXT, _deleted_at {ts_type}");
        let mut out = vec![
            "CREATE SCHEMA IF NOT EXISTS talkhouse".to_owned(),
            "CREATE SCHEMA IF NOT EXISTS ada".to_owned(),
            "CREATE SCHEMA IF NOT EXISTS ultimate".to_owned(),
            format!(
                "CREATE TABLE talkhouse.model_conversations (source TEXT, conversation_id TEXT, customer_id TEXT, \
channel TEXT, started_at {ts_type}, ended_at {ts_type}, status TEXT, message_count BIGINT, escalated BOOLEAN, \
bot_handled BOOLEAN, csat DOUBLE PRECISION, updated_at {ts_type}, is_test BOOLEAN, {book}, \
PRIMARY KEY (source, conversation_id))"
            ),
            format!(
                "CREATE TABLE talkhouse.model_messages (source TEXT, message_id TEXT, conversation_id TEXT, session_id TEXT, \
sender_role TEXT, sender_id TEXT, channel TEXT, sent_at {ts_type}, body TEXT, language TEXT, sentiment DOUBLE PRECISION, \
{book}, PRIMARY KEY (source, message_id))"
            ),
            format!(
                "CREATE TABLE talkhouse.source_settings (source TEXT PRIMARY KEY, vendor TEXT, include_test BOOLEAN, {book})"
            ),
            "INSERT INTO talkhouse.source_settings (source, vendor, include_test) VALUES \
('gladly', 'gladly', false), ('giosg', 'giosg', false), ('ada', 'ada', false), ('ultimate', 'ultimate', false), \
('helpdesk', 'gladly', false)"
                .to_owned(),
            format!(
                "CREATE TABLE ada.conversations (id TEXT PRIMARY KEY, date_created {ts_type}, is_engaged BOOLEAN, \
is_escalated BOOLEAN, is_test_user BOOLEAN, {book})"
            ),
            format!(
                "CREATE TABLE ultimate.conversations (conversation_id TEXT PRIMARY KEY, bot_id TEXT, start_date DATE, \
export_date DATE, conversation_start_time {ts_type}, conversation_status TEXT, last_resolution TEXT, \
bot_messages_count BIGINT, visitor_messages_count BIGINT, not_understood_messages_count BIGINT, test_mode BOOLEAN, {book})"
            ),
            format!("CREATE TABLE ultimate.export_days (bot_id TEXT, day DATE, {book})"),
            format!(
                "CREATE TABLE ultimate.triggered_intent_replies (conversation_id TEXT, position BIGINT, intent_name TEXT, \
intent_timestamp {ts_type}, not_meaningful BOOLEAN, {book})"
            ),
        ];
        out.extend(self.work.statements(ts_type, &book));
        let mut rows = Vec::new();
        for c in self.convs.iter().filter(|c| c.in_model) {
            rows.push(format!(
                "({}, {}, {}, {}, {}, NULL, {}, {}, {}, {}, {}, NULL, {}, NULL, NULL, NULL, {})",
                lit(c.source),
                lit(&c.id),
                opt_lit(c.customer_id.as_deref()),
                opt_lit(c.channel),
                ts(c.started_at),
                opt_lit(c.status),
                c.message_count
                    .map_or_else(|| "NULL".into(), |n| n.to_string()),
                b(c.escalated),
                b(c.bot_handled),
                f(c.csat),
                b(c.is_test),
                deleted(c.deleted)
            ));
        }
        for chunk in rows.chunks(200) {
            out.push(format!(
                "INSERT INTO talkhouse.model_conversations VALUES {}",
                chunk.join(", ")
            ));
        }
        let mut rows = Vec::new();
        for m in &self.msgs {
            rows.push(format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, {}, NULL, {}, NULL, NULL, NULL, {})",
                lit(m.source),
                lit(&m.id),
                lit(&m.conversation_id),
                opt_lit(m.session_id.as_deref()),
                lit(m.role),
                lit(&m.sender_id),
                opt_lit(m.channel),
                ts(m.sent_at),
                opt_lit(m.body.as_deref()),
                f(m.sentiment),
                deleted(m.deleted)
            ));
        }
        for chunk in rows.chunks(200) {
            out.push(format!(
                "INSERT INTO talkhouse.model_messages VALUES {}",
                chunk.join(", ")
            ));
        }
        let rows: Vec<String> = self
            .ada
            .iter()
            .map(|a| {
                format!(
                    "({}, {}, {}, {}, {}, NULL, NULL, NULL, {})",
                    lit(&a.id),
                    ts(Some(a.date_created)),
                    a.engaged,
                    a.escalated,
                    a.test,
                    deleted(a.deleted)
                )
            })
            .collect();
        out.push(format!(
            "INSERT INTO ada.conversations VALUES {}",
            rows.join(", ")
        ));
        let rows: Vec<String> = self
            .ult
            .iter()
            .map(|u| {
                format!(
                    "({}, {}, {}, {}, {}, {}, {}, 1, {}, {}, {}, NULL, NULL, NULL, {})",
                    lit(&u.id),
                    lit(BOT),
                    lit(&u.start.date_naive().to_string()),
                    lit(&u.start.date_naive().to_string()),
                    ts(Some(u.start)),
                    opt_lit(u.status),
                    opt_lit(u.resolution),
                    u.visitor.map_or_else(|| "NULL".into(), |v| v.to_string()),
                    u.not_understood
                        .map_or_else(|| "NULL".into(), |v| v.to_string()),
                    u.test,
                    deleted(u.deleted)
                )
            })
            .collect();
        out.push(format!(
            "INSERT INTO ultimate.conversations VALUES {}",
            rows.join(", ")
        ));
        // The export of every day up to the newest conversation's has been read: that newest
        // day is the one not final yet.
        let days: BTreeSet<NaiveDate> = self.ult.iter().map(|u| u.start.date_naive()).collect();
        let rows: Vec<String> = days
            .iter()
            .map(|d| {
                format!(
                    "({}, {}, NULL, NULL, NULL, NULL)",
                    lit(BOT),
                    lit(&d.to_string())
                )
            })
            .collect();
        out.push(format!(
            "INSERT INTO ultimate.export_days VALUES {}",
            rows.join(", ")
        ));
        let rows: Vec<String> = self
            .ult
            .iter()
            .flat_map(|u| {
                u.intents.iter().enumerate().map(move |(p, i)| {
                    format!(
                        "({}, {p}, {}, {}, {}, NULL, NULL, NULL, NULL)",
                        lit(&u.id),
                        lit(i.name),
                        ts(Some(i.at)),
                        i.not_meaningful
                    )
                })
            })
            .collect();
        if !rows.is_empty() {
            out.push(format!(
                "INSERT INTO ultimate.triggered_intent_replies VALUES {}",
                rows.join(", ")
            ));
        }
        out
    }

    fn conv(&self, source: &str, id: &str) -> Option<&Conv> {
        self.convs
            .iter()
            .find(|c| c.in_model && c.source == source && c.id == id)
    }

    /// Messages the view shows, with their effective channel.
    pub fn visible_messages(&self) -> Vec<(&Msg, Option<&'static str>)> {
        self.msgs
            .iter()
            .filter(|m| !m.deleted)
            .filter_map(|m| match self.conv(m.source, &m.conversation_id) {
                Some(c) if c.deleted || c.is_test == Some(true) => None,
                Some(c) => Some((m, m.channel.or(c.channel))),
                None => Some((m, m.channel)),
            })
            .collect()
    }

    /// Conversations the view shows: (source, id, channel, started_at, message_count).
    pub fn visible_conversations(&self) -> Vec<RefConv> {
        let mut stored: BTreeMap<(&str, &str), Vec<&Msg>> = BTreeMap::new();
        for m in self.msgs.iter().filter(|m| !m.deleted) {
            stored
                .entry((m.source, m.conversation_id.as_str()))
                .or_default()
                .push(m);
        }
        let mut out = Vec::new();
        for c in self
            .convs
            .iter()
            .filter(|c| c.in_model && !c.deleted && c.is_test != Some(true))
        {
            let ms = stored
                .get(&(c.source, c.id.as_str()))
                .cloned()
                .unwrap_or_default();
            let first = ms.iter().filter_map(|m| m.sent_at).min();
            out.push(RefConv {
                source: c.source,
                id: c.id.clone(),
                channel: c
                    .channel
                    .or_else(|| ms.iter().filter_map(|m| m.channel).min()),
                started_at: c.started_at.or(first),
                message_count: c.message_count.unwrap_or(ms.len() as i64),
                escalated: c.escalated,
                bot_handled: c.bot_handled,
                csat: c.csat,
            });
        }
        for ((source, id), ms) in &stored {
            if self.conv(source, id).is_some() {
                continue;
            }
            out.push(RefConv {
                source: ms[0].source,
                id: (*id).to_owned(),
                channel: ms.iter().filter_map(|m| m.channel).min(),
                started_at: ms.iter().filter_map(|m| m.sent_at).min(),
                message_count: ms.len() as i64,
                escalated: None,
                bot_handled: None,
                csat: None,
            });
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct RefConv {
    pub source: &'static str,
    pub id: String,
    pub channel: Option<&'static str>,
    pub started_at: Option<DateTime<Utc>>,
    pub message_count: i64,
    pub escalated: Option<bool>,
    pub bot_handled: Option<bool>,
    pub csat: Option<f64>,
}

fn since_ok(t: Option<DateTime<Utc>>, since: Option<NaiveDate>) -> bool {
    match since {
        None => true,
        Some(d) => t.is_some_and(|t| t.date_naive() >= d),
    }
}

fn close(a: Option<f64>, b: Option<f64>, what: &str) {
    match (a, b) {
        (None, None) => {}
        (Some(x), Some(y)) => assert!(
            (x - y).abs() <= 1e-6 * (1.0 + y.abs()),
            "{what}: report {x} vs reference {y}"
        ),
        _ => panic!("{what}: report {a:?} vs reference {b:?}"),
    }
}

fn close_dist(a: &Distribution, values: &[f64], what: &str) {
    let r = Distribution::of(values);
    close(a.mean, r.mean, &format!("{what}.mean"));
    close(a.median, r.median, &format!("{what}.median"));
    close(a.p90, r.p90, &format!("{what}.p90"));
}

/// Row-level checks of the views.
pub async fn check_views(dest: &dyn Destination, data: &Dataset) {
    let rows = dest
        .query("SELECT source, conversation_id, message_count FROM talkhouse.conversations ORDER BY source, conversation_id")
        .await
        .unwrap();
    let mut expected: Vec<(String, String, i64)> = data
        .visible_conversations()
        .into_iter()
        .map(|c| (c.source.to_owned(), c.id, c.message_count))
        .collect();
    expected.sort();
    let got: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| match &r[k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (
                s("source"),
                s("conversation_id"),
                s("message_count").parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "conversation rows");
    assert_eq!(got, expected, "conversations view");
    let rows = dest
        .query("SELECT COUNT(*) AS n FROM talkhouse.messages")
        .await
        .unwrap();
    let n: String = match &rows[0]["n"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(
        n.parse::<usize>().unwrap(),
        data.visible_messages().len(),
        "messages view"
    );
}

/// Compares every figure of the report with the reference computed from `data`.
pub fn check_report(r: &Report, data: &Dataset, since: Option<NaiveDate>) {
    let convs: Vec<RefConv> = data
        .visible_conversations()
        .into_iter()
        .filter(|c| since_ok(c.started_at, since))
        .collect();
    let msgs: Vec<(&Msg, Option<&str>)> = data
        .visible_messages()
        .into_iter()
        .filter(|(m, _)| since_ok(m.sent_at, since))
        .collect();

    // Volume.
    assert_eq!(
        r.conversations.total,
        convs.len() as u64,
        "conversations.total"
    );
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_channel: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_day: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in &convs {
        *by_source.entry(c.source.into()).or_default() += 1;
        *by_channel
            .entry(c.channel.unwrap_or("unknown").into())
            .or_default() += 1;
        if let Some(t) = c.started_at {
            *by_day
                .entry((t.date_naive().to_string(), c.source.into()))
                .or_default() += 1;
        }
    }
    assert_eq!(r.conversations.by_source, by_source);
    assert_eq!(r.conversations.by_channel, by_channel);
    let got: BTreeMap<(String, String), u64> = r
        .conversations
        .by_day
        .iter()
        .map(|d| ((d.day.clone(), d.source.clone()), d.count))
        .collect();
    assert_eq!(got, by_day, "conversations.by_day");
    assert_eq!(r.messages.total, msgs.len() as u64, "messages.total");
    let mut m_source: BTreeMap<String, u64> = BTreeMap::new();
    let mut m_role: BTreeMap<String, u64> = BTreeMap::new();
    for (m, _) in &msgs {
        *m_source.entry(m.source.into()).or_default() += 1;
        *m_role.entry(m.role.into()).or_default() += 1;
    }
    assert_eq!(r.messages.by_source, m_source);
    assert_eq!(r.messages.by_role, m_role);
    for (source, counts) in &r.sources {
        assert_eq!(
            counts.conversations,
            by_source.get(source).copied().unwrap_or(0)
        );
        assert_eq!(counts.messages, m_source.get(source).copied().unwrap_or(0));
    }

    // Messages per conversation and per session.
    let values: Vec<f64> = convs.iter().map(|c| c.message_count as f64).collect();
    close_dist(&r.messages.per_conversation, &values, "per_conversation");
    // Sessions: the chat sessions of sources that report none, and the contacts of one that does.
    let values = work::session_sizes(&data.visible_messages(), &data.work, since);
    assert_eq!(
        r.messages.per_session.sessions,
        values.len() as u64,
        "sessions"
    );
    let d = Distribution::of(&values);
    close(r.messages.per_session.mean, d.mean, "per_session.mean");
    close(
        r.messages.per_session.median,
        d.median,
        "per_session.median",
    );
    close(r.messages.per_session.p90, d.p90, "per_session.p90");

    // First response.
    let mut by_conv: BTreeMap<(&str, &str), Vec<TimedMessage<'_>>> = BTreeMap::new();
    for (m, _) in data.visible_messages() {
        by_conv
            .entry((m.source, m.conversation_id.as_str()))
            .or_default()
            .push(TimedMessage {
                sender_role: m.role,
                sent_at: m.sent_at,
            });
    }
    let (mut with_customer, mut any, mut agents) = (0u64, Vec::new(), Vec::new());
    let mut hist = vec![0u64; talkhouse_analytics::metrics::RESPONSE_BUCKETS.len()];
    for ms in by_conv.values() {
        let first = ms
            .iter()
            .filter(|m| m.sender_role == "customer")
            .filter_map(|m| m.sent_at)
            .min();
        if first.is_none() || !since_ok(first, since) {
            continue;
        }
        with_customer += 1;
        if let Some(s) = first_response_seconds(ms, false) {
            any.push(s);
            hist[talkhouse_analytics::metrics::response_bucket(s)] += 1;
        }
        if let Some(s) = first_response_seconds(ms, true) {
            agents.push(s);
        }
    }
    let fr = &r.first_response_seconds;
    assert_eq!(
        fr.conversations, with_customer,
        "first_response.conversations"
    );
    assert_eq!(fr.responded, any.len() as u64, "first_response.responded");
    assert_eq!(fr.agent_responded, agents.len() as u64);
    let d = Distribution::of(&any);
    close(fr.mean, d.mean, "first_response.mean");
    close(fr.median, d.median, "first_response.median");
    close(fr.p90, d.p90, "first_response.p90");
    let d = Distribution::of(&agents);
    close(fr.agent_median, d.median, "first_response.agent_median");
    close(fr.agent_p90, d.p90, "first_response.agent_p90");
    assert_eq!(
        fr.histogram.iter().map(|b| b.count).collect::<Vec<_>>(),
        hist,
        "histogram"
    );

    // Sentiment of customer messages.
    let mut ch: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut src: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut all = Vec::new();
    for (m, channel) in &msgs {
        if let (Some(s), "customer") = (m.sentiment, m.role) {
            ch.entry(channel.unwrap_or("unknown").into())
                .or_default()
                .push(s);
            src.entry(m.source.into()).or_default().push(s);
            all.push(s);
        }
    }
    let means = |m: BTreeMap<String, Vec<f64>>| -> BTreeMap<String, f64> {
        m.into_iter()
            .map(|(k, v)| (k, v.iter().sum::<f64>() / v.len() as f64))
            .collect()
    };
    let (ch, src) = (means(ch), means(src));
    assert_eq!(
        r.sentiment.by_channel.keys().collect::<Vec<_>>(),
        ch.keys().collect::<Vec<_>>()
    );
    for (k, v) in &ch {
        close(
            r.sentiment.by_channel.get(k).copied(),
            Some(*v),
            &format!("sentiment.by_channel.{k}"),
        );
    }
    for (k, v) in &src {
        close(
            r.sentiment.by_source.get(k).copied(),
            Some(*v),
            &format!("sentiment.by_source.{k}"),
        );
    }
    assert!(!all.is_empty(), "the data has English customer messages");
    let positive = all.iter().filter(|s| **s >= 0.05).count() as u64;
    let negative = all.iter().filter(|s| **s <= -0.05).count() as u64;
    assert_eq!(r.sentiment.customer.scored, all.len() as u64);
    close(
        r.sentiment.customer.positive,
        rate(positive, all.len() as u64),
        "positive share",
    );
    close(
        r.sentiment.customer.negative,
        rate(negative, all.len() as u64),
        "negative share",
    );

    // Escalation, bot handling, CSAT.
    let known: Vec<&RefConv> = convs.iter().filter(|c| c.escalated.is_some()).collect();
    let esc = known.iter().filter(|c| c.escalated == Some(true)).count() as u64;
    close(
        r.escalation.escalation_rate,
        rate(esc, known.len() as u64),
        "escalation_rate",
    );
    let bk: Vec<&RefConv> = convs.iter().filter(|c| c.bot_handled.is_some()).collect();
    let bh = bk.iter().filter(|c| c.bot_handled == Some(true)).count() as u64;
    close(
        r.escalation.bot_handled_rate,
        rate(bh, bk.len() as u64),
        "bot_handled_rate",
    );
    for source in ["gladly", "giosg", "ada", work::SOURCE] {
        let cs: Vec<f64> = convs
            .iter()
            .filter(|c| c.source == source)
            .filter_map(|c| c.csat)
            .collect();
        let o = r
            .escalation
            .by_source
            .get(source)
            .copied()
            .unwrap_or_default();
        assert_eq!(o.csat_responses, cs.len() as u64);
        close(
            o.csat_mean,
            mean_of(cs.iter().sum(), cs.len() as u64),
            &format!("csat {source}"),
        );
    }

    // Ada.
    let ada: Vec<&AdaConv> = data
        .ada
        .iter()
        .filter(|a| !a.deleted && !a.test && since_ok(Some(a.date_created), since))
        .collect();
    assert!(r.ada.present);
    assert_eq!(r.ada.sources, vec!["ada".to_owned()]);
    assert_eq!(r.ada.conversations, ada.len() as u64);
    close(
        r.ada.engaged_rate,
        rate(
            ada.iter().filter(|a| a.engaged).count() as u64,
            ada.len() as u64,
        ),
        "ada engaged",
    );
    close(
        r.ada.escalated_rate,
        rate(
            ada.iter().filter(|a| a.escalated).count() as u64,
            ada.len() as u64,
        ),
        "ada escalated",
    );

    // Ultimate, by the vendor's definitions.
    let ult: Vec<&UltConv> = data
        .ult
        .iter()
        .filter(|u| !u.deleted && !u.test && since_ok(Some(u.start), since))
        .collect();
    let total = ult.len() as u64;
    let count = |p: &dyn Fn(&UltConv) -> bool| ult.iter().filter(|u| p(u)).count() as u64;
    let handled = |u: &UltConv| matches!(u.status, Some("botHandled" | "bot_handled"));
    let escalated = |u: &UltConv| matches!(u.status, Some("email" | "agent" | "customEscalation"));
    let u = &r.ultimate;
    assert!(u.present);
    assert_eq!(u.total_conversations, total);
    close(
        u.bot_handled_rate,
        rate(count(&handled), total),
        "ultimate bot handled",
    );
    close(
        u.deflection_rate,
        rate(count(&|u| u.status.is_some() && !escalated(u)), total),
        "ultimate deflection",
    );
    close(
        u.escalation_rate,
        rate(count(&escalated), total),
        "ultimate escalation",
    );
    close(
        u.failed_escalation_rate,
        rate(count(&|u| u.status == Some("failedEscalation")), total),
        "failed",
    );
    close(
        u.informed_rate,
        rate(count(&|u| u.resolution == Some("informed")), total),
        "informed",
    );
    close(
        u.automation_rate,
        rate(
            count(&|u| matches!(u.resolution, Some("informed" | "resolved"))),
            total,
        ),
        "automation",
    );
    let visitor: f64 = ult.iter().filter_map(|u| u.visitor).map(f64::from).sum();
    let nu: f64 = ult
        .iter()
        .filter_map(|u| u.not_understood)
        .map(f64::from)
        .sum();
    close(
        u.messages_understood_rate,
        Some((visitor - nu) / visitor),
        "understood",
    );
    let mut per_intent: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for c in &ult {
        let first = c
            .intents
            .iter()
            .filter(|i| {
                !i.not_meaningful && !["Greeting", "Talk to a human/agent"].contains(&i.name)
            })
            .enumerate()
            .min_by_key(|(pos, i)| (i.at, *pos))
            .map(|(_, i)| i);
        if let Some(i) = first {
            let e = per_intent.entry(i.name).or_default();
            e.0 += 1;
            e.1 += u64::from(handled(c));
        }
    }
    let got: BTreeMap<&str, (u64, u64)> = u
        .by_first_meaningful_intent
        .iter()
        .map(|i| {
            (
                i.intent.as_str(),
                (i.total_conversations, i.bot_handled_conversations),
            )
        })
        .collect();
    assert_eq!(got, per_intent, "ultimate by first meaningful intent");
    let order: Vec<u64> = u
        .by_first_meaningful_intent
        .iter()
        .map(|i| i.total_conversations)
        .collect();
    assert!(order.windows(2).all(|w| w[0] >= w[1]), "largest first");
    // The newest day is not final (its next day's export is not read).
    let newest = data.ult.iter().map(|u| u.start.date_naive()).max();
    let newest_shown = ult.iter().any(|c| Some(c.start.date_naive()) == newest);
    assert_eq!(
        u.first_incomplete_day,
        newest.filter(|_| newest_shown).map(|d| d.to_string()),
        "first day not final"
    );
    assert_eq!(u.incomplete_days, u64::from(newest_shown));

    // Test conversations: out of every figure, and counted.
    let mut left_out: BTreeMap<String, u64> = BTreeMap::new();
    for c in data.convs.iter().filter(|c| {
        c.in_model && !c.deleted && c.is_test == Some(true) && since_ok(c.started_at, since)
    }) {
        *left_out.entry(c.source.to_owned()).or_default() += 1;
    }
    assert!(since.is_some() || left_out.len() == 2, "{left_out:?}");
    assert_eq!(
        r.test_conversations_left_out, left_out,
        "test conversations left out"
    );
    let _ = BTreeSet::<u8>::new();
}
