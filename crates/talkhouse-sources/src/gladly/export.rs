//! The export stream (and `load --dir`'s `files` stream): COMPLETED export jobs, oldest first,
//! each of their files read line by line into rows, with a ledger of processed jobs and the
//! position of an interrupted one as the cursor, and the retention warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use talkhouse_http::Request;
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{Event, Quarantined, Row, SourceError, StreamContext};

use super::folder::{file_stream, list_folder_jobs};
use super::generator::Emitter;
use super::lines::{ByteStream, LineReader};
use super::records::{self, FileKind, JobTag};
use super::source::{EXPORT, GladlySource, VENDOR, cell_text, parse_state, to_json};
use crate::json::{Doc, Json};

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

/// A COMPLETED export job (or a folder of files).
#[derive(Debug, Clone)]
pub(super) struct JobInfo {
    pub(super) id: String,
    /// `updatedAt` as sent (ledger value), or a folder fingerprint.
    pub(super) stamp: String,
    pub(super) updated_at: Option<DateTime<Utc>>,
    pub(super) files: Vec<FileKind>,
    /// Folder of the files, for `load --dir`.
    pub(super) dir: Option<PathBuf>,
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
pub(super) struct JobIds {
    pub(super) customers: BTreeSet<String>,
    /// conversation id → what its items say of it.
    pub(super) conversations: BTreeMap<String, ConvNote>,
    /// `customers` holds every customer of the job's file (false when a resumed export
    /// skipped the file).
    pub(super) customers_complete: bool,
}

/// What a job's items say of one conversation.
#[derive(Debug, Default, Clone)]
pub(super) struct ConvNote {
    /// Its earliest message in the job: time and channel.
    pub(super) first: Option<records::First>,
    /// The customer its items name (to tell a merge loser from a deletion when it 404s).
    pub(super) customer: Option<String>,
    /// Its row of the conversation report read in the same run (`gladly.conversation_report`),
    /// which gives its metadata without a GET.
    pub(super) report: Option<Row>,
}

impl JobIds {
    /// Notes the ids a line of `kind` names.
    pub(super) fn note(&mut self, kind: FileKind, v: &Json<'_>) {
        match kind {
            FileKind::Customers => {
                if let Some(id) = v.field("id").and_then(Doc::text) {
                    self.customers.insert(id.to_owned());
                }
            }
            FileKind::Items => {
                let Some(conv) = v.field("conversationId").and_then(Doc::text) else {
                    return;
                };
                let slot = self.conversations.entry(conv.to_owned()).or_default();
                slot.first = records::earlier(slot.first, records::first_of_item(v));
                if slot.customer.is_none() {
                    slot.customer = v.field("customerId").and_then(Doc::text).map(str::to_owned);
                }
            }
            _ => {}
        }
    }
}

impl GladlySource {
    /// The COMPLETED jobs (or the folder's), oldest first.
    pub(super) async fn list_jobs(&self) -> Result<Vec<JobInfo>, SourceError> {
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
    pub(super) async fn open(
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

    /// The `export` (or `files`) stream.
    pub(super) async fn run_export(
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
        let note_ids = self.api.is_some();
        // A resumed job skips the files before the one it stopped in, and reads that one from
        // its first line (lines that landed are parsed, not sent again): the ids of the files
        // read whole are complete. `conversation_items.jsonl` comes last, so its ids always are.
        ids.customers_complete = resume_idx.is_none_or(|r| {
            FileKind::ALL
                .iter()
                .position(|k| *k == FileKind::Customers)
                .is_some_and(|c| r <= c)
        });
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
        // Customers of a job resumed past its customers file are incomplete: the `customers`
        // stream reads that file again.
        if note_ids {
            self.cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(job.id.clone(), ids);
        }
        Ok(())
    }
}
