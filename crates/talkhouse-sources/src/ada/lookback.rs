//! The look-back: every run reads the last `lookback` behind its cursor again, for records Ada
//! ingested later than `lag`, and counts how many of them earlier runs had not seen.
//!
//! Keeping every id of the look-back in the state would make it grow with the traffic, so the
//! state keeps, per hour of the cursor field (`date_created`, `date_updated`), how many distinct
//! records the runs have read there ([`Counts`]). A look-back reads its hours again, whole, up
//! to where the previous run stopped ([`Reread::until`]); an hour that now holds more records
//! than the previous runs counted holds that many they missed. For messages, which Ada never
//! changes, the figure is exact unless Ada also deleted a message of the same hour; a
//! conversation updated again leaves its old hour, so for conversations it is a lower bound.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An hour as the state names it: `2026-12-04T10`. Names sort in time order.
fn hour_name(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

/// The start of the hour `t` lies in.
pub(super) fn hour_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// The first hour that starts at or after `t`: the first one a read from `t` covers whole.
fn hour_ceil(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = hour_floor(t);
    if floor == t {
        t
    } else {
        floor + Duration::hours(1)
    }
}

/// Distinct records read per hour, from the hour `since` on (the hours read whole).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Counts {
    /// The first hour counted whole.
    since: String,
    /// Hour → distinct records with their cursor field in it.
    hours: BTreeMap<String, u64>,
}

impl Counts {
    /// Counting for a read that starts at `t`.
    pub(super) fn starting_at(t: DateTime<Utc>) -> Self {
        Self {
            since: hour_name(hour_ceil(t)),
            hours: BTreeMap::new(),
        }
    }

    /// One more distinct record at `at`.
    pub(super) fn add(&mut self, at: DateTime<Utc>) {
        *self.hours.entry(hour_name(at)).or_default() += 1;
    }

    /// Forgets the hours before `from`'s: no look-back reaches them any more.
    pub(super) fn keep_from(&mut self, from: DateTime<Utc>) {
        let from = hour_name(hour_floor(from));
        if from > self.since {
            self.hours = self.hours.split_off(&from);
            self.since = from;
        }
    }

    /// What a checkpoint stores: the counts without the records at `pending` (those at the
    /// cursor, which a resumed run reads and counts again).
    pub(super) fn without(&self, pending: impl Iterator<Item = DateTime<Utc>>) -> Self {
        let mut out = self.clone();
        for at in pending {
            if let Some(n) = out.hours.get_mut(&hour_name(at)) {
                *n = n.saturating_sub(1);
            }
        }
        out
    }

    /// Records counted here beyond what `before` counted, over the hours both read whole.
    pub(super) fn beyond(&self, before: &Counts) -> u64 {
        let from = self.since.as_str().max(before.since.as_str());
        self.hours
            .range(from.to_owned()..)
            .map(|(h, n)| n.saturating_sub(before.hours.get(h).copied().unwrap_or(0)))
            .sum()
    }
}

/// A look-back in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Reread {
    /// Where the previous run stopped: the look-back reads up to here, then the run goes on.
    pub(super) until: DateTime<Utc>,
    /// What the runs before had counted (none when their state predates the counting).
    pub(super) before: Option<Counts>,
}

/// Where a run starts, look-back included.
#[derive(Debug)]
pub(super) struct Plan {
    /// The first request's lower bound.
    pub(super) cursor: DateTime<Utc>,
    /// The window to finish first (a resumed run).
    pub(super) window_end: Option<DateTime<Utc>>,
    /// The counts to go on with.
    pub(super) counts: Counts,
    /// The look-back to read first, or to finish.
    pub(super) reread: Option<Reread>,
    /// Missed records found by the look-back of an interrupted run, already done.
    pub(super) found: Option<u64>,
}

/// The state key of the counts.
pub(super) const COUNTS_KEY: &str = "seen";
/// The state key of a look-back in progress.
pub(super) const REREAD_KEY: &str = "reread";
/// The state key of what the last look-back found.
pub(super) const FOUND_KEY: &str = "lookback_found";

/// The state's `key`, if it is there and readable.
fn read<T: serde::de::DeserializeOwned>(state: Option<&Value>, key: &str) -> Option<T> {
    state
        .and_then(|s| s.get(key))
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Plans a run from the committed `state` (none on a first run or a full refresh) and the
/// position the source chose from it (`cursor`, `window_end`, clamped to Ada's 12 months).
pub(super) fn plan(
    state: Option<&Value>,
    cursor: DateTime<Utc>,
    window_end: Option<DateTime<Utc>>,
    lookback: Duration,
    floor: DateTime<Utc>,
) -> Plan {
    let counts: Option<Counts> = read(state, COUNTS_KEY);
    let reread: Option<Reread> = read(state, REREAD_KEY);
    let carry_on = |found| Plan {
        cursor,
        window_end,
        counts: counts
            .clone()
            .unwrap_or_else(|| Counts::starting_at(cursor)),
        reread: reread.clone(),
        found,
    };
    if state.is_none() {
        return carry_on(None);
    }
    // An interrupted run: go on where it stopped, with its look-back's outcome.
    if reread.is_some() || window_end.is_some() {
        let found = state.and_then(|s| s.get(FOUND_KEY)).and_then(Value::as_u64);
        return carry_on(found.filter(|_| reread.is_none()));
    }
    let from = hour_floor(cursor - lookback).max(floor);
    if lookback <= Duration::zero() || from >= cursor {
        return carry_on(None);
    }
    Plan {
        cursor: from,
        window_end: None,
        counts: Counts::starting_at(from),
        reread: Some(Reread {
            until: cursor,
            before: counts,
        }),
        found: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        talkhouse_model::time::parse_timestamp(s).unwrap_or_default()
    }

    #[test]
    fn counts_compare_whole_hours_only() {
        let mut before = Counts::starting_at(t("2026-01-01T10:30:00Z"));
        assert_eq!(before.since, "2026-01-01T11");
        for at in [
            "2026-01-01T10:40:00Z",
            "2026-01-01T11:10:00Z",
            "2026-01-01T12:00:00Z",
        ] {
            before.add(t(at));
        }
        let mut now = Counts::starting_at(t("2026-01-01T10:00:00Z"));
        for at in [
            "2026-01-01T10:40:00Z",
            "2026-01-01T10:50:00Z", // in an hour `before` did not read whole: not counted
            "2026-01-01T11:10:00Z",
            "2026-01-01T11:20:00Z", // missed
            "2026-01-01T12:00:00Z",
            "2026-01-01T13:00:00Z", // missed
        ] {
            now.add(t(at));
        }
        assert_eq!(now.beyond(&before), 2);
        assert_eq!(before.beyond(&now), 0);
    }

    #[test]
    fn checkpoints_leave_out_the_records_a_resumed_run_reads_again() {
        let mut c = Counts::starting_at(t("2026-01-01T00:00:00Z"));
        for at in [
            "2026-01-01T00:10:00Z",
            "2026-01-01T05:10:00Z",
            "2026-01-01T05:10:00Z",
        ] {
            c.add(t(at));
        }
        let stored = c.without([t("2026-01-01T05:10:00Z")].into_iter());
        assert_eq!(stored.hours.get("2026-01-01T05"), Some(&1));
        c.keep_from(t("2026-01-01T03:59:00Z"));
        assert_eq!(c.since, "2026-01-01T03");
        assert_eq!(c.hours.keys().collect::<Vec<_>>(), ["2026-01-01T05"]);
    }

    #[test]
    fn a_finished_run_is_read_again_from_the_look_back() {
        let floor = t("2025-01-01T00:00:00Z");
        let state = serde_json::json!({"cursor": "2026-01-03T10:30:00Z", "seen": {"since": "2026-01-01T10", "hours": {}}});
        let p = plan(
            Some(&state),
            t("2026-01-03T10:30:00Z"),
            None,
            Duration::days(2),
            floor,
        );
        assert_eq!(p.cursor, t("2026-01-01T10:00:00Z"));
        let r = p.reread.expect("a look-back");
        assert!(r.before.is_some());
        assert_eq!(r.until, t("2026-01-03T10:30:00Z"));
        // Turned off, or on a first run: none.
        for (state, lookback) in [(Some(&state), Duration::zero()), (None, Duration::days(2))] {
            let p = plan(state, t("2026-01-03T10:30:00Z"), None, lookback, floor);
            assert!(p.reread.is_none());
            assert_eq!(p.cursor, t("2026-01-03T10:30:00Z"));
        }
        // An interrupted run goes on where it stopped.
        let p = plan(
            Some(&state),
            t("2026-01-03T10:30:00Z"),
            Some(t("2026-01-04T00:00:00Z")),
            Duration::days(2),
            floor,
        );
        assert!(p.reread.is_none());
        assert_eq!(p.cursor, t("2026-01-03T10:30:00Z"));
    }
}
