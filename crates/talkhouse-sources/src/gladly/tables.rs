//! The tables of schema `gladly`.

use talkhouse_model::{Column, ColumnType as T, TableRef, TableSpec, model};

/// `gladly.conversation_items`: every item of every export job, webhook and item list.
pub const ITEMS: TableRef = TableRef::source("conversation_items");
/// `gladly.customers`: `customers.jsonl`, then `GET /customer-profiles/{id}`.
pub const CUSTOMERS: TableRef = TableRef::source("customers");
/// `gladly.customer_merges`: `old_id → new_id` from 301 answers and merge events.
pub const MERGES: TableRef = TableRef::source("customer_merges");
/// `gladly.conversation_merges`: `old_id → new_id` of conversations a merge retired (merge
/// events, and OPEN→OPEN merge losers: a 404 whose items reappear under another conversation).
pub const CONVERSATION_MERGES: TableRef = TableRef::source("conversation_merges");
/// `gladly.conversations`: the conversation report's row of each conversation an export job
/// names (no topic ids nor custom attributes), else `GET /conversations/{id}`.
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
/// `gladly.contacts`: Reports API `ContactExportReportV3`, one row per contact.
pub const CONTACTS: TableRef = TableRef::source("contacts");
/// `gladly.work_sessions`: Reports API `WorkSessionsReportV3`, one row per contact session and
/// agent (`agent_id` is empty where no agent handled the contact).
pub const WORK_SESSIONS: TableRef = TableRef::source("work_sessions");
/// `gladly.conversation_report`: Reports API `ConversationExportReport`, one row per
/// conversation, as Gladly computed it when the report was requested.
pub const CONVERSATION_REPORT: TableRef = TableRef::source("conversation_report");

// The columns of the report tables are the reports' headers, snake_cased (see
// `report_csv::snake_case`): a header of this list lands in its typed column, any other header
// only in `_raw` (and is a warning). Durations are decimal seconds.

/// `gladly.contacts` (`ContactExportReportV3`).
pub const CONTACT_COLUMNS: &[Column] = &[
    Column::new("contact_id", T::Text),
    Column::new("customer_id", T::Text),
    Column::new("conversation_id", T::Text),
    Column::new("fulfilled_by_contact_id", T::Text),
    Column::new("timezone_filter", T::Text),
    Column::new("channel_filter", T::Text),
    Column::new("inboxes_filter", T::Text),
    Column::new("channel", T::Text),
    Column::new("direction", T::Text),
    Column::new("contact_initiator", T::Text),
    Column::new("entry_point", T::Text),
    Column::new("final_ivr_selection", T::Text),
    Column::new("status", T::Text),
    Column::new("inbox_when_queued", T::Text),
    Column::new("inbox_when_ended", T::Text),
    Column::personal("agent_when_ended", T::Text),
    Column::new("queued_at", T::Timestamp),
    Column::new("offered_at", T::Timestamp),
    Column::new("accepted_at", T::Timestamp),
    Column::new("fulfilled_at", T::Timestamp),
    Column::new("due_at", T::Timestamp),
    Column::new("ended_at", T::Timestamp),
    Column::new("sla_target_sec", T::Float),
    Column::new("queued_to_accepted_sec", T::Float),
    Column::new("queued_to_fulfilled_sec", T::Float),
    Column::new("queued_to_ended_sec", T::Float),
    Column::new("contact_handle_time_sec", T::Float),
    Column::new("after_contact_time_sec", T::Float),
    Column::new("total_contact_handle_time_sec", T::Float),
    Column::new("hold_time_sec", T::Float),
    Column::new("messages", T::Integer),
    Column::new("messages_from_customer", T::Integer),
    Column::new("messages_from_agent", T::Integer),
    Column::new("messages_from_rules", T::Integer),
    Column::new("messages_from_api", T::Integer),
    Column::new("average_agent_reply_time_sec", T::Float),
    Column::new("times_offered", T::Integer),
    Column::new("times_accepted", T::Integer),
    Column::new("times_missed", T::Integer),
    Column::new("times_declined", T::Integer),
    Column::new("times_transferred", T::Integer),
];

/// `gladly.work_sessions` (`WorkSessionsReportV3`; Gladly does not publish its headers, these
/// are the fields of its work-session events).
pub const WORK_SESSION_COLUMNS: &[Column] = &[
    Column::new("contact_session_id", T::Text),
    Column::new("agent_id", T::Text),
    Column::new("id", T::Text),
    Column::new("timezone_filter", T::Text),
    Column::new("channel_filter", T::Text),
    Column::new("inboxes_filter", T::Text),
    Column::new("teams_filter", T::Text),
    Column::new("contact_session_created_at", T::Timestamp),
    Column::new("customer_id", T::Text),
    Column::new("conversation_id", T::Text),
    Column::new("inbox_id", T::Text),
    Column::new("accepted_inbox_id", T::Text),
    Column::new("channel", T::Text),
    Column::new("direction", T::Text),
    Column::new("contact_session_routed_at", T::Timestamp),
    Column::new("agent_accepted_at", T::Timestamp),
    Column::new("sla_fulfilled_at", T::Timestamp),
    Column::new("contact_session_ended_at", T::Timestamp),
    Column::new("status", T::Text),
    Column::new("within_sla", T::Boolean),
    Column::new("work_session_handle_time_sec", T::Float),
    Column::new("work_session_after_contact_time_sec", T::Float),
    Column::new("work_session_unknown_time_sec", T::Float),
];

/// `gladly.conversation_report` (`ConversationExportReport`).
pub const CONVERSATION_REPORT_COLUMNS: &[Column] = &[
    Column::new("conversation_id", T::Text),
    Column::new("customer_id", T::Text),
    Column::new("inboxes_filter", T::Text),
    Column::new("created_at", T::Timestamp),
    Column::new("status", T::Text),
    Column::new("first_closed_at", T::Timestamp),
    Column::new("last_closed_at", T::Timestamp),
    Column::new("topics", T::Text),
    Column::new("topics_with_hierarchy", T::Text),
    Column::new("first_channel", T::Text),
    Column::new("last_channel", T::Text),
    Column::new("assigned_agent_id_current", T::Text),
    Column::new("assigned_agent_id_created", T::Text),
    Column::new("assigned_agent_id_last_closed", T::Text),
    Column::new("assigned_inbox_id_current", T::Text),
    Column::new("assigned_inbox_id_created", T::Text),
    Column::new("assigned_inbox_id_last_closed", T::Text),
    Column::new("initiator_agent_id", T::Text),
    Column::new("first_contact_id", T::Text),
    Column::new("created_to_first_closed_time_in_seconds", T::Float),
    Column::new("created_to_last_closed_time_in_seconds", T::Float),
    Column::new("conversation_handle_time_in_seconds", T::Float),
    Column::new("is_fcr_eligible", T::Boolean),
    Column::new("is_fcr_success", T::Boolean),
    Column::new("merged_conversations", T::Text),
    Column::new("number_of_contacts", T::Integer),
    Column::new("number_of_channels", T::Integer),
    Column::new("number_of_notes", T::Integer),
    Column::new("number_of_agents_assigned", T::Integer),
    Column::new("number_of_inboxes_assigned", T::Integer),
    Column::new("times_closed", T::Integer),
    Column::new("times_reopened", T::Integer),
    Column::new("times_topic_added", T::Integer),
    Column::new("times_topic_removed", T::Integer),
];

/// A table of retired ids: `old_id` became `new_id`, first seen at `seen_at`.
fn merges(table: TableRef) -> TableSpec {
    TableSpec::new(
        table,
        vec![
            Column::new("old_id", T::Text),
            Column::new("new_id", T::Text),
            Column::new("seen_at", T::Timestamp),
        ],
        &["old_id"],
    )
}

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
        merges(MERGES),
        merges(CONVERSATION_MERGES),
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
        TableSpec::new(CONTACTS, CONTACT_COLUMNS.to_vec(), &["contact_id"])
            .partitioned_by_day("queued_at"),
        TableSpec::new(
            WORK_SESSIONS,
            WORK_SESSION_COLUMNS.to_vec(),
            &["contact_session_id", "agent_id"],
        )
        .partitioned_by_day("contact_session_ended_at"),
        TableSpec::new(
            CONVERSATION_REPORT,
            CONVERSATION_REPORT_COLUMNS.to_vec(),
            &["conversation_id"],
        )
        .partitioned_by_day("created_at"),
    ];
    t.extend(model::tables());
    t
}
