//! The Gladly connector.
//!
//! # What it syncs
//! * Stream `export`: every COMPLETED export job, oldest first by `updatedAt`, each of its files
//!   (`agents.jsonl`, `topics.jsonl`, `customers.jsonl`, `conversation_items.jsonl`; any may be
//!   missing) streamed line by line into `gladly.agents`, `gladly.topics`, `gladly.customers`
//!   and `gladly.conversation_items` (+ `talkhouse.model_messages` for messages). Every content
//!   type lands, unknown future ones included (typed columns where known, `_raw` always).
//! * Streams `customers` (after `export`) and `conversations` (after `customers`):
//!   `GET /customer-profiles/{id}` for every customer of every new job, and for every
//!   conversation its items name, its metadata (→ `gladly.conversations`,
//!   `gladly.conversation_assignments`: each inbox/agent pair a conversation was seen in, and
//!   `talkhouse.model_conversations`). Each id is enriched once a sync, at the first new job
//!   that names it (its `seen_at`): a later job of the same sync would get the same answer.
//!   And each path is asked once a sync (`memo.rs`): what a merge makes one of the two streams
//!   read (a 301, the surviving customer's conversation list, a survivor's items) the other
//!   takes from the run's memo; webhooks and `events` ask afresh.
//!   A conversation's metadata comes from its row of the conversation report read in the same
//!   sync (`conversation_report`, which runs beside `customers`, so it has finished when
//!   `conversations` starts) without any request: customer, current inbox and agent, status,
//!   created and last closed. Its `topic_ids` and `custom_attributes` stay NULL (the report
//!   has no ids for topics, only names in `gladly.conversation_report.topics`, and no custom
//!   attributes; webhooks and `events` still read conversations over REST, with both), its
//!   times have the report's precision (Gladly's CSV has minutes), and its `_raw` holds those
//!   fields under their REST names plus the report row (`conversationExportReport`). A
//!   conversation the report has no row for (its day not in the report yet, `reports`
//!   without `conversation_report`, a customer deleted on request, an enrichment resumed in a
//!   later sync) or shows as `MERGED` is read with `GET /conversations/{id}` as before, so a
//!   404 still tells a merge loser or a deletion. `conversations_from_report = false` reads
//!   every conversation over REST (topic ids and custom attributes included), at one request
//!   each. Both streams share the organisation's 10 requests/s, so running them one after the
//!   other costs no time, and it makes the first sighting of an assignment (its `seen_at`) the
//!   same on every run: a merged customer's conversations, re-read by `customers`, would
//!   otherwise race the same rows from `conversations`.
//! * Streams `agents`, `topics` (with `parent_id`), `inboxes`, `teams` (with `agent_ids`, so
//!   that work can be grouped by team) (after `export`): the full lists.
//! * Report streams (see `reports.rs`), each `POST /reports` over day windows, CSV answers:
//!   `contacts` (`ContactExportReportV3` → `gladly.contacts`, key `contact_id`),
//!   `work_sessions` (`WorkSessionsReportV3` → `gladly.work_sessions`, key
//!   `contact_session_id` and `agent_id`, `""` where no agent handled the contact) and `conversation_report`
//!   (`ConversationExportReport` → `gladly.conversation_report`, key `conversation_id`):
//!   typed columns named after the headers (snake_case) plus `_raw`. `reports` picks them
//!   (default all three). They run after `export`, beside the enrichment streams. A contact is
//!   also a session of the model (`talkhouse.model_sessions`, with its handle time), a work
//!   session with an agent is agent work (`talkhouse.model_work`), and a team lists its agents
//!   in `talkhouse.model_teams` (see `model_rows.rs`).
//! * Webhooks ([`Source::verify_push`] / [`Source::process_push`]): the item a
//!   `CONTACT/MESSAGE_*` names, the conversation and its item list for `CONVERSATION*` events,
//!   merges for `CUSTOMER/MERGED` (customers, and conversations: see Quirks), the profile for
//!   `CUSTOMER_PROFILE/*`.
//! * Stream `events` (only with `events = true`; after `conversations`): Gladly's Events API
//!   polled for `CONVERSATION`, `CONTACT`, `CUSTOMER` and `CUSTOMER_PROFILE` events, each
//!   turned into the fetch its webhook would make (see `events.rs`), for organisations that
//!   cannot take webhooks. It finds what changed since the last export, agents' replies
//!   included (their conversation is read again), which no webhook announces.
//! * The id history: `gladly.customer_merges` and `gladly.conversation_merges` (`old_id →
//!   new_id`, `seen_at`), and with every row of them, in the same commit, a row of
//!   `talkhouse.model_id_merges` (`entity` `customer` or `conversation`).
//! * [`load_dir_source`]: the same tables from export files a user downloaded.
//!
//! # Auth
//! HTTP Basic: `email` of a user with the API User permission and its API `token`. 401 and 403
//! fail the stream with a hint. Webhooks authenticate with `webhook_username`/`webhook_password`
//! (Basic) or `webhook_header = { name, value }`, compared in constant time; without either,
//! every webhook is refused.
//!
//! # Pagination
//! None exists. Lists are whole arrays; the conversation item list stops at 1000
//! (`Gladly-Limited-Data: true`), the export carries the rest.
//!
//! # Rate limits
//! 10 requests/s per organisation: one client-wide limiter (`requests_per_second`, default 10)
//! shared by every stream, `max_concurrency` (default 4) requests in flight; 429 and 5xx are
//! retried with full-jitter backoff (and `Retry-After` when present) by `talkhouse-http`.
//! `POST /reports` has a budget of its own, 10 a minute and 2 at once per organisation: a
//! second client (`reports_concurrency`, default 2, with its own back-off, so a 429 on a report
//! stalls no other stream) behind a limiter that starts at most `reports_per_minute` (10)
//! requests in any minute.
//! What a sync spends (see `docs/benchmarks.md`, `bench/gladly-requests`): one GET per customer
//! of the new jobs, none per conversation the conversation report covers (one report request
//! per `reports_window_days` window holds them all), one per conversation it does not, and
//! nothing twice in one sync.
//!
//! # Incremental cursor
//! `export`: a ledger of processed job ids (→ `updatedAt`), plus the position (`job`, `file`,
//! `line`) of an interrupted job, checkpointed every `checkpoint_every` lines; a rerun skips
//! what landed. Jobs older than 16 days leave the ledger. When the newest processed job is
//! more than `retention_warning_days` (12) days older than the newest job, or jobs are missing
//! in between, the state's `warnings` say so and the sync logs a warning (Gladly deletes jobs
//! after 14 days). Enrichment streams keep their own ledger of jobs and a position inside the
//! current one (checkpoint every 25 ids). `events`: the end of the last time range read (Gladly
//! keeps events 24 hours: a first run starts 24 hours back; a cursor older than that starts
//! there too, and the lost hours are a warning in the state, which `talkhouse status` shows). Report streams keep the last day read, in the
//! organisation's zone (`GET /organization`; "today" from the `Date` of Gladly's answer): the
//! first sync reads `reports_backfill_days` (90) back, later ones re-read the last
//! `reports_reread_days` (7) for contacts and work sessions and `conversation_report_reread_days`
//! (30) for the conversation report, which Gladly computes when asked; windows of
//! `reports_window_days` (7) inclusive days, a checkpoint after each.
//!
//! # Quirks
//! * Blank lines are skipped; malformed lines are quarantined (`job/file:line`); a job without
//!   a file, an empty file, a file without trailing newline are fine; the same record in two
//!   jobs merges by id; items without `conversationId` land without model rows.
//! * Customer merges: a 301 `moved` (new id from `meta.new` in any error shape, or `Location`)
//!   records `old_id → new_id` in `gladly.customer_merges`, marks the old profile deleted
//!   (`_deleted_at`, never redacted), fetches the survivor and re-reads its conversations and
//!   their items, so items that moved in an OPEN→OPEN merge land under their new ids.
//! * Conversation merges: merging an OPEN conversation into an OPEN one deletes the first for
//!   good (404, no 301) and moves its items into the second under new item ids. A 404 is taken
//!   for such a merge when a `CUSTOMER/MERGED` event named the destination conversation, or
//!   when the customer its items named answers 301 and the customer it became has an open
//!   conversation (a customer has at most one). Then `old → new` lands in
//!   `gladly.conversation_merges`, the old conversation's rows (conversation, items,
//!   assignments) are marked deleted (`_deleted_at`, whatever `on_vendor_delete` says: nothing
//!   was deleted), its model rows go, so that `talkhouse.model_messages` does not count its
//!   messages beside their new ids, and the survivor is read again with its items. A merge
//!   only the export shows (no event, and no job naming the old conversation after it) is not
//!   seen: enable webhooks or `events`.
//! * Any other 404 for a customer or conversation (GDPR/CCPA deletion) erases its rows in the
//!   vendor tables and the model, per `on_vendor_delete`.
//! * `recordingDuration` may be a string. Timestamps have 0–9 fraction digits.
//! * `customers.jsonl` has another shape than the REST profile (`origin` says which one a row
//!   holds); enrichment replaces the file row with the profile.
//! * `model_conversations.channel` is the channel of the conversation's earliest message the
//!   sync saw (Gladly conversations span channels and carry none): in the export job being
//!   enriched and in every item list of it the sync read, whichever read lands last. The
//!   survivor of an OPEN→OPEN merge so gets the channel of the oldest item it holds now (one
//!   that moved in: its list shows it, the job that names the survivor may not). A later sync
//!   that enriches the conversation again knows only its own job's messages.
//! * Reports: a UTF-8 byte-order mark may lead; quoted fields hold commas and newlines; blank
//!   is NULL; timestamps without an offset are in the organisation's zone; an empty body is an
//!   empty window. Contact and work-session reports keep the ids they were made with (a merged
//!   customer's old id, a deleted conversation's id), so their rows are not erased by 404s.
//!   Work sessions whose contact has not ended are left for a later window. A report of exactly
//!   a known row cap (`reports_row_caps`, 100000 and 1000000: Gladly is reported to cut
//!   reports there silently) and headers without a column are warnings in the stream's state
//!   (`talkhouse status`); unreadable rows are quarantined as `<metric set> <from>..<to>:line N`.

mod config;
mod enrich;
mod events;
mod export;
mod folder;
mod generator;
pub mod inputs;
mod lines;
mod memo;
mod merges;
mod model_rows;
mod push;
mod records;
mod report_csv;
mod reports;
mod source;
mod tables;

use std::path::PathBuf;
use std::sync::Arc;

use talkhouse_model::Source;

use crate::ConfigError;

pub use config::{GladlyConfig, HeaderAuth};
pub use merges::follow_id_history;
pub use records::{FileKind, channel_of, sender_role};
pub use source::{GladlySource, constant_time_eq};
pub use tables::{
    AGENTS, ASSIGNMENTS, CONTACTS, CONVERSATION_MERGES, CONVERSATION_REPORT, CONVERSATIONS,
    CUSTOMERS, INBOXES, ITEMS, MERGES, TEAMS, TOPICS, WORK_SESSIONS,
};

/// Builds a configured Gladly source.
///
/// # Errors
/// Unknown keys, or a missing `base_url`, `email` or `token`.
pub fn build(name: &str, section: toml::Table) -> Result<Arc<dyn Source>, ConfigError> {
    let cfg: GladlyConfig = section.try_into()?;
    Ok(source::boxed(GladlySource::api(name, cfg)?))
}

/// A source that loads a folder holding one export job's files, or a folder of such folders
/// (loaded in name order), into the same tables with the same idempotency (stream `files`).
/// `section` is the source's configuration, if any (only `on_vendor_delete` and
/// `checkpoint_every` matter here).
///
/// # Errors
/// Unknown keys in the section, or a folder that does not exist.
pub fn load_dir_source(
    name: &str,
    section: Option<toml::Table>,
    dir: PathBuf,
) -> Result<Arc<dyn Source>, ConfigError> {
    let cfg: GladlyConfig = section.unwrap_or_default().try_into()?;
    if !dir.is_dir() {
        return Err(ConfigError { key: None, message: format!("{} is not a folder", dir.display()), hint: Some("point --dir at a folder of export files (conversation_items.jsonl, customers.jsonl, …) or a folder of such folders".into()) });
    }
    Ok(source::boxed(GladlySource::folder(name, cfg, dir)))
}
