//! The enrichment streams: `customers` (`GET /customer-profiles/{id}`, merges followed) and
//! `conversations` (the conversation report's row when the same sync read one, else
//! `GET /conversations/{id}`) for the ids of every new export job, each id once a sync and
//! each path once a sync (through the run's memo, `memo.rs`), and the full lists (`agents`,
//! `topics`, `inboxes`, `teams`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{Cell, Event, Row, SourceError, StreamContext};

use super::export::{JobIds, JobInfo};
use super::generator::Emitter;
use super::lines::LineReader;
use super::memo::RunMemo;
use super::records::{self, FileKind, First, Merged};
use super::source::{
    AGENTS, CONVERSATIONS, CUSTOMERS, GladlySource, INBOXES, PROFILES, TEAMS, cell_text,
    parse_state, quarantine, to_json,
};
use crate::json::Json;

/// What is known of a conversation before it is fetched.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ConvHint<'a> {
    /// Its earliest message known to us (in the export job being enriched).
    pub(super) first: Option<First>,
    /// The customer its items named.
    pub(super) customer: Option<&'a str>,
    /// The conversation a merge event says it went into.
    pub(super) merged_into: Option<&'a str>,
}

/// What became of a conversation that was fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// It answered.
    Live,
    /// It answered 404 after a merge: the merge is recorded and the survivor read again.
    Merged,
    /// It answered 404 (deleted) or something unreadable.
    Gone,
}

/// One id an enrichment stream works on, with what the export and the report said of it.
#[derive(Debug, Clone, Default)]
struct Work {
    id: String,
    /// Its earliest message in the job (conversations).
    first: Option<First>,
    /// The customer its items named (conversations).
    customer: Option<String>,
    /// Its conversation report row, read in the same run (conversations).
    report: Option<Row>,
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
                let whole = match kind {
                    FileKind::Customers => {
                        out.customers = std::mem::take(&mut entry.customers);
                        std::mem::replace(&mut entry.customers_complete, false)
                    }
                    _ => {
                        out.conversations = std::mem::take(&mut entry.conversations);
                        true
                    }
                };
                if entry.customers.is_empty() && entry.conversations.is_empty() {
                    cache.remove(&job.id);
                }
                if whole {
                    return Ok(out);
                }
            }
        }
        let mut ids = JobIds::default();
        if !job.files.contains(&kind) {
            return Ok(ids);
        }
        if let Some(bytes) = self.open(job, kind, stream).await? {
            let mut reader = LineReader::new(bytes);
            while let Some(line) = reader.next_line().await? {
                if let Ok(v) = serde_json::from_slice::<Json<'_>>(&line) {
                    ids.note(kind, &v);
                }
            }
        }
        Ok(ids)
    }

    /// The `customers` or `conversations` stream, with the run's memo: `customers` starts a
    /// new one, `conversations` (after it) goes on with it, or starts one when `customers` did
    /// not run, and ends it; so does a failed `customers` (`conversations` does not run then).
    pub(super) async fn run_enrich(
        &self,
        em: Emitter,
        ctx: StreamContext,
        stream: &'static str,
    ) -> Result<(), SourceError> {
        {
            let mut run = self
                .run
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if stream == CUSTOMERS || run.is_none() {
                *run = Some(Arc::new(RunMemo::default()));
            }
        }
        let result = self.enrich_jobs(em, ctx, stream).await;
        if stream == CONVERSATIONS || result.is_err() {
            *self
                .run
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        result
    }

    /// The ids of every new job, each enriched once a run.
    async fn enrich_jobs(
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
        // Ids enriched by an earlier job of this run: their answer would be the same, so each
        // is fetched (or taken from the report) once a run, at its first job.
        let mut enriched: HashSet<String> = HashSet::new();
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
            let work: Vec<Work> = if stream == CUSTOMERS {
                ids.customers
                    .into_iter()
                    .map(|id| Work {
                        id,
                        ..Work::default()
                    })
                    .collect()
            } else {
                ids.conversations
                    .into_iter()
                    .map(|(id, note)| Work {
                        id,
                        first: note.first,
                        customer: note.customer,
                        report: note.report,
                    })
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
                    .filter(|w| enriched.insert(w.id.clone()))
                    .cloned()
                    .map(|w| self.enrich_one(stream, w, seen_at))
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

    /// One id of an enrichment stream: a customer by GET; a conversation from its report row
    /// when the report has it (and it was not merged away), else by GET.
    fn enrich_one(
        &self,
        stream: &'static str,
        work: Work,
        seen_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'_, Result<Vec<Event>, SourceError>> {
        Box::pin(async move {
            if stream == CUSTOMERS {
                return self.customer(&work.id, seen_at, 0, stream).await;
            }
            if let Some(report) = work
                .report
                .as_ref()
                .filter(|r| r.get("status").and_then(Cell::as_str) != Some(records::REPORT_MERGED))
            {
                let channel = self.channel(&work.id, work.first, stream);
                return Ok(
                    match records::conversation_report_rows(report, channel, seen_at) {
                        Ok(rows) => vec![Event::Records(rows)],
                        Err(error) => vec![quarantine(
                            &format!("conversation_report {}", work.id),
                            error,
                            report.raw.as_deref().unwrap_or("").as_bytes(),
                        )],
                    },
                );
            }
            let hint = ConvHint {
                first: work.first,
                customer: work.customer.as_deref(),
                merged_into: None,
            };
            self.conversation(&work.id, hint, seen_at, stream, false)
                .await
        })
    }

    /// GET a customer: 200 upserts (once a run: a later read of the run adds nothing), 301
    /// records the merge and follows it (re-reading the survivor's conversations and items),
    /// 404 erases.
    pub(super) fn customer<'a>(
        &'a self,
        id: &'a str,
        seen_at: Option<DateTime<Utc>>,
        depth: u8,
        stream: &'static str,
    ) -> BoxFuture<'a, Result<Vec<Event>, SourceError>> {
        Box::pin(async move {
            let path = format!("{PROFILES}{id}");
            let ((code, headers, body), again) = self.read_again(&path, stream).await?;
            if again && code == 200 {
                // The run's first read of it made its row.
                return Ok(Vec::new());
            }
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
                    out.push(Event::Records(records::merge_rows(
                        Merged::Customer,
                        id,
                        &new,
                        seen_at,
                    )));
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
        let (code, _, body) = self.read(&path, stream).await?;
        if code != 200 {
            return Ok(Vec::new());
        }
        let list: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        let mut out = Vec::new();
        for conv in list {
            let Some(cid) = cell_text(&conv, "id") else {
                continue;
            };
            let (items, first) = self.conversation_items(&cid, stream).await?;
            let channel = self.channel(&cid, first, stream);
            match records::conversation_rows(&conv, channel, seen_at) {
                Ok(rows) => out.push(Event::Records(rows)),
                Err(e) => out.push(quarantine(&path, e, conv.to_string().as_bytes())),
            }
            out.extend(items);
        }
        Ok(out)
    }

    /// The item list of a conversation (≤1000, the oldest; the export has the rest) → events,
    /// and its earliest message.
    async fn conversation_items(
        &self,
        id: &str,
        stream: &'static str,
    ) -> Result<(Vec<Event>, Option<First>), SourceError> {
        let path = format!("/conversations/{id}/items");
        let (code, headers, body) = self.read(&path, stream).await?;
        if code != 200 {
            return Ok((Vec::new(), None));
        }
        if headers.limited {
            tracing::info!(conversation = %id, "item list capped at 1000 (Gladly-Limited-Data): the export carries the rest");
        }
        let list: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        let mut out = Vec::new();
        let mut first: Option<First> = None;
        for v in list {
            first = records::earlier(first, records::first_of_item(&v));
            let raw = v.to_string();
            match records::item_rows(&v, &raw, None) {
                Ok(rows) => out.push(Event::Records(rows)),
                Err(e) => out.push(quarantine(&path, e, raw.as_bytes())),
            }
        }
        Ok((out, first))
    }

    /// The model channel of `conversation`: that of its earliest message among what this read
    /// saw (`seen`) and, in an enrichment run, every read of it before in the run; so the
    /// survivor of an OPEN→OPEN merge gets the channel of the oldest item it holds now (one
    /// that moved in, which its item list shows and its export job may not), whichever of its
    /// reads lands last.
    fn channel(
        &self,
        conversation: &str,
        seen: Option<First>,
        stream: &'static str,
    ) -> Option<&'static str> {
        match self.run_memo(stream) {
            Some(memo) => memo.earliest(conversation, seen),
            None => seen,
        }
        .map(|(_, channel)| channel)
    }

    /// GET a conversation: 200 upserts it (with its assignment and model row, and its items
    /// when `with_items`). A 404 is a merge when a merge event named where it went, or when
    /// the customer its items named was merged away and the surviving customer has an open
    /// conversation (Gladly deletes the loser of an OPEN→OPEN merge and moves its items there
    /// under new ids; a customer has at most one open conversation): the merge is recorded,
    /// the loser's rows are marked deleted and the survivor is read again with its items. Any
    /// other 404 is a deletion, erased per `on_vendor_delete`.
    pub(super) fn conversation<'a>(
        &'a self,
        id: &'a str,
        hint: ConvHint<'a>,
        seen_at: Option<DateTime<Utc>>,
        stream: &'static str,
        with_items: bool,
    ) -> BoxFuture<'a, Result<Vec<Event>, SourceError>> {
        Box::pin(async move {
            Ok(self
                .conversation_fate(id, hint, seen_at, stream, with_items)
                .await?
                .0)
        })
    }

    /// [`Self::conversation`], and what became of the conversation.
    pub(super) async fn conversation_fate(
        &self,
        id: &str,
        hint: ConvHint<'_>,
        seen_at: Option<DateTime<Utc>>,
        stream: &'static str,
        with_items: bool,
    ) -> Result<(Vec<Event>, Fate), SourceError> {
        let path = format!("/conversations/{id}");
        let (code, _, body) = self.read(&path, stream).await?;
        let mut out = Vec::new();
        let fate = match code {
            200 => {
                let mut first = hint.first;
                if with_items {
                    let (items, listed) = self.conversation_items(id, stream).await?;
                    first = records::earlier(first, listed);
                    out.extend(items);
                }
                let channel = self.channel(id, first, stream);
                match serde_json::from_slice::<Value>(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|v| records::conversation_rows(&v, channel, seen_at))
                {
                    Ok(rows) => out.insert(0, Event::Records(rows)),
                    Err(error) => out.push(quarantine(&path, error, &body)),
                }
                Fate::Live
            }
            404 => {
                let survivor = match hint.merged_into.filter(|d| *d != id) {
                    Some(d) => Some(d.to_owned()),
                    None => match hint.customer {
                        Some(c) => self.merge_survivor(c, id, stream).await?,
                        None => None,
                    },
                };
                if let Some(new) = survivor {
                    tracing::info!(conversation = %id, into = %new, "conversation merged away (404): its items live on in the survivor");
                    out.extend(records::conversation_merged(id, &new, seen_at));
                    out.extend(
                        self.conversation(&new, ConvHint::default(), seen_at, stream, true)
                            .await?,
                    );
                    Fate::Merged
                } else {
                    tracing::info!(conversation = %id, "conversation is gone (404)");
                    out.extend(records::erase_conversation(id, self.mode()));
                    Fate::Gone
                }
            }
            _ => {
                out.push(quarantine(&path, format!("HTTP {code}"), &body));
                Fate::Gone
            }
        };
        Ok((out, fate))
    }

    /// Where a conversation that answers 404 went, if it lost an OPEN→OPEN merge: its
    /// customer answers 301 (followed up to three times), and the customer it became has an
    /// open conversation other than it.
    async fn merge_survivor(
        &self,
        customer: &str,
        loser: &str,
        stream: &'static str,
    ) -> Result<Option<String>, SourceError> {
        let mut current = customer.to_owned();
        let mut moved = false;
        for _ in 0..3 {
            let (code, headers, body) = self.read(&format!("{PROFILES}{current}"), stream).await?;
            if code != 301 {
                break;
            }
            match records::moved_to(&body, headers.location.as_deref()) {
                Some(new) if new != current => {
                    current = new;
                    moved = true;
                }
                _ => break,
            }
        }
        if !moved {
            return Ok(None);
        }
        let (code, _, body) = self
            .read(&format!("/customers/{current}/conversations"), stream)
            .await?;
        if code != 200 {
            return Ok(None);
        }
        let list: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        Ok(list
            .iter()
            .rev()
            .filter(|c| c.get("status").and_then(Value::as_str) != Some("CLOSED"))
            .filter_map(|c| cell_text(c, "id"))
            .find(|c| c != loser))
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

#[cfg(test)]
mod tests {
    use std::sync::PoisonError;

    use chrono::TimeZone;
    use talkhouse_emulator::gladly::data::{World, kind};
    use talkhouse_emulator::gladly::{API_TOKEN, API_USER, truth};
    use talkhouse_emulator::{Clock, EmulatorOptions, Vendor, start};
    use talkhouse_model::model;

    use super::super::config::GladlyConfig;
    use super::*;

    /// The channel of the last `talkhouse.model_conversations` row of `id` in `events`: what
    /// the warehouse keeps.
    fn last_channel(events: &[Event], id: &str) -> Option<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Records(rows) => Some(rows),
                _ => None,
            })
            .flatten()
            .filter(|r| {
                r.table == model::CONVERSATIONS
                    && r.get("conversation_id").and_then(Cell::as_str) == Some(id)
            })
            .map(|r| r.get("channel").and_then(Cell::as_str).map(str::to_owned))
            .next_back()
            .flatten()
    }

    /// The survivor of an OPEN→OPEN merge is read twice in a sync: from the export job that
    /// names it (which knows only its own messages) and, after the loser's 404, again with its
    /// item list (which holds the loser's older messages too). Its channel is that of its
    /// oldest message as it stands, whichever read lands last.
    #[tokio::test]
    async fn a_merge_survivor_has_the_channel_of_its_oldest_item_whichever_read_lands_last() {
        let mut opts = EmulatorOptions::new(11, 0.1);
        opts.clock = Clock::at(
            Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0)
                .single()
                .expect("a time"),
        );
        let world = World::new(&opts);
        let survivor = truth(&world, opts.clock.now()).extra["surviving_conversation"]
            .as_str()
            .expect("a surviving conversation")
            .to_owned();
        let emu = start(Vendor::Gladly, &opts, 0)
            .await
            .expect("emulator starts");
        let cfg: GladlyConfig = toml::from_str(&format!(
            "base_url = \"{}\"\nemail = \"{API_USER}\"\ntoken = \"{API_TOKEN}\"\nrequests_per_second = 500\n",
            emu.base_url
        ))
        .expect("a configuration");
        let src = GladlySource::api("gladly", cfg).expect("a source");

        // What its export job says (its own messages) and what its item list says now.
        let (_, _, body) = src
            .get(&format!("/conversations/{survivor}/items"), "test")
            .await
            .expect("the item list");
        let items: Vec<Value> = serde_json::from_slice(&body).expect("a list");
        let oldest = |moved_in: bool| {
            items
                .iter()
                .filter(|v| {
                    moved_in
                        || cell_text(v, "id")
                            .and_then(|id| world.parse_id(&id))
                            .is_some_and(|(k, _, _)| k != kind::MOVED_ITEM)
                })
                .filter_map(records::first_of_item)
                .min()
        };
        let (job, now) = (oldest(false), oldest(true));
        let want = now.map(|(_, channel)| channel);
        assert!(
            want.is_some() && job.map(|(_, c)| c) != want,
            "{job:?} {now:?}"
        );

        for job_read_last in [true, false] {
            *src.run.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::default());
            let from_job = Work {
                id: survivor.clone(),
                first: job,
                ..Work::default()
            };
            let mut events = Vec::new();
            for job_read in [!job_read_last, job_read_last] {
                events.extend(if job_read {
                    src.enrich_one(CONVERSATIONS, from_job.clone(), None)
                        .await
                        .expect("the job's read")
                } else {
                    src.conversation(&survivor, ConvHint::default(), None, CONVERSATIONS, true)
                        .await
                        .expect("the merge's read")
                });
            }
            assert_eq!(
                last_channel(&events, &survivor).as_deref(),
                want,
                "job read last: {job_read_last}"
            );
        }
    }
}
