//! The Giosg [`Source`]: the `chats` stream, chat-end triggers, webhooks, the scheduled ending
//! of idle chats, and the vendor client.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, SinkExt, StreamExt};
use http::StatusCode;
use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use talkhouse_http::{Client, Request};
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{
    Event, EventStream, PushRequest, PushVerdict, Quarantined, Row, Source, SourceError,
    StreamContext, StreamDef, TableRef, TableSpec,
};

use super::config::GiosgConfig;
use super::crypto::ChatKeys;
use super::records::{self, ChatKeyState, MessageOutcome, str_field};
use super::tables;
use super::webhook::{self, WEBHOOK_KEY};

const VENDOR: &str = "giosg";

/// What a rejected token usually means: Giosg API tokens belong to the user who created them.
const AUTH_HINT: &str = "a Giosg API token dies with the user who created it: if this token worked before, \
that user was probably deleted or deactivated; create a new token while signed in as an active user \
(a dedicated API user outlives staff changes), or give the user access to the rooms if it lost it";
/// The one stream.
pub const CHATS_STREAM: &str = "chats";
/// The warning kept in the state while encrypted data arrives without a key to read it.
const NO_KEY_WARNING: &str = "encrypted Giosg messages or visitor variables were stored without text: \
no private key is configured (set private_key_path or private_key_pem)";

/// A configured Giosg account.
pub struct GiosgSource {
    pub(crate) name: String,
    pub(crate) cfg: GiosgConfig,
    pub(crate) client: Client,
    pub(crate) api: String,
    pub(crate) key: Option<Arc<RsaPrivateKey>>,
    pub(crate) overlap: Duration,
    /// `end_stale_after`, parsed: `serve` ends chats idle longer than this.
    pub(crate) end_stale_after: Option<Duration>,
}

impl std::fmt::Debug for GiosgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GiosgSource")
            .field("name", &self.name)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// The cursor of one listing scope (the organisation, or one room).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct ScopeState {
    /// Highest `updated_at` seen and committed.
    #[serde(default)]
    pub watermark: Option<String>,
    /// Chats inside the overlap window below the watermark, with the `updated_at` already
    /// stored: they are listed again but not fetched again unless it moved.
    #[serde(default)]
    pub recent: BTreeMap<String, String>,
}

/// The stream's state, committed with the rows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct ChatsState {
    /// One cursor per scope (`org` or a room id).
    #[serde(default)]
    pub scopes: BTreeMap<String, ScopeState>,
    /// Problems `talkhouse status` shows.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A page of a list endpoint.
pub(crate) struct Page {
    pub results: Vec<Value>,
    pub next: Option<String>,
    pub date: Option<DateTime<Utc>>,
}

/// What one chat's fetch produced.
struct ChatOutcome {
    events: Vec<Event>,
    undecrypted: u64,
}

/// One item of the ordered per-chat pipeline.
enum Step {
    Chat(ChatOutcome),
    Checkpoint(Value),
    Nothing,
}

fn ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl GiosgSource {
    fn org_path(&self) -> String {
        format!("{}/api/v5/orgs/{}", self.api, self.cfg.organization_id)
    }

    /// `(scope, list URL)` per configured scope.
    pub(crate) fn scopes(&self) -> Vec<(String, String)> {
        if self.cfg.rooms.is_empty() {
            vec![("org".to_owned(), format!("{}/owned_chats", self.org_path()))]
        } else {
            self.cfg
                .rooms
                .iter()
                .map(|r| (r.clone(), format!("{}/rooms/{r}/chats", self.org_path())))
                .collect()
        }
    }

    /// The error for a non-2xx answer; 401 and 403 carry [`AUTH_HINT`].
    pub(crate) fn error_for(&self, url: &str, status: StatusCode, body: &[u8]) -> SourceError {
        let detail: String = String::from_utf8_lossy(body).chars().take(300).collect();
        let url = url.split_once('?').map_or(url, |(b, _)| b).to_owned();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            SourceError::Auth {
                vendor: VENDOR,
                status: status.as_u16(),
                detail: format!("{url}: {detail} (hint: {AUTH_HINT})"),
            }
        } else {
            SourceError::Http {
                vendor: VENDOR,
                url,
                status: Some(status.as_u16()),
                message: detail,
            }
        }
    }

    /// Fetches one page of any list endpoint. `Ok(None)` on 404 (chat gone, or an expired
    /// cursor: the caller decides).
    pub(crate) async fn page(
        &self,
        url: &str,
    ) -> Result<Result<Page, (StatusCode, Vec<u8>)>, SourceError> {
        let (status, headers, body) = self.client.fetch(Request::get(url, CHATS_STREAM)).await?;
        if !status.is_success() {
            return Ok(Err((status, body.to_vec())));
        }
        let date = headers
            .get(http::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc));
        let v: Value = serde_json::from_slice(&body).map_err(|e| SourceError::Protocol {
            location: url.split_once('?').map_or(url, |(b, _)| b).to_owned(),
            message: format!("invalid JSON: {e}"),
        })?;
        // The documented envelope, or a bare list (as the vendor's own fixtures have it).
        let (results, next) = match v {
            Value::Array(items) => (items, None),
            Value::Object(mut o) => {
                let results = match o.remove("results") {
                    Some(Value::Array(items)) => items,
                    _ => {
                        return Err(SourceError::Protocol {
                            location: url.split_once('?').map_or(url, |(b, _)| b).to_owned(),
                            message: "no `results` list in the answer".into(),
                        });
                    }
                };
                (
                    results,
                    o.get("next")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                )
            }
            _ => {
                return Err(SourceError::Protocol {
                    location: url.to_owned(),
                    message: "answer is not a list".into(),
                });
            }
        };
        Ok(Ok(Page {
            results,
            next: next.map(|n| self.absolute(&n)),
            date,
        }))
    }

    /// `next` is absolute per the docs; accept a relative one too.
    fn absolute(&self, next: &str) -> String {
        if next.starts_with("http://") || next.starts_with("https://") {
            next.to_owned()
        } else {
            format!("{}/{}", self.api, next.trim_start_matches('/'))
        }
    }

    /// Every item of a child list, following `next` until it is null. A cursor that expires
    /// mid-list restarts the list (items dedupe on `id`); 404 on the first page is an empty list.
    async fn list_all(&self, first: &str) -> Result<Vec<Value>, SourceError> {
        let mut out: Vec<Value> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut url = first.to_owned();
        let mut restarts = 0;
        let mut pages = 0u32;
        loop {
            match self.page(&url).await? {
                Ok(p) => {
                    pages += 1;
                    for item in p.results {
                        let key = item
                            .get("id")
                            .or_else(|| item.get("member_id"))
                            .or_else(|| item.get("key"))
                            .or_else(|| item.get("name"))
                            .map(Value::to_string);
                        match key {
                            Some(k) if !seen.insert(k.clone()) => {}
                            _ => out.push(item),
                        }
                    }
                    match p.next {
                        Some(n) if n != url && pages < 100_000 => url = n,
                        _ => return Ok(out),
                    }
                }
                Err((StatusCode::NOT_FOUND, _)) if url == first => return Ok(Vec::new()),
                Err((StatusCode::NOT_FOUND, _)) if restarts < 3 => {
                    tracing::info!(url = %first.split_once('?').map_or(first, |(b, _)| b), "cursor expired, listing again");
                    restarts += 1;
                    url = first.to_owned();
                }
                Err((status, body)) => return Err(self.error_for(&url, status, &body)),
            }
        }
    }

    /// Fetches a chat's messages, memberships, tags and visitor variables and maps it all.
    async fn fetch_chat(&self, chat: Value) -> Result<ChatOutcome, SourceError> {
        let Some(id) = str_field(&chat, "id").map(str::to_owned) else {
            return Ok(ChatOutcome {
                events: vec![Event::Quarantine(Quarantined {
                    location: format!("{}/owned_chats", self.org_path()),
                    error: "chat without an id".into(),
                    payload: chat.to_string(),
                })],
                undecrypted: 0,
            });
        };
        let base = format!("{}/owned_chats/{id}", self.org_path());
        let (messages_url, members_url, tags_url) = (
            format!("{base}/messages"),
            format!("{base}/memberships"),
            format!("{base}/tags"),
        );
        // The visitor's variables need its member id: chain them behind the memberships, while
        // messages and tags load alongside.
        let members_then_variables = async {
            let members = self.list_all(&members_url).await?;
            let visitors: Vec<String> = members
                .iter()
                .filter(|m| str_field(m, "member_type") == Some("visitor"))
                .filter_map(|m| str_field(m, "member_id").map(str::to_owned))
                .collect();
            let mut variables: Vec<(String, String, Vec<Value>)> = Vec::new();
            for v in &visitors {
                let url = format!("{base}/visitors/{v}/variables");
                let vars = self.list_all(&url).await?;
                variables.push((v.clone(), url, vars));
            }
            Ok::<_, SourceError>((members, visitors, variables))
        };
        let (messages, (members, visitors, variables), tags) = futures::try_join!(
            self.list_all(&messages_url),
            members_then_variables,
            self.list_all(&tags_url)
        )?;
        let bots: HashMap<String, bool> = members
            .iter()
            .filter_map(|m| {
                Some((
                    str_field(m, "member_id")?.to_owned(),
                    m.get("is_bot").and_then(Value::as_bool).unwrap_or(false),
                ))
            })
            .collect();
        let visitor_id = visitors.first().map(String::as_str);
        let encrypted = chat
            .get("is_encrypted")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let keys = match (str_field(&chat, "encrypted_symmetric_key"), &self.key) {
            (Some(wrapped), Some(private)) => match ChatKeys::unwrap(private, wrapped) {
                Ok(k) => ChatKeyState::Keys(k),
                Err(e) => ChatKeyState::Failed(e),
            },
            (Some(_), None) => ChatKeyState::NoPrivateKey,
            (None, _) if encrypted && self.key.is_none() => ChatKeyState::NoPrivateKey,
            (None, _) => ChatKeyState::Plain,
        };
        let mut events: Vec<Event> = Vec::new();
        let mut undecrypted = 0u64;
        let room_id = str_field(&chat, "room_id").map(str::to_owned);
        let mut rows: Vec<Row> = vec![records::chat_row(&chat, visitor_id)];
        let mut sorted = messages;
        // Order is unconfirmed (ascending in 2023 samples, descending in 2015 docs): sort here.
        sorted.sort_by(|a, b| {
            (
                str_field(a, "created_at").and_then(parse_timestamp),
                str_field(a, "id"),
            )
                .cmp(&(
                    str_field(b, "created_at").and_then(parse_timestamp),
                    str_field(b, "id"),
                ))
        });
        for m in &sorted {
            match records::message_rows(m, &id, &keys, &bots, &messages_url) {
                MessageOutcome::Rows {
                    rows: r,
                    undecrypted: u,
                } => {
                    rows.extend(r);
                    undecrypted += u64::from(u);
                }
                MessageOutcome::Quarantine(q) => events.push(Event::Quarantine(q)),
            }
        }
        for m in &members {
            if str_field(m, "member_id").is_some() {
                rows.push(records::membership_row(m, &id));
            } else {
                events.push(Event::Quarantine(Quarantined {
                    location: members_url.clone(),
                    error: "membership without member_id".into(),
                    payload: m.to_string(),
                }));
            }
        }
        for t in &tags {
            if str_field(t, "name").is_some() {
                rows.push(records::tag_row(t, &id, room_id.as_deref()));
            } else {
                events.push(Event::Quarantine(Quarantined {
                    location: tags_url.clone(),
                    error: "tag without name".into(),
                    payload: t.to_string(),
                }));
            }
        }
        for (visitor, url, vars) in &variables {
            for v in vars {
                if str_field(v, "key").is_none() {
                    events.push(Event::Quarantine(Quarantined {
                        location: url.clone(),
                        error: "variable without key".into(),
                        payload: v.to_string(),
                    }));
                    continue;
                }
                match records::variable_row(v, visitor, &id, self.key.as_deref(), url) {
                    Ok((row, u)) => {
                        rows.push(row);
                        undecrypted += u64::from(u);
                    }
                    Err(q) => events.push(Event::Quarantine(q)),
                }
            }
        }
        rows.push(records::conversation_row(&chat, visitor_id, &sorted, &bots));
        events.insert(0, Event::Records(rows));
        Ok(ChatOutcome {
            events,
            undecrypted,
        })
    }

    fn list_url(&self, base: &str, since: Option<DateTime<Utc>>, with_range: bool) -> String {
        let mut params: Vec<(&str, String)> = vec![("ordering", "updated_at".to_owned())];
        if let (Some(s), true) = (since, with_range) {
            params.push(("updated_at__gte", ms(s)));
        }
        if self.cfg.only_with_messages {
            params.push(("has_user_messages", "true".into()));
            params.push(("has_visitor_messages", "true".into()));
        }
        url::Url::parse_with_params(base, &params)
            .map_or_else(|_| base.to_owned(), |u| u.to_string())
    }

    /// Runs the `chats` stream, sending events into `tx`.
    async fn drive(&self, ctx: StreamContext, mut tx: mpsc::Sender<Result<Event, SourceError>>) {
        if let Err(e) = self.drive_inner(ctx, &mut tx).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    #[allow(clippy::too_many_lines)]
    async fn drive_inner(
        &self,
        ctx: StreamContext,
        tx: &mut mpsc::Sender<Result<Event, SourceError>>,
    ) -> Result<(), SourceError> {
        let prev: ChatsState = if ctx.full_refresh {
            ChatsState::default()
        } else {
            ctx.state
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default()
        };
        let mut state = prev.clone();
        let mut undecrypted = 0u64;
        let window = self.cfg.concurrency.max(1) * 4;
        let send_err = |_| SourceError::Other("the sync engine stopped reading".into());
        for (scope, base) in self.scopes() {
            let prev_scope = prev.scopes.get(&scope).cloned().unwrap_or_default();
            let prev_mark = prev_scope.watermark.as_deref().and_then(parse_timestamp);
            let since = prev_mark.map(|w| w - self.overlap);
            let prev_recent: HashMap<String, DateTime<Utc>> = prev_scope
                .recent
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), parse_timestamp(v)?)))
                .collect();
            // Tracking in listing order.
            let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
            let mut max_seen = prev_mark;
            let mut ascending = true;
            let mut last: Option<DateTime<Utc>> = None;
            let snapshot = |seen: &HashMap<String, DateTime<Utc>>,
                            max_seen: Option<DateTime<Utc>>|
             -> ScopeState {
                let Some(mark) = max_seen else {
                    return ScopeState::default();
                };
                let floor = mark - self.overlap;
                let mut recent: BTreeMap<String, String> = BTreeMap::new();
                for (k, v) in prev_recent.iter().chain(seen.iter()) {
                    if *v >= floor {
                        recent.insert(k.clone(), ms(*v));
                    }
                }
                ScopeState {
                    watermark: Some(ms(mark)),
                    recent,
                }
            };
            let mut with_range = true;
            let first = self.list_url(&base, since, with_range);
            let mut next_url: Option<String> = Some(first.clone());
            let mut restarts = 0;
            let mut inflight: FuturesOrdered<
                futures::future::BoxFuture<'_, Result<Step, SourceError>>,
            > = FuturesOrdered::new();
            loop {
                if next_url.is_none() && inflight.is_empty() {
                    break;
                }
                let can_list = next_url.is_some() && inflight.len() < window;
                let step = if can_list {
                    let url = next_url.take().unwrap_or_default();
                    // Keep the chat fetches moving while the next page loads.
                    let mut listing = Box::pin(self.page(&url));
                    let page = loop {
                        if inflight.is_empty() {
                            break listing.await?;
                        }
                        tokio::select! {
                            biased;
                            p = &mut listing => break p?,
                            Some(out) = inflight.next() => self.emit(out?, &mut undecrypted, tx).await.map_err(send_err)?,
                        }
                    };
                    match page {
                        Ok(p) => {
                            for chat in p.results {
                                let id = str_field(&chat, "id").map(str::to_owned);
                                let updated =
                                    str_field(&chat, "updated_at").and_then(parse_timestamp);
                                let (Some(id), Some(u)) = (id, updated) else {
                                    let q = Quarantined {
                                        location: url
                                            .split_once('?')
                                            .map_or(url.as_str(), |(b, _)| b)
                                            .to_owned(),
                                        error: "chat without a valid id or updated_at".into(),
                                        payload: chat.to_string(),
                                    };
                                    inflight.push_back(
                                        futures::future::ready(Ok(Step::Chat(ChatOutcome {
                                            events: vec![Event::Quarantine(q)],
                                            undecrypted: 0,
                                        })))
                                        .boxed(),
                                    );
                                    continue;
                                };
                                if seen.get(&id) == Some(&u) {
                                    continue;
                                }
                                if last.is_some_and(|l| u < l) {
                                    ascending = false;
                                }
                                last = Some(u);
                                let unchanged = since.is_some_and(|s| u < s)
                                    || prev_recent.get(&id) == Some(&u);
                                if since.is_some_and(|s| u < s) {
                                    // The server ignored the range filter: nothing to do here.
                                    continue;
                                }
                                seen.insert(id.clone(), u);
                                max_seen = Some(max_seen.map_or(u, |m| m.max(u)));
                                if unchanged {
                                    continue;
                                }
                                inflight.push_back(
                                    async move { self.fetch_chat(chat).await.map(Step::Chat) }
                                        .boxed(),
                                );
                            }
                            if ascending {
                                let mut s = state.clone();
                                s.scopes.insert(scope.clone(), snapshot(&seen, max_seen));
                                let cp = serde_json::to_value(&s).unwrap_or(Value::Null);
                                inflight.push_back(
                                    futures::future::ready(Ok(Step::Checkpoint(cp))).boxed(),
                                );
                            }
                            next_url = p.next.filter(|n| *n != url);
                            continue;
                        }
                        Err((StatusCode::BAD_REQUEST, _)) if with_range && url == first => {
                            // A server that refuses the range filter: list everything instead.
                            tracing::info!(scope = %scope, "updated_at__gte refused; listing without it");
                            with_range = false;
                            next_url = Some(self.list_url(&base, since, false));
                            continue;
                        }
                        Err((StatusCode::NOT_FOUND, _)) if url != first && restarts < 3 => {
                            tracing::info!(scope = %scope, "cursor expired mid-listing; listing again from the start");
                            restarts += 1;
                            next_url = Some(self.list_url(&base, since, with_range));
                            continue;
                        }
                        Err((status, body)) => return Err(self.error_for(&url, status, &body)),
                    }
                } else {
                    match inflight.next().await {
                        Some(out) => out?,
                        None => Step::Nothing,
                    }
                };
                self.emit(step, &mut undecrypted, tx)
                    .await
                    .map_err(send_err)?;
            }
            state
                .scopes
                .insert(scope.clone(), snapshot(&seen, max_seen));
        }
        let had_warning = prev.warnings.iter().any(|w| w == NO_KEY_WARNING);
        state.warnings.retain(|w| w != NO_KEY_WARNING);
        if self.key.is_none() && (undecrypted > 0 || (had_warning && !ctx.full_refresh)) {
            state.warnings.push(NO_KEY_WARNING.to_owned());
        }
        if undecrypted > 0 {
            tracing::warn!(
                count = undecrypted,
                "encrypted records stored without text: no private key configured"
            );
        }
        let cp = serde_json::to_value(&state).unwrap_or(Value::Null);
        tx.send(Ok(Event::Checkpoint(cp))).await.map_err(send_err)?;
        Ok(())
    }

    async fn emit(
        &self,
        step: Step,
        undecrypted: &mut u64,
        tx: &mut mpsc::Sender<Result<Event, SourceError>>,
    ) -> Result<(), mpsc::SendError> {
        match step {
            Step::Chat(c) => {
                *undecrypted += c.undecrypted;
                for e in c.events {
                    tx.send(Ok(e)).await?;
                }
            }
            Step::Checkpoint(cp) => tx.send(Ok(Event::Checkpoint(cp))).await?,
            Step::Nothing => {}
        }
        Ok(())
    }

    /// Fetches one chat by id with its children (a trigger's or a webhook's work); `None` when
    /// Giosg answers 404 (the chat is gone, or was never this organisation's).
    async fn fetch_one(&self, chat_id: &str) -> Result<Option<Vec<Event>>, SourceError> {
        let url = format!("{}/owned_chats/{chat_id}", self.org_path());
        let (status, _, body) = self.client.fetch(Request::get(&url, "push")).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.error_for(&url, status, &body));
        }
        let chat: Value = serde_json::from_slice(&body).map_err(|e| SourceError::Protocol {
            location: url.clone(),
            message: format!("invalid JSON: {e}"),
        })?;
        let out = self.fetch_chat(chat).await?;
        if out.undecrypted > 0 {
            tracing::warn!(
                chat_id,
                count = out.undecrypted,
                "encrypted records stored without text: no private key configured"
            );
        }
        Ok(Some(out.events))
    }

    /// A pushed event's work: fetch the chat again; a `removed` webhook whose chat Giosg no
    /// longer serves (404) erases the chat's rows per `on_vendor_delete`.
    async fn run_push(&self, payload: &Value) -> Result<Vec<Event>, SourceError> {
        let chat_id = payload
            .get("chat_id")
            .and_then(Value::as_str)
            .filter(|id| webhook::safe_id(id))
            .ok_or_else(|| SourceError::Other("pushed event without a valid chat_id".into()))?;
        let action = payload.get(WEBHOOK_KEY).and_then(Value::as_str);
        match (self.fetch_one(chat_id).await?, action) {
            (Some(events), _) => Ok(events),
            (None, Some("removed")) => {
                tracing::info!(source = %self.name, chat_id, "Giosg removed the chat: marking its rows deleted");
                Ok(webhook::erase_chat(chat_id, self.cfg.on_vendor_delete))
            }
            (None, Some(action)) => {
                tracing::warn!(source = %self.name, chat_id, action, "webhook's chat not found at Giosg");
                Ok(Vec::new())
            }
            (None, None) => {
                tracing::warn!(source = %self.name, chat_id, "triggered chat not found");
                Ok(Vec::new())
            }
        }
    }
}

/// Claims of a trigger's `data` JWT.
#[derive(Debug, Deserialize)]
struct TriggerClaims {
    chat_id: Option<String>,
    org_id: Option<String>,
    #[serde(default)]
    visitor_id: Option<String>,
}

/// Trigger types that mean "this chat changed for good".
const CHAT_TRIGGERS: [&str; 3] = ["chat_end", "chat_end_with_msgs", "chat_close"];

impl Source for GiosgSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn vendor(&self) -> &'static str {
        VENDOR
    }

    fn http_counters(&self) -> Option<talkhouse_model::HttpCounters> {
        Some(self.client.stats().counters())
    }

    fn stream_http_counters(&self, stream: &str) -> Option<talkhouse_model::HttpCounters> {
        Some(self.client.stats().stream_counters(stream))
    }

    fn tables(&self) -> Vec<TableSpec> {
        let mut t = tables::tables();
        t.extend(talkhouse_model::model::tables());
        t
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![StreamDef::new(CHATS_STREAM)]
    }

    fn run_stream(&self, stream: &str, ctx: StreamContext) -> EventStream<'_> {
        if stream != CHATS_STREAM {
            let e = SourceError::Config(format!(
                "giosg has no stream `{stream}` (only `{CHATS_STREAM}`)"
            ));
            return Box::pin(futures::stream::once(async move { Err(e) }));
        }
        let (tx, rx) = mpsc::channel(64);
        let driver = futures::stream::once(self.drive(ctx, tx)).filter_map(|()| async { None });
        Box::pin(futures::stream::select(rx, driver))
    }

    fn customer_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![
            (tables::CHATS, "visitor_id"),
            (tables::MESSAGES, "sender_id"),
            (tables::MEMBERSHIPS, "member_id"),
            (tables::VARIABLES, "visitor_id"),
        ]
    }

    fn conversation_columns(&self) -> Vec<(TableRef, &'static str)> {
        vec![
            (tables::CHATS, "id"),
            (tables::MESSAGES, "chat_id"),
            (tables::MEMBERSHIPS, "chat_id"),
            (tables::TAGS, "chat_id"),
        ]
    }

    fn verify_push(&self, request: &PushRequest) -> PushVerdict {
        if request.path.starts_with("/webhooks/") {
            return webhook::verify(&self.cfg, &self.name, request);
        }
        let reject = |status: u16, message: &str| PushVerdict::Reject {
            status,
            message: message.to_owned(),
        };
        let Some(secret) = &self.cfg.app_secret else {
            return reject(404, "this Giosg source takes no triggers: set app_secret");
        };
        if !request.method.eq_ignore_ascii_case("GET")
            && !request.method.eq_ignore_ascii_case("POST")
        {
            return reject(405, "Giosg triggers arrive as GET");
        }
        let Some(kind) = request.param("type") else {
            return reject(400, "missing `type`");
        };
        let Some(data) = request.param("data") else {
            return reject(400, "missing `data`");
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_aud = false;
        let claims = match jsonwebtoken::decode::<TriggerClaims>(
            data,
            &jsonwebtoken::DecodingKey::from_secret(secret.expose().as_bytes()),
            &validation,
        ) {
            Ok(t) => t.claims,
            Err(e) => {
                return match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                        reject(401, "trigger expired")
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                        reject(401, "bad trigger signature")
                    }
                    _ => reject(401, "invalid trigger token"),
                };
            }
        };
        if claims
            .org_id
            .as_deref()
            .is_some_and(|o| o != self.cfg.organization_id)
        {
            return reject(403, "trigger for another organisation");
        }
        if !CHAT_TRIGGERS.contains(&kind) {
            return PushVerdict::Ignore;
        }
        let Some(chat_id) = claims.chat_id else {
            return reject(400, "trigger without chat_id");
        };
        if !webhook::safe_id(&chat_id) {
            return reject(400, "the trigger's chat_id is not an id");
        }
        PushVerdict::Accept {
            event_id: chat_id.clone(),
            payload: json!({ "type": kind, "chat_id": chat_id, "visitor_id": claims.visitor_id }),
        }
    }

    fn process_push(&self, payload: Value) -> EventStream<'_> {
        Box::pin(
            futures::stream::once(async move {
                match self.run_push(&payload).await {
                    Ok(events) => events.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                }
            })
            .flat_map(futures::stream::iter),
        )
    }

    fn scheduled_upkeep(&self) -> Option<BoxFuture<'_, Result<String, SourceError>>> {
        let after = self.end_stale_after?;
        Some(Box::pin(self.scheduled_end_stale(after)))
    }
}
