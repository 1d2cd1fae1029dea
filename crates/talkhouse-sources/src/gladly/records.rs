//! Gladly records → rows of the `gladly` tables and of the `talkhouse.*` model.

use chrono::{DateTime, Utc};
use serde_json::Value;
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{Cell, EraseMode, Erasure, Event, Row, model};

use super::tables::{
    AGENTS, ASSIGNMENTS, CONVERSATION_MERGES, CONVERSATIONS, CUSTOMERS, INBOXES, ITEMS, MERGES,
    TEAMS, TOPICS,
};
use crate::json::{Doc, Json};

/// Which export file a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `agents.jsonl`.
    Agents,
    /// `topics.jsonl`.
    Topics,
    /// `customers.jsonl`.
    Customers,
    /// `conversation_items.jsonl`.
    Items,
}

impl FileKind {
    /// In the order a job's files are loaded: entities before the items that name them.
    pub const ALL: [FileKind; 4] = [
        FileKind::Agents,
        FileKind::Topics,
        FileKind::Customers,
        FileKind::Items,
    ];

    /// The file name.
    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Agents => "agents.jsonl",
            FileKind::Topics => "topics.jsonl",
            FileKind::Customers => "customers.jsonl",
            FileKind::Items => "conversation_items.jsonl",
        }
    }

    /// From a file name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.file_name() == name)
    }
}

/// The export job a row came from.
#[derive(Debug, Clone)]
pub struct JobTag {
    /// Job id (or folder name for `load --dir`).
    pub id: String,
    /// Job `updatedAt`, when known.
    pub updated_at: Option<DateTime<Utc>>,
}

fn s<D: Doc>(v: &D, k: &str) -> Cell {
    let Some(x) = v.field(k) else {
        return Cell::Null;
    };
    if let Some(t) = x.text() {
        Cell::Text(t.to_owned())
    } else {
        x.number().map_or(Cell::Null, |n| Cell::Text(n.to_string()))
    }
}

fn ts<D: Doc>(v: &D, k: &str) -> Cell {
    v.field(k)
        .and_then(D::text)
        .and_then(parse_timestamp)
        .map_or(Cell::Null, Cell::Timestamp)
}

fn js<D: Doc>(v: &D, k: &str) -> Cell {
    v.field(k).map_or(Cell::Null, |x| Cell::from(x.to_value()))
}

fn int<D: Doc>(v: &D, k: &str) -> Cell {
    let Some(x) = v.field(k) else {
        return Cell::Null;
    };
    if let Some(n) = x.number() {
        n.as_i64().map_or(Cell::Null, Cell::Integer)
    } else {
        // The spec's own example sends `recordingDuration: '100'`.
        x.text()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .map_or(Cell::Null, Cell::Integer)
    }
}

/// A string field that is required.
fn req<'a, D: Doc>(v: &'a D, k: &str) -> Result<&'a str, String> {
    v.field(k)
        .and_then(D::text)
        .filter(|x| !x.is_empty())
        .ok_or_else(|| format!("missing `{k}`"))
}

/// The normalised channel of a content type, if it is a message.
pub fn channel_of(content_type: &str) -> Option<&'static str> {
    Some(match content_type {
        "CHAT_MESSAGE" => "chat",
        "EMAIL" => "email",
        "SMS" => "sms",
        "PHONE_CALL" | "VOICEMAIL" | "VOICE_AI_MESSAGE" => "voice",
        "FACEBOOK_MESSAGE" | "INSTAGRAM_DIRECT" | "TWITTER" => "social",
        "WHATSAPP" => "messaging",
        _ => return None,
    })
}

/// A sighting of a conversation's earliest message: its time and normalised channel.
pub(super) type First = (DateTime<Utc>, &'static str);

/// The earlier of two sightings (at the same time, the channel first by name), so that what a
/// conversation's earliest message is does not depend on the order its items were read in.
pub(super) fn earlier(a: Option<First>, b: Option<First>) -> Option<First> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// An item (export line or REST) as a sighting of its conversation's earliest message: its
/// `timestamp` and channel, when it is a message.
pub(super) fn first_of_item<D: Doc>(v: &D) -> Option<First> {
    let channel = v
        .field("content")
        .and_then(|c| c.field("type"))
        .and_then(D::text)
        .and_then(channel_of)?;
    let at = v
        .field("timestamp")
        .and_then(D::text)
        .and_then(parse_timestamp)?;
    Some((at, channel))
}

/// The model's sender role of an initiator.
pub fn sender_role(initiator_type: &str, initiator_id: &str) -> &'static str {
    match initiator_type {
        "CUSTOMER" | "EXTERNAL" => "customer",
        "AGENT" | "INTERNAL" => "agent",
        "AUTOMATION" | "API" => "bot",
        "SYSTEM" if initiator_id.starts_with("SIDEKICK") => "bot",
        _ => "system",
    }
}

/// One conversation item → its `gladly.conversation_items` row and, for messages in a
/// conversation, its `talkhouse.model_messages` row.
///
/// # Errors
/// When the line is not an item (no `id`, no `content.type`): the caller quarantines it.
pub fn item_rows<D: Doc>(v: &D, raw: &str, job: Option<&JobTag>) -> Result<Vec<Row>, String> {
    let id = req(v, "id")?;
    let content = v
        .field("content")
        .filter(|c| c.is_object())
        .ok_or("missing `content`")?;
    let ct = req(content, "type").map_err(|_| "missing `content.type`".to_owned())?;
    let init = v.field("initiator");
    let resp = v.field("responder");
    let party = |p: Option<&D>, k: &str| p.map_or(Cell::Null, |p| s(p, k));
    let body = match ct {
        "CONVERSATION_NOTE" | "CUSTOMER_ACTIVITY" | "VOICE_AI_MESSAGE" => s(content, "body"),
        "PHONE_CALL" | "VOICEMAIL" => Cell::Null,
        _ => s(content, "content"),
    };
    let to = content
        .field("to")
        .and_then(|x| {
            x.text().map(str::to_owned).or_else(|| {
                x.elements()
                    .map(|a| a.iter().filter_map(D::text).collect::<Vec<_>>().join(", "))
            })
        })
        .map_or(Cell::Null, Cell::Text);
    let status = match ct {
        "CONVERSATION_STATUS_CHANGE" | "VOICE_AI_MESSAGE" => s(content, "status"),
        _ => Cell::Null,
    };
    let mut row = Row::new(ITEMS)
        .set("id", id)
        .set("conversation_id", s(v, "conversationId"))
        .set("customer_id", s(v, "customerId"))
        .set("session_id", s(v, "sessionId"))
        .set("timestamp", ts(v, "timestamp"))
        .set("initiator_id", party(init, "id"))
        .set("initiator_type", party(init, "type"))
        .set("responder_id", party(resp, "id"))
        .set("responder_type", party(resp, "type"))
        .set("content_type", ct)
        .set("message_type", s(content, "messageType"))
        .set(
            "chat_session_id",
            if ct == "CHAT_MESSAGE" {
                s(content, "sessionId")
            } else {
                Cell::Null
            },
        )
        .set("body", body.clone())
        .set("subject", s(content, "subject"))
        .set("title", s(content, "title"))
        .set("from_address", s(content, "from"))
        .set("to_address", to)
        .set("cc", js(content, "cc"))
        .set("bcc", js(content, "bcc"))
        .set("status", status)
        .set("activity_type", s(content, "activityType"))
        .set("source_name", s(content, "sourceName"))
        .set(
            "link_url",
            content.field("link").map_or(Cell::Null, |l| s(l, "url")),
        )
        .set("page_id", s(content, "pageId"))
        .set("user_id", s(content, "userId"))
        .set("started_at", ts(content, "startedAt"))
        .set("answered_at", ts(content, "answeredAt"))
        .set("completed_at", ts(content, "completedAt"))
        .set("occurred_at", ts(content, "occurredAt"))
        .set("received_at", ts(content, "receivedAt"))
        .set("recording_status", s(content, "recordingStatus"))
        .set("recording_url", s(content, "recordingUrl"))
        .set("recording_duration", int(content, "recordingDuration"))
        .set("recording_summary", js(content, "recordingSummary"))
        .set("added_topic_ids", js(content, "addedTopicIds"))
        .set("removed_topic_ids", js(content, "removedTopicIds"))
        .set("attachments", js(content, "attachments"))
        .set("message_data", js(content, "messageData"))
        .set("customer_number", s(content, "customerNumber"))
        .set("company_number", s(content, "companyNumber"))
        .with_raw(raw);
    if let Some(j) = job {
        row.put("job_id", j.id.as_str());
        row.put("job_updated_at", j.updated_at);
    }
    let mut rows = vec![row];
    if let (Some(channel), Some(conv)) =
        (channel_of(ct), v.field("conversationId").and_then(D::text))
    {
        let session = content
            .field("sessionId")
            .or_else(|| v.field("sessionId"))
            .and_then(D::text)
            .map_or(Cell::Null, |x| Cell::Text(x.to_owned()));
        let init_type = init
            .and_then(|p| p.field("type"))
            .and_then(D::text)
            .unwrap_or("");
        let init_id = init
            .and_then(|p| p.field("id"))
            .and_then(D::text)
            .unwrap_or("");
        rows.push(
            Row::new(model::MESSAGES)
                .set("message_id", id)
                .set("conversation_id", conv)
                .set("session_id", session)
                .set("sender_role", sender_role(init_type, init_id))
                .set("sender_id", party(init, "id"))
                .set("channel", channel)
                .set("sent_at", ts(v, "timestamp"))
                .set("body", body),
        );
    }
    Ok(rows)
}

/// A `customers.jsonl` line (export shape: `emailAddresses`, `phoneNumbers`).
///
/// # Errors
/// When it has no `id`.
pub fn customer_export_row<D: Doc>(v: &D, raw: &str) -> Result<Row, String> {
    let first = |k: &str| {
        v.field(k)
            .and_then(D::elements)
            .and_then(|a| a.first())
            .and_then(D::text)
            .map(str::to_owned)
    };
    Ok(Row::new(CUSTOMERS)
        .set("id", req(v, "id")?)
        .set("name", s(v, "name"))
        .set("address", s(v, "address"))
        .set("email", first("emailAddresses"))
        .set("phone", first("phoneNumbers"))
        .set("emails", js(v, "emailAddresses"))
        .set("phones", js(v, "phoneNumbers"))
        .set("external_customer_id", s(v, "externalCustomerId"))
        .set("external_customer_ids", js(v, "externalCustomerIds"))
        .set("origin", "export")
        .with_raw(raw))
}

/// A customer profile from `GET /customer-profiles/{id}`.
///
/// # Errors
/// When it has no `id`.
pub fn customer_rest_row(v: &Value) -> Result<Row, String> {
    let primary = |k: &str, field: &str| -> Cell {
        let list = v.get(k).and_then(Value::as_array);
        let pick = list.and_then(|a| {
            a.iter()
                .find(|e| e.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| a.first())
        });
        pick.map_or(Cell::Null, |e| s(e, field))
    };
    Ok(Row::new(CUSTOMERS)
        .set("id", req(v, "id")?)
        .set("name", s(v, "name"))
        .set("address", s(v, "address"))
        .set("image", s(v, "image"))
        .set("email", primary("emails", "original"))
        .set("phone", primary("phones", "normalized"))
        .set("emails", js(v, "emails"))
        .set("phones", js(v, "phones"))
        .set("external_customer_id", s(v, "externalCustomerId"))
        .set("external_customer_ids", js(v, "externalCustomerIds"))
        .set("custom_attributes", js(v, "customAttributes"))
        .set("created_at", ts(v, "createdAt"))
        .set("updated_at", ts(v, "updatedAt"))
        .set("origin", "api")
        .with_raw(v.to_string()))
}

/// An agent (file line or REST).
///
/// # Errors
/// When it has no `id`.
pub fn agent_row<D: Doc>(v: &D, raw: &str) -> Result<Row, String> {
    Ok(Row::new(AGENTS)
        .set("id", req(v, "id")?)
        .set("name", s(v, "name"))
        .set("email_address", s(v, "emailAddress"))
        .with_raw(raw))
}

/// A topic (file line or REST).
///
/// # Errors
/// When it has no `id`.
pub fn topic_row<D: Doc>(v: &D, raw: &str) -> Result<Row, String> {
    Ok(Row::new(TOPICS)
        .set("id", req(v, "id")?)
        .set("name", s(v, "name"))
        .set("disabled", v.field("disabled").and_then(D::boolean))
        .set("parent_id", s(v, "parentId"))
        .with_raw(raw))
}

/// An inbox.
///
/// # Errors
/// When it has no `id`.
pub fn inbox_row(v: &Value) -> Result<Row, String> {
    Ok(Row::new(INBOXES)
        .set("id", req(v, "id")?)
        .set("name", s(v, "name"))
        .set("disabled", v.get("disabled").and_then(Value::as_bool))
        .with_raw(v.to_string()))
}

/// A team, with the ids of its agents (`agentIds`; an agent may be in several teams).
///
/// # Errors
/// When it has no `id`, or `agentIds` is there but not a list.
pub fn team_row(v: &Value) -> Result<Row, String> {
    let agent_ids = match v.get("agentIds") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(a @ Value::Array(_)) => a.clone(),
        Some(other) => return Err(format!("agentIds is not a list: {other}")),
    };
    Ok(Row::new(TEAMS)
        .set("id", req(v, "id")?)
        .set("name", s(v, "name"))
        .set("description", s(v, "description"))
        .set("agent_ids", Cell::Json(agent_ids))
        .with_raw(v.to_string()))
}

/// One line of an export file → the line as read (borrowing from it) and its rows.
///
/// # Errors
/// When the line is not JSON or lacks what identifies it.
pub fn line_rows<'a>(
    kind: FileKind,
    line: &'a str,
    job: Option<&JobTag>,
) -> Result<(Json<'a>, Vec<Row>), String> {
    line_rows_as(kind, line, job)
}

/// [`line_rows`], reading the line into any document type (`serde_json::Value` too: the fuzz
/// target checks that both give the same rows).
///
/// # Errors
/// As [`line_rows`].
pub fn line_rows_as<'a, D: Doc + serde::Deserialize<'a>>(
    kind: FileKind,
    line: &'a str,
    job: Option<&JobTag>,
) -> Result<(D, Vec<Row>), String> {
    let v: D = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    let rows = match kind {
        FileKind::Agents => vec![agent_row(&v, line)?],
        FileKind::Topics => vec![topic_row(&v, line)?],
        FileKind::Customers => vec![customer_export_row(&v, line)?],
        FileKind::Items => item_rows(&v, line, job)?,
    };
    Ok((v, rows))
}

/// A conversation from `GET /conversations/{id}` → its row, the assignment it shows and its
/// model row. `channel` is the normalised channel of its earliest message known to us.
///
/// # Errors
/// When it has no `id`.
pub fn conversation_rows(
    v: &Value,
    channel: Option<&str>,
    seen_at: Option<DateTime<Utc>>,
) -> Result<Vec<Row>, String> {
    let id = req(v, "id")?;
    let row = Row::new(CONVERSATIONS)
        .set("id", id)
        .set("customer_id", s(v, "customerId"))
        .set("inbox_id", s(v, "inboxId"))
        .set("agent_id", s(v, "agentId"))
        .set("status", s(v, "status"))
        .set("topic_ids", js(v, "topicIds"))
        .set("custom_attributes", js(v, "customAttributes"))
        .set("created_at", ts(v, "createdAt"))
        .set("closed_at", ts(v, "closedAt"))
        .with_raw(v.to_string());
    Ok(conversation_with_derived(row, channel, seen_at))
}

/// The `status` the conversation report gives a conversation that was merged away: such a
/// conversation is read over REST (its 404 tells the merge).
pub const REPORT_MERGED: &str = "MERGED";

/// A conversation as `ConversationExportReport` computed it (a `gladly.conversation_report`
/// row) → the same rows as [`conversation_rows`]: its row (customer, current inbox and agent,
/// status, created and last closed, at the report's precision), the assignment it shows and
/// its model row. The report carries no topic ids nor custom attributes: those columns stay
/// NULL (the report's `topics` has the names). `_raw` holds the REST field names of what the
/// row says (`id`, `customerId`, `inboxId`, `agentId`, `status`, `createdAt`, `closedAt`) and
/// the report row itself under `conversationExportReport`.
///
/// # Errors
/// When it has no `conversation_id`.
pub fn conversation_report_rows(
    report: &Row,
    channel: Option<&str>,
    seen_at: Option<DateTime<Utc>>,
) -> Result<Vec<Row>, String> {
    let text = |k: &str| {
        report
            .get(k)
            .and_then(Cell::as_str)
            .filter(|x| !x.is_empty())
    };
    let cell = |k: &str| report.get(k).cloned().unwrap_or(Cell::Null);
    let stamp = |k: &str| match report.get(k) {
        Some(Cell::Timestamp(t)) => {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        _ => Value::Null,
    };
    let id = text("conversation_id").ok_or("missing `conversation_id`")?;
    let raw = serde_json::json!({
        "id": id,
        "customerId": text("customer_id"),
        "inboxId": text("assigned_inbox_id_current"),
        "agentId": text("assigned_agent_id_current"),
        "status": text("status"),
        "createdAt": stamp("created_at"),
        "closedAt": stamp("last_closed_at"),
        "conversationExportReport": report
            .raw
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok()),
    });
    let row = Row::new(CONVERSATIONS)
        .set("id", id)
        .set("customer_id", cell("customer_id"))
        .set("inbox_id", cell("assigned_inbox_id_current"))
        .set("agent_id", cell("assigned_agent_id_current"))
        .set("status", cell("status"))
        .set("created_at", cell("created_at"))
        .set("closed_at", cell("last_closed_at"))
        .with_raw(raw.to_string());
    Ok(conversation_with_derived(row, channel, seen_at))
}

/// A `gladly.conversations` row, then the assignment it shows (when it names an inbox) and its
/// model row, both read from its cells.
fn conversation_with_derived(
    conv: Row,
    channel: Option<&str>,
    seen_at: Option<DateTime<Utc>>,
) -> Vec<Row> {
    let text = |k: &str| conv.get(k).and_then(Cell::as_str).map(str::to_owned);
    let cell = |k: &str| conv.get(k).cloned().unwrap_or(Cell::Null);
    let id = text("id").unwrap_or_default();
    let mut rows = Vec::with_capacity(3);
    if let Some(inbox) = text("inbox_id") {
        let agent = text("agent_id").unwrap_or_default();
        let raw = serde_json::json!({"conversationId": id, "inboxId": inbox, "agentId": agent})
            .to_string();
        rows.push(
            Row::new(ASSIGNMENTS)
                .set("conversation_id", id.as_str())
                .set("inbox_id", inbox)
                .set("agent_id", agent)
                .set("seen_at", seen_at)
                .with_raw(raw),
        );
    }
    rows.push(
        Row::new(model::CONVERSATIONS)
            .set("conversation_id", id.as_str())
            .set("customer_id", cell("customer_id"))
            .set("channel", channel.map(str::to_owned))
            .set("started_at", cell("created_at"))
            .set("ended_at", cell("closed_at"))
            .set("status", text("status").map(|x| x.to_lowercase())),
    );
    rows.insert(0, conv);
    rows
}

/// What a merge retired an id of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    /// A customer profile (`gladly.customer_merges`).
    Customer,
    /// A conversation (`gladly.conversation_merges`).
    Conversation,
}

impl Merged {
    /// The vendor table of this kind of merge.
    pub fn table(self) -> talkhouse_model::TableRef {
        match self {
            Merged::Customer => MERGES,
            Merged::Conversation => CONVERSATION_MERGES,
        }
    }

    /// The `entity` of its `talkhouse.model_id_merges` rows (one of
    /// [`model::MERGED_ENTITIES`]).
    pub fn entity(self) -> &'static str {
        match self {
            Merged::Customer => "customer",
            Merged::Conversation => "conversation",
        }
    }
}

/// A merge `old → new` seen at `seen_at`: its vendor row and its `talkhouse.model_id_merges`
/// row, one group (they land in the same commit).
pub fn merge_rows(what: Merged, old: &str, new: &str, seen_at: Option<DateTime<Utc>>) -> Vec<Row> {
    vec![
        Row::new(what.table())
            .set("old_id", old)
            .set("new_id", new)
            .set("seen_at", seen_at)
            .with_raw(serde_json::json!({"old": old, "new": new}).to_string()),
        Row::new(model::ID_MERGES)
            .set("entity", what.entity())
            .set("old_id", old)
            .set("new_id", new)
            .set("seen_at", seen_at),
    ]
}

fn erase(
    table: talkhouse_model::TableRef,
    column: &'static str,
    value: &str,
    mode: EraseMode,
) -> Event {
    Event::Erase(Erasure {
        table,
        column,
        value: Cell::Text(value.to_owned()),
        mode,
    })
}

/// A customer is gone (404): its profile, items and conversations, vendor and model rows.
pub fn erase_customer(id: &str, mode: EraseMode) -> Vec<Event> {
    vec![
        erase(CUSTOMERS, "id", id, mode),
        erase(ITEMS, "customer_id", id, mode),
        erase(CONVERSATIONS, "customer_id", id, mode),
        erase(model::CONVERSATIONS, "customer_id", id, mode),
    ]
}

/// A conversation is gone (404): its row, items and assignments, vendor and model rows.
pub fn erase_conversation(id: &str, mode: EraseMode) -> Vec<Event> {
    vec![
        erase(CONVERSATIONS, "id", id, mode),
        erase(ITEMS, "conversation_id", id, mode),
        erase(ASSIGNMENTS, "conversation_id", id, mode),
        erase(model::CONVERSATIONS, "conversation_id", id, mode),
        erase(model::MESSAGES, "conversation_id", id, mode),
    ]
}

/// A customer merged away: the old profile row is marked (`_deleted_at`), never redacted (the
/// person lives on under the new id).
pub fn mark_merged(old: &str) -> Event {
    erase(CUSTOMERS, "id", old, EraseMode::Keep)
}

/// A conversation merged away (`old` answers 404, its items live on under `new` with new ids):
/// the merge rows, and the old conversation's rows marked (`_deleted_at`), never redacted nor
/// removed whatever `on_vendor_delete` says, since nothing was deleted. Its model rows go (the
/// model drops erased rows), so its messages are not counted beside their new ids.
pub fn conversation_merged(old: &str, new: &str, seen_at: Option<DateTime<Utc>>) -> Vec<Event> {
    let mut out = vec![Event::Records(merge_rows(
        Merged::Conversation,
        old,
        new,
        seen_at,
    ))];
    out.extend(erase_conversation(old, EraseMode::Keep));
    out
}

/// The new id in a 301 `moved` answer: `errors[].meta.new` in any of the error shapes Gladly
/// uses (array, object, bare array), else the `Location` header's last segment.
pub fn moved_to(body: &[u8], location: Option<&str>) -> Option<String> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let errors: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => match o.get("errors") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(e @ Value::Object(_)) => vec![e],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    errors
        .iter()
        .find_map(|e| {
            e.get("meta")
                .and_then(|m| m.get("new"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| {
            location
                .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_channels() {
        assert_eq!(sender_role("SYSTEM", "SIDEKICK_V2"), "bot");
        assert_eq!(sender_role("SYSTEM", "x"), "system");
        assert_eq!(sender_role("CUSTOMER", "x"), "customer");
        assert_eq!(channel_of("WHATSAPP"), Some("messaging"));
        assert_eq!(channel_of("TOPIC_CHANGE"), None);
    }

    #[test]
    fn merge_rows_name_the_model_entities_and_land_together() {
        for what in [Merged::Customer, Merged::Conversation] {
            assert!(model::MERGED_ENTITIES.contains(&what.entity()));
            let rows = merge_rows(what, "a", "b", None);
            assert_eq!(rows.len(), 2);
            assert_eq!(rows[0].table, what.table());
            assert_eq!(rows[1].table, model::ID_MERGES);
            assert_eq!(rows[1].get("old_id"), Some(&Cell::Text("a".into())));
            assert_eq!(rows[1].get("new_id"), Some(&Cell::Text("b".into())));
        }
        let events = conversation_merged("old", "new", None);
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Erase(Erasure { table, column: "conversation_id", mode: EraseMode::Keep, .. })
                if *table == ITEMS
        )));
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Erase(Erasure { table, .. }) if *table == model::MESSAGES
        )));
    }

    #[test]
    fn a_report_row_makes_the_rows_a_get_makes() {
        let t = parse_timestamp("2026-03-01T10:00:00Z").expect("a time");
        let v = serde_json::json!({"id": "c1", "customerId": "u1", "inboxId": "i1",
            "agentId": "a1", "status": "CLOSED", "createdAt": "2026-03-01T10:00:00Z",
            "closedAt": "2026-03-01T11:00:00Z", "topicIds": ["t1"]});
        let rest = conversation_rows(&v, Some("chat"), Some(t)).expect("rows");
        let report = Row::new(crate::gladly::CONVERSATION_REPORT)
            .set("conversation_id", "c1")
            .set("customer_id", "u1")
            .set("assigned_inbox_id_current", "i1")
            .set("assigned_agent_id_current", "a1")
            .set("status", "CLOSED")
            .set("created_at", t)
            .set("last_closed_at", t + chrono::Duration::hours(1))
            .with_raw(r#"{"Conversation ID":"c1"}"#);
        let got = conversation_report_rows(&report, Some("chat"), Some(t)).expect("rows");
        assert_eq!(got.len(), 3);
        assert_eq!(got.len(), rest.len());
        for (a, b) in got.iter().zip(&rest) {
            assert_eq!(a.table, b.table);
            if a.table == CONVERSATIONS {
                for col in [
                    "id",
                    "customer_id",
                    "inbox_id",
                    "agent_id",
                    "status",
                    "created_at",
                    "closed_at",
                ] {
                    assert_eq!(a.get(col), b.get(col), "{col}");
                }
                assert_eq!(a.get("topic_ids"), None, "the report has no topic ids");
                let raw: Value =
                    serde_json::from_str(a.raw.as_deref().unwrap_or("")).expect("json");
                assert_eq!(raw["inboxId"], "i1");
                assert_eq!(raw["closedAt"], "2026-03-01T11:00:00.000Z");
                assert_eq!(raw["conversationExportReport"]["Conversation ID"], "c1");
            } else {
                assert_eq!(a, b);
            }
        }
        assert!(conversation_report_rows(&Row::new(CONVERSATIONS), None, None).is_err());
    }

    #[test]
    fn moved_in_every_error_shape() {
        let meta = r#"{"code":"moved","meta":{"old":"a","new":"b"}}"#;
        for body in [
            format!(r#"{{"errors":[{meta}]}}"#),
            format!(r#"{{"errors":{meta}}}"#),
            format!("[{meta}]"),
        ] {
            assert_eq!(
                moved_to(body.as_bytes(), None).as_deref(),
                Some("b"),
                "{body}"
            );
        }
        assert_eq!(
            moved_to(b"", Some("/api/v1/customer-profiles/zz")).as_deref(),
            Some("zz")
        );
    }

    #[test]
    fn unknown_content_type_keeps_the_raw_record() {
        let line = r#"{"id":"i1","conversationId":"c1","customerId":"u1","timestamp":"2024-09-15T10:00:01.250Z","initiator":{"id":"a","type":"AGENT"},"content":{"type":"VIDEO_CALL","x":1}}"#;
        let (_, rows) = line_rows(FileKind::Items, line, None).expect("an item");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].raw.as_deref(), Some(line));
        assert!(line_rows(FileKind::Items, "{\"id\":", None).is_err());
    }

    #[test]
    fn an_item_maps_to_the_same_rows_from_its_line_and_from_a_value() {
        let lines = [
            // Every column the mapping reads, lists and numbers where strings may be.
            r#"{"id":"i1","conversationId":"c1","customerId":"u1","sessionId":"s0","timestamp":"2024-09-15T10:00:01.250Z","initiator":{"id":"a","type":"AGENT"},"responder":{"id":"u1","type":"CUSTOMER"},"content":{"type":"EMAIL","content":"hi \"there\"\n","subject":"S","from":"a@x","to":["b@x",7,"c@x"],"cc":["d@x"],"bcc":null,"messageType":"X","attachments":[{"n":1.5}],"messageData":{"k":[1,{"z":null}]}}}"#,
            r#"{"id":"i2","conversationId":"c1","timestamp":"2024-09-15T10:00:02Z","initiator":{"id":"SIDEKICK-1","type":"SYSTEM"},"content":{"type":"CHAT_MESSAGE","content":"x","sessionId":"s1","to":"one@x"}}"#,
            r#"{"id":"i3","conversationId":12,"customerId":3.25,"timestamp":"bad","initiator":"nobody","responder":[1],"content":{"type":"PHONE_CALL","startedAt":"2024-09-15T10:00:00Z","answeredAt":null,"recordingDuration":"100","recordingSummary":{"a":"b"},"link":{"url":"https://x"},"addedTopicIds":["t"],"customerNumber":5}}"#,
            r#"{"id":"i4","conversationId":"c2","sessionId":"top","content":{"type":"SMS","content":"a","sessionId":3,"recordingDuration":1e3,"to":{"x":1}}}"#,
            r#"{"id":"i5","conversationId":"c2","content":{"type":"CONVERSATION_STATUS_CHANGE","status":"CLOSED","recordingDuration":-7}}"#,
            // A repeated key counts with its last value in both.
            r#"{"id":"first","content":{"type":"SMS"},"id":"i6","conversationId":"c3","content":{"type":"VOICE_AI_MESSAGE","body":"b","status":"S","type":"VOICE_AI_MESSAGE"}}"#,
            r#"{"id":"i7","content":{"type":"VIDEO_CALL"},"unknown":{"deep":[[[{"x":1}]]]}}"#,
            // Rejected lines, with the same error.
            r#"{"id":"","content":{"type":"SMS"}}"#,
            r#"{"id":"i8","content":"SMS"}"#,
            r#"{"id":"i9","content":{"type":""}}"#,
            r#"{"id":7,"content":{"type":"SMS"}}"#,
            r#"["id","i10"]"#,
            r#"{"id":"i11","content":{"type":"SMS"}"#,
        ];
        let job = JobTag {
            id: "j".into(),
            updated_at: None,
        };
        for line in lines {
            assert!(
                super::super::inputs::item_line_agrees(line.as_bytes()),
                "{line}"
            );
            let read = line_rows(FileKind::Items, line, Some(&job)).map(|(_, rows)| rows);
            let from_value =
                line_rows_as::<Value>(FileKind::Items, line, Some(&job)).map(|(_, rows)| rows);
            assert_eq!(read, from_value, "{line}");
        }
        let (_, rows) = line_rows(FileKind::Items, lines[0], None).expect("an item");
        assert_eq!(
            rows[0].get("to_address").and_then(Cell::as_str),
            Some("b@x, c@x")
        );
        let (_, rows) = line_rows(FileKind::Items, lines[2], None).expect("an item");
        assert_eq!(
            rows[0].get("conversation_id").and_then(Cell::as_str),
            Some("12")
        );
        assert_eq!(rows[0].get("recording_duration"), Some(&Cell::Integer(100)));
        let (_, rows) = line_rows(FileKind::Items, lines[5], None).expect("an item");
        assert_eq!(rows[0].get("id").and_then(Cell::as_str), Some("i6"));
        assert_eq!(rows[1].get("body").and_then(Cell::as_str), Some("b"));
    }
}
