//! Running streams, batching events and committing them with their cursors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use talkhouse_model::{
    Cell, ColumnType, Commit, Destination, DestinationError, Erasure, Event, LoadRecord,
    LoadStatus, Quarantined, Row, Source, StreamContext, StreamDef, TableRef, model,
};
use tracing::Instrument;

/// Caps on one batch: whichever is reached first closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Rows per batch.
    pub max_rows: usize,
    /// Approximate bytes per batch.
    pub max_bytes: usize,
    /// Age of the oldest pending event.
    pub max_age: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_rows: 50_000,
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(5),
        }
    }
}

/// Receives progress of a sync (the CLI draws bars with it).
pub trait Progress: Send + Sync {
    /// A stream started.
    fn started(&self, source: &str, stream: &str);
    /// A batch landed: `rows` is the stream's running total.
    fn committed(&self, source: &str, stream: &str, rows: u64, quarantined: u64);
    /// A stream ended.
    fn finished(&self, report: &StreamReport);
}

/// Per-row work done before a batch is written (sentiment scores, for instance).
pub trait Enricher: Send + Sync {
    /// Adjusts a row in place.
    fn enrich(&self, row: &mut Row);
}

/// How to run a sync.
#[derive(Clone, Default)]
pub struct SyncOptions {
    /// Ignore committed cursors and read everything again.
    pub full_refresh: bool,
    /// Batch caps.
    pub batch: BatchConfig,
    /// Only these streams (all when `None`).
    pub streams: Option<Vec<String>>,
    /// Progress callbacks.
    pub progress: Option<Arc<dyn Progress>>,
    /// Row enrichment (sentiment).
    pub enricher: Option<Arc<dyn Enricher>>,
}

impl std::fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncOptions")
            .field("full_refresh", &self.full_refresh)
            .field("batch", &self.batch)
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

/// The outcome of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReport {
    /// Source name.
    pub source: String,
    /// Stream name.
    pub stream: String,
    /// Load id.
    pub load_id: String,
    /// Succeeded or failed.
    pub status: LoadStatus,
    /// Vendor rows received (child rows included, model rows not).
    pub rows: u64,
    /// Records quarantined.
    pub quarantined: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The outcome of a source's sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncReport {
    /// One entry per stream, in the source's stream order.
    pub streams: Vec<StreamReport>,
    /// A failure before any stream ran (destination unreachable, tables not creatable).
    pub error: Option<String>,
}

impl SyncReport {
    /// Whether every stream finished.
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self
                .streams
                .iter()
                .all(|s| s.status == LoadStatus::Succeeded)
    }

    /// The failed streams.
    pub fn failures(&self) -> impl Iterator<Item = &StreamReport> {
        self.streams
            .iter()
            .filter(|s| s.status != LoadStatus::Succeeded)
    }
}

/// A fresh load id: UTC time plus random bits, sortable by start.
pub fn new_load_id() -> String {
    let r: u32 = rand::random();
    format!("{}-{r:08x}", Utc::now().format("%Y%m%dT%H%M%S%.6fZ"))
}

/// Runs every stream of `source` once and commits into `dest`.
///
/// Streams run concurrently, except that a stream with `after` waits for that stream to
/// succeed (and is reported failed if it did not). A failing stream keeps what it and the others
/// committed.
pub async fn sync_source(
    source: Arc<dyn Source>,
    dest: Arc<dyn Destination>,
    opts: &SyncOptions,
) -> SyncReport {
    let name = source.name().to_owned();
    let span = tracing::info_span!("sync", source = %name, vendor = source.vendor());
    async {
        if let Err(e) = prepare(&*source, &*dest).await {
            tracing::error!(error = %e, "cannot prepare the destination");
            return SyncReport {
                streams: Vec::new(),
                error: Some(e.to_string()),
            };
        }
        let defs: Vec<StreamDef> = source
            .streams()
            .into_iter()
            .filter(|d| {
                opts.streams
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|s| s == d.name))
            })
            .collect();
        let mut done: HashMap<&'static str, StreamReport> = HashMap::new();
        let mut pending: Vec<StreamDef> = defs.clone();
        while !pending.is_empty() {
            // Everything whose dependency is settled (or absent from this run) can start now.
            let (ready, blocked): (Vec<StreamDef>, Vec<StreamDef>) =
                pending.into_iter().partition(|d| {
                    d.after
                        .is_none_or(|a| done.contains_key(a) || !defs.iter().any(|x| x.name == a))
                });
            pending = blocked;
            if ready.is_empty() {
                // A cycle: report the rest as failed rather than hang.
                for d in pending.drain(..) {
                    done.insert(
                        d.name,
                        skipped(&name, d.name, "stream dependencies form a cycle"),
                    );
                }
                break;
            }
            let runs = ready.into_iter().map(|d| {
                let dep_failed = d
                    .after
                    .and_then(|a| done.get(a))
                    .filter(|r| r.status != LoadStatus::Succeeded);
                let source = source.clone();
                let dest = dest.clone();
                let opts = opts.clone();
                let skip = dep_failed.map(|r| format!("not run: stream `{}` failed", r.stream));
                async move {
                    match skip {
                        Some(reason) => skipped(source.name(), d.name, &reason),
                        None => run_stream(source, dest, d.name, &opts).await,
                    }
                }
            });
            for r in futures::future::join_all(runs).await {
                let key = defs
                    .iter()
                    .find(|d| d.name == r.stream)
                    .map_or("", |d| d.name);
                done.insert(key, r);
            }
        }
        let streams = defs.iter().filter_map(|d| done.remove(d.name)).collect();
        SyncReport {
            streams,
            error: None,
        }
    }
    .instrument(span)
    .await
}

fn skipped(source: &str, stream: &str, reason: &str) -> StreamReport {
    StreamReport {
        source: source.to_owned(),
        stream: stream.to_owned(),
        load_id: String::new(),
        status: LoadStatus::Failed,
        rows: 0,
        quarantined: 0,
        error: Some(reason.to_owned()),
    }
}

/// Creates bookkeeping tables, the source's tables and its views.
///
/// # Errors
/// When the destination refuses.
pub async fn prepare(source: &dyn Source, dest: &dyn Destination) -> Result<(), DestinationError> {
    dest.init().await?;
    let tables = source.tables();
    dest.prepare(source.name(), &tables).await?;
    for (view, sql) in source.views() {
        let sql = sql.replace("{schema}", source.name());
        dest.execute(&format!(
            "CREATE OR REPLACE VIEW {}.{view} AS {sql}",
            source.name()
        ))
        .await?;
    }
    if tables.iter().any(|t| t.table == model::SOURCE_SETTINGS) {
        record_settings(source, dest).await?;
    }
    Ok(())
}

/// Writes the source's row of `talkhouse.source_settings`, which the model views read (so a
/// changed `include_test` applies at the next sync, with nothing reloaded).
async fn record_settings(
    source: &dyn Source,
    dest: &dyn Destination,
) -> Result<(), DestinationError> {
    let settings = source.model_settings();
    let now = Utc::now();
    let row = Row::new(model::SOURCE_SETTINGS)
        .set("source", source.name().to_owned())
        .set("vendor", source.vendor())
        .set("include_test", settings.include_test);
    dest.commit(Commit {
        source: source.name().to_owned(),
        stream: "settings".to_owned(),
        load_id: new_load_id(),
        synced_at: now,
        rows: vec![row],
        erasures: Vec::new(),
        quarantine: Vec::new(),
        state: None,
        more_follows: false,
    })
    .await
    .map(|_| ())
}

/// Pending events of one stream, not yet committed.
#[derive(Default)]
struct Pending {
    rows: Vec<Row>,
    erasures: Vec<Erasure>,
    quarantine: Vec<Quarantined>,
    state: Option<serde_json::Value>,
    bytes: usize,
    since: Option<Instant>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.erasures.is_empty()
            && self.quarantine.is_empty()
            && self.state.is_none()
    }

    fn touch(&mut self) {
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }

    /// Whether the batch reached its row or byte cap: a bulk read, with more to come.
    fn full_by_size(&self, cfg: &BatchConfig) -> bool {
        self.rows.len() >= cfg.max_rows || self.bytes >= cfg.max_bytes
    }

    fn full(&self, cfg: &BatchConfig) -> bool {
        self.full_by_size(cfg) || self.since.is_some_and(|t| t.elapsed() >= cfg.max_age)
    }
}

struct StreamRun<'a> {
    source: &'a str,
    stream: &'a str,
    load_id: String,
    dest: &'a dyn Destination,
    opts: &'a SyncOptions,
    /// The declared type of every column, to coerce cells to ([`talkhouse_model::coerce`]).
    columns: Columns,
    rows: u64,
    quarantined: u64,
}

/// Column types and key columns of a source's tables, looked up for every cell of every row:
/// hashed with foldhash rather than SipHash (the names are the code's own, not an attacker's).
struct Columns(FastMap<TableRef, (FastMap<&'static str, ColumnType>, Vec<&'static str>)>);

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

impl Columns {
    fn of(source: &dyn Source) -> Self {
        Self(
            source
                .tables()
                .into_iter()
                .map(|t| {
                    let types = t.columns.iter().map(|c| (c.name, c.ty)).collect();
                    (t.table, (types, t.primary_key))
                })
                .collect(),
        )
    }
}

/// Whether a cell already is what its column stores (no conversion to make).
fn exact(cell: &Cell, ty: ColumnType) -> bool {
    match (cell, ty) {
        (Cell::Null, _)
        | (Cell::Integer(_), ColumnType::Integer)
        | (Cell::Boolean(_), ColumnType::Boolean)
        | (Cell::Timestamp(_), ColumnType::Timestamp)
        | (Cell::Date(_), ColumnType::Date) => true,
        (Cell::Float(f), ColumnType::Float) => f.is_finite(),
        (Cell::Text(s), ColumnType::Text) => !s.contains('\0'),
        _ => false,
    }
}

/// A batch being committed while the next one fills.
type CommitFuture<'a> = futures::future::BoxFuture<'a, Result<(), DestinationError>>;

/// The rows of a batch: as they are, or being enriched on a blocking thread.
enum Rows {
    Ready(Vec<Row>),
    Enriching(tokio::task::JoinHandle<Vec<Row>>),
}

/// What one commit writes, taken from [`Pending`].
struct Batch {
    rows: Rows,
    erasures: Vec<Erasure>,
    quarantine: Vec<Quarantined>,
    state: Option<serde_json::Value>,
    /// See [`Commit::more_follows`].
    more_follows: bool,
}

impl Batch {
    /// A commit of nothing that makes the ones before it durable.
    fn closing() -> Self {
        Self {
            rows: Rows::Ready(Vec::new()),
            erasures: Vec::new(),
            quarantine: Vec::new(),
            state: None,
            more_follows: false,
        }
    }
}

impl<'a> StreamRun<'a> {
    /// Takes what is pending as a batch (`None` when nothing is) and starts enriching its model
    /// rows on a thread of their own: the enrichment runs while the previous batch commits and
    /// the source reads on.
    fn take_batch(&self, pending: &mut Pending, more_follows: bool) -> Option<Batch> {
        if pending.is_empty() {
            return None;
        }
        let p = std::mem::take(pending);
        let rows = match self.opts.enricher.clone() {
            Some(enricher) if p.rows.iter().any(|r| r.table.model) => {
                let mut rows = p.rows;
                Rows::Enriching(tokio::task::spawn_blocking(move || {
                    for row in rows.iter_mut().filter(|r| r.table.model) {
                        enricher.enrich(row);
                    }
                    rows
                }))
            }
            _ => Rows::Ready(p.rows),
        };
        Some(Batch {
            rows,
            erasures: p.erasures,
            quarantine: p.quarantine,
            state: p.state,
            more_follows,
        })
    }

    /// Starts committing a batch once its enrichment is done. The commit runs while the caller
    /// reads on, and must finish before the next one starts, so batches and their cursors land
    /// in order.
    fn start_commit(&self, batch: Batch) -> CommitFuture<'a> {
        let (dest, opts, source, stream) = (self.dest, self.opts, self.source, self.stream);
        let (rows, quarantined) = (self.rows, self.quarantined);
        let load_id = self.load_id.clone();
        Box::pin(async move {
            let batch_rows = match batch.rows {
                Rows::Ready(rows) => rows,
                Rows::Enriching(task) => task
                    .await
                    .map_err(|e| DestinationError::query("enriching rows", e))?,
            };
            let n_rows = batch_rows.len();
            let n_quarantine = batch.quarantine.len();
            let commit = Commit {
                source: source.to_owned(),
                stream: stream.to_owned(),
                load_id,
                synced_at: Utc::now(),
                rows: batch_rows,
                erasures: batch.erasures,
                quarantine: batch.quarantine,
                state: batch.state,
                more_follows: batch.more_follows,
            };
            let stats = dest.commit(commit).await?;
            tracing::debug!(
                rows = n_rows,
                written = stats.rows_written,
                erased = stats.rows_erased,
                quarantined = n_quarantine,
                "batch committed"
            );
            if let Some(p) = &opts.progress {
                p.committed(source, stream, rows, quarantined);
            }
            Ok(())
        })
    }

    /// Commits what is pending as the stream's last batch; when nothing is pending but the
    /// previous commit may still wait for more (`deferred`), an empty commit makes it durable.
    fn start_final_flush(&self, pending: &mut Pending, deferred: bool) -> Option<CommitFuture<'a>> {
        self.take_batch(pending, false)
            .or_else(|| deferred.then(Batch::closing))
            .map(|b| self.start_commit(b))
    }

    fn accept_group(&mut self, mut group: Vec<Row>, pending: &mut Pending) {
        // One rule set for every destination: each cell becomes its column's type here.
        let mut notes = Vec::new();
        for row in &mut group {
            if let Err(q) = self.coerce_row(row, &mut notes) {
                tracing::debug!(location = %q.location, error = %q.error, "record quarantined");
                self.quarantined += 1;
                pending.quarantine.push(q);
                return;
            }
        }
        for q in notes {
            tracing::debug!(location = %q.location, error = %q.error, "value stored as NULL");
            self.quarantined += 1;
            pending.quarantine.push(q);
        }
        for row in &mut group {
            if row.table.model {
                row.put("source", Cell::Text(self.source.to_owned()));
            } else {
                self.rows += 1;
            }
            pending.bytes += row.approx_bytes();
        }
        pending.rows.extend(group);
    }

    /// Converts an erasure's value to its column's type, so every destination compares alike
    /// (a value with no such form is left as it is: it matches no row).
    fn coerce_erasure(&self, e: &mut Erasure) {
        let Some(ty) = self
            .columns
            .0
            .get(&e.table)
            .and_then(|(types, _)| types.get(e.column))
        else {
            return;
        };
        if !exact(&e.value, *ty)
            && let Ok(v) = talkhouse_model::coerce::coerce(e.value.clone(), *ty)
        {
            e.value = v;
        }
    }

    /// Converts every cell of `row` to its column's type ([`talkhouse_model::coerce`]). A value
    /// with no such form becomes NULL, noted in `notes`; in a key column it rejects the record.
    fn coerce_row(&self, row: &mut Row, notes: &mut Vec<Quarantined>) -> Result<(), Quarantined> {
        let Some((types, key)) = self.columns.0.get(&row.table) else {
            return Ok(());
        };
        if row
            .cells
            .iter()
            .all(|(name, cell)| types.get(name).is_none_or(|ty| exact(cell, *ty)))
        {
            return Ok(());
        }
        let table = row.table;
        let where_ = |row: &Row, column: &str| {
            let keys: Vec<String> = key
                .iter()
                .filter_map(|k| row.get(k).map(|v| format!("{k}={}", v.to_json())))
                .collect();
            format!(
                "{}.{}.{column} ({})",
                table.schema(self.source),
                table.name,
                keys.join(", ")
            )
        };
        let mut failed: Vec<(usize, talkhouse_model::coerce::CoerceError)> = Vec::new();
        for (i, (name, cell)) in row.cells.iter_mut().enumerate() {
            let Some(&ty) = types.get(name) else { continue };
            if exact(cell, ty) {
                continue;
            }
            match talkhouse_model::coerce::coerce(std::mem::replace(cell, Cell::Null), ty) {
                Ok(c) => *cell = c,
                Err(e) => failed.push((i, e)),
            }
        }
        for (i, e) in failed {
            let column = row.cells.get(i).map_or("?", |(n, _)| *n);
            let payload = row.raw.clone().unwrap_or_else(|| e.value.clone());
            if key.contains(&column) {
                return Err(Quarantined {
                    location: where_(row, column),
                    error: format!("{e} in key column `{column}`: the record cannot be stored"),
                    payload,
                });
            }
            notes.push(Quarantined {
                location: where_(row, column),
                error: format!("{e}: stored as NULL (the record in `_raw` keeps the value)"),
                payload,
            });
        }
        Ok(())
    }
}

async fn run_stream(
    source: Arc<dyn Source>,
    dest: Arc<dyn Destination>,
    stream: &'static str,
    opts: &SyncOptions,
) -> StreamReport {
    let load_id = new_load_id();
    let source_name = source.name().to_owned();
    let span = tracing::info_span!("stream", stream, load_id = %load_id);
    async {
        let started_at = Utc::now();
        let mut load = LoadRecord {
            load_id: load_id.clone(),
            source: source_name.clone(),
            stream: stream.to_owned(),
            started_at,
            finished_at: None,
            status: LoadStatus::Running,
            rows: 0,
            quarantined: 0,
            error: None,
            http: None,
        };
        if let Some(p) = &opts.progress {
            p.started(&source_name, stream);
        }
        let requests_before = source.stream_http_counters(stream);
        let outcome = drive(&*source, &*dest, stream, &load_id, opts, &mut load).await;
        load.finished_at = Some(Utc::now());
        load.http = source
            .stream_http_counters(stream)
            .map(|now| now.since(requests_before.unwrap_or_default()));
        match &outcome {
            Ok(()) => load.status = LoadStatus::Succeeded,
            Err(e) => {
                load.status = LoadStatus::Failed;
                load.error = Some(e.clone());
                tracing::error!(error = %e, "stream failed");
            }
        }
        if let Err(e) = dest.record_load(&load).await {
            tracing::warn!(error = %e, "could not record the load");
        }
        warn_quarantined(&source_name, stream, load.quarantined);
        let report = StreamReport {
            source: source_name.clone(),
            stream: stream.to_owned(),
            load_id: load_id.clone(),
            status: load.status,
            rows: load.rows,
            quarantined: load.quarantined,
            error: load.error.clone(),
        };
        tracing::info!(
            status = load.status.as_str(),
            rows = load.rows,
            quarantined = load.quarantined,
            "stream finished"
        );
        if let Some(p) = &opts.progress {
            p.finished(&report);
        }
        report
    }
    .instrument(span)
    .await
}

async fn drive(
    source: &dyn Source,
    dest: &dyn Destination,
    stream: &'static str,
    load_id: &str,
    opts: &SyncOptions,
    load: &mut LoadRecord,
) -> Result<(), String> {
    dest.record_load(load).await.map_err(|e| e.to_string())?;
    let state = if opts.full_refresh {
        None
    } else {
        dest.read_state(source.name(), stream)
            .await
            .map_err(|e| e.to_string())?
    };
    let ctx = StreamContext {
        state,
        full_refresh: opts.full_refresh,
        load_id: load_id.to_owned(),
    };
    let mut run = StreamRun {
        source: source.name(),
        stream,
        load_id: load_id.to_owned(),
        dest,
        opts,
        columns: Columns::of(source),
        rows: 0,
        quarantined: 0,
    };
    let events = source.run_stream(stream, ctx);
    let outcome = consume(&mut run, events).await;
    load.rows = run.rows;
    load.quarantined = run.quarantined;
    outcome
}

/// Batches a stream of events into commits until it ends or fails; what arrived before a
/// failure is committed with the last cursor that covers it.
async fn consume(
    run: &mut StreamRun<'_>,
    mut events: talkhouse_model::EventStream<'_>,
) -> Result<(), String> {
    let opts = run.opts;
    let mut pending = Pending::default();
    let mut failure = None;
    // After a failed commit nothing later may land: its cursor would skip the failed rows.
    let mut commit_failed = false;
    // At most one batch is being committed while the next one fills: reading and parsing
    // overlap with the destination's work.
    let mut inflight: Option<CommitFuture<'_>> = None;
    // Whether the last commit started said more follow: the stream then ends with a commit
    // that does not, even an empty one.
    let mut deferred = false;
    loop {
        let next = match inflight.as_mut() {
            Some(commit) => tokio::select! {
                done = commit => {
                    inflight = None;
                    if let Err(e) = done {
                        failure = Some(e.to_string());
                        commit_failed = true;
                        break;
                    }
                    continue;
                }
                event = events.next() => event,
            },
            None => events.next().await,
        };
        let Some(event) = next else { break };
        match event {
            Ok(Event::Records(group)) => {
                pending.touch();
                run.accept_group(group, &mut pending);
            }
            Ok(Event::Quarantine(q)) => {
                pending.touch();
                // One line per record only at debug level; the run sums them up when it ends.
                tracing::debug!(location = %q.location, error = %q.error, "record quarantined");
                run.quarantined += 1;
                pending.quarantine.push(q);
            }
            Ok(Event::Erase(mut e)) => {
                pending.touch();
                run.coerce_erasure(&mut e);
                pending.erasures.push(e);
            }
            Ok(Event::Checkpoint(state)) => {
                pending.touch();
                pending.state = Some(state);
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
        if pending.full(&opts.batch) {
            // Enrichment of this batch starts before the previous commit is awaited: the two run
            // side by side. A batch closed by size says more follow (the destination may make
            // it durable with the next ones); one closed by age is durable on its own.
            let more_follows = pending.full_by_size(&opts.batch);
            deferred = more_follows;
            let batch = run.take_batch(&mut pending, more_follows);
            if let Some(commit) = inflight.take()
                && let Err(e) = commit.await
            {
                failure = Some(e.to_string());
                commit_failed = true;
                break;
            }
            inflight = batch.map(|b| run.start_commit(b));
        }
    }
    drop(events);
    // The batch in flight first, then what is still pending (after a source failure too: it
    // carries the last cursor that covers it), unless a commit failed.
    let mut flushed = Ok(());
    if !commit_failed {
        if let Some(commit) = inflight.take() {
            flushed = commit.await;
        }
        if flushed.is_ok()
            && let Some(commit) = run.start_final_flush(&mut pending, deferred)
        {
            flushed = commit.await;
        }
    }
    match (failure, flushed) {
        (Some(f), _) => Err(f),
        (None, Err(e)) => Err(e.to_string()),
        (None, Ok(())) => Ok(()),
    }
}

/// One line for all the records a run set aside (each is in `talkhouse.quarantine`, with where it
/// came from and why).
fn warn_quarantined(source: &str, stream: &str, quarantined: u64) {
    if quarantined > 0 {
        tracing::warn!(
            quarantined,
            "{source}.{stream}: {quarantined} records quarantined; `talkhouse status` counts them and \
             talkhouse.quarantine holds each one with its location and error"
        );
    }
}

/// Commits events that do not come from [`Source::run_stream`] (pushed events that
/// `talkhouse serve` processes with [`Source::process_push`](talkhouse_model::Source)) exactly as
/// a stream run would: model rows get `source` (and the enricher), batches are capped by
/// `opts.batch`, a checkpoint's cursor is stored under `stream`, and what arrived before a failure
/// stays committed. No `talkhouse.loads` row is written (one per pushed event would flood it);
/// the caller gets the counts in the report, whose `load_id` is stamped on the rows.
pub async fn commit_events(
    source: &dyn Source,
    dest: &dyn Destination,
    stream: &str,
    events: talkhouse_model::EventStream<'_>,
    opts: &SyncOptions,
) -> StreamReport {
    let load_id = new_load_id();
    let mut run = StreamRun {
        source: source.name(),
        stream,
        load_id: load_id.clone(),
        dest,
        opts,
        columns: Columns::of(source),
        rows: 0,
        quarantined: 0,
    };
    let outcome = consume(&mut run, events).await;
    warn_quarantined(source.name(), stream, run.quarantined);
    StreamReport {
        source: source.name().to_owned(),
        stream: stream.to_owned(),
        load_id,
        status: if outcome.is_ok() {
            LoadStatus::Succeeded
        } else {
            LoadStatus::Failed
        },
        rows: run.rows,
        quarantined: run.quarantined,
        error: outcome.err(),
    }
}
