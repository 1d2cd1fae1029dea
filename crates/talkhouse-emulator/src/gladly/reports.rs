//! The Reports API of the emulated organisation: `POST /api/v1/reports` with
//! `{metricSet, timezone?, startAt, endAt}` (inclusive `YYYY-MM-DD` days in `timezone`, the
//! organisation's zone when absent) answers `text/csv` for `ContactExportReportV3`,
//! `WorkSessionsReportV3` and `ConversationExportReport`; other metric sets, bad days or
//! `endAt` before `startAt` get 400.
//!
//! What the CSVs carry, as Gladly's reports do:
//! * A UTF-8 byte-order mark before the contact report; the filters echoed as the first columns;
//!   quoted fields with commas and newlines (a phone contact's entry point, a conversation's
//!   topic hierarchy); blank fields; an en dash in one header (`Assigned Inbox ID – Created`);
//!   timestamps in UTC with `Z` (contacts) or in the zone without offset (`2026-03-01 07:30:12`
//!   for work sessions, minutes only for conversations); durations in decimal seconds; an empty
//!   body for a window without rows.
//! * Old ids: contacts and work sessions keep the customer and conversation ids they were made
//!   with (a merged-away customer, the loser of the OPEN→OPEN merge, the customer deleted on
//!   request), while the conversation report is computed when requested (current customer and
//!   inbox, the merge loser as `MERGED`, nothing of the deleted customer).
//! * Every conversation has one contact (anchored at its start); its work sessions (anchored at
//!   the contact's end) are one per agent: conversation keys ≡ 1 (mod 4) were transferred to a
//!   second agent, keys ≡ 0 (mod 23) were abandoned (one row, no agent). Sessions of contacts
//!   that have not ended appear in today's window without id and end. After-contact time grows
//!   for two minutes after a contact ends.
//! * One malformed contact row (two fields) in the window holding the day 20 days before the
//!   start day.
//! * A row cap (`gladly.report_row_cap`, default 100000, as others report Gladly's reports are
//!   cut): a larger window is cut there without a word.
//! * The budget: 10 report requests a minute and 2 at once per organisation, apart from the 10
//!   requests/s of the rest of the API. With strict rate limits a request past it gets 429
//!   (`Retry-After` with `gladly.retry_after=on`, the seconds until a slot frees). Every report
//!   request is logged for tests (`GET /_emulator/gladly/reports`). Building a report takes
//!   100 ms, so concurrent requests overlap.
//!
//! Switch `gladly.report_extra_column=on` adds a contact column talkhouse does not know
//! (`Sentiment Score`); `gladly.org_timezone` sets the organisation's zone (default
//! `America/New_York`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::data::{ConvSpec, Ct, SPECIAL, Who, World, kind, mix, special};

/// The metric sets served.
pub const METRIC_SETS: [&str; 3] = [
    "ContactExportReportV3",
    "WorkSessionsReportV3",
    "ConversationExportReport",
];

/// Report requests an organisation may start in a minute.
pub const PER_MINUTE: usize = 10;
/// Report requests an organisation may have in flight.
pub const CONCURRENT: usize = 2;
/// How long building a report takes.
pub const BUILD_TIME: StdDuration = StdDuration::from_millis(100);

/// One row, before rendering: the time it is filed under and its fields in header order.
struct Line {
    anchor: DateTime<Utc>,
    key: String,
    fields: Vec<String>,
}

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Csv {
    /// The body.
    pub body: Vec<u8>,
    /// Data records in it (the malformed one included).
    pub records: usize,
}

/// How a report is rendered (the switches).
#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    /// Rows past this are cut.
    pub row_cap: usize,
    /// Add a contact column talkhouse does not know.
    pub extra_column: bool,
}

/// The local day of `t` in the organisation's zone.
pub fn local_day(w: &World, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&w.timezone).date_naive()
}

/// The UTC instant a local day starts.
fn day_start(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .and_then(|n| tz.from_local_datetime(&n).earliest())
        .map_or_else(
            || d.and_time(chrono::NaiveTime::MIN).and_utc(),
            |t| t.with_timezone(&Utc),
        )
}

/// The day whose window carries the malformed contact row.
pub fn malformed_day(w: &World) -> NaiveDate {
    local_day(w, w.t0) - Duration::days(20)
}

/// Conversations that started by `now` and may be filed in `[from, to)`: the regular ones
/// around the window, then the special ones.
fn conversations(
    w: &World,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<ConvSpec> {
    let range = w.regular_range(from - Duration::days(2), to.min(now));
    range
        .chain(SPECIAL..SPECIAL + special::COUNT)
        .filter_map(|k| w.conversation(k))
        .filter(|c| c.start <= now)
        .collect()
}

/// Every conversation that started by `now`.
fn all_conversations(w: &World, now: DateTime<Utc>) -> Vec<ConvSpec> {
    conversations(w, w.origin - Duration::days(1), now, now)
}

fn abandoned(c: &ConvSpec) -> bool {
    c.key.is_multiple_of(23)
}

fn transferred(c: &ConvSpec) -> bool {
    c.key % 4 == 1 && !abandoned(c)
}

/// The agents of a conversation's work sessions (`None`: nobody handled it).
fn session_agents(w: &World, c: &ConvSpec) -> Vec<Option<u32>> {
    if abandoned(c) {
        vec![None]
    } else if transferred(c) {
        vec![Some(c.agent), Some((c.agent + 1) % w.agents)]
    } else {
        vec![Some(c.agent)]
    }
}

fn ended(c: &ConvSpec, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    c.closed_at.filter(|t| *t <= now)
}

fn channel(c: &ConvSpec) -> &'static str {
    let ct = c
        .items
        .iter()
        .find(|i| i.ct.is_message())
        .map_or(Ct::Chat, |i| i.ct);
    match ct {
        Ct::Email => "EMAIL",
        Ct::Sms => "SMS",
        Ct::Phone | Ct::VoiceAi => "PHONE_CALL",
        Ct::Voicemail => "VOICEMAIL",
        Ct::Facebook => "FB_MESSENGER",
        Ct::Instagram => "INSTAGRAM_DIRECT",
        Ct::Whatsapp => "WHATSAPP",
        Ct::Twitter => "TWITTER",
        _ => "CHAT",
    }
}

fn secs(n: u64) -> String {
    format!("{}.{}", n / 10, n % 10)
}

fn local(w: &World, t: DateTime<Utc>, with_seconds: bool) -> String {
    let l = t.with_timezone(&w.timezone);
    if with_seconds {
        l.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        l.format("%Y-%m-%d %H:%M").to_string()
    }
}

fn name_of(v: &Value) -> String {
    v.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

const CONTACT_HEADERS: [&str; 29] = [
    "Timezone Filter",
    "Channel Filter",
    "Inboxes Filter",
    "Contact ID",
    "Customer ID",
    "Conversation ID",
    "Fulfilled By Contact ID",
    "Channel",
    "Direction",
    "Contact Initiator",
    "Entry Point",
    "Status",
    "Inbox When Queued",
    "Inbox When Ended",
    "Agent When Ended",
    "Queued At",
    "Offered At",
    "Accepted At",
    "Fulfilled At",
    "Ended At",
    "SLA Target (sec)",
    "Queued to Accepted (sec)",
    "Contact Handle Time (sec)",
    "After Contact Time (sec)",
    "Messages",
    "Messages From Customer",
    "Messages From Agent",
    "Messages From Rules",
    "Times Transferred",
];

/// A contact's handle time and after-contact time, in tenths of seconds: one formula for the
/// contact report and its truth.
fn contact_handle(w: &World, c: &ConvSpec) -> (u64, u64) {
    let handle = 600 + mix(&[w.seed, c.key, 1]) % 9000;
    (handle, handle / 7)
}

fn contact_line(w: &World, c: &ConvSpec, now: DateTime<Utc>, tz: &str, extra: bool) -> Line {
    let id = w.id(kind::CONTACT, c.key, 0);
    let end = ended(c, now);
    let items: Vec<_> = c.items.iter().filter(|i| i.at <= now).collect();
    let count = |who: Who| {
        items
            .iter()
            .filter(|i| i.ct.is_message() && i.who == who)
            .count()
    };
    let messages = items.iter().filter(|i| i.ct.is_message()).count();
    let ch = channel(c);
    let agent = (!abandoned(c)).then(|| name_of(&w.agent(c.agent)));
    let accepted = (!abandoned(c)).then(|| c.start + Duration::seconds(20));
    let fulfilled = items
        .iter()
        .find(|i| i.who == Who::Agent && i.ct.is_message())
        .map(|i| i.at);
    let outbound = items.first().is_some_and(|i| i.who == Who::Agent);
    let (handle, after_contact) = contact_handle(w, c);
    let ts = |t: Option<DateTime<Utc>>| t.map_or_else(String::new, |t| World::ts(t, 3));
    let mut fields = vec![
        tz.to_owned(),
        "All".to_owned(),
        "All".to_owned(),
        id.clone(),
        w.customer_id(c.customer),
        w.id(kind::CONVERSATION, c.key, 0),
        if fulfilled.is_some() {
            id.clone()
        } else {
            String::new()
        },
        ch.to_owned(),
        if outbound { "OUTBOUND" } else { "INBOUND" }.to_owned(),
        if outbound { "AGENT" } else { "CUSTOMER" }.to_owned(),
        match ch {
            "PHONE_CALL" | "VOICEMAIL" => "Main line (IVR),\noption 2: billing".to_owned(),
            "CHAT" => "Website chat".to_owned(),
            _ => String::new(),
        },
        match (end, abandoned(c)) {
            (None, _) => String::new(),
            (Some(_), true) => "ABANDONED".to_owned(),
            (Some(_), false) => "ANSWERED".to_owned(),
        },
        name_of(&w.inbox(c.inbox)),
        end.map_or_else(String::new, |t| name_of(&w.inbox(w.inbox_at(c, t)))),
        if end.is_some() {
            agent.unwrap_or_default()
        } else {
            String::new()
        },
        ts(Some(c.start)),
        ts(Some(c.start + Duration::seconds(5))),
        ts(accepted),
        ts(fulfilled),
        ts(end),
        "3600".to_owned(),
        if accepted.is_some() {
            "20.0".to_owned()
        } else {
            String::new()
        },
        if end.is_some() {
            secs(handle)
        } else {
            String::new()
        },
        if end.is_some() {
            secs(after_contact)
        } else {
            String::new()
        },
        messages.to_string(),
        count(Who::Customer).to_string(),
        count(Who::Agent).to_string(),
        (count(Who::Automation) + count(Who::Sidekick)).to_string(),
        u8::from(transferred(c)).to_string(),
    ];
    if extra {
        fields.push(format!("0.{}", mix(&[w.seed, c.key, 2]) % 10));
    }
    Line {
        anchor: c.start,
        key: id,
        fields,
    }
}

const SESSION_HEADERS: [&str; 23] = [
    "Timezone Filter",
    "Channel Filter",
    "Inboxes Filter",
    "Teams Filter",
    "ID",
    "Contact Session ID",
    "Contact Session Created At",
    "Customer ID",
    "Conversation ID",
    "Inbox ID",
    "Channel",
    "Direction",
    "Contact Session Routed At",
    "Agent Accepted At",
    "Agent ID",
    "SLA Fulfilled At",
    "Contact Session Ended At",
    "Status",
    "Within SLA",
    "Work Session Handle Time (sec)",
    "Work Session After Contact Time (sec)",
    "Work Session Unknown Time (sec)",
    "Accepted Inbox ID",
];

fn session_lines(w: &World, c: &ConvSpec, now: DateTime<Utc>, tz: &str) -> Vec<Line> {
    let end = ended(c, now);
    let contact = w.id(kind::CONTACT, c.key, 0);
    let inbox = w.id(kind::INBOX, u64::from(c.inbox), 0);
    session_agents(w, c)
        .into_iter()
        .enumerate()
        .map(|(n, agent)| {
            let n = u32::try_from(n).unwrap_or(0);
            let handle = 300 + mix(&[w.seed, c.key, 3, u64::from(n)]) % 6000;
            // After-contact time keeps growing for two minutes after the contact ends.
            let acw = end.map(|t| {
                let grown = u64::try_from((now - t).num_seconds().clamp(0, 120)).unwrap_or(0);
                mix(&[w.seed, c.key, 4, u64::from(n)]) % 600 + grown * 10
            });
            let accepted = agent.map(|_| c.start + Duration::seconds(20 + 60 * i64::from(n)));
            let opt = |t: Option<DateTime<Utc>>| t.map_or_else(String::new, |t| local(w, t, true));
            let fields = vec![
                tz.to_owned(),
                "All".to_owned(),
                "All".to_owned(),
                "All".to_owned(),
                if end.is_some() {
                    w.id(kind::WORK_SESSION, c.key, n)
                } else {
                    String::new()
                },
                contact.clone(),
                local(w, c.start, true),
                w.customer_id(c.customer),
                w.id(kind::CONVERSATION, c.key, 0),
                inbox.clone(),
                channel(c).to_owned(),
                "INBOUND".to_owned(),
                local(w, c.start + Duration::seconds(5), true),
                opt(accepted),
                agent.map_or_else(String::new, |a| w.id(kind::AGENT, u64::from(a), 0)),
                opt(accepted.map(|t| t + Duration::seconds(30))),
                opt(end),
                if end.is_some() { "ENDED" } else { "ACTIVE" }.to_owned(),
                if handle < 3000 { "TRUE" } else { "FALSE" }.to_owned(),
                if agent.is_some() {
                    secs(handle)
                } else {
                    String::new()
                },
                acw.map_or_else(String::new, secs),
                "0.0".to_owned(),
                if agent.is_some() {
                    inbox.clone()
                } else {
                    String::new()
                },
            ];
            Line {
                anchor: end.unwrap_or(now),
                key: format!("{contact}/{n}"),
                fields,
            }
        })
        .collect()
}

const CONVERSATION_HEADERS: [&str; 23] = [
    "Inboxes Filter",
    "Conversation ID",
    "Customer ID",
    "Created At",
    "Status",
    "First Closed At",
    "Last Closed At",
    "Topics",
    "Topics With Hierarchy",
    "First Channel",
    "Last Channel",
    "Assigned Agent ID - Current",
    "Assigned Inbox ID - Current",
    "Assigned Inbox ID \u{2013} Created",
    "Initiator Agent ID",
    "First Contact ID",
    "Created-to-First Closed Time in seconds",
    "Conversation Handle Time in seconds",
    "Is FCR Eligible",
    "Is FCR Success",
    "Number of Contacts",
    "Number of Notes",
    "Times Reopened",
];

/// Whether the conversation report still has a row for `c` at `now` (not for conversations of
/// customers deleted on request).
fn in_conversation_report(w: &World, c: &ConvSpec, now: DateTime<Utc>) -> bool {
    w.customer_deleted_at(c.customer).is_none_or(|t| now < t)
}

fn conversation_line(w: &World, c: &ConvSpec, now: DateTime<Utc>) -> Line {
    let (loser, _, merged_at) = w.open_merge();
    let merged = c.key == loser && now >= merged_at;
    let rest = w.conversation_rest(c, now);
    let status = if merged {
        "MERGED".to_owned()
    } else {
        rest.get("status")
            .and_then(Value::as_str)
            .unwrap_or("OPEN")
            .to_owned()
    };
    let end = ended(c, now);
    let topics: Vec<Value> = c.topics.iter().map(|t| w.topic(*t, now, true)).collect();
    let hierarchy: Vec<String> = topics
        .iter()
        .map(|t| {
            let parent = t
                .get("parentId")
                .and_then(Value::as_str)
                .and_then(|p| w.parse_id(p))
                .and_then(|(_, i, _)| u32::try_from(i).ok())
                .map(|p| name_of(&w.topic(p, now, true)));
            match parent {
                Some(p) => format!("{p} > {}", name_of(t)),
                None => name_of(t),
            }
        })
        .collect();
    let notes = c
        .items
        .iter()
        .filter(|i| i.ct == Ct::Note && i.at <= now)
        .count();
    let handle = 900 + mix(&[w.seed, c.key, 5]) % 9000;
    let ch = channel(c).to_owned();
    let fields = vec![
        "All".to_owned(),
        w.id(kind::CONVERSATION, c.key, 0),
        w.customer_id(w.customer_at(c, now)),
        local(w, c.start, false),
        status,
        end.map_or_else(String::new, |t| local(w, t, false)),
        end.map_or_else(String::new, |t| local(w, t, false)),
        topics.iter().map(name_of).collect::<Vec<_>>().join(", "),
        hierarchy.join("\n"),
        ch.clone(),
        ch,
        w.id(kind::AGENT, u64::from(c.agent), 0),
        w.id(kind::INBOX, u64::from(w.inbox_at(c, now)), 0),
        w.id(kind::INBOX, u64::from(c.inbox), 0),
        String::new(),
        w.id(kind::CONTACT, c.key, 0),
        end.map_or_else(String::new, |t| {
            u64::try_from((t - c.start).num_seconds())
                .map_or_else(|_| String::new(), |s| format!("{s}.0"))
        }),
        if end.is_some() {
            secs(handle)
        } else {
            String::new()
        },
        "TRUE".to_owned(),
        if end.is_some() && !transferred(c) {
            "TRUE"
        } else {
            "FALSE"
        }
        .to_owned(),
        "1".to_owned(),
        notes.to_string(),
        "0".to_owned(),
    ];
    Line {
        anchor: c.start,
        key: w.id(kind::CONVERSATION, c.key, 0),
        fields,
    }
}

/// Renders one report of `[from, to]` (local days in `tz`) as it stands at `now`.
/// `None` for an unknown metric set.
pub fn render(
    w: &World,
    metric_set: &str,
    tz: Tz,
    (from, to): (NaiveDate, NaiveDate),
    now: DateTime<Utc>,
    opts: ReportOptions,
) -> Option<Csv> {
    let lo = day_start(tz, from);
    let hi = day_start(tz, to + Duration::days(1));
    let inside = |t: DateTime<Utc>| t >= lo && t < hi && t <= now;
    let candidates = conversations(w, lo, hi, now);
    let zone = tz.name();
    let (headers, mut lines, bom): (Vec<&str>, Vec<Line>, bool) = match metric_set {
        "ContactExportReportV3" => {
            let mut h = CONTACT_HEADERS.to_vec();
            if opts.extra_column {
                h.push("Sentiment Score");
            }
            let lines = candidates
                .iter()
                .map(|c| contact_line(w, c, now, zone, opts.extra_column))
                .filter(|l| inside(l.anchor))
                .collect();
            (h, lines, true)
        }
        "WorkSessionsReportV3" => (
            SESSION_HEADERS.to_vec(),
            candidates
                .iter()
                .flat_map(|c| session_lines(w, c, now, zone))
                .filter(|l| inside(l.anchor))
                .collect(),
            false,
        ),
        "ConversationExportReport" => (
            CONVERSATION_HEADERS.to_vec(),
            candidates
                .iter()
                .filter(|c| in_conversation_report(w, c, now))
                .map(|c| conversation_line(w, c, now))
                .filter(|l| inside(l.anchor))
                .collect(),
            false,
        ),
        _ => return None,
    };
    lines.sort_by(|a, b| a.anchor.cmp(&b.anchor).then_with(|| a.key.cmp(&b.key)));
    let malformed = metric_set == "ContactExportReportV3"
        && (from..=to).contains(&malformed_day(w))
        && malformed_day(w) <= local_day(w, now);
    // The cap counts records, the malformed one included.
    lines.truncate(opts.row_cap.saturating_sub(usize::from(malformed)));
    if lines.is_empty() && !malformed {
        return Some(Csv {
            body: Vec::new(),
            records: 0,
        });
    }
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail; a failure would only cut the body short.
    let _ = out.write_record(headers.iter());
    if malformed {
        let _ = out.write_record(["K-broken", "a row cut short"]);
    }
    for l in &lines {
        let _ = out.write_record(&l.fields);
    }
    let mut body = if bom {
        "\u{feff}".as_bytes().to_vec()
    } else {
        Vec::new()
    };
    body.extend(out.into_inner().unwrap_or_default());
    Some(Csv {
        body,
        records: lines.len() + usize::from(malformed),
    })
}

/// Report rows a connector holds after reading every day from the world's origin to `now`
/// (cap aside): `(contacts, work sessions, conversation report rows, malformed rows)`.
pub fn truth_counts(w: &World, now: DateTime<Utc>) -> (u64, u64, u64, u64) {
    let all = all_conversations(w, now);
    let contacts = all.len() as u64;
    let sessions = all
        .iter()
        .filter(|c| ended(c, now).is_some())
        .map(|c| session_agents(w, c).len() as u64)
        .sum();
    let conversations = all
        .iter()
        .filter(|c| in_conversation_report(w, c, now))
        .count() as u64;
    let malformed = u64::from(malformed_day(w) <= local_day(w, now));
    (contacts, sessions, conversations, malformed)
}

/// What a connector's model holds of the reports after reading every day to `now`: the
/// contacts (sessions), the sum of their handle times (agents' time plus after-contact work, as
/// the contact report gives both), and the agent work sessions per agent id.
pub fn work_truth(w: &World, now: DateTime<Utc>) -> Value {
    let all = all_conversations(w, now);
    let mut handle_sum = 0.0f64;
    let mut timed = 0u64;
    let mut per_agent: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for c in &all {
        if ended(c, now).is_none() {
            continue;
        }
        // The same tenths of seconds `contact_line` writes, read back as decimals.
        let (handle, after_contact) = contact_handle(w, c);
        handle_sum += secs(handle).parse::<f64>().unwrap_or(0.0)
            + secs(after_contact).parse::<f64>().unwrap_or(0.0);
        timed += 1;
        for agent in session_agents(w, c).into_iter().flatten() {
            *per_agent
                .entry(w.id(kind::AGENT, u64::from(agent), 0))
                .or_default() += 1;
        }
    }
    json!({
        "contacts": all.len(),
        "timed_contacts": timed,
        "handle_seconds_sum": handle_sum,
        "work_sessions_by_agent": per_agent,
    })
}

/// One report request, as the log keeps it.
#[derive(Debug, Clone)]
struct Logged {
    at: StdDuration,
    metric_set: String,
    start_at: String,
    end_at: String,
    status: u16,
    records: usize,
}

/// The organisation's report budget and the log of report requests.
#[derive(Debug)]
pub struct ReportGate {
    strict: bool,
    started: Instant,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    accepted: VecDeque<Instant>,
    in_flight: usize,
    max_in_flight: usize,
    log: Vec<Logged>,
}

/// A request admitted by the gate; dropping it ends it (even when the client went away).
pub struct Admitted<'a> {
    gate: &'a ReportGate,
    index: usize,
}

impl Admitted<'_> {
    /// Records what the request was answered with.
    pub fn answered(&self, status: u16, records: usize) {
        let mut s = self.gate.lock();
        if let Some(l) = s.log.get_mut(self.index) {
            l.status = status;
            l.records = records;
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

impl ReportGate {
    /// A gate that refuses past the budget when `strict`.
    pub fn new(strict: bool) -> Self {
        Self {
            strict,
            started: Instant::now(),
            state: Mutex::new(GateState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a request for `metric_set` or, past the budget (strict only), says how long
    /// until a slot frees.
    ///
    /// # Errors
    /// The wait, when the request is refused.
    pub fn admit(
        &self,
        metric_set: &str,
        start_at: &str,
        end_at: &str,
    ) -> Result<Admitted<'_>, StdDuration> {
        let now = Instant::now();
        let mut s = self.lock();
        while s
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= StdDuration::from_secs(60))
        {
            s.accepted.pop_front();
        }
        let full = s.accepted.len() >= PER_MINUTE || s.in_flight >= CONCURRENT;
        let mut entry = Logged {
            at: now.duration_since(self.started),
            metric_set: metric_set.to_owned(),
            start_at: start_at.to_owned(),
            end_at: end_at.to_owned(),
            status: 429,
            records: 0,
        };
        if full && self.strict {
            let wait = if s.accepted.len() >= PER_MINUTE {
                s.accepted.front().map_or(StdDuration::from_secs(1), |t| {
                    (*t + StdDuration::from_secs(60)).saturating_duration_since(now)
                })
            } else {
                BUILD_TIME
            };
            s.log.push(entry);
            return Err(wait);
        }
        entry.status = 200;
        s.accepted.push_back(now);
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        s.log.push(entry);
        let index = s.log.len() - 1;
        Ok(Admitted { gate: self, index })
    }

    /// The log, for `GET /_emulator/gladly/reports`: every request (milliseconds since the
    /// emulator started, metric set, days, status, records) and the most ever in flight.
    pub fn log_json(&self) -> Value {
        let s = self.lock();
        json!({
            "max_in_flight": s.max_in_flight,
            "requests": s.log.iter().map(|l| json!({
                "at_ms": u64::try_from(l.at.as_millis()).unwrap_or(u64::MAX),
                "metric_set": l.metric_set,
                "start_at": l.start_at,
                "end_at": l.end_at,
                "status": l.status,
                "records": l.records,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, EmulatorOptions};

    fn world() -> World {
        let mut opts = EmulatorOptions::new(5, 0.05);
        opts.clock = Clock::at(
            DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        );
        World::new(&opts)
    }

    #[test]
    fn windows_split_the_rows_and_the_cap_cuts_silently() {
        let w = world();
        let now = w.t0;
        let today = local_day(&w, now);
        let opts = ReportOptions {
            row_cap: 100_000,
            extra_column: false,
        };
        let whole = render(
            &w,
            "ContactExportReportV3",
            w.timezone,
            (today - Duration::days(40), today),
            now,
            opts,
        )
        .expect("known metric set");
        let (contacts, _, _, malformed) = truth_counts(&w, now);
        assert_eq!(whole.records as u64, contacts + malformed);
        assert!(whole.body.starts_with("\u{feff}Timezone Filter".as_bytes()));
        let mut split = 0;
        let mut d = today - Duration::days(40);
        while d <= today {
            split += render(&w, "ContactExportReportV3", w.timezone, (d, d), now, opts)
                .map_or(0, |c| c.records);
            d += Duration::days(1);
        }
        assert_eq!(split, whole.records, "day windows neither overlap nor miss");
        let capped = render(
            &w,
            "ContactExportReportV3",
            w.timezone,
            (today - Duration::days(40), today),
            now,
            ReportOptions { row_cap: 7, ..opts },
        )
        .expect("known metric set");
        assert_eq!(capped.records, 7, "the cap counts the malformed record too");
        assert!(
            render(
                &w,
                "TopicSummaryReport",
                w.timezone,
                (today, today),
                now,
                opts
            )
            .is_none()
        );
    }

    #[test]
    fn the_gate_refuses_the_eleventh_request_and_the_third_in_flight() {
        let g = ReportGate::new(true);
        let a = g.admit("X", "d", "d").expect("first");
        let b = g.admit("X", "d", "d").expect("second");
        assert!(g.admit("X", "d", "d").is_err(), "two in flight");
        drop((a, b));
        for _ in 0..8 {
            drop(g.admit("X", "d", "d").expect("within the minute's ten"));
        }
        let wait = g.admit("X", "d", "d").err().expect("the eleventh waits");
        assert!(wait > StdDuration::from_secs(50));
    }
}
