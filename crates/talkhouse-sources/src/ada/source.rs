//! The Ada source: two windowed, paginated streams.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use talkhouse_http::{Auth, Client, ClientConfig, HttpError, HttpErrorKind, HttpStats, Request};
use talkhouse_model::{
    Event, EventStream, Quarantined, Source, SourceError, SourceSettings, StreamContext, StreamDef,
    TableRef, TableSpec, model,
};

use super::config::{ApiVersion, Settings};
use super::lookback::{self, Counts, Reread};
use super::records::{self, Mapped, RecordError};
use super::tables::{self, CONVERSATIONS, MESSAGES};

/// "Now" as the source sees it (the wall clock, or a test's clock).
pub type NowFn = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How far back Ada exports data.
const HISTORY: Duration = Duration::days(365);
/// Distance kept from the 12-month edge, so a request is never older than Ada allows by the
/// time it arrives.
const FLOOR_MARGIN: Duration = Duration::minutes(10);

/// The oldest instant a run asks Ada for.
fn floor(now: DateTime<Utc>) -> DateTime<Utc> {
    now - HISTORY + FLOOR_MARGIN
}

/// The two streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// `ada.conversations`, cursor `date_updated`.
    Conversations,
    /// `ada.messages`, cursor `date_created`.
    Messages,
}

impl Stream {
    /// Stream and endpoint name.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Conversations => "conversations",
            Stream::Messages => "messages",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "conversations" => Some(Stream::Conversations),
            "messages" => Some(Stream::Messages),
            _ => None,
        }
    }

    /// The window parameters (`updated_since`/`updated_to` or `created_since`/`created_to`).
    pub fn bounds(self) -> (&'static str, &'static str) {
        match self {
            Stream::Conversations => ("updated_since", "updated_to"),
            Stream::Messages => ("created_since", "created_to"),
        }
    }

    fn map(self, v: &Value) -> Result<Mapped, RecordError> {
        match self {
            Stream::Conversations => records::conversation(v),
            Stream::Messages => records::message(v),
        }
    }
}

/// A configured Ada account.
pub struct AdaSource {
    name: String,
    settings: Settings,
    client: Client,
    now: NowFn,
}

impl std::fmt::Debug for AdaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdaSource")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Formats a query bound the way Ada wants it: UTC ending in `Z`.
pub fn fmt_bound(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl AdaSource {
    /// A source from validated settings, on the wall clock.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(name: &str, settings: Settings) -> Result<Self, SourceError> {
        let config = ClientConfig::new("ada", Auth::Bearer(settings.token.clone())).concurrency(4);
        let client = Client::new(config).map_err(SourceError::from)?;
        for s in [Stream::Conversations, Stream::Messages] {
            client.limit_endpoint(s.name(), settings.requests_per_second);
        }
        Ok(Self {
            name: name.to_owned(),
            settings,
            client,
            now: Arc::new(Utc::now),
        })
    }

    /// Uses another clock for "now" (tests drive it with the emulator's clock).
    #[must_use]
    pub fn with_clock(mut self, now: NowFn) -> Self {
        self.now = now;
        self
    }

    /// The HTTP client's counters (attempts, retries, 429s, failures).
    pub fn http_stats(&self) -> &HttpStats {
        self.client.stats()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn first_url(&self, stream: Stream, since: DateTime<Utc>, to: DateTime<Utc>) -> String {
        let (s, t) = stream.bounds();
        format!(
            "{}{}?{s}={}&{t}={}&page_size={}",
            self.settings.base_url,
            self.settings.api_version.path(stream.name()),
            fmt_bound(since),
            fmt_bound(to),
            self.settings.page_size
        )
    }

    /// Where a run starts: the committed cursor, else `start_date`, else 12 months back, never
    /// older than Ada keeps. A cursor or `start_date` older than that comes back with a warning
    /// for `talkhouse status`.
    fn start(
        &self,
        stream: Stream,
        ctx: &StreamContext,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, Option<DateTime<Utc>>, Option<String>) {
        let floor = floor(now);
        let state = if ctx.full_refresh {
            None
        } else {
            ctx.state.as_ref()
        };
        let read = |k: &str| {
            state
                .and_then(|s| s.get(k))
                .and_then(Value::as_str)
                .and_then(talkhouse_model::time::parse_timestamp)
        };
        let (cursor, window_end) = match read("cursor") {
            Some(c) => (c, read("window_end")),
            None => (self.settings.start_date.unwrap_or(floor), None),
        };
        if cursor < floor {
            let warning = (state.is_some() || self.settings.start_date.is_some()).then(|| {
                let what = if state.is_some() {
                    "the cursor"
                } else {
                    "`start_date`"
                };
                format!(
                    "Ada only exports the previous 12 months: {what} {} is older, so this run started at {}; \
                     what lies between them can no longer be exported",
                    fmt_bound(cursor),
                    fmt_bound(floor)
                )
            });
            if let Some(w) = &warning {
                tracing::warn!(source = %self.name, stream = stream.name(), "{w}");
            }
            return (floor, None, warning);
        }
        (
            cursor,
            window_end.filter(|e| *e > cursor && *e - cursor <= self.settings.window),
            None,
        )
    }

    fn run(&self, stream: Stream, ctx: StreamContext) -> EventStream<'_> {
        let now = (self.now)();
        let upper = now - self.settings.lag;
        let (cursor, window_end, warning) = self.start(stream, &ctx, now);
        let state = if ctx.full_refresh {
            None
        } else {
            ctx.state.as_ref()
        };
        let plan = lookback::plan(
            state,
            cursor,
            window_end,
            self.settings.lookback,
            floor(now),
        );
        let walk = Walk {
            stream,
            cursor: plan.cursor,
            window_end: plan.window_end,
            upper,
            next_url: None,
            seen: HashMap::new(),
            counts: plan.counts,
            done: plan.reread.is_none() && plan.cursor >= upper,
            reread: plan.reread,
            found: plan.found,
            warnings: warning.into_iter().collect(),
        };
        tracing::info!(
            source = %self.name,
            stream = stream.name(),
            from = %fmt_bound(walk.cursor),
            to = %fmt_bound(upper),
            lookback_until = ?walk.reread.as_ref().map(|r| fmt_bound(r.until)),
            "syncing"
        );
        futures::stream::unfold(walk, move |mut walk| async move {
            if walk.done {
                return None;
            }
            let events = match self.step(&mut walk).await {
                Ok(events) => events,
                Err(e) => {
                    walk.done = true;
                    vec![Err(e)]
                }
            };
            Some((futures::stream::iter(events), walk))
        })
        .flatten()
        .boxed()
    }

    /// Fetches one page and turns it into events ending with a checkpoint.
    async fn step(&self, walk: &mut Walk) -> Result<Vec<Result<Event, SourceError>>, SourceError> {
        let stream = walk.stream;
        // A look-back reads up to where the previous run stopped, then the run goes on.
        let upper = walk.reread.as_ref().map_or(walk.upper, |r| r.until);
        let window_end = match walk.window_end {
            Some(e) => e.min(upper),
            None => (walk.cursor + self.settings.window).min(upper),
        };
        walk.window_end = Some(window_end);
        let url = match walk.next_url.take() {
            Some(u) => u,
            None => self.first_url(stream, walk.cursor, window_end),
        };
        let page: Value = self
            .client
            .json(Request::get(url.clone(), stream.name()).endpoint(stream.name()))
            .await
            .map_err(|e| self.http_error(e))?;
        let location = url
            .split_once('?')
            .map_or(url.as_str(), |(p, _)| p)
            .to_owned();
        let Some(data) = page
            .get("data")
            .or_else(|| page.get("items"))
            .and_then(Value::as_array)
        else {
            return Err(SourceError::Protocol {
                location,
                message: "the answer has no `data` array".into(),
            });
        };
        let next = page
            .get("meta")
            .and_then(|m| m.get("next_page_uri"))
            .or_else(|| page.get("next_page_uri"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty());
        let mut events = Vec::with_capacity(data.len() + 1);
        let mut last: Option<DateTime<Utc>> = None;
        for record in data {
            match stream.map(record) {
                Ok(m) => {
                    last = Some(last.map_or(m.at, |l| l.max(m.at)));
                    // Records on a page boundary come again on the next page: skip the ones
                    // already emitted.
                    if walk.seen.get(&m.id).is_some_and(|at| *at == m.at) {
                        continue;
                    }
                    walk.seen.insert(m.id, m.at);
                    walk.counts.add(m.at);
                    events.push(Ok(Event::Records(m.rows)));
                }
                Err(e) => events.push(Ok(Event::Quarantine(Quarantined {
                    location: location.clone(),
                    error: e.to_string(),
                    payload: record.to_string(),
                }))),
            }
        }
        match next {
            Some(next) => {
                let resolved = resolve(&url, next).ok_or_else(|| SourceError::Protocol {
                    location: location.clone(),
                    message: format!("cannot resolve next_page_uri `{next}`"),
                })?;
                let since = lower_bound(&resolved, stream).or(last).ok_or_else(|| {
                    SourceError::Protocol {
                        location: location.clone(),
                        message: "next_page_uri has no lower bound and the page no records".into(),
                    }
                })?;
                if since <= walk.cursor {
                    return Err(SourceError::Protocol {
                        location,
                        message: format!(
                            "next_page_uri does not move past {} (more than page_size = {} records share one timestamp?); \
                             lower page_size cannot help, raise it",
                            fmt_bound(walk.cursor),
                            self.settings.page_size
                        ),
                    });
                }
                walk.cursor = since;
                walk.seen.retain(|_, at| *at >= since);
                walk.next_url = Some(resolved);
            }
            None => {
                walk.cursor = window_end;
                walk.window_end = None;
                walk.seen.clear();
                if let Some(done) = walk.reread.take_if(|r| walk.cursor >= r.until) {
                    self.finish_lookback(walk, done);
                }
                walk.done = walk.reread.is_none() && walk.cursor >= walk.upper;
            }
        }
        events.push(Ok(Event::Checkpoint(self.checkpoint(walk))));
        Ok(events)
    }

    /// The look-back has read up to where the previous run stopped: what it found beyond the
    /// previous runs' counts, they had missed.
    fn finish_lookback(&self, walk: &mut Walk, done: Reread) {
        walk.found = done.before.map(|before| walk.counts.beyond(&before));
        if let Some(n) = walk.found.filter(|n| *n > 0) {
            tracing::warn!(
                source = %self.name,
                stream = walk.stream.name(),
                found = n,
                "the look-back found records that earlier runs had missed"
            );
        }
    }

    /// The state after a page: position, look-back counts and outcome, warnings.
    fn checkpoint(&self, walk: &mut Walk) -> Value {
        walk.counts.keep_from(walk.cursor - self.settings.lookback);
        let mut state = json!({"cursor": fmt_bound(walk.cursor), "api_version": self.settings.api_version.as_str()});
        if let Some(end) = walk.window_end {
            state["window_end"] = json!(fmt_bound(end));
        }
        state[lookback::COUNTS_KEY] = json!(walk.counts.without(walk.seen.values().copied()));
        if let Some(r) = &walk.reread {
            state[lookback::REREAD_KEY] = json!(r);
        }
        let mut warnings = walk.warnings.clone();
        if let Some(n) = walk.found {
            state[lookback::FOUND_KEY] = json!(n);
            if n > 0 {
                warnings.push(format!(
                    "the look-back found {n} {} that earlier runs had missed: Ada ingested them later than `lag` \
                     (now loaded); if this recurs, raise `lag`, or `lookback` if they come later still",
                    walk.stream.name()
                ));
            }
        }
        if !warnings.is_empty() {
            state["warnings"] = json!(warnings);
        }
        state
    }

    fn http_error(&self, e: HttpError) -> SourceError {
        match e.kind {
            HttpErrorKind::Status(status @ (401 | 403)) => {
                let hint = match self.settings.api_version {
                    ApiVersion::V2 => {
                        "v2 takes an API key made under Platform > APIs and rejects legacy Data Export tokens; \
                         a key that worked before was deleted or replaced there"
                    }
                    _ => {
                        "only one Data Export token exists at a time: generating a new one (by anyone, for any tool) \
                         invalidates the old, and Ada cannot restore it; put the current token in `token` and give every \
                         other consumer the same one; trial tokens expire 30 days after the first was generated"
                    }
                };
                SourceError::Auth {
                    vendor: "ada",
                    status,
                    detail: format!("{} {}: {} (hint: {hint})", e.method, e.url, e.message),
                }
            }
            _ => SourceError::from(e),
        }
    }
}

/// Progress through one stream's windows.
struct Walk {
    stream: Stream,
    /// Lower bound of the next request: everything before it is synced.
    cursor: DateTime<Utc>,
    /// Upper bound of the window being read.
    window_end: Option<DateTime<Utc>>,
    /// now − lag at the start of the run.
    upper: DateTime<Utc>,
    /// The next page of the current window.
    next_url: Option<String>,
    /// Ids emitted at or after the cursor (the only ones a boundary can repeat).
    seen: HashMap<String, DateTime<Utc>>,
    /// Distinct records read per hour, for the look-back's comparison.
    counts: Counts,
    /// The look-back still to read.
    reread: Option<Reread>,
    /// Records the run's look-back found that earlier runs had missed.
    found: Option<u64>,
    /// Problems of this run, kept in every checkpoint for `talkhouse status`.
    warnings: Vec<String>,
    done: bool,
}

/// Resolves `next_page_uri` as a browser would: absolute, root-relative or relative to the page
/// it came from.
pub fn resolve(current: &str, next: &str) -> Option<String> {
    let base = url::Url::parse(current).ok()?;
    base.join(next.trim()).ok().map(String::from)
}

/// The lower bound a page URL asks for.
fn lower_bound(url: &str, stream: Stream) -> Option<DateTime<Utc>> {
    let u = url::Url::parse(url).ok()?;
    let (since, _) = stream.bounds();
    u.query_pairs()
        .find(|(k, _)| k == since)
        .and_then(|(_, v)| talkhouse_model::time::parse_timestamp(&v))
}

impl Source for AdaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn vendor(&self) -> &'static str {
        "ada"
    }

    fn http_counters(&self) -> Option<talkhouse_model::HttpCounters> {
        Some(self.client.stats().counters())
    }

    fn stream_http_counters(&self, stream: &str) -> Option<talkhouse_model::HttpCounters> {
        Some(self.client.stats().stream_counters(stream))
    }

    fn tables(&self) -> Vec<TableSpec> {
        let mut t = tables::tables();
        t.extend(model::tables());
        t
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![StreamDef::new("conversations"), StreamDef::new("messages")]
    }

    fn run_stream(&self, stream: &str, ctx: StreamContext) -> EventStream<'_> {
        match Stream::parse(stream) {
            Some(s) => self.run(s, ctx),
            None => {
                let message = format!("ada has no stream `{stream}`");
                Box::pin(futures::stream::once(async move {
                    Err(SourceError::Config(message))
                }))
            }
        }
    }

    fn customer_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![(CONVERSATIONS, "chatter_id"), (MESSAGES, "chatter_id")]
    }

    fn conversation_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![(CONVERSATIONS, "id"), (MESSAGES, "conversation_id")]
    }

    fn views(&self) -> Vec<(&'static str, String)> {
        super::views::views(self.settings.include_test)
    }

    fn model_settings(&self) -> SourceSettings {
        SourceSettings {
            include_test: self.settings.include_test,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_form_of_next_page_uri() {
        let cur =
            "https://acme.ada.support/data_api/v1.4/messages?created_since=2025-01-01T00:00:00Z";
        let want =
            "https://acme.ada.support/data_api/v1.4/messages?created_since=2025-01-02T00:00:00Z";
        for next in [
            "https://acme.ada.support/data_api/v1.4/messages?created_since=2025-01-02T00:00:00Z",
            "/data_api/v1.4/messages?created_since=2025-01-02T00:00:00Z",
            "messages?created_since=2025-01-02T00:00:00Z",
        ] {
            assert_eq!(resolve(cur, next).as_deref(), Some(want), "{next}");
        }
        assert_eq!(
            lower_bound(want, Stream::Messages)
                .map(fmt_bound)
                .as_deref(),
            Some("2025-01-02T00:00:00.000000Z")
        );
        assert_eq!(lower_bound(want, Stream::Conversations), None);
    }
}
