//! Ada (chatbot / AI agent): conversations and messages through the Data Export API.
//!
//! # What it syncs
//! * `ada.conversations` (PK `id` = `_id`), one row per conversation in its latest version:
//!   flags (`is_engaged`, `is_escalated`, `is_test_user`), platform, language, topics, handle
//!   times, and the free-form `csat`, `variables`, `metavariables` kept as JSON (with
//!   `csat_score` flattened); v2's `classifications` and `used_*` arrays as JSON.
//! * `ada.messages` (PK `id` = `_id`): `sender`, `recipient`, `sender_role`, `answer_id`,
//!   `answer_title`, `review`, `link_was_clicked`, `in_response_to`, `message_data` as JSON with
//!   `message_data._type` as `message_type` and its `body` as `body`.
//! * `talkhouse.model_conversations` (escalated from `is_escalated`, `bot_handled` = not
//!   escalated, `csat` from `csat.score`, channel from `platform`) and
//!   `talkhouse.model_messages` (`session_id` = conversation id, `sender_role` from `sender`).
//! * Views `ada.metric_conversations` and `ada.metrics`: Ada's engagement and escalation
//!   figures ([`views`]), which the report reads.
//! * Test users: conversations with `is_test_user` load into `ada.conversations` like any
//!   other, but `talkhouse.*` and the metrics leave them out unless `include_test = true`.
//!
//! # Auth
//! `Authorization: Bearer <token>`. v1.3/v1.4 take the Data Export token (only one exists: a
//! newly generated one invalidates the old); v2 takes a v2 API key and rejects legacy tokens.
//! Both failures stop the stream with a hint.
//!
//! # Pagination
//! Each stream walks windows of at most 60 days (`window_days`) from its cursor up to
//! now − `lag`, asking `…_since`/`…_to` with `Z` datetimes and `page_size` (100–10,000,
//! default 10,000). Pages chain through `next_page_uri` (v1.x top level, v2 under `meta`),
//! resolved whether absolute, root-relative or relative. Ada moves the lower bound to the last
//! record's timestamp, so records on a page boundary come twice: they are skipped on `_id` (and
//! merged on `id` anyway). A `next_page_uri` that does not move the lower bound (more than
//! `page_size` records on one instant) stops the stream with an error instead of looping.
//!
//! # Rate limits
//! One token bucket per endpoint at `requests_per_second` (default 3, Ada's documented limit;
//! 10 for newer tenants), shared by every concurrent request of the source. 429, 408 and 5xx
//! are retried by the shared HTTP policy, honouring `Retry-After` and `X-RateLimit-Reset`.
//!
//! # Incremental cursor
//! Conversations on `date_updated` (`updated_since`/`updated_to`), messages on `date_created`
//! (`created_since`/`created_to`). A checkpoint follows every page: `{"cursor", "window_end"}`
//! where `cursor` is the next page's lower bound (the last record's timestamp) and
//! `window_end` the window being read, so a killed sync resumes on the page it was on. The
//! first sync starts at `start_date` (default and floor: 12 months back, since Ada keeps only
//! the previous year). An older `start_date`, or a cursor that fell behind the floor (no sync
//! for a year), is clamped to it with a warning in the state's `warnings`, which `talkhouse
//! status` shows until a later run no longer needs it.
//!
//! # Look-back
//! Ada's lag is not a promise: now and then it ingests records later than `lag`, behind a
//! cursor that trusted it. So every run first reads again the `lookback` (default `2d`, `0`
//! turns it off, at most `60d`) behind its cursor, from a whole hour up to where the previous
//! run stopped, then goes on from there; the records read again merge on `id`. A killed run
//! resumes where it stopped, inside the look-back or after it, without starting it anew.
//! To say what the look-back caught, the state keeps how many distinct records the runs read per
//! hour of the cursor field (`seen`, only the hours a look-back still reaches, so it stays
//! small however large the traffic): what an hour holds now beyond that count, the previous runs
//! had missed. The state's `lookback_found` is that number for the last look-back, and when it
//! is not 0 a warning in `talkhouse status` names it (raise `lag` if it recurs). For messages,
//! which Ada never changes, the number is exact unless Ada also deleted a message of the same
//! hour; a conversation updated again leaves its old hour, so for conversations it is a lower
//! bound. `talkhouse.loads` counts the records read again among the run's rows.
//!
//! # Quirks
//! * Ingestion lag: records appear at least 2 h late (24–48 h for some tenants, near real time
//!   on v2): the upper bound is now − `lag`, so nothing is skipped before it is ingested; what
//!   comes later still, the look-back reads.
//! * v2 conversation dates come without a zone (taken as UTC); message dates carry `+00:00`.
//! * `sender`/`recipient` name the bot with a literal that changed over time (`ada`, `Ada`,
//!   `bot`, `agent`): matched case-insensitively; the chatter is `chatter_id`; any other id is
//!   a human agent after a handoff.
//! * Rows that age out of Ada's 12-month history are never deleted here.
//! * A record without `_id` or without a readable cursor timestamp is quarantined.

mod config;
pub mod inputs;
mod lookback;
mod records;
mod source;
mod tables;
pub mod views;

use std::sync::Arc;

use talkhouse_model::Source;

use crate::ConfigError;

pub use config::{AdaConfig, ApiVersion, Settings};
pub use records::{channel, csat_score, sender_role};
pub use source::{AdaSource, NowFn, Stream};
pub use tables::{CONVERSATIONS, MESSAGES};

/// Parses and validates a `[sources.<name>]` section into an [`AdaSource`].
///
/// # Errors
/// Unknown keys, missing token or host, out-of-range values.
pub fn from_section(name: &str, section: toml::Table) -> Result<AdaSource, ConfigError> {
    let config: AdaConfig = section.try_into()?;
    let settings = config.validate()?;
    AdaSource::new(name, settings).map_err(|e| ConfigError {
        key: None,
        message: e.to_string(),
        hint: None,
    })
}

/// Builds a configured Ada source.
///
/// # Errors
/// As [`from_section`].
pub fn build(name: &str, section: toml::Table) -> Result<Arc<dyn Source>, ConfigError> {
    Ok(Arc::new(from_section(name, section)?))
}
