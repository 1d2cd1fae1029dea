//! The enrichment streams: `customers` (`GET /customer-profiles/{id}`, merges followed) and
//! `conversations` (`GET /conversations/{id}`) for the ids of every new export job, and the
//! full lists (`agents`, `topics`, `inboxes`, `teams`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{Event, SourceError, StreamContext};

use super::export::{JobIds, JobInfo};
use super::generator::Emitter;
use super::lines::LineReader;
use super::records::{self, FileKind};
use super::source::{
    AGENTS, CUSTOMERS, GladlySource, INBOXES, TEAMS, cell_text, parse_state, quarantine, to_json,
};

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

impl GladlySource {
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

    /// The `customers` or `conversations` stream.
    pub(super) async fn run_enrich(
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
    pub(super) fn customer<'a>(
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
    pub(super) async fn conversation(
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

    /// A full list: `agents`, `topics` (with parents), `inboxes` or `teams`.
    pub(super) async fn run_list(
        &self,
        mut em: Emitter,
        stream: &'static str,
    ) -> Result<(), SourceError> {
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
                Ok(r) => {
                    // A team is also a team of the model.
                    let model = super::model_rows::model_rows_of(&r);
                    em.emit(Event::Records(std::iter::once(r).chain(model).collect()))
                        .await?;
                }
                Err(e) => em.emit(quarantine(&path, e, raw.as_bytes())).await?,
            }
        }
        Ok(())
    }
}
