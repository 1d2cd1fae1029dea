//! In-process server tests of the HTTP policy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use talkhouse_http::{Auth, Client, ClientConfig, Request, RetryPolicy};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn retry_after_two_seconds_is_honoured() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            let h = h.clone();
            async move {
                if h.fetch_add(1, Ordering::SeqCst) == 0 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "2")],
                        "slow down",
                    )
                        .into_response()
                } else {
                    (StatusCode::OK, "{\"ok\":true}").into_response()
                }
            }
        }),
    ))
    .await;
    let client = Client::new(ClientConfig::new("test", Auth::None)).expect("client");
    let start = Instant::now();
    let v: serde_json::Value = client
        .json(Request::get(format!("{base}/x"), "s"))
        .await
        .expect("succeeds after the wait");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "waited only {:?}",
        start.elapsed()
    );
    assert_eq!(v["ok"], true);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(client.stats().throttled.load(Ordering::SeqCst), 1);
}

/// One 429 holds back every request of the client for the wait it asked for, and being
/// throttled many times over is not a failure.
#[tokio::test]
async fn a_429_pauses_the_whole_client_and_does_not_use_up_the_retries() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let base = serve(Router::new().route(
        "/x",
        get(move || {
            let h = h.clone();
            async move {
                // The first ten answers are 429s: more than `max_attempts`.
                if h.fetch_add(1, Ordering::SeqCst) < 10 {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "0.2")],
                        "slow",
                    )
                        .into_response()
                } else {
                    (StatusCode::OK, "{}").into_response()
                }
            }
        }),
    ))
    .await;
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let client = Client::new(ClientConfig {
        retry: policy,
        ..ClientConfig::new("test", Auth::None)
    })
    .expect("client");
    let start = Instant::now();
    let runs = (0..4).map(|_| {
        let c = client.clone();
        let url = format!("{base}/x");
        async move { c.bytes(Request::get(url, "s")).await }
    });
    for r in futures::future::join_all(runs).await {
        r.expect("throttled requests end in success");
    }
    assert!(client.stats().throttled.load(Ordering::SeqCst) >= 10);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "the client paused between waves: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn gives_up_and_reports_the_status_without_credentials() {
    let base = serve(Router::new().route(
        "/x",
        get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
    ))
    .await;
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let client =
        Client::new(ClientConfig::new("test", Auth::Bearer("s3cr3t-token".into())).retry(policy))
            .expect("client");
    let err = client
        .bytes(Request::get(format!("{base}/x?sig=abc"), "s"))
        .await
        .expect_err("503 forever");
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.attempts, 3);
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("s3cr3t-token") && !text.contains("sig=abc"),
        "{text}"
    );
}

#[tokio::test]
async fn sends_each_auth_kind() {
    let base = serve(Router::new().route(
        "/h",
        get(|headers: HeaderMap| async move {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        }),
    ))
    .await;
    for (auth, want) in [
        (Auth::Token("abc".into()), "Token abc"),
        (Auth::Bearer("abc".into()), "Bearer abc"),
        (
            Auth::Header {
                name: "authorization".into(),
                value: "abc".into(),
            },
            "abc",
        ),
        (
            Auth::Basic {
                user: "u".into(),
                password: "p".into(),
            },
            "Basic dTpw",
        ),
    ] {
        let client = Client::new(ClientConfig::new("test", auth)).expect("client");
        let got = client
            .bytes(Request::get(format!("{base}/h"), "s"))
            .await
            .expect("ok");
        assert_eq!(got, want.as_bytes());
    }
}

#[tokio::test]
async fn a_burst_spreads_to_the_configured_rate() {
    let base = serve(Router::new().route("/r", get(|| async { "{}" }))).await;
    let client =
        Client::new(ClientConfig::new("test", Auth::None).concurrency(16)).expect("client");
    client.limit_endpoint("r", 10.0);
    let start = Instant::now();
    let calls = (0..11).map(|_| client.bytes(Request::get(format!("{base}/r"), "s").endpoint("r")));
    for r in futures::future::join_all(calls).await {
        r.expect("ok");
    }
    // Eleven requests at 10/s: the first goes at once, the other ten one every 100 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "burst not spread: {:?}",
        start.elapsed()
    );
}
