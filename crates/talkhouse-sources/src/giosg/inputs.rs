//! Entry points for untrusted Giosg input, for the fuzz targets (`fuzz/`) and tests: each
//! takes arbitrary bytes and must return, never panic.

use std::collections::HashMap;

use talkhouse_model::{PushRequest, PushVerdict, Source};

use super::crypto::ChatKeys;
use super::records::{self, ChatKeyState};

/// A REST record read as a chat, a message, a membership, a tag and a visitor variable;
/// returns how many rows came out.
pub fn record(data: &[u8]) -> usize {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return 0;
    };
    let bots = HashMap::new();
    let mut rows = 1; // chat_row always maps
    let _ = records::chat_row(&v, records::str_field(&v, "visitor_id"));
    let _ = records::conversation_row(&v, None, std::slice::from_ref(&v), &bots);
    if let records::MessageOutcome::Rows { rows: r, .. } =
        records::message_rows(&v, "chat", &ChatKeyState::Plain, &bots, "fuzz")
    {
        rows += r.len();
    }
    let _ = records::membership_row(&v, "chat");
    let _ = records::tag_row(&v, "chat", None);
    rows += usize::from(records::variable_row(&v, "visitor", "chat", None, "fuzz").is_ok());
    rows
}

/// An `encrypted_message` (or `encrypted_value`) opened with `keys`: verifies the HMAC and
/// decrypts; returns whether it opened.
pub fn ciphertext(keys: &ChatKeys, data: &[u8]) -> bool {
    keys.open(&String::from_utf8_lossy(data)).is_ok()
}

/// A chat-end trigger: `data` is the query string (`type=chat_end&data=<JWT>&token=<JWT>`);
/// returns whether the source accepted it.
pub fn trigger(source: &dyn Source, data: &[u8]) -> bool {
    let query = String::from_utf8_lossy(data);
    let request = PushRequest {
        method: "GET".into(),
        path: "/triggers/giosg".into(),
        query: query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    matches!(source.verify_push(&request), PushVerdict::Accept { .. })
}

/// A webhook delivery: `data` is the body, posted with the right key; returns whether the
/// source accepted it.
pub fn webhook(source: &dyn Source, key: &str, data: &[u8]) -> bool {
    let request = PushRequest {
        method: "POST".into(),
        path: "/webhooks/giosg".into(),
        query: vec![("key".to_owned(), key.to_owned())],
        headers: Vec::new(),
        body: data.to_vec(),
    };
    matches!(source.verify_push(&request), PushVerdict::Accept { .. })
}
