//! The Gladly emulator: the export, REST and webhook APIs as Gladly documents and serves them.
//!
//! # What it serves
//! Under `/api/v1`, with HTTP Basic auth (user `api-user@emulator.gladly.com`, token
//! `gladly-emulator-token`; `agent@emulator.gladly.com` with the same token lacks the API User
//! permission and gets 403; anything else 401):
//! * `GET /export/schedules`, `GET /export/jobs` (`status`, `startAt`/`endAt` on `updatedAt`,
//!   default the last 14 days), `GET /export/jobs/{id}`, `GET /export/jobs/{id}/files/{name}`:
//!   one DAILY job per UTC day, PENDING → IN_PROGRESS → COMPLETED (about 03:00–03:50 the next
//!   day); jobs and their files vanish 14 days after `updatedAt` (404). Files are generated line
//!   by line as they are sent, so a job's file is never held in memory.
//! * `GET /conversation-items/{id}` (400 `invalid` for the unknown future type),
//!   `GET /conversations/{id}/items` (≤1000, ascending, `Gladly-Limited-Data: true|false`),
//!   `GET /conversations/{id}` (inbox as it stands now), `GET /customer-profiles/{id}`
//!   (301 `moved` for merged customers, 404 after deletion), `GET /customers/{id}/conversations`,
//!   `GET /agents[/{id}]`, `GET /inboxes[/{id}]`, `GET /topics[/{id}]` (with `parentId`),
//!   `GET /teams[/{id}]` (`{id, name, description, agentIds}`; one agent in two teams),
//!   `GET /organization` (`{id, loginDomain, name, timezone, gladlyUrl}`).
//! * `POST /reports`: contact, work-session and conversation reports as CSV, see [`reports`].
//! * `GET /events` (`startAt` required and at most 24 hours old, `endAt` at most now, repeated
//!   `entities`; 400 otherwise): the webhook events of [`webhooks`] in `[startAt, endAt)` as
//!   JSON lines (`application/x-jsonlines`), oldest first.
//! * Per-organisation buckets of 10 requests/s per HTTP method. With
//!   `EmulatorOptions::strict_rate_limits` a request past the limit gets 429 with
//!   `Ratelimit-Limit-Second` and `Ratelimit-Remaining-Second` (the headers come on every answer).
//!   Reports have their own budget instead: 10 a minute, 2 at once.
//! * Every answer's `Date` is the emulator's clock.
//!
//! Test helpers outside `/api/v1`: `GET /_emulator/gladly/downloads` (file downloads per
//! `jobId/file`), `GET /_emulator/gladly/events?from=…&to=…` (the webhook events of that
//! window, see [`webhooks`]), `GET /_emulator/gladly/reports` (every report request),
//! `GET /_emulator/gladly/requests` (authenticated API requests per `METHOD path`, query left
//! out).
//!
//! # Data and quirks
//! See [`data`]: a time grid of regular conversations over the 30 days before the start clock
//! (and on, as the clock advances), plus special conversations for the data-model rules:
//! a customer merge (301; its conversation keeps its id), an OPEN→OPEN merge (the loser's
//! conversation id 404s for good, its items move to the survivor under new item ids; the
//! `CUSTOMER/MERGED` event names both conversations), a GDPR deletion (404), an inbox change
//! after the start day, a topic renamed and re-parented, two topics named "Other", a
//! conversation of 1,100 items, one of every content type (plus the unknown `VIDEO_CALL`).
//! Job files, by day offset from the start day modulo 7: a blank and a malformed line (−2), no `agents.jsonl` (−3), an empty
//! `topics.jsonl` (−4), no trailing newline in `customers.jsonl` (−5); the job of day −10
//! (modulo 14) FAILED. Job windows overlap by five minutes, so some items are in two jobs; one
//! customer activity a day has no `conversationId`. Timestamps carry 0–9 fraction digits.
//!
//! # Switches (`--variant`)
//! * `gladly.retry_after=on`: 429s add `Retry-After: 1` (default off, as documented).
//! * `gladly.error_shape=array|object|bare`: `{"errors":[…]}` (default), `{"errors":{…}}`, `[…]`.
//! * `gladly.jobs_order=desc|asc`: order of `GET /export/jobs` (default desc).
//! * `gladly.extra_types=on`: VOICE_AI_MESSAGE and TWITTER items appear in exports.
//! * `gladly.duration_string=on`: `recordingDuration` as a string (`"95"`).
//! * `gladly.topic_parent_in_file=on`: `topics.jsonl` carries `parentId`.
//! * `gladly.population_files=full`: agents/topics files list everyone, not the job's.
//! * `gladly.moved_location=on`: the 301 for a merged customer carries `Location`.
//! * `gladly.report_row_cap=N`: reports are cut at N rows (default 100000).
//! * `gladly.report_extra_column=on`: the contact report has a column talkhouse does not know.
//! * `gladly.org_timezone=ZONE`: the organisation's zone (default `America/New_York`).
//!
//! # Ground truth
//! Rows a connector must hold after syncing every job visible from the start clock on (jobs
//! with `updatedAt` in `[min(start, now) − 14 d, now]`), enriching each customer and
//! conversation named in them, following 301s (and re-reading the surviving customer's
//! conversations and items), applying 404s as deletions, reading all agents, topics and
//! inboxes, and reading the three reports over every day since the world's origin (below
//! their row cap). `conversation_merges` holds the OPEN→OPEN loser once a job held its items
//! and the merge happened (a 404 whose customer moved to one with an open conversation), and
//! `model_id_merges` a row per customer and conversation merge; the loser's items are not
//! live, and `model_messages` counts only live messages. `extra.merged_conversations` maps
//! the loser's id to the survivor's. `extra.quarantined` counts the malformed lines of those
//! jobs and the malformed report row.
//!
//! # Credentials
//! Besides `email` and `token`: `reports_backfill_days` and `reports_window_days` so that one
//! report request per stream covers the world's 30 days of history (or the days of
//! `EmulatorOptions::backfill_days`), which keeps a sync inside the 10 report requests a minute.

mod api;
pub mod data;
pub mod files;
pub mod reports;
pub mod truth;
pub mod webhooks;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use serde_json::json;

use crate::server::VendorApp;
use crate::{Credentials, EmulatorOptions};
use api::{
    AppState, St, agent, agents, conversation, conversation_items, customer,
    customer_conversations, downloads, events, events_api, file, guard, inbox, inboxes, item, job,
    jobs, organization, report, report_log, request_log, schedules, team, teams, topic, topics,
};
use data::World;

pub use truth::truth;
pub use webhooks::{SendOptions, SendReport, WebhookTarget, send_webhooks};

/// The API user's e-mail.
pub const API_USER: &str = "api-user@emulator.gladly.com";
/// The API token.
pub const API_TOKEN: &str = "gladly-emulator-token";
/// A user without the API User permission (403).
pub const NO_PERMISSION_USER: &str = "agent@emulator.gladly.com";

/// Builds the Gladly emulator.
pub fn app(opts: &EmulatorOptions) -> VendorApp {
    let world = Arc::new(World::new(opts));
    let v = &opts.variants;
    let state: St = Arc::new(AppState {
        world: world.clone(),
        clock: opts.clock.clone(),
        strict: opts.strict_rate_limits,
        retry_after: v.on("gladly.retry_after"),
        error_shape: v.get_or("gladly.error_shape", "array").to_owned(),
        jobs_desc: v.get_or("gladly.jobs_order", "desc") != "asc",
        moved_location: v.on("gladly.moved_location"),
        buckets: Mutex::new(BTreeMap::new()),
        downloads: Mutex::new(BTreeMap::new()),
        requests: Mutex::new(BTreeMap::new()),
        report_gate: reports::ReportGate::new(opts.strict_rate_limits),
        report_options: reports::ReportOptions {
            row_cap: v
                .get("gladly.report_row_cap")
                .and_then(|n| n.parse().ok())
                .unwrap_or(100_000),
            extra_column: v.on("gladly.report_extra_column"),
        },
    });
    let api = Router::new()
        .route("/api/v1/export/schedules", get(schedules))
        .route("/api/v1/export/jobs", get(jobs))
        .route("/api/v1/export/jobs/{id}", get(job))
        .route("/api/v1/export/jobs/{id}/files/{name}", get(file))
        .route("/api/v1/conversation-items/{id}", get(item))
        .route("/api/v1/conversations/{id}/items", get(conversation_items))
        .route("/api/v1/conversations/{id}", get(conversation))
        .route("/api/v1/customer-profiles/{id}", get(customer))
        .route(
            "/api/v1/customers/{id}/conversations",
            get(customer_conversations),
        )
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{id}", get(agent))
        .route("/api/v1/inboxes", get(inboxes))
        .route("/api/v1/inboxes/{id}", get(inbox))
        .route("/api/v1/topics", get(topics))
        .route("/api/v1/topics/{id}", get(topic))
        .route("/api/v1/teams", get(teams))
        .route("/api/v1/teams/{id}", get(team))
        .route("/api/v1/organization", get(organization))
        .route("/api/v1/reports", post(report))
        .route("/api/v1/events", get(events_api))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .route("/_emulator/gladly/downloads", get(downloads))
        .route("/_emulator/gladly/reports", get(report_log))
        .route("/_emulator/gladly/requests", get(request_log))
        .route("/_emulator/gladly/events", get(events))
        .with_state(state.clone());
    let clock = opts.clock.clone();
    let truth_world = world;
    // One report request per stream covers the history (30 days, or the demo's days).
    let report_days = opts.backfill_days.unwrap_or(31);
    VendorApp {
        router: api,
        credentials: Credentials {
            fields: vec![
                ("email", json!(API_USER)),
                ("token", json!(API_TOKEN)),
                ("reports_backfill_days", json!(report_days)),
                ("reports_window_days", json!(report_days + 1)),
            ],
        },
        truth: Arc::new(move || truth(&truth_world, clock.now())),
    }
}
