//! The Ultimate source: one stream, `conversations`, over bots × days.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;

use bytes::Bytes;
use chrono::{Duration, NaiveDate, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use talkhouse_http::{Auth, Client, ClientConfig, Request};
use talkhouse_model::{
    Cell, Event, EventStream, Quarantined, Row, Source, SourceError, SourceSettings, StreamContext,
    StreamDef, TableSpec, model,
};

use super::config::UltimateConfig;
use super::records::{self, Parsed};
use super::{tables, views};

const VENDOR: &str = "ultimate";
const STREAM: &str = "conversations";
const ENDPOINT: &str = "get-signed-urls";
/// Day entries kept in the cursor for change detection.
const KEEP_DAYS: usize = 14;

/// A configured Ultimate organization.
#[derive(Debug)]
pub struct UltimateSource {
    name: String,
    config: UltimateConfig,
    client: Client,
}

/// What one (bot, day) export held.
#[derive(Debug, Default)]
struct Day {
    files: usize,
    bytes: usize,
    events: Vec<Event>,
    records: usize,
    no_export: bool,
}

/// A download that failed because the signed URL expired.
struct Expired;

impl UltimateSource {
    /// Builds the source and its HTTP client.
    ///
    /// # Errors
    /// When the HTTP client cannot be built or the configuration cannot work.
    pub fn new(name: &str, config: UltimateConfig) -> Result<Self, SourceError> {
        if config.bot_ids.is_empty() {
            return Err(SourceError::Config("`bot_ids` lists no bot".into()));
        }
        if !matches!(config.api_version.as_str(), "v2" | "v3") {
            return Err(SourceError::Config(format!(
                "`api_version` must be v2 or v3, not `{}`",
                config.api_version
            )));
        }
        let auth = if config.bearer {
            Auth::Bearer(config.token.clone())
        } else {
            Auth::Header {
                name: "authorization".into(),
                value: config.token.clone(),
            }
        };
        let client = Client::new(ClientConfig::new(VENDOR, auth).concurrency(1))
            .map_err(SourceError::from)?;
        client.limit_endpoint(ENDPOINT, config.requests_per_second);
        Ok(Self {
            name: name.to_owned(),
            config,
            client,
        })
    }

    /// The days to read for one bot, given its cursor.
    fn plan(&self, through: Option<NaiveDate>, full_refresh: bool) -> Vec<NaiveDate> {
        let today = Utc::now().date_naive();
        let end = self.config.end_date.unwrap_or(today - Duration::days(1));
        let first = self
            .config
            .start_date
            .unwrap_or(today - Duration::days(i64::from(self.config.backfill_days)));
        let start = match through {
            Some(t) if !full_refresh => {
                let reread = end - Duration::days(i64::from(self.config.reread_days.max(1)) - 1);
                (t + Duration::days(1)).min(reread).max(first)
            }
            _ => first,
        };
        let mut days = Vec::new();
        let mut d = start;
        while d <= end {
            days.push(d);
            d += Duration::days(1);
        }
        days
    }

    /// POSTs get-signed-urls; `None` when the bot has no export that day (404).
    async fn signed_urls(
        &self,
        bot: &str,
        day: NaiveDate,
    ) -> Result<Option<Vec<String>>, SourceError> {
        let mut body = json!({ "date": day.to_string() });
        if let Some(ttl) = self.config.ttl_minutes {
            body["ttl"] = json!(ttl);
        }
        let url = self.config.endpoint();
        let req = Request::post_json(&url, STREAM, body)
            .endpoint(ENDPOINT)
            .header("organizationId", &self.config.organization_id)
            .header("botId", bot);
        let (status, _, body) = self.client.fetch(req).await?;
        let text = || {
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        };
        match status.as_u16() {
            200..=299 => {}
            404 => return Ok(None),
            s @ (401 | 403) => {
                return Err(SourceError::Auth {
                    vendor: VENDOR,
                    status: s,
                    detail: format!(
                        "POST {url} for bot {bot}: {} (check `token` and `organization_id`; regenerating the key revokes the old one)",
                        text()
                    ),
                });
            }
            s => {
                return Err(SourceError::Http {
                    vendor: VENDOR,
                    url,
                    status: Some(s),
                    message: format!("bot {bot}, date {day}: {}", text()),
                });
            }
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| SourceError::Protocol {
            location: url.clone(),
            message: format!("invalid JSON: {e}"),
        })?;
        let list = v.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| matches!(k.to_lowercase().as_str(), "urls" | "signed_urls"))
                .map(|(_, v)| v)
        });
        let urls = match list {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect(),
            Some(Value::Null) | None if v.get("date").is_some() => Vec::new(),
            _ => {
                return Err(SourceError::Protocol {
                    location: url,
                    message: "answer has neither `urls` nor `signed_urls`".into(),
                });
            }
        };
        Ok(Some(urls))
    }

    /// GETs one pre-signed URL (no credentials) and decompresses it.
    async fn download(&self, url: &str) -> Result<Result<Vec<u8>, Expired>, SourceError> {
        let req = Request::get(url, STREAM).unauthenticated();
        let (status, _, body) = self.client.fetch(req).await?;
        let shown = loggable(url);
        match status.as_u16() {
            200..=299 => gunzip(body).map(Ok).map_err(|e| SourceError::Protocol {
                location: shown,
                message: format!("cannot decompress gzip: {e}"),
            }),
            403 => Ok(Err(Expired)),
            s => Err(SourceError::Http {
                vendor: VENDOR,
                url: shown,
                status: Some(s),
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            }),
        }
    }

    /// Reads one (bot, day): URLs, every shard, records deduplicated by conversation.
    async fn read_day(&self, bot: &str, day: NaiveDate) -> Result<Day, SourceError> {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut refreshed = false;
        'fetch: loop {
            let Some(urls) = self.signed_urls(bot, day).await? else {
                return Ok(Day {
                    no_export: true,
                    ..Day::default()
                });
            };
            files.clear();
            for url in urls {
                match self.download(&url).await? {
                    Ok(bytes) => files.push((loggable(&url), bytes)),
                    Err(Expired) if !refreshed => {
                        tracing::info!(bot, %day, url = %loggable(&url), "signed URL expired (403); asking for fresh URLs");
                        refreshed = true;
                        continue 'fetch;
                    }
                    Err(Expired) => {
                        return Err(SourceError::Http {
                            vendor: VENDOR,
                            url: loggable(&url),
                            status: Some(403),
                            message: "signed URL refused (403) again after asking for fresh URLs"
                                .into(),
                        });
                    }
                }
            }
            break;
        }
        let mut out = Day {
            files: files.len(),
            ..Day::default()
        };
        // Latest version per conversation: greatest end time, then session end, then last seen.
        let mut best: HashMap<String, (usize, Parsed)> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut seq = 0usize;
        for (location, bytes) in &files {
            out.bytes += bytes.len();
            for (at, item) in split_records(bytes) {
                seq += 1;
                let loc = format!("{location}:{at}");
                let value = match item {
                    Ok(v) => v,
                    Err((error, payload)) => {
                        out.events.push(Event::Quarantine(Quarantined {
                            location: loc,
                            error,
                            payload,
                        }));
                        continue;
                    }
                };
                match records::parse_record(&value, day) {
                    Ok(mut p) => {
                        out.records += 1;
                        if let Some((error, payload)) = p.data_error.take() {
                            out.events.push(Event::Quarantine(Quarantined {
                                location: loc,
                                error: format!(
                                    "{error} (conversation {}; the row loads without it)",
                                    p.id
                                ),
                                payload,
                            }));
                        }
                        let newer = best.get(&p.id).is_none_or(|(_, old)| {
                            (p.end, p.session_end) >= (old.end, old.session_end)
                        });
                        if !best.contains_key(&p.id) {
                            order.push(p.id.clone());
                        }
                        if newer {
                            best.insert(p.id.clone(), (seq, p));
                        }
                    }
                    Err(error) => out.events.push(Event::Quarantine(Quarantined {
                        location: loc,
                        error,
                        payload: value.to_string().chars().take(10_000).collect(),
                    })),
                }
            }
        }
        for id in order {
            if let Some((_, p)) = best.remove(&id) {
                out.events.push(Event::Records(p.rows));
            }
        }
        Ok(out)
    }
}

/// Strips the signature query of a signed URL.
fn loggable(url: &str) -> String {
    url.split_once('?').map_or(url, |(base, _)| base).to_owned()
}

/// Decompresses gzip (sniffed by its magic bytes; `Content-Encoding: gzip` is already undone
/// by the HTTP client).
pub(crate) fn gunzip(body: Bytes) -> std::io::Result<Vec<u8>> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&body[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(body.to_vec())
    }
}

type Item = Result<Value, (String, String)>;

/// The records of a file: a JSON array, or NDJSON (one record per line). Each item carries
/// its place (`line` or `[index]`) for quarantine.
pub(crate) fn split_records(bytes: &[u8]) -> Vec<(String, Item)> {
    let text = String::from_utf8_lossy(bytes);
    let body = text.trim_start_matches('\u{feff}').trim();
    if body.starts_with('[')
        && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(body)
    {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let item = match v {
                    Value::Object(_) => Ok(v),
                    Value::String(s) => match serde_json::from_str::<Value>(&s) {
                        Ok(o @ Value::Object(_)) => Ok(o),
                        Ok(_) => Err(("array element is not a record".to_owned(), s)),
                        Err(e) => Err((
                            format!("array element is a string that is not JSON: {e}"),
                            s,
                        )),
                    },
                    other => Err((
                        "array element is not a record".to_owned(),
                        other.to_string(),
                    )),
                };
                (format!("[{i}]"), item)
            })
            .collect();
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let item = serde_json::from_str::<Value>(line.trim()).map_err(|e| {
                (
                    format!("malformed JSON line: {e}"),
                    line.chars().take(10_000).collect(),
                )
            });
            ((i + 1).to_string(), item)
        })
        .collect()
}

/// The stream's cursor: per bot, the last finished day and what recent days held.
fn bot_state<'a>(state: &'a Value, bot: &str) -> Option<&'a Value> {
    state.get("bots").and_then(|b| b.get(bot))
}

fn record_day(state: &mut Value, bot: &str, day: NaiveDate, d: &Day) {
    if !state.get("bots").is_some_and(Value::is_object) {
        *state = json!({ "bots": {} });
    }
    let entry = &mut state["bots"][bot];
    if !entry.is_object() {
        *entry = json!({});
    }
    let through = entry
        .get("through")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<NaiveDate>().ok());
    if through.is_none_or(|t| day > t) {
        entry["through"] = json!(day.to_string());
    }
    let key = day.to_string();
    let now = json!({ "files": d.files, "records": d.records, "bytes": d.bytes, "no_export": d.no_export });
    if let Some(before) = entry.get("days").and_then(|ds| ds.get(&key))
        && before != &now
    {
        tracing::info!(bot, %day, before = %before, after = %now, "late data: the day's export changed since it was last read");
    }
    let mut days: BTreeMap<String, Value> = entry
        .get("days")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    days.insert(key, now);
    while days.len() > KEEP_DAYS {
        let Some(first) = days.keys().next().cloned() else {
            break;
        };
        days.remove(&first);
    }
    entry["days"] = json!(days);
}

/// The `ultimate.export_days` row of one (bot, day) read.
fn export_day_row(bot: &str, day: NaiveDate, d: &Day) -> Row {
    let int = |n: usize| Cell::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    Row::new(tables::EXPORT_DAYS)
        .set("bot_id", bot.to_owned())
        .set("day", Cell::Date(day))
        .set("files", int(d.files))
        .set("records", int(d.records))
        .set("bytes", int(d.bytes))
        .set("no_export", d.no_export)
}

struct Run<'a> {
    source: &'a UltimateSource,
    plan: VecDeque<(String, NaiveDate)>,
    state: Value,
    done: bool,
}

impl Run<'_> {
    async fn step(mut self) -> Option<(Vec<Result<Event, SourceError>>, Self)> {
        if self.done {
            return None;
        }
        let (bot, day) = self.plan.pop_front()?;
        match self.source.read_day(&bot, day).await {
            Ok(mut d) => {
                if d.no_export {
                    tracing::info!(bot = %bot, %day, "no export for this day (404)");
                }
                tracing::debug!(bot = %bot, %day, files = d.files, records = d.records, "day read");
                record_day(&mut self.state, &bot, day, &d);
                let mut events: Vec<Result<Event, SourceError>> =
                    d.events.drain(..).map(Ok).collect();
                events.push(Ok(Event::Records(vec![export_day_row(&bot, day, &d)])));
                events.push(Ok(Event::Checkpoint(self.state.clone())));
                Some((events, self))
            }
            Err(e) => {
                self.done = true;
                Some((vec![Err(e)], self))
            }
        }
    }
}

impl Source for UltimateSource {
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
        t.extend(model::tables());
        t
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![StreamDef::new(STREAM)]
    }

    fn run_stream(&self, stream: &str, ctx: StreamContext) -> EventStream<'_> {
        if stream != STREAM {
            let e = SourceError::Config(format!("ultimate has no stream `{stream}`"));
            return Box::pin(futures::stream::once(async move { Err(e) }));
        }
        let state = if ctx.full_refresh { None } else { ctx.state };
        let state = state.unwrap_or_else(|| json!({ "bots": {} }));
        let mut plan = VecDeque::new();
        for bot in &self.config.bot_ids {
            let through = bot_state(&state, bot)
                .and_then(|b| b.get("through"))
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<NaiveDate>().ok());
            for day in self.plan(through, ctx.full_refresh) {
                plan.push_back((bot.clone(), day));
            }
        }
        let run = Run {
            source: self,
            plan,
            state,
            done: false,
        };
        futures::stream::unfold(run, Run::step)
            .flat_map(futures::stream::iter)
            .boxed()
    }

    fn views(&self) -> Vec<(&'static str, String)> {
        views::views(&views::MetricOptions {
            excluded_intents: self.config.excluded_intents.clone(),
            parity_filter: self.config.parity_filter,
            include_test: self.config.include_test,
            bot_ids: self.config.bot_ids.clone(),
        })
    }

    fn model_settings(&self) -> SourceSettings {
        SourceSettings {
            include_test: self.config.include_test,
        }
    }
}
