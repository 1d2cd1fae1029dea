//! Entry points for untrusted Ada input, for the fuzz targets (`fuzz/`) and tests: each takes
//! arbitrary bytes and must return, never panic.

use super::records;

/// A Data Export API record read as a conversation and as a message; returns how many rows
/// came out.
pub fn record(data: &[u8]) -> usize {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return 0;
    };
    [records::conversation(&v), records::message(&v)]
        .into_iter()
        .filter_map(Result::ok)
        .map(|m| m.rows.len())
        .sum()
}
