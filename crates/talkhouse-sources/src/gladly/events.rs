//! The `events` stream (`events = true`): Gladly's Events API, polled, for organisations that
//! cannot take webhooks.
//!
//! `GET /events?startAt=…&endAt=…&entities=…` answers the events of a time range as JSON
//! lines, oldest first, in the shape webhooks have; `entities` is repeated, one per entity
//! (here `CONVERSATION`, `CONTACT`, `CUSTOMER` and `CUSTOMER_PROFILE`). Gladly keeps events
//! 24 hours: a `startAt` older than that is refused with 400, and an event may show up to
//! about 15 seconds after its time. Each event becomes the fetch a webhook of it would have
//! made ([`Fetch`]), once per poll for the same thing.
//!
//! The cursor is the end of the last range read. A run reads from it to one minute before
//! Gladly's clock (the `Date` of its answer to `GET /organization`), in ranges of an hour, a
//! checkpoint after each. The first run starts 24 hours back (less a minute, so that the clocks
//! may disagree a little). A cursor older than that starts there too, and the hours in between
//! are a warning in the stream's state (`talkhouse status`): their events are lost.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use talkhouse_model::{Event, Quarantined, SourceError, StreamContext};

use super::generator::Emitter;
use super::push::{Fetch, event_time};
use super::source::{GladlySource, VENDOR, parse_state, to_json};

/// The stream's name.
pub(super) const EVENTS: &str = "events";
/// The entities polled.
const ENTITIES: [&str; 4] = ["CONVERSATION", "CONTACT", "CUSTOMER", "CUSTOMER_PROFILE"];
/// How long Gladly keeps events.
const KEPT: Duration = Duration::hours(24);
/// Kept off the edges: the oldest start asked for is this much younger than `KEPT`, and a
/// range ends this long before Gladly's clock (events may come about 15 s late).
const MARGIN: Duration = Duration::minutes(1);
/// One request covers at most this much time.
const RANGE: Duration = Duration::hours(1);
/// Gap warnings kept in the state (newest last).
const MAX_GAP_WARNINGS: usize = 5;

/// Cursor of the `events` stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EventsState {
    /// The end of the last range read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<DateTime<Utc>>,
    /// Ranges whose events were lost (what `talkhouse status` shows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// Where the next poll starts: the cursor, or the oldest point Gladly still answers for when
/// there is none or it is older (then with the warning naming the lost range).
fn start_of(cursor: Option<DateTime<Utc>>, now: DateTime<Utc>) -> (DateTime<Utc>, Option<String>) {
    let oldest = now - KEPT + MARGIN;
    match cursor {
        None => (oldest, None),
        Some(c) if c < oldest => (
            oldest,
            Some(format!(
                "Gladly events from {} to {} were never read: the Events API keeps 24 hours and the stream last read up to the first (hint: sync at least daily; the export still brings the items of that time, but merges and changes to conversations no later event or export names are missed)",
                c.to_rfc3339_opts(SecondsFormat::Secs, true),
                oldest.to_rfc3339_opts(SecondsFormat::Secs, true)
            )),
        ),
        Some(c) => (c, None),
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl GladlySource {
    /// The `events` stream.
    pub(super) async fn run_events(
        &self,
        mut em: Emitter,
        ctx: StreamContext,
    ) -> Result<(), SourceError> {
        let mut state: EventsState = parse_state(&ctx);
        let (_, answer, _) = self.get("/organization", EVENTS).await?;
        let now = answer.date.unwrap_or_else(Utc::now);
        let end = now - MARGIN;
        let (mut from, gap) = start_of(state.cursor, now);
        if let Some(w) = gap {
            tracing::warn!(source = %self.name, "{w}");
            state.warnings.push(w);
            let over = state.warnings.len().saturating_sub(MAX_GAP_WARNINGS);
            state.warnings = state.warnings.split_off(over);
        }
        while from < end {
            let to = (from + RANGE).min(end);
            let events = self.events_between(&mut em, from, to).await?;
            let mut done: BTreeSet<Fetch> = BTreeSet::new();
            for event in &events {
                let Some(fetch) = Fetch::of(event) else {
                    continue;
                };
                if done.contains(&fetch) {
                    continue;
                }
                self.fetch(&mut em, &fetch, event_time(event), EVENTS)
                    .await?;
                done.insert(fetch);
            }
            tracing::debug!(from = %from, to = %to, events = events.len(), fetched = done.len(), "Gladly events read");
            from = to;
            state.cursor = Some(to);
            em.emit(Event::Checkpoint(to_json(&state))).await?;
        }
        em.emit(Event::Checkpoint(to_json(&state))).await
    }

    /// The events of `[from, to)`; unreadable lines are quarantined.
    async fn events_between(
        &self,
        em: &mut Emitter,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Value>, SourceError> {
        let entities: String = ENTITIES.iter().map(|e| format!("&entities={e}")).collect();
        let path = format!(
            "/events?startAt={}&endAt={}{entities}",
            stamp(from),
            stamp(to)
        );
        let (code, _, body) = self.get(&path, EVENTS).await?;
        if code != 200 {
            return Err(SourceError::Http {
                vendor: VENDOR,
                url: path,
                status: Some(code),
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        let mut out = Vec::new();
        for (n, line) in String::from_utf8_lossy(&body).lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => out.push(v),
                Ok(_) | Err(_) => {
                    em.emit(Event::Quarantine(Quarantined {
                        location: format!("events {}..{}:{}", stamp(from), stamp(to), n + 1),
                        error: "not a JSON object".into(),
                        payload: line.to_owned(),
                    }))
                    .await?;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn the_start_stays_inside_the_24_hours_and_names_what_was_lost() {
        let now = at("2026-03-10T12:00:00Z");
        assert_eq!(start_of(None, now), (at("2026-03-09T12:01:00Z"), None));
        let recent = at("2026-03-10T11:00:00Z");
        assert_eq!(start_of(Some(recent), now), (recent, None));
        let (from, gap) = start_of(Some(at("2026-03-08T09:00:00Z")), now);
        assert_eq!(from, at("2026-03-09T12:01:00Z"));
        let gap = gap.unwrap_or_default();
        assert!(
            gap.contains("2026-03-08T09:00:00Z") && gap.contains("2026-03-09T12:01:00Z"),
            "{gap}"
        );
    }
}
