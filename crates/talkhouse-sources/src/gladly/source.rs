//! The Gladly [`Source`]: the configured organisation (or folder), its HTTP client and the
//! shared request helpers, the streams it declares, and the `Source` implementation that runs
//! them (export in [`super::export`], enrichment and lists in [`super::enrich`], webhooks in
//! [`super::push`], the Events API in [`super::events`], folders in [`super::folder`], reports
//! in [`super::reports`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use talkhouse_http::{Auth, Client, ClientConfig, Request};
pub use talkhouse_model::constant_time_eq;
use talkhouse_model::{
    EraseMode, Event, EventStream, PushRequest, PushVerdict, Quarantined, Source, SourceError,
    StreamContext, StreamDef, TableRef, TableSpec,
};

use super::config::GladlyConfig;
use super::events::EVENTS;
use super::export::JobIds;
use super::generator::generate;
use super::memo::{Reply, RunMemo};
use super::reports::{REPORTS, ReportApi, report_kind};
use super::tables;

pub(super) const VENDOR: &str = "gladly";

/// A stream's cursor (the default on a full refresh or an unreadable cursor).
pub(super) fn parse_state<T: for<'de> Deserialize<'de> + Default>(ctx: &StreamContext) -> T {
    if ctx.full_refresh {
        return T::default();
    }
    ctx.state
        .clone()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

/// A cursor as JSON.
pub(super) fn to_json<T: Serialize>(s: &T) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

// ----- the source -------------------------------------------------------------------------

/// A configured Gladly organisation (API), or a folder of export files (`load --dir`).
pub struct GladlySource {
    pub(super) name: String,
    pub(super) cfg: GladlyConfig,
    /// API root and client; `None` for a folder source.
    pub(super) api: Option<(String, Client)>,
    /// Folder for `load --dir`.
    pub(super) dir: Option<PathBuf>,
    /// Ids seen by the export stream, per job, for the enrichment streams of the same run.
    pub(super) cache: Mutex<HashMap<String, JobIds>>,
    /// The report client and budget; `None` for a folder source.
    pub(super) reports: Option<ReportApi>,
    /// The memo of the current sync run's enrichment, while `customers` and `conversations`
    /// run (see [`super::memo`]).
    pub(super) run: Mutex<Option<Arc<RunMemo>>>,
}

impl std::fmt::Debug for GladlySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GladlySource")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

pub(super) const EXPORT: &str = "export";
const FILES: &str = "files";
pub(super) const CUSTOMERS: &str = "customers";
pub(super) const CONVERSATIONS: &str = "conversations";
pub(super) const AGENTS: &str = "agents";
const TOPICS: &str = "topics";
pub(super) const INBOXES: &str = "inboxes";
pub(super) const TEAMS: &str = "teams";
pub(super) const PUSH: &str = "push";

/// Where a customer's profile is read: `{PROFILES}{id}`.
pub(super) const PROFILES: &str = "/customer-profiles/";

/// A text field of a JSON object.
pub(super) fn cell_text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

impl GladlySource {
    /// A source that syncs over the API.
    ///
    /// # Errors
    /// When `base_url`, `email` or `token` is missing, or the HTTP client cannot be built.
    pub fn api(name: &str, cfg: GladlyConfig) -> Result<Self, crate::ConfigError> {
        let root = cfg.api_root().ok_or_else(|| {
            crate::ConfigError::key("base_url", "missing field `base_url`")
                .hint("the API root, e.g. https://acme.gladly.com")
        })?;
        let email = cfg
            .email
            .clone()
            .ok_or_else(|| crate::ConfigError::key("email", "missing field `email`"))?;
        let token = cfg.token.clone().ok_or_else(|| {
            crate::ConfigError::key("token", "missing field `token`")
                .hint("an API token of a user with the API User permission")
        })?;
        if let Some(bad) = cfg
            .reports
            .iter()
            .find(|r| report_kind(r.as_str()).is_none())
        {
            return Err(
                crate::ConfigError::key("reports", format!("unknown report `{bad}`"))
                    .hint("list any of \"contacts\", \"work_sessions\", \"conversation_report\""),
            );
        }
        let conc = cfg.max_concurrency.max(1);
        let auth = Auth::Basic {
            user: email,
            password: token,
        };
        let client = Client::new(
            ClientConfig::new(VENDOR, auth.clone())
                .rate(cfg.requests_per_second)
                .concurrency(conc),
        )
        .map_err(|e| crate::ConfigError::key("base_url", e.to_string()))?;
        let reports = ReportApi::new(auth, &cfg)
            .map_err(|e| crate::ConfigError::key("base_url", e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            cfg,
            api: Some((root, client)),
            dir: None,
            cache: Mutex::default(),
            reports: Some(reports),
            run: Mutex::default(),
        })
    }

    /// A source that loads a folder of export files.
    pub fn folder(name: &str, cfg: GladlyConfig, dir: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            cfg,
            api: None,
            dir: Some(dir),
            cache: Mutex::default(),
            reports: None,
            run: Mutex::default(),
        }
    }

    /// The HTTP client (API sources only).
    pub fn client(&self) -> Option<&Client> {
        self.api.as_ref().map(|(_, c)| c)
    }

    pub(super) fn mode(&self) -> EraseMode {
        self.cfg.on_vendor_delete
    }

    pub(super) fn api_parts(&self) -> Result<(&str, &Client), SourceError> {
        self.api
            .as_ref()
            .map(|(r, c)| (r.as_str(), c))
            .ok_or_else(|| SourceError::Config("this Gladly source only loads files".into()))
    }

    /// The memo of the run `stream` belongs to: the enrichment streams' (`customers`,
    /// `conversations`), while they run; `None` for every other stream, webhooks and the
    /// `events` stream included, which ask Gladly afresh.
    pub(super) fn run_memo(&self, stream: &str) -> Option<Arc<RunMemo>> {
        if stream != CUSTOMERS && stream != CONVERSATIONS {
            return None;
        }
        self.run
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// GET through the run's memo (see [`Self::run_memo`]): an enrichment stream asks each
    /// path once a sync run; other streams ask every time.
    pub(super) async fn read(
        &self,
        path: &str,
        stream: &'static str,
    ) -> Result<Reply, SourceError> {
        Ok(self.read_again(path, stream).await?.0)
    }

    /// [`Self::read`], and whether an earlier read of the run had the answer: then a customer
    /// profile's 200 comes without its body (the first read made its row; the memo keeps only
    /// what merges read again: a 301's new id, lists, conversations and their items).
    pub(super) async fn read_again(
        &self,
        path: &str,
        stream: &'static str,
    ) -> Result<(Reply, bool), SourceError> {
        match self.run_memo(stream) {
            Some(memo) => {
                let profile = path.starts_with(PROFILES);
                let keep = |code| !(profile && code == 200);
                memo.answer(path, self.get(path, stream), keep).await
            }
            None => Ok((self.get(path, stream).await?, false)),
        }
    }

    /// GET with the shared policy; 401/403 fail the stream with a hint.
    pub(super) async fn get(&self, path: &str, stream: &'static str) -> Result<Reply, SourceError> {
        let (root, client) = self.api_parts()?;
        let url = format!("{root}{path}");
        let (status, headers, body) = client.fetch(Request::get(url.clone(), stream)).await?;
        let code = status.as_u16();
        if code == 401 || code == 403 {
            return Err(SourceError::Auth {
                vendor: VENDOR,
                status: code,
                detail: if code == 401 {
                    "bad e-mail or API token (hint: check `email` and `token`)".into()
                } else {
                    "the user lacks the API User permission (hint: grant it in Gladly's user settings)".into()
                },
            });
        }
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let answer = Answer {
            date: header("date")
                .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
                .map(|t| t.with_timezone(&Utc)),
            location: header("location"),
            limited: header("gladly-limited-data")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        };
        Ok((code, answer, body))
    }

    /// GET a 200 JSON answer.
    pub(super) async fn get_json(
        &self,
        path: &str,
        stream: &'static str,
    ) -> Result<Value, SourceError> {
        let (code, _, body) = self.get(path, stream).await?;
        if code != 200 {
            return Err(SourceError::Http {
                vendor: VENDOR,
                url: path.to_owned(),
                status: Some(code),
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| SourceError::Protocol {
            location: path.to_owned(),
            message: e.to_string(),
        })
    }
}

/// The headers of an answer that matter here.
#[derive(Debug, Clone)]
pub(super) struct Answer {
    /// `Date`: the server's clock.
    pub(super) date: Option<DateTime<Utc>>,
    /// `Location`.
    pub(super) location: Option<String>,
    /// `Gladly-Limited-Data: true`.
    pub(super) limited: bool,
}

/// A quarantine event for what came from `location`.
pub(super) fn quarantine(location: &str, error: String, payload: &[u8]) -> Event {
    Event::Quarantine(Quarantined {
        location: location.to_owned(),
        error,
        payload: String::from_utf8_lossy(payload).into_owned(),
    })
}

impl Source for GladlySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn http_counters(&self) -> Option<talkhouse_model::HttpCounters> {
        let reports = self.reports.as_ref().map(|r| r.client().stats().counters());
        self.client()
            .map(|c| add_counters(c.stats().counters(), reports))
    }

    fn stream_http_counters(&self, stream: &str) -> Option<talkhouse_model::HttpCounters> {
        let reports = self
            .reports
            .as_ref()
            .map(|r| r.client().stats().stream_counters(stream));
        self.client()
            .map(|c| add_counters(c.stats().stream_counters(stream), reports))
    }

    fn tables(&self) -> Vec<TableSpec> {
        tables::all()
    }

    fn streams(&self) -> Vec<StreamDef> {
        if self.dir.is_some() {
            return vec![StreamDef::new(FILES)];
        }
        vec![
            StreamDef::new(EXPORT),
            StreamDef::after(CUSTOMERS, EXPORT),
            StreamDef::after(CONVERSATIONS, CUSTOMERS),
            StreamDef::after(AGENTS, EXPORT),
            StreamDef::after(TOPICS, EXPORT),
            StreamDef::after(INBOXES, EXPORT),
            StreamDef::after(TEAMS, EXPORT),
        ]
        .into_iter()
        // After the enrichment: what changed since the export is fetched last, and its rows
        // never race the same rows of `customers` and `conversations`.
        .chain(
            self.cfg
                .events
                .then_some(StreamDef::after(EVENTS, CONVERSATIONS)),
        )
        .chain(
            REPORTS
                .iter()
                .filter(|k| self.report_enabled(k))
                // After the export: a sync's first commits are the export's, and a failing
                // export (credentials, an outage) stops before any report budget is spent.
                .map(|k| StreamDef::after(k.stream, EXPORT)),
        )
        .collect()
    }

    fn run_stream(&self, stream: &str, ctx: StreamContext) -> EventStream<'_> {
        match stream {
            EXPORT => generate(move |em| self.run_export(em, ctx, EXPORT)),
            FILES => generate(move |em| self.run_export(em, ctx, FILES)),
            CUSTOMERS => generate(move |em| self.run_enrich(em, ctx, CUSTOMERS)),
            CONVERSATIONS => generate(move |em| self.run_enrich(em, ctx, CONVERSATIONS)),
            AGENTS => generate(move |em| self.run_list(em, AGENTS)),
            TOPICS => generate(move |em| self.run_list(em, TOPICS)),
            INBOXES => generate(move |em| self.run_list(em, INBOXES)),
            TEAMS => generate(move |em| self.run_list(em, TEAMS)),
            EVENTS if self.cfg.events && self.api.is_some() => {
                generate(move |em| self.run_events(em, ctx))
            }
            other => match report_kind(other).filter(|k| self.report_enabled(k)) {
                Some(kind) => generate(move |em| self.run_report(em, ctx, kind)),
                None => {
                    let msg = format!("gladly has no stream `{other}`");
                    Box::pin(futures::stream::once(async move {
                        Err(SourceError::Other(msg))
                    }))
                }
            },
        }
    }

    fn customer_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![
            (tables::CUSTOMERS, "id"),
            (tables::ITEMS, "customer_id"),
            (tables::CONVERSATIONS, "customer_id"),
            (tables::MERGES, "old_id"),
            (tables::MERGES, "new_id"),
            // The model's id history holds customer and conversation ids alike.
            (talkhouse_model::model::ID_MERGES, "old_id"),
            (talkhouse_model::model::ID_MERGES, "new_id"),
            (tables::CONTACTS, "customer_id"),
            (tables::WORK_SESSIONS, "customer_id"),
            (tables::CONVERSATION_REPORT, "customer_id"),
        ]
    }

    fn customer_id_history(&self) -> Option<talkhouse_model::IdHistory> {
        Some(talkhouse_model::IdHistory {
            table: tables::MERGES,
            old: "old_id",
            new: "new_id",
        })
    }

    fn conversation_id_history(&self) -> Option<talkhouse_model::IdHistory> {
        Some(talkhouse_model::IdHistory {
            table: tables::CONVERSATION_MERGES,
            old: "old_id",
            new: "new_id",
        })
    }

    fn conversation_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![
            (tables::CONVERSATIONS, "id"),
            (tables::ITEMS, "conversation_id"),
            (tables::ASSIGNMENTS, "conversation_id"),
            (tables::CONVERSATION_MERGES, "old_id"),
            (tables::CONVERSATION_MERGES, "new_id"),
            (talkhouse_model::model::ID_MERGES, "old_id"),
            (talkhouse_model::model::ID_MERGES, "new_id"),
            (tables::CONTACTS, "conversation_id"),
            (tables::WORK_SESSIONS, "conversation_id"),
            (tables::CONVERSATION_REPORT, "conversation_id"),
        ]
    }

    fn verify_push(&self, request: &PushRequest) -> PushVerdict {
        self.verify(request)
    }

    fn process_push(&self, payload: Value) -> EventStream<'_> {
        generate(move |em| self.run_push(em, payload))
    }
}

/// Two clients' counters summed (the report client's, where there is one).
fn add_counters(
    a: talkhouse_model::HttpCounters,
    b: Option<talkhouse_model::HttpCounters>,
) -> talkhouse_model::HttpCounters {
    let b = b.unwrap_or_default();
    talkhouse_model::HttpCounters {
        attempts: a.attempts + b.attempts,
        retries: a.retries + b.retries,
        throttled: a.throttled + b.throttled,
        failures: a.failures + b.failures,
    }
}

/// Shared handle used by the registry.
pub(crate) fn boxed(s: GladlySource) -> Arc<dyn Source> {
    Arc::new(s)
}
