//! Giosg records → rows of the `giosg.*` tables and of the `talkhouse.*` model.

use std::collections::HashMap;

use serde_json::Value;
use talkhouse_model::time::parse_timestamp_value;
use talkhouse_model::{Cell, Quarantined, Row, model};

use super::crypto::{ChatKeys, CryptoError};
use super::tables::{CHATS, MEMBERSHIPS, MESSAGES, TAGS, VARIABLES};

/// Message types that only mark a status change; the model leaves them out.
pub const STATUS_TYPES: [&str; 5] = [
    "join",
    "leave",
    "shoppingcart_locked",
    "action",
    "call_ended",
];

fn text(v: &Value, k: &str) -> Cell {
    match v.get(k) {
        Some(Value::String(s)) => Cell::Text(s.clone()),
        Some(Value::Number(n)) => Cell::Text(n.to_string()),
        Some(Value::Bool(b)) => Cell::Text(b.to_string()),
        _ => Cell::Null,
    }
}

fn ts(v: &Value, k: &str) -> Cell {
    v.get(k)
        .and_then(parse_timestamp_value)
        .map_or(Cell::Null, Cell::Timestamp)
}

fn int(v: &Value, k: &str) -> Cell {
    match v.get(k) {
        Some(Value::Number(n)) => n
            .as_i64()
            .map_or_else(|| n.as_f64().map_or(Cell::Null, Cell::Float), Cell::Integer),
        Some(Value::String(s)) => s.parse::<i64>().map_or(Cell::Null, Cell::Integer),
        _ => Cell::Null,
    }
}

fn float(v: &Value, k: &str) -> Cell {
    match v.get(k) {
        Some(Value::Number(n)) => n.as_f64().map_or(Cell::Null, Cell::Float),
        Some(Value::String(s)) => s.parse::<f64>().map_or(Cell::Null, Cell::Float),
        _ => Cell::Null,
    }
}

fn boolean(v: &Value, k: &str) -> Cell {
    match v.get(k) {
        Some(Value::Bool(b)) => Cell::Boolean(*b),
        Some(Value::String(s)) => match s.as_str() {
            "true" | "True" => Cell::Boolean(true),
            "false" | "False" => Cell::Boolean(false),
            _ => Cell::Null,
        },
        _ => Cell::Null,
    }
}

fn json(v: &Value, k: &str) -> Cell {
    v.get(k).cloned().map_or(Cell::Null, Cell::from)
}

/// A string field.
pub fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The chat row.
pub fn chat_row(c: &Value, visitor_id: Option<&str>) -> Row {
    let mut row = Row::new(CHATS).with_raw(c.to_string());
    for k in [
        "id",
        "chat_type",
        "room_id",
        "room_organization_id",
        "room_name",
        "encrypted_symmetric_key",
        "autosuggest_url",
        "autosuggest_url_title",
        "first_visitor_message_url",
        "first_visitor_message_url_title",
        "legacy_conversation_state",
        "legacy_room_id",
    ] {
        row.put(k_static(k), text(c, k));
    }
    for k in ["created_at", "updated_at", "ended_at", "waiting_started_at"] {
        row.put(k_static(k), ts(c, k));
    }
    for k in [
        "tag_count",
        "message_count",
        "user_message_count",
        "visitor_message_count",
        "present_participant_count",
        "present_user_participant_count",
        "present_visitor_participant_count",
        "member_count",
        "user_member_count",
        "visitor_member_count",
    ] {
        row.put(k_static(k), int(c, k));
    }
    for k in [
        "has_messages",
        "has_user_messages",
        "has_visitor_messages",
        "is_private",
        "is_real_conversation",
        "is_autosuggested",
        "is_waiting",
        "is_pending",
        "is_ended",
        "is_encrypted",
    ] {
        row.put(k_static(k), boolean(c, k));
    }
    for k in ["visitor_wait_time", "duration", "active_duration"] {
        row.put(k_static(k), float(c, k));
    }
    row.put("visitor_id", Cell::from(visitor_id));
    row
}

/// Column names are `&'static str`: map a field name to the same static name.
fn k_static(k: &str) -> &'static str {
    const ALL: &[&str] = &[
        "id",
        "chat_type",
        "room_id",
        "room_organization_id",
        "room_name",
        "encrypted_symmetric_key",
        "autosuggest_url",
        "autosuggest_url_title",
        "first_visitor_message_url",
        "first_visitor_message_url_title",
        "legacy_conversation_state",
        "legacy_room_id",
        "created_at",
        "updated_at",
        "ended_at",
        "waiting_started_at",
        "tag_count",
        "message_count",
        "user_message_count",
        "visitor_message_count",
        "present_participant_count",
        "present_user_participant_count",
        "present_visitor_participant_count",
        "member_count",
        "user_member_count",
        "visitor_member_count",
        "has_messages",
        "has_user_messages",
        "has_visitor_messages",
        "is_private",
        "is_real_conversation",
        "is_autosuggested",
        "is_waiting",
        "is_pending",
        "is_ended",
        "is_encrypted",
        "visitor_wait_time",
        "duration",
        "active_duration",
        "chat_id",
        "type",
        "sender_type",
        "sender_id",
        "sender_name",
        "sender_public_name",
        "sender_avatar",
        "sensitive_data_purged_at",
        "selected_reply_suggestion_id",
        "selected_reply_suggestion",
        "attachments",
        "attachment_template",
        "response_to_message_id",
        "response_to_attachment_id",
        "response_to_attachment",
        "response_to_action_id",
        "response_to_action",
        "response_text",
        "response_value",
        "member_id",
        "member_type",
        "member_name",
        "member_public_name",
        "member_avatar",
        "is_participating",
        "is_present",
        "is_bot",
        "composing_status",
        "member_organization_id",
        "legacy_member_id",
        "last_seen_at",
        "unread_message_count",
        "name",
        "hashed_name",
        "visitor_id",
        "key",
        "value",
        "organization_id",
        "session_id",
        "is_signed",
        "encrypted_value",
    ];
    ALL.iter().copied().find(|c| *c == k).unwrap_or("_unknown")
}

/// How the messages of one chat can be decrypted.
#[derive(Debug)]
pub enum ChatKeyState {
    /// The chat is not encrypted (or carries no key).
    Plain,
    /// Encrypted, and no private key is configured.
    NoPrivateKey,
    /// The unwrapped keys.
    Keys(ChatKeys),
    /// Unwrapping failed (wrong key, damaged key document).
    Failed(CryptoError),
}

/// What one message became.
#[derive(Debug)]
pub enum MessageOutcome {
    /// Its vendor row and, unless it only marks a status, its model row. `undecrypted` is set
    /// when it is stored without text because no key is configured.
    Rows {
        /// Rows.
        rows: Vec<Row>,
        /// Stored with `message` null for want of a key.
        undecrypted: bool,
    },
    /// It cannot be decrypted (wrong key, bad tag) or has no id.
    Quarantine(Quarantined),
}

/// Maps `sender_type` (and the sender's `is_bot`) to the model's sender role.
pub fn sender_role(sender_type: Option<&str>, is_bot: bool) -> &'static str {
    match sender_type {
        Some("visitor") => "customer",
        Some("user") if is_bot => "bot",
        Some("user") => "agent",
        _ => "system",
    }
}

/// One message's rows: decrypts when the server no longer serves plaintext.
pub fn message_rows(
    m: &Value,
    chat_id: &str,
    keys: &ChatKeyState,
    bots: &HashMap<String, bool>,
    location: &str,
) -> MessageOutcome {
    let Some(id) = str_field(m, "id") else {
        return MessageOutcome::Quarantine(Quarantined {
            location: location.to_owned(),
            error: "message without an id".into(),
            payload: m.to_string(),
        });
    };
    let mut plaintext = str_field(m, "message").map(str::to_owned);
    let mut decrypted = false;
    let mut undecrypted = false;
    if plaintext.is_none()
        && let Some(ct) = str_field(m, "encrypted_message")
    {
        {
            match keys {
                ChatKeyState::Keys(k) => match k.open(ct) {
                    Ok(t) => {
                        plaintext = Some(t);
                        decrypted = true;
                    }
                    Err(e) => {
                        return MessageOutcome::Quarantine(Quarantined {
                            location: location.to_owned(),
                            error: format!("message {id} of chat {chat_id}: {e}"),
                            payload: m.to_string(),
                        });
                    }
                },
                ChatKeyState::Failed(e) => {
                    return MessageOutcome::Quarantine(Quarantined {
                        location: location.to_owned(),
                        error: format!("message {id} of chat {chat_id}: {e}"),
                        payload: m.to_string(),
                    });
                }
                ChatKeyState::NoPrivateKey | ChatKeyState::Plain => undecrypted = true,
            }
        }
    }
    let mut row = Row::new(MESSAGES).with_raw(m.to_string());
    for k in [
        "id",
        "room_id",
        "type",
        "sender_type",
        "sender_id",
        "sender_name",
        "sender_public_name",
        "selected_reply_suggestion_id",
        "attachment_template",
        "response_to_message_id",
        "response_to_attachment_id",
        "response_to_action_id",
        "response_text",
        "response_value",
    ] {
        row.put(k_static(k), text(m, k));
    }
    row.put("chat_id", str_field(m, "chat_id").unwrap_or(chat_id));
    for k in [
        "sender_avatar",
        "selected_reply_suggestion",
        "attachments",
        "response_to_attachment",
        "response_to_action",
    ] {
        row.put(k_static(k), json(m, k));
    }
    for k in ["created_at", "sensitive_data_purged_at"] {
        row.put(k_static(k), ts(m, k));
    }
    row.put("is_encrypted", boolean(m, "is_encrypted"));
    row.put("encrypted_message", text(m, "encrypted_message"));
    row.put("message", Cell::from(plaintext.clone()));
    row.put("decrypted", decrypted);
    let mut rows = vec![row];
    let kind = str_field(m, "type").unwrap_or("");
    if !STATUS_TYPES.contains(&kind) {
        let sender_id = str_field(m, "sender_id");
        let is_bot = sender_id
            .and_then(|s| bots.get(s))
            .copied()
            .unwrap_or(false);
        rows.push(
            Row::new(model::MESSAGES)
                .set("message_id", id)
                .set("conversation_id", chat_id)
                .set("session_id", chat_id)
                .set(
                    "sender_role",
                    sender_role(str_field(m, "sender_type"), is_bot),
                )
                .set("sender_id", sender_id)
                .set("channel", "chat")
                .set("sent_at", ts(m, "created_at"))
                .set("body", plaintext),
        );
    }
    MessageOutcome::Rows { rows, undecrypted }
}

/// One membership row.
pub fn membership_row(m: &Value, chat_id: &str) -> Row {
    let mut row = Row::new(MEMBERSHIPS).with_raw(m.to_string());
    for k in [
        "member_id",
        "member_type",
        "member_name",
        "member_public_name",
        "room_id",
        "composing_status",
        "room_organization_id",
        "member_organization_id",
    ] {
        row.put(k_static(k), text(m, k));
    }
    row.put("chat_id", str_field(m, "chat_id").unwrap_or(chat_id));
    row.put("member_avatar", json(m, "member_avatar"));
    for k in ["created_at", "updated_at", "last_seen_at"] {
        row.put(k_static(k), ts(m, k));
    }
    for k in ["is_participating", "is_present", "is_bot"] {
        row.put(k_static(k), boolean(m, k));
    }
    for k in ["message_count", "legacy_member_id", "unread_message_count"] {
        row.put(k_static(k), int(m, k));
    }
    row
}

/// One tag row.
pub fn tag_row(t: &Value, chat_id: &str, room_id: Option<&str>) -> Row {
    Row::new(TAGS)
        .set("chat_id", chat_id)
        .set("name", text(t, "name"))
        .set("hashed_name", text(t, "hashed_name"))
        .set("room_id", str_field(t, "room_id").or(room_id))
        .set("created_at", ts(t, "created_at"))
        .with_raw(t.to_string())
}

/// One visitor variable row, decrypting `encrypted_value` when `value` is null.
pub fn variable_row(
    v: &Value,
    visitor_id: &str,
    chat_id: &str,
    private: Option<&rsa::RsaPrivateKey>,
    location: &str,
) -> Result<(Row, bool), Quarantined> {
    let mut value = text(v, "value");
    let mut decrypted = false;
    let mut undecrypted = false;
    if value.is_null()
        && let Some(ct) = str_field(v, "encrypted_value")
    {
        {
            match (private, str_field(v, "encrypted_symmetric_key")) {
                (Some(key), Some(wrapped)) => {
                    let opened = ChatKeys::unwrap(key, wrapped).and_then(|k| k.open(ct));
                    match opened {
                        Ok(t) => {
                            value = Cell::Text(t);
                            decrypted = true;
                        }
                        Err(e) => {
                            return Err(Quarantined {
                                location: location.to_owned(),
                                error: format!(
                                    "variable {:?} of visitor {visitor_id}: {e}",
                                    str_field(v, "key").unwrap_or("")
                                ),
                                payload: v.to_string(),
                            });
                        }
                    }
                }
                _ => undecrypted = true,
            }
        }
    }
    let mut row = Row::new(VARIABLES).with_raw(v.to_string());
    row.put(
        "visitor_id",
        str_field(v, "visitor_id").unwrap_or(visitor_id),
    );
    for k in [
        "key",
        "room_id",
        "organization_id",
        "session_id",
        "encrypted_value",
        "encrypted_symmetric_key",
    ] {
        row.put(k_static(k), text(v, k));
    }
    row.put("chat_id", str_field(v, "chat_id").unwrap_or(chat_id));
    row.put("value", value);
    for k in ["created_at", "updated_at"] {
        row.put(k_static(k), ts(v, k));
    }
    for k in ["is_signed", "is_encrypted"] {
        row.put(k_static(k), boolean(v, k));
    }
    row.put("decrypted", decrypted);
    Ok((row, undecrypted))
}

/// The model conversation row of a chat.
pub fn conversation_row(
    c: &Value,
    visitor_id: Option<&str>,
    messages: &[Value],
    bots: &HashMap<String, bool>,
) -> Row {
    let ended = c.get("ended_at").is_some_and(|e| !e.is_null())
        || c.get("is_ended") == Some(&Value::Bool(true));
    let waiting = c.get("is_waiting") == Some(&Value::Bool(true));
    let data = |m: &&Value| str_field(m, "type") == Some("msg");
    let from_bot = messages.iter().filter(data).any(|m| {
        str_field(m, "sender_type") == Some("user")
            && str_field(m, "sender_id")
                .and_then(|s| bots.get(s))
                .copied()
                .unwrap_or(false)
    });
    let from_agent = messages.iter().filter(data).any(|m| {
        str_field(m, "sender_type") == Some("user")
            && !str_field(m, "sender_id")
                .and_then(|s| bots.get(s))
                .copied()
                .unwrap_or(false)
    });
    let from_visitor = messages
        .iter()
        .filter(data)
        .any(|m| str_field(m, "sender_type") == Some("visitor"));
    Row::new(model::CONVERSATIONS)
        .set("conversation_id", text(c, "id"))
        .set("customer_id", visitor_id)
        .set("channel", "chat")
        .set("started_at", ts(c, "created_at"))
        .set("ended_at", ts(c, "ended_at"))
        .set(
            "status",
            if ended {
                "ended"
            } else if waiting {
                "waiting"
            } else {
                "open"
            },
        )
        .set("escalated", from_bot && from_agent)
        .set("bot_handled", from_bot && !from_agent && from_visitor)
        .set("updated_at", ts(c, "updated_at"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_roles() {
        assert_eq!(sender_role(Some("visitor"), false), "customer");
        assert_eq!(sender_role(Some("user"), false), "agent");
        assert_eq!(sender_role(Some("user"), true), "bot");
        assert_eq!(sender_role(Some("rule"), false), "system");
        assert_eq!(sender_role(Some("martian"), false), "system");
    }

    #[test]
    fn unknown_types_are_kept_and_plain_text_stays() {
        let m = serde_json::json!({"id": "m1", "type": "hologram", "sender_type": "user", "sender_id": "u1",
            "message": "hi", "created_at": "2024-05-02T08:00:05.400Z", "is_encrypted": false});
        let MessageOutcome::Rows { rows, undecrypted } =
            message_rows(&m, "c1", &ChatKeyState::Plain, &HashMap::new(), "x")
        else {
            panic!("quarantined")
        };
        assert!(!undecrypted);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("type"), Some(&Cell::Text("hologram".into())));
        assert_eq!(rows[1].get("body"), Some(&Cell::Text("hi".into())));
    }
}
