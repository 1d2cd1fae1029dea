//! `talkhouse status`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};
use talkhouse_model::Destination;

use crate::config::Config;

/// Show, per source and stream: the last run, its status, rows, vendor requests (with retries,
/// 429 answers and failed requests), cursor, quarantined records and warnings (such as data
/// about to fall out of a vendor's retention).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// Output format of `status`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Aligned text.
    Table,
    /// One JSON object.
    Json,
}

const LAST_LOADS: &str = "SELECT l.source, l.stream, l.status, CAST(l.started_at AS VARCHAR) AS started_at, \
CAST(l.finished_at AS VARCHAR) AS finished_at, l.rows, l.quarantined, l.error, \
l.requests, l.retries, l.throttled, l.request_failures \
FROM talkhouse.loads l JOIN (SELECT source, stream, max(started_at) AS started_at FROM talkhouse.loads \
GROUP BY source, stream) m ON l.source = m.source AND l.stream = m.stream AND l.started_at = m.started_at \
ORDER BY l.source, l.stream";
const STATES: &str =
    "SELECT source, stream, CAST(cursor AS VARCHAR) AS cursor FROM talkhouse.state";
const QUARANTINE: &str =
    "SELECT source, stream, count(*) AS n FROM talkhouse.quarantine GROUP BY source, stream";

/// Collects the status as JSON: `{"streams": [...]}`.
///
/// # Errors
/// When the destination cannot be queried.
pub async fn collect(dest: &dyn Destination) -> anyhow::Result<Value> {
    dest.init().await?;
    let key = |r: &serde_json::Map<String, Value>| {
        (
            r.get("source")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            r.get("stream")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    };
    let mut states: BTreeMap<(String, String), Value> = BTreeMap::new();
    for r in dest.query(STATES).await? {
        let cursor = r
            .get("cursor")
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        states.insert(key(&r), cursor);
    }
    let mut quarantined: BTreeMap<(String, String), Value> = BTreeMap::new();
    for r in dest.query(QUARANTINE).await? {
        quarantined.insert(key(&r), r.get("n").cloned().unwrap_or(Value::Null));
    }
    let mut streams = Vec::new();
    for r in dest.query(LAST_LOADS).await? {
        let k = key(&r);
        let cursor = states.remove(&k).unwrap_or(Value::Null);
        let warnings = cursor.get("warnings").cloned().unwrap_or_else(|| json!([]));
        let mut o = r.clone();
        o.insert("cursor".into(), cursor);
        o.insert("warnings".into(), warnings);
        o.insert(
            "quarantined_total".into(),
            quarantined.remove(&k).unwrap_or_else(|| json!(0)),
        );
        streams.push(Value::Object(o));
    }
    Ok(json!({ "streams": streams }))
}

fn cursor_text(cursor: &Value) -> String {
    let mut c = cursor.clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("warnings");
    }
    let s = if c.is_null() {
        "-".to_owned()
    } else {
        c.to_string()
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s
    }
}

/// Renders the status as aligned text.
pub fn render(status: &Value) -> String {
    let empty = Vec::new();
    let streams = status["streams"].as_array().unwrap_or(&empty);
    if streams.is_empty() {
        return "no syncs yet: run `talkhouse sync`".into();
    }
    let mut out = format!(
        "{:<14} {:<26} {:<10} {:<20} {:>9} {:>11} {:>9}  {}\n",
        "source", "stream", "status", "last run", "rows", "quarantined", "requests", "cursor"
    );
    let mut notes = String::new();
    for s in streams {
        let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
        let started: String = text("started_at").chars().take(19).collect();
        let count = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
        let requests = s
            .get("requests")
            .and_then(Value::as_i64)
            .map_or_else(|| "-".to_owned(), |n| n.to_string());
        out.push_str(&format!(
            "{:<14} {:<26} {:<10} {:<20} {:>9} {:>11} {:>9}  {}\n",
            text("source"),
            text("stream"),
            text("status"),
            started,
            s["rows"],
            s["quarantined_total"],
            requests,
            cursor_text(&s["cursor"])
        ));
        let (retries, throttled, failed) = (
            count("retries"),
            count("throttled"),
            count("request_failures"),
        );
        if retries + throttled + failed > 0 {
            notes.push_str(&format!(
                "note    {}.{}: {retries} request(s) retried, {throttled} answered 429 (rate limited), {failed} failed for good\n",
                text("source"),
                text("stream")
            ));
        }
        if let Some(e) = s.get("error").and_then(Value::as_str) {
            notes.push_str(&format!(
                "error   {}.{}: {e}\n",
                text("source"),
                text("stream")
            ));
        }
        for w in s["warnings"].as_array().unwrap_or(&Vec::new()) {
            let w = w.as_str().map_or_else(|| w.to_string(), str::to_owned);
            notes.push_str(&format!(
                "warning {}.{}: {w}\n",
                text("source"),
                text("stream")
            ));
        }
    }
    out.push_str(&notes);
    out
}

/// Runs `talkhouse status`.
///
/// # Errors
/// Configuration errors and destination failures.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let dest = config.open_destination().await?;
    let status = collect(&*dest).await?;
    match args.format {
        Format::Json => crate::out(&serde_json::to_string_pretty(&status)?),
        Format::Table => crate::out(&render(&status)),
    }
    Ok(ExitCode::SUCCESS)
}
