//! The Ultimate emulator's HTTP handlers: signed URLs of a day's export (v3 and v2, API key,
//! organisation and bot checked, rate limited) and the downloads they point at (signature and
//! expiry checked as Google Cloud Storage does).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use super::{API_KEY, St, State_, render};

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.to_owned(),
    )
        .into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

pub(super) async fn signed_v3(State(s): State<St>, headers: HeaderMap, body: Bytes) -> Response {
    signed_urls(&s, &headers, &body, 3)
}

pub(super) async fn signed_v2(State(s): State<St>, headers: HeaderMap, body: Bytes) -> Response {
    signed_urls(&s, &headers, &body, 2)
}

fn sign(path: &str, date: &str, expires: i64) -> String {
    let mut h = DefaultHasher::new();
    (API_KEY, path, date, expires).hash(&mut h);
    format!(
        "{:016x}{:016x}",
        h.finish(),
        h.finish().rotate_left(17) ^ 0x5eed
    )
}

fn signed_urls(s: &State_, headers: &HeaderMap, body: &[u8], version: u8) -> Response {
    if let Some(bucket) = &s.bucket
        && let Err(wait) = bucket.take()
    {
        let secs = wait.as_secs().max(1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs)],
            "Too Many Requests",
        )
            .into_response();
    }
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let key_ok = match h("authorization") {
        Some(k) if k == API_KEY => true,
        Some(k) => {
            s.settings.bearer
                && k.strip_prefix("Bearer ")
                    .is_some_and(|k| k.trim() == API_KEY)
        }
        None => false,
    };
    if !key_ok || h("organizationid") != Some(s.world.org_id.as_str()) {
        return json_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let Some(b) = h("botid").and_then(|id| s.world.bot_index(id)) else {
        return json_error(
            StatusCode::FORBIDDEN,
            "Forbidden: the bot does not belong to this organization",
        );
    };
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return text(StatusCode::BAD_REQUEST, "invalid request body");
    };
    let Some(date) = req
        .get("date")
        .and_then(Value::as_str)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    else {
        return text(StatusCode::BAD_REQUEST, "invalid date format");
    };
    let ttl_minutes = match req.get("ttl") {
        None | Some(Value::Null) => 1440,
        Some(v) => match v.as_i64() {
            Some(t) if (1..=10_080).contains(&t) => t,
            _ => return text(StatusCode::BAD_REQUEST, "invalid ttl"),
        },
    };
    let now = s.clock.now();
    if version == 2 && date < now.date_naive() - Duration::days(s.settings.v2_retention_days) {
        return text(
            StatusCode::BAD_REQUEST,
            "date must be within the last 30 days",
        );
    }
    let Some(lines) = s.day_lines(b, date, now) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &format!("No export found for bot {} on {date}", s.world.bots[b].id),
        );
    };
    let first_time = s
        .seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert((b, date));
    let signed_at = if s.settings.expire_first && first_time {
        now - Duration::days(8)
    } else {
        now
    };
    let stamp = signed_at.format("%Y%m%dT%H%M%SZ").to_string();
    let expires = ttl_minutes * 60;
    let host = h("host").unwrap_or("127.0.0.1");
    let bot = &s.world.bots[b].id;
    let n = if lines.is_empty() {
        0
    } else {
        render::shard(lines, s.settings.shards).len()
    };
    let urls: Vec<String> = (0..n)
        .map(|i| {
            let path = format!("/storage/{}/{bot}/conversation_{bot}_{date}_{i:012}.json", s.world.org_id);
            let sig = sign(&path, &stamp, expires);
            format!(
                "http://{host}{path}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date={stamp}&X-Goog-Expires={expires}&X-Goog-SignedHeaders=host&X-Goog-Signature={sig}"
            )
        })
        .collect();
    let key = if s.settings.signed_urls_key {
        "signed_urls"
    } else {
        "urls"
    };
    axum::Json(json!({ "date": date.to_string(), key: urls })).into_response()
}

fn gcs_error(code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")],
        body,
    )
        .into_response()
}

pub(super) async fn download(
    State(s): State<St>,
    Path((org, bot, file)): Path<(String, String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let path = format!("/storage/{org}/{bot}/{file}");
    let stamp = q.get("X-Goog-Date").cloned().unwrap_or_default();
    let expires: i64 = q
        .get("X-Goog-Expires")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    if q.get("X-Goog-Signature").map(String::as_str) != Some(sign(&path, &stamp, expires).as_str())
    {
        return gcs_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let Ok(signed_at) = chrono::NaiveDateTime::parse_from_str(&stamp, "%Y%m%dT%H%M%SZ") else {
        return gcs_error("AuthenticationRequired", "Invalid X-Goog-Date.");
    };
    let now = s.clock.now();
    if now > signed_at.and_utc() + Duration::seconds(expires) {
        return gcs_error(
            "ExpiredToken",
            "Invalid argument: the provided token has expired.",
        );
    }
    // conversation_<bot>_<date>_<shard>.json
    let parts: Vec<&str> = file.trim_end_matches(".json").rsplitn(3, '_').collect();
    let (Some(shard), Some(date)) = (
        parts.first().and_then(|p| p.parse::<usize>().ok()),
        parts.get(1),
    ) else {
        return (StatusCode::NOT_FOUND, "No such object").into_response();
    };
    let (Some(b), Ok(date)) = (
        s.world.bot_index(&bot),
        NaiveDate::parse_from_str(date, "%Y-%m-%d"),
    ) else {
        return (StatusCode::NOT_FOUND, "No such object").into_response();
    };
    let lines = s.day_lines(b, date, now).unwrap_or_default();
    let Some(part) = render::shard(lines, s.settings.shards)
        .into_iter()
        .nth(shard)
    else {
        return (StatusCode::NOT_FOUND, "No such object").into_response();
    };
    let bytes = render::serialise(&part, s.settings.array);
    let mut resp = match s.settings.gzip.as_str() {
        "magic" => Response::new(Body::from(render::gzip(&bytes))),
        "encoding" => {
            let mut r = Response::new(Body::from(render::gzip(&bytes)));
            r.headers_mut().insert(
                header::CONTENT_ENCODING,
                header::HeaderValue::from_static("gzip"),
            );
            r
        }
        _ => Response::new(Body::from(bytes)),
    };
    let ctype = if s.settings.gzip == "magic" {
        "application/octet-stream"
    } else {
        "application/json"
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ctype),
    );
    resp
}
