//! The REST API's handlers: auth and rate limits, export jobs and files, conversations, items,
//! customers, the lists, reports, the Events API and the test helpers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::data::{self, CustomerState, World, kind};
use super::{API_TOKEN, API_USER, NO_PERMISSION_USER, files, reports, webhooks};
use crate::Clock;
use crate::rate::Bucket;

/// What every handler shares: the world, the clock, the switches and the rate buckets.
pub(super) struct AppState {
    pub(super) world: Arc<World>,
    pub(super) clock: Clock,
    pub(super) strict: bool,
    pub(super) retry_after: bool,
    pub(super) error_shape: String,
    pub(super) jobs_desc: bool,
    pub(super) moved_location: bool,
    pub(super) buckets: Mutex<BTreeMap<String, Arc<Bucket>>>,
    pub(super) downloads: Mutex<BTreeMap<String, u64>>,
    /// Authenticated API requests per `METHOD path`.
    pub(super) requests: Mutex<BTreeMap<String, u64>>,
    pub(super) report_gate: reports::ReportGate,
    pub(super) report_options: reports::ReportOptions,
}

/// A refused request's answer (boxed: an answer is large, and most checks pass).
type Refusal = Box<Response>;

/// The handlers' state.
pub(super) type St = Arc<AppState>;

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

    /// 400 `invalid`, naming the parameter at fault.
    fn invalid(&self, detail: &str, attr: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, "invalid", detail, Some(attr), None)
    }

    /// An optional ISO 8601 time parameter: `None` when absent, 400 when unreadable.
    fn time_param(
        &self,
        name: &str,
        value: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, Refusal> {
        value
            .map(|v| {
                parse_time(v)
                    .ok_or_else(|| Box::new(self.invalid(&format!("{name} is not ISO 8601"), name)))
            })
            .transpose()
    }

    /// 400 when a `startAt`/`endAt` range ends before it starts.
    fn check_order<T: PartialOrd>(&self, start: &T, end: &T) -> Result<(), Refusal> {
        if end < start {
            return Err(Box::new(
                self.invalid("endAt must not be before startAt", "endAt"),
            ));
        }
        Ok(())
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

/// Auth first (401/403), then the per-method rate limit (429).
pub(super) async fn guard(State(st): State<St>, req: Request, next: Next) -> Response {
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

pub(super) async fn schedules(State(st): State<St>) -> Response {
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
pub(super) struct JobQuery {
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

pub(super) async fn jobs(State(st): State<St>, Query(q): Query<JobQuery>) -> Response {
    let now = st.now();
    let range = || -> Result<_, Refusal> {
        let start = st.time_param("startAt", q.start_at.as_deref())?;
        let end = st.time_param("endAt", q.end_at.as_deref())?.unwrap_or(now);
        let start = start.unwrap_or(now - Duration::days(14));
        st.check_order(&start, &end)?;
        Ok((start, end))
    };
    let (start, end) = match range() {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
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

fn find_job(st: &AppState, id: &str) -> Option<data::Job> {
    let (k, day, _) = st.world.parse_id(id)?;
    if k != kind::JOB {
        return None;
    }
    let job = st.world.job(i64::try_from(day).ok()?);
    st.world.job_status(&job, st.now())?;
    Some(job)
}

pub(super) async fn job(State(st): State<St>, Path(id): Path<String>) -> Response {
    match find_job(&st, &id) {
        Some(j) => json_ok(st.world.job_json(&j, st.now())),
        None => st.not_found("job"),
    }
}

pub(super) async fn file(
    State(st): State<St>,
    Path((id, name)): Path<(String, String)>,
) -> Response {
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
    let chunks = super::files::Chunks::new(&st.world, &j, kind);
    let body = Body::from_stream(futures::stream::iter(chunks));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

fn conv_by_id(st: &AppState, id: &str) -> Option<data::ConvSpec> {
    let (k, key, _) = st.world.parse_id(id)?;
    if k != kind::CONVERSATION {
        return None;
    }
    let c = st.world.conversation(key)?;
    st.world.conversation_exists(&c, st.now()).then_some(c)
}

pub(super) async fn item(State(st): State<St>, Path(id): Path<String>) -> Response {
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
        Some((_, _, i)) if i.ct == data::Ct::Unknown => st.error(
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
pub(super) struct ItemsQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

pub(super) async fn conversation_items(
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

pub(super) async fn conversation(State(st): State<St>, Path(id): Path<String>) -> Response {
    match conv_by_id(&st, &id) {
        Some(c) => json_ok(st.world.conversation_rest(&c, st.now())),
        None => st.not_found("conversation"),
    }
}

fn customer_index(st: &AppState, id: &str) -> Option<u64> {
    let (k, idx, _) = st.world.parse_id(id)?;
    (k == kind::CUSTOMER).then_some(idx)
}

pub(super) async fn customer(State(st): State<St>, Path(id): Path<String>) -> Response {
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

pub(super) async fn customer_conversations(
    State(st): State<St>,
    Path(id): Path<String>,
) -> Response {
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

pub(super) async fn agents(State(st): State<St>) -> Response {
    json_ok(Value::Array(
        (0..st.world.agents).map(|a| st.world.agent(a)).collect(),
    ))
}

pub(super) async fn agent(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::AGENT, st.world.agents) {
        Some(a) => json_ok(st.world.agent(a)),
        None => st.not_found("agent"),
    }
}

pub(super) async fn teams(State(st): State<St>) -> Response {
    json_ok(Value::Array(
        (0..st.world.teams).map(|t| st.world.team(t)).collect(),
    ))
}

pub(super) async fn team(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::TEAM, st.world.teams) {
        Some(t) => json_ok(st.world.team(t)),
        None => st.not_found("team"),
    }
}

pub(super) async fn inboxes(State(st): State<St>) -> Response {
    json_ok(Value::Array(
        (0..st.world.inboxes).map(|b| st.world.inbox(b)).collect(),
    ))
}

pub(super) async fn inbox(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::INBOX, st.world.inboxes) {
        Some(b) => json_ok(st.world.inbox(b)),
        None => st.not_found("inbox"),
    }
}

pub(super) async fn topics(State(st): State<St>) -> Response {
    let now = st.now();
    json_ok(Value::Array(
        (0..st.world.topics)
            .map(|t| st.world.topic(t, now, true))
            .collect(),
    ))
}

pub(super) async fn topic(State(st): State<St>, Path(id): Path<String>) -> Response {
    match small_index(&st, &id, kind::TOPIC, st.world.topics) {
        Some(t) => json_ok(st.world.topic(t, st.now(), true)),
        None => st.not_found("topic"),
    }
}

pub(super) async fn organization(State(st): State<St>) -> Response {
    json_ok(json!({
        "id": st.world.id(kind::ORGANIZATION, 0, 0),
        "loginDomain": "emulator.gladly.com",
        "name": "Acme (emulated)",
        "timezone": st.world.timezone.name(),
        "gladlyUrl": "https://acme.gladly.com",
    }))
}

/// `POST /reports`: validates, passes the report budget, builds the CSV.
pub(super) async fn report(State(st): State<St>, body: axum::body::Bytes) -> Response {
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
        return st.invalid("startAt and endAt must be YYYY-MM-DD", "startAt");
    };
    if let Err(resp) = st.check_order(&from, &to) {
        return *resp;
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

pub(super) async fn report_log(State(st): State<St>) -> Response {
    json_ok(st.report_gate.log_json())
}

/// `GET /_emulator/gladly/requests`: authenticated API requests per `METHOD path`.
pub(super) async fn request_log(State(st): State<St>) -> Response {
    let r = st
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    json_ok(json!(r))
}

pub(super) async fn downloads(State(st): State<St>) -> Response {
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
pub(super) async fn events_api(
    State(st): State<St>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let now = st.now();
    let param = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(start) = param("startAt") else {
        return st.error(
            StatusCode::BAD_REQUEST,
            "blank",
            "startAt is required",
            Some("startAt"),
            None,
        );
    };
    let range = || -> Result<_, Refusal> {
        let start = st.time_param("startAt", Some(start))?.unwrap_or(now);
        let end = st
            .time_param("endAt", param("endAt"))?
            .map_or(now, |e| e.min(now));
        st.check_order(&start, &end)?;
        Ok((start, end))
    };
    let (start, end) = match range() {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if start < now - Duration::hours(24) {
        return st.invalid("startAt must be within the last 24 hours", "startAt");
    }
    let entities: Vec<&str> = q
        .iter()
        .filter(|(n, _)| n == "entities")
        .map(|(_, v)| v.as_str())
        .collect();
    if entities.iter().any(|e| !webhooks::ENTITIES.contains(e)) {
        return st.invalid("unknown entity", "entities");
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
pub(super) struct EventsQuery {
    from: String,
    to: String,
}

pub(super) async fn events(State(st): State<St>, Query(q): Query<EventsQuery>) -> Response {
    let (Some(from), Some(to)) = (parse_time(&q.from), parse_time(&q.to)) else {
        return (StatusCode::BAD_REQUEST, "from and to must be RFC 3339").into_response();
    };
    json_ok(Value::Array(webhooks::events_between(&st.world, from, to)))
}
