//! The tables of schema `gladly`.

use talkhouse_model::{Column, ColumnType as T, TableRef, TableSpec, model};

/// `gladly.conversation_items`: every item of every export job, webhook and item list.
pub const ITEMS: TableRef = TableRef::source("conversation_items");
/// `gladly.customers`: `customers.jsonl`, then `GET /customer-profiles/{id}`.
pub const CUSTOMERS: TableRef = TableRef::source("customers");
/// `gladly.customer_merges`: `old_id → new_id` from 301 answers and merge events.
pub const MERGES: TableRef = TableRef::source("customer_merges");
/// `gladly.conversations`: `GET /conversations/{id}`.
pub const CONVERSATIONS: TableRef = TableRef::source("conversations");
/// `gladly.conversation_assignments`: every (inbox, agent) a conversation was seen in.
pub const ASSIGNMENTS: TableRef = TableRef::source("conversation_assignments");
/// `gladly.agents`.
pub const AGENTS: TableRef = TableRef::source("agents");
/// `gladly.topics` (with `parent_id`).
pub const TOPICS: TableRef = TableRef::source("topics");
/// `gladly.inboxes`.
pub const INBOXES: TableRef = TableRef::source("inboxes");
/// `gladly.teams` (with `agent_ids`), so that work can be grouped by team.
pub const TEAMS: TableRef = TableRef::source("teams");

/// Every table the Gladly source writes, the model's included.
pub fn all() -> Vec<TableSpec> {
    let mut t = vec![
        TableSpec::new(
            ITEMS,
            vec![
                Column::new("id", T::Text),
                Column::new("conversation_id", T::Text),
                Column::new("customer_id", T::Text),
                Column::new("session_id", T::Text),
                Column::new("timestamp", T::Timestamp),
                Column::new("initiator_id", T::Text),
                Column::new("initiator_type", T::Text),
                Column::new("responder_id", T::Text),
                Column::new("responder_type", T::Text),
                Column::new("content_type", T::Text),
                Column::new("message_type", T::Text),
                Column::new("chat_session_id", T::Text),
                Column::personal("body", T::Text),
                Column::personal("subject", T::Text),
                Column::personal("title", T::Text),
                Column::personal("from_address", T::Text),
                Column::personal("to_address", T::Text),
                Column::personal("cc", T::Json),
                Column::personal("bcc", T::Json),
                Column::new("status", T::Text),
                Column::new("activity_type", T::Text),
                Column::new("source_name", T::Text),
                Column::new("link_url", T::Text),
                Column::new("page_id", T::Text),
                Column::new("user_id", T::Text),
                Column::new("started_at", T::Timestamp),
                Column::new("answered_at", T::Timestamp),
                Column::new("completed_at", T::Timestamp),
                Column::new("occurred_at", T::Timestamp),
                Column::new("received_at", T::Timestamp),
                Column::new("recording_status", T::Text),
                Column::new("recording_url", T::Text),
                Column::new("recording_duration", T::Integer),
                Column::personal("recording_summary", T::Json),
                Column::new("added_topic_ids", T::Json),
                Column::new("removed_topic_ids", T::Json),
                Column::new("attachments", T::Json),
                Column::new("message_data", T::Json),
                Column::personal("customer_number", T::Text),
                Column::new("company_number", T::Text),
                Column::new("job_id", T::Text),
                Column::new("job_updated_at", T::Timestamp),
            ],
            &["id"],
        )
        .partitioned_by_day("timestamp"),
        TableSpec::new(
            CUSTOMERS,
            vec![
                Column::new("id", T::Text),
                Column::personal("name", T::Text),
                Column::personal("address", T::Text),
                Column::personal("image", T::Text),
                Column::personal("email", T::Text),
                Column::personal("phone", T::Text),
                Column::personal("emails", T::Json),
                Column::personal("phones", T::Json),
                Column::new("external_customer_id", T::Text),
                Column::new("external_customer_ids", T::Json),
                Column::personal("custom_attributes", T::Json),
                Column::new("created_at", T::Timestamp),
                Column::new("updated_at", T::Timestamp),
                // `export` (customers.jsonl shape) or `api` (GET customer).
                Column::new("origin", T::Text),
            ],
            &["id"],
        ),
        TableSpec::new(
            MERGES,
            vec![
                Column::new("old_id", T::Text),
                Column::new("new_id", T::Text),
                Column::new("seen_at", T::Timestamp),
            ],
            &["old_id"],
        ),
        TableSpec::new(
            CONVERSATIONS,
            vec![
                Column::new("id", T::Text),
                Column::new("customer_id", T::Text),
                Column::new("inbox_id", T::Text),
                Column::new("agent_id", T::Text),
                Column::new("status", T::Text),
                Column::new("topic_ids", T::Json),
                Column::new("custom_attributes", T::Json),
                Column::new("created_at", T::Timestamp),
                Column::new("closed_at", T::Timestamp),
            ],
            &["id"],
        ),
        TableSpec::new(
            ASSIGNMENTS,
            vec![
                Column::new("conversation_id", T::Text),
                Column::new("inbox_id", T::Text),
                // Empty when the conversation sat in the inbox without an agent.
                Column::new("agent_id", T::Text),
                Column::new("seen_at", T::Timestamp),
            ],
            &["conversation_id", "inbox_id", "agent_id"],
        ),
        TableSpec::new(
            AGENTS,
            vec![
                Column::new("id", T::Text),
                Column::personal("name", T::Text),
                Column::personal("email_address", T::Text),
            ],
            &["id"],
        ),
        TableSpec::new(
            TOPICS,
            vec![
                Column::new("id", T::Text),
                Column::new("name", T::Text),
                Column::new("disabled", T::Boolean),
                Column::new("parent_id", T::Text),
            ],
            &["id"],
        ),
        TableSpec::new(
            INBOXES,
            vec![
                Column::new("id", T::Text),
                Column::new("name", T::Text),
                Column::new("disabled", T::Boolean),
            ],
            &["id"],
        ),
        TableSpec::new(
            TEAMS,
            vec![
                Column::new("id", T::Text),
                Column::new("name", T::Text),
                Column::new("description", T::Text),
                Column::new("agent_ids", T::Json),
            ],
            &["id"],
        ),
    ];
    t.extend(model::tables());
    t
}
