//! Entry points for untrusted Gladly input, for the fuzz targets (`fuzz/`) and tests: each
//! takes arbitrary bytes and must return, never panic.

use talkhouse_model::{PushRequest, Source};

use super::records::{self, FileKind};

/// One line of each export file kind (`agents.jsonl`, `conversation_items.jsonl`,
/// `customers.jsonl`, `topics.jsonl`); returns how many rows the line became across kinds.
pub fn export_line(data: &[u8]) -> usize {
    let line = String::from_utf8_lossy(data);
    [
        FileKind::Agents,
        FileKind::Items,
        FileKind::Customers,
        FileKind::Topics,
    ]
    .into_iter()
    .filter_map(|kind| records::line_rows(kind, &line, None).ok())
    .map(|(_, rows)| rows.len())
    .sum()
}

/// One `conversation_items.jsonl` line read both ways a record reaches the item mapping: as a
/// borrowed [`Json`](crate::json::Json) (export lines) and as a `serde_json::Value` (REST and
/// webhooks). Whether both gave the same rows, or both rejected the line with the same error;
/// the fuzz target asserts it.
pub fn item_line_agrees(data: &[u8]) -> bool {
    let line = String::from_utf8_lossy(data);
    let read = records::line_rows(FileKind::Items, &line, None).map(|(_, rows)| rows);
    let from_value = records::line_rows_as::<serde_json::Value>(FileKind::Items, &line, None)
        .map(|(_, rows)| rows);
    read == from_value
}

/// A REST record of each kind (customer profile, conversation, inbox) and a 301 `moved` body;
/// returns how many of them were understood.
pub fn rest_record(data: &[u8]) -> usize {
    let mut understood = usize::from(records::moved_to(data, None).is_some());
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        understood += usize::from(records::customer_rest_row(&v).is_ok());
        understood += usize::from(records::inbox_row(&v).is_ok());
        understood += usize::from(records::conversation_rows(&v, Some("chat"), None).is_ok());
    }
    understood
}

/// A webhook delivery: the first line of `data` is the `Authorization` header, the rest the
/// body; returns whether the source accepted it.
pub fn webhook(source: &dyn Source, data: &[u8]) -> bool {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, body) = data.split_at(split);
    let request = PushRequest {
        method: "POST".into(),
        path: "/webhooks/gladly".into(),
        query: Vec::new(),
        headers: vec![(
            "authorization".into(),
            String::from_utf8_lossy(header).into_owned(),
        )],
        body: body.get(1..).unwrap_or_default().to_vec(),
    };
    matches!(
        source.verify_push(&request),
        talkhouse_model::PushVerdict::Accept { .. }
    )
}
