//! The PostgreSQL inbox, shared by several `serve` instances.
//!
//! * `talkhouse.serve_inbox`: one row per `(source, event_id)`; `INSERT … ON CONFLICT DO
//!   NOTHING` deduplicates, and the row is committed before the request is acknowledged. Puts
//!   that arrive together are inserted by one statement on a connection of their own (group
//!   commit: one WAL flush for the group).
//! * Claims: `SELECT … FOR UPDATE SKIP LOCKED` picks due rows no other instance is claiming and
//!   sets `claimed_until = now() + lease`; a crashed instance's claims return after the lease.
//! * Syncs: `pg_try_advisory_lock` on a dedicated connection per running sync; the lock lives as
//!   long as the connection, so a crashed instance releases it too.
//! * `talkhouse.serve_schedule`: when each source's scheduled sync last started.
//! * Done rows older than `dedupe_window` are deleted when an instance starts.
//! * Every event's row is updated twice (claimed, then done), so the table collects dead row
//!   versions quickly, and claims slow down as their index scans step over them. PostgreSQL's
//!   autovacuum reclaims them; where it is off (for the server or for this table), each instance
//!   runs `VACUUM` on the inbox table itself when it starts and every [`VACUUM_EVERY`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, RwLock, mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

use super::{Inbox, InboxError, InboxEvent, Stored, SyncLease};

const SCHEMA: &str = "
BEGIN;
SELECT pg_advisory_xact_lock(7310411);
CREATE SCHEMA IF NOT EXISTS talkhouse;
CREATE TABLE IF NOT EXISTS talkhouse.serve_inbox (
    source text NOT NULL,
    event_id text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL DEFAULT now(),
    claimed_until timestamptz,
    processed_at timestamptz,
    error text,
    PRIMARY KEY (source, event_id)
);
CREATE INDEX IF NOT EXISTS serve_inbox_pending ON talkhouse.serve_inbox (received_at) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS talkhouse.serve_schedule (
    source text PRIMARY KEY,
    last_run timestamptz NOT NULL
);
COMMIT;
";

/// Poll period while no event is due (events put by this instance wake its workers at once).
const POLL: Duration = Duration::from_millis(250);

/// Connections for claims, completions and reads (puts have one of their own).
const POOL: usize = 4;

/// How often an instance vacuums the inbox table where PostgreSQL's autovacuum does not.
pub const VACUUM_EVERY: Duration = Duration::from_secs(60);

fn pg(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> InboxError {
    move |e| {
        let message = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned());
        InboxError::Postgres { context, message }
    }
}

async fn connect(url: &str) -> Result<Client, InboxError> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg("connecting"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "postgres inbox connection ended");
        }
    });
    Ok(client)
}

/// The inbox in PostgreSQL.
pub struct PostgresInbox {
    url: String,
    /// A few connections used in turn, so that claims and completions of several workers
    /// commit in parallel rather than queueing behind one connection.
    clients: Vec<RwLock<Arc<Client>>>,
    next: std::sync::atomic::AtomicUsize,
    lease: Duration,
    notify: Arc<Notify>,
    closed: AtomicBool,
    puts: mpsc::Sender<Put>,
    /// The task vacuuming the inbox table, where autovacuum does not.
    vacuum: Option<tokio::task::AbortHandle>,
}

impl Drop for PostgresInbox {
    fn drop(&mut self) {
        if let Some(task) = &self.vacuum {
            task.abort();
        }
    }
}

/// One `put` waiting for the next group insert.
struct Put {
    source: String,
    event_id: String,
    payload: serde_json::Value,
    reply: oneshot::Sender<Result<Stored, InboxError>>,
}

/// Inserts waiting puts in groups, one statement (one commit, one WAL flush) per group, on a
/// connection of its own: one autocommitted INSERT per request would serialise the
/// acknowledgements behind one flush each.
async fn put_writer(url: String, mut rx: mpsc::Receiver<Put>, notify: Arc<Notify>) {
    let mut client: Option<Client> = None;
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < 1000 {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        if client.as_ref().is_none_or(Client::is_closed) {
            match connect(&url).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    let message = e.to_string();
                    for p in group {
                        let _ = p.reply.send(Err(InboxError::Postgres {
                            context: "storing an event",
                            message: message.clone(),
                        }));
                    }
                    continue;
                }
            }
        }
        let Some(c) = client.as_ref() else { continue };
        // The first of several puts of one key in a group is the one that may be new.
        let mut first_of: std::collections::HashSet<(&str, &str)> =
            std::collections::HashSet::new();
        let mut sources = Vec::new();
        let mut ids = Vec::new();
        let mut payloads = Vec::new();
        for p in &group {
            if first_of.insert((p.source.as_str(), p.event_id.as_str())) {
                sources.push(p.source.as_str());
                ids.push(p.event_id.as_str());
                payloads.push(&p.payload);
            }
        }
        let inserted = c
            .query(
                "INSERT INTO talkhouse.serve_inbox (source, event_id, payload)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
                 ON CONFLICT (source, event_id) DO NOTHING
                 RETURNING source, event_id",
                &[&sources, &ids, &payloads],
            )
            .await;
        match inserted {
            Ok(rows) => {
                let mut new: std::collections::HashSet<(String, String)> = rows
                    .iter()
                    .filter_map(|r| {
                        Some((
                            r.try_get::<_, String>(0).ok()?,
                            r.try_get::<_, String>(1).ok()?,
                        ))
                    })
                    .collect();
                notify.notify_waiters();
                for p in group {
                    let stored = if new.remove(&(p.source.clone(), p.event_id.clone())) {
                        Stored::New
                    } else {
                        Stored::Duplicate
                    };
                    let _ = p.reply.send(Ok(stored));
                }
            }
            Err(e) => {
                let message = e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_owned());
                for p in group {
                    let _ = p.reply.send(Err(InboxError::Postgres {
                        context: "storing an event",
                        message: message.clone(),
                    }));
                }
            }
        }
    }
}

/// Whether PostgreSQL's autovacuum leaves `table` alone: off for the whole server, or turned off
/// for the table (`autovacuum_enabled = false`).
///
/// # Errors
/// When the settings cannot be read.
pub async fn autovacuum_off(client: &Client, table: &str) -> Result<bool, InboxError> {
    let row = client
        .query_one(
            "SELECT NOT current_setting('autovacuum')::boolean
                 OR EXISTS (SELECT FROM unnest(c.reloptions) o
                            WHERE split_part(o, '=', 1) = 'autovacuum_enabled'
                              AND NOT split_part(o, '=', 2)::boolean)
             FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&table],
        )
        .await
        .map_err(pg("reading the autovacuum setting"))?;
    row.try_get(0).map_err(pg("reading the autovacuum setting"))
}

/// Vacuums the inbox table now (after the start's deletions) and then every [`VACUUM_EVERY`]
/// while the inbox is open, on a connection of its own (`SKIP_LOCKED`: another instance's vacuum
/// in progress is enough).
async fn vacuum_loop(url: String) {
    let mut client: Option<Client> = None;
    let mut every = tokio::time::interval(VACUUM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if client.as_ref().is_none_or(Client::is_closed) {
            client = connect(&url).await.ok();
        }
        let Some(c) = client.as_ref() else { continue };
        if let Err(e) = c
            .batch_execute("VACUUM (SKIP_LOCKED) talkhouse.serve_inbox")
            .await
        {
            tracing::warn!(error = %e, "could not vacuum the inbox table");
        }
    }
}

impl std::fmt::Debug for PostgresInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresInbox")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl PostgresInbox {
    /// Connects, creates the tables if missing and forgets done events older than
    /// `dedupe_window`.
    ///
    /// # Errors
    /// When PostgreSQL cannot be reached or refuses.
    pub async fn open(
        url: &str,
        lease: Duration,
        dedupe_window: Duration,
    ) -> Result<Self, InboxError> {
        let client = connect(url).await?;
        client
            .batch_execute(SCHEMA)
            .await
            .map_err(pg("creating the inbox tables"))?;
        let window = dedupe_window.as_secs_f64().min(1e12);
        client
            .execute(
                "DELETE FROM talkhouse.serve_inbox WHERE status = 'done' AND processed_at < now() - make_interval(secs => $1)",
                &[&window],
            )
            .await
            .map_err(pg("forgetting old events"))?;
        let self_vacuum = autovacuum_off(&client, "talkhouse.serve_inbox").await?;
        let mut clients = vec![RwLock::new(Arc::new(client))];
        for _ in 1..POOL {
            clients.push(RwLock::new(Arc::new(connect(url).await?)));
        }
        let notify = Arc::new(Notify::new());
        let (puts, rx) = mpsc::channel(8192);
        tokio::spawn(put_writer(url.to_owned(), rx, notify.clone()));
        let vacuum = self_vacuum.then(|| {
            tracing::info!(
                every = ?VACUUM_EVERY,
                "PostgreSQL's autovacuum is off for talkhouse.serve_inbox: this instance vacuums it itself"
            );
            tokio::spawn(vacuum_loop(url.to_owned())).abort_handle()
        });
        Ok(Self {
            url: url.to_owned(),
            clients,
            next: std::sync::atomic::AtomicUsize::new(0),
            lease,
            notify,
            closed: AtomicBool::new(false),
            puts,
            vacuum,
        })
    }

    /// The shared connection, reconnecting if it was closed.
    async fn client(&self) -> Result<Arc<Client>, InboxError> {
        let slot = &self.clients[self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len()];
        let current = slot.read().await.clone();
        if !current.is_closed() {
            return Ok(current);
        }
        let mut slot = slot.write().await;
        if slot.is_closed() {
            *slot = Arc::new(connect(&self.url).await?);
        }
        Ok(slot.clone())
    }

    async fn take(&self, sources: &[String], max: usize) -> Result<Vec<InboxEvent>, InboxError> {
        let client = self.client().await?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let lease = self.lease.as_secs_f64();
        let rows = client
            .query(
                "WITH due AS (
                    SELECT source, event_id FROM talkhouse.serve_inbox
                    WHERE status = 'pending' AND source = ANY($3) AND due_at <= now()
                      AND (claimed_until IS NULL OR claimed_until < now())
                    ORDER BY received_at
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED)
                 UPDATE talkhouse.serve_inbox i SET claimed_until = now() + make_interval(secs => $2)
                 FROM due WHERE i.source = due.source AND i.event_id = due.event_id
                 RETURNING i.source, i.event_id, i.payload, i.attempts, i.received_at",
                &[&limit, &lease, &sources],
            )
            .await
            .map_err(pg("claiming events"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let attempts: i32 = row.try_get(3).map_err(pg("reading a claimed event"))?;
            out.push(InboxEvent {
                source: row.try_get(0).map_err(pg("reading a claimed event"))?,
                event_id: row.try_get(1).map_err(pg("reading a claimed event"))?,
                payload: row.try_get(2).map_err(pg("reading a claimed event"))?,
                attempts: u32::try_from(attempts).unwrap_or(0),
                received_at: row.try_get(4).map_err(pg("reading a claimed event"))?,
            });
        }
        out.sort_by_key(|e| e.received_at);
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Inbox for PostgresInbox {
    async fn put(
        &self,
        source: &str,
        event_id: &str,
        payload: &serde_json::Value,
    ) -> Result<Stored, InboxError> {
        let (reply, rx) = oneshot::channel();
        let put = Put {
            source: source.to_owned(),
            event_id: event_id.to_owned(),
            payload: payload.clone(),
            reply,
        };
        self.puts.send(put).await.map_err(|_| InboxError::Closed)?;
        rx.await.map_err(|_| InboxError::Closed)?
    }

    async fn claim(
        &self,
        sources: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<InboxEvent>, InboxError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.take(sources, max.max(1)).await?;
            if !got.is_empty() || Instant::now() >= deadline || self.closed.load(Ordering::SeqCst) {
                return Ok(got);
            }
            let until = (Instant::now() + POLL).min(deadline);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn complete(&self, event: &InboxEvent) -> Result<(), InboxError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE talkhouse.serve_inbox SET status = 'done', processed_at = now(), claimed_until = NULL, error = NULL
                 WHERE source = $1 AND event_id = $2 AND status = 'pending'",
                &[&event.source, &event.event_id],
            )
            .await
            .map_err(pg("marking an event done"))?;
        Ok(())
    }

    async fn fail(
        &self,
        event: &InboxEvent,
        error: &str,
        retry_in: Duration,
        dead: bool,
    ) -> Result<(), InboxError> {
        let client = self.client().await?;
        let status = if dead { "dead" } else { "pending" };
        let secs = retry_in.as_secs_f64();
        client
            .execute(
                "UPDATE talkhouse.serve_inbox
                 SET attempts = attempts + 1, due_at = now() + make_interval(secs => $3), claimed_until = NULL,
                     error = $4, status = $5
                 WHERE source = $1 AND event_id = $2 AND status = 'pending'",
                &[&event.source, &event.event_id, &secs, &error, &status],
            )
            .await
            .map_err(pg("recording a failed attempt"))?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64, InboxError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM talkhouse.serve_inbox WHERE status = 'pending'",
                &[],
            )
            .await
            .map_err(pg("counting pending events"))?;
        let n: i64 = row.try_get(0).map_err(pg("counting pending events"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn try_lock_sync(&self, source: &str) -> Result<Option<SyncLease>, InboxError> {
        // A connection of its own: the lock is released when it closes, even after a crash.
        let client = connect(&self.url).await?;
        let key = format!("talkhouse.sync:{source}");
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .await
            .map_err(pg("taking the sync lock"))?;
        let got: bool = row.try_get(0).map_err(pg("taking the sync lock"))?;
        Ok(got.then(|| Box::new(client) as SyncLease))
    }

    async fn last_sync(&self, source: &str) -> Result<Option<DateTime<Utc>>, InboxError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT last_run FROM talkhouse.serve_schedule WHERE source = $1",
                &[&source],
            )
            .await
            .map_err(pg("reading the schedule"))?;
        row.map(|r| r.try_get(0))
            .transpose()
            .map_err(pg("reading the schedule"))
    }

    async fn record_sync(&self, source: &str, at: DateTime<Utc>) -> Result<(), InboxError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO talkhouse.serve_schedule (source, last_run) VALUES ($1, $2)
                 ON CONFLICT (source) DO UPDATE SET last_run = GREATEST(talkhouse.serve_schedule.last_run, EXCLUDED.last_run)",
                &[&source, &at],
            )
            .await
            .map_err(pg("writing the schedule"))?;
        Ok(())
    }

    async fn close(&self) -> Result<(), InboxError> {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        Ok(())
    }
}
