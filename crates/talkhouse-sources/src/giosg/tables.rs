//! The Giosg tables (`giosg.*`).

use talkhouse_model::{Column, ColumnType as T, TableRef, TableSpec};

/// `giosg.chats`: one row per chat.
pub const CHATS: TableRef = TableRef::source("chats");
/// `giosg.chat_messages`: messages of each chat (decrypted text in `message`).
pub const MESSAGES: TableRef = TableRef::source("chat_messages");
/// `giosg.chat_memberships`: who took part in each chat.
pub const MEMBERSHIPS: TableRef = TableRef::source("chat_memberships");
/// `giosg.chat_tags`: tags of each chat.
pub const TAGS: TableRef = TableRef::source("chat_tags");
/// `giosg.visitor_variables`: variables of each chat's visitor.
pub const VARIABLES: TableRef = TableRef::source("visitor_variables");

/// The vendor tables.
pub fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec::new(
            CHATS,
            vec![
                Column::new("id", T::Text),
                Column::new("chat_type", T::Text),
                Column::new("created_at", T::Timestamp),
                Column::new("updated_at", T::Timestamp),
                Column::new("ended_at", T::Timestamp),
                Column::new("waiting_started_at", T::Timestamp),
                Column::new("room_id", T::Text),
                Column::new("room_organization_id", T::Text),
                Column::new("room_name", T::Text),
                // The visitor member's id (from memberships), for joins and purges.
                Column::new("visitor_id", T::Text),
                Column::new("tag_count", T::Integer),
                Column::new("message_count", T::Integer),
                Column::new("user_message_count", T::Integer),
                Column::new("visitor_message_count", T::Integer),
                Column::new("has_messages", T::Boolean),
                Column::new("has_user_messages", T::Boolean),
                Column::new("has_visitor_messages", T::Boolean),
                Column::new("present_participant_count", T::Integer),
                Column::new("present_user_participant_count", T::Integer),
                Column::new("present_visitor_participant_count", T::Integer),
                Column::new("member_count", T::Integer),
                Column::new("user_member_count", T::Integer),
                Column::new("visitor_member_count", T::Integer),
                Column::new("is_private", T::Boolean),
                Column::new("is_real_conversation", T::Boolean),
                Column::new("is_autosuggested", T::Boolean),
                Column::new("is_waiting", T::Boolean),
                Column::new("is_pending", T::Boolean),
                Column::new("is_ended", T::Boolean),
                Column::new("is_encrypted", T::Boolean),
                Column::new("encrypted_symmetric_key", T::Text),
                Column::new("autosuggest_url", T::Text),
                Column::new("autosuggest_url_title", T::Text),
                Column::new("first_visitor_message_url", T::Text),
                Column::new("first_visitor_message_url_title", T::Text),
                Column::new("legacy_conversation_state", T::Text),
                Column::new("legacy_room_id", T::Text),
                Column::new("visitor_wait_time", T::Float),
                Column::new("duration", T::Float),
                Column::new("active_duration", T::Float),
            ],
            &["id"],
        ),
        TableSpec::new(
            MESSAGES,
            vec![
                Column::new("id", T::Text),
                Column::new("chat_id", T::Text),
                Column::new("room_id", T::Text),
                Column::new("type", T::Text),
                Column::new("created_at", T::Timestamp),
                Column::new("sender_type", T::Text),
                Column::new("sender_id", T::Text),
                Column::personal("sender_name", T::Text),
                Column::personal("sender_public_name", T::Text),
                Column::new("sender_avatar", T::Json),
                // Plaintext: as served, or decrypted by talkhouse (`decrypted`).
                Column::personal("message", T::Text),
                Column::new("is_encrypted", T::Boolean),
                Column::personal("encrypted_message", T::Text),
                Column::new("decrypted", T::Boolean),
                Column::new("sensitive_data_purged_at", T::Timestamp),
                Column::new("selected_reply_suggestion_id", T::Text),
                Column::new("selected_reply_suggestion", T::Json),
                Column::new("attachments", T::Json),
                Column::new("attachment_template", T::Text),
                Column::new("response_to_message_id", T::Text),
                Column::new("response_to_attachment_id", T::Text),
                Column::new("response_to_attachment", T::Json),
                Column::new("response_to_action_id", T::Text),
                Column::new("response_to_action", T::Json),
                Column::personal("response_text", T::Text),
                Column::personal("response_value", T::Text),
            ],
            &["id"],
        )
        .child_of(&["chat_id"])
        .partitioned_by_day("created_at"),
        TableSpec::new(
            MEMBERSHIPS,
            vec![
                Column::new("chat_id", T::Text),
                Column::new("member_id", T::Text),
                Column::new("member_type", T::Text),
                Column::personal("member_name", T::Text),
                Column::personal("member_public_name", T::Text),
                Column::new("member_avatar", T::Json),
                Column::new("room_id", T::Text),
                Column::new("created_at", T::Timestamp),
                Column::new("updated_at", T::Timestamp),
                Column::new("is_participating", T::Boolean),
                Column::new("is_present", T::Boolean),
                Column::new("is_bot", T::Boolean),
                Column::new("composing_status", T::Text),
                Column::new("message_count", T::Integer),
                Column::new("room_organization_id", T::Text),
                Column::new("member_organization_id", T::Text),
                Column::new("legacy_member_id", T::Integer),
                Column::new("last_seen_at", T::Timestamp),
                Column::new("unread_message_count", T::Integer),
            ],
            &["chat_id", "member_id"],
        )
        .child_of(&["chat_id"]),
        TableSpec::new(
            TAGS,
            vec![
                Column::new("chat_id", T::Text),
                Column::new("name", T::Text),
                Column::new("hashed_name", T::Text),
                Column::new("room_id", T::Text),
                Column::new("created_at", T::Timestamp),
            ],
            &["chat_id", "name"],
        )
        .child_of(&["chat_id"]),
        TableSpec::new(
            VARIABLES,
            vec![
                Column::new("visitor_id", T::Text),
                Column::new("key", T::Text),
                Column::personal("value", T::Text),
                Column::new("chat_id", T::Text),
                Column::new("room_id", T::Text),
                Column::new("organization_id", T::Text),
                Column::new("session_id", T::Text),
                Column::new("created_at", T::Timestamp),
                Column::new("updated_at", T::Timestamp),
                Column::new("is_signed", T::Boolean),
                Column::new("is_encrypted", T::Boolean),
                Column::personal("encrypted_value", T::Text),
                Column::new("encrypted_symmetric_key", T::Text),
                Column::new("decrypted", T::Boolean),
            ],
            &["visitor_id", "key"],
        ),
    ]
}
