//! The report's SQL, one function per query, all portable (DuckDB and PostgreSQL).
//!
//! Every query reads the views of [`crate::views`] (or a vendor's metric views, in the schemas
//! `talkhouse.source_settings` names) and returns a handful of aggregate rows; [`crate::report`] combines them
//! in Rust. [`report_queries`] lists the fixed ones with their names, for running by hand.

use chrono::NaiveDate;

use crate::metrics::{RESPONSE_BUCKETS, SENTIMENT_THRESHOLD};

/// `AND <column> >= '<since>'` (or nothing). The date is formatted by chrono, never user text.
fn since_clause(column: &str, since: Option<NaiveDate>) -> String {
    since.map_or_else(String::new, |d| {
        format!(" AND {column} >= CAST('{d} 00:00:00' AS TIMESTAMP)")
    })
}

/// Day of a timestamp, to group by.
fn day(column: &str) -> String {
    format!("CAST({column} AS DATE)")
}

/// A day grouped by ([`day`]) as `YYYY-MM-DD` text, made once per group rather than once per
/// row (formatting every message's day was a good part of the cost of counting them).
fn day_text(day: &str) -> String {
    format!("CAST({day} AS VARCHAR)")
}

/// The channel a conversation or message is counted under (`unknown` where the vendor gives
/// none).
const CHANNEL: &str = "COALESCE(channel, 'unknown')";

/// Conversations per source, channel and day of `started_at`.
pub fn conversation_counts(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT source, {CHANNEL} AS channel, {t} AS day, \
CAST(COUNT(*) AS BIGINT) AS n \
FROM talkhouse.conversations WHERE 1 = 1{s} \
GROUP BY source, {CHANNEL}, {d} \
ORDER BY source, channel, day",
        d = day("started_at"),
        t = day_text(&day("started_at")),
        s = since_clause("started_at", since)
    )
}

/// Messages per source, channel, day of `sent_at` and sender role, with sentiment sums.
pub fn message_counts(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT source, {CHANNEL} AS channel, {dt} AS day, \
COALESCE(sender_role, 'unknown') AS sender_role, \
CAST(COUNT(*) AS BIGINT) AS n, CAST(COUNT(sentiment) AS BIGINT) AS scored, \
CAST(SUM(sentiment) AS DOUBLE PRECISION) AS sentiment_sum, \
CAST(SUM(CASE WHEN sentiment >= {t} THEN 1 ELSE 0 END) AS BIGINT) AS positive, \
CAST(SUM(CASE WHEN sentiment <= -{t} THEN 1 ELSE 0 END) AS BIGINT) AS negative \
FROM talkhouse.messages WHERE 1 = 1{s} \
GROUP BY source, {CHANNEL}, {d}, COALESCE(sender_role, 'unknown') \
ORDER BY source, channel, day, sender_role",
        d = day("sent_at"),
        dt = day_text(&day("sent_at")),
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

/// Counts, mean, median and p90 of a first-response view (any reply, and agents only), with
/// `filter` (`AND …` or nothing) on top of `since`, and `extra` (`, <select item>…` or nothing)
/// after them.
fn response_stats(view: &str, filter: &str, extra: &str, since: Option<NaiveDate>) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COUNT(response_seconds) AS BIGINT) AS responded, \
CAST(COUNT(agent_response_seconds) AS BIGINT) AS agent_responded, {}, \
percentile_cont(0.5) WITHIN GROUP (ORDER BY agent_response_seconds) AS agent_median, \
percentile_cont(0.9) WITHIN GROUP (ORDER BY agent_response_seconds) AS agent_p90{extra} \
FROM {view} WHERE 1 = 1{filter}{}",
        distribution("response_seconds"),
        since_clause("first_customer_at", since)
    )
}

/// First response per conversation (`talkhouse.first_responses`).
pub fn first_response(since: Option<NaiveDate>) -> String {
    response_stats("talkhouse.first_responses", "", "", since)
}

/// The index into [`RESPONSE_BUCKETS`] of `response_seconds` (the last bucket for NULL).
fn bucket_case() -> String {
    let mut case = String::from("CASE");
    for (i, (_, upper)) in RESPONSE_BUCKETS.iter().enumerate() {
        if upper.is_finite() {
            case.push_str(&format!(" WHEN response_seconds < {upper:.1} THEN {i}"));
        } else {
            case.push_str(&format!(" ELSE {i}"));
        }
    }
    case.push_str(" END");
    case
}

/// `response_seconds` falls in bucket `i` of [`RESPONSE_BUCKETS`]: at least the bound of the
/// bucket before (none for the first), below its own (none for the last). The same bucket as
/// [`bucket_case`] gives (buckets are in ascending order), for a NULL neither.
fn in_bucket(i: usize) -> String {
    let lower = i
        .checked_sub(1)
        .and_then(|j| RESPONSE_BUCKETS.get(j))
        .map(|(_, upper)| format!("response_seconds >= {upper:.1}"));
    let upper = RESPONSE_BUCKETS
        .get(i)
        .filter(|(_, upper)| upper.is_finite())
        .map(|(_, upper)| format!("response_seconds < {upper:.1}"));
    let bounds: Vec<String> = lower.into_iter().chain(upper).collect();
    bounds.join(" AND ")
}

/// [`first_response`] with the counts of [`first_response_histogram`] in the same row, one
/// column `bucket_<i>` per bucket of [`RESPONSE_BUCKETS`]: one pass over
/// `talkhouse.first_responses`, the costliest view of the report, instead of two.
/// [`histogram_rows`] turns the row back into the histogram's rows. Each column tests its own
/// bucket's bounds ([`in_bucket`]) rather than comparing [`bucket_case`] to its index: two
/// comparisons per column instead of a `CASE` of up to nine.
pub fn first_response_with_histogram(since: Option<NaiveDate>) -> String {
    let buckets: String = (0..RESPONSE_BUCKETS.len())
        .map(|i| {
            format!(
                ", CAST(SUM(CASE WHEN {} THEN 1 ELSE 0 END) AS BIGINT) AS bucket_{i}",
                in_bucket(i)
            )
        })
        .collect();
    response_stats("talkhouse.first_responses", "", &buckets, since)
}

/// The rows [`first_response_histogram`] answers (`bucket`, `n`, for every bucket that is not
/// empty, in bucket order), from the answer of [`first_response_with_histogram`].
pub fn histogram_rows(
    answer: &[serde_json::Map<String, serde_json::Value>],
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let Some(row) = answer.first() else {
        return Vec::new();
    };
    (0..RESPONSE_BUCKETS.len())
        .filter_map(|i| {
            let n = row.get(&format!("bucket_{i}")).and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })?;
            (n > 0).then(|| {
                let mut out = serde_json::Map::new();
                out.insert("bucket".into(), i.into());
                out.insert("n".into(), n.into());
                out
            })
        })
        .collect()
}

/// First response times bucketed by [`RESPONSE_BUCKETS`].
pub fn first_response_histogram(since: Option<NaiveDate>) -> String {
    let case = bucket_case();
    format!(
        "SELECT {case} AS bucket, CAST(COUNT(*) AS BIGINT) AS n FROM talkhouse.first_responses \
WHERE response_seconds IS NOT NULL{} GROUP BY {case} ORDER BY bucket",
        since_clause("first_customer_at", since)
    )
}

/// The outcome counts of conversations (escalation, bot handling, CSAT), as select items.
const OUTCOMES: &str = "CAST(COUNT(escalated) AS BIGINT) AS escalation_known, \
CAST(SUM(CASE WHEN escalated THEN 1 ELSE 0 END) AS BIGINT) AS escalated, \
CAST(COUNT(bot_handled) AS BIGINT) AS bot_known, \
CAST(SUM(CASE WHEN bot_handled THEN 1 ELSE 0 END) AS BIGINT) AS bot_handled, \
CAST(COUNT(csat) AS BIGINT) AS csat_responses, CAST(SUM(csat) AS DOUBLE PRECISION) AS csat_sum";

/// Escalation, bot handling and CSAT per source.
pub fn outcomes(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT source, CAST(COUNT(*) AS BIGINT) AS n, {OUTCOMES} \
FROM talkhouse.conversations WHERE 1 = 1{} GROUP BY source ORDER BY source",
        since_clause("started_at", since)
    )
}

/// The `part` of each row of [`conversation_figures`]: the query whose row it is.
pub const CONVERSATION_PARTS: [&str; 3] = ["conversation_counts", "outcomes", "per_conversation"];

/// [`conversation_counts`], [`outcomes`] and [`per_conversation`] in one pass over
/// `talkhouse.conversations` (each of them aggregates every message into conversations): one
/// grouping set per query, each row naming its query in `part` (one of
/// [`CONVERSATION_PARTS`]) and carrying that query's columns (the others are there too, computed
/// over the row's group, and ignored). [`conversation_rows`] splits the answer again.
pub fn conversation_figures(since: Option<NaiveDate>) -> String {
    let d = day("started_at");
    let t = day_text(&d);
    // GROUPING(…) has a bit set for each of its columns the row's set does not group by, the
    // first column's the highest: 0 for all three, 0b011 for `source` alone, 0b111 for none.
    let [by_day, by_source, all] = CONVERSATION_PARTS;
    format!(
        "SELECT CASE GROUPING(source, {CHANNEL}, {d}) WHEN 0 THEN '{by_day}' \
WHEN 3 THEN '{by_source}' ELSE '{all}' END AS part, \
source, {CHANNEL} AS channel, {t} AS day, CAST(COUNT(*) AS BIGINT) AS n, {OUTCOMES}, {} \
FROM talkhouse.conversations WHERE 1 = 1{} \
GROUP BY GROUPING SETS ((source, {CHANNEL}, {d}), (source), ()) ORDER BY part, source, channel, day",
        distribution("message_count"),
        since_clause("started_at", since)
    )
}

/// The answer of [`conversation_figures`] split by `part`: the rows of [`conversation_counts`],
/// [`outcomes`] and [`per_conversation`], in that order (each in the order it came: by source,
/// channel and day, as the three queries order them).
pub fn conversation_rows(
    answer: &[serde_json::Map<String, serde_json::Value>],
) -> [Vec<serde_json::Map<String, serde_json::Value>>; 3] {
    let mut parts: [Vec<_>; 3] = Default::default();
    for row in answer {
        let part = row.get("part").and_then(serde_json::Value::as_str);
        let i = CONVERSATION_PARTS.iter().position(|p| Some(*p) == part);
        if let Some(rows) = i.and_then(|i| parts.get_mut(i)) {
            rows.push(row.clone());
        }
    }
    parts
}

/// Test conversations the views left out (see [`crate::views`]), per source, by `started_at`.
pub fn test_left_out(since: Option<NaiveDate>) -> String {
    format!(
        "SELECT c.source, CAST(COUNT(*) AS BIGINT) AS n \
FROM talkhouse.model_conversations c \
LEFT JOIN talkhouse.source_settings s ON s.source = c.source \
WHERE c._deleted_at IS NULL AND {left_out}{s} \
GROUP BY c.source ORDER BY c.source",
        left_out = crate::views::TEST_LEFT_OUT,
        s = since_clause("c.started_at", since)
    )
}

/// The configured sources and their vendors (every sync records its source here), to find the
/// vendors' metric views.
pub const SOURCES: &str = "SELECT source, vendor FROM talkhouse.source_settings \
WHERE _deleted_at IS NULL ORDER BY source";

/// Quotes an identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The 0/1 columns of Ada's `metric_conversations` view that the report adds up.
pub const ADA_FLAGS: [&str; 3] = ["engaged", "escalated", "engaged_escalated"];

/// The outcome columns (`<flag>_conversations`) of Ultimate's per-day metric views that the
/// report adds up.
pub const ULTIMATE_FLAGS: [&str; 6] = [
    "bot_handled",
    "deflected",
    "escalated",
    "failed_escalation",
    "informed",
    "automated",
];

/// Ada's counts from the connector's `<schema>.metric_conversations` view, by `date_created`.
pub fn ada(schema: &str, since: Option<NaiveDate>) -> String {
    let sums: Vec<String> = ADA_FLAGS
        .iter()
        .map(|f| format!("CAST(SUM({f}) AS BIGINT) AS {f}_conversations"))
        .collect();
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS total_conversations, {} \
FROM {}.metric_conversations WHERE 1 = 1{}",
        sums.join(", "),
        ident(schema),
        since_clause("date_created", since)
    )
}

/// `AND CAST(start_date AS VARCHAR) >= 'YYYY-MM-DD'`: works for a DATE, a timestamp or ISO text.
fn since_start_date(since: Option<NaiveDate>) -> String {
    since.map_or_else(String::new, |d| {
        format!(" AND CAST(start_date AS VARCHAR) >= '{d}'")
    })
}

/// Ultimate's counts from the connector's `<schema>.metrics_by_day` view, added up over the days
/// since `since`, with the first day that is not final yet and how many are not.
pub fn ultimate(schema: &str, since: Option<NaiveDate>) -> String {
    let sums: Vec<String> = ULTIMATE_FLAGS
        .iter()
        .map(|f| format!("CAST(SUM({f}_conversations) AS BIGINT) AS {f}_conversations"))
        .collect();
    format!(
        "SELECT CAST(SUM(total_conversations) AS BIGINT) AS total_conversations, {}, \
CAST(SUM(visitor_messages) AS BIGINT) AS visitor_messages, \
CAST(SUM(not_understood_messages) AS BIGINT) AS not_understood_messages, \
CAST(MIN(CASE WHEN start_date IS NOT NULL AND NOT complete THEN start_date END) AS VARCHAR) AS first_incomplete_day, \
CAST(SUM(CASE WHEN start_date IS NOT NULL AND NOT complete THEN 1 ELSE 0 END) AS BIGINT) AS incomplete_days \
FROM {}.metrics_by_day WHERE 1 = 1{}",
        sums.join(", "),
        ident(schema),
        since_start_date(since)
    )
}

/// Ultimate's conversations and bot-handled ones per first meaningful intent, from the
/// connector's `<schema>.metrics_by_day_and_first_meaningful_intent` view.
pub fn ultimate_intents(schema: &str, since: Option<NaiveDate>) -> String {
    format!(
        "SELECT first_meaningful_intent AS intent, \
CAST(SUM(total_conversations) AS BIGINT) AS n, \
CAST(SUM(bot_handled_conversations) AS BIGINT) AS bot_handled \
FROM {}.metrics_by_day_and_first_meaningful_intent WHERE 1 = 1{} \
GROUP BY first_meaningful_intent ORDER BY n DESC, intent",
        ident(schema),
        since_start_date(since)
    )
}

/// `'a', 'b'`: the names as SQL string literals, for `IN (…)`.
fn literals(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many of the top agents and teams the report lists.
pub const TOP_WORKERS: usize = 10;

/// Handle time (`talkhouse.sessions.handle_seconds`) of the sessions of `sources`: count, mean,
/// median and p90, over all (`by_channel` false) or per channel.
pub fn handle_time(sources: &[String], since: Option<NaiveDate>, by_channel: bool) -> String {
    let (select, group) = if by_channel {
        (
            "COALESCE(channel, 'unknown') AS channel, ",
            " GROUP BY COALESCE(channel, 'unknown') ORDER BY channel",
        )
    } else {
        ("", "")
    };
    format!(
        "SELECT {select}CAST(COUNT(*) AS BIGINT) AS n, {} FROM talkhouse.sessions \
WHERE handle_seconds IS NOT NULL AND source IN ({}){}{group}",
        distribution("handle_seconds"),
        literals(sources),
        since_clause("started_at", since)
    )
}

/// Sessions of `sources`, and how many the vendor reported itself (contacts).
pub fn session_count(sources: &[String], since: Option<NaiveDate>) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM talkhouse.sessions WHERE source IN ({}){}",
        literals(sources),
        since_clause("started_at", since)
    )
}

/// Every agent (`column` `agent_id`) or team (`team_id`, with its name) of `sources` with the
/// sessions it worked on (`talkhouse.work`) and its work's median handle time; the report keeps
/// the [`TOP_WORKERS`] with the most (ranked in Rust, so that no engine's collation breaks ties).
pub fn top_workers(sources: &[String], since: Option<NaiveDate>, column: &str) -> String {
    let (name, join) = if column == "team_id" {
        (
            "MIN(t.name)",
            " LEFT JOIN talkhouse.model_teams t ON t.source = w.source AND t.team_id = w.team_id",
        )
    } else {
        ("CAST(NULL AS VARCHAR)", "")
    };
    format!(
        "SELECT w.{column} AS id, {name} AS name, \
CAST(COUNT(DISTINCT w.session_id) AS BIGINT) AS contacts, \
CAST(COUNT(*) AS BIGINT) AS work_sessions, \
percentile_cont(0.5) WITHIN GROUP (ORDER BY w.handle_seconds) AS median \
FROM talkhouse.work w{join} WHERE w.{column} IS NOT NULL AND w.source IN ({}){} \
GROUP BY w.{column}",
        literals(sources),
        since_clause("w.started_at", since)
    )
}

/// First response within the sessions of `sources`: the rows of
/// `talkhouse.session_first_responses` of those sources, read from the view's own SQL with the
/// sources filtered inside it.
pub fn session_first_response(sources: &[String], since: Option<NaiveDate>) -> String {
    response_stats(
        &format!(
            "({}) sfr",
            crate::views::session_first_responses_of(&literals(sources))
        ),
        "",
        "",
        since,
    )
}

/// The fixed queries of the report, by name, as the report runs them, for running by hand
/// against a warehouse.
pub fn report_queries(since: Option<NaiveDate>) -> Vec<(&'static str, String)> {
    vec![
        ("conversations", conversation_figures(since)),
        ("message_counts", message_counts(since)),
        ("per_session", per_session(since)),
        ("first_response", first_response_with_histogram(since)),
        ("test_left_out", test_left_out(since)),
        ("sources", SOURCES.to_owned()),
    ]
}
