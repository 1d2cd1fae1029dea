//! Routes, handlers and the request-level layers (body limit, timeout, request metrics).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use talkhouse_model::{PushRequest, PushVerdict};

use crate::App;
use crate::inbox::Stored;

pub(crate) fn router(app: Arc<App>) -> Router {
    let timeout = app.config.request_timeout.0;
    Router::new()
        .route("/webhooks/{source}", post(push))
        .route("/triggers/{source}", get(push).post(push))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .with_state(app)
}

fn json_answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => json_answer(
            StatusCode::REQUEST_TIMEOUT,
            json!({ "error": "request timed out" }),
        ),
    }
}

async fn count_requests(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    app.metrics
        .http_request(&route, &method, resp.status().as_u16());
    resp
}

async fn healthz() -> Response {
    json_answer(StatusCode::OK, json!({ "status": "ok" }))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match tokio::time::timeout(Duration::from_secs(5), app.dest.ping()).await {
        Ok(Ok(())) => json_answer(
            StatusCode::OK,
            json!({ "status": "ready", "destination": app.dest.describe() }),
        ),
        Ok(Err(e)) => json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "destination": app.dest.describe(), "error": e.to_string() }),
        ),
        Err(_) => json_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "destination": app.dest.describe(), "error": "ping timed out" }),
        ),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.inbox.depth().await {
        Ok(depth) => app.metrics.set_inbox_depth(depth),
        Err(e) => tracing::warn!(error = %e, "cannot read the inbox depth"),
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        app.metrics.render(),
    )
        .into_response()
}

async fn push(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let Some(source) = app.route(&name).cloned() else {
        return json_answer(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no source named `{name}`") }),
        );
    };
    let source_name = source.name().to_owned();
    let request = PushRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: query
            .as_deref()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let verdict = source.verify_push(&request);
    let resp = match verdict {
        PushVerdict::Accept { event_id, payload } => {
            match app.inbox.put(&source_name, &event_id, &payload).await {
                Ok(Stored::New) => {
                    app.metrics.event_received(&source_name);
                    json_answer(
                        StatusCode::OK,
                        json!({ "status": "accepted", "event_id": event_id }),
                    )
                }
                Ok(Stored::Duplicate) => {
                    app.metrics.event_duplicate(&source_name);
                    json_answer(
                        StatusCode::OK,
                        json!({ "status": "duplicate", "event_id": event_id }),
                    )
                }
                Err(e) => {
                    tracing::error!(source = %source_name, event_id, error = %e, "cannot store a pushed event");
                    return json_answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({ "error": "cannot store the event; retry later" }),
                    );
                }
            }
        }
        PushVerdict::Ignore => {
            app.metrics.event_ignored(&source_name);
            json_answer(StatusCode::OK, json!({ "status": "ignored" }))
        }
        PushVerdict::Reject { status, message } => {
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error());
            let status = status.unwrap_or(StatusCode::BAD_REQUEST);
            app.metrics.event_rejected(&source_name, status.as_u16());
            tracing::info!(source = %source_name, status = status.as_u16(), message, "push rejected");
            return json_answer(status, json!({ "error": message }));
        }
    };
    app.metrics
        .push_acknowledged(&source_name, started.elapsed().as_secs_f64());
    resp
}
