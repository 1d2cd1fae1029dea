//! The report's SQL, one function per query, all portable (DuckDB and PostgreSQL).
//!
//! Every query reads the views of [`crate::views`] (or a vendor schema found through
//! `information_schema`) and returns a handful of aggregate rows; [`crate::report`] combines them
//! in Rust. [`report_queries`] lists the fixed ones with their names, for running by hand.

use chrono::NaiveDate;

use crate::metrics::{RESPONSE_BUCKETS, SENTIMENT_THRESHOLD};

/// `AND <column> >= '<since>'` (or nothing). The date is formatted by chrono, never user text.
fn since_clause(column: &str, since: Option<NaiveDate>) -> String {
    since.map_or_else(String::new, |d| {
        format!(" AND {column} >= CAST('{d} 00:00:00' AS TIMESTAMP)")
    })
}

/// Day of a timestamp as `YYYY-MM-DD` text.
fn day(column: &str) -> String {
    format!("CAST(CAST({column} AS DATE) AS VARCHAR)")
}

/// Conversations per source, channel and day of `started_at`.
pub fn conversation_counts(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT source, COALESCE(channel, 'unknown') AS channel, {d} AS day, \
CAST(COUNT(*) AS BIGINT) AS n \
FROM talkhouse.conversations WHERE 1 = 1{s} \
GROUP BY source, COALESCE(channel, 'unknown'), {d} \
ORDER BY source, channel, day",
        d = day("started_at"),
        s = since_clause("started_at", since)
    )
}

/// Messages per source, channel, day of `sent_at` and sender role, with sentiment sums.
pub fn message_counts(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT source, COALESCE(channel, 'unknown') AS channel, {d} AS day, \
COALESCE(sender_role, 'unknown') AS sender_role, \
CAST(COUNT(*) AS BIGINT) AS n, CAST(COUNT(sentiment) AS BIGINT) AS scored, \
CAST(SUM(sentiment) AS DOUBLE PRECISION) AS sentiment_sum, \
CAST(SUM(CASE WHEN sentiment >= {t} THEN 1 ELSE 0 END) AS BIGINT) AS positive, \
CAST(SUM(CASE WHEN sentiment <= -{t} THEN 1 ELSE 0 END) AS BIGINT) AS negative \
FROM talkhouse.messages WHERE 1 = 1{s} \
GROUP BY source, COALESCE(channel, 'unknown'), {d}, COALESCE(sender_role, 'unknown') \
ORDER BY source, channel, day, sender_role",
        d = day("sent_at"),
        s = since_clause("sent_at", since),
        t = SENTIMENT_THRESHOLD,
    )
}

fn distribution(expr: &str) -> String {
    format!(
        "AVG(CAST({expr} AS DOUBLE PRECISION)) AS mean, \
percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST({expr} AS DOUBLE PRECISION)) AS median, \
percentile_cont(0.9) WITHIN GROUP (ORDER BY CAST({expr} AS DOUBLE PRECISION)) AS p90"
    )
}

/// Mean, median and p90 of `message_count` over conversations started since `since`.
pub fn per_conversation(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, {} FROM talkhouse.conversations WHERE 1 = 1{}",
        distribution("message_count"),
        since_clause("started_at", since)
    )
}

/// Mean, median and p90 of messages per chat session.
pub fn per_session(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, {} FROM talkhouse.sessions WHERE 1 = 1{}",
        distribution("message_count"),
        since_clause("started_at", since)
    )
}

/// First response: counts, mean, median and p90 (any reply, and agents only).
pub fn first_response(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COUNT(response_seconds) AS BIGINT) AS responded, \
CAST(COUNT(agent_response_seconds) AS BIGINT) AS agent_responded, {}, \
percentile_cont(0.5) WITHIN GROUP (ORDER BY agent_response_seconds) AS agent_median, \
percentile_cont(0.9) WITHIN GROUP (ORDER BY agent_response_seconds) AS agent_p90 \
FROM talkhouse.first_responses WHERE 1 = 1{}",
        distribution("response_seconds"),
        since_clause("first_customer_at", since)
    )
}

/// First response times bucketed by [`RESPONSE_BUCKETS`].
pub fn first_response_histogram(since: Option<NaiveDate>) -> String {
    let mut case = String::from("CASE");
    for (i, (_, upper)) in RESPONSE_BUCKETS.iter().enumerate() {
        if upper.is_finite() {
            case.push_str(&format!(" WHEN response_seconds < {upper:.1} THEN {i}"));
        } else {
            case.push_str(&format!(" ELSE {i}"));
        }
    }
    case.push_str(" END");
    format!(
        "SELECT {case} AS bucket, CAST(COUNT(*) AS BIGINT) AS n FROM talkhouse.first_responses \
WHERE response_seconds IS NOT NULL{} GROUP BY {case} ORDER BY bucket",
        since_clause("first_customer_at", since)
    )
}

/// Escalation, bot handling and CSAT per source.
pub fn outcomes(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT source, CAST(COUNT(*) AS BIGINT) AS n, \
CAST(COUNT(escalated) AS BIGINT) AS escalation_known, \
CAST(SUM(CASE WHEN escalated THEN 1 ELSE 0 END) AS BIGINT) AS escalated, \
CAST(COUNT(bot_handled) AS BIGINT) AS bot_known, \
CAST(SUM(CASE WHEN bot_handled THEN 1 ELSE 0 END) AS BIGINT) AS bot_handled, \
CAST(COUNT(csat) AS BIGINT) AS csat_responses, CAST(SUM(csat) AS DOUBLE PRECISION) AS csat_sum \
FROM talkhouse.conversations WHERE 1 = 1{} GROUP BY source ORDER BY source",
        since_clause("started_at", since)
    )
}

/// Columns of the vendor tables the report reads, to find Ada and Ultimate schemas.
pub const VENDOR_COLUMNS: &str = "SELECT table_schema, table_name, column_name, data_type \
FROM information_schema.columns \
WHERE table_name IN ('conversations', 'triggered_intent_replies', 'metric_conversations', 'conversation_intents') \
AND table_schema <> 'talkhouse' \
ORDER BY table_schema, table_name, column_name";

/// Quotes an identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A column read as a boolean whatever its type (boolean, `'true'` text, 0/1).
fn truthy(expr: &str) -> String {
    format!("LOWER(CAST({expr} AS VARCHAR)) IN ('true', 't', '1')")
}

/// A column read as a number whatever its type (integer, or digits in text as Ultimate sends).
fn number(expr: &str) -> String {
    format!("CAST(NULLIF(TRIM(CAST({expr} AS VARCHAR)), '') AS DOUBLE PRECISION)")
}

/// What the report knows of one vendor table's columns.
#[derive(Debug, Clone, Default)]
pub struct TableColumns {
    /// `(name, data_type)`.
    pub columns: Vec<(String, String)>,
}

impl TableColumns {
    /// Whether the table has this column.
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|(c, _)| c == name)
    }

    /// Whether the column exists with a timestamp or date type (so `since` can filter on it).
    pub fn is_time(&self, name: &str) -> bool {
        self.columns.iter().any(|(c, t)| {
            let t = t.to_ascii_lowercase();
            // DuckDB `TIMESTAMP`/`DATE`, PostgreSQL `timestamp with time zone`/`date`,
            // DataFusion (Delta Lake) `Timestamp(µs, "UTC")`/`Date32`.
            c == name && (t.starts_with("timestamp") || t.starts_with("date"))
        })
    }

    fn not_deleted(&self, alias: &str) -> String {
        if self.has("_deleted_at") {
            format!(" AND {alias}._deleted_at IS NULL")
        } else {
            String::new()
        }
    }

    fn since_on(&self, alias: &str, column: &str, since: Option<NaiveDate>) -> String {
        if self.is_time(column) {
            since_clause(&format!("{alias}.{column}"), since)
        } else {
            String::new()
        }
    }
}

/// Ada's engaged and escalated counts from `<schema>.conversations`.
pub fn ada(schema: &str, cols: &TableColumns, since: Option<NaiveDate>) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, \
CAST(SUM(CASE WHEN {e} THEN 1 ELSE 0 END) AS BIGINT) AS engaged, \
CAST(SUM(CASE WHEN {x} THEN 1 ELSE 0 END) AS BIGINT) AS escalated, \
CAST(SUM(CASE WHEN {e} AND {x} THEN 1 ELSE 0 END) AS BIGINT) AS engaged_escalated \
FROM {s}.conversations c WHERE 1 = 1{d}{t}",
        e = truthy("c.is_engaged"),
        x = truthy("c.is_escalated"),
        s = ident(schema),
        d = cols.not_deleted("c"),
        t = cols.since_on("c", "date_created", since),
    )
}

const BOT_HANDLED: &str = "c.conversation_status IN ('botHandled', 'bot_handled')";
const ESCALATED: &str = "('email', 'agent', 'customEscalation')";

/// Ultimate's vendor metrics (its "popular metrics") from `<schema>.conversations`.
pub fn ultimate(schema: &str, cols: &TableColumns, since: Option<NaiveDate>) -> String {
    let sum_of = |col: &str| {
        if cols.has(col) {
            format!(
                "CAST(SUM({}) AS DOUBLE PRECISION)",
                number(&format!("c.{col}"))
            )
        } else {
            "CAST(NULL AS DOUBLE PRECISION)".to_owned()
        }
    };
    format!(
        "SELECT CAST(COUNT(DISTINCT c.conversation_id) AS BIGINT) AS n, \
CAST(SUM(CASE WHEN {BOT_HANDLED} THEN 1 ELSE 0 END) AS BIGINT) AS bot_handled, \
CAST(SUM(CASE WHEN c.conversation_status NOT IN {ESCALATED} THEN 1 ELSE 0 END) AS BIGINT) AS deflected, \
CAST(SUM(CASE WHEN c.conversation_status IN {ESCALATED} THEN 1 ELSE 0 END) AS BIGINT) AS escalated, \
CAST(SUM(CASE WHEN c.conversation_status = 'failedEscalation' THEN 1 ELSE 0 END) AS BIGINT) AS failed_escalation, \
CAST(SUM(CASE WHEN c.last_resolution = 'informed' THEN 1 ELSE 0 END) AS BIGINT) AS informed, \
CAST(SUM(CASE WHEN c.last_resolution IN ('informed', 'resolved') THEN 1 ELSE 0 END) AS BIGINT) AS automated, \
{v} AS visitor_messages, {u} AS not_understood_messages \
FROM {s}.conversations c WHERE 1 = 1{d}{t}",
        v = sum_of("visitor_messages_count"),
        u = sum_of("not_understood_messages_count"),
        s = ident(schema),
        d = cols.not_deleted("c"),
        t = cols.since_on("c", "conversation_start_time", since),
    )
}

/// Ultimate's metrics by first meaningful intent, as the vendor defines them: per conversation
/// the intent with the earliest `intent_timestamp` among `not_meaningful = false` and not
/// `Greeting` / `Talk to a human/agent`; per intent, conversations and bot-handled ones.
pub fn ultimate_intents(
    schema: &str,
    conversations: &TableColumns,
    intents: &TableColumns,
    since: Option<NaiveDate>,
) -> String {
    format!(
        "SELECT x.intent, CAST(COUNT(DISTINCT x.conversation_id) AS BIGINT) AS n, \
CAST(COUNT(DISTINCT CASE WHEN {BOT_HANDLED} THEN x.conversation_id END) AS BIGINT) AS bot_handled \
FROM (SELECT t.conversation_id, t.intent_name AS intent, \
ROW_NUMBER() OVER (PARTITION BY t.conversation_id ORDER BY t.intent_timestamp, t.intent_name) AS rn \
FROM {s}.triggered_intent_replies t \
WHERE LOWER(CAST(t.not_meaningful AS VARCHAR)) IN ('false', 'f', '0') AND t.intent_name NOT IN ('Greeting', 'Talk to a human/agent'){td}) x \
JOIN {s}.conversations c ON c.conversation_id = x.conversation_id \
WHERE x.rn = 1{d}{t} \
GROUP BY x.intent ORDER BY n DESC, x.intent",
        s = ident(schema),
        td = intents.not_deleted("t"),
        d = conversations.not_deleted("c"),
        t = conversations.since_on("c", "conversation_start_time", since),
    )
}

/// Whether the schema has the Ultimate connector's metric views (`metric_conversations`,
/// `conversation_intents`), which apply its configuration (parity filter, excluded intents).
pub fn has_ultimate_views(metric: Option<&TableColumns>, intents: Option<&TableColumns>) -> bool {
    let m = [
        "conversation_id",
        "start_date",
        "status",
        "last_resolution",
        "visitor_messages_count",
        "not_understood_messages_count",
    ];
    metric.is_some_and(|t| m.iter().all(|c| t.has(c)))
        && intents.is_some_and(|t| t.has("conversation_id") && t.has("first_meaningful_intent"))
}

/// `AND CAST(start_date AS VARCHAR) >= 'YYYY-MM-DD'`: works for a DATE, a timestamp or ISO text.
fn since_start_date(since: Option<NaiveDate>) -> String {
    since.map_or_else(String::new, |d| {
        format!(" AND CAST(m.start_date AS VARCHAR) >= '{d}'")
    })
}

/// Ultimate's metrics from the connector's `<schema>.metric_conversations` view (status already
/// normalised to `botHandled`).
pub fn ultimate_from_views(schema: &str, since: Option<NaiveDate>) -> String {
    format!(
        "SELECT CAST(COUNT(DISTINCT m.conversation_id) AS BIGINT) AS n, \
CAST(SUM(CASE WHEN m.status = 'botHandled' THEN 1 ELSE 0 END) AS BIGINT) AS bot_handled, \
CAST(SUM(CASE WHEN m.status NOT IN {ESCALATED} THEN 1 ELSE 0 END) AS BIGINT) AS deflected, \
CAST(SUM(CASE WHEN m.status IN {ESCALATED} THEN 1 ELSE 0 END) AS BIGINT) AS escalated, \
CAST(SUM(CASE WHEN m.status = 'failedEscalation' THEN 1 ELSE 0 END) AS BIGINT) AS failed_escalation, \
CAST(SUM(CASE WHEN m.last_resolution = 'informed' THEN 1 ELSE 0 END) AS BIGINT) AS informed, \
CAST(SUM(CASE WHEN m.last_resolution IN ('informed', 'resolved') THEN 1 ELSE 0 END) AS BIGINT) AS automated, \
CAST(SUM({v}) AS DOUBLE PRECISION) AS visitor_messages, \
CAST(SUM({u}) AS DOUBLE PRECISION) AS not_understood_messages \
FROM {s}.metric_conversations m WHERE 1 = 1{t}",
        v = number("m.visitor_messages_count"),
        u = number("m.not_understood_messages_count"),
        s = ident(schema),
        t = since_start_date(since),
    )
}

/// Ultimate's metrics by first meaningful intent from the connector's views.
pub fn ultimate_intents_from_views(schema: &str, since: Option<NaiveDate>) -> String {
    format!(
        "SELECT i.first_meaningful_intent AS intent, CAST(COUNT(DISTINCT m.conversation_id) AS BIGINT) AS n, \
CAST(COUNT(DISTINCT CASE WHEN m.status = 'botHandled' THEN m.conversation_id END) AS BIGINT) AS bot_handled \
FROM {s}.metric_conversations m JOIN {s}.conversation_intents i ON i.conversation_id = m.conversation_id \
WHERE i.first_meaningful_intent IS NOT NULL{t} \
GROUP BY i.first_meaningful_intent ORDER BY n DESC, i.first_meaningful_intent",
        s = ident(schema),
        t = since_start_date(since),
    )
}

/// The fixed queries of the report, by name, for running by hand against a warehouse.
pub fn report_queries(since: Option<NaiveDate>) -> Vec<(&'static str, String)> {
    vec![
        ("conversation_counts", conversation_counts(since)),
        ("message_counts", message_counts(since)),
        ("per_conversation", per_conversation(since)),
        ("per_session", per_session(since)),
        ("first_response", first_response(since)),
        ("first_response_histogram", first_response_histogram(since)),
        ("outcomes", outcomes(since)),
        ("vendor_columns", VENDOR_COLUMNS.to_owned()),
    ]
}
