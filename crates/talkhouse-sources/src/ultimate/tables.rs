//! The Ultimate tables.

use talkhouse_model::{Column, ColumnType as T, TableRef, TableSpec};

/// `ultimate.conversations`: one row per conversation (latest version).
pub const CONVERSATIONS: TableRef = TableRef::source("conversations");
/// `ultimate.triggered_intent_replies`: `triggered_intent_replies[]`, by conversation and position.
pub const INTENT_REPLIES: TableRef = TableRef::source("triggered_intent_replies");
/// `ultimate.triggered_replies`: `triggered_replies[]`, by conversation and position.
pub const REPLIES: TableRef = TableRef::source("triggered_replies");
/// `ultimate.export_days`: one row per (bot, day) export read, with what it held; the metric
/// views tell from it which days are final.
pub const EXPORT_DAYS: TableRef = TableRef::source("export_days");

/// Integer columns of a conversation and the vendor keys they come from (lower-cased).
pub const COUNTS: [(&str, &str); 13] = [
    ("llm_not_understood_count", "llm_notunderstood_count"),
    (
        "llm_response_generated_count",
        "llm_responsegenerated_count",
    ),
    ("llm_error_occurred_count", "llm_erroroccurred_count"),
    (
        "llm_escalation_required_count",
        "llm_escalationrequired_count",
    ),
    ("llm_fallback_count", "llm_fallback_count"),
    (
        "knowledge_not_understood_count",
        "knowledge_notunderstood_count",
    ),
    (
        "knowledge_response_generated_count",
        "knowledge_responsegenerated_count",
    ),
    (
        "knowledge_error_occurred_count",
        "knowledge_erroroccurred_count",
    ),
    (
        "knowledge_escalation_required_count",
        "knowledge_escalationrequired_count",
    ),
    ("knowledge_fallback_count", "knowledge_fallback_count"),
    ("bot_messages_count", "bot_messages_count"),
    ("visitor_messages_count", "visitor_messages_count"),
    (
        "not_understood_messages_count",
        "not_understood_messages_count",
    ),
];

/// The vendor tables.
pub fn tables() -> Vec<TableSpec> {
    let mut conv = vec![
        Column::new("conversation_id", T::Text),
        Column::new("bot_id", T::Text),
        Column::new("bot_name", T::Text),
        Column::new("platform_conversation_id", T::Text),
        Column::new("conversation_start_time", T::Timestamp),
        Column::new("conversation_end_time", T::Timestamp),
        // UTC day of the start (per-day metrics) and the day file the row came from.
        Column::new("start_date", T::Date),
        Column::new("export_date", T::Date),
        Column::new("language", T::Text),
        Column::new("channel", T::Text),
        Column::new("labels", T::Json),
        // Session parameters parsed from their JSON string; may hold names and e-mails.
        Column::personal("conversations_data", T::Json),
        Column::new("test_mode", T::Boolean),
        Column::new("conversation_status", T::Text),
        Column::new("last_resolution", T::Text),
        Column::new("is_llm_conversation", T::Boolean),
    ];
    conv.extend(COUNTS.iter().map(|(c, _)| Column::new(c, T::Integer)));
    conv.extend([
        Column::new("conversation_type", T::Text),
        Column::new("segments", T::Json),
        Column::new("automated_resolution", T::Boolean),
        Column::new("automated_resolution_reasoning", T::Text),
        Column::new("triggered_procedures", T::Json),
        Column::new("triggered_use_cases", T::Json),
        Column::new("has_knowledge_response_attempt", T::Boolean),
        Column::new("knowledge_sources", T::Json),
        Column::new("resolution_tier", T::Text),
        Column::new("rbp_status_name", T::Text),
        Column::new("session_ended_timestamp", T::Timestamp),
        Column::new("instance_account_id", T::Text),
        Column::new("zdp_meta_processed_timestamp", T::Timestamp),
        Column::new("conversation_end_date", T::Date),
        // Every other key of the record, as received.
        Column::new("extra", T::Json),
    ]);
    vec![
        TableSpec::new(CONVERSATIONS, conv, &["conversation_id"])
            .partitioned_by_day("conversation_end_time"),
        TableSpec::new(
            INTENT_REPLIES,
            vec![
                Column::new("conversation_id", T::Text),
                Column::new("position", T::Integer),
                Column::new("intent_timestamp", T::Timestamp),
                Column::new("intent_id", T::Text),
                Column::new("intent_name", T::Text),
                Column::new("not_meaningful", T::Boolean),
            ],
            &["conversation_id", "position"],
        )
        .child_of(&["conversation_id"]),
        TableSpec::new(
            REPLIES,
            vec![
                Column::new("conversation_id", T::Text),
                Column::new("position", T::Integer),
                Column::new("reply_timestamp", T::Timestamp),
                Column::new("reply_id", T::Text),
                Column::new("reply_language", T::Text),
                Column::new("reply_name", T::Text),
                Column::new("reply_type", T::Text),
                Column::new("intent_id", T::Text),
            ],
            &["conversation_id", "position"],
        )
        .child_of(&["conversation_id"]),
        TableSpec::new(
            EXPORT_DAYS,
            vec![
                Column::new("bot_id", T::Text),
                Column::new("day", T::Date),
                Column::new("files", T::Integer),
                Column::new("records", T::Integer),
                Column::new("bytes", T::Integer),
                // The API answered 404: the bot has no export that day.
                Column::new("no_export", T::Boolean),
            ],
            &["bot_id", "day"],
        ),
    ]
}
