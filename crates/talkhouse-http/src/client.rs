//! The client: auth, rate limits, concurrency, retries, timeouts.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, Method, StatusCode};
use rand::Rng;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::retry::{self, Decision, Outcome, RetryPolicy};
use crate::{HttpError, HttpErrorKind, Secret};

/// How a vendor authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No credentials.
    None,
    /// HTTP Basic.
    Basic {
        /// User name (not secret).
        user: String,
        /// Password or API token.
        password: Secret,
    },
    /// `Authorization: Token <secret>`.
    Token(Secret),
    /// `Authorization: Bearer <secret>`.
    Bearer(Secret),
    /// A header carrying the raw secret (`authorization: <key>`, `x-api-key: <key>`).
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: Secret,
    },
}

/// Settings of one vendor's client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Vendor name, for logs and errors.
    pub vendor: &'static str,
    /// Credentials.
    pub auth: Auth,
    /// Requests per second across the whole client (`None`: unlimited).
    pub requests_per_second: Option<f64>,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// Per-attempt timeout (connect, send and read the body).
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Headers sent with every request (`organizationId`, …).
    pub default_headers: Vec<(String, String)>,
}

impl ClientConfig {
    /// Defaults: no client-wide limit, 8 in flight, 60 s timeout, default retries.
    pub fn new(vendor: &'static str, auth: Auth) -> Self {
        Self {
            vendor,
            auth,
            requests_per_second: None,
            max_concurrency: 8,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            default_headers: Vec::new(),
        }
    }

    /// Sets the client-wide rate limit.
    #[must_use]
    pub fn rate(mut self, requests_per_second: f64) -> Self {
        self.requests_per_second = Some(requests_per_second);
        self
    }

    /// Sets the number of requests in flight.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Adds a header sent with every request.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.default_headers
            .push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub json: Option<serde_json::Value>,
    /// Rate-limit key of the endpoint (see [`Client::limit_endpoint`]).
    pub endpoint: Option<&'static str>,
    /// The stream this request serves, for tracing.
    pub stream: &'static str,
    /// Send the client's credentials (off for pre-signed URLs).
    pub authenticate: bool,
}

impl Request {
    /// A GET.
    pub fn get(url: impl Into<String>, stream: &'static str) -> Self {
        Self {
            method: Method::GET,
            url: url.into(),
            headers: Vec::new(),
            json: None,
            endpoint: None,
            stream,
            authenticate: true,
        }
    }

    /// A POST with a JSON body.
    pub fn post_json(
        url: impl Into<String>,
        stream: &'static str,
        body: serde_json::Value,
    ) -> Self {
        Self {
            method: Method::POST,
            json: Some(body),
            ..Self::get(url, stream)
        }
    }

    /// Any method.
    #[must_use]
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Puts the request under an endpoint's rate limit.
    #[must_use]
    pub fn endpoint(mut self, key: &'static str) -> Self {
        self.endpoint = Some(key);
        self
    }

    /// Sends no credentials (pre-signed URLs carry their own).
    #[must_use]
    pub fn unauthenticated(mut self) -> Self {
        self.authenticate = false;
        self
    }
}

/// Counters of one client, for `/metrics`, `talkhouse.loads` and tests: totals, and the same
/// per stream (the [`Request::stream`] each request names).
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Attempts sent.
    pub attempts: AtomicU64,
    /// Retries made.
    pub retries: AtomicU64,
    /// 429 answers received.
    pub throttled: AtomicU64,
    /// Requests that failed for good.
    pub failures: AtomicU64,
    by_stream: Mutex<HashMap<&'static str, talkhouse_model::HttpCounters>>,
}

/// What [`HttpStats::add`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    Attempt,
    Retry,
    Throttled,
    Failure,
}

impl HttpStats {
    /// The counters now, as a source reports them ([`talkhouse_model::Source::http_counters`]).
    pub fn counters(&self) -> talkhouse_model::HttpCounters {
        talkhouse_model::HttpCounters {
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// The counters of the requests made for one stream (zero when it made none).
    pub fn stream_counters(&self, stream: &str) -> talkhouse_model::HttpCounters {
        self.by_stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(stream)
            .copied()
            .unwrap_or_default()
    }

    fn add(&self, stream: &'static str, counter: Counter) {
        let total = match counter {
            Counter::Attempt => &self.attempts,
            Counter::Retry => &self.retries,
            Counter::Throttled => &self.throttled,
            Counter::Failure => &self.failures,
        };
        total.fetch_add(1, Ordering::Relaxed);
        let mut by_stream = self
            .by_stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = by_stream.entry(stream).or_default();
        let field = match counter {
            Counter::Attempt => &mut c.attempts,
            Counter::Retry => &mut c.retries,
            Counter::Throttled => &mut c.throttled,
            Counter::Failure => &mut c.failures,
        };
        *field += 1;
    }
}

/// A vendor's HTTP client. Cheap to clone; clones share limits and counters.
#[derive(Clone)]
pub struct Client {
    inner: reqwest::Client,
    config: Arc<ClientConfig>,
    global: Option<Arc<DefaultDirectRateLimiter>>,
    endpoints: Arc<Mutex<HashMap<&'static str, Arc<DefaultDirectRateLimiter>>>>,
    in_flight: Arc<Semaphore>,
    stats: Arc<HttpStats>,
    /// After a 429: no request of this client goes out before this instant.
    cooldown: Arc<Mutex<Option<tokio::time::Instant>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("vendor", &self.config.vendor)
            .finish_non_exhaustive()
    }
}

/// A token bucket that lets one request through every `1/rps` seconds (no burst), so a burst
/// of calls spreads evenly to the configured rate.
fn limiter(rps: f64) -> Option<Arc<DefaultDirectRateLimiter>> {
    if !(rps.is_finite() && rps > 0.0) {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / rps);
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::MIN);
    Some(Arc::new(RateLimiter::direct(quota)))
}

/// Strips the query string (it may carry signatures) for logs and errors.
pub(crate) fn loggable(url: &str) -> String {
    url.split_once('?').map_or(url, |(base, _)| base).to_owned()
}

/// A response body as a stream of chunks (see [`Client::stream`]).
pub type BodyStream = futures::stream::BoxStream<'static, Result<Bytes, HttpError>>;

/// A finished exchange with the whole body read.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Client {
    /// Builds a client.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(config: ClientConfig) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10).min(config.timeout))
            .user_agent(concat!("talkhouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError {
                vendor: config.vendor,
                method: String::new(),
                url: String::new(),
                attempts: 0,
                kind: HttpErrorKind::Build,
                message: e.to_string(),
            })?;
        Ok(Self {
            inner,
            global: config.requests_per_second.and_then(limiter),
            in_flight: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            config: Arc::new(config),
            endpoints: Arc::new(Mutex::new(HashMap::new())),
            stats: Arc::new(HttpStats::default()),
            cooldown: Arc::new(Mutex::new(None)),
        })
    }

    /// Puts every request tagged with `endpoint` under its own limit of `rps` requests per
    /// second (on top of the client-wide one). Shared by all clones and concurrent requests.
    pub fn limit_endpoint(&self, endpoint: &'static str, rps: f64) {
        if let Some(l) = limiter(rps) {
            self.endpoints
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(endpoint, l);
        }
    }

    /// The vendor this client talks to.
    pub fn vendor(&self) -> &'static str {
        self.config.vendor
    }

    /// Counters.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    /// Sends a request, retrying per the policy, and returns the final status, headers and
    /// body whatever the status (callers handle 301, 404, …).
    ///
    /// # Errors
    /// When every attempt failed at the transport level or with a retriable status.
    pub async fn fetch(&self, req: Request) -> Result<(StatusCode, HeaderMap, Bytes), HttpError> {
        let a = self.execute(&req).await?;
        Ok((a.status, a.headers, a.body))
    }

    /// Sends a request and returns the body of a 2xx answer.
    ///
    /// # Errors
    /// A non-2xx final status (with the vendor's message), or a transport failure.
    pub async fn bytes(&self, req: Request) -> Result<Bytes, HttpError> {
        let a = self.execute(&req).await?;
        if a.status.is_success() {
            Ok(a.body)
        } else {
            self.stats.add(req.stream, Counter::Failure);
            Err(self.status_error(&req, &a))
        }
    }

    /// Sends a request and decodes a 2xx JSON answer.
    ///
    /// # Errors
    /// As [`Client::bytes`], or when the body is not the expected JSON.
    pub async fn json<T: DeserializeOwned>(&self, req: Request) -> Result<T, HttpError> {
        let body = self.bytes(req.clone()).await?;
        serde_json::from_slice(&body).map_err(|e| HttpError {
            vendor: self.config.vendor,
            method: req.method.to_string(),
            url: loggable(&req.url),
            attempts: 1,
            kind: HttpErrorKind::Decode,
            message: format!("invalid JSON: {e}"),
        })
    }

    /// Sends a request under the same limits and retry policy as [`Client::fetch`], but hands
    /// back the body as a stream of chunks instead of reading it whole (for large downloads).
    /// Retries cover the answer's status only: a connection that drops mid-body ends the stream
    /// with an error, and the caller resumes from what it has.
    ///
    /// # Errors
    /// As [`Client::fetch`].
    pub async fn stream(
        &self,
        req: Request,
    ) -> Result<(StatusCode, HeaderMap, BodyStream), HttpError> {
        let vendor = self.config.vendor;
        let url = loggable(&req.url);
        let (mut attempt, mut failed, mut throttled) = (0u32, 0u32, 0u32);
        loop {
            attempt += 1;
            let sent = {
                let _permit = self.in_flight.acquire().await;
                self.wait_for_turn(&req).await;
                self.stats.add(req.stream, Counter::Attempt);
                self.build(&req).send().await
            };
            let jitter = rand::rng().random::<f64>();
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) => {
                    failed += 1;
                    let kind = if e.is_timeout() {
                        HttpErrorKind::Timeout
                    } else {
                        HttpErrorKind::Connect
                    };
                    match retry::decide(
                        Outcome::Transport,
                        failed,
                        &self.config.retry,
                        jitter,
                        SystemTime::now(),
                    ) {
                        Decision::RetryAfter(wait) => {
                            self.stats.add(req.stream, Counter::Retry);
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        _ => {
                            self.stats.add(req.stream, Counter::Failure);
                            let message = transport_message(&e);
                            return Err(HttpError {
                                vendor,
                                method: req.method.to_string(),
                                url,
                                attempts: attempt,
                                kind,
                                message,
                            });
                        }
                    }
                }
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let kind_count = if status == StatusCode::TOO_MANY_REQUESTS {
                throttled += 1;
                self.stats.add(req.stream, Counter::Throttled);
                throttled
            } else {
                failed += u32::from(retry::retriable(status));
                failed
            };
            let decision = retry::decide(
                Outcome::Status(status, &headers),
                kind_count,
                &self.config.retry,
                jitter,
                SystemTime::now(),
            );
            if status == StatusCode::TOO_MANY_REQUESTS
                && let Decision::RetryAfter(wait) = decision
            {
                self.throttled(wait);
            }
            match decision {
                Decision::Done => {
                    let (url, method) = (url.clone(), req.method.to_string());
                    let body = futures::StreamExt::map(resp.bytes_stream(), move |chunk| {
                        chunk.map_err(|e| HttpError {
                            vendor,
                            method: method.clone(),
                            url: url.clone(),
                            attempts: 1,
                            kind: HttpErrorKind::Connect,
                            message: transport_message(&e),
                        })
                    });
                    return Ok((status, headers, Box::pin(body)));
                }
                Decision::RetryAfter(wait) => {
                    self.stats.add(req.stream, Counter::Retry);
                    let _ = resp.bytes().await;
                    tracing::info!(
                        attempt,
                        status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        "retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp => {
                    self.stats.add(req.stream, Counter::Failure);
                    let body = resp.bytes().await.unwrap_or_default();
                    let mut e = self.status_error(
                        &req,
                        &Answer {
                            status,
                            headers,
                            body,
                        },
                    );
                    e.attempts = attempt;
                    return Err(e);
                }
            }
        }
    }

    fn status_error(&self, req: &Request, a: &Answer) -> HttpError {
        let text = String::from_utf8_lossy(&a.body);
        let mut message = format!("HTTP {}", a.status.as_u16());
        if !text.trim().is_empty() {
            let cut: String = text.chars().take(300).collect();
            message.push_str(": ");
            message.push_str(cut.trim());
        }
        HttpError {
            vendor: self.config.vendor,
            method: req.method.to_string(),
            url: loggable(&req.url),
            attempts: 1,
            kind: HttpErrorKind::Status(a.status.as_u16()),
            message,
        }
    }

    fn build(&self, req: &Request) -> reqwest::RequestBuilder {
        let mut b = self.inner.request(req.method.clone(), &req.url);
        for (k, v) in self.config.default_headers.iter().chain(&req.headers) {
            b = b.header(k.as_str(), v.as_str());
        }
        if req.authenticate {
            b = match &self.config.auth {
                Auth::None => b,
                Auth::Basic { user, password } => b.basic_auth(user, Some(password.expose())),
                Auth::Token(t) => b.header("Authorization", format!("Token {}", t.expose())),
                Auth::Bearer(t) => b.bearer_auth(t.expose()),
                Auth::Header { name, value } => b.header(name.as_str(), value.expose()),
            };
        }
        if let Some(json) = &req.json {
            b = b.json(json);
        }
        b
    }

    /// A 429 asked us to wait: every request of this client (clones included) holds back
    /// until then, so concurrent requests stop hammering a server that is pacing us.
    fn throttled(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        let mut c = self
            .cooldown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.is_none_or(|t| t < until) {
            *c = Some(until);
        }
    }

    async fn wait_for_turn(&self, req: &Request) {
        let cooldown = *self
            .cooldown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = cooldown {
            tokio::time::sleep_until(until).await;
        }
        if let Some(l) = &self.global {
            l.until_ready().await;
        }
        let endpoint = req.endpoint.and_then(|e| {
            self.endpoints
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(e)
                .cloned()
        });
        if let Some(l) = endpoint {
            l.until_ready().await;
        }
    }

    async fn execute(&self, req: &Request) -> Result<Answer, HttpError> {
        let vendor = self.config.vendor;
        let url = loggable(&req.url);
        let span = tracing::debug_span!("http", vendor, stream = req.stream, method = %req.method, url = %url);
        async {
            let (mut attempt, mut failed, mut throttled) = (0u32, 0u32, 0u32);
            loop {
                attempt += 1;
                let result = {
                    let _permit = self.in_flight.acquire().await;
                    self.wait_for_turn(req).await;
                    self.stats.add(req.stream, Counter::Attempt);
                    match self.build(req).send().await {
                        Ok(resp) => {
                            let status = resp.status();
                            let headers = resp.headers().clone();
                            resp.bytes().await.map(|body| Answer {
                                status,
                                headers,
                                body,
                            })
                        }
                        Err(e) => Err(e),
                    }
                };
                let jitter = rand::rng().random::<f64>();
                let (decision, failure) = match &result {
                    Ok(a) => {
                        let kind_count = if a.status == StatusCode::TOO_MANY_REQUESTS {
                            throttled += 1;
                            self.stats.add(req.stream, Counter::Throttled);
                            throttled
                        } else {
                            failed += u32::from(retry::retriable(a.status));
                            failed
                        };
                        let d = retry::decide(
                            Outcome::Status(a.status, &a.headers),
                            kind_count,
                            &self.config.retry,
                            jitter,
                            SystemTime::now(),
                        );
                        if a.status == StatusCode::TOO_MANY_REQUESTS
                            && let Decision::RetryAfter(wait) = d
                        {
                            self.throttled(wait);
                        }
                        (d, None)
                    }
                    Err(e) => {
                        failed += 1;
                        let d = retry::decide(
                            Outcome::Transport,
                            failed,
                            &self.config.retry,
                            jitter,
                            SystemTime::now(),
                        );
                        let kind = if e.is_timeout() {
                            HttpErrorKind::Timeout
                        } else {
                            HttpErrorKind::Connect
                        };
                        (d, Some((kind, transport_message(e))))
                    }
                };
                match decision {
                    Decision::Done => {
                        let a =
                            result.map_err(|_| unreachable_error(vendor, req, &url, attempt))?;
                        tracing::debug!(attempt, status = a.status.as_u16(), "answered");
                        return Ok(a);
                    }
                    Decision::RetryAfter(wait) => {
                        self.stats.add(req.stream, Counter::Retry);
                        match &result {
                            Ok(a) => tracing::info!(
                                attempt,
                                status = a.status.as_u16(),
                                wait_ms = wait.as_millis() as u64,
                                "retrying"
                            ),
                            Err(_) => tracing::info!(
                                attempt,
                                error = failure.as_ref().map_or("", |f| f.1.as_str()),
                                wait_ms = wait.as_millis() as u64,
                                "retrying after a transport error"
                            ),
                        }
                        tokio::time::sleep(wait).await;
                    }
                    Decision::GiveUp => {
                        self.stats.add(req.stream, Counter::Failure);
                        let (kind, message) = match (result, failure) {
                            (Ok(a), _) => {
                                let mut e = self.status_error(req, &a);
                                e.attempts = attempt;
                                return Err(e);
                            }
                            (Err(_), Some(f)) => f,
                            (Err(_), None) => {
                                (HttpErrorKind::Connect, String::from("transport error"))
                            }
                        };
                        tracing::warn!(attempt, error = %message, "giving up");
                        return Err(HttpError {
                            vendor,
                            method: req.method.to_string(),
                            url,
                            attempts: attempt,
                            kind,
                            message,
                        });
                    }
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// `Decision::Done` is only returned for answered requests; this covers the impossible branch
/// without a panic.
fn unreachable_error(vendor: &'static str, req: &Request, url: &str, attempts: u32) -> HttpError {
    HttpError {
        vendor,
        method: req.method.to_string(),
        url: url.to_owned(),
        attempts,
        kind: HttpErrorKind::Connect,
        message: "transport error".into(),
    }
}

/// A transport error's message without the URL (reqwest's own text includes it, query and all).
fn transport_message(e: &reqwest::Error) -> String {
    let mut msg = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the body"
    } else {
        "request failed"
    });
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
