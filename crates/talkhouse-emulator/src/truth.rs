//! What a correct sync of an emulator must end with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Expected row counts per warehouse table (after dedupe, merges and deletions), plus
/// vendor-specific expectations in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// `table` (without schema) → expected rows.
    pub tables: BTreeMap<String, u64>,
    /// Anything else a vendor's tests compare (metrics, ids of deleted records, …).
    #[serde(default)]
    pub extra: serde_json::Value,
}
