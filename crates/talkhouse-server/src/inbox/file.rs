//! The file inbox: an append-only log of JSON lines in `inbox_dir/inbox.log`.
//!
//! * Records: `put` (a new event, with its payload), `done`, `dead` (set aside after too many
//!   failed attempts), `seen` (an event id processed earlier, kept for deduplication) and `sync`
//!   (when a source's scheduled sync last started).
//! * One writer thread owns the file and writes in groups: every `put` that arrives while the
//!   previous group is being written goes into the next group, which is written and
//!   `fdatasync`ed once before any of its requests is acknowledged (group commit).
//! * At open, the log is replayed (a torn last line from a crash is dropped) and compacted into
//!   a fresh file (written, synced, renamed over the old one); the writer compacts again when the
//!   log holds many more lines than live records. Processed ids older than `dedupe_window` are
//!   forgotten at compaction.
//! * One process per folder: the scale-out setup is the PostgreSQL inbox.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::{Inbox, InboxError, InboxEvent, Stored, SyncLease};

const LOG: &str = "inbox.log";
const GROUP_MAX: usize = 2048;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    Put {
        seq: u64,
        source: String,
        id: String,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    },
    Done {
        seq: u64,
        at: DateTime<Utc>,
    },
    Dead {
        seq: u64,
        error: String,
    },
    Seen {
        source: String,
        id: String,
        at: DateTime<Utc>,
    },
    Sync {
        source: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
enum Known {
    Pending(u64),
    Done(DateTime<Utc>),
    Dead,
}

#[derive(Debug, Clone)]
struct Entry {
    source: String,
    event_id: String,
    payload: serde_json::Value,
    received_at: DateTime<Utc>,
    attempts: u32,
    due: Instant,
    dead_error: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    seen: HashMap<(String, String), Known>,
    /// Stored and not yet done, in arrival order (dead ones stay here, with `dead_error` set,
    /// so that compaction keeps their payload).
    entries: BTreeMap<u64, Entry>,
    claimed: HashSet<u64>,
    live: u64,
    next_seq: u64,
    lines: u64,
    schedule: HashMap<String, DateTime<Utc>>,
    closed: bool,
}

impl State {
    fn due_count(&self) -> u64 {
        self.live
    }
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
    sync_locks: Mutex<HashSet<String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

enum Op {
    Put {
        source: String,
        event_id: String,
        payload: serde_json::Value,
        reply: oneshot::Sender<Result<Stored, String>>,
    },
    Line(Record),
    Close(oneshot::Sender<()>),
}

/// The single-instance inbox in a local folder.
pub struct FileInbox {
    dir: PathBuf,
    tx: mpsc::Sender<Op>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FileInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileInbox")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InboxError + '_ {
    move |source| InboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FileInbox {
    /// Opens (creating if needed) the inbox in `dir`, replays and compacts its log, and starts
    /// the writer thread. Processed ids older than `dedupe_window` are forgotten.
    ///
    /// # Errors
    /// When the folder or log cannot be read or written.
    pub fn open(dir: &Path, dedupe_window: Duration) -> Result<Self, InboxError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(LOG);
        let mut state = replay(&path)?;
        let window = chrono::Duration::from_std(dedupe_window).unwrap_or(chrono::Duration::MAX);
        let file = compact(dir, &mut state, window)?;
        let pending = state.live;
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            notify: Notify::new(),
            sync_locks: Mutex::default(),
        });
        let (tx, rx) = mpsc::channel(8192);
        let writer = Writer {
            dir: dir.to_owned(),
            file,
            shared: shared.clone(),
            window,
        };
        std::thread::Builder::new()
            .name("talkhouse-inbox".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(dir))?;
        tracing::info!(dir = %dir.display(), pending, "inbox opened");
        Ok(Self {
            dir: dir.to_owned(),
            tx,
            shared,
        })
    }

    fn take(&self, sources: &[String], max: usize) -> (Vec<InboxEvent>, Option<Instant>) {
        let mut st = self.shared.lock();
        let now = Instant::now();
        let mut out = Vec::new();
        let mut next_due: Option<Instant> = None;
        let mut picked = Vec::new();
        for (seq, e) in &st.entries {
            if out.len() >= max {
                break;
            }
            if e.dead_error.is_some() || st.claimed.contains(seq) || !sources.contains(&e.source) {
                continue;
            }
            if e.due <= now {
                picked.push(*seq);
                out.push(InboxEvent {
                    source: e.source.clone(),
                    event_id: e.event_id.clone(),
                    payload: e.payload.clone(),
                    attempts: e.attempts,
                    received_at: e.received_at,
                });
            } else {
                next_due = Some(next_due.map_or(e.due, |d| d.min(e.due)));
            }
        }
        st.claimed.extend(picked);
        (out, next_due)
    }

    fn seq_of(st: &State, event: &InboxEvent) -> Option<u64> {
        match st.seen.get(&(event.source.clone(), event.event_id.clone())) {
            Some(Known::Pending(seq)) => Some(*seq),
            _ => None,
        }
    }

    async fn send_line(&self, record: Record) -> Result<(), InboxError> {
        self.tx
            .send(Op::Line(record))
            .await
            .map_err(|_| InboxError::Closed)
    }
}

#[async_trait::async_trait]
impl Inbox for FileInbox {
    async fn put(
        &self,
        source: &str,
        event_id: &str,
        payload: &serde_json::Value,
    ) -> Result<Stored, InboxError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::Put {
            source: source.to_owned(),
            event_id: event_id.to_owned(),
            payload: payload.clone(),
            reply,
        };
        self.tx.send(op).await.map_err(|_| InboxError::Closed)?;
        match rx.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(message)) => Err(InboxError::Io {
                path: self.dir.join(LOG).display().to_string(),
                source: std::io::Error::other(message),
            }),
            Err(_) => Err(InboxError::Closed),
        }
    }

    async fn claim(
        &self,
        sources: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<InboxEvent>, InboxError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (got, next_due) = self.take(sources, max.max(1));
            if !got.is_empty() {
                return Ok(got);
            }
            if Instant::now() >= deadline || self.shared.lock().closed {
                return Ok(Vec::new());
            }
            let until = next_due.map_or(deadline, |d| d.min(deadline));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn complete(&self, event: &InboxEvent) -> Result<(), InboxError> {
        let now = Utc::now();
        let seq = {
            let mut st = self.shared.lock();
            let Some(seq) = Self::seq_of(&st, event) else {
                return Ok(());
            };
            st.claimed.remove(&seq);
            if st.entries.remove(&seq).is_some() {
                st.live = st.live.saturating_sub(1);
            }
            st.seen.insert(
                (event.source.clone(), event.event_id.clone()),
                Known::Done(now),
            );
            seq
        };
        // Not synced on its own: if it is lost in a crash, the event is processed again, which is
        // harmless (processing is idempotent).
        self.send_line(Record::Done { seq, at: now }).await
    }

    async fn fail(
        &self,
        event: &InboxEvent,
        error: &str,
        retry_in: Duration,
        dead: bool,
    ) -> Result<(), InboxError> {
        let seq = {
            let mut st = self.shared.lock();
            let Some(seq) = Self::seq_of(&st, event) else {
                return Ok(());
            };
            st.claimed.remove(&seq);
            let mut now_dead = false;
            if let Some(e) = st.entries.get_mut(&seq) {
                e.attempts = e.attempts.saturating_add(1);
                e.due = Instant::now() + retry_in;
                if dead {
                    e.dead_error = Some(error.to_owned());
                    now_dead = true;
                }
            }
            if now_dead {
                st.live = st.live.saturating_sub(1);
                st.seen
                    .insert((event.source.clone(), event.event_id.clone()), Known::Dead);
            }
            seq
        };
        self.shared.notify.notify_waiters();
        if dead {
            self.send_line(Record::Dead {
                seq,
                error: error.to_owned(),
            })
            .await?;
        }
        Ok(())
    }

    async fn depth(&self) -> Result<u64, InboxError> {
        Ok(self.shared.lock().due_count())
    }

    async fn try_lock_sync(&self, source: &str) -> Result<Option<SyncLease>, InboxError> {
        let mut locks = self
            .shared
            .sync_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !locks.insert(source.to_owned()) {
            return Ok(None);
        }
        Ok(Some(Box::new(LocalLease {
            shared: self.shared.clone(),
            source: source.to_owned(),
        })))
    }

    async fn last_sync(&self, source: &str) -> Result<Option<DateTime<Utc>>, InboxError> {
        Ok(self.shared.lock().schedule.get(source).copied())
    }

    async fn record_sync(&self, source: &str, at: DateTime<Utc>) -> Result<(), InboxError> {
        self.shared.lock().schedule.insert(source.to_owned(), at);
        self.send_line(Record::Sync {
            source: source.to_owned(),
            at,
        })
        .await
    }

    async fn close(&self) -> Result<(), InboxError> {
        self.shared.lock().closed = true;
        self.shared.notify.notify_waiters();
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Op::Close(reply)).await.is_ok() {
            let _ = rx.await;
        }
        Ok(())
    }
}

struct LocalLease {
    shared: Arc<Shared>,
    source: String,
}

impl Drop for LocalLease {
    fn drop(&mut self) {
        self.shared
            .sync_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.source);
    }
}

/// Reads the log into a state. Unreadable lines (a torn write at the end) are skipped.
fn replay(path: &Path) -> Result<State, InboxError> {
    let mut st = State {
        next_seq: 1,
        ..State::default()
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
        Err(e) => return Err(io_err(path)(e)),
    };
    let now = Instant::now();
    let reader = BufReader::new(file);
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(io_err(path))?;
        if line.is_empty() {
            continue;
        }
        let record: Record = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(line = n + 1, error = %e, "skipping an unreadable inbox line (torn write?)");
                continue;
            }
        };
        match record {
            Record::Put {
                seq,
                source,
                id,
                payload,
                at,
            } => {
                st.next_seq = st.next_seq.max(seq + 1);
                st.seen
                    .insert((source.clone(), id.clone()), Known::Pending(seq));
                let entry = Entry {
                    source,
                    event_id: id,
                    payload,
                    received_at: at,
                    attempts: 0,
                    due: now,
                    dead_error: None,
                };
                st.entries.insert(seq, entry);
            }
            Record::Done { seq, at } => {
                if let Some(e) = st.entries.remove(&seq) {
                    st.seen.insert((e.source, e.event_id), Known::Done(at));
                }
            }
            Record::Dead { seq, error } => {
                if let Some(e) = st.entries.get_mut(&seq) {
                    e.dead_error = Some(error);
                    st.seen
                        .insert((e.source.clone(), e.event_id.clone()), Known::Dead);
                }
            }
            Record::Seen { source, id, at } => {
                st.seen.insert((source, id), Known::Done(at));
            }
            Record::Sync { source, at } => {
                st.schedule.insert(source, at);
            }
        }
    }
    st.live = st
        .entries
        .values()
        .filter(|e| e.dead_error.is_none())
        .count() as u64;
    Ok(st)
}

fn line(record: &Record, buf: &mut Vec<u8>) {
    // Serialising our own plain records cannot fail; an empty line would be skipped at replay.
    let _ = serde_json::to_writer(&mut *buf, record);
    buf.push(b'\n');
}

/// Rewrites the log with only what is still needed and returns it opened for appending.
fn compact(dir: &Path, st: &mut State, window: chrono::Duration) -> Result<File, InboxError> {
    let path = dir.join(LOG);
    let tmp = dir.join(format!("{LOG}.tmp"));
    let cutoff = Utc::now() - window;
    st.seen
        .retain(|_, k| !matches!(k, Known::Done(at) if *at < cutoff));
    let mut buf = Vec::new();
    let mut lines = 0u64;
    for ((source, id), known) in &st.seen {
        if let Known::Done(at) = known {
            line(
                &Record::Seen {
                    source: source.clone(),
                    id: id.clone(),
                    at: *at,
                },
                &mut buf,
            );
            lines += 1;
        }
    }
    for (source, at) in &st.schedule {
        line(
            &Record::Sync {
                source: source.clone(),
                at: *at,
            },
            &mut buf,
        );
        lines += 1;
    }
    for (seq, e) in &st.entries {
        let put = Record::Put {
            seq: *seq,
            source: e.source.clone(),
            id: e.event_id.clone(),
            payload: e.payload.clone(),
            at: e.received_at,
        };
        line(&put, &mut buf);
        lines += 1;
        if let Some(error) = &e.dead_error {
            line(
                &Record::Dead {
                    seq: *seq,
                    error: error.clone(),
                },
                &mut buf,
            );
            lines += 1;
        }
    }
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&buf).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    st.lines = lines;
    OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(io_err(&path))
}

struct Writer {
    dir: PathBuf,
    file: File,
    shared: Arc<Shared>,
    window: chrono::Duration,
}

type Reply = (oneshot::Sender<Result<Stored, String>>, Stored);

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        while let Some(first) = rx.blocking_recv() {
            let mut ops = vec![first];
            while ops.len() < GROUP_MAX {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            let close = self.write_group(ops);
            if let Some(done) = close {
                let _ = done.send(());
                return;
            }
        }
    }

    /// Writes one group; returns the close request if the group held one.
    fn write_group(&mut self, ops: Vec<Op>) -> Option<oneshot::Sender<()>> {
        let mut buf = Vec::new();
        let mut replies: Vec<Reply> = Vec::new();
        let mut fresh: Vec<(u64, Entry)> = Vec::new();
        let mut close = None;
        let mut lines = 0u64;
        {
            let mut st = self.shared.lock();
            let now = Instant::now();
            for op in ops {
                match op {
                    Op::Put {
                        source,
                        event_id,
                        payload,
                        reply,
                    } => {
                        let key = (source, event_id);
                        if st.seen.contains_key(&key) {
                            replies.push((reply, Stored::Duplicate));
                            continue;
                        }
                        let seq = st.next_seq;
                        st.next_seq += 1;
                        st.seen.insert(key.clone(), Known::Pending(seq));
                        let at = Utc::now();
                        let (source, id) = key;
                        line(
                            &Record::Put {
                                seq,
                                source: source.clone(),
                                id: id.clone(),
                                payload: payload.clone(),
                                at,
                            },
                            &mut buf,
                        );
                        lines += 1;
                        let entry = Entry {
                            source,
                            event_id: id,
                            payload,
                            received_at: at,
                            attempts: 0,
                            due: now,
                            dead_error: None,
                        };
                        fresh.push((seq, entry));
                        replies.push((reply, Stored::New));
                    }
                    Op::Line(record) => {
                        line(&record, &mut buf);
                        lines += 1;
                    }
                    Op::Close(done) => close = Some(done),
                }
            }
        }
        let written = if buf.is_empty() {
            Ok(())
        } else {
            self.file.write_all(&buf).and_then(|()| {
                if fresh.is_empty() {
                    Ok(())
                } else {
                    self.file.sync_data()
                }
            })
        };
        {
            let mut st = self.shared.lock();
            match &written {
                Ok(()) => {
                    st.lines += lines;
                    st.live += fresh.len() as u64;
                    st.entries.extend(fresh);
                }
                Err(_) => {
                    for (_, e) in &fresh {
                        st.seen.remove(&(e.source.clone(), e.event_id.clone()));
                    }
                }
            }
        }
        self.shared.notify.notify_waiters();
        for (reply, stored) in replies {
            let answer = match &written {
                Ok(()) => Ok(stored),
                Err(e) => Err(e.to_string()),
            };
            let _ = reply.send(answer);
        }
        if let Err(e) = &written {
            tracing::error!(error = %e, "inbox write failed; rewriting the log");
            // A partial write would glue its torn line to the next record: start a clean file.
            self.compact_now();
        } else {
            self.maybe_compact();
        }
        close
    }

    fn maybe_compact(&mut self) {
        let st = self.shared.lock();
        let needed = st.seen.len() as u64 + st.entries.len() as u64 + st.schedule.len() as u64;
        if st.lines < 2 * needed + 10_000 {
            return;
        }
        drop(st);
        self.compact_now();
    }

    fn compact_now(&mut self) {
        let mut st = self.shared.lock();
        match compact(&self.dir, &mut st, self.window) {
            Ok(file) => self.file = file,
            Err(e) => {
                tracing::error!(error = %e, "inbox compaction failed; appending to the old log")
            }
        }
    }
}
