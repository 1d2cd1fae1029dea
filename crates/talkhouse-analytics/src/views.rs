//! The cross-vendor views in schema `talkhouse`, over the base tables every source writes.
//!
//! | view | one row per | what it adds |
//! |---|---|---|
//! | `talkhouse.messages` | message | drops rows with `_deleted_at` (the message's or its conversation's); `channel` falls back to the conversation's |
//! | `talkhouse.conversations` | conversation | drops deleted rows; `message_count` = the vendor's count where set, else the messages counted; `first_message_at`, `last_message_at`, messages per role; conversations known only from their messages appear too |
//! | `talkhouse.sessions` | chat session (`session_id`: Gladly chat session, Giosg chat, Ada conversation) | start, end, messages per role |
//! | `talkhouse.first_responses` | conversation with a customer message | first customer message, first agent-or-bot reply strictly after it, first agent reply, both in seconds |
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
        ("talkhouse.sessions", SESSIONS.to_owned()),
        ("talkhouse.first_responses", FIRST_RESPONSES.to_owned()),
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

const SESSIONS: &str = "\
SELECT source, session_id, MIN(conversation_id) AS conversation_id, MIN(channel) AS channel, \
MIN(sent_at) AS started_at, MAX(sent_at) AS ended_at, \
CAST(COUNT(*) AS BIGINT) AS message_count, \
CAST(SUM(CASE WHEN sender_role = 'customer' THEN 1 ELSE 0 END) AS BIGINT) AS customer_messages, \
CAST(SUM(CASE WHEN sender_role = 'agent' THEN 1 ELSE 0 END) AS BIGINT) AS agent_messages, \
CAST(SUM(CASE WHEN sender_role = 'bot' THEN 1 ELSE 0 END) AS BIGINT) AS bot_messages \
FROM talkhouse.messages WHERE session_id IS NOT NULL \
GROUP BY source, session_id";

const FIRST_RESPONSES: &str = "\
SELECT r.source, r.conversation_id, r.first_customer_at, r.first_response_at, \
r.first_agent_response_at, \
CAST(EXTRACT(EPOCH FROM r.first_response_at) - EXTRACT(EPOCH FROM r.first_customer_at) AS DOUBLE PRECISION) \
AS response_seconds, \
CAST(EXTRACT(EPOCH FROM r.first_agent_response_at) - EXTRACT(EPOCH FROM r.first_customer_at) AS DOUBLE PRECISION) \
AS agent_response_seconds \
FROM (\
SELECT f.source, f.conversation_id, f.first_customer_at, \
MIN(m.sent_at) AS first_response_at, \
MIN(CASE WHEN m.sender_role = 'agent' THEN m.sent_at END) AS first_agent_response_at \
FROM (SELECT source, conversation_id, MIN(sent_at) AS first_customer_at FROM talkhouse.messages \
WHERE sender_role = 'customer' AND sent_at IS NOT NULL GROUP BY source, conversation_id) f \
LEFT JOIN talkhouse.messages m \
ON m.source = f.source AND m.conversation_id = f.conversation_id \
AND m.sender_role IN ('agent', 'bot') AND m.sent_at > f.first_customer_at \
GROUP BY f.source, f.conversation_id, f.first_customer_at) r";

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
                "talkhouse.sessions",
                "talkhouse.first_responses"
            ]
        );
        for stmt in model_view_statements() {
            assert!(stmt.starts_with("CREATE OR REPLACE VIEW talkhouse."));
            assert!(!stmt.contains("  "), "no accidental double spaces: {stmt}");
        }
    }
}
