//! The source side: what every connector implements.

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::{Event, SourceError, TableSpec};

/// A stream's events, lazily produced.
pub type EventStream<'a> = BoxStream<'a, Result<Event, SourceError>>;

/// One stream of a source (`conversation_items`, `chats`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDef {
    /// Stream name, unique within the source.
    pub name: &'static str,
    /// Run only after this stream of the same source has finished successfully.
    pub after: Option<&'static str>,
}

impl StreamDef {
    /// A stream with no ordering constraint.
    pub const fn new(name: &'static str) -> Self {
        Self { name, after: None }
    }

    /// A stream that runs after `other` succeeded.
    pub const fn after(name: &'static str, other: &'static str) -> Self {
        Self {
            name,
            after: Some(other),
        }
    }
}

/// What the engine hands a stream when it starts.
#[derive(Debug, Clone, Default)]
pub struct StreamContext {
    /// The cursor committed by the last successful checkpoint, if any.
    pub state: Option<serde_json::Value>,
    /// Ignore the cursor and read everything again.
    pub full_refresh: bool,
    /// The load id of this run (also stamped on every row as `_load_id`).
    pub load_id: String,
}

/// A configured vendor account.
pub trait Source: Send + Sync {
    /// The configured name (`gladly`, `gladly_eu`): the schema its tables go to.
    fn name(&self) -> &str;
    /// The vendor (`gladly`, `giosg`, `ada`, `ultimate`).
    fn vendor(&self) -> &'static str;
    /// Every table the source writes, vendor and model tables alike.
    fn tables(&self) -> Vec<TableSpec>;
    /// The streams, in a stable order.
    fn streams(&self) -> Vec<StreamDef>;
    /// Runs one stream. Nothing happens until the returned stream is polled.
    fn run_stream(&self, stream: &str, ctx: StreamContext) -> EventStream<'_>;
    /// Tables and columns that identify one customer's data, for `talkhouse purge`.
    fn customer_columns(&self) -> Vec<(crate::TableRef, &'static str)> {
        Vec::new()
    }
    /// Where the source records the customer ids that merges retired (old → new), if the vendor
    /// merges customers. `talkhouse purge` follows these chains both ways (A → B → C), so that a
    /// person's data is found under every id they had.
    fn customer_id_history(&self) -> Option<IdHistory> {
        None
    }
    /// Where the source records the conversation ids that merges retired (old → new), if the
    /// vendor merges conversations: `talkhouse purge` follows these chains both ways, so that a
    /// conversation is erased under every id it had.
    fn conversation_id_history(&self) -> Option<IdHistory> {
        None
    }
    /// Tables and columns that identify one conversation (the conversation id as the
    /// cross-vendor model stores it), for `talkhouse purge`: a customer's conversations go
    /// whole, the agents' and bots' replies in them included.
    fn conversation_columns(&self) -> Vec<(crate::TableRef, &'static str)> {
        Vec::new()
    }
    /// Views over the vendor tables (the vendor's own metrics), as `(name, SELECT …)` in SQL
    /// that DuckDB and PostgreSQL both accept. `{schema}` in the SQL stands for the source's
    /// schema. Created in the source's schema after its tables.
    fn views(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Checks a pushed request (auth, shape) quickly, before it is acknowledged. Sources
    /// without push endpoints reject everything with 404.
    fn verify_push(&self, _request: &PushRequest) -> PushVerdict {
        PushVerdict::Reject {
            status: 404,
            message: "this source takes no pushed events".into(),
        }
    }
    /// Turns an accepted push payload into events (fetching what it points at), as one stream
    /// run of stream `push`. Called from the durable inbox, possibly more than once per event,
    /// so it must be idempotent.
    fn process_push(&self, _payload: serde_json::Value) -> EventStream<'_> {
        Box::pin(futures::stream::empty())
    }
    /// The settings the cross-vendor model honours for this source (recorded by the engine in
    /// `talkhouse.source_settings` whenever it prepares the destination).
    fn model_settings(&self) -> SourceSettings {
        SourceSettings::default()
    }
    /// Upkeep `talkhouse serve` runs just before each scheduled sync of the source: work on the
    /// vendor's side that the sync should then see (ending idle chats, say), or `None` when the
    /// source has none or it is switched off. The future resolves to a one-line summary for the log; a
    /// failure is logged and counted, and the sync runs anyway.
    fn scheduled_upkeep(&self) -> Option<BoxFuture<'_, Result<String, SourceError>>> {
        None
    }
    /// Running totals of the source's HTTP client, for `talkhouse serve`'s `/metrics`
    /// (`None` where the source keeps none). Read them from `talkhouse_http::Client::stats`.
    fn http_counters(&self) -> Option<HttpCounters> {
        None
    }
    /// Running totals of the requests made for one stream (`talkhouse_http::HttpStats::
    /// stream_counters`); the engine records what a stream run added in `talkhouse.loads`.
    fn stream_http_counters(&self, _stream: &str) -> Option<HttpCounters> {
        None
    }
}

/// What a source's configuration says about its place in the cross-vendor model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceSettings {
    /// Keep the conversations the vendor marks as tests (`include_test`); by default they stay
    /// in the vendor tables but are left out of `talkhouse.*` views and every metric.
    pub include_test: bool,
}

/// A table of id changes: each row says that `old` became `new` (a merge, a changed id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdHistory {
    /// The table, in the source's schema.
    pub table: crate::TableRef,
    /// The column holding the retired id.
    pub old: &'static str,
    /// The column holding the id it became.
    pub new: &'static str,
}

/// Running totals of a source's HTTP requests since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpCounters {
    /// Attempts sent (retries included).
    pub attempts: u64,
    /// Retries made.
    pub retries: u64,
    /// 429 answers received.
    pub throttled: u64,
    /// Requests that failed for good.
    pub failures: u64,
}

impl HttpCounters {
    /// What was added since `earlier` (counters only grow).
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            attempts: self.attempts.saturating_sub(earlier.attempts),
            retries: self.retries.saturating_sub(earlier.retries),
            throttled: self.throttled.saturating_sub(earlier.throttled),
            failures: self.failures.saturating_sub(earlier.failures),
        }
    }
}

/// A request a vendor pushed to `talkhouse serve` (a webhook or an app trigger).
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query string parameters, decoded.
    pub query: Vec<(String, String)>,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl PushRequest {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter with this name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a source says of a pushed request, before `serve` acknowledges it.
#[derive(Debug, Clone, PartialEq)]
pub enum PushVerdict {
    /// Authentic and well-formed: store it in the inbox under `event_id` (duplicates of an id
    /// are processed once), then answer 2xx.
    Accept {
        /// The vendor's event id (or a digest of the body where the vendor sends none).
        event_id: String,
        /// What to hand [`Source::process_push`] later.
        payload: serde_json::Value,
    },
    /// Answer 2xx but store nothing (a PING).
    Ignore,
    /// Refuse with this status (401 bad credentials, 400 malformed).
    Reject {
        /// HTTP status.
        status: u16,
        /// Message for the vendor (never a secret).
        message: String,
    },
}
