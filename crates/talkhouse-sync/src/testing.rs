//! Test helpers shared by the engine's and the destinations' tests.
//!
//! [`CounterSource`] is a deterministic source: stream `items` yields `total` records in pages
//! of `page` with a checkpoint after each page (cursor = records done), every `bad_every`-th
//! record malformed (quarantined), and each record with a child list of `id % 3` entries.
//! It resumes from its cursor, so crash-and-rerun tests can compare against a clean run. Each
//! page served counts as one vendor request of the stream.

use std::sync::Arc;

use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};

use talkhouse_model::{
    Column, ColumnType, Event, EventStream, HttpCounters, Quarantined, Row, Source, StreamContext,
    StreamDef, TableRef, TableSpec, model,
};

/// The parent table.
pub const ITEMS: TableRef = TableRef::source("items");
/// The child table (`item_id` + `position`).
pub const ITEM_TAGS: TableRef = TableRef::source("item_tags");

/// A synthetic source for engine and destination tests.
#[derive(Debug)]
pub struct CounterSource {
    /// Source name (schema).
    pub name: String,
    /// Records in all.
    pub total: u64,
    /// Records per page (one checkpoint per page).
    pub page: u64,
    /// Every n-th record is malformed (0: none).
    pub bad_every: u64,
    /// Bumped to make every record change (a new version of each).
    pub version: u64,
    /// Pages served so far.
    pub pages_served: Arc<AtomicU64>,
}

impl CounterSource {
    /// A source with `total` records in pages of `page`.
    pub fn new(name: &str, total: u64, page: u64) -> Self {
        Self {
            name: name.to_owned(),
            total,
            page,
            bad_every: 0,
            version: 1,
            pages_served: Arc::default(),
        }
    }

    fn row(&self, id: u64) -> Vec<Row> {
        let raw = format!(
            r#"{{"id":{id},"v":{},"name":"Item {id}","tags":{}}}"#,
            self.version,
            id % 3
        );
        let mut rows = vec![
            Row::new(ITEMS)
                .set("id", i64::try_from(id).unwrap_or(i64::MAX))
                .set("name", format!("Item {id}"))
                .set("version", i64::try_from(self.version).unwrap_or(0))
                .set("score", 0.5_f64)
                .set("active", id.is_multiple_of(2))
                .with_raw(raw),
        ];
        for pos in 0..(id % 3) {
            rows.push(
                Row::new(ITEM_TAGS)
                    .set("item_id", i64::try_from(id).unwrap_or(0))
                    .set("position", i64::try_from(pos).unwrap_or(0))
                    .set("tag", format!("t{pos}"))
                    .with_raw(format!(r#"{{"tag":"t{pos}"}}"#)),
            );
        }
        rows.push(
            Row::new(model::MESSAGES)
                .set("message_id", id.to_string())
                .set("conversation_id", (id / 10).to_string())
                .set("sender_role", "customer")
                .set("body", format!("Item {id} is great")),
        );
        rows
    }
}

impl Source for CounterSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn vendor(&self) -> &'static str {
        "counter"
    }

    fn tables(&self) -> Vec<TableSpec> {
        let mut t = vec![
            TableSpec::new(
                ITEMS,
                vec![
                    Column::new("id", ColumnType::Integer),
                    Column::personal("name", ColumnType::Text),
                    Column::new("version", ColumnType::Integer),
                    Column::new("score", ColumnType::Float),
                    Column::new("active", ColumnType::Boolean),
                ],
                &["id"],
            ),
            TableSpec::new(
                ITEM_TAGS,
                vec![
                    Column::new("item_id", ColumnType::Integer),
                    Column::new("position", ColumnType::Integer),
                    Column::new("tag", ColumnType::Text),
                ],
                &["item_id", "position"],
            )
            .child_of(&["item_id"]),
        ];
        t.extend(model::tables());
        t
    }

    fn streams(&self) -> Vec<StreamDef> {
        vec![StreamDef::new("items")]
    }

    fn run_stream(&self, _stream: &str, ctx: StreamContext) -> EventStream<'_> {
        let start = ctx
            .state
            .as_ref()
            .and_then(|s| s.get("done"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let pages = self.pages_served.clone();
        let page = self.page.max(1);
        let events =
            futures::stream::iter((start..self.total).step_by(usize::try_from(page).unwrap_or(1)))
                .flat_map(move |from| {
                    pages.fetch_add(1, Ordering::SeqCst);
                    let to = (from + page).min(self.total);
                    let mut ev: Vec<Result<Event, talkhouse_model::SourceError>> = Vec::new();
                    for id in from..to {
                        if self.bad_every > 0 && id % self.bad_every == self.bad_every - 1 {
                            ev.push(Ok(Event::Quarantine(Quarantined {
                                location: format!("counter:{id}"),
                                error: "expected value at line 1 column 7".into(),
                                payload: format!("{{\"id\":{id},"),
                            })));
                        } else {
                            ev.push(Ok(Event::Records(self.row(id))));
                        }
                    }
                    ev.push(Ok(Event::Checkpoint(serde_json::json!({ "done": to }))));
                    futures::stream::iter(ev)
                });
        Box::pin(events)
    }

    /// Each page served counts as one request of stream `items`.
    fn stream_http_counters(&self, stream: &str) -> Option<HttpCounters> {
        (stream == "items").then(|| HttpCounters {
            attempts: self.pages_served.load(Ordering::SeqCst),
            ..HttpCounters::default()
        })
    }
}
