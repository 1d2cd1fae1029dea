//! The Data Export endpoints: auth, parameters, rate limits, windows and pages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::data::{self, Conv, Shape, Timeline, Version};
use crate::Clock;
use crate::rate::Bucket;

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Conversations.
    Conversations,
    /// Messages.
    Messages,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "conversations" => Some(Self::Conversations),
            "messages" => Some(Self::Messages),
            _ => None,
        }
    }

    /// Endpoint name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Conversations => "conversations",
            Self::Messages => "messages",
        }
    }
}

/// How `next_page_uri` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStyle {
    /// v1.x root-relative, v2 absolute (Ada's samples).
    Default,
    /// `/data_api/v1.4/messages?…`.
    Root,
    /// `messages?…` (relative to the request path).
    Relative,
    /// `http://host/…`.
    Absolute,
}

/// Per-endpoint limits of the strict mode.
#[derive(Debug)]
pub struct Limits {
    second: Bucket,
    minute: Mutex<(Instant, u64)>,
    day: Mutex<(Instant, u64)>,
}

impl Limits {
    fn new(rps: f64) -> Self {
        Self {
            second: Bucket::new(rps, rps.max(1.0)),
            minute: Mutex::new((Instant::now(), 0)),
            day: Mutex::new((Instant::now(), 0)),
        }
    }
}

fn window_take(w: &Mutex<(Instant, u64)>, len: StdDuration, cap: u64) -> Result<(), StdDuration> {
    let mut g = w.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    if now.duration_since(g.0) >= len {
        *g = (now, 0);
    }
    if g.1 >= cap {
        return Err(len.saturating_sub(now.duration_since(g.0)));
    }
    g.1 += 1;
    Ok(())
}

/// One logged request, for tests (`GET /_emulator/ada/stats`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Logged {
    /// Endpoint.
    pub endpoint: &'static str,
    /// Path version (`v1.3`, `v1.4`, `v2`).
    pub version: &'static str,
    /// Answer status.
    pub status: u16,
    /// The lower bound asked for.
    pub since: Option<String>,
    /// The upper bound asked for.
    pub to: Option<String>,
    /// Records in the page.
    pub records: usize,
    /// Milliseconds since the emulator started (wall clock).
    pub at_ms: u64,
}

/// Shared state of the Ada emulator.
pub struct Ada {
    /// Data.
    pub timeline: Timeline,
    /// Record shapes.
    pub shape: Shape,
    /// Now.
    pub clock: Clock,
    /// Ingestion lag.
    pub lag: Duration,
    /// `next_page_uri` form.
    pub link: LinkStyle,
    /// Answer 400 to bounds older than 12 months (else they just find nothing there).
    pub old_window_error: bool,
    /// Reject query datetimes that do not end in `Z`.
    pub reject_non_z: bool,
    /// Strict rate limits.
    pub strict: bool,
    /// Also cap 100/min and 15,000/day.
    pub caps: bool,
    /// Send `Retry-After` and `X-RateLimit-*`.
    pub rate_headers: bool,
    /// Requests per second per endpoint.
    pub rps: f64,
    /// Limits per endpoint.
    pub limits: HashMap<Kind, Limits>,
    /// The one active Data Export (v1.x) token.
    pub legacy_token: Mutex<String>,
    /// Tokens regenerated so far.
    pub regenerations: AtomicU64,
    /// The v2 API key.
    pub v2_key: String,
    /// Legacy token trial expiry (emulated time).
    pub trial_expires: Option<DateTime<Utc>>,
    /// Late ingestion: one message in this many (0: none) becomes visible only
    /// [`Ada::late_delay`] after the lag has passed.
    pub late_every: u64,
    /// How much later than the lag a late message is ingested.
    pub late_delay: Duration,
    /// Request log.
    pub log: Mutex<Vec<Logged>>,
    /// Answers 429 given.
    pub throttled: AtomicU64,
    /// Records served (boundary repeats included).
    pub served: AtomicU64,
    started: Instant,
}

impl Ada {
    /// Builds the state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        timeline: Timeline,
        shape: Shape,
        clock: Clock,
        lag: Duration,
        link: LinkStyle,
        strict: bool,
        rps: f64,
    ) -> Self {
        let mut limits = HashMap::new();
        limits.insert(Kind::Conversations, Limits::new(rps));
        limits.insert(Kind::Messages, Limits::new(rps));
        Self {
            timeline,
            shape,
            clock,
            lag,
            link,
            old_window_error: false,
            reject_non_z: true,
            strict,
            caps: false,
            rate_headers: false,
            rps,
            limits,
            legacy_token: Mutex::new(super::LEGACY_TOKEN.to_owned()),
            regenerations: AtomicU64::new(0),
            v2_key: super::V2_TOKEN.to_owned(),
            trial_expires: None,
            late_every: 0,
            late_delay: Duration::hours(6),
            log: Mutex::new(Vec::new()),
            throttled: AtomicU64::new(0),
            served: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Records visible are those older than this instant.
    pub fn horizon(&self) -> DateTime<Utc> {
        self.clock.now() - self.lag
    }

    /// Whether Ada has ingested message `m` by the time records older than `horizon` are
    /// visible: at once for most, [`Ada::late_delay`] later for the late ones.
    pub fn message_visible(&self, m: &data::Msg, horizon: DateTime<Utc>) -> bool {
        m.at < horizon && (!self.is_late(m) || m.at + self.late_delay < horizon)
    }

    /// Whether message `m` is one of the late ones (chosen by its id, so the choice holds
    /// across runs and restarts).
    pub fn is_late(&self, m: &data::Msg) -> bool {
        self.late_every > 0
            && m.id
                .get(8..)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .is_some_and(|h| data::mix(h ^ 0x1A7E).is_multiple_of(self.late_every))
    }

    /// The oldest instant still exported (12 months back).
    pub fn floor(&self) -> DateTime<Utc> {
        self.clock.now() - Duration::days(365)
    }

    fn log(
        &self,
        kind: Kind,
        version: Version,
        status: u16,
        since: Option<String>,
        to: Option<String>,
        records: usize,
    ) {
        let at_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let entry = Logged {
            endpoint: kind.name(),
            version: version_name(version),
            status,
            since,
            to,
            records,
            at_ms,
        };
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(entry);
    }
}

fn version_name(v: Version) -> &'static str {
    match v {
        Version::V13 => "v1.3",
        Version::V14 => "v1.4",
        Version::V2 => "v2",
    }
}

/// An error answer in the version's shape.
fn error(version: Version, status: StatusCode, kind: &str, message: &str) -> Response {
    let body = match version {
        Version::V2 => json!({"errors": [{"type": kind, "message": message, "details": null}]}),
        _ => json!({"message": message}),
    };
    (status, Json(body)).into_response()
}

/// `GET /data_api/{version}/{kind}` (also under `/api`).
pub async fn v1(
    State(ada): State<Arc<Ada>>,
    Path((version, kind)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let (Some(v), Some(k)) = (Version::parse_v1(&version), Kind::parse(&kind)) else {
        return error(
            Version::V14,
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
        );
    };
    handle(&ada, v, k, &headers, &query, false)
}

/// `GET /api/data_api/{version}/{kind}`.
pub async fn v1_api(
    State(ada): State<Arc<Ada>>,
    Path((version, kind)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let (Some(v), Some(k)) = (Version::parse_v1(&version), Kind::parse(&kind)) else {
        return error(
            Version::V14,
            StatusCode::NOT_FOUND,
            "not_found",
            "Not Found",
        );
    };
    handle(&ada, v, k, &headers, &query, true)
}

/// `GET /api/v2/export/{kind}`.
pub async fn v2(
    State(ada): State<Arc<Ada>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(k) = Kind::parse(&kind) else {
        return error(Version::V2, StatusCode::NOT_FOUND, "not_found", "Not Found");
    };
    handle(&ada, Version::V2, k, &headers, &query, false)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn check_auth(ada: &Ada, version: Version, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = bearer(headers) else {
        return Err(Box::new(error(
            version,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or malformed Authorization header: expected `Bearer <token>`",
        )));
    };
    let legacy = ada
        .legacy_token
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    match version {
        Version::V2 => {
            if token == ada.v2_key {
                Ok(())
            } else if token == legacy || token.starts_with(super::LEGACY_TOKEN) {
                Err(Box::new(error(
                    version,
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Legacy Data API keys are not accepted by v2 APIs. Create an API key under Platform > APIs.",
                )))
            } else {
                Err(Box::new(error(
                    version,
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Invalid API key",
                )))
            }
        }
        _ => {
            if token == legacy {
                if ada.trial_expires.is_some_and(|t| ada.clock.now() >= t) {
                    return Err(Box::new(error(
                        version,
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "Your Data Export API trial has expired",
                    )));
                }
                Ok(())
            } else {
                Err(Box::new(error(
                    version,
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Invalid access token",
                )))
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn check_rate(ada: &Ada, version: Version, kind: Kind) -> Result<(), Box<Response>> {
    if !ada.strict {
        return Ok(());
    }
    let Some(l) = ada.limits.get(&kind) else {
        return Ok(());
    };
    let verdict = l.second.take().and_then(|()| {
        if ada.caps {
            window_take(&l.minute, StdDuration::from_secs(60), 100)?;
            window_take(&l.day, StdDuration::from_secs(86_400), 15_000)?;
        }
        Ok(())
    });
    match verdict {
        Ok(()) => Ok(()),
        Err(wait) => {
            ada.throttled.fetch_add(1, Ordering::Relaxed);
            let mut resp = error(
                version,
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests: the rate limit for this endpoint was exceeded",
            );
            if ada.rate_headers {
                let secs = wait.as_secs_f64().ceil().max(1.0);
                // Whole seconds, at least one.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let secs = secs as u64;
                let h = resp.headers_mut();
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                rate_headers(h, ada.rps, 0);
            }
            Err(Box::new(resp))
        }
    }
}

fn rate_headers(h: &mut HeaderMap, rps: f64, remaining: u64) {
    // Limits are small whole numbers.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let limit = rps.round() as u64;
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(unix_now() + 1));
}

/// Validated query.
struct Params {
    by_updated: bool,
    since: DateTime<Utc>,
    to: DateTime<Utc>,
    page_size: usize,
    conversation_id: Option<String>,
    page_size_given: bool,
}

fn parse_time(ada: &Ada, name: &str, v: &str) -> Result<DateTime<Utc>, String> {
    if ada.reject_non_z && !v.ends_with('Z') {
        return Err(format!(
            "`{name}` must be an ISO 8601 UTC timestamp ending with 'Z' (e.g. 2024-07-01T00:00:00Z), got `{v}`"
        ));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{name}` is not a valid ISO 8601 timestamp: `{v}`"))
}

fn params(ada: &Ada, kind: Kind, query: &[(String, String)]) -> Result<Params, String> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let created = get("created_since");
    let updated = get("updated_since");
    let (by_updated, since_raw) = match (kind, created, updated) {
        (_, Some(_), Some(_)) => {
            return Err("`created_since` and `updated_since` are mutually exclusive".into());
        }
        (Kind::Messages, _, Some(_)) => {
            return Err("`updated_since` is not a parameter of the messages endpoint".into());
        }
        (Kind::Messages, None, None) => return Err("`created_since` is required".into()),
        (Kind::Conversations, None, None) => {
            return Err("one of `created_since` or `updated_since` is required".into());
        }
        (_, Some(c), None) => (false, c),
        (_, None, Some(u)) => (true, u),
    };
    let since_name = if by_updated {
        "updated_since"
    } else {
        "created_since"
    };
    let to_name = if by_updated {
        "updated_to"
    } else {
        "created_to"
    };
    let since = parse_time(ada, since_name, since_raw)?;
    let to = match get(to_name).filter(|s| !s.is_empty() && *s != "null") {
        Some(t) => parse_time(ada, to_name, t)?,
        None => since + Duration::days(7),
    };
    if to <= since {
        return Err(format!("`{to_name}` must be later than `{since_name}`"));
    }
    if to - since > Duration::days(60) {
        return Err(format!(
            "`{since_name}` and `{to_name}` must be at most 60 days apart"
        ));
    }
    if ada.old_window_error && since < ada.floor() - Duration::minutes(1) {
        return Err("data is only available for the previous 12 months".into());
    }
    let (page_size, page_size_given) = match get("page_size") {
        Some(p) => match p.parse::<usize>() {
            Ok(n) if (100..=10_000).contains(&n) => (n, true),
            _ => {
                return Err(format!(
                    "`page_size` must be an integer between 100 and 10000, got `{p}`"
                ));
            }
        },
        None => (10_000, false),
    };
    Ok(Params {
        by_updated,
        since,
        to,
        page_size,
        conversation_id: get("conversation_id").map(str::to_owned),
        page_size_given,
    })
}

/// One matching record: sort key and body.
struct Hit {
    at: DateTime<Utc>,
    id: String,
    body: Value,
}

/// Finds the first `limit` records of the window in order, generating only the conversations
/// that can hold them.
fn query(ada: &Ada, version: Version, kind: Kind, p: &Params, limit: usize) -> Vec<Hit> {
    let horizon = ada.horizon();
    let floor = ada.floor();
    let lo = p.since.max(floor);
    let hi = p.to.min(horizon);
    let mut hits: Vec<Hit> = Vec::new();
    if lo >= hi {
        return hits;
    }
    let lookback = match (kind, p.by_updated) {
        (Kind::Messages, _) => data::MAX_MESSAGE_SPAN,
        (Kind::Conversations, true) => data::MAX_UPDATE_SPAN,
        (Kind::Conversations, false) => Duration::zero(),
    };
    let tl = &ada.timeline;
    let mut i = tl.index_at(lo - lookback);
    let mut since_sort = 0usize;
    loop {
        let start = tl.start_of(i);
        if start >= hi {
            break;
        }
        // Every record of conversation i lies at or after its start: once `limit` hits are
        // earlier than that, no later conversation can contribute.
        if hits.len() >= limit && since_sort >= 256 {
            sort_hits(&mut hits);
            hits.truncate(limit);
            since_sort = 0;
            if hits.last().is_some_and(|h| h.at < start) {
                break;
            }
        }
        let c = ada.timeline.conversation(i);
        collect(ada, version, kind, p, &c, lo, hi, horizon, &mut hits);
        since_sort += 1;
        i += 1;
    }
    sort_hits(&mut hits);
    hits.truncate(limit);
    hits
}

fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
}

#[allow(clippy::too_many_arguments)]
fn collect(
    ada: &Ada,
    version: Version,
    kind: Kind,
    p: &Params,
    c: &Conv,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    horizon: DateTime<Utc>,
    hits: &mut Vec<Hit>,
) {
    match kind {
        Kind::Conversations => {
            let Some(updated) = c.updated_at(horizon) else {
                return;
            };
            let at = if p.by_updated { updated } else { c.created };
            if at >= lo && at < hi {
                hits.push(Hit {
                    at,
                    id: c.id.clone(),
                    body: data::conversation_json(c, horizon, version, &ada.shape),
                });
            }
        }
        Kind::Messages => {
            if p.conversation_id.as_ref().is_some_and(|id| *id != c.id) {
                return;
            }
            for m in &c.messages {
                if m.at >= lo && m.at < hi && ada.message_visible(m, horizon) {
                    hits.push(Hit {
                        at: m.at,
                        id: m.id.clone(),
                        body: data::message_json(c, m, version, &ada.shape),
                    });
                }
            }
        }
    }
}

fn next_link(
    ada: &Ada,
    version: Version,
    kind: Kind,
    p: &Params,
    last: DateTime<Utc>,
    host: &str,
    api_prefix: bool,
) -> String {
    let (since_name, to_name) = if p.by_updated {
        ("updated_since", "updated_to")
    } else {
        ("created_since", "created_to")
    };
    let mut q = format!(
        "{since_name}={}&{to_name}={}",
        data::fmt_query(last),
        data::fmt_query(p.to)
    );
    if p.page_size_given {
        q.push_str(&format!("&page_size={}", p.page_size));
    }
    if let Some(id) = &p.conversation_id {
        q.push_str(&format!("&conversation_id={id}"));
    }
    let path = match version {
        Version::V2 => format!("/api/v2/export/{}", kind.name()),
        v => format!(
            "{}/data_api/{}/{}",
            if api_prefix { "/api" } else { "" },
            version_name(v),
            kind.name()
        ),
    };
    let style = match (ada.link, version) {
        (LinkStyle::Default, Version::V2) => LinkStyle::Absolute,
        (LinkStyle::Default, _) => LinkStyle::Root,
        (s, _) => s,
    };
    match style {
        LinkStyle::Relative => format!("{}?{q}", kind.name()),
        LinkStyle::Absolute => format!("http://{host}{path}?{q}"),
        LinkStyle::Root | LinkStyle::Default => format!("{path}?{q}"),
    }
}

/// The handler behind every mount; `api_prefix` is set for `/api/data_api/…`.
fn handle(
    ada: &Ada,
    version: Version,
    kind: Kind,
    headers: &HeaderMap,
    query_pairs: &[(String, String)],
    api_prefix: bool,
) -> Response {
    let q = |k: &str| {
        query_pairs
            .iter()
            .find(|(n, _)| n.starts_with(k) && n.ends_with("_since"))
            .map(|(_, v)| v.clone())
    };
    let qt = |k: &str| {
        query_pairs
            .iter()
            .find(|(n, _)| n.starts_with(k) && n.ends_with("_to"))
            .map(|(_, v)| v.clone())
    };
    let since_raw = q("created").or_else(|| q("updated"));
    let to_raw = qt("created").or_else(|| qt("updated"));
    if let Err(resp) = check_auth(ada, version, headers) {
        ada.log(kind, version, resp.status().as_u16(), since_raw, to_raw, 0);
        return *resp;
    }
    if let Err(resp) = check_rate(ada, version, kind) {
        ada.log(kind, version, 429, since_raw, to_raw, 0);
        return *resp;
    }
    let p = match params(ada, kind, query_pairs) {
        Ok(p) => p,
        Err(msg) => {
            let status =
                if version == Version::V2 || msg.contains("60 days") || msg.contains("mutually") {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
            ada.log(kind, version, status.as_u16(), since_raw, to_raw, 0);
            return error(version, status, "invalid_request", &msg);
        }
    };
    let mut hits = query(ada, version, kind, &p, p.page_size + 1);
    let more = hits.len() > p.page_size;
    hits.truncate(p.page_size);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let next = if more {
        hits.last()
            .map(|h| next_link(ada, version, kind, &p, h.at, host, api_prefix))
    } else {
        None
    };
    let n = hits.len();
    ada.served.fetch_add(n as u64, Ordering::Relaxed);
    ada.log(kind, version, 200, since_raw, to_raw, n);
    let data: Vec<Value> = hits.into_iter().map(|h| h.body).collect();
    let body = match version {
        Version::V2 => json!({"data": data, "meta": {"next_page_uri": next}}),
        _ => {
            let mut o = serde_json::Map::new();
            o.insert("message".into(), json!("OK"));
            o.insert("data".into(), Value::Array(data));
            if let Some(next) = next {
                o.insert("next_page_uri".into(), json!(next));
            }
            Value::Object(o)
        }
    };
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    if ada.rate_headers {
        let remaining = ada.limits.get(&kind).map_or(0, |l| l.second.remaining());
        rate_headers(resp.headers_mut(), ada.rps, remaining);
    }
    resp
}
