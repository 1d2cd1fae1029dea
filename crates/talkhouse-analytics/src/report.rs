//! The report: every figure of the report's JSON contract, from the warehouse.
//!
//! [`report`] runs the queries of [`crate::sql`] through [`Destination::query`] and combines
//! their aggregate rows here, in plain Rust ([`Report::from_rows`]), so the combination is
//! testable without a database.
//!
//! # Definitions
//!
//! * `since` filters each figure on its own event time: conversations on `started_at`, messages
//!   on `sent_at`, sessions on their first message, first responses on the first customer
//!   message, Ada on `date_created`, Ultimate on `conversation_start_time`.
//! * Counts are integers; rates are fractions in [0, 1]; a rate or statistic with nothing to
//!   divide by is `null`.
//! * `messages.per_conversation` covers every conversation (the vendor's count where it gives
//!   one); `per_session` covers sessions (`talkhouse.sessions`: Gladly's contacts with the
//!   vendor's message count, chat sessions from their messages elsewhere).
//! * `first_response_seconds`: first agent-or-bot message strictly after the first customer
//!   message, over conversations that got one; `agent_*` counts agents only.
//! * `sentiment.by_channel` / `by_source`: mean score of **customer** messages that have a
//!   score (English text); `by_role` covers every role.
//! * `escalation`: over conversations whose `escalated` (or `bot_handled`) is known; CSAT is the
//!   mean of the vendor's scores where present, per source (scales differ between vendors).
//! * Test traffic (Ultimate `test_mode`, Ada `is_test_user`) is left out of every figure,
//!   vendor metrics included, unless the source sets `include_test`;
//!   `test_conversations_left_out` counts what was left out, per source.
//! * `gladly`: over every source `talkhouse.source_settings` names with vendor `gladly`, at once:
//!   `contacts` counts its sessions (`talkhouse.sessions`, by `started_at`); `handle_seconds`
//!   (mean, median, p90, over all and per channel) is the contact's handle time as Gladly
//!   reports it, agents' time plus after-contact work; `top_agents` and `top_teams` rank by
//!   contacts worked on (`talkhouse.work`, by `started_at`), with the median handle time of
//!   their work sessions; `contact_first_response_seconds` is the first response within each
//!   contact (`talkhouse.session_first_responses`, by the first customer message).
//! * `ada`, `ultimate`: the vendors' own metrics, read from the views their connectors define
//!   (`<schema>.metric_conversations` for Ada, `<schema>.metrics_by_day` and
//!   `metrics_by_day_and_first_meaningful_intent` for Ultimate), for every source that
//!   `talkhouse.source_settings` names with that vendor; counts are added up across sources and
//!   days before a rate is taken. `present` is false when there is none. `since` filters Ada on
//!   `date_created` and Ultimate on `start_date`. Ultimate's newest day is not final until the
//!   next day's export is read: `first_incomplete_day` says from when the figures may still move,
//!   and every format notes it.

use std::collections::BTreeMap;

use chrono::{NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use talkhouse_model::{Destination, DestinationError};

use crate::metrics::{Distribution, RESPONSE_BUCKETS, mean_of, rate};
use crate::sql;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// A query failed.
    #[error("report query `{name}` failed: {source}")]
    Query {
        /// The query's name (see [`crate::sql::report_queries`]).
        name: String,
        /// The destination's error.
        #[source]
        source: DestinationError,
    },
    /// The report could not be serialised.
    #[error("cannot serialise the report: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// One row of a query answer.
pub type QueryRow = Map<String, Value>;

/// Options of [`report_with`].
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Only data from this day on (UTC).
    pub since: Option<NaiveDate>,
}

/// Conversations and messages of one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceCounts {
    /// Conversations.
    pub conversations: u64,
    /// Messages.
    pub messages: u64,
}

/// A count on one day for one source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Source name.
    pub source: String,
    /// How many.
    pub count: u64,
}

/// Conversation volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversations {
    /// All conversations.
    pub total: u64,
    /// Per source.
    pub by_source: BTreeMap<String, u64>,
    /// Per channel (`unknown` where the vendor gives none).
    pub by_channel: BTreeMap<String, u64>,
    /// Per day and source (conversations without a start time are left out).
    pub by_day: Vec<DayCount>,
}

/// Messages per chat session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStats {
    /// Sessions.
    pub sessions: u64,
    /// Mean messages per session.
    pub mean: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
}

/// Message volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    /// All messages.
    pub total: u64,
    /// Per source.
    pub by_source: BTreeMap<String, u64>,
    /// Per channel.
    pub by_channel: BTreeMap<String, u64>,
    /// Per sender role.
    pub by_role: BTreeMap<String, u64>,
    /// Per day and source.
    pub by_day: Vec<DayCount>,
    /// Messages per conversation.
    pub per_conversation: Distribution,
    /// Messages per session.
    pub per_session: SessionStats,
}

/// One bar of the first-response histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Label, such as `1–2 min`.
    pub label: String,
    /// Exclusive upper bound in seconds; `null` for the last bucket.
    pub upper_seconds: Option<f64>,
    /// Conversations.
    pub count: u64,
}

/// First response time in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FirstResponse {
    /// Conversations with a customer message.
    pub conversations: u64,
    /// Of those, conversations with an agent or bot reply after it.
    pub responded: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// Conversations with an agent (not bot) reply.
    pub agent_responded: u64,
    /// Median, agents only.
    pub agent_median: Option<f64>,
    /// 90th percentile, agents only.
    pub agent_p90: Option<f64>,
    /// Distribution of response times.
    pub histogram: Vec<Bucket>,
}

/// Shares of positive, neutral and negative scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SentimentSplit {
    /// Messages with a score.
    pub scored: u64,
    /// Mean score.
    pub mean: Option<f64>,
    /// Share ≥ 0.05.
    pub positive: Option<f64>,
    /// Share in between.
    pub neutral: Option<f64>,
    /// Share ≤ −0.05.
    pub negative: Option<f64>,
}

/// Sentiment of messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// Mean score of customer messages per channel.
    pub by_channel: BTreeMap<String, f64>,
    /// Mean score of customer messages per source.
    pub by_source: BTreeMap<String, f64>,
    /// Mean score per sender role.
    pub by_role: BTreeMap<String, f64>,
    /// Customer messages overall.
    pub customer: SentimentSplit,
    /// Messages with a score, all roles.
    pub scored: u64,
}

/// Outcomes of one source's conversations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceOutcome {
    /// Conversations.
    pub conversations: u64,
    /// Escalated ÷ conversations whose escalation is known.
    pub escalation_rate: Option<f64>,
    /// Bot handled ÷ conversations whose bot handling is known.
    pub bot_handled_rate: Option<f64>,
    /// Mean CSAT (the vendor's scale).
    pub csat_mean: Option<f64>,
    /// CSAT responses.
    pub csat_responses: u64,
}

/// Escalation, bot handling and CSAT across sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// Escalated ÷ conversations whose escalation is known.
    pub escalation_rate: Option<f64>,
    /// Bot handled (deflected) ÷ conversations whose bot handling is known.
    pub bot_handled_rate: Option<f64>,
    /// Conversations with a known escalation flag.
    pub conversations: u64,
    /// CSAT responses.
    pub csat_responses: u64,
    /// Per source.
    pub by_source: BTreeMap<String, SourceOutcome>,
}

/// Ultimate's metrics by first meaningful intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentStat {
    /// Intent name.
    pub intent: String,
    /// Conversations whose first meaningful intent this is.
    pub total_conversations: u64,
    /// Of those, bot handled.
    pub bot_handled_conversations: u64,
    /// Bot handled ÷ total.
    pub bot_handled_rate: Option<f64>,
}

/// Ultimate's own metrics (vendor definitions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ultimate {
    /// Whether any Ultimate schema was found.
    pub present: bool,
    /// The schemas read.
    pub sources: Vec<String>,
    /// Distinct conversations.
    pub total_conversations: u64,
    /// `botHandled` ÷ total.
    pub bot_handled_rate: Option<f64>,
    /// Status not `email`/`agent`/`customEscalation` ÷ total (NULL status counts as neither).
    pub deflection_rate: Option<f64>,
    /// Status `email`/`agent`/`customEscalation` ÷ total.
    pub escalation_rate: Option<f64>,
    /// `failedEscalation` ÷ total.
    pub failed_escalation_rate: Option<f64>,
    /// `last_resolution = informed` ÷ total.
    pub informed_rate: Option<f64>,
    /// `last_resolution` in (informed, resolved) ÷ total.
    pub automation_rate: Option<f64>,
    /// (Σ visitor messages − Σ not understood) ÷ Σ visitor messages.
    pub messages_understood_rate: Option<f64>,
    /// Per first meaningful intent, largest first.
    pub by_first_meaningful_intent: Vec<IntentStat>,
    /// The first day whose figures are not final yet (`YYYY-MM-DD`): its conversations can end
    /// in the next day's export, which has not been read yet. `null` when every day is final.
    pub first_incomplete_day: Option<String>,
    /// Days in the figures that are not final yet.
    pub incomplete_days: u64,
}

/// Ada's own metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ada {
    /// Whether any Ada schema was found.
    pub present: bool,
    /// The schemas read.
    pub sources: Vec<String>,
    /// Conversations.
    pub conversations: u64,
    /// `is_engaged` ÷ conversations.
    pub engaged_rate: Option<f64>,
    /// `is_escalated` ÷ conversations.
    pub escalated_rate: Option<f64>,
    /// Escalated among engaged ÷ engaged.
    pub escalated_of_engaged_rate: Option<f64>,
}

/// Handle time of sessions, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HandleTime {
    /// Sessions with a handle time.
    pub contacts: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
}

/// An agent or a team and the work it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStat {
    /// The agent's or team's id.
    pub id: String,
    /// The team's name (`null` for agents).
    pub name: Option<String>,
    /// Contacts (sessions) it worked on.
    pub contacts: u64,
    /// Its work sessions.
    pub work_sessions: u64,
    /// Median handle time of its work sessions, in seconds.
    pub handle_seconds_median: Option<f64>,
}

/// First response within contacts, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactResponse {
    /// Contacts with a customer message.
    pub contacts: u64,
    /// Of those, contacts with an agent or bot reply after it.
    pub responded: u64,
    /// Median.
    pub median: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// Contacts with an agent (not bot) reply.
    pub agent_responded: u64,
    /// Median, agents only.
    pub agent_median: Option<f64>,
    /// 90th percentile, agents only.
    pub agent_p90: Option<f64>,
}

/// Gladly's contacts and the agent work on them (from its Reports API, through the model's
/// `talkhouse.sessions`, `talkhouse.work` and `talkhouse.session_first_responses`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gladly {
    /// Whether any Gladly source was found.
    pub present: bool,
    /// The sources read.
    pub sources: Vec<String>,
    /// Contacts (sessions).
    pub contacts: u64,
    /// Handle time per contact: the agents' time on it plus their after-contact work.
    pub handle_seconds: HandleTime,
    /// The same per channel.
    pub handle_seconds_by_channel: BTreeMap<String, HandleTime>,
    /// Agents by contacts handled, most first.
    pub top_agents: Vec<WorkerStat>,
    /// Teams by contacts their agents handled, most first (an agent in several teams counts
    /// for the first by id).
    pub top_teams: Vec<WorkerStat>,
    /// First customer message → first reply, within each contact.
    pub contact_first_response_seconds: ContactResponse,
}

/// The whole report. Its JSON form is the stable contract of `talkhouse report --format json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When it was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The `--since` day, if any.
    pub since: Option<String>,
    /// Per source.
    pub sources: BTreeMap<String, SourceCounts>,
    /// Conversation volume.
    pub conversations: Conversations,
    /// Message volume.
    pub messages: Messages,
    /// First response time.
    pub first_response_seconds: FirstResponse,
    /// Sentiment.
    pub sentiment: Sentiment,
    /// Escalation, bot handling, CSAT.
    pub escalation: Escalation,
    /// Ultimate's metrics.
    pub ultimate: Ultimate,
    /// Ada's metrics.
    pub ada: Ada,
    /// Gladly's contacts, handle time and agent work.
    pub gladly: Gladly,
    /// Conversations the vendors mark as tests, left out of every figure above, per source
    /// (`include_test = true` in a source's section brings them back).
    pub test_conversations_left_out: BTreeMap<String, u64>,
}

/// The answers the report is made of, one entry per query (vendor ones per schema).
#[derive(Debug, Clone, Default)]
pub struct ReportRows {
    /// [`sql::conversation_counts`] (the report takes it, [`sql::outcomes`] and
    /// [`sql::per_conversation`] from one query: [`sql::conversation_figures`], split by
    /// [`sql::conversation_rows`]).
    pub conversation_counts: Vec<QueryRow>,
    /// [`sql::message_counts`].
    pub message_counts: Vec<QueryRow>,
    /// [`sql::per_conversation`].
    pub per_conversation: Vec<QueryRow>,
    /// [`sql::per_session`].
    pub per_session: Vec<QueryRow>,
    /// [`sql::first_response`] (the report runs [`sql::first_response_with_histogram`]).
    pub first_response: Vec<QueryRow>,
    /// [`sql::first_response_histogram`] (the report takes it from the first response's row:
    /// [`sql::histogram_rows`]).
    pub first_response_histogram: Vec<QueryRow>,
    /// [`sql::outcomes`].
    pub outcomes: Vec<QueryRow>,
    /// [`sql::test_left_out`].
    pub test_left_out: Vec<QueryRow>,
    /// [`sql::ada`] per schema.
    pub ada: Vec<(String, Vec<QueryRow>)>,
    /// [`sql::ultimate`] and [`sql::ultimate_intents`] per schema.
    pub ultimate: Vec<(String, Vec<QueryRow>, Vec<QueryRow>)>,
    /// The Gladly queries, over every Gladly source at once (`None` when there is none).
    pub gladly: Option<GladlyRows>,
}

/// The answers of the Gladly queries.
#[derive(Debug, Clone, Default)]
pub struct GladlyRows {
    /// The Gladly sources.
    pub sources: Vec<String>,
    /// [`sql::session_count`].
    pub sessions: Vec<QueryRow>,
    /// [`sql::handle_time`] over all.
    pub handle_time: Vec<QueryRow>,
    /// [`sql::handle_time`] per channel.
    pub handle_time_by_channel: Vec<QueryRow>,
    /// [`sql::top_workers`] of agents.
    pub top_agents: Vec<QueryRow>,
    /// [`sql::top_workers`] of teams.
    pub top_teams: Vec<QueryRow>,
    /// [`sql::session_first_response`].
    pub contact_response: Vec<QueryRow>,
}

/// Makes the report from the warehouse behind `dest`.
///
/// # Errors
/// When a query fails (the model views must exist: see [`crate::model_views`]).
pub async fn report(
    dest: &dyn Destination,
    since: Option<NaiveDate>,
) -> Result<Report, AnalyticsError> {
    report_with(dest, &ReportOptions { since }).await
}

/// [`report`] with options.
///
/// # Errors
/// When a query fails.
pub async fn report_with(
    dest: &dyn Destination,
    opts: &ReportOptions,
) -> Result<Report, AnalyticsError> {
    let since = opts.since;
    let run = |name: &'static str, q: String| async move {
        dest.query(&q)
            .await
            .map_err(|source| AnalyticsError::Query {
                name: name.to_owned(),
                source,
            })
    };
    // The first responses and their histogram in one pass over the view (its costliest).
    let first_response = run("first_response", sql::first_response_with_histogram(since)).await?;
    // Conversation counts, outcomes and messages per conversation in one pass over
    // `talkhouse.conversations`.
    let [conversation_counts, outcomes, per_conversation] =
        sql::conversation_rows(&run("conversations", sql::conversation_figures(since)).await?);
    let mut rows = ReportRows {
        conversation_counts,
        message_counts: run("message_counts", sql::message_counts(since)).await?,
        per_conversation,
        per_session: run("per_session", sql::per_session(since)).await?,
        first_response_histogram: sql::histogram_rows(&first_response),
        first_response,
        outcomes,
        test_left_out: run("test_left_out", sql::test_left_out(since)).await?,
        ..ReportRows::default()
    };

    // The vendors' own metrics, from the views their connectors define.
    let mut gladly = Vec::new();
    for r in &run("sources", sql::SOURCES.to_owned()).await? {
        let (Some(schema), Some(vendor)) = (text(r, "source"), text(r, "vendor")) else {
            continue;
        };
        match vendor.as_str() {
            "ada" => {
                let answer = run("ada", sql::ada(&schema, since)).await?;
                rows.ada.push((schema, answer));
            }
            "ultimate" => {
                let metrics = run("ultimate", sql::ultimate(&schema, since)).await?;
                let intents =
                    run("ultimate_intents", sql::ultimate_intents(&schema, since)).await?;
                rows.ultimate.push((schema, metrics, intents));
            }
            "gladly" => gladly.push(schema),
            _ => {}
        }
    }
    if !gladly.is_empty() {
        let g = &gladly;
        rows.gladly = Some(GladlyRows {
            sessions: run("gladly_sessions", sql::session_count(g, since)).await?,
            handle_time: run("gladly_handle_time", sql::handle_time(g, since, false)).await?,
            handle_time_by_channel: run(
                "gladly_handle_time_by_channel",
                sql::handle_time(g, since, true),
            )
            .await?,
            top_agents: run("gladly_top_agents", sql::top_workers(g, since, "agent_id")).await?,
            top_teams: run("gladly_top_teams", sql::top_workers(g, since, "team_id")).await?,
            contact_response: run(
                "gladly_contact_response",
                sql::session_first_response(g, since),
            )
            .await?,
            sources: gladly,
        });
    }
    Ok(Report::from_rows(&rows, since))
}

fn text(r: &QueryRow, key: &str) -> Option<String> {
    match r.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A numeric cell (numbers may come as JSON numbers or, from NUMERIC columns, as text).
fn num(r: &QueryRow, key: &str) -> Option<f64> {
    match r.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A count cell.
fn count(r: &QueryRow, key: &str) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    num(r, key).map_or(0, |x| x.max(0.0).round() as u64)
}

fn distribution(rows: &[QueryRow]) -> (u64, Distribution) {
    rows.first().map_or((0, Distribution::default()), |r| {
        (
            count(r, "n"),
            Distribution {
                mean: num(r, "mean"),
                median: num(r, "median"),
                p90: num(r, "p90"),
            },
        )
    })
}

fn handle_time(r: &QueryRow) -> HandleTime {
    HandleTime {
        contacts: count(r, "n"),
        mean: num(r, "mean"),
        median: num(r, "median"),
        p90: num(r, "p90"),
    }
}

/// The [`sql::TOP_WORKERS`] with the most contacts, ties by id (byte order).
fn workers(rows: &[QueryRow]) -> Vec<WorkerStat> {
    let mut out: Vec<WorkerStat> = rows
        .iter()
        .filter_map(|r| {
            Some(WorkerStat {
                id: text(r, "id")?,
                name: text(r, "name"),
                contacts: count(r, "contacts"),
                work_sessions: count(r, "work_sessions"),
                handle_seconds_median: num(r, "median"),
            })
        })
        .collect();
    out.sort_by(|a, b| b.contacts.cmp(&a.contacts).then_with(|| a.id.cmp(&b.id)));
    out.truncate(sql::TOP_WORKERS);
    out
}

fn gladly(g: &GladlyRows) -> Gladly {
    let mut out = Gladly {
        present: true,
        sources: g.sources.clone(),
        contacts: g.sessions.first().map_or(0, |r| count(r, "n")),
        handle_seconds: g.handle_time.first().map(handle_time).unwrap_or_default(),
        top_agents: workers(&g.top_agents),
        top_teams: workers(&g.top_teams),
        ..Gladly::default()
    };
    for r in &g.handle_time_by_channel {
        let channel = text(r, "channel").unwrap_or_else(|| "unknown".into());
        out.handle_seconds_by_channel
            .insert(channel, handle_time(r));
    }
    if let Some(r) = g.contact_response.first() {
        out.contact_first_response_seconds = ContactResponse {
            contacts: count(r, "n"),
            responded: count(r, "responded"),
            median: num(r, "median"),
            p90: num(r, "p90"),
            agent_responded: count(r, "agent_responded"),
            agent_median: num(r, "agent_median"),
            agent_p90: num(r, "agent_p90"),
        };
    }
    out
}

fn by_day(counts: &BTreeMap<(String, String), u64>) -> Vec<DayCount> {
    counts
        .iter()
        .map(|((day, source), n)| DayCount {
            day: day.clone(),
            source: source.clone(),
            count: *n,
        })
        .collect()
}

impl Report {
    /// Combines query answers into the report (pure: no I/O but the clock).
    pub fn from_rows(rows: &ReportRows, since: Option<NaiveDate>) -> Report {
        let mut report = Report {
            generated_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            since: since.map(|d| d.to_string()),
            ..Report::default()
        };

        // Conversation volume.
        let mut days = BTreeMap::new();
        for r in &rows.conversation_counts {
            let n = count(r, "n");
            let source = text(r, "source").unwrap_or_else(|| "unknown".into());
            let channel = text(r, "channel").unwrap_or_else(|| "unknown".into());
            report.conversations.total += n;
            *report
                .conversations
                .by_source
                .entry(source.clone())
                .or_default() += n;
            *report.conversations.by_channel.entry(channel).or_default() += n;
            report
                .sources
                .entry(source.clone())
                .or_default()
                .conversations += n;
            if let Some(day) = text(r, "day") {
                *days.entry((day, source)).or_default() += n;
            }
        }
        report.conversations.by_day = by_day(&days);

        // Message volume and sentiment.
        let mut days = BTreeMap::new();
        let mut sums: BTreeMap<(&str, String), (f64, u64)> = BTreeMap::new();
        let (mut positive, mut negative) = (0u64, 0u64);
        let mut customer = (0.0f64, 0u64);
        for r in &rows.message_counts {
            let n = count(r, "n");
            let source = text(r, "source").unwrap_or_else(|| "unknown".into());
            let channel = text(r, "channel").unwrap_or_else(|| "unknown".into());
            let role = text(r, "sender_role").unwrap_or_else(|| "unknown".into());
            let m = &mut report.messages;
            m.total += n;
            *m.by_source.entry(source.clone()).or_default() += n;
            *m.by_channel.entry(channel.clone()).or_default() += n;
            *m.by_role.entry(role.clone()).or_default() += n;
            report.sources.entry(source.clone()).or_default().messages += n;
            if let Some(day) = text(r, "day") {
                *days.entry((day, source.clone())).or_default() += n;
            }
            let scored = count(r, "scored");
            let sum = num(r, "sentiment_sum").unwrap_or(0.0);
            report.sentiment.scored += scored;
            let add = |e: &mut (f64, u64)| {
                e.0 += sum;
                e.1 += scored;
            };
            add(sums.entry(("role", role.clone())).or_default());
            if role == "customer" {
                add(sums.entry(("channel", channel)).or_default());
                add(sums.entry(("source", source)).or_default());
                add(&mut customer);
                positive += count(r, "positive");
                negative += count(r, "negative");
            }
        }
        report.messages.by_day = by_day(&days);
        for ((kind, key), (sum, n)) in sums {
            let Some(mean) = mean_of(sum, n) else {
                continue;
            };
            let map = match kind {
                "role" => &mut report.sentiment.by_role,
                "channel" => &mut report.sentiment.by_channel,
                _ => &mut report.sentiment.by_source,
            };
            map.insert(key, mean);
        }
        let (sum, scored) = customer;
        report.sentiment.customer = SentimentSplit {
            scored,
            mean: mean_of(sum, scored),
            positive: rate(positive, scored),
            neutral: rate(scored.saturating_sub(positive + negative), scored),
            negative: rate(negative, scored),
        };

        // Messages per conversation and per session.
        report.messages.per_conversation = distribution(&rows.per_conversation).1;
        let (sessions, d) = distribution(&rows.per_session);
        report.messages.per_session = SessionStats {
            sessions,
            mean: d.mean,
            median: d.median,
            p90: d.p90,
        };

        // First response.
        if let Some(r) = rows.first_response.first() {
            report.first_response_seconds = FirstResponse {
                conversations: count(r, "n"),
                responded: count(r, "responded"),
                mean: num(r, "mean"),
                median: num(r, "median"),
                p90: num(r, "p90"),
                agent_responded: count(r, "agent_responded"),
                agent_median: num(r, "agent_median"),
                agent_p90: num(r, "agent_p90"),
                histogram: Vec::new(),
            };
        }
        let mut histogram: Vec<Bucket> = RESPONSE_BUCKETS
            .iter()
            .map(|(label, upper)| Bucket {
                label: (*label).to_owned(),
                upper_seconds: upper.is_finite().then_some(*upper),
                count: 0,
            })
            .collect();
        for r in &rows.first_response_histogram {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = num(r, "bucket").map(|b| b.max(0.0) as usize);
            if let Some(bucket) = i.and_then(|i| histogram.get_mut(i)) {
                bucket.count += count(r, "n");
            }
        }
        report.first_response_seconds.histogram = histogram;

        // Escalation, bot handling, CSAT.
        let (mut known, mut escalated, mut bot_known, mut bot_handled, mut csat_n) =
            (0, 0, 0, 0, 0);
        for r in &rows.outcomes {
            let source = text(r, "source").unwrap_or_else(|| "unknown".into());
            let o = SourceOutcome {
                conversations: count(r, "n"),
                escalation_rate: rate(count(r, "escalated"), count(r, "escalation_known")),
                bot_handled_rate: rate(count(r, "bot_handled"), count(r, "bot_known")),
                csat_mean: mean_of(
                    num(r, "csat_sum").unwrap_or(0.0),
                    count(r, "csat_responses"),
                ),
                csat_responses: count(r, "csat_responses"),
            };
            known += count(r, "escalation_known");
            escalated += count(r, "escalated");
            bot_known += count(r, "bot_known");
            bot_handled += count(r, "bot_handled");
            csat_n += o.csat_responses;
            report.escalation.by_source.insert(source, o);
        }
        report.escalation.conversations = known;
        report.escalation.escalation_rate = rate(escalated, known);
        report.escalation.bot_handled_rate = rate(bot_handled, bot_known);
        report.escalation.csat_responses = csat_n;

        for r in &rows.test_left_out {
            let n = count(r, "n");
            if n > 0 {
                let source = text(r, "source").unwrap_or_else(|| "unknown".into());
                *report
                    .test_conversations_left_out
                    .entry(source)
                    .or_default() += n;
            }
        }

        report.ada = ada(&rows.ada);
        report.ultimate = ultimate(&rows.ultimate);
        if let Some(g) = &rows.gladly {
            report.gladly = gladly(g);
        }
        report
    }

    /// The report as its documented JSON object (pretty-printed).
    ///
    /// # Errors
    /// Never in practice (the report holds only maps, numbers and strings).
    pub fn to_json(&self) -> Result<String, AnalyticsError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The report as a JSON value.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_value(&self) -> Result<Value, AnalyticsError> {
        Ok(serde_json::to_value(self)?)
    }
}

fn ada(per_schema: &[(String, Vec<QueryRow>)]) -> Ada {
    let mut out = Ada {
        present: !per_schema.is_empty(),
        ..Ada::default()
    };
    let mut flags = [0u64; sql::ADA_FLAGS.len()];
    for (schema, rows) in per_schema {
        out.sources.push(schema.clone());
        if let Some(r) = rows.first() {
            out.conversations += count(r, "total_conversations");
            for (slot, flag) in flags.iter_mut().zip(sql::ADA_FLAGS) {
                *slot += count(r, &format!("{flag}_conversations"));
            }
        }
    }
    let [engaged, escalated, both] = flags;
    out.engaged_rate = rate(engaged, out.conversations);
    out.escalated_rate = rate(escalated, out.conversations);
    out.escalated_of_engaged_rate = rate(both, engaged);
    out
}

fn ultimate(per_schema: &[(String, Vec<QueryRow>, Vec<QueryRow>)]) -> Ultimate {
    let mut out = Ultimate {
        present: !per_schema.is_empty(),
        ..Ultimate::default()
    };
    let mut c = [0u64; sql::ULTIMATE_FLAGS.len()];
    let (mut visitor, mut not_understood, mut any_visitor) = (0u64, 0u64, false);
    let mut intents: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (schema, metrics, by_intent) in per_schema {
        out.sources.push(schema.clone());
        if let Some(r) = metrics.first() {
            out.total_conversations += count(r, "total_conversations");
            for (slot, flag) in c.iter_mut().zip(sql::ULTIMATE_FLAGS) {
                *slot += count(r, &format!("{flag}_conversations"));
            }
            if num(r, "visitor_messages").is_some() {
                visitor += count(r, "visitor_messages");
                any_visitor = true;
            }
            not_understood += count(r, "not_understood_messages");
            out.incomplete_days += count(r, "incomplete_days");
            if let Some(day) = text(r, "first_incomplete_day")
                && out.first_incomplete_day.as_ref().is_none_or(|d| &day < d)
            {
                out.first_incomplete_day = Some(day);
            }
        }
        for r in by_intent {
            let Some(intent) = text(r, "intent") else {
                continue;
            };
            let e = intents.entry(intent).or_default();
            e.0 += count(r, "n");
            e.1 += count(r, "bot_handled");
        }
    }
    let total = out.total_conversations;
    out.bot_handled_rate = rate(c[0], total);
    out.deflection_rate = rate(c[1], total);
    out.escalation_rate = rate(c[2], total);
    out.failed_escalation_rate = rate(c[3], total);
    out.informed_rate = rate(c[4], total);
    out.automation_rate = rate(c[5], total);
    #[allow(clippy::cast_precision_loss)]
    let understood = (any_visitor && visitor > 0)
        .then(|| ((visitor as f64 - not_understood as f64) / visitor as f64).clamp(0.0, 1.0));
    out.messages_understood_rate = understood;
    let mut list: Vec<IntentStat> = intents
        .into_iter()
        .map(|(intent, (n, handled))| IntentStat {
            intent,
            total_conversations: n,
            bot_handled_conversations: handled,
            bot_handled_rate: rate(handled, n),
        })
        .collect();
    list.sort_by(|a, b| {
        b.total_conversations
            .cmp(&a.total_conversations)
            .then_with(|| a.intent.cmp(&b.intent))
    });
    out.by_first_meaningful_intent = list;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: serde_json::Value) -> QueryRow {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn empty_warehouse_gives_nulls_not_zeros() {
        let r = Report::from_rows(&ReportRows::default(), None);
        assert_eq!(r.conversations.total, 0);
        assert_eq!(r.messages.per_conversation.median, None);
        assert_eq!(r.first_response_seconds.median, None);
        assert_eq!(r.escalation.escalation_rate, None);
        assert!(!r.ada.present && !r.ultimate.present);
        assert_eq!(
            r.first_response_seconds.histogram.len(),
            RESPONSE_BUCKETS.len()
        );
        let json = r.to_value().unwrap_or_default();
        assert!(json["ada"]["engaged_rate"].is_null());
        assert_eq!(json["conversations"]["total"], 0);
    }

    #[test]
    fn combines_rows_with_numbers_as_text() {
        let rows = ReportRows {
            conversation_counts: vec![
                row(
                    serde_json::json!({"source": "gladly", "channel": "chat", "day": "2026-03-01", "n": "3"}),
                ),
                row(
                    serde_json::json!({"source": "gladly", "channel": "email", "day": null, "n": 2}),
                ),
            ],
            message_counts: vec![
                row(
                    serde_json::json!({"source": "gladly", "channel": "chat", "day": "2026-03-01", "sender_role": "customer",
                    "n": 4, "scored": 2, "sentiment_sum": "0.5", "positive": 1, "negative": 0}),
                ),
                row(
                    serde_json::json!({"source": "gladly", "channel": "chat", "day": "2026-03-01", "sender_role": "agent",
                    "n": 3, "scored": 3, "sentiment_sum": -0.3, "positive": 0, "negative": 1}),
                ),
            ],
            outcomes: vec![row(
                serde_json::json!({"source": "gladly", "n": 5, "escalation_known": 4, "escalated": 1,
                "bot_known": 0, "bot_handled": 0, "csat_responses": 2, "csat_sum": 9.0}),
            )],
            ada: vec![(
                "ada".into(),
                vec![row(
                    serde_json::json!({"total_conversations": 10, "engaged_conversations": 7,
                    "escalated_conversations": 2, "engaged_escalated_conversations": 2}),
                )],
            )],
            ultimate: vec![
                (
                    "ultimate".into(),
                    vec![row(
                        serde_json::json!({"total_conversations": 8, "bot_handled_conversations": 4,
                        "escalated_conversations": "2", "visitor_messages": 10, "not_understood_messages": 1,
                        "first_incomplete_day": "2026-03-02", "incomplete_days": 1}),
                    )],
                    vec![row(
                        serde_json::json!({"intent": "refund", "n": 3, "bot_handled": 1}),
                    )],
                ),
                (
                    "ultimate_us".into(),
                    vec![row(
                        serde_json::json!({"total_conversations": 2, "bot_handled_conversations": 1,
                        "escalated_conversations": 0, "visitor_messages": null,
                        "first_incomplete_day": "2026-03-01", "incomplete_days": 1}),
                    )],
                    vec![row(
                        serde_json::json!({"intent": "refund", "n": 1, "bot_handled": 1}),
                    )],
                ),
            ],
            test_left_out: vec![row(serde_json::json!({"source": "ada", "n": 3}))],
            ..ReportRows::default()
        };
        let r = Report::from_rows(&rows, None);
        assert_eq!(r.conversations.total, 5);
        assert_eq!(
            r.conversations.by_day.len(),
            1,
            "rows without a day stay out of by_day only"
        );
        assert_eq!(r.messages.total, 7);
        assert_eq!(
            r.sentiment.by_channel.get("chat"),
            Some(&0.25),
            "customer messages only"
        );
        assert_eq!(r.sentiment.customer.positive, Some(0.5));
        assert_eq!(r.escalation.escalation_rate, Some(0.25));
        assert_eq!(r.escalation.bot_handled_rate, None);
        assert_eq!(r.escalation.by_source["gladly"].csat_mean, Some(4.5));
        assert_eq!(r.ada.engaged_rate, Some(0.7));
        assert_eq!(r.ada.escalated_of_engaged_rate, Some(2.0 / 7.0));
        // Ultimate's counts add up across schemas before any rate is taken.
        assert_eq!(r.ultimate.total_conversations, 10);
        assert_eq!(r.ultimate.bot_handled_rate, Some(0.5));
        assert_eq!(r.ultimate.escalation_rate, Some(0.2));
        assert_eq!(r.ultimate.messages_understood_rate, Some(0.9));
        assert_eq!(
            r.ultimate.first_incomplete_day.as_deref(),
            Some("2026-03-01")
        );
        assert_eq!(r.ultimate.incomplete_days, 2);
        assert_eq!(
            r.ultimate.by_first_meaningful_intent[0].total_conversations,
            4
        );
        assert_eq!(
            r.ultimate.by_first_meaningful_intent[0].bot_handled_rate,
            Some(0.5)
        );
        assert_eq!(r.test_conversations_left_out["ada"], 3);
        let text = r.to_table();
        assert!(
            text.contains("Note: 3 test conversations are left out"),
            "{text}"
        );
        assert!(text.contains("2026-03-01"), "{text}");
        assert!(r.to_html().contains("3 test conversations are left out"));
        assert_eq!(
            r.sources["gladly"],
            SourceCounts {
                conversations: 5,
                messages: 7
            }
        );
    }
}
