//! The vendor's metrics (the "Popular Metrics" Ultimate documents) as SQL views,
//! and the same definitions in Rust ([`metrics`]) for tests.
//!
//! Views, in creation order (each in the source's schema):
//! * `metric_conversations`: one row per conversation, status normalised (`bot_handled` →
//!   `botHandled`), with the parity filter (`bot_messages_count > 0`) when configured;
//! * `conversation_intents`: per conversation, `first_intent` / `last_intent` (array order) and
//!   `first_meaningful_intent` (`not_meaningful` false, name not excluded, earliest
//!   `intent_timestamp`, then position); all conversations, no parity filter;
//! * `metrics`: the seed's eight figures over everything;
//! * `metrics_by_day`: the same per `start_date` (UTC day the conversation started: the
//!   seed's "took place on day x", which needs files x and x+1);
//! * `metrics_by_first_meaningful_intent`, `metrics_by_day_and_first_meaningful_intent`:
//!   conversations and bot handled rate per first meaningful intent.
//!
//! Rates are `DOUBLE PRECISION` fractions (NULL when the denominator is 0). As in the seed's
//! SQL, a NULL status is neither deflected nor escalated, so those two rates need not add up
//! to 1.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Options of the metric views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricOptions {
    /// Intent names left out of "first meaningful intent".
    pub excluded_intents: Vec<String>,
    /// Only conversations with `bot_messages_count > 0` (Bot Summary parity).
    pub parity_filter: bool,
}

impl Default for MetricOptions {
    fn default() -> Self {
        Self {
            excluded_intents: super::config::DEFAULT_EXCLUDED_INTENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            parity_filter: false,
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const RATES: &str = "count(DISTINCT conversation_id) AS total_conversations,
  count(DISTINCT CASE WHEN status = 'botHandled' THEN conversation_id END) AS bot_handled_conversations,
  CAST(count(DISTINCT CASE WHEN status = 'botHandled' THEN conversation_id END) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT conversation_id), 0) AS bot_handled_rate,
  CAST(count(DISTINCT CASE WHEN status NOT IN ('email', 'agent', 'customEscalation') THEN conversation_id END) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT conversation_id), 0) AS deflection_rate,
  CAST(count(DISTINCT CASE WHEN status IN ('email', 'agent', 'customEscalation') THEN conversation_id END) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT conversation_id), 0) AS escalation_rate,
  CAST(count(DISTINCT CASE WHEN status = 'failedEscalation' THEN conversation_id END) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT conversation_id), 0) AS failed_escalation_rate,
  CAST(count(DISTINCT CASE WHEN last_resolution = 'informed' THEN conversation_id END) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT conversation_id), 0) AS informed_rate,
  CAST(count(DISTINCT CASE WHEN last_resolution IN ('informed', 'resolved') THEN conversation_id END) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT conversation_id), 0) AS automation_rate,
  CAST(sum(visitor_messages_count) - sum(not_understood_messages_count) AS DOUBLE PRECISION)
    / NULLIF(sum(visitor_messages_count), 0) AS messages_understood_rate";

const BY_INTENT: &str = "i.first_meaningful_intent,
  count(DISTINCT m.conversation_id) AS total_conversations,
  CAST(count(DISTINCT CASE WHEN m.status = 'botHandled' THEN m.conversation_id END) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT m.conversation_id), 0) AS bot_handled_rate";

/// The views as `(name, SELECT …)`, with `{schema}` standing for the source's schema.
pub fn views(opts: &MetricOptions) -> Vec<(&'static str, String)> {
    let parity = if opts.parity_filter {
        " AND c.bot_messages_count > 0"
    } else {
        ""
    };
    let excluded = if opts.excluded_intents.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = opts.excluded_intents.iter().map(|s| quote(s)).collect();
        format!(" AND t.intent_name NOT IN ({})", list.join(", "))
    };
    vec![
        (
            "metric_conversations",
            format!(
                "SELECT c.conversation_id, c.bot_id, c.start_date, c.export_date,
  CASE WHEN c.conversation_status = 'bot_handled' THEN 'botHandled' ELSE c.conversation_status END AS status,
  c.last_resolution, c.bot_messages_count, c.visitor_messages_count, c.not_understood_messages_count, c.test_mode
FROM {{schema}}.conversations c
WHERE c._deleted_at IS NULL{parity}"
            ),
        ),
        (
            "conversation_intents",
            format!(
                "WITH ranked AS (
  SELECT t.conversation_id, t.intent_name,
    ROW_NUMBER() OVER (PARTITION BY t.conversation_id ORDER BY t.position ASC) AS rn_first,
    ROW_NUMBER() OVER (PARTITION BY t.conversation_id ORDER BY t.position DESC) AS rn_last
  FROM {{schema}}.triggered_intent_replies t
  WHERE t._deleted_at IS NULL
), meaningful AS (
  SELECT t.conversation_id, t.intent_name,
    ROW_NUMBER() OVER (PARTITION BY t.conversation_id ORDER BY t.intent_timestamp ASC NULLS LAST, t.position ASC) AS rn
  FROM {{schema}}.triggered_intent_replies t
  WHERE t._deleted_at IS NULL AND t.not_meaningful = FALSE{excluded}
)
SELECT c.conversation_id, c.start_date,
  f.intent_name AS first_intent, l.intent_name AS last_intent, fm.intent_name AS first_meaningful_intent
FROM {{schema}}.conversations c
LEFT JOIN ranked f ON f.conversation_id = c.conversation_id AND f.rn_first = 1
LEFT JOIN ranked l ON l.conversation_id = c.conversation_id AND l.rn_last = 1
LEFT JOIN meaningful fm ON fm.conversation_id = c.conversation_id AND fm.rn = 1
WHERE c._deleted_at IS NULL"
            ),
        ),
        ("metrics", format!("SELECT {RATES}\nFROM {{schema}}.metric_conversations")),
        (
            "metrics_by_day",
            format!("SELECT start_date, {RATES}\nFROM {{schema}}.metric_conversations\nGROUP BY start_date\nORDER BY start_date"),
        ),
        (
            "metrics_by_first_meaningful_intent",
            format!(
                "SELECT {BY_INTENT}
FROM {{schema}}.metric_conversations m
JOIN {{schema}}.conversation_intents i ON i.conversation_id = m.conversation_id
WHERE i.first_meaningful_intent IS NOT NULL
GROUP BY i.first_meaningful_intent
ORDER BY total_conversations DESC, i.first_meaningful_intent"
            ),
        ),
        (
            "metrics_by_day_and_first_meaningful_intent",
            format!(
                "SELECT m.start_date, {BY_INTENT}
FROM {{schema}}.metric_conversations m
JOIN {{schema}}.conversation_intents i ON i.conversation_id = m.conversation_id
WHERE i.first_meaningful_intent IS NOT NULL
GROUP BY m.start_date, i.first_meaningful_intent
ORDER BY m.start_date, total_conversations DESC, i.first_meaningful_intent"
            ),
        ),
    ]
}

/// What the metrics need of one `ultimate.conversations` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationFacts {
    /// `conversation_id`.
    pub conversation_id: String,
    /// `start_date` as `YYYY-MM-DD`.
    pub start_date: Option<String>,
    /// Raw `conversation_status`.
    pub status: Option<String>,
    /// `last_resolution`.
    pub last_resolution: Option<String>,
    /// `bot_messages_count`.
    pub bot_messages: Option<i64>,
    /// `visitor_messages_count`.
    pub visitor_messages: Option<i64>,
    /// `not_understood_messages_count`.
    pub not_understood: Option<i64>,
}

/// What the metrics need of one `ultimate.triggered_intent_replies` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntentFacts {
    /// `conversation_id`.
    pub conversation_id: String,
    /// `position`.
    pub position: i64,
    /// `intent_timestamp` in microseconds.
    pub timestamp: Option<i64>,
    /// `intent_name`.
    pub name: Option<String>,
    /// `not_meaningful`.
    pub not_meaningful: Option<bool>,
}

fn ratio(num: usize, den: usize) -> Value {
    #[allow(clippy::cast_precision_loss)]
    if den == 0 {
        Value::Null
    } else {
        Value::from(num as f64 / den as f64)
    }
}

fn rates(convs: &[&ConversationFacts]) -> Value {
    let status = |c: &ConversationFacts| {
        c.status
            .as_deref()
            .map(super::records::normalise_status)
            .map(str::to_owned)
    };
    let count = |f: &dyn Fn(&ConversationFacts) -> bool| convs.iter().filter(|c| f(c)).count();
    let total = convs.len();
    let handled = count(&|c| status(c).as_deref() == Some("botHandled"));
    let is_esc = |s: &str| super::records::ESCALATION_STATUSES.contains(&s);
    // SQL: `NULL NOT IN (...)` and `NULL IN (...)` are both not true.
    let deflected = count(&|c| status(c).is_some_and(|s| !is_esc(&s)));
    let escalated = count(&|c| status(c).is_some_and(|s| is_esc(&s)));
    let failed = count(&|c| status(c).as_deref() == Some("failedEscalation"));
    let informed = count(&|c| c.last_resolution.as_deref() == Some("informed"));
    let automated =
        count(&|c| matches!(c.last_resolution.as_deref(), Some("informed" | "resolved")));
    let visitor: Option<i64> = convs
        .iter()
        .filter_map(|c| c.visitor_messages)
        .reduce(|a, b| a + b);
    let nu: Option<i64> = convs
        .iter()
        .filter_map(|c| c.not_understood)
        .reduce(|a, b| a + b);
    #[allow(clippy::cast_precision_loss)]
    let understood = match (visitor, nu) {
        (Some(v), Some(n)) if v != 0 => Value::from((v - n) as f64 / v as f64),
        _ => Value::Null,
    };
    json!({
        "total_conversations": total,
        "bot_handled_conversations": handled,
        "bot_handled_rate": ratio(handled, total),
        "deflection_rate": ratio(deflected, total),
        "escalation_rate": ratio(escalated, total),
        "failed_escalation_rate": ratio(failed, total),
        "informed_rate": ratio(informed, total),
        "automation_rate": ratio(automated, total),
        "messages_understood_rate": understood,
    })
}

/// The views' figures computed in Rust from rows: `overall` (the `metrics` view, honouring
/// the parity option), `overall_parity` (always filtered), `by_day`,
/// `by_first_meaningful_intent`, and the counts of `first_intent` / `last_intent` values of
/// `conversation_intents`.
pub fn metrics(
    convs: &[ConversationFacts],
    intents: &[IntentFacts],
    opts: &MetricOptions,
) -> Value {
    let kept: Vec<&ConversationFacts> = convs
        .iter()
        .filter(|c| !opts.parity_filter || c.bot_messages.is_some_and(|n| n > 0))
        .collect();
    let parity: Vec<&ConversationFacts> = convs
        .iter()
        .filter(|c| c.bot_messages.is_some_and(|n| n > 0))
        .collect();
    let mut per_conv: BTreeMap<&str, Vec<&IntentFacts>> = BTreeMap::new();
    for i in intents {
        per_conv
            .entry(i.conversation_id.as_str())
            .or_default()
            .push(i);
    }
    let mut first_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_meaningful: BTreeMap<&str, String> = BTreeMap::new();
    for (conv, list) in &mut per_conv {
        list.sort_by_key(|i| i.position);
        if let Some(n) = list.first().and_then(|i| i.name.clone()) {
            *first_counts.entry(n).or_default() += 1;
        }
        if let Some(n) = list.last().and_then(|i| i.name.clone()) {
            *last_counts.entry(n).or_default() += 1;
        }
        let best = list
            .iter()
            .filter(|i| {
                i.not_meaningful == Some(false)
                    && i.name
                        .as_ref()
                        .is_some_and(|n| !opts.excluded_intents.iter().any(|x| x == n))
            })
            // NULLS LAST, then position.
            .min_by_key(|i| (i.timestamp.is_none(), i.timestamp, i.position));
        if let Some(name) = best.and_then(|i| i.name.clone()) {
            first_meaningful.insert(conv, name);
        }
    }
    let mut by_day: BTreeMap<String, Vec<&ConversationFacts>> = BTreeMap::new();
    let mut by_intent: BTreeMap<String, Vec<&ConversationFacts>> = BTreeMap::new();
    for c in &kept {
        if let Some(d) = &c.start_date {
            by_day.entry(d.clone()).or_default().push(c);
        }
        if let Some(i) = first_meaningful.get(c.conversation_id.as_str()) {
            by_intent.entry(i.clone()).or_default().push(c);
        }
    }
    let intents: serde_json::Map<String, Value> = by_intent
        .into_iter()
        .map(|(name, cs)| {
            let handled = cs
                .iter()
                .filter(|c| c.status.as_deref().map(super::records::normalise_status) == Some("botHandled"))
                .count();
            (name, json!({"total_conversations": cs.len(), "bot_handled_rate": ratio(handled, cs.len())}))
        })
        .collect();
    json!({
        "overall": rates(&kept),
        "overall_parity": rates(&parity),
        "by_day": by_day.into_iter().map(|(d, cs)| (d, rates(&cs))).collect::<serde_json::Map<_, _>>(),
        "by_first_meaningful_intent": intents,
        "first_intent_counts": first_counts,
        "last_intent_counts": last_counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_quote_and_filter() {
        let v = views(&MetricOptions {
            excluded_intents: vec!["O'Brien".into()],
            parity_filter: true,
        });
        let all: String = v.iter().map(|(_, s)| s.as_str()).collect();
        assert!(all.contains("NOT IN ('O''Brien')"));
        assert!(all.contains("bot_messages_count > 0"));
        let none = views(&MetricOptions {
            excluded_intents: vec![],
            parity_filter: false,
        });
        assert!(!none.iter().any(|(_, s)| s.contains("NOT IN ()")));
    }
}
