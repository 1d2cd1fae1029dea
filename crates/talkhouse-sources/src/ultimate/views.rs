//! The vendor's metrics (the "Popular Metrics" Ultimate documents) as SQL views: the one
//! place they are defined. The report and every user query read these views.
//!
//! Views, in creation order (each in the source's schema):
//! * `metric_conversations`: one row per conversation, status normalised (`bot_handled` →
//!   `botHandled`), with one 0/1 column per outcome the metrics count (`bot_handled`,
//!   `deflected`, `escalated`, `failed_escalation`, `informed`, `automated`); test conversations
//!   (`test_mode`) left out unless `include_test`, and the parity filter
//!   (`bot_messages_count > 0`) when configured;
//! * `conversation_intents`: per conversation, `first_intent` / `last_intent` (array order) and
//!   `first_meaningful_intent` (`not_meaningful` false, name not excluded, earliest
//!   `intent_timestamp`, then position); all conversations, no parity filter;
//! * `export_status`: one row, `final_before`: the first day whose metrics are not final yet.
//!   A day's conversations can end after midnight, in the next day's file, so day x is final
//!   once the file of day x + 1 has been read for every configured bot (`export_days`);
//! * `metrics`: the seed's eight figures over everything;
//! * `metrics_by_day`: the same per `start_date` (UTC day the conversation started: the
//!   seed's "took place on day x", which needs files x and x+1), with `complete`: false for a
//!   day that is not final yet;
//! * `metrics_by_first_meaningful_intent`, `metrics_by_day_and_first_meaningful_intent`:
//!   conversations and bot handled rate per first meaningful intent.
//!
//! Rates are `DOUBLE PRECISION` fractions (NULL when the denominator is 0). As in the seed's
//! SQL, a NULL status is neither deflected nor escalated, so those two rates need not add up
//! to 1.

/// Options of the metric views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricOptions {
    /// Intent names left out of "first meaningful intent".
    pub excluded_intents: Vec<String>,
    /// Only conversations with `bot_messages_count > 0` (Bot Summary parity).
    pub parity_filter: bool,
    /// Keep test conversations (`test_mode`).
    pub include_test: bool,
    /// The configured bots: a day is final once every one of them has the next day read.
    pub bot_ids: Vec<String>,
}

impl Default for MetricOptions {
    fn default() -> Self {
        Self {
            excluded_intents: super::config::DEFAULT_EXCLUDED_INTENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            parity_filter: false,
            include_test: false,
            bot_ids: Vec::new(),
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The outcome flags of `metric_conversations`, each `(column, condition on the normalised
/// status and last resolution)`: the definitions every figure counts. Escalation is
/// [`ESCALATION_STATUSES`](super::records::ESCALATION_STATUSES), as in the model's rows.
fn outcomes() -> [(&'static str, String); 6] {
    let escalation: Vec<String> = super::records::ESCALATION_STATUSES
        .iter()
        .map(|s| quote(s))
        .collect();
    let escalation = escalation.join(", ");
    [
        ("bot_handled", "status = 'botHandled'".to_owned()),
        ("deflected", format!("status NOT IN ({escalation})")),
        ("escalated", format!("status IN ({escalation})")),
        (
            "failed_escalation",
            "status = 'failedEscalation'".to_owned(),
        ),
        ("informed", "last_resolution = 'informed'".to_owned()),
        (
            "automated",
            "last_resolution IN ('informed', 'resolved')".to_owned(),
        ),
    ]
}

/// The rate column of each outcome flag.
fn rate_name(flag: &str) -> &'static str {
    match flag {
        "bot_handled" => "bot_handled_rate",
        "deflected" => "deflection_rate",
        "escalated" => "escalation_rate",
        "failed_escalation" => "failed_escalation_rate",
        "informed" => "informed_rate",
        _ => "automation_rate",
    }
}

/// The figures over a set of `metric_conversations` rows: counts (`total_conversations`,
/// `<flag>_conversations`, `visitor_messages`, `not_understood_messages`), which add up across
/// days and sources, and the rates made of them.
fn figures() -> String {
    let total = "NULLIF(count(DISTINCT conversation_id), 0)";
    let mut cols =
        vec!["CAST(count(DISTINCT conversation_id) AS BIGINT) AS total_conversations".to_owned()];
    let flags = outcomes();
    for (flag, _) in &flags {
        cols.push(format!(
            "CAST(SUM({flag}) AS BIGINT) AS {flag}_conversations"
        ));
    }
    cols.push("CAST(SUM(visitor_messages_count) AS BIGINT) AS visitor_messages".to_owned());
    cols.push(
        "CAST(SUM(not_understood_messages_count) AS BIGINT) AS not_understood_messages".to_owned(),
    );
    for (flag, _) in &flags {
        cols.push(format!(
            "CAST(SUM({flag}) AS DOUBLE PRECISION) / {total} AS {}",
            rate_name(flag)
        ));
    }
    cols.push(
        "CAST(sum(visitor_messages_count) - sum(not_understood_messages_count) AS DOUBLE PRECISION)
    / NULLIF(sum(visitor_messages_count), 0) AS messages_understood_rate"
            .to_owned(),
    );
    cols.join(",\n  ")
}

const BY_INTENT: &str = "i.first_meaningful_intent,
  CAST(count(DISTINCT m.conversation_id) AS BIGINT) AS total_conversations,
  CAST(SUM(m.bot_handled) AS BIGINT) AS bot_handled_conversations,
  CAST(SUM(m.bot_handled) AS DOUBLE PRECISION)
    / NULLIF(count(DISTINCT m.conversation_id), 0) AS bot_handled_rate";

/// The views as `(name, SELECT …)`, with `{schema}` standing for the source's schema.
pub fn views(opts: &MetricOptions) -> Vec<(&'static str, String)> {
    let parity = if opts.parity_filter {
        " AND c.bot_messages_count > 0"
    } else {
        ""
    };
    let test = if opts.include_test {
        ""
    } else {
        " AND COALESCE(c.test_mode, FALSE) = FALSE"
    };
    let excluded = if opts.excluded_intents.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = opts.excluded_intents.iter().map(|s| quote(s)).collect();
        format!(" AND t.intent_name NOT IN ({})", list.join(", "))
    };
    let flags: Vec<String> = outcomes()
        .iter()
        .map(|(name, cond)| format!("CASE WHEN {cond} THEN 1 ELSE 0 END AS {name}"))
        .collect();
    let bots = if opts.bot_ids.is_empty() {
        "1 = 1".to_owned()
    } else {
        let list: Vec<String> = opts.bot_ids.iter().map(|s| quote(s)).collect();
        format!("bot_id IN ({})", list.join(", "))
    };
    let figures = figures();
    vec![
        (
            "metric_conversations",
            format!(
                "SELECT x.*,
  {flags}
FROM (
  SELECT c.conversation_id, c.bot_id, c.start_date, c.export_date,
    CASE WHEN c.conversation_status = 'bot_handled' THEN 'botHandled' ELSE c.conversation_status END AS status,
    c.last_resolution, c.bot_messages_count, c.visitor_messages_count, c.not_understood_messages_count, c.test_mode
  FROM {{schema}}.conversations c
  WHERE c._deleted_at IS NULL{parity}{test}
) x",
                flags = flags.join(",\n  ")
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
        (
            "export_status",
            format!(
                "SELECT CASE WHEN COUNT(*) = {n} THEN MIN(through) END AS final_before
FROM (
  SELECT bot_id, MAX(day) AS through
  FROM {{schema}}.export_days
  WHERE _deleted_at IS NULL AND {bots}
  GROUP BY bot_id
) b",
                n = opts.bot_ids.len().max(1)
            ),
        ),
        ("metrics", format!("SELECT {figures}\nFROM {{schema}}.metric_conversations")),
        (
            "metrics_by_day",
            format!(
                "SELECT start_date,
  {figures},
  COALESCE(start_date < final_before, FALSE) AS complete
FROM {{schema}}.metric_conversations
CROSS JOIN {{schema}}.export_status
GROUP BY start_date, final_before
ORDER BY start_date"
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_quote_and_filter() {
        let v = views(&MetricOptions {
            excluded_intents: vec!["O'Brien".into()],
            parity_filter: true,
            include_test: false,
            bot_ids: vec!["b1".into(), "b'2".into()],
        });
        let all: String = v.iter().map(|(_, s)| s.as_str()).collect();
        assert!(all.contains("NOT IN ('O''Brien')"));
        assert!(all.contains("bot_messages_count > 0"));
        assert!(all.contains("COALESCE(c.test_mode, FALSE) = FALSE"));
        assert!(all.contains("bot_id IN ('b1', 'b''2')") && all.contains("COUNT(*) = 2"));
        assert!(all.contains("status IN ('email', 'agent', 'customEscalation')"));
        let none = views(&MetricOptions {
            excluded_intents: vec![],
            parity_filter: false,
            include_test: true,
            bot_ids: vec![],
        });
        assert!(!none.iter().any(|(_, s)| s.contains("NOT IN ()")));
        assert!(!none.iter().any(|(_, s)| s.contains("test_mode, FALSE")));
    }
}
