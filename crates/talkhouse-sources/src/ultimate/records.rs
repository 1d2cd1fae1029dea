//! Export records → rows of `ultimate.*` and of the `talkhouse.*` model.
//!
//! Keys are matched case-insensitively (`CONVERSATION_ID` and `conversation_id` alike);
//! counts may be numbers or numeric strings (`"4"`, `"3.0"`); booleans may be strings;
//! timestamps may be RFC 3339, zone-less, `… UTC` or epoch numbers; nested lists may be arrays
//! of objects, arrays of JSON strings or one JSON string. Unknown keys land in `extra`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use talkhouse_model::{Cell, Row, model, time};

use super::tables::{CONVERSATIONS, COUNTS, INTENT_REPLIES, REPLIES};

/// Escalation statuses of the vendor's metric definitions.
pub const ESCALATION_STATUSES: [&str; 3] = ["email", "agent", "customEscalation"];

/// One parsed conversation record.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `conversation_id`.
    pub id: String,
    /// `conversation_end_time`.
    pub end: Option<DateTime<Utc>>,
    /// `session_ended_timestamp` (tie-break between duplicates).
    pub session_end: Option<DateTime<Utc>>,
    /// The conversation row, its child rows and the model row, as one group.
    pub rows: Vec<Row>,
    /// Why `conversations_data` could not be parsed, with the text, if so.
    pub data_error: Option<(String, String)>,
}

/// Keys of a record, lower-cased, to their values.
struct Keys<'a>(BTreeMap<String, &'a Value>);

impl<'a> Keys<'a> {
    fn of(obj: &'a Map<String, Value>) -> Self {
        Self(obj.iter().map(|(k, v)| (k.to_lowercase(), v)).collect())
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).copied().filter(|v| !v.is_null())
    }

    fn text(&self, key: &str) -> Cell {
        match self.get(key) {
            Some(Value::String(s)) => Cell::Text(s.clone()),
            Some(Value::Number(n)) => Cell::Text(n.to_string()),
            Some(Value::Bool(b)) => Cell::Text(b.to_string()),
            Some(other) => Cell::Text(other.to_string()),
            None => Cell::Null,
        }
    }

    fn timestamp(&self, key: &str) -> Cell {
        self.get(key)
            .and_then(timestamp)
            .map_or(Cell::Null, Cell::Timestamp)
    }

    fn boolean(&self, key: &str) -> Cell {
        self.get(key)
            .and_then(boolean)
            .map_or(Cell::Null, Cell::Boolean)
    }

    fn integer(&self, key: &str) -> Cell {
        self.get(key)
            .and_then(integer)
            .map_or(Cell::Null, Cell::Integer)
    }

    /// A list or document that may arrive as JSON text.
    fn json(&self, key: &str) -> Cell {
        match self.get(key) {
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v) if v.is_array() || v.is_object() => Cell::Json(v),
                _ => Cell::Json(Value::String(s.clone())),
            },
            Some(v) => Cell::Json(v.clone()),
            None => Cell::Null,
        }
    }
}

/// A timestamp in any of the vendor's forms.
pub fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            let s = s
                .strip_suffix(" UTC")
                .or_else(|| s.strip_suffix(" utc"))
                .unwrap_or(s);
            time::parse_timestamp(s)
        }
        other => time::parse_timestamp_value(other),
    }
}

/// A boolean, a `"true"`/`"false"` string, or 0/1.
pub fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// An integer given as a number, a numeric string, or a float-like value (`"3.0"`).
pub fn integer(v: &Value) -> Option<i64> {
    let f = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Some(i);
            }
            n.as_f64()?
        }
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Some(i);
            }
            s.parse::<f64>().ok()?
        }
        _ => return None,
    };
    // Only integral values in range are counts.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// The elements of a nested list, as objects, whatever shape the list arrived in.
fn list_items(v: Option<&Value>) -> Vec<Value> {
    let arr = match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(a)) => a,
            Ok(o @ Value::Object(_)) => vec![o],
            _ => vec![Value::String(s.clone())],
        },
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => Vec::new(),
    };
    arr.into_iter()
        .map(|item| match item {
            Value::String(s) => serde_json::from_str::<Value>(&s)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(Value::String(s)),
            other => other,
        })
        .collect()
}

const KNOWN: &[&str] = &[
    "bot_id",
    "bot_name",
    "conversation_id",
    "platform_conversation_id",
    "conversation_start_time",
    "conversation_end_time",
    "language",
    "channel",
    "labels",
    "conversations_data",
    "conversation_data",
    "test_mode",
    "conversation_status",
    "last_resolution",
    "triggered_replies",
    "triggered_intent_replies",
    "is_llm_conversation",
    "conversation_type",
    "segments",
    "automated_resolution",
    "automated_resolution_reasoning",
    "triggered_procedures",
    "triggered_use_cases",
    "has_knowledge_response_attempt",
    "knowledge_sources",
    "resolution_tier",
    "rbp_status_name",
    "session_ended_timestamp",
    "instance_account_id",
    "zdp_meta_processed_timestamp",
    "conversation_end_date",
    // Misspelling seen in a third-party model.
    "knowledge_notundestood_count",
];

/// The normalised channel of the model: `chat`, or `email` for ticket bots.
pub fn model_channel(channel: Option<&str>) -> &'static str {
    match channel.map(str::to_ascii_lowercase).as_deref() {
        Some("ticket" | "email" | "e-mail") => "email",
        Some("sms") => "sms",
        Some("voice") => "voice",
        Some("social") => "social",
        Some("messaging") => "messaging",
        _ => "chat",
    }
}

/// `botHandled` for both spellings; other statuses unchanged.
pub fn normalise_status(s: &str) -> &str {
    if s == "bot_handled" { "botHandled" } else { s }
}

/// Turns one record into its rows. `export_date` is the day file it came from.
///
/// # Errors
/// When the value is not a conversation record (not an object, no `conversation_id`).
pub fn parse_record(value: &Value, export_date: NaiveDate) -> Result<Parsed, String> {
    let parsed_string;
    let obj = match value {
        Value::Object(o) => o,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => {
                parsed_string = o;
                &parsed_string
            }
            _ => return Err("not a JSON object".into()),
        },
        _ => return Err("not a JSON object".into()),
    };
    let k = Keys::of(obj);
    let id = match k.text("conversation_id") {
        Cell::Text(s) if !s.trim().is_empty() => s,
        _ => return Err("record without conversation_id".into()),
    };
    let start = k.get("conversation_start_time").and_then(timestamp);
    let end = k.get("conversation_end_time").and_then(timestamp);
    let session_end = k.get("session_ended_timestamp").and_then(timestamp);
    let mut data_error = None;
    let data = match k
        .get("conversations_data")
        .or_else(|| k.get("conversation_data"))
    {
        Some(Value::String(s)) if s.trim().is_empty() => Cell::Null,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v) => Cell::from(v),
            Err(e) => {
                data_error = Some((
                    format!("conversations_data is not valid JSON: {e}"),
                    s.clone(),
                ));
                Cell::Null
            }
        },
        Some(v) => Cell::Json(v.clone()),
        None => Cell::Null,
    };
    let status = k.text("conversation_status");
    let mut row = Row::new(CONVERSATIONS)
        .set("conversation_id", id.as_str())
        .set("bot_id", k.text("bot_id"))
        .set("bot_name", k.text("bot_name"))
        .set(
            "platform_conversation_id",
            k.text("platform_conversation_id"),
        )
        .set("conversation_start_time", start)
        .set("conversation_end_time", end)
        .set("start_date", start.map(|t| t.date_naive()))
        .set("export_date", export_date)
        .set("language", k.text("language"))
        .set("channel", k.text("channel"))
        .set("labels", k.json("labels"))
        .set("conversations_data", data)
        .set("test_mode", k.boolean("test_mode"))
        .set("conversation_status", status.clone())
        .set("last_resolution", k.text("last_resolution"))
        .set("is_llm_conversation", k.boolean("is_llm_conversation"));
    for (col, key) in COUNTS {
        let mut v = k.integer(key);
        if v.is_null() && col == "knowledge_not_understood_count" {
            v = k.integer("knowledge_notundestood_count");
        }
        row.put(col, v);
    }
    row.put("conversation_type", k.text("conversation_type"));
    row.put("segments", k.json("segments"));
    row.put("automated_resolution", k.boolean("automated_resolution"));
    row.put(
        "automated_resolution_reasoning",
        k.text("automated_resolution_reasoning"),
    );
    row.put("triggered_procedures", k.json("triggered_procedures"));
    row.put("triggered_use_cases", k.json("triggered_use_cases"));
    row.put(
        "has_knowledge_response_attempt",
        k.boolean("has_knowledge_response_attempt"),
    );
    row.put("knowledge_sources", k.json("knowledge_sources"));
    row.put("resolution_tier", k.text("resolution_tier"));
    row.put("rbp_status_name", k.text("rbp_status_name"));
    row.put("session_ended_timestamp", Cell::from(session_end));
    row.put("instance_account_id", k.text("instance_account_id"));
    row.put(
        "zdp_meta_processed_timestamp",
        k.timestamp("zdp_meta_processed_timestamp"),
    );
    row.put(
        "conversation_end_date",
        k.get("conversation_end_date")
            .and_then(|v| {
                v.as_str().and_then(|s| {
                    NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
                })
            })
            .map_or(Cell::Null, Cell::Date),
    );
    let known_counts: Vec<&str> = COUNTS.iter().map(|(_, key)| *key).collect();
    let extra: Map<String, Value> = obj
        .iter()
        .filter(|(key, _)| {
            let l = key.to_lowercase();
            !KNOWN.contains(&l.as_str()) && !known_counts.contains(&l.as_str())
        })
        .map(|(key, v)| (key.clone(), v.clone()))
        .collect();
    row.put(
        "extra",
        if extra.is_empty() {
            Cell::Null
        } else {
            Cell::Json(Value::Object(extra))
        },
    );
    let row = row.with_raw(Value::Object(obj.clone()).to_string());

    let mut rows = vec![row];
    for (pos, item) in list_items(k.get("triggered_intent_replies"))
        .into_iter()
        .enumerate()
    {
        let mut r = Row::new(INTENT_REPLIES)
            .set("conversation_id", id.as_str())
            .set("position", pos as i64);
        if let Value::Object(o) = &item {
            let ik = Keys::of(o);
            r.put("intent_timestamp", ik.timestamp("intent_timestamp"));
            r.put("intent_id", ik.text("intent_id"));
            r.put("intent_name", ik.text("intent_name"));
            r.put("not_meaningful", ik.boolean("not_meaningful"));
        }
        rows.push(r.with_raw(item.to_string()));
    }
    for (pos, item) in list_items(k.get("triggered_replies"))
        .into_iter()
        .enumerate()
    {
        let mut r = Row::new(REPLIES)
            .set("conversation_id", id.as_str())
            .set("position", pos as i64);
        if let Value::Object(o) = &item {
            let rk = Keys::of(o);
            r.put("reply_timestamp", rk.timestamp("reply_timestamp"));
            r.put("reply_id", rk.text("reply_id"));
            r.put("reply_language", rk.text("reply_language"));
            r.put("reply_name", rk.text("reply_name"));
            r.put("reply_type", rk.text("reply_type"));
            r.put("intent_id", rk.text("intent_id"));
        }
        rows.push(r.with_raw(item.to_string()));
    }

    let status_str = status.as_str().map(normalise_status);
    let bot = k.get("bot_messages_count").and_then(integer);
    let visitor = k.get("visitor_messages_count").and_then(integer);
    let message_count = match (bot, visitor) {
        (None, None) => None,
        (b, v) => Some(b.unwrap_or(0) + v.unwrap_or(0)),
    };
    let channel = k.get("channel").and_then(Value::as_str);
    rows.push(
        Row::new(model::CONVERSATIONS)
            .set("conversation_id", id.as_str())
            .set("channel", model_channel(channel))
            .set("started_at", start)
            .set("ended_at", end)
            .set("status", status_str.map(str::to_owned))
            .set("message_count", message_count)
            // Ultimate's own definitions: a conversation without a status counts, as neither
            // escalated nor bot handled, so the model's rates are the vendor's.
            .set(
                "escalated",
                status_str.is_some_and(|s| ESCALATION_STATUSES.contains(&s)),
            )
            .set("bot_handled", status_str == Some("botHandled"))
            .set("updated_at", end.or(start))
            .set("is_test", k.boolean("test_mode")),
    );
    Ok(Parsed {
        id,
        end,
        session_end,
        rows,
        data_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_values() {
        assert_eq!(integer(&Value::from("4")), Some(4));
        assert_eq!(integer(&Value::from("3.0")), Some(3));
        assert_eq!(integer(&Value::from(7)), Some(7));
        assert_eq!(integer(&Value::from("x")), None);
        assert_eq!(boolean(&Value::from("true")), Some(true));
        let t =
            timestamp(&Value::from("2025-03-14 09:12:03.120 UTC")).map(|t| t.timestamp_millis());
        assert_eq!(
            t,
            timestamp(&Value::from("2025-03-14T09:12:03.120Z")).map(|t| t.timestamp_millis())
        );
        assert_eq!(
            timestamp(&Value::from(1_741_943_523_120_i64)).map(|t| t.timestamp_millis()),
            Some(1_741_943_523_120)
        );
    }

    #[test]
    fn upper_case_record_with_string_lists() {
        let rec = serde_json::json!({
            "CONVERSATION_ID": "c1", "CONVERSATION_STATUS": "bot_handled", "BOT_MESSAGES_COUNT": "4",
            "VISITOR_MESSAGES_COUNT": 3, "CHANNEL": "ticket", "CONVERSATIONS_DATA": "{\"a\":1}",
            "TRIGGERED_INTENT_REPLIES": "[{\"intent_name\":\"Greeting\",\"not_meaningful\":true}]",
            "BSAT_SCORE": "passed"
        });
        let day = NaiveDate::from_ymd_opt(2025, 3, 14).unwrap_or_default();
        let p = parse_record(&rec, day).expect("parses");
        assert_eq!(p.id, "c1");
        let conv = &p.rows[0];
        assert_eq!(conv.get("bot_messages_count"), Some(&Cell::Integer(4)));
        assert_eq!(
            conv.get("conversations_data"),
            Some(&Cell::Json(serde_json::json!({"a": 1})))
        );
        assert_eq!(
            conv.get("extra"),
            Some(&Cell::Json(serde_json::json!({"BSAT_SCORE": "passed"})))
        );
        assert_eq!(
            p.rows[1].get("intent_name"),
            Some(&Cell::Text("Greeting".into()))
        );
        let m = p.rows.last().expect("model row");
        assert_eq!(m.get("channel"), Some(&Cell::Text("email".into())));
        assert_eq!(m.get("bot_handled"), Some(&Cell::Boolean(true)));
        assert_eq!(m.get("message_count"), Some(&Cell::Integer(7)));
        assert!(parse_record(&Value::from("{broken"), day).is_err());
    }
}
