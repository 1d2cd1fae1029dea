//! Ada records → rows of `ada.*` and of the `talkhouse.*` model.

use chrono::{DateTime, Utc};
use serde_json::Value;
use talkhouse_model::time::parse_timestamp_value;
use talkhouse_model::{Cell, Row, model};

use super::tables::{CONVERSATIONS, MESSAGES};

/// Why a record was quarantined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a JSON object.
    #[error("record is not a JSON object")]
    NotAnObject,
    /// `_id` missing or not a string.
    #[error("record has no string `_id`")]
    NoId,
    /// The cursor field is missing or not a timestamp.
    #[error("`{field}` is missing or not a timestamp")]
    BadTimestamp {
        /// The field.
        field: &'static str,
    },
}

/// A mapped record: its id, the cursor timestamp and its rows.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// `_id`.
    pub id: String,
    /// `date_updated` (conversations) or `date_created` (messages).
    pub at: DateTime<Utc>,
    /// Vendor row plus model row.
    pub rows: Vec<Row>,
}

fn text(v: &Value, key: &str) -> Cell {
    match v.get(key) {
        Some(Value::String(s)) => Cell::Text(s.clone()),
        Some(Value::Number(n)) => Cell::Text(n.to_string()),
        _ => Cell::Null,
    }
}

fn boolean(v: &Value, key: &str) -> Cell {
    match v.get(key) {
        Some(Value::Bool(b)) => Cell::Boolean(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Cell::Boolean(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Cell::Boolean(false),
        _ => Cell::Null,
    }
}

fn float(v: &Value, key: &str) -> Cell {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_f64().map_or(Cell::Null, Cell::Float),
        Some(Value::String(s)) => s.trim().parse::<f64>().map_or(Cell::Null, Cell::Float),
        _ => Cell::Null,
    }
}

fn integer(v: &Value, key: &str) -> Cell {
    match v.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.round() as i64))
            .map_or(Cell::Null, Cell::Integer),
        Some(Value::String(s)) => s.trim().parse::<i64>().map_or(Cell::Null, Cell::Integer),
        Some(Value::Bool(b)) => Cell::Integer(if *b { 1 } else { -1 }),
        _ => Cell::Null,
    }
}

fn timestamp(v: &Value, key: &str) -> Cell {
    v.get(key)
        .and_then(parse_timestamp_value)
        .map_or(Cell::Null, Cell::Timestamp)
}

fn json(v: &Value, key: &str) -> Cell {
    v.get(key).cloned().map_or(Cell::Null, Cell::from)
}

/// A numeric CSAT score from Ada's free-form `csat` object (`score`, `rating` or `value`).
pub fn csat_score(csat: Option<&Value>) -> Option<f64> {
    let o = csat?.as_object()?;
    ["score", "rating", "value"]
        .iter()
        .find_map(|k| match o.get(*k)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
}

/// Ada platform → model channel.
pub fn channel(platform: &str) -> Option<&'static str> {
    let p = platform.to_ascii_lowercase();
    Some(match p.as_str() {
        "chat" | "web" | "webchat" | "web_chat" | "ada_chat" | "mobile" | "ios" | "android"
        | "sdk" => "chat",
        "email" | "e-mail" => "email",
        "sms" | "twilio_sms" | "text" => "sms",
        "voice" | "phone" | "telephony" => "voice",
        "facebook" | "messenger" | "facebook_messenger" | "instagram" | "twitter" | "x" => "social",
        "whatsapp"
        | "zendesk_messaging"
        | "sunshine"
        | "line"
        | "wechat"
        | "apple_business_chat"
        | "google_business_messages"
        | "rcs" => "messaging",
        _ => return None,
    })
}

/// The bot's literals in `sender`/`recipient`: they vary by period and document.
fn is_bot_literal(s: &str) -> bool {
    ["ada", "bot", "agent", "ada bot", "chatbot"]
        .iter()
        .any(|l| s.eq_ignore_ascii_case(l))
}

/// `sender` (and the message's `chatter_id`, `recipient`) → model sender role.
pub fn sender_role(
    sender: Option<&str>,
    recipient: Option<&str>,
    chatter_id: Option<&str>,
) -> &'static str {
    let Some(sender) = sender.map(str::trim).filter(|s| !s.is_empty()) else {
        return "system";
    };
    if chatter_id.is_some_and(|c| c == sender) {
        return "customer";
    }
    if is_bot_literal(sender) {
        return "bot";
    }
    // No chatter id on the record: a message to the bot comes from the chatter.
    if chatter_id.is_none() && recipient.is_some_and(is_bot_literal) {
        return "customer";
    }
    // Another id on the bot side of a conversation: a human agent after a handoff.
    "agent"
}

/// The text of a message, where its `message_data` has one.
pub fn body(data: Option<&Value>) -> Option<String> {
    let d = data?;
    ["body", "text", "message"]
        .iter()
        .find_map(|k| d.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

fn id_and_at(v: &Value, field: &'static str) -> Result<(String, DateTime<Utc>), RecordError> {
    if !v.is_object() {
        return Err(RecordError::NotAnObject);
    }
    let id = v
        .get("_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(RecordError::NoId)?
        .to_owned();
    let at = v
        .get(field)
        .and_then(parse_timestamp_value)
        .ok_or(RecordError::BadTimestamp { field })?;
    Ok((id, at))
}

/// Maps a conversation record.
///
/// # Errors
/// When it has no `_id` or no readable `date_updated`.
pub fn conversation(v: &Value) -> Result<Mapped, RecordError> {
    let (id, at) = id_and_at(v, "date_updated")?;
    let score = csat_score(v.get("csat"));
    let mut row = Row::new(CONVERSATIONS).set("id", id.clone());
    for k in [
        "chatter_id",
        "end_user_id",
        "platform",
        "language",
        "last_agent_id",
        "last_agent_name",
        "browser",
        "browser_version",
        "device",
        "oauth_channel",
        "automated_resolution_classification",
        "automated_resolution_classification_reason",
        "inquiry_summary",
        "generated_topic_id",
        "generated_topic_label",
        "generated_topic_v2_id",
        "generated_topic_v2_title",
        "generated_topic_v2_desc",
        "generated_topic_v2_parent_id",
    ] {
        row.put(k, text(v, k));
    }
    for k in ["date_created", "date_updated", "record_last_updated"] {
        row.put(k, timestamp(v, k));
    }
    for k in ["is_engaged", "is_escalated", "is_test_user"] {
        row.put(k, boolean(v, k));
    }
    for k in [
        "csat",
        "variables",
        "metavariables",
        "agent_id",
        "agent_name",
        "classifications",
        "used_articles",
        "used_playbooks",
        "used_coaching",
    ] {
        row.put(k, json(v, k));
    }
    for k in ["agent_handle_time", "bot_handle_time"] {
        row.put(k, float(v, k));
    }
    row.put("csat_score", score);
    let row = row.with_raw(v.to_string());

    let escalated = boolean(v, "is_escalated");
    let bot_handled = match &escalated {
        Cell::Boolean(b) => Cell::Boolean(!b),
        _ => Cell::Null,
    };
    let model_row = Row::new(model::CONVERSATIONS)
        .set("conversation_id", id.clone())
        .set("customer_id", text(v, "chatter_id"))
        .set(
            "channel",
            v.get("platform").and_then(Value::as_str).and_then(channel),
        )
        .set("started_at", timestamp(v, "date_created"))
        .set("escalated", escalated)
        .set("bot_handled", bot_handled)
        .set("csat", score)
        .set("updated_at", at)
        .set("is_test", boolean(v, "is_test_user"));
    Ok(Mapped {
        id,
        at,
        rows: vec![row, model_row],
    })
}

/// Maps a message record.
///
/// # Errors
/// When it has no `_id` or no readable `date_created`.
pub fn message(v: &Value) -> Result<Mapped, RecordError> {
    let (id, at) = id_and_at(v, "date_created")?;
    let data = v.get("message_data");
    let kind = data
        .and_then(|d| d.get("_type"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let text_body = body(data);
    let sender = v.get("sender").and_then(Value::as_str);
    let recipient = v.get("recipient").and_then(Value::as_str);
    let chatter = v.get("chatter_id").and_then(Value::as_str);
    let role = sender_role(sender, recipient, chatter);
    let mut row = Row::new(MESSAGES).set("id", id.clone());
    for k in [
        "conversation_id",
        "chatter_id",
        "sender",
        "recipient",
        "answer_id",
        "answer_title",
        "in_response_to",
    ] {
        row.put(k, text(v, k));
    }
    row.put("date_created", at);
    row.put("record_last_updated", timestamp(v, "record_last_updated"));
    row.put("sender_role", role);
    row.put("message_type", kind);
    row.put("body", text_body.clone());
    row.put("message_data", json(v, "message_data"));
    row.put("link_was_clicked", boolean(v, "link_was_clicked"));
    row.put("review", integer(v, "review"));
    let row = row.with_raw(v.to_string());
    let conversation_id = text(v, "conversation_id");
    let model_row = Row::new(model::MESSAGES)
        .set("message_id", id.clone())
        .set("conversation_id", conversation_id.clone())
        .set("session_id", conversation_id)
        .set("sender_role", role)
        .set("sender_id", sender)
        .set("sent_at", at)
        .set("body", text_body);
    Ok(Mapped {
        id,
        at,
        rows: vec![row, model_row],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_from_sender_literals_and_chatter() {
        assert_eq!(sender_role(Some("c1"), Some("ada"), Some("c1")), "customer");
        for lit in ["ada", "Ada", "bot", "agent", "BOT"] {
            assert_eq!(
                sender_role(Some(lit), Some("c1"), Some("c1")),
                "bot",
                "{lit}"
            );
        }
        assert_eq!(sender_role(Some("5f00aa"), Some("c1"), Some("c1")), "agent");
        assert_eq!(sender_role(Some("c1"), Some("Ada"), None), "customer");
        assert_eq!(sender_role(None, Some("c1"), Some("c1")), "system");
    }

    #[test]
    fn maps_a_message_with_zone_and_without() {
        for ts in [
            "2019-10-31T14:28:02.865000+00:00",
            "2019-10-31T14:28:02.865000",
            "2019-10-31T14:28:02.865Z",
        ] {
            let v = json!({"_id": "m1", "conversation_id": "c9", "chatter_id": "u1", "date_created": ts,
                "sender": "u1", "recipient": "ada", "review": null,
                "message_data": {"_type": "text", "body": "How do I reset my password?"}});
            let m = message(&v).expect("maps");
            assert_eq!(m.at.to_rfc3339(), "2019-10-31T14:28:02.865+00:00");
            let r = &m.rows[0];
            assert_eq!(r.get("message_type"), Some(&Cell::Text("text".into())));
            assert_eq!(
                r.get("body"),
                Some(&Cell::Text("How do I reset my password?".into()))
            );
            assert_eq!(
                r.get("review"),
                None,
                "a null review leaves the column unset (NULL)"
            );
            assert_eq!(
                m.rows[1].get("sender_role"),
                Some(&Cell::Text("customer".into()))
            );
            assert_eq!(m.rows[1].get("session_id"), Some(&Cell::Text("c9".into())));
        }
        assert_eq!(
            message(&json!({"date_created": "2024-01-01T00:00:00Z"})).err(),
            Some(RecordError::NoId)
        );
        assert_eq!(
            message(&json!({"_id": "x", "date_created": "soon"})).err(),
            Some(RecordError::BadTimestamp {
                field: "date_created"
            })
        );
        assert_eq!(message(&json!([1])).err(), Some(RecordError::NotAnObject));
    }

    #[test]
    fn maps_a_conversation() {
        let v = json!({"_id": "c1", "chatter_id": "u1", "date_created": "2025-01-02T10:00:00.123000",
            "date_updated": "2025-01-02T10:05:00.456000", "is_engaged": true, "is_escalated": true,
            "platform": "whatsapp", "csat": {"score": 4}, "variables": {"email": "x@example.com"}});
        let m = conversation(&v).expect("maps");
        assert_eq!(m.rows[0].get("csat_score"), Some(&Cell::Float(4.0)));
        let model = &m.rows[1];
        assert_eq!(model.get("channel"), Some(&Cell::Text("messaging".into())));
        assert_eq!(model.get("escalated"), Some(&Cell::Boolean(true)));
        assert_eq!(model.get("bot_handled"), Some(&Cell::Boolean(false)));
        assert_eq!(model.get("csat"), Some(&Cell::Float(4.0)));
        assert_eq!(csat_score(Some(&json!({}))), None);
    }
}
