//! Day files as the vendor writes them: records, shards, formats, compression.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::data::{Conv, World};

/// How `conversation_status` spells "bot handled" and other switches of the record shape.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Keys in UPPER_CASE.
    pub upper_keys: bool,
    /// Counts as strings (`"4"`), as the vendor's schema says; integers otherwise.
    pub counts_as_strings: bool,
    /// Booleans as `"true"` / `"false"`.
    pub bools_as_strings: bool,
    /// Timestamp format: `z`, `nozone`, `utc` or `epoch`.
    pub timestamps: String,
    /// `triggered_intent_replies` as `objects`, `strings` (JSON strings) or `string` (one string).
    pub intents: String,
    /// Field set: `llm`, `knowledge` or `both`.
    pub fields: String,
    /// `bot_handled` instead of `botHandled`.
    pub snake_status: bool,
}

impl Shape {
    fn ts(&self, t: DateTime<Utc>) -> Value {
        match self.timestamps.as_str() {
            "nozone" => Value::from(t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()),
            "utc" => Value::from(t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()),
            "epoch" => Value::from(t.timestamp_millis()),
            _ => Value::from(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }

    fn count(&self, n: i64) -> Value {
        if self.counts_as_strings {
            Value::from(n.to_string())
        } else {
            Value::from(n)
        }
    }

    fn boolean(&self, b: bool) -> Value {
        if self.bools_as_strings {
            Value::from(b.to_string())
        } else {
            Value::from(b)
        }
    }

    fn llm(&self) -> bool {
        matches!(self.fields.as_str(), "llm" | "both")
    }

    fn knowledge(&self) -> bool {
        matches!(self.fields.as_str(), "knowledge" | "both")
    }
}

/// One conversation record as JSON.
pub fn record(world: &World, c: &Conv, shape: &Shape) -> Value {
    let bot = &world.bots[c.bot];
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        let k = if shape.upper_keys {
            k.to_uppercase()
        } else {
            k.to_owned()
        };
        m.insert(k, v);
    };
    put("bot_id", json!(bot.id));
    put("bot_name", json!(bot.name));
    put("conversation_id", json!(c.id));
    put("platform_conversation_id", json!(c.platform_id));
    put("conversation_start_time", shape.ts(c.start));
    put("conversation_end_time", shape.ts(c.end));
    put("language", json!(c.language));
    put("channel", json!(c.channel));
    put("labels", json!(c.labels));
    put("conversations_data", json!(c.data));
    put("test_mode", shape.boolean(c.test_mode));
    let status = match c.status {
        Some("botHandled") if shape.snake_status => Value::from("bot_handled"),
        Some(s) => Value::from(s),
        None => Value::Null,
    };
    put("conversation_status", status);
    put("last_resolution", json!(c.resolution));
    let replies: Vec<Value> = c
        .replies
        .iter()
        .map(|r| {
            json!({"reply_timestamp": shape.ts(r.ts), "reply_id": r.id, "reply_language": r.language,
                   "reply_name": r.name, "reply_type": r.kind, "intent_id": r.intent_id})
        })
        .collect();
    put("triggered_replies", Value::Array(replies));
    let intents: Vec<Value> = c
        .intents
        .iter()
        .map(|i| {
            json!({"intent_timestamp": shape.ts(i.ts), "intent_id": i.id, "intent_name": i.name,
                   "not_meaningful": shape.boolean(i.not_meaningful)})
        })
        .collect();
    let intents = match shape.intents.as_str() {
        "strings" => Value::Array(intents.iter().map(|v| Value::from(v.to_string())).collect()),
        "string" => Value::from(Value::Array(intents).to_string()),
        _ => Value::Array(intents),
    };
    put("triggered_intent_replies", intents);
    put("is_llm_conversation", shape.boolean(c.is_llm));
    let names = [
        "notUnderstood",
        "responseGenerated",
        "errorOccurred",
        "escalationRequired",
        "fallback",
    ];
    if shape.llm() {
        for (name, n) in names.iter().zip(c.llm) {
            put(&format!("llm_{name}_count"), shape.count(n));
        }
    }
    put("bot_messages_count", shape.count(c.bot_messages));
    put("visitor_messages_count", shape.count(c.visitor_messages));
    put(
        "not_understood_messages_count",
        shape.count(c.not_understood),
    );
    if shape.knowledge() {
        put(
            "conversation_type",
            json!(if c.channel == "ticket" {
                "email"
            } else {
                "messaging"
            }),
        );
        put("segments", json!([]));
        put(
            "automated_resolution",
            shape.boolean(c.automated_resolution),
        );
        put(
            "automated_resolution_reasoning",
            json!(if c.automated_resolution {
                "The visitor's question was answered."
            } else {
                "Handed over or unanswered."
            }),
        );
        put("triggered_procedures", json!([]));
        put("triggered_use_cases", json!(c.use_cases));
        put("has_knowledge_response_attempt", shape.boolean(c.is_llm));
        for (name, n) in names.iter().zip(c.llm) {
            put(&format!("knowledge_{name}_count"), Value::from(n));
        }
        put(
            "knowledge_sources",
            json!(if c.is_llm { "[\"help-center\"]" } else { "[]" }),
        );
        put("session_ended_timestamp", shape.ts(c.end));
        put(
            "resolution_tier",
            json!(if c.automated_resolution {
                "Contained"
            } else {
                "None"
            }),
        );
        // A tenant-specific field no parser knows: must survive in `extra`.
        put("bsat_score", json!("-1"));
    }
    Value::Object(m)
}

/// One line of a day file.
#[derive(Debug, Clone)]
pub enum Line {
    /// A conversation record.
    Record(Value),
    /// Text that is not a record (a truncated line).
    Malformed(String),
}

/// A truncated record, as a broken export line looks.
pub fn malformed(world: &World, b: usize, day: chrono::NaiveDate) -> Line {
    Line::Malformed(format!(
        "{{\"bot_id\":\"{}\",\"conversation_id\":\"ffff{}\",\"conversation_start_time\":\"{day}T23:",
        world.bots[b].id,
        day.format("%Y%m%d")
    ))
}

/// Serialises lines as NDJSON or as a JSON array (a malformed line becomes a string element).
pub fn serialise(lines: &[Line], array: bool) -> Vec<u8> {
    if array {
        let items: Vec<Value> = lines
            .iter()
            .map(|l| match l {
                Line::Record(v) => v.clone(),
                Line::Malformed(s) => Value::from(s.clone()),
            })
            .collect();
        return Value::Array(items).to_string().into_bytes();
    }
    let mut out = Vec::new();
    for l in lines {
        match l {
            Line::Record(v) => out.extend(v.to_string().into_bytes()),
            Line::Malformed(s) => out.extend(s.as_bytes()),
        }
        out.push(b'\n');
    }
    out
}

/// Gzips bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// Splits lines into at most `shards` contiguous, non-empty parts.
pub fn shard(lines: Vec<Line>, shards: usize) -> Vec<Vec<Line>> {
    let n = shards.clamp(1, lines.len().max(1));
    let per = lines.len().div_ceil(n).max(1);
    let mut out: Vec<Vec<Line>> = Vec::new();
    let mut it = lines.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(per).collect());
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}
