//! The Ultimate ("Zendesk AI agents – Advanced") connector: the Data Export API.
//!
//! # What it syncs
//! One export per bot per UTC day: `POST {base}/data-export/v3/get-signed-urls` returns signed
//! URLs of shard files, each a list of conversation records (those that *ended* that day).
//! Tables: `ultimate.conversations` (key `conversation_id`; every documented field typed,
//! `conversations_data` parsed into JSON, unknown keys in `extra`, the record in `_raw`),
//! `ultimate.triggered_intent_replies` and `ultimate.triggered_replies` (key
//! `conversation_id` + `position`, replaced per conversation), and `talkhouse.model_conversations`
//! (channel `chat`, or `email` for ticket bots; `escalated`, `bot_handled`, `message_count`
//! from the vendor's counts). The export holds no message text, so there are no
//! `model_messages` rows. `ultimate.export_days` (key `bot_id` + `day`) records every (bot, day)
//! export read, with its file, record and byte counts. The vendor's metrics are views (see
//! [`views`]); a day of them is final once the next day's export is read, which the views tell
//! from `export_days`.
//!
//! Test conversations (`test_mode`) load like any other and carry `is_test` in the model; the
//! `talkhouse.*` views and the metric views leave them out unless `include_test = true`.
//!
//! # Auth
//! The organization API key, sent raw in `authorization` (a `Bearer` prefix got 401 on the live
//! API; `bearer = true` sends it anyway), plus `organizationId` and `botId` headers. Signed
//! URLs are fetched without credentials. 401/403 on the POST fails the stream loudly.
//!
//! # Pagination
//! None: bots × days; every URL of a day is downloaded. Files may be gzip (sniffed by magic
//! bytes, or `Content-Encoding`), NDJSON or a JSON array.
//!
//! # Rate limits
//! Undocumented: one request at a time, `requests_per_second` (default 2) on the POST, 429 and
//! 5xx retried by the shared HTTP policy honouring `Retry-After`.
//!
//! # Incremental cursor
//! Per bot, `through` = the last day read, plus file/record counts of recent days (a changed
//! count on re-read is logged as late data). Each run reads from
//! `min(through + 1, end − reread_days + 1)` to `end_date` (default yesterday, UTC; never
//! today), or from `start_date` (default `backfill_days` = 30 days back) without a cursor. A
//! checkpoint follows every finished (bot, day). A 404 is a day without export.
//!
//! # Quirks
//! * Day files grow after midnight and conversations end after midnight, so trailing days are
//!   re-read (`reread_days`, default 2); rows merge on `conversation_id`; days are read in
//!   ascending order so a re-opened conversation's later version wins.
//! * Duplicate rows within a day: the one with the greatest `conversation_end_time` (then
//!   `session_ended_timestamp`, then the last seen) is kept.
//! * An expired signed URL (403) makes the day start over with fresh URLs, once.
//! * Keys in any case; counts as numbers or strings; booleans as strings; timestamps in
//!   RFC 3339, zone-less, `… UTC` or epoch form; `triggered_intent_replies` as objects, JSON
//!   strings or one string; `llm_*` and `knowledge_*` counts both kept.
//! * A malformed line, and `conversations_data` that is not JSON (the row still loads), go to
//!   quarantine with `url:line`.

mod config;
pub mod inputs;
mod records;
mod source;
mod tables;
pub mod views;

use std::sync::Arc;

use talkhouse_model::Source;

use crate::ConfigError;

pub use config::UltimateConfig;
pub use source::UltimateSource;

/// Builds a configured Ultimate source.
///
/// # Errors
/// Unknown or missing keys, or settings that cannot work.
pub fn build(name: &str, section: toml::Table) -> Result<Arc<dyn Source>, ConfigError> {
    let config: UltimateConfig = section.try_into()?;
    let source = UltimateSource::new(name, config).map_err(|e| ConfigError {
        key: None,
        message: e.to_string(),
        hint: None,
    })?;
    Ok(Arc::new(source))
}
