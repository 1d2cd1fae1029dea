//! The cross-vendor model: `talkhouse.conversations`, `talkhouse.messages`, `talkhouse.sessions`
//! and `talkhouse.work`.
//!
//! Every source maps its own records to rows of the base tables `talkhouse.model_conversations`
//! and `talkhouse.model_messages` during sync, in the same transaction as the vendor rows. The
//! engine fills `source` with the configured source name, and `sentiment` from `body`; sources
//! leave both unset. Erasures on these tables always delete. Users query the views
//! `talkhouse.conversations` and `talkhouse.messages` (defined by `talkhouse-analytics`), which
//! add derived columns such as `message_count` where the vendor gives none.
//!
//! Test traffic: a conversation the vendor marks as a test (Ultimate `test_mode`, Ada
//! `is_test_user`) carries `is_test = true`. The engine writes one row per source into
//! `talkhouse.source_settings` ([`SOURCE_SETTINGS`]) each time it prepares the destination, from
//! [`Source::model_settings`](crate::Source::model_settings); the views leave test conversations out unless
//! their source's `include_test` is set, so changing the setting takes effect at the next sync
//! without reloading anything.

use crate::{Column, ColumnType as T, TableRef, TableSpec};

/// `talkhouse.model_conversations`: one row per conversation of any vendor.
pub const CONVERSATIONS: TableRef = TableRef::model("model_conversations");
/// `talkhouse.model_messages`: one row per message of any vendor.
pub const MESSAGES: TableRef = TableRef::model("model_messages");
/// `talkhouse.source_settings`: one row per configured source, the settings the model views
/// honour (written by the engine, not by sources).
pub const SOURCE_SETTINGS: TableRef = TableRef::model("source_settings");

/// `talkhouse.model_sessions`: one row per session a vendor reports itself (a Gladly contact),
/// beside the chat sessions the views derive from messages.
pub const SESSIONS: TableRef = TableRef::model("model_sessions");
/// `talkhouse.model_work`: one row per agent work session (Gladly's work sessions report).
pub const WORK: TableRef = TableRef::model("model_work");
/// `talkhouse.model_teams`: one row per team, with the agents in it.
pub const TEAMS: TableRef = TableRef::model("model_teams");
/// `talkhouse.model_id_merges`: one row per vendor id that a merge retired, `old_id → new_id`
/// for an `entity` (`customer` or `conversation`). The views follow chains of them, so every
/// model row names the current customer and conversation.
pub const ID_MERGES: TableRef = TableRef::model("model_id_merges");
/// The entities of [`ID_MERGES`].
pub const MERGED_ENTITIES: [&str; 2] = ["customer", "conversation"];

/// Normalised channels.
pub const CHANNELS: [&str; 6] = ["chat", "email", "sms", "voice", "social", "messaging"];
/// Normalised sender roles.
pub const SENDER_ROLES: [&str; 4] = ["customer", "agent", "bot", "system"];

/// The model's table specs.
pub fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec::new(
            CONVERSATIONS,
            vec![
                Column::new("source", T::Text),
                Column::new("conversation_id", T::Text),
                Column::new("customer_id", T::Text),
                // One of CHANNELS, or null when unknown.
                Column::new("channel", T::Text),
                Column::new("started_at", T::Timestamp),
                Column::new("ended_at", T::Timestamp),
                Column::new("status", T::Text),
                // Set where the vendor counts messages itself (Ultimate); views count otherwise.
                Column::new("message_count", T::Integer),
                Column::new("escalated", T::Boolean),
                Column::new("bot_handled", T::Boolean),
                Column::new("csat", T::Float),
                Column::new("updated_at", T::Timestamp),
                // The vendor marks it as test traffic; null where the vendor has no such flag.
                Column::new("is_test", T::Boolean),
            ],
            &["source", "conversation_id"],
        ),
        TableSpec::new(
            MESSAGES,
            vec![
                Column::new("source", T::Text),
                Column::new("message_id", T::Text),
                Column::new("conversation_id", T::Text),
                // Gladly chat `sessionId`, Giosg chat id, Ada conversation id.
                Column::new("session_id", T::Text),
                // One of SENDER_ROLES.
                Column::new("sender_role", T::Text),
                Column::new("sender_id", T::Text),
                Column::new("channel", T::Text),
                Column::new("sent_at", T::Timestamp),
                Column::personal("body", T::Text),
                // ISO 639-1 code where the vendor tells; the analyser may detect it otherwise.
                Column::new("language", T::Text),
                // In [-1, 1]; null where there is no text or the language is not supported.
                Column::new("sentiment", T::Float),
            ],
            &["source", "message_id"],
        )
        .partitioned_by_day("sent_at"),
        TableSpec::new(
            SESSIONS,
            vec![
                Column::new("source", T::Text),
                Column::new("session_id", T::Text),
                // As the vendor reported it; the views resolve merges.
                Column::new("conversation_id", T::Text),
                Column::new("customer_id", T::Text),
                Column::new("channel", T::Text),
                Column::new("started_at", T::Timestamp),
                Column::new("ended_at", T::Timestamp),
                // Set where the vendor counts messages itself; the views count otherwise.
                Column::new("message_count", T::Integer),
                // Agent work time on the session, where the vendor reports it.
                Column::new("handle_seconds", T::Float),
            ],
            &["source", "session_id"],
        ),
        TableSpec::new(
            WORK,
            vec![
                Column::new("source", T::Text),
                Column::new("work_session_id", T::Text),
                Column::new("session_id", T::Text),
                Column::new("conversation_id", T::Text),
                Column::new("customer_id", T::Text),
                Column::new("agent_id", T::Text),
                Column::new("team_id", T::Text),
                Column::new("started_at", T::Timestamp),
                Column::new("ended_at", T::Timestamp),
                Column::new("handle_seconds", T::Float),
            ],
            &["source", "work_session_id"],
        ),
        TableSpec::new(
            TEAMS,
            vec![
                Column::new("source", T::Text),
                Column::new("team_id", T::Text),
                Column::new("name", T::Text),
                // The team's agent ids between commas (`,a1,a2,`): any engine matches an agent
                // with `LIKE '%,' || agent_id || ',%'`. An agent may be in several teams.
                Column::new("agent_ids", T::Text),
            ],
            &["source", "team_id"],
        ),
        TableSpec::new(
            ID_MERGES,
            vec![
                Column::new("source", T::Text),
                // One of MERGED_ENTITIES.
                Column::new("entity", T::Text),
                Column::new("old_id", T::Text),
                Column::new("new_id", T::Text),
                Column::new("seen_at", T::Timestamp),
            ],
            &["source", "entity", "old_id"],
        ),
        TableSpec::new(
            SOURCE_SETTINGS,
            vec![
                Column::new("source", T::Text),
                Column::new("vendor", T::Text),
                // Keep the vendor's test conversations in the model views and metrics.
                Column::new("include_test", T::Boolean),
            ],
            &["source"],
        ),
    ]
}
