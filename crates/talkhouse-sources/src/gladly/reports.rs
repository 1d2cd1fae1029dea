//! The report streams: `contacts` (`ContactExportReportV3`), `work_sessions`
//! (`WorkSessionsReportV3`) and `conversation_report` (`ConversationExportReport`), each a
//! series of `POST /reports` over day windows.
//!
//! Days are the organisation's: its zone comes from `GET /organization` and is sent with every
//! request, and "today" is the day in that zone of the `Date` Gladly answered with (the local
//! clock when it sends none). A window is `startAt..endAt`, both days inclusive and never
//! overlapping the next. The first sync reads `reports_backfill_days` back; later ones start
//! at the last day read, less the days to re-read (`reports_reread_days` for contacts and work
//! sessions, whose times keep growing after a contact ends; `conversation_report_reread_days`
//! for the conversation report, which Gladly computes when it is requested). Rows merge on their
//! key, so what is read again replaces what was there and an unchanged row is not rewritten.
//!
//! The budget: Gladly allows an organisation 10 report requests a minute and 2 at once, apart
//! from the 10 requests/s of the rest of the API. Report requests go through a client of their
//! own (`reports_concurrency` in flight, its own back-off after a 429, so a throttled report
//! holds up no other stream) and [`ReportBudget`], which lets at most `reports_per_minute`
//! requests start in any minute, counted from when the earlier ones were answered.
//!
//! Never silent: a report of exactly a known row cap (`reports_row_caps`) and headers that have
//! no column are warnings in the stream's state, which `talkhouse status` shows; unreadable rows
//! are quarantined with their report, window and line.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use bytes::Bytes;
use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use talkhouse_http::{Auth, Client, ClientConfig, Request};
use talkhouse_model::{Cell, Event, Row, SourceError, StreamContext};

use super::config::GladlyConfig;
use super::generator::Emitter;
use super::model_rows;
use super::report_csv::{self, ReportShape};
use super::source::{GladlySource, VENDOR, parse_state, to_json};
use super::tables;

/// One report stream.
#[derive(Debug)]
pub(super) struct ReportKind {
    /// Stream name (and config name in `reports`).
    pub(super) stream: &'static str,
    /// Gladly's `metricSet`.
    pub(super) metric_set: &'static str,
    /// How its CSV becomes rows.
    shape: ReportShape,
    /// Gladly computes it when it is requested (re-read `conversation_report_reread_days`).
    recomputed: bool,
}

/// The conversation report's stream, whose rows also stand in for `GET /conversations/{id}`.
pub(super) const CONVERSATION_REPORT: &str = "conversation_report";

/// The report streams, in stream order.
pub(super) static REPORTS: [ReportKind; 3] = [
    ReportKind {
        stream: "contacts",
        metric_set: "ContactExportReportV3",
        shape: ReportShape {
            table: tables::CONTACTS,
            columns: tables::CONTACT_COLUMNS,
            key: &["contact_id"],
            empty_key: None,
            required_end: None,
        },
        recomputed: false,
    },
    ReportKind {
        stream: "work_sessions",
        metric_set: "WorkSessionsReportV3",
        shape: ReportShape {
            table: tables::WORK_SESSIONS,
            columns: tables::WORK_SESSION_COLUMNS,
            key: &["contact_session_id", "agent_id"],
            empty_key: Some("agent_id"),
            // A session whose contact has not ended has no id and growing times: it comes
            // with a later window.
            required_end: Some("contact_session_ended_at"),
        },
        recomputed: false,
    },
    ReportKind {
        stream: CONVERSATION_REPORT,
        metric_set: "ConversationExportReport",
        shape: ReportShape {
            table: tables::CONVERSATION_REPORT,
            columns: tables::CONVERSATION_REPORT_COLUMNS,
            key: &["conversation_id"],
            empty_key: None,
            required_end: None,
        },
        recomputed: true,
    },
];

/// The report stream of this name.
pub(super) fn report_kind(stream: &str) -> Option<&'static ReportKind> {
    REPORTS.iter().find(|k| k.stream == stream)
}

/// Longest a report request may take: Gladly builds the CSV while the request waits.
const REPORT_TIMEOUT: StdDuration = StdDuration::from_secs(300);
const MINUTE: StdDuration = StdDuration::from_secs(60);
/// Cap warnings kept in the state (newest last).
const MAX_CAP_WARNINGS: usize = 20;

/// The organisation's report budget: at most `per_minute` requests start in any minute.
/// A request counts from when it started until a minute after it was answered, so however
/// long Gladly takes to answer, no minute on its side sees more.
#[derive(Debug)]
pub(super) struct ReportBudget {
    per_minute: usize,
    slots: Mutex<(u64, Vec<Slot>)>,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    /// Start, then (once answered) the answer's time.
    at: Instant,
    answered: bool,
}

/// A request's place in the budget; dropping it marks the request answered.
pub(super) struct Ticket<'a> {
    budget: &'a ReportBudget,
    id: u64,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut g = self
            .budget
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = g.1.iter_mut().find(|s| s.id == self.id) {
            s.at = Instant::now();
            s.answered = true;
        }
    }
}

impl ReportBudget {
    /// A budget of `per_minute` requests a minute (at least 1).
    pub(super) fn new(per_minute: u32) -> Self {
        Self {
            per_minute: usize::try_from(per_minute.max(1)).unwrap_or(1),
            slots: Mutex::new((0, Vec::new())),
        }
    }

    /// Waits until a request may start.
    pub(super) async fn take(&self) -> Ticket<'_> {
        let mut logged = false;
        loop {
            let wait = {
                let mut g = self
                    .slots
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (next, slots) = &mut *g;
                let now = Instant::now();
                slots.retain(|s| !s.answered || now.duration_since(s.at) < MINUTE);
                if slots.len() < self.per_minute {
                    *next += 1;
                    slots.push(Slot {
                        id: *next,
                        at: now,
                        answered: false,
                    });
                    return Ticket {
                        budget: self,
                        id: *next,
                    };
                }
                slots
                    .iter()
                    .filter(|s| s.answered)
                    .map(|s| (s.at + MINUTE).saturating_duration_since(now))
                    .min()
                    .unwrap_or(StdDuration::from_millis(250))
            };
            if !logged {
                tracing::info!(
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "Gladly report budget spent for this minute: waiting"
                );
                logged = true;
            }
            tokio::time::sleep(wait.clamp(StdDuration::from_millis(10), StdDuration::from_secs(1)))
                .await;
        }
    }
}

/// The report client and budget of an API source.
#[derive(Debug)]
pub(super) struct ReportApi {
    client: Client,
    budget: ReportBudget,
}

impl ReportApi {
    /// A client of its own for `POST /reports`: its concurrency, its back-off.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub(super) fn new(auth: Auth, cfg: &GladlyConfig) -> Result<Self, talkhouse_http::HttpError> {
        let mut config = ClientConfig::new(VENDOR, auth).concurrency(cfg.reports_concurrency);
        config.timeout = REPORT_TIMEOUT;
        Ok(Self {
            client: Client::new(config)?,
            budget: ReportBudget::new(cfg.reports_per_minute),
        })
    }

    /// The report client (for its counters).
    pub(super) fn client(&self) -> &Client {
        &self.client
    }
}

/// The day windows to read, oldest first: from `backfill` days before `today` on a first sync,
/// else from the last day read less `reread − 1` days (the last day read always again: it may
/// have been today), to `today`, `window` days each.
pub(super) fn plan(
    today: NaiveDate,
    last_day: Option<NaiveDate>,
    backfill: u32,
    reread: u32,
    window: u32,
) -> Vec<(NaiveDate, NaiveDate)> {
    let start = match last_day {
        Some(d) => d.min(today) - Duration::days(i64::from(reread.max(1)) - 1),
        None => today - Duration::days(i64::from(backfill)),
    };
    let step = i64::from(window.max(1));
    let mut out = Vec::new();
    let mut from = start;
    while from <= today {
        let to = (from + Duration::days(step - 1)).min(today);
        out.push((from, to));
        from = to + Duration::days(1);
    }
    out
}

/// Cursor of a report stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ReportState {
    /// The last day read (in the organisation's zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_day: Option<NaiveDate>,
    /// Windows that came back at a known row cap (kept: their missing rows stay missing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    capped: Vec<String>,
    /// Headers of the last reports read that have no column.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    unknown_headers: BTreeSet<String>,
    /// What `talkhouse status` shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl ReportState {
    fn refresh_warnings(&mut self, kind: &ReportKind, zone_warning: Option<&str>) {
        self.warnings = self.capped.clone();
        if !self.unknown_headers.is_empty() {
            self.warnings.push(format!(
                "{} has headers talkhouse does not know ({}): they are kept in `_raw` of gladly.{} but have no column",
                kind.metric_set,
                self.unknown_headers
                    .iter()
                    .map(|h| format!("{h:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                kind.shape.table.name
            ));
        }
        if let Some(w) = zone_warning {
            self.warnings.push(w.to_owned());
        }
    }
}

impl GladlySource {
    /// Whether the configuration syncs this report.
    pub(super) fn report_enabled(&self, kind: &ReportKind) -> bool {
        self.reports.is_some() && self.cfg.reports.iter().any(|r| r == kind.stream)
    }

    /// The organisation's zone and today's day in it; a warning when the zone is unknown.
    async fn organization_day(
        &self,
        stream: &'static str,
    ) -> Result<(Tz, NaiveDate, Option<String>), SourceError> {
        let (code, answer, body) = self.get("/organization", stream).await?;
        if code != 200 {
            return Err(SourceError::Http {
                vendor: VENDOR,
                url: "/organization".into(),
                status: Some(code),
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        let org: Value = serde_json::from_slice(&body).map_err(|e| SourceError::Protocol {
            location: "/organization".into(),
            message: e.to_string(),
        })?;
        let name = org.get("timezone").and_then(Value::as_str).unwrap_or("");
        let (tz, warning) = match name.parse::<Tz>() {
            Ok(tz) => (tz, None),
            Err(_) => (
                Tz::UTC,
                Some(format!(
                    "the organization's timezone {name:?} is unknown: report days are UTC days"
                )),
            ),
        };
        let now = answer.date.unwrap_or_else(Utc::now);
        Ok((tz, now.with_timezone(&tz).date_naive(), warning))
    }

    /// One report window's CSV.
    async fn report(
        &self,
        kind: &ReportKind,
        tz: Tz,
        (from, to): (NaiveDate, NaiveDate),
    ) -> Result<Bytes, SourceError> {
        let (root, _) = self.api_parts()?;
        let api = self
            .reports
            .as_ref()
            .ok_or_else(|| SourceError::Config("this Gladly source only loads files".into()))?;
        let url = format!("{root}/reports");
        let body = json!({
            "metricSet": kind.metric_set,
            "timezone": tz.name(),
            "startAt": from.format("%Y-%m-%d").to_string(),
            "endAt": to.format("%Y-%m-%d").to_string(),
        });
        let ticket = api.budget.take().await;
        let (status, _, bytes) = api
            .client
            .fetch(Request::post_json(url.clone(), kind.stream, body))
            .await?;
        drop(ticket);
        match status.as_u16() {
            200 => Ok(bytes),
            204 => Ok(Bytes::new()),
            code @ (401 | 403) => Err(SourceError::Auth {
                vendor: VENDOR,
                status: code,
                detail: if code == 401 {
                    "bad e-mail or API token (hint: check `email` and `token`)".into()
                } else {
                    format!(
                        "the API user may not run reports (hint: grant report access, or leave `{}` out of `reports`)",
                        kind.stream
                    )
                },
            }),
            code => Err(SourceError::Http {
                vendor: VENDOR,
                url,
                status: Some(code),
                message: format!(
                    "{} {from}..{to}: {}",
                    kind.metric_set,
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            }),
        }
    }

    /// Hands the conversation report's rows of conversations that the new export jobs of this
    /// run name to the `conversations` stream, which then needs no GET for them. Rows of other
    /// conversations are not kept, so what is held grows with the new jobs, not the report.
    fn note_report_conversations(&self, rows: &[Row]) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.is_empty() {
            return;
        }
        for row in rows {
            let Some(id) = row.get("conversation_id").and_then(Cell::as_str) else {
                continue;
            };
            for ids in cache.values_mut() {
                if let Some(note) = ids.conversations.get_mut(id) {
                    note.report = Some(row.clone());
                }
            }
        }
    }

    /// A report stream: its windows, oldest first, a checkpoint after each.
    pub(super) async fn run_report(
        &self,
        mut em: Emitter,
        ctx: StreamContext,
        kind: &'static ReportKind,
    ) -> Result<(), SourceError> {
        let mut state: ReportState = parse_state(&ctx);
        let (tz, today, zone_warning) = self.organization_day(kind.stream).await?;
        let reread = if kind.recomputed {
            self.cfg.conversation_report_reread_days
        } else {
            self.cfg.reports_reread_days
        };
        let windows = plan(
            today,
            state.last_day,
            self.cfg.reports_backfill_days,
            reread,
            self.cfg.reports_window_days,
        );
        let mut headers_seen: BTreeSet<String> = BTreeSet::new();
        let mut read_any = false;
        for window in windows {
            let location = format!("{} {}..{}", kind.metric_set, window.0, window.1);
            let body = self.report(kind, tz, window).await?;
            let parsed = report_csv::parse(&body, &kind.shape, tz, &location);
            tracing::debug!(
                report = kind.metric_set,
                from = %window.0,
                to = %window.1,
                records = parsed.records,
                not_ended = parsed.not_ended,
                "report read"
            );
            if kind.stream == CONVERSATION_REPORT && self.cfg.conversations_from_report {
                self.note_report_conversations(&parsed.rows);
            }
            for row in parsed.rows {
                // A contact is also a session of the model, a work session agent work.
                let model = model_rows::model_rows_of(&row);
                em.emit(Event::Records(std::iter::once(row).chain(model).collect()))
                    .await?;
            }
            // Quarantined records go with the cursor that covers them, so that a window is
            // never quarantined twice.
            for q in parsed.quarantined {
                em.emit(Event::Quarantine(q)).await?;
            }
            if self.cfg.reports_row_caps.contains(&parsed.records) {
                let w = format!(
                    "{location} came back with exactly {} rows, a row cap Gladly's reports are known to stop at without saying so: rows past it may be missing from gladly.{} (hint: lower `reports_window_days` and sync that stream again with a full refresh)",
                    parsed.records, kind.shape.table.name
                );
                tracing::warn!(source = %self.name, "{w}");
                state.capped.retain(|c| *c != w);
                state.capped.push(w);
                let over = state.capped.len().saturating_sub(MAX_CAP_WARNINGS);
                state.capped = state.capped.split_off(over);
            }
            if parsed.records > 0 {
                read_any = true;
                headers_seen.extend(parsed.unknown_headers);
                state.unknown_headers.clone_from(&headers_seen);
            }
            state.last_day = Some(window.1);
            state.refresh_warnings(kind, zone_warning.as_deref());
            em.emit(Event::Checkpoint(to_json(&state))).await?;
        }
        if read_any {
            state.unknown_headers = headers_seen;
        }
        state.refresh_warnings(kind, zone_warning.as_deref());
        for w in state.warnings.iter().skip(state.capped.len()) {
            tracing::warn!(source = %self.name, stream = kind.stream, "{w}");
        }
        em.emit(Event::Checkpoint(to_json(&state))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a day")
    }

    #[test]
    fn windows_cover_the_backfill_then_reread_without_overlap() {
        let today = day("2026-03-10");
        let first = plan(today, None, 10, 7, 4);
        assert_eq!(
            first,
            [
                (day("2026-02-28"), day("2026-03-03")),
                (day("2026-03-04"), day("2026-03-07")),
                (day("2026-03-08"), day("2026-03-10")),
            ]
        );
        // Next day, re-reading three days: from two days before the last day read.
        assert_eq!(
            plan(day("2026-03-11"), Some(today), 10, 3, 7),
            [(day("2026-03-08"), day("2026-03-11"))]
        );
        // Re-reading 0 days still reads the last day again (it was partial).
        assert_eq!(plan(today, Some(today), 10, 0, 7), [(today, today)]);
    }

    #[tokio::test]
    async fn the_budget_lets_a_burst_through_up_to_its_size() {
        let b = ReportBudget::new(3);
        let t1 = b.take().await;
        let t2 = b.take().await;
        let t3 = b.take().await;
        drop((t1, t2, t3));
        let g = b.slots.lock().expect("lock");
        assert_eq!(g.1.len(), 3);
        assert!(g.1.iter().all(|s| s.answered));
    }
}
