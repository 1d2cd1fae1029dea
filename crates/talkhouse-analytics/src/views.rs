//! The cross-vendor views in schema `talkhouse`, over the base tables every source writes.
//!
//! | view | one row per | what it adds |
//! |---|---|---|
//! | `talkhouse.messages` | message | drops rows with `_deleted_at` (the message's or its conversation's); `channel` falls back to the conversation's |
//! | `talkhouse.conversations` | conversation | drops deleted rows; `message_count` = the vendor's count where set, else the messages counted; `first_message_at`, `last_message_at`, messages per role; conversations known only from their messages appear too |
//! | `talkhouse.current_ids` | id a merge retired (`model_id_merges`) | `current_id`: the id it goes by now, chains of merges followed (up to [`MERGE_HOPS`] long) |
//! | `talkhouse.sessions` | session: a contact where the vendor reports them (Gladly), else a chat session from the messages (`session_id`: Gladly chat session, Giosg chat, Ada conversation) | current conversation and customer ids, start, end, messages (the vendor's count where it gives one), messages per role (from messages; NULL for a session the vendor reports), `handle_seconds` (agent work, where the vendor reports it) |
//! | `talkhouse.first_responses` | conversation with a customer message | first customer message, first agent-or-bot reply strictly after it, first agent reply, both in seconds |
//! | `talkhouse.work` | agent work session (`model_work`) | current conversation and customer ids; `team_id` where the vendor gives none: the agent's team (the first by id, when the agent is in several) |
//! | `talkhouse.session_first_responses` | session with a customer message | the same as `first_responses`, within the session: its messages are those carrying its `session_id`, or, for a session the vendor reports, its conversation's messages between its start and end |
//!
//! Test traffic (conversations the vendor marks as tests: `is_test`) is left out of every view,
//! with its messages, unless the source's `include_test` is set in `talkhouse.source_settings`;
//! [`TEST_LEFT_OUT`] is that rule, and the report counts what it left out with it.
//!
//! The SQL is portable: DuckDB and PostgreSQL both accept it (no engine-specific functions;
//! `EXTRACT(EPOCH FROM …)`, `CAST(… AS DOUBLE PRECISION)`, `FULL OUTER JOIN`). The views are
//! cheap to keep current: they are views, so every sync that writes the base tables updates
//! them without a rebuild.

/// The views of the cross-vendor model as `(qualified name, SELECT …)`, in creation order (later
/// views read earlier ones).
pub fn model_views() -> Vec<(&'static str, String)> {
    vec![
        ("talkhouse.messages", messages()),
        ("talkhouse.conversations", conversations()),
        ("talkhouse.current_ids", current_ids()),
        ("talkhouse.sessions", sessions()),
        (
            "talkhouse.first_responses",
            first_responses_over("talkhouse.messages", "conversation_id"),
        ),
        ("talkhouse.work", work()),
        (
            "talkhouse.session_first_responses",
            first_responses_over(&format!("({})", session_messages(None)), "session_id"),
        ),
    ]
}

/// The statements that create (or replace) the views, in order, for `Destination::execute`.
pub fn model_view_statements() -> Vec<String> {
    model_views()
        .into_iter()
        .map(|(name, sql)| format!("CREATE OR REPLACE VIEW {name} AS {sql}"))
        .collect()
}

/// The rule that leaves test traffic out, over a model conversation `c` joined to its source's
/// settings `s` (never NULL, so `NOT` of it is safe).
pub(crate) const TEST_LEFT_OUT: &str =
    "(COALESCE(c.is_test, FALSE) AND NOT COALESCE(s.include_test, FALSE))";

fn messages() -> String {
    format!(
        "SELECT m.source, m.message_id, m.conversation_id, m.session_id, m.sender_role, m.sender_id, \
COALESCE(m.channel, c.channel) AS channel, m.sent_at, m.body, m.language, m.sentiment \
FROM talkhouse.model_messages m \
LEFT JOIN talkhouse.model_conversations c \
ON c.source = m.source AND c.conversation_id = m.conversation_id \
LEFT JOIN talkhouse.source_settings s ON s.source = m.source \
WHERE m._deleted_at IS NULL AND c._deleted_at IS NULL AND NOT {TEST_LEFT_OUT}"
    )
}

fn conversations() -> String {
    format!(
        "SELECT COALESCE(c.source, mc.source) AS source, \
COALESCE(c.conversation_id, mc.conversation_id) AS conversation_id, \
COALESCE(c.customer_id, mc.customer_id) AS customer_id, \
COALESCE(c.channel, mc.channel) AS channel, \
COALESCE(c.started_at, mc.first_message_at) AS started_at, \
c.ended_at, c.status, \
CAST(COALESCE(c.message_count, mc.message_count, 0) AS BIGINT) AS message_count, \
c.escalated, c.bot_handled, c.csat, c.updated_at, \
mc.first_message_at, mc.last_message_at, \
CAST(COALESCE(mc.message_count, 0) AS BIGINT) AS messages_stored, \
CAST(COALESCE(mc.customer_messages, 0) AS BIGINT) AS customer_messages, \
CAST(COALESCE(mc.agent_messages, 0) AS BIGINT) AS agent_messages, \
CAST(COALESCE(mc.bot_messages, 0) AS BIGINT) AS bot_messages \
FROM talkhouse.model_conversations c \
FULL OUTER JOIN (\
SELECT source, conversation_id, COUNT(*) AS message_count, \
MIN(sent_at) AS first_message_at, MAX(sent_at) AS last_message_at, \
MIN(CASE WHEN sender_role = 'customer' THEN sender_id END) AS customer_id, \
MIN(channel) AS channel, \
SUM(CASE WHEN sender_role = 'customer' THEN 1 ELSE 0 END) AS customer_messages, \
SUM(CASE WHEN sender_role = 'agent' THEN 1 ELSE 0 END) AS agent_messages, \
SUM(CASE WHEN sender_role = 'bot' THEN 1 ELSE 0 END) AS bot_messages \
FROM talkhouse.model_messages WHERE _deleted_at IS NULL \
GROUP BY source, conversation_id) mc \
ON mc.source = c.source AND mc.conversation_id = c.conversation_id \
LEFT JOIN talkhouse.source_settings s ON s.source = COALESCE(c.source, mc.source) \
WHERE c._deleted_at IS NULL AND NOT {TEST_LEFT_OUT}"
    )
}

/// The longest chain of merges [`current_ids`] follows (an id merged into one that was merged
/// again, and so on): each hop is a join, and real chains are a few hops long.
pub const MERGE_HOPS: usize = 8;

/// Every id a merge retired, with the id it goes by now: `old → new → newer …`, followed up to
/// [`MERGE_HOPS`] merges (a cycle, which no vendor should report, stops there too).
fn current_ids() -> String {
    let mut joins = String::new();
    let mut latest = vec!["m0.new_id".to_owned()];
    for hop in 1..MERGE_HOPS {
        let prev = hop - 1;
        joins.push_str(&format!(
            " LEFT JOIN talkhouse.model_id_merges m{hop} ON m{hop}.source = m0.source \
AND m{hop}.entity = m0.entity AND m{hop}.old_id = m{prev}.new_id AND m{hop}._deleted_at IS NULL"
        ));
        latest.insert(0, format!("m{hop}.new_id"));
    }
    format!(
        "SELECT m0.source, m0.entity, m0.old_id, COALESCE({}) AS current_id \
FROM talkhouse.model_id_merges m0{joins} WHERE m0._deleted_at IS NULL",
        latest.join(", ")
    )
}

/// `COALESCE(<alias>.current_id, <column>)`: the current id of `column` (an `entity` id),
/// joined as `<alias>` by [`current_join`].
fn current(alias: &str, column: &str) -> String {
    format!("COALESCE({alias}.current_id, {column})")
}

/// `LEFT JOIN talkhouse.current_ids <alias>` for the `entity` id in `column` of `row`.
fn current_join(alias: &str, entity: &str, row: &str, column: &str) -> String {
    format!(
        " LEFT JOIN talkhouse.current_ids {alias} ON {alias}.source = {row}.source \
AND {alias}.entity = '{entity}' AND {alias}.old_id = {row}.{column}"
    )
}

/// Joined to messages `m`, `r.source IS NULL` says that `m`'s source reports no sessions itself,
/// so that its chat sessions come from its messages.
const NO_REPORTED_SESSIONS: &str = " LEFT JOIN (SELECT DISTINCT source FROM talkhouse.model_sessions \
WHERE _deleted_at IS NULL) r ON r.source = m.source";

/// The sessions the vendor reports (`model_sessions`) with current ids: the rows of
/// [`sessions`] whose `customer_messages` is NULL (those it derives from messages count them).
fn reported_sessions() -> String {
    format!(
        "SELECT s.source, s.session_id, {conversation} AS conversation_id, \
{customer} AS customer_id, s.channel, s.started_at, s.ended_at, \
CAST(s.message_count AS BIGINT) AS message_count, \
CAST(NULL AS BIGINT) AS customer_messages, CAST(NULL AS BIGINT) AS agent_messages, \
CAST(NULL AS BIGINT) AS bot_messages, CAST(s.handle_seconds AS DOUBLE PRECISION) AS handle_seconds \
FROM talkhouse.model_sessions s{cv}{cu} WHERE s._deleted_at IS NULL",
        conversation = current("cv", "s.conversation_id"),
        customer = current("cu", "s.customer_id"),
        cv = current_join("cv", "conversation", "s", "conversation_id"),
        cu = current_join("cu", "customer", "s", "customer_id"),
    )
}

/// Sessions the vendor reports (`model_sessions`), and, for every source that reports none, the
/// chat sessions its messages carry.
fn sessions() -> String {
    let message_customer = format!(
        "CASE WHEN m.sender_role = 'customer' THEN {} END",
        current("mu", "m.sender_id")
    );
    format!(
        "{reported} \
UNION ALL \
SELECT m.source, m.session_id, MIN(m.conversation_id) AS conversation_id, \
MIN({message_customer}) AS customer_id, MIN(m.channel) AS channel, \
MIN(m.sent_at) AS started_at, MAX(m.sent_at) AS ended_at, \
CAST(COUNT(*) AS BIGINT) AS message_count, \
CAST(SUM(CASE WHEN m.sender_role = 'customer' THEN 1 ELSE 0 END) AS BIGINT) AS customer_messages, \
CAST(SUM(CASE WHEN m.sender_role = 'agent' THEN 1 ELSE 0 END) AS BIGINT) AS agent_messages, \
CAST(SUM(CASE WHEN m.sender_role = 'bot' THEN 1 ELSE 0 END) AS BIGINT) AS bot_messages, \
CAST(NULL AS DOUBLE PRECISION) AS handle_seconds \
FROM talkhouse.messages m{mu}{NO_REPORTED_SESSIONS} \
WHERE m.session_id IS NOT NULL AND r.source IS NULL \
GROUP BY m.source, m.session_id",
        reported = reported_sessions(),
        mu = current_join("mu", "customer", "m", "sender_id"),
    )
}

/// Agent work sessions with current ids and a team.
fn work() -> String {
    format!(
        "SELECT w.source, w.work_session_id, w.session_id, {conversation} AS conversation_id, \
{customer} AS customer_id, w.agent_id, COALESCE(w.team_id, agent_team.team_id) AS team_id, \
w.started_at, w.ended_at, CAST(w.handle_seconds AS DOUBLE PRECISION) AS handle_seconds \
FROM talkhouse.model_work w{cv}{cu} \
LEFT JOIN (SELECT a.source, a.agent_id, MIN(t.team_id) AS team_id \
FROM (SELECT DISTINCT source, agent_id FROM talkhouse.model_work) a \
JOIN talkhouse.model_teams t ON t.source = a.source \
AND t.agent_ids LIKE '%,' || a.agent_id || ',%' AND t._deleted_at IS NULL \
GROUP BY a.source, a.agent_id) agent_team \
ON agent_team.source = w.source AND agent_team.agent_id = w.agent_id \
WHERE w._deleted_at IS NULL",
        conversation = current("cv", "w.conversation_id"),
        customer = current("cu", "w.customer_id"),
        cv = current_join("cv", "conversation", "w", "conversation_id"),
        cu = current_join("cu", "customer", "w", "customer_id"),
    )
}

/// The messages of each session: those carrying its `session_id` (chat sessions), and, for a
/// session the vendor reports, its conversation's messages from its start to its end.
///
/// The reported sessions are read from [`reported_sessions`] rather than from the sessions view
/// filtered on `customer_messages IS NULL` (the same rows): through the view, the engine
/// aggregated every message into chat sessions only to drop them again, twice per query.
///
/// `sources` (SQL string literals between commas), when given, keeps only those sources'
/// sessions: the filter sits on the messages and sessions themselves, where the engine uses it.
fn session_messages(sources: Option<&str>) -> String {
    let (of_message, of_session) = sources.map_or_else(
        || (String::new(), String::new()),
        |list| {
            (
                format!(" AND m.source IN ({list})"),
                format!(" WHERE s.source IN ({list})"),
            )
        },
    );
    format!(
        "SELECT m.source, m.session_id, m.sender_role, m.sent_at \
FROM talkhouse.messages m{NO_REPORTED_SESSIONS} \
WHERE m.session_id IS NOT NULL AND m.sent_at IS NOT NULL AND r.source IS NULL{of_message} \
UNION ALL \
SELECT s.source, s.session_id, m.sender_role, m.sent_at FROM ({reported}) s \
JOIN talkhouse.messages m ON m.source = s.source AND m.conversation_id = s.conversation_id \
AND m.sent_at >= s.started_at AND (s.ended_at IS NULL OR m.sent_at <= s.ended_at){of_session}",
        reported = reported_sessions(),
    )
}

/// The rows of `talkhouse.session_first_responses` of `sources` (SQL string literals between
/// commas), the same rows as the view filtered on `source IN (…)`: with the filter outside the
/// view, the engine computed every source's sessions (at 10M messages, half the report's time).
pub(crate) fn session_first_responses_of(sources: &str) -> String {
    first_responses_over(
        &format!("({})", session_messages(Some(sources))),
        "session_id",
    )
}

/// First responses per `key` (`conversation_id` or `session_id`) over `messages` (a relation
/// with `source`, the key, `sender_role` and `sent_at`): the first customer message, the first
/// agent-or-bot reply strictly after it and the first agent reply, with both waits in seconds.
fn first_responses_over(messages: &str, key: &str) -> String {
    format!(
        "SELECT r.source, r.{key}, r.first_customer_at, r.first_response_at, \
r.first_agent_response_at, \
CAST(EXTRACT(EPOCH FROM r.first_response_at) - EXTRACT(EPOCH FROM r.first_customer_at) AS DOUBLE PRECISION) \
AS response_seconds, \
CAST(EXTRACT(EPOCH FROM r.first_agent_response_at) - EXTRACT(EPOCH FROM r.first_customer_at) AS DOUBLE PRECISION) \
AS agent_response_seconds \
FROM (\
SELECT f.source, f.{key}, f.first_customer_at, \
MIN(m.sent_at) AS first_response_at, \
MIN(CASE WHEN m.sender_role = 'agent' THEN m.sent_at END) AS first_agent_response_at \
FROM (SELECT c.source, c.{key}, MIN(c.sent_at) AS first_customer_at FROM {messages} c \
WHERE c.sender_role = 'customer' AND c.sent_at IS NOT NULL GROUP BY c.source, c.{key}) f \
LEFT JOIN {messages} m ON m.source = f.source AND m.{key} = f.{key} \
AND m.sender_role IN ('agent', 'bot') AND m.sent_at > f.first_customer_at \
GROUP BY f.source, f.{key}, f.first_customer_at) r"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_in_dependency_order() {
        let names: Vec<_> = model_views().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "talkhouse.messages",
                "talkhouse.conversations",
                "talkhouse.current_ids",
                "talkhouse.sessions",
                "talkhouse.first_responses",
                "talkhouse.work",
                "talkhouse.session_first_responses"
            ]
        );
        for stmt in model_view_statements() {
            assert!(stmt.starts_with("CREATE OR REPLACE VIEW talkhouse."));
            assert!(!stmt.contains("  "), "no accidental double spaces: {stmt}");
        }
    }
}
