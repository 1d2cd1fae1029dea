//! The tables of schema `ada`.

use talkhouse_model::{Column, ColumnType as T, TableRef, TableSpec};

/// `ada.conversations`: one row per conversation, in its latest version.
pub const CONVERSATIONS: TableRef = TableRef::source("conversations");
/// `ada.messages`: one row per message.
pub const MESSAGES: TableRef = TableRef::source("messages");

/// The vendor tables.
pub fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec::new(
            CONVERSATIONS,
            vec![
                Column::new("id", T::Text),
                Column::new("chatter_id", T::Text),
                Column::new("end_user_id", T::Text),
                Column::new("date_created", T::Timestamp),
                Column::new("date_updated", T::Timestamp),
                Column::new("record_last_updated", T::Timestamp),
                Column::new("platform", T::Text),
                Column::new("language", T::Text),
                Column::new("is_engaged", T::Boolean),
                Column::new("is_escalated", T::Boolean),
                Column::new("is_test_user", T::Boolean),
                Column::new("csat", T::Json),
                // `csat.score` (or `rating` / `value`) where the survey gave a number.
                Column::new("csat_score", T::Float),
                Column::personal("variables", T::Json),
                Column::personal("metavariables", T::Json),
                Column::new("agent_id", T::Json),
                Column::personal("agent_name", T::Json),
                Column::new("last_agent_id", T::Text),
                Column::personal("last_agent_name", T::Text),
                Column::new("browser", T::Text),
                Column::new("browser_version", T::Text),
                Column::new("device", T::Text),
                Column::new("oauth_channel", T::Text),
                Column::new("agent_handle_time", T::Float),
                Column::new("bot_handle_time", T::Float),
                Column::new("automated_resolution_classification", T::Text),
                Column::new("automated_resolution_classification_reason", T::Text),
                Column::personal("inquiry_summary", T::Text),
                Column::new("generated_topic_id", T::Text),
                Column::new("generated_topic_label", T::Text),
                Column::new("generated_topic_v2_id", T::Text),
                Column::new("generated_topic_v2_title", T::Text),
                Column::new("generated_topic_v2_desc", T::Text),
                Column::new("generated_topic_v2_parent_id", T::Text),
                Column::new("classifications", T::Json),
                Column::new("used_articles", T::Json),
                Column::new("used_playbooks", T::Json),
                Column::new("used_coaching", T::Json),
            ],
            &["id"],
        )
        .partitioned_by_day("date_created"),
        TableSpec::new(
            MESSAGES,
            vec![
                Column::new("id", T::Text),
                Column::new("conversation_id", T::Text),
                Column::new("chatter_id", T::Text),
                Column::new("date_created", T::Timestamp),
                Column::new("record_last_updated", T::Timestamp),
                Column::new("sender", T::Text),
                Column::new("recipient", T::Text),
                // customer, bot, agent or system, from `sender` and `chatter_id`.
                Column::new("sender_role", T::Text),
                // `message_data._type` (open-ended: text, greeting, quick_replies, picture, …).
                Column::new("message_type", T::Text),
                // `message_data.body` where present.
                Column::personal("body", T::Text),
                Column::personal("message_data", T::Json),
                Column::new("answer_id", T::Text),
                Column::new("answer_title", T::Text),
                Column::new("in_response_to", T::Text),
                Column::new("link_was_clicked", T::Boolean),
                Column::new("review", T::Integer),
            ],
            &["id"],
        )
        .partitioned_by_day("date_created"),
    ]
}
