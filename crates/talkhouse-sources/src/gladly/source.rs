//! The Gladly [`Source`]: export stream, enrichment streams, webhooks, and the folder loader.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use talkhouse_http::{Auth, Client, ClientConfig, Request};
pub use talkhouse_model::constant_time_eq;
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{
    EraseMode, Event, EventStream, PushRequest, PushVerdict, Quarantined, Source, SourceError,
    StreamContext, StreamDef, TableRef, TableSpec,
};

use super::config::GladlyConfig;
use super::records::{self, FileKind, JobTag};
use super::tables;

const VENDOR: &str = "gladly";

// ----- a small generator: an async body that emits events into a bounded channel ----------

/// Sends events from a stream's body to its consumer.
pub(crate) struct Emitter(mpsc::Sender<Event>);

impl Emitter {
    async fn emit(&mut self, ev: Event) -> Result<(), SourceError> {
        self.0
            .send(ev)
            .await
            .map_err(|_| SourceError::Other("the consumer stopped reading".into()))
    }

    async fn emit_all(&mut self, evs: Vec<Event>) -> Result<(), SourceError> {
        for e in evs {
            self.emit(e).await?;
        }
        Ok(())
    }
}

struct Gen<'a> {
    body: Option<BoxFuture<'a, Result<(), SourceError>>>,
    rx: mpsc::Receiver<Event>,
    err: Option<SourceError>,
}

impl Stream for Gen<'_> {
    type Item = Result<Event, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(body) = self.body.as_mut()
            && let Poll::Ready(r) = body.as_mut().poll(cx)
        {
            self.body = None;
            if let Err(e) = r {
                self.err = Some(e);
            }
        }
        match self.rx.poll_next_unpin(cx) {
            Poll::Ready(Some(ev)) => Poll::Ready(Some(Ok(ev))),
            Poll::Ready(None) => Poll::Ready(self.err.take().map(Err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn generate<'a, F, Fut>(f: F) -> EventStream<'a>
where
    F: FnOnce(Emitter) -> Fut,
    Fut: Future<Output = Result<(), SourceError>> + Send + 'a,
{
    let (tx, rx) = mpsc::channel(256);
    Box::pin(Gen {
        body: Some(Box::pin(f(Emitter(tx)))),
        rx,
        err: None,
    })
}

// ----- lines of a byte stream ------------------------------------------------------------

type ByteStream = BoxStream<'static, Result<Bytes, SourceError>>;

/// Splits a byte stream into lines without holding more than one chunk and one line.
struct LineReader {
    inner: ByteStream,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts: lines are cut off the front without moving the
    /// rest, which is moved once per chunk instead.
    start: usize,
    eof: bool,
}

impl LineReader {
    fn new(inner: ByteStream) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            eof: false,
        }
    }

    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        // Where the search for a newline goes on: the bytes before it hold none.
        let mut scanned = self.start;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + pos;
                let mut line = self.buf[self.start..end].to_vec();
                self.start = end + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.eof {
                let rest = self.buf.split_off(self.start);
                self.buf.clear();
                self.start = 0;
                return Ok((!rest.is_empty()).then_some(rest));
            }
            scanned = self.buf.len();
            match self.inner.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    self.buf.drain(..self.start);
                    scanned -= self.start;
                    self.start = 0;
                    self.buf.extend_from_slice(&chunk);
                }
                None => self.eof = true,
            }
        }
    }
}

// ----- state -------------------------------------------------------------------------------

/// Where a job's loading stopped.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct FilePos {
    job: String,
    file: String,
    line: u64,
}

/// Cursor of the export (and folder) stream: the ledger of processed jobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ExportState {
    /// Processed job id → its `updatedAt` (or a fingerprint for folders).
    #[serde(default)]
    jobs: BTreeMap<String, String>,
    /// The job being loaded, if one was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<FilePos>,
    /// Loud problems of the last run (retention about to lose data, gaps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// Where an enrichment pass stopped.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EnrichPos {
    job: String,
    done: usize,
}

/// Cursor of an enrichment stream: jobs whose ids were enriched.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EnrichState {
    #[serde(default)]
    jobs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current: Option<EnrichPos>,
}

fn parse_state<T: for<'de> Deserialize<'de> + Default>(ctx: &StreamContext) -> T {
    if ctx.full_refresh {
        return T::default();
    }
    ctx.state
        .clone()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default()
}

fn to_json<T: Serialize>(s: &T) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

// ----- jobs ---------------------------------------------------------------------------------

/// A COMPLETED export job (or a folder of files).
#[derive(Debug, Clone)]
struct JobInfo {
    id: String,
    /// `updatedAt` as sent (ledger value), or a folder fingerprint.
    stamp: String,
    updated_at: Option<DateTime<Utc>>,
    files: Vec<FileKind>,
    /// Folder of the files, for `load --dir`.
    dir: Option<PathBuf>,
}

impl JobInfo {
    fn tag(&self) -> JobTag {
        JobTag {
            id: self.id.clone(),
            updated_at: self.updated_at,
        }
    }
}

/// Ids of one job the enrichment streams need, left by the export stream.
#[derive(Debug, Default)]
struct JobIds {
    customers: BTreeSet<String>,
    /// conversation id → (earliest message time, channel).
    conversations: BTreeMap<String, Option<(DateTime<Utc>, &'static str)>>,
}

impl JobIds {
    fn note(&mut self, kind: FileKind, v: &Value) {
        match kind {
            FileKind::Customers => {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    self.customers.insert(id.to_owned());
                }
            }
            FileKind::Items => {
                let Some(conv) = v.get("conversationId").and_then(Value::as_str) else {
                    return;
                };
                let ch = v
                    .pointer("/content/type")
                    .and_then(Value::as_str)
                    .and_then(records::channel_of)
                    .zip(
                        v.get("timestamp")
                            .and_then(Value::as_str)
                            .and_then(parse_timestamp),
                    );
                let slot = self.conversations.entry(conv.to_owned()).or_default();
                if let Some((ch, at)) = ch
                    && slot.is_none_or(|(t, _)| at < t)
                {
                    *slot = Some((at, ch));
                }
            }
            _ => {}
        }
    }
}

// ----- the source -------------------------------------------------------------------------

/// A configured Gladly organisation (API), or a folder of export files (`load --dir`).
pub struct GladlySource {
    name: String,
    cfg: GladlyConfig,
    /// API root and client; `None` for a folder source.
    api: Option<(String, Client)>,
    /// Folder for `load --dir`.
    dir: Option<PathBuf>,
    /// Ids seen by the export stream, per job, for the enrichment streams of the same run.
    cache: Mutex<HashMap<String, JobIds>>,
}

impl std::fmt::Debug for GladlySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GladlySource")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

const EXPORT: &str = "export";
const FILES: &str = "files";
const CUSTOMERS: &str = "customers";
const CONVERSATIONS: &str = "conversations";
const AGENTS: &str = "agents";
const TOPICS: &str = "topics";
const INBOXES: &str = "inboxes";
const TEAMS: &str = "teams";
const PUSH: &str = "push";

fn cell_text(v: &Value, k: &str) -> Option<String> {
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
        let conc = cfg.max_concurrency.max(1);
        let client = Client::new(
            ClientConfig::new(
                VENDOR,
                Auth::Basic {
                    user: email,
                    password: token,
                },
            )
            .rate(cfg.requests_per_second)
            .concurrency(conc),
        )
        .map_err(|e| crate::ConfigError::key("base_url", e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            cfg,
            api: Some((root, client)),
            dir: None,
            cache: Mutex::default(),
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
        }
    }

    /// The HTTP client (API sources only).
    pub fn client(&self) -> Option<&Client> {
        self.api.as_ref().map(|(_, c)| c)
    }

    fn mode(&self) -> EraseMode {
        self.cfg.on_vendor_delete
    }

    fn api_parts(&self) -> Result<(&str, &Client), SourceError> {
        self.api
            .as_ref()
            .map(|(r, c)| (r.as_str(), c))
            .ok_or_else(|| SourceError::Config("this Gladly source only loads files".into()))
    }

    /// GET with the shared policy; 401/403 fail the stream with a hint.
    async fn get(
        &self,
        path: &str,
        stream: &'static str,
    ) -> Result<(u16, Answer, Bytes), SourceError> {
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
            location: header("location"),
            limited: header("gladly-limited-data")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        };
        Ok((code, answer, body))
    }

    async fn get_json(&self, path: &str, stream: &'static str) -> Result<Value, SourceError> {
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

    // ----- jobs -----

    async fn list_jobs(&self) -> Result<Vec<JobInfo>, SourceError> {
        if let Some(dir) = &self.dir {
            return list_folder_jobs(dir).await;
        }
        let v = self
            .get_json("/export/jobs?status=COMPLETED", EXPORT)
            .await?;
        let mut jobs: Vec<JobInfo> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|j| j.get("status").and_then(Value::as_str) == Some("COMPLETED"))
                    .filter_map(|j| {
                        let id = cell_text(j, "id")?;
                        let stamp = cell_text(j, "updatedAt").unwrap_or_default();
                        let files = j
                            .get("files")
                            .and_then(Value::as_array)
                            .map(|f| {
                                f.iter()
                                    .filter_map(Value::as_str)
                                    .filter_map(FileKind::parse)
                                    .collect()
                            })
                            .unwrap_or_default();
                        Some(JobInfo {
                            updated_at: parse_timestamp(&stamp),
                            id,
                            stamp,
                            files,
                            dir: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        jobs.sort_by(|a, b| {
            a.updated_at
                .cmp(&b.updated_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(jobs)
    }

    /// Opens a file of a job; `None` when it is not there (404, or missing in the folder).
    async fn open(
        &self,
        job: &JobInfo,
        kind: FileKind,
        stream: &'static str,
    ) -> Result<Option<ByteStream>, SourceError> {
        if let Some(dir) = &job.dir {
            let path = dir.join(kind.file_name());
            return match tokio::fs::File::open(&path).await {
                Ok(f) => Ok(Some(file_stream(f, path))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(SourceError::Io {
                    path: path.display().to_string(),
                    source: e,
                }),
            };
        }
        let (root, client) = self.api_parts()?;
        let url = format!("{root}/export/jobs/{}/files/{}", job.id, kind.file_name());
        let (status, _, body) = client.stream(Request::get(url.clone(), stream)).await?;
        match status.as_u16() {
            200 => Ok(Some(Box::pin(body.map(|c| c.map_err(SourceError::from))))),
            404 => {
                tracing::warn!(job = %job.id, file = kind.file_name(), "export file is gone (404): the job expired or lacks it");
                Ok(None)
            }
            s @ (401 | 403) => Err(SourceError::Auth {
                vendor: VENDOR,
                status: s,
                detail: "file download refused".into(),
            }),
            s => Err(SourceError::Http {
                vendor: VENDOR,
                url,
                status: Some(s),
                message: "file download failed".into(),
            }),
        }
    }

    // ----- export stream -----

    async fn run_export(
        &self,
        mut em: Emitter,
        ctx: StreamContext,
        stream: &'static str,
    ) -> Result<(), SourceError> {
        let mut state: ExportState = parse_state(&ctx);
        let jobs = self.list_jobs().await?;
        state.warnings = if self.dir.is_none() {
            self.retention_warnings(&state, &jobs)
        } else {
            Vec::new()
        };
        for w in &state.warnings {
            tracing::warn!(source = %self.name, "{w}");
        }
        // Forget jobs that can no longer be listed (kept 14 days), so the ledger stays small.
        if let Some(newest) = jobs.iter().filter_map(|j| j.updated_at).max() {
            state
                .jobs
                .retain(|_, v| parse_timestamp(v).is_none_or(|t| newest - t < Duration::days(16)));
        }
        for job in &jobs {
            if state.jobs.get(&job.id) == Some(&job.stamp) {
                continue;
            }
            self.load_job(&mut em, job, &mut state, stream).await?;
        }
        em.emit(Event::Checkpoint(to_json(&state))).await
    }

    fn retention_warnings(&self, state: &ExportState, jobs: &[JobInfo]) -> Vec<String> {
        let mut out = Vec::new();
        let newest_done = state.jobs.values().filter_map(|v| parse_timestamp(v)).max();
        let newest_listed = jobs.iter().filter_map(|j| j.updated_at).max();
        let (Some(done), Some(listed)) = (newest_done, newest_listed) else {
            return out;
        };
        let age = listed - done;
        if age > Duration::days(self.cfg.retention_warning_days) {
            out.push(format!(
                "the newest processed Gladly export job ({}) is {} days older than the newest job; Gladly deletes jobs after 14 days: sync now or lose data",
                done.to_rfc3339(),
                age.num_days()
            ));
        }
        let oldest_new = jobs
            .iter()
            .filter(|j| !state.jobs.contains_key(&j.id))
            .filter_map(|j| j.updated_at)
            .min();
        if let Some(first) = oldest_new
            && first - done > Duration::hours(36)
        {
            out.push(format!(
                    "gap in Gladly export jobs: nothing between the job of {} and the oldest job still kept ({}); that data is lost to the export",
                    done.to_rfc3339(),
                    first.to_rfc3339()
                ));
        }
        out
    }

    async fn load_job(
        &self,
        em: &mut Emitter,
        job: &JobInfo,
        state: &mut ExportState,
        stream: &'static str,
    ) -> Result<(), SourceError> {
        let tag = job.tag();
        let resume = state.current.clone().filter(|c| c.job == job.id);
        let resume_idx = resume
            .as_ref()
            .and_then(|r| FileKind::parse(&r.file))
            .and_then(|k| FileKind::ALL.iter().position(|x| *x == k));
        let mut ids = JobIds::default();
        // Only the API's enrichment streams read the ids; a folder load (`load --dir`) keeps
        // none, so its memory does not grow with the file.
        let note_ids = self.api.is_some() && resume.is_none();
        tracing::info!(job = %job.id, "loading export job");
        for (idx, kind) in FileKind::ALL.into_iter().enumerate() {
            if resume_idx.is_some_and(|r| idx < r) {
                continue;
            }
            let skip = match (&resume, resume_idx) {
                (Some(r), Some(ri)) if ri == idx => r.line,
                _ => 0,
            };
            if job.dir.is_none() && !job.files.contains(&kind) {
                tracing::info!(job = %job.id, file = kind.file_name(), "job has no such file");
                continue;
            }
            let Some(bytes) = self.open(job, kind, stream).await? else {
                continue;
            };
            let mut reader = LineReader::new(bytes);
            let mut n: u64 = 0;
            while let Some(line) = reader.next_line().await? {
                n += 1;
                if n <= skip && kind != FileKind::Items && kind != FileKind::Customers {
                    continue;
                }
                let text = String::from_utf8_lossy(&line);
                if text.trim().is_empty() {
                    continue;
                }
                match records::line_rows(kind, text.trim(), Some(&tag)) {
                    Ok((v, rows)) => {
                        if note_ids {
                            ids.note(kind, &v);
                        }
                        if n > skip {
                            em.emit(Event::Records(rows)).await?;
                        }
                    }
                    Err(error) if n > skip => {
                        em.emit(Event::Quarantine(Quarantined {
                            location: format!("{}/{}:{n}", job.id, kind.file_name()),
                            error,
                            payload: text.into_owned(),
                        }))
                        .await?;
                    }
                    Err(_) => {}
                }
                if n > skip && n.is_multiple_of(self.cfg.checkpoint_every.max(1)) {
                    state.current = Some(FilePos {
                        job: job.id.clone(),
                        file: kind.file_name().to_owned(),
                        line: n,
                    });
                    em.emit(Event::Checkpoint(to_json(state))).await?;
                }
            }
        }
        state.current = None;
        state.jobs.insert(job.id.clone(), job.stamp.clone());
        em.emit(Event::Checkpoint(to_json(state))).await?;
        // A resumed job skipped files: its ids are incomplete, enrichment reads the files again.
        if note_ids {
            self.cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(job.id.clone(), ids);
        }
        Ok(())
    }

    // ----- enrichment streams -----

    /// Ids of a job for `kind` (customers or items): from the export stream's cache, else by
    /// reading the file again.
    async fn job_ids(
        &self,
        job: &JobInfo,
        kind: FileKind,
        stream: &'static str,
    ) -> Result<JobIds, SourceError> {
        {
            let mut cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(entry) = cache.get_mut(&job.id) {
                let mut out = JobIds::default();
                match kind {
                    FileKind::Customers => out.customers = std::mem::take(&mut entry.customers),
                    _ => out.conversations = std::mem::take(&mut entry.conversations),
                }
                if entry.customers.is_empty() && entry.conversations.is_empty() {
                    cache.remove(&job.id);
                }
                return Ok(out);
            }
        }
        let mut ids = JobIds::default();
        if !job.files.contains(&kind) {
            return Ok(ids);
        }
        if let Some(bytes) = self.open(job, kind, stream).await? {
            let mut reader = LineReader::new(bytes);
            while let Some(line) = reader.next_line().await? {
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    ids.note(kind, &v);
                }
            }
        }
        Ok(ids)
    }

    async fn run_enrich(
        &self,
        mut em: Emitter,
        ctx: StreamContext,
        stream: &'static str,
    ) -> Result<(), SourceError> {
        let mut state: EnrichState = parse_state(&ctx);
        let jobs = self.list_jobs().await?;
        if let Some(newest) = jobs.iter().filter_map(|j| j.updated_at).max() {
            state
                .jobs
                .retain(|_, v| parse_timestamp(v).is_none_or(|t| newest - t < Duration::days(16)));
        }
        let conc = self.cfg.max_concurrency.max(1);
        for job in &jobs {
            if state.jobs.contains_key(&job.id) {
                continue;
            }
            let kind = if stream == CUSTOMERS {
                FileKind::Customers
            } else {
                FileKind::Items
            };
            let ids = self.job_ids(job, kind, stream).await?;
            let work: Vec<(String, Option<&'static str>)> = if stream == CUSTOMERS {
                ids.customers.into_iter().map(|c| (c, None)).collect()
            } else {
                ids.conversations
                    .into_iter()
                    .map(|(c, ch)| (c, ch.map(|(_, ch)| ch)))
                    .collect()
            };
            let start = state
                .current
                .as_ref()
                .filter(|c| c.job == job.id)
                .map_or(0, |c| c.done);
            let seen_at = job.updated_at;
            let mut done = start;
            for chunk in work.get(start..).unwrap_or_default().chunks(25) {
                let futs: Vec<BoxFuture<'_, Result<Vec<Event>, SourceError>>> = chunk
                    .iter()
                    .cloned()
                    .map(|(id, ch)| self.enrich_one(stream, id, ch, seen_at))
                    .collect();
                let results: Vec<Result<Vec<Event>, SourceError>> =
                    futures::stream::iter(futs).buffered(conc).collect().await;
                for r in results {
                    em.emit_all(r?).await?;
                }
                done += chunk.len();
                state.current = Some(EnrichPos {
                    job: job.id.clone(),
                    done,
                });
                em.emit(Event::Checkpoint(to_json(&state))).await?;
            }
            state.current = None;
            state.jobs.insert(job.id.clone(), job.stamp.clone());
            em.emit(Event::Checkpoint(to_json(&state))).await?;
        }
        em.emit(Event::Checkpoint(to_json(&state))).await
    }

    fn enrich_one(
        &self,
        stream: &'static str,
        id: String,
        channel: Option<&'static str>,
        seen_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'_, Result<Vec<Event>, SourceError>> {
        Box::pin(async move {
            if stream == CUSTOMERS {
                self.customer(&id, seen_at, 0, stream).await
            } else {
                self.conversation(&id, channel, seen_at, stream, false)
                    .await
            }
        })
    }

    /// GET a customer: 200 upserts, 301 records the merge and follows it (re-reading the
    /// survivor's conversations and items), 404 erases.
    fn customer<'a>(
        &'a self,
        id: &'a str,
        seen_at: Option<DateTime<Utc>>,
        depth: u8,
        stream: &'static str,
    ) -> BoxFuture<'a, Result<Vec<Event>, SourceError>> {
        Box::pin(async move {
            let path = format!("/customer-profiles/{id}");
            let (code, headers, body) = self.get(&path, stream).await?;
            let mut out = Vec::new();
            match code {
                200 => match serde_json::from_slice::<Value>(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|v| records::customer_rest_row(&v))
                {
                    Ok(row) => out.push(Event::Records(vec![row])),
                    Err(error) => out.push(quarantine(&path, error, &body)),
                },
                301 => {
                    let Some(new) = records::moved_to(&body, headers.location.as_deref()) else {
                        out.push(quarantine(
                            &path,
                            "301 without the new customer id".into(),
                            &body,
                        ));
                        return Ok(out);
                    };
                    tracing::info!(old = %id, new = %new, "customer merged");
                    out.push(Event::Records(vec![records::merge_row(id, &new, seen_at)]));
                    out.push(records::mark_merged(id));
                    if depth < 3 && new != id {
                        out.extend(self.customer(&new, seen_at, depth + 1, stream).await?);
                        out.extend(self.survivor_conversations(&new, seen_at, stream).await?);
                    }
                }
                404 => {
                    tracing::info!(customer = %id, "customer is gone (404)");
                    out.extend(records::erase_customer(id, self.mode()));
                }
                _ => out.push(quarantine(&path, format!("HTTP {code}"), &body)),
            }
            Ok(out)
        })
    }

    /// After a merge: the survivor's conversations and their items, so moved items (new ids)
    /// land.
    async fn survivor_conversations(
        &self,
        customer: &str,
        seen_at: Option<DateTime<Utc>>,
        stream: &'static str,
    ) -> Result<Vec<Event>, SourceError> {
        let path = format!("/customers/{customer}/conversations");
        let (code, _, body) = self.get(&path, stream).await?;
        if code != 200 {
            return Ok(Vec::new());
        }
        let list: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        let mut out = Vec::new();
        for conv in list {
            let Some(cid) = cell_text(&conv, "id") else {
                continue;
            };
            let (items, channel) = self.conversation_items(&cid, stream).await?;
            match records::conversation_rows(&conv, channel, seen_at) {
                Ok(rows) => out.push(Event::Records(rows)),
                Err(e) => out.push(quarantine(&path, e, conv.to_string().as_bytes())),
            }
            out.extend(items);
        }
        Ok(out)
    }

    /// The item list of a conversation (≤1000; the export has the rest) → events, and the
    /// channel of its earliest message.
    async fn conversation_items(
        &self,
        id: &str,
        stream: &'static str,
    ) -> Result<(Vec<Event>, Option<&'static str>), SourceError> {
        let path = format!("/conversations/{id}/items");
        let (code, headers, body) = self.get(&path, stream).await?;
        if code != 200 {
            return Ok((Vec::new(), None));
        }
        if headers.limited {
            tracing::info!(conversation = %id, "item list capped at 1000 (Gladly-Limited-Data): the export carries the rest");
        }
        let list: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        let mut out = Vec::new();
        let mut channel: Option<&'static str> = None;
        for v in list {
            if channel.is_none() {
                channel = v
                    .pointer("/content/type")
                    .and_then(Value::as_str)
                    .and_then(records::channel_of);
            }
            let raw = v.to_string();
            match records::item_rows(&v, &raw, None) {
                Ok(rows) => out.push(Event::Records(rows)),
                Err(e) => out.push(quarantine(&path, e, raw.as_bytes())),
            }
        }
        Ok((out, channel))
    }

    /// GET a conversation: 200 upserts it (with its assignment and model row), 404 erases.
    async fn conversation(
        &self,
        id: &str,
        channel: Option<&'static str>,
        seen_at: Option<DateTime<Utc>>,
        stream: &'static str,
        with_items: bool,
    ) -> Result<Vec<Event>, SourceError> {
        let path = format!("/conversations/{id}");
        let (code, _, body) = self.get(&path, stream).await?;
        let mut out = Vec::new();
        match code {
            200 => {
                let mut channel = channel;
                if with_items {
                    let (items, ch) = self.conversation_items(id, stream).await?;
                    channel = channel.or(ch);
                    out.extend(items);
                }
                match serde_json::from_slice::<Value>(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|v| records::conversation_rows(&v, channel, seen_at))
                {
                    Ok(rows) => out.insert(0, Event::Records(rows)),
                    Err(error) => out.push(quarantine(&path, error, &body)),
                }
            }
            404 => {
                tracing::info!(conversation = %id, "conversation is gone (404): deleted or merged OPEN into OPEN");
                out.extend(records::erase_conversation(id, self.mode()));
            }
            _ => out.push(quarantine(&path, format!("HTTP {code}"), &body)),
        }
        Ok(out)
    }

    async fn run_list(&self, mut em: Emitter, stream: &'static str) -> Result<(), SourceError> {
        let path = format!("/{stream}");
        let v = self.get_json(&path, stream).await?;
        for item in v.as_array().cloned().unwrap_or_default() {
            let raw = item.to_string();
            let row = match stream {
                AGENTS => records::agent_row(&item, &raw),
                INBOXES => records::inbox_row(&item),
                TEAMS => records::team_row(&item),
                _ => {
                    // The list may leave parents out; the single topic has them.
                    let full = match (item.get("parentId"), cell_text(&item, "id")) {
                        (None, Some(id)) => self
                            .get_json(&format!("/topics/{id}"), stream)
                            .await
                            .unwrap_or(item.clone()),
                        _ => item.clone(),
                    };
                    records::topic_row(&full, &full.to_string())
                }
            };
            match row {
                Ok(r) => em.emit(Event::Records(vec![r])).await?,
                Err(e) => em.emit(quarantine(&path, e, raw.as_bytes())).await?,
            }
        }
        Ok(())
    }

    // ----- webhooks -----

    fn webhook_authentic(&self, req: &PushRequest) -> bool {
        let mut configured = false;
        let mut ok = false;
        if let (Some(user), Some(pass)) = (&self.cfg.webhook_username, &self.cfg.webhook_password) {
            use base64::Engine;
            configured = true;
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", pass.expose()))
            );
            ok |= constant_time_eq(
                req.header("authorization").unwrap_or("").as_bytes(),
                want.as_bytes(),
            );
        }
        if let Some(h) = &self.cfg.webhook_header {
            configured = true;
            let got = req.header(&h.name.to_ascii_lowercase()).unwrap_or("");
            ok |= constant_time_eq(got.as_bytes(), h.value.expose().as_bytes());
        }
        if !configured {
            tracing::warn!(source = %self.name, "webhook refused: no webhook_username/webhook_password or webhook_header configured");
        }
        configured && ok
    }

    async fn run_push(&self, mut em: Emitter, payload: Value) -> Result<(), SourceError> {
        let ty = payload.get("type").and_then(Value::as_str).unwrap_or("");
        let content = payload.get("content").cloned().unwrap_or(Value::Null);
        let at = payload
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_timestamp);
        let field = |k: &str| cell_text(&content, k);
        match ty {
            "CONTACT/MESSAGE_RECEIVED" | "CONTACT/MESSAGE_SENT" | "AUTOMATION/MESSAGE_RECEIVED" => {
                if let Some(mid) = field("messageId") {
                    let path = format!("/conversation-items/{mid}");
                    let (code, _, body) = self.get(&path, PUSH).await?;
                    match code {
                        200 => {
                            let raw = String::from_utf8_lossy(&body).into_owned();
                            match serde_json::from_str::<Value>(&raw)
                                .map_err(|e| e.to_string())
                                .and_then(|v| records::item_rows(&v, &raw, None))
                            {
                                Ok(rows) => em.emit(Event::Records(rows)).await?,
                                Err(e) => em.emit(quarantine(&path, e, &body)).await?,
                            }
                        }
                        404 => {}
                        _ => {
                            em.emit(quarantine(&path, format!("HTTP {code}"), &body))
                                .await?
                        }
                    }
                }
            }
            "CUSTOMER/MERGED" | "CUSTOMER_PROFILE/MERGED" => {
                if let (Some(src), Some(dst)) =
                    (field("sourceCustomerId"), field("destinationCustomerId"))
                {
                    em.emit(Event::Records(vec![records::merge_row(&src, &dst, at)]))
                        .await?;
                    em.emit(records::mark_merged(&src)).await?;
                    em.emit_all(self.customer(&dst, at, 1, PUSH).await?).await?;
                }
                if let Some(c) = field("sourceConversationId") {
                    em.emit_all(self.conversation(&c, None, at, PUSH, true).await?)
                        .await?;
                }
                if let Some(c) = field("destinationConversationId") {
                    em.emit_all(self.conversation(&c, None, at, PUSH, true).await?)
                        .await?;
                }
            }
            "CUSTOMER_PROFILE/CREATED"
            | "CUSTOMER_PROFILE/UPDATED"
            | "CUSTOMER_PROFILE/DELETED" => {
                if let Some(c) = field("customerId") {
                    em.emit_all(self.customer(&c, at, 0, PUSH).await?).await?;
                }
            }
            t if t.starts_with("CONVERSATION") => {
                if let Some(c) = field("conversationId") {
                    em.emit_all(self.conversation(&c, None, at, PUSH, true).await?)
                        .await?;
                }
            }
            _ => tracing::debug!(event_type = ty, "webhook event needs no fetch"),
        }
        Ok(())
    }
}

/// The headers of an answer that matter here.
struct Answer {
    /// `Location`.
    location: Option<String>,
    /// `Gladly-Limited-Data: true`.
    limited: bool,
}

fn quarantine(location: &str, error: String, payload: &[u8]) -> Event {
    Event::Quarantine(Quarantined {
        location: location.to_owned(),
        error,
        payload: String::from_utf8_lossy(payload).into_owned(),
    })
}

fn file_stream(file: tokio::fs::File, path: PathBuf) -> ByteStream {
    use tokio::io::AsyncReadExt;
    Box::pin(futures::stream::unfold(Some(file), move |f| {
        let path = path.clone();
        async move {
            let mut f = f?;
            let mut buf = vec![0u8; 64 * 1024];
            match f.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(f)))
                }
                Err(e) => Some((
                    Err(SourceError::Io {
                        path: path.display().to_string(),
                        source: e,
                    }),
                    None,
                )),
            }
        }
    }))
}

/// The jobs of a folder: the folder itself when it holds export files, else its subfolders in
/// name order. A job's ledger value is a fingerprint (sizes and times of its files), so a
/// folder whose files changed is loaded again.
async fn list_folder_jobs(dir: &std::path::Path) -> Result<Vec<JobInfo>, SourceError> {
    let io = |e: std::io::Error| SourceError::Io {
        path: dir.display().to_string(),
        source: e,
    };
    let one = |d: &std::path::Path, id: String| -> Option<JobInfo> {
        let mut stamp = String::new();
        let mut files = Vec::new();
        for k in FileKind::ALL {
            if let Ok(m) = std::fs::metadata(d.join(k.file_name())) {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |t| t.as_secs());
                stamp.push_str(&format!("{}:{}:{mtime};", k.file_name(), m.len()));
                files.push(k);
            }
        }
        (!files.is_empty()).then(|| JobInfo {
            id,
            stamp,
            updated_at: None,
            files,
            dir: Some(d.to_path_buf()),
        })
    };
    let name = dir
        .file_name()
        .map_or_else(|| "export".to_owned(), |n| n.to_string_lossy().into_owned());
    if let Some(j) = one(dir, name) {
        return Ok(vec![j]);
    }
    let mut subs: Vec<PathBuf> = Vec::new();
    let mut rd = tokio::fs::read_dir(dir).await.map_err(io)?;
    while let Some(e) = rd.next_entry().await.map_err(io)? {
        if e.file_type().await.map_err(io)?.is_dir() {
            subs.push(e.path());
        }
    }
    subs.sort();
    Ok(subs
        .iter()
        .filter_map(|d| {
            one(
                d,
                d.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            )
        })
        .collect())
}

impl Source for GladlySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn http_counters(&self) -> Option<talkhouse_model::HttpCounters> {
        self.client().map(|c| c.stats().counters())
    }

    fn stream_http_counters(&self, stream: &str) -> Option<talkhouse_model::HttpCounters> {
        self.client().map(|c| c.stats().stream_counters(stream))
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
            other => {
                let msg = format!("gladly has no stream `{other}`");
                Box::pin(futures::stream::once(async move {
                    Err(SourceError::Other(msg))
                }))
            }
        }
    }

    fn customer_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![
            (tables::CUSTOMERS, "id"),
            (tables::ITEMS, "customer_id"),
            (tables::CONVERSATIONS, "customer_id"),
            (tables::MERGES, "old_id"),
            (tables::MERGES, "new_id"),
        ]
    }

    fn customer_id_history(&self) -> Option<talkhouse_model::IdHistory> {
        Some(talkhouse_model::IdHistory {
            table: tables::MERGES,
            old: "old_id",
            new: "new_id",
        })
    }

    fn conversation_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![
            (tables::CONVERSATIONS, "id"),
            (tables::ITEMS, "conversation_id"),
            (tables::ASSIGNMENTS, "conversation_id"),
        ]
    }

    fn verify_push(&self, request: &PushRequest) -> PushVerdict {
        if self.api.is_none() {
            return PushVerdict::Reject {
                status: 404,
                message: "this source takes no pushed events".into(),
            };
        }
        if !self.webhook_authentic(request) {
            return PushVerdict::Reject {
                status: 401,
                message: "bad webhook credentials".into(),
            };
        }
        let Ok(v) = serde_json::from_slice::<Value>(&request.body) else {
            return PushVerdict::Reject {
                status: 400,
                message: "body is not JSON".into(),
            };
        };
        if v.get("type").and_then(Value::as_str) == Some("PING") {
            return PushVerdict::Ignore;
        }
        match v.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => PushVerdict::Accept {
                event_id: id.to_owned(),
                payload: v,
            },
            _ => PushVerdict::Reject {
                status: 400,
                message: "event has no id".into(),
            },
        }
    }

    fn process_push(&self, payload: Value) -> EventStream<'_> {
        generate(move |em| self.run_push(em, payload))
    }
}

/// Shared handle used by the registry.
pub(crate) fn boxed(s: GladlySource) -> Arc<dyn Source> {
    Arc::new(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of `chunks` as the reader cuts them.
    async fn lines_of(chunks: &[&str]) -> Vec<String> {
        let chunks: Vec<Result<Bytes, SourceError>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        let mut reader = LineReader::new(Box::pin(futures::stream::iter(chunks)));
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.expect("line") {
            out.push(String::from_utf8(line).expect("utf-8"));
        }
        out
    }

    #[tokio::test]
    async fn lines_are_cut_across_chunks_crlf_and_a_missing_last_newline() {
        assert_eq!(
            lines_of(&["{\"a\":1}\n{\"b\"", ":2}\r\n\n", "{\"c\":3}"]).await,
            ["{\"a\":1}", "{\"b\":2}", "", "{\"c\":3}"]
        );
        assert_eq!(lines_of(&["x\ny\n"]).await, ["x", "y"]);
        assert_eq!(lines_of(&["", "a", "", "b\n", "c"]).await, ["ab", "c"]);
        assert!(lines_of(&[]).await.is_empty());
    }
}
