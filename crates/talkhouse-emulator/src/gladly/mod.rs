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
//! See [`world`]: a time grid of regular conversations over the 30 days before the start clock
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

pub mod files;
pub mod reports;
pub mod webhooks;
pub mod world;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::rate::Bucket;
use crate::server::VendorApp;
use crate::{Clock, Credentials, EmulatorOptions, GroundTruth};
use world::{CustomerState, World, kind};

pub use webhooks::{SendOptions, SendReport, WebhookTarget, send_webhooks};

/// The API user's e-mail.
pub const API_USER: &str = "api-user@emulator.gladly.com";
/// The API token.
pub const API_TOKEN: &str = "gladly-emulator-token";
/// A user without the API User permission (403).
pub const NO_PERMISSION_USER: &str = "agent@emulator.gladly.com";

struct AppState {
    world: Arc<World>,
    clock: Clock,
    strict: bool,
    retry_after: bool,
    error_shape: String,
    jobs_desc: bool,
    moved_location: bool,
    buckets: Mutex<BTreeMap<String, Arc<Bucket>>>,
    downloads: Mutex<BTreeMap<String, u64>>,
    /// Authenticated API requests per `METHOD path`.
    requests: Mutex<BTreeMap<String, u64>>,
    report_gate: reports::ReportGate,
    report_options: reports::ReportOptions,
}

type St = Arc<AppState>;

impl AppState {
    fn bucket(&self, method: &Method) -> Arc<Bucket> {
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        b.entry(method.to_string())
            .or_insert_with(|| Arc::new(Bucket::new(10.0, 10.0)))
            .clone()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn error(
        &self,
        status: StatusCode,
        code: &str,
        detail: &str,
        attr: Option<&str>,
        meta: Option<Value>,
    ) -> Response {
        let mut e = json!({"code": code, "detail": detail});
        if let Some(a) = attr {
            e["attr"] = json!(a);
        }
        if let Some(m) = meta {
            e["meta"] = m;
        }
        let body = match self.error_shape.as_str() {
            "object" => json!({"errors": e}),
            "bare" => json!([e]),
            _ => json!({"errors": [e]}),
        };
        (status, axum::Json(body)).into_response()
    }

    /// Sets `Date` to the emulator's clock (the server's clock is the emulated one).
    fn date(&self, resp: &mut Response) {
        let date = self.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(v) = HeaderValue::from_str(&date) {
            resp.headers_mut().insert(header::DATE, v);
        }
    }

    fn not_found(&self, what: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "not_exist",
            &format!("{what} does not exist"),
            None,
            None,
        )
    }
}

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

/// Auth first (401/403), then the per-method rate limit (429).
async fn guard(State(st): State<St>, req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_basic);
    match auth {
        Some((user, pass)) if pass == API_TOKEN && user == API_USER => {}
        Some((user, pass)) if pass == API_TOKEN && user == NO_PERMISSION_USER => {
            return st.error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "user does not have the API User permission",
                None,
                None,
            );
        }
        _ => {
            let mut r = st.error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "invalid credentials",
                None,
                None,
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Gladly\""),
            );
            return r;
        }
    }
    *st.requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(format!("{} {}", req.method(), req.uri().path()))
        .or_default() += 1;
    if req.uri().path() == "/api/v1/reports" {
        // Reports have a budget of their own (see `report`).
        let mut resp = next.run(req).await;
        st.date(&mut resp);
        return resp;
    }
    let bucket = st.bucket(req.method());
    let took = bucket.take();
    if took.is_err() && st.strict {
        let mut r = st.error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "rate limit exceeded",
            None,
            None,
        );
        let h = r.headers_mut();
        h.insert("Ratelimit-Limit-Second", HeaderValue::from_static("10"));
        h.insert("Ratelimit-Remaining-Second", HeaderValue::from_static("0"));
        if st.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        return r;
    }
    let remaining = bucket.remaining();
    let mut resp = next.run(req).await;
    st.date(&mut resp);
    let h = resp.headers_mut();
    h.insert("Ratelimit-Limit-Second", HeaderValue::from_static("10"));
    if let Ok(v) = HeaderValue::from_str(&remaining.to_string()) {
        h.insert("Ratelimit-Remaining-Second", v);
    }
    resp
}

fn parse_basic(v: &str) -> Option<(String, String)> {
    use base64::Engine;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn json_ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

async fn schedules(State(st): State<St>) -> Response {
    let now = st.now();
    let w = &st.world;
    let next = now.timestamp().div_euclid(86_400) * 86_400 + 86_400;
    let next = DateTime::from_timestamp(next, 0).unwrap_or(now);
    json_ok(json!([{
        "id": w.id(kind::SCHEDULE, 0, 0),
        "frequency": "DAILY",
        "type": "CONVERSATIONS",
        "nextStartAt": World::ts(next, 3),
        "updatedAt": World::ts(w.origin, 3),
    }]))
}

#[derive(serde::Deserialize)]
struct JobQuery {
    status: Option<String>,
    #[serde(rename = "startAt")]
    start_at: Option<String>,
    #[serde(rename = "endAt")]
    end_at: Option<String>,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn jobs(State(st): State<St>, Query(q): Query<JobQuery>) -> Response {
    let now = st.now();
    let start = match q.start_at.as_deref().map(parse_time) {
        Some(None) => {
            return st.error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "startAt is not ISO 8601",
                Some("startAt"),
                None,
            );
        }
        Some(Some(t)) => t,
        None => now - Duration::days(14),
    };
    let end = match q.end_at.as_deref().map(parse_time) {
        Some(None) => {
            return st.error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "endAt is not ISO 8601",
                Some("endAt"),
                None,
            );
        }
        Some(Some(t)) => t,
        None => now,
    };
    if end < start {
        return st.error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "endAt must not be before startAt",
            Some("endAt"),
            None,
        );
    }
    let w = &st.world;
    let mut out: Vec<Value> = w
        .jobs_at(now)
        .iter()
        .map(|j| w.job_json(j, now))
        .filter(|v| {
            let u = v["updatedAt"].as_str().and_then(parse_time).unwrap_or(now);
            u >= start && u <= end && q.status.as_deref().is_none_or(|s| v["status"] == s)
        })
        .collect();
    if st.jobs_desc {
        out.reverse();
    }
    json_ok(Value::Array(out))
}

fn find_job(st: &AppState, id: &str) -> Option<world::Job> {
    let (k, day, _) = st.world.parse_id(id)?;
    if k != kind::JOB {
        return None;
    }
    let job = st.world.job(i64::try_from(day).ok()?);
    st.world.job_status(&job, st.now())?;
    Some(job)
}

async fn job(State(st): State<St>, Path(id): Path<String>) -> Response {
    match find_job(&st, &id) {
        Some(j) => json_ok(st.world.job_json(&j, st.now())),
        None => st.not_found("job"),
    }
}

async fn file(State(st): State<St>, Path((id, name)): Path<(String, String)>) -> Response {
    let Some(j) = find_job(&st, &id) else {
        return st.not_found("job");
    };
    if !st.world.job_files(&j, st.now()).contains(&name.as_str()) {
        return st.not_found("file");
    }
    let Some(kind) = files::FileKind::parse(&name) else {
        return st.not_found("file");
    };
    *st.downloads
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(format!("{id}/{name}"))
        .or_default() += 1;
    let chunks = files::Chunks::new(&st.world, &j, kind);
    let body = Body::from_stream(futures::stream::iter(chunks));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

fn conv_by_id(st: &AppState, id: &str) -> Option<world::ConvSpec> {
    let (k, key, _) = st.world.parse_id(id)?;
    if k != kind::CONVERSATION {
        return None;
    }
    let c = st.world.conversation(key)?;
    st.world.conversation_exists(&c, st.now()).then_some(c)
}

async fn item(State(st): State<St>, Path(id): Path<String>) -> Response {
    let w = &st.world;
    let now = st.now();
    let Some((k, key, pos)) = w.parse_id(&id) else {
        return st.not_found("conversation item");
    };
    if k == kind::ACTIVITY {
        let v = w.render_activity(i64::try_from(key).unwrap_or(0));
        let due = w
            .activity(i64::try_from(key).unwrap_or(0))
            .is_some_and(|(_, _, at)| at <= now);
        return if due && !v.is_null() {
            json_ok(v)
        } else {
            st.not_found("conversation item")
        };
    }
    let owner_key = match k {
        kind::ITEM => key,
        kind::MOVED_ITEM => w.open_merge().1,
        _ => return st.not_found("conversation item"),
    };
    let Some(c) = w
        .conversation(owner_key)
        .filter(|c| w.conversation_exists(c, now))
    else {
        return st.not_found("conversation item");
    };
    let found = w
        .items_at(&c, now)
        .into_iter()
        .find(|(iid, _, _)| *iid == id);
    match found {
        Some((_, _, i)) if i.ct == world::Ct::Unknown => st.error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "conversation item type is not supported by the API",
            Some("id"),
            None,
        ),
        Some((iid, owner, i)) => {
            let _ = pos;
            json_ok(w.render_item(&iid, owner, &c, &i, now))
        }
        None => st.not_found("conversation item"),
    }
}

#[derive(serde::Deserialize)]
struct ItemsQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

async fn conversation_items(
    State(st): State<St>,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> Response {
    let Some(c) = conv_by_id(&st, &id) else {
        return st.not_found("conversation");
    };
    let w = &st.world;
    let now = st.now();
    let mut all: Vec<Value> = w
        .items_at(&c, now)
        .iter()
        .map(|(iid, owner, i)| w.render_item(iid, *owner, &c, i, now))
        .collect();
    if let Some(s) = &q.session_id {
        all.retain(|v| v["content"]["sessionId"] == *s || v["sessionId"] == *s);
    }
    let limited = all.len() > 1000;
    all.truncate(1000);
    let mut h = HeaderMap::new();
    h.insert(
        "Gladly-Limited-Data",
        HeaderValue::from_static(if limited { "true" } else { "false" }),
    );
    (h, axum::Json(Value::Array(all))).into_response()
}

async fn conversation(State(st): State<St>, Path(id): Path<String>) -> Response {
    match conv_by_id(&st, &id) {
        Some(c) => json_ok(st.world.conversation_rest(&c, st.now())),
        None => st.not_found("conversation"),
    }
}

fn customer_index(st: &AppState, id: &str) -> Option<u64> {
    let (k, idx, _) = st.world.parse_id(id)?;
    (k == kind::CUSTOMER).then_some(idx)
}

async fn customer(State(st): State<St>, Path(id): Path<String>) -> Response {
    let w = &st.world;
    let Some(c) = customer_index(&st, &id) else {
        return st.not_found("customer");
    };
    match w.customer_state(c, st.now()) {
        CustomerState::Live => json_ok(w.customer_rest(c)),
        CustomerState::Missing => st.not_found("customer"),
        CustomerState::Moved(to) => {
            let new = w.customer_id(to);
            let mut r = st.error(
                StatusCode::MOVED_PERMANENTLY,
                "moved",
                "customer id has changed",
                Some("customerId"),
                Some(json!({"old": id, "new": new})),
            );
            if st.moved_location
                && let Ok(v) = HeaderValue::from_str(&format!("/api/v1/customer-profiles/{new}"))
            {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    }
}

async fn customer_conversations(State(st): State<St>, Path(id): Path<String>) -> Response {
    let w = &st.world;
    let now = st.now();
    let Some(c) = customer_index(&st, &id) else {
        return st.not_found("customer");
    };
    if w.customer_state(c, now) != CustomerState::Live {
        return st.not_found("customer");
    }
    let mut all: Vec<Value> = w
        .conversations_of(c, now)
        .iter()
        .map(|c| w.conversation_rest(c, now))
        .collect();
    let limited = all.len() > 100;
    all.truncate(100);
    let mut h = HeaderMap::new();
    h.insert(
        "Gladly-Limited-Data",
        HeaderValue::from_static(if limited { "true" } else { "false" }),
    );
    (h, axum::Json(Value::Array(all))).into_response()
}

fn small_index(st: &AppState, id: &str, want: u8, max: u32) -> Option<u32> {
    let (k, idx, _) = st.world.parse_id(id)?;
    let idx = u32::try_from(idx).ok()?;
    (k == want && idx < max).then_some(idx)
}

async fn agents(State(st): State<St>) -> Response {
    json_ok(Value::Array(
        (0..st.world.agents).map(|a| st.world.agent(a)).collect(),
    ))
}

async fn agent(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::AGENT, st.world.agents) {
        Some(a) => json_ok(st.world.agent(a)),
        None => st.not_found("agent"),
    }
}

async fn teams(State(st): State<St>) -> Response {
    json_ok(Value::Array(
        (0..st.world.teams).map(|t| st.world.team(t)).collect(),
    ))
}

async fn team(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::TEAM, st.world.teams) {
        Some(t) => json_ok(st.world.team(t)),
        None => st.not_found("team"),
    }
}

async fn inboxes(State(st): State<St>) -> Response {
    json_ok(Value::Array(
        (0..st.world.inboxes).map(|b| st.world.inbox(b)).collect(),
    ))
}

async fn inbox(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::INBOX, st.world.inboxes) {
        Some(b) => json_ok(st.world.inbox(b)),
        None => st.not_found("inbox"),
    }
}

async fn topics(State(st): State<St>) -> Response {
    let now = st.now();
    json_ok(Value::Array(
        (0..st.world.topics)
            .map(|t| st.world.topic(t, now, true))
            .collect(),
    ))
}

async fn topic(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::TOPIC, st.world.topics) {
        Some(t) => json_ok(st.world.topic(t, st.now(), true)),
        None => st.not_found("topic"),
    }
}

async fn organization(State(st): State<St>) -> Response {
    json_ok(json!({
        "id": st.world.id(kind::ORGANIZATION, 0, 0),
        "loginDomain": "emulator.gladly.com",
        "name": "Acme (emulated)",
        "timezone": st.world.timezone.name(),
        "gladlyUrl": "https://acme.gladly.com",
    }))
}

/// `POST /reports`: validates, passes the report budget, builds the CSV.
async fn report(State(st): State<St>, body: axum::body::Bytes) -> Response {
    let Ok(q) = serde_json::from_slice::<Value>(&body) else {
        return st.error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "body is not JSON",
            None,
            None,
        );
    };
    let text = |k: &str| q.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let metric_set = text("metricSet");
    if !reports::METRIC_SETS.contains(&metric_set.as_str()) {
        return st.error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "unknown metric set",
            Some("metricSet"),
            None,
        );
    }
    let day = |k: &str| chrono::NaiveDate::parse_from_str(&text(k), "%Y-%m-%d").ok();
    let (Some(from), Some(to)) = (day("startAt"), day("endAt")) else {
        return st.error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "startAt and endAt must be YYYY-MM-DD",
            Some("startAt"),
            None,
        );
    };
    if to < from {
        return st.error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "endAt must not be before startAt",
            Some("endAt"),
            None,
        );
    }
    let tz = match q.get("timezone").and_then(Value::as_str) {
        None => st.world.timezone,
        Some(name) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                return st.error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "unknown timezone",
                    Some("timezone"),
                    None,
                );
            }
        },
    };
    let admitted = match st
        .report_gate
        .admit(&metric_set, &text("startAt"), &text("endAt"))
    {
        Ok(a) => a,
        Err(wait) => {
            let mut r = st.error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "report rate limit exceeded (10 a minute, 2 at once)",
                None,
                None,
            );
            if st.retry_after {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            return r;
        }
    };
    tokio::time::sleep(reports::BUILD_TIME).await;
    let Some(csv) = reports::render(
        &st.world,
        &metric_set,
        tz,
        (from, to),
        st.now(),
        st.report_options,
    ) else {
        admitted.answered(400, 0);
        return st.error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "unknown metric set",
            Some("metricSet"),
            None,
        );
    };
    admitted.answered(200, csv.records);
    let file = format!("attachment; filename=\"{metric_set}_{from}_{to}.csv\"");
    let mut resp = (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        csv.body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&file) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

async fn report_log(State(st): State<St>) -> Response {
    json_ok(st.report_gate.log_json())
}

async fn request_log(State(st): State<St>) -> Response {
    let r = st
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    json_ok(json!(r))
}

async fn downloads(State(st): State<St>) -> Response {
    let d = st
        .downloads
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    json_ok(json!(d))
}

/// `GET /events`: the events of `[startAt, endAt)` (`endAt` at most now, by default now) of the
/// `entities` asked for (every entity when none is), as JSON lines, oldest first. 400 when
/// `startAt` is missing, unreadable or more than 24 hours old, when `endAt` is before it, or
/// for an unknown entity.
async fn events_api(State(st): State<St>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let now = st.now();
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let bad = |detail: &str, attr: &str| {
        st.error(StatusCode::BAD_REQUEST, "invalid", detail, Some(attr), None)
    };
    let Some(start) = param("startAt") else {
        return st.error(
            StatusCode::BAD_REQUEST,
            "blank",
            "startAt is required",
            Some("startAt"),
            None,
        );
    };
    let Some(start) = parse_time(start) else {
        return bad("startAt is not ISO 8601", "startAt");
    };
    if start < now - Duration::hours(24) {
        return bad("startAt must be within the last 24 hours", "startAt");
    }
    let end = match param("endAt").map(parse_time) {
        None => now,
        Some(Some(t)) => t.min(now),
        Some(None) => return bad("endAt is not ISO 8601", "endAt"),
    };
    if end < start {
        return bad("endAt must not be before startAt", "endAt");
    }
    let entities: Vec<&str> = q
        .iter()
        .filter(|(n, _)| n == "entities")
        .map(|(_, v)| v.as_str())
        .collect();
    if entities.iter().any(|e| !webhooks::ENTITIES.contains(e)) {
        return bad("unknown entity", "entities");
    }
    let body: String = webhooks::events_between(&st.world, start, end)
        .into_iter()
        .filter(|e| {
            entities.is_empty()
                || entities.contains(&webhooks::entity_of(e["type"].as_str().unwrap_or("")))
        })
        .map(|e| format!("{e}\n"))
        .collect();
    ([(header::CONTENT_TYPE, "application/x-jsonlines")], body).into_response()
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    from: String,
    to: String,
}

async fn events(State(st): State<St>, Query(q): Query<EventsQuery>) -> Response {
    let (Some(from), Some(to)) = (parse_time(&q.from), parse_time(&q.to)) else {
        return (StatusCode::BAD_REQUEST, "from and to must be RFC 3339").into_response();
    };
    json_ok(Value::Array(webhooks::events_between(&st.world, from, to)))
}

/// Ground truth at `now` (see the module doc).
pub fn truth(w: &World, now: DateTime<Utc>) -> GroundTruth {
    let horizon = w.t0.min(now) - Duration::days(14);
    let today = now.timestamp().div_euclid(86_400);
    let first = horizon.timestamp().div_euclid(86_400) - 2;
    let jobs: Vec<world::Job> = (first..=today)
        .map(|d| w.job(d))
        .filter(|j| {
            j.updated_at >= horizon
                && j.updated_at <= now
                && !j.failed
                && j.day_start >= w.origin - Duration::days(1)
        })
        .collect();
    // item id → (conversation key or None, customer index, is message)
    let mut items: BTreeMap<String, (Option<u64>, u64, bool)> = BTreeMap::new();
    let mut customers: HashSet<u64> = HashSet::new();
    // Conversations whose items some job holds.
    let mut exported: HashSet<u64> = HashSet::new();
    let mut quarantined = 0u64;
    for j in &jobs {
        if j.quirk == world::Quirk::Malformed {
            quarantined += 1;
        }
        let as_of = j.updated_at;
        let (from, to) = World::job_window(j);
        for key in w.job_conversations(j) {
            let Some(c) = w.conversation(key) else {
                continue;
            };
            if !w.conversation_exists(&c, as_of)
                || w.customer_deleted_at(c.customer)
                    .is_some_and(|t| as_of >= t)
            {
                continue;
            }
            let mut any = false;
            for (id, owner, i) in w.items_at(&c, as_of) {
                if i.at < from || i.at >= to {
                    continue;
                }
                any = true;
                let owner_spec = if owner == key {
                    c.clone()
                } else {
                    w.conversation(owner).unwrap_or_else(|| c.clone())
                };
                items.insert(
                    id,
                    (
                        Some(owner),
                        w.customer_at(&owner_spec, as_of),
                        i.ct.is_message(),
                    ),
                );
            }
            if any {
                customers.insert(w.customer_at(&c, as_of));
                exported.insert(key);
            }
        }
        if let Some((id, cust, _)) = w.job_activity(j).and_then(|d| w.activity(d)) {
            items.insert(id, (None, cust, false));
            customers.insert(cust);
        }
    }
    // Follow merges: the survivor and its conversations and items, re-read now.
    let mut merges = 0u64;
    let mut extra_customers: HashSet<u64> = HashSet::new();
    let mut conversations: HashSet<u64> = items.values().filter_map(|(c, _, _)| *c).collect();
    for c in customers.iter().copied().collect::<Vec<_>>() {
        let mut cur = c;
        let mut first_hop = true;
        while let CustomerState::Moved(to) = w.customer_state(cur, now) {
            if first_hop {
                merges += 1;
                first_hop = false;
            }
            extra_customers.insert(to);
            for conv in w.conversations_of(to, now) {
                conversations.insert(conv.key);
                for (id, owner, i) in w.items_at(&conv, now).into_iter().take(1000) {
                    items.insert(id, (Some(owner), to, i.ct.is_message()));
                }
            }
            cur = to;
        }
    }
    customers.extend(extra_customers);
    let live_customers = customers
        .iter()
        .filter(|c| w.customer_state(**c, now) == CustomerState::Live)
        .count();
    let live_conv = |k: u64| {
        w.conversation(k)
            .is_some_and(|c| w.conversation_exists(&c, now))
    };
    let live_items: Vec<&(Option<u64>, u64, bool)> = items
        .values()
        .filter(|(conv, cust, _)| {
            conv.is_none_or(live_conv) && w.customer_state(*cust, now) != CustomerState::Missing
        })
        .collect();
    let live_conversations = conversations.iter().filter(|k| live_conv(**k)).count() as u64;
    let mut tables = BTreeMap::new();
    tables.insert("conversation_items".to_owned(), live_items.len() as u64);
    tables.insert("customers".to_owned(), live_customers as u64);
    tables.insert("customer_merges".to_owned(), merges);
    // The OPEN→OPEN loser, once a job held its items and the merge happened: it answers 404,
    // its customer 301, and the surviving customer's open conversation holds its items.
    let (loser, survivor, merged_at) = w.open_merge();
    let conversation_merges = u64::from(exported.contains(&loser) && now >= merged_at);
    tables.insert("conversation_merges".to_owned(), conversation_merges);
    tables.insert("model_id_merges".to_owned(), merges + conversation_merges);
    tables.insert("conversations".to_owned(), live_conversations);
    tables.insert("agents".to_owned(), u64::from(w.agents));
    tables.insert("topics".to_owned(), u64::from(w.topics));
    tables.insert("inboxes".to_owned(), u64::from(w.inboxes));
    tables.insert("teams".to_owned(), u64::from(w.teams));
    let (contacts, work_sessions, conversation_report, malformed_report_rows) =
        reports::truth_counts(w, now);
    tables.insert("contacts".to_owned(), contacts);
    tables.insert("work_sessions".to_owned(), work_sessions);
    tables.insert("conversation_report".to_owned(), conversation_report);
    // A contact is a session of the model, a work session with an agent agent work.
    let work = reports::work_truth(w, now);
    tables.insert("model_sessions".to_owned(), contacts);
    tables.insert(
        "model_work".to_owned(),
        work["work_sessions_by_agent"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum()),
    );
    tables.insert("model_teams".to_owned(), u64::from(w.teams));
    tables.insert("model_conversations".to_owned(), live_conversations);
    tables.insert(
        "model_messages".to_owned(),
        live_items
            .iter()
            .filter(|(conv, _, msg)| conv.is_some() && *msg)
            .count() as u64,
    );
    let s = |n: u64| world::SPECIAL + n;
    GroundTruth {
        tables,
        extra: json!({
            "quarantined": quarantined + malformed_report_rows,
            "jobs": jobs.iter().map(|j| w.id(kind::JOB, u64::try_from(j.day).unwrap_or(0), 0)).collect::<Vec<_>>(),
            "merged_customers": {
                w.customer_id(s(world::special::MERGE_SRC)): w.customer_id(s(world::special::MERGE_DST)),
                w.customer_id(s(world::special::OPEN_SRC)): w.customer_id(s(world::special::OPEN_DST)),
            },
            "deleted_customers": [w.customer_id(s(world::special::GDPR))],
            "deleted_conversations": [w.id(kind::CONVERSATION, loser, 0), w.id(kind::CONVERSATION, s(world::special::GDPR), 0)],
            "surviving_conversation": w.id(kind::CONVERSATION, survivor, 0),
            "merged_conversations": {
                w.id(kind::CONVERSATION, loser, 0): w.id(kind::CONVERSATION, survivor, 0),
            },
            "inbox_move_conversation": w.id(kind::CONVERSATION, s(world::special::INBOX_MOVE), 0),
            "inbox_move_at": World::ts(w.inbox_move_at(), 3),
            "long_conversation": w.id(kind::CONVERSATION, s(world::special::LONG), 0),
            "all_types_conversation": w.id(kind::CONVERSATION, s(world::special::ALL_TYPES), 0),
            "work": work,
        }),
    }
}
