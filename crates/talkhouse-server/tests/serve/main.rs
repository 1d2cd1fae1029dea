//! Integration tests of `talkhouse serve`, against an in-memory destination and a small test
//! source whose verification and processing are simple and observable.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod kill9;
mod load;
mod postgres;
mod push;
mod restart;
mod scheduler;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use talkhouse_model::{
    Column, ColumnType, Destination, Event, EventStream, PushRequest, PushVerdict, Row, Source,
    StreamContext, StreamDef, TableRef, TableSpec,
};
use talkhouse_server::{ServeConfig, Server};
use talkhouse_sync::memory::MemoryDestination;
use tokio::sync::{Semaphore, oneshot};

pub const ITEMS: TableRef = TableRef::source("items");
pub const TOKEN: &str = "Bearer s3cret";

/// What the test source records, shared between instances of it (two servers, or a server
/// before and after a restart).
#[derive(Default)]
pub struct Probe {
    /// Completed `process_push` runs per event id.
    pub processed: Mutex<HashMap<String, u32>>,
    /// Syncs running right now and the most ever seen at once.
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub syncs: AtomicUsize,
}

impl Probe {
    pub fn processed_total(&self) -> u32 {
        self.processed.lock().unwrap().values().sum()
    }
    pub fn count(&self, id: &str) -> u32 {
        self.processed.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

/// A test source of vendor `testvendor`.
///
/// * push: `authorization: Bearer s3cret` required (401), body JSON with `id` (400 otherwise),
///   `{"type":"PING"}` is ignored; processing waits for a permit of `gate` and writes one row of
///   `items` per event;
/// * sync: stream `items` sleeps `sync_time` and writes nothing.
pub struct TestSource {
    pub name: String,
    pub probe: Arc<Probe>,
    pub gate: Option<Arc<Semaphore>>,
    pub sync_time: Duration,
}

impl TestSource {
    pub fn new(name: &str, probe: Arc<Probe>) -> Self {
        Self {
            name: name.to_owned(),
            probe,
            gate: None,
            sync_time: Duration::from_millis(10),
        }
    }
}

impl Source for TestSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn vendor(&self) -> &'static str {
        "testvendor"
    }
    fn tables(&self) -> Vec<TableSpec> {
        vec![TableSpec::new(
            ITEMS,
            vec![Column::new("id", ColumnType::Text)],
            &["id"],
        )]
    }
    fn streams(&self) -> Vec<StreamDef> {
        vec![StreamDef::new("items")]
    }
    fn run_stream(&self, _stream: &str, _ctx: StreamContext) -> EventStream<'_> {
        let probe = self.probe.clone();
        let time = self.sync_time;
        Box::pin(
            futures::stream::once(async move {
                let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
                probe.max_running.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(time).await;
                probe.running.fetch_sub(1, Ordering::SeqCst);
                probe.syncs.fetch_add(1, Ordering::SeqCst);
                Ok(Event::Checkpoint(serde_json::json!({ "at": 1 })))
            })
            .boxed(),
        )
    }
    fn verify_push(&self, request: &PushRequest) -> PushVerdict {
        if request.header("authorization") != Some(TOKEN) {
            return PushVerdict::Reject {
                status: 401,
                message: "bad credentials".into(),
            };
        }
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return PushVerdict::Reject {
                status: 400,
                message: "body is not JSON".into(),
            };
        };
        if body.get("type").and_then(|t| t.as_str()) == Some("PING") {
            return PushVerdict::Ignore;
        }
        match body.get("id").and_then(|v| v.as_str()) {
            Some(id) => PushVerdict::Accept {
                event_id: id.to_owned(),
                payload: body.clone(),
            },
            None => PushVerdict::Reject {
                status: 400,
                message: "missing id".into(),
            },
        }
    }
    fn http_counters(&self) -> Option<talkhouse_model::HttpCounters> {
        let syncs = self.probe.syncs.load(Ordering::SeqCst) as u64;
        Some(talkhouse_model::HttpCounters {
            attempts: 3 * syncs,
            retries: syncs,
            throttled: syncs,
            failures: 0,
        })
    }
    fn process_push(&self, payload: serde_json::Value) -> EventStream<'_> {
        let probe = self.probe.clone();
        let gate = self.gate.clone();
        Box::pin(
            futures::stream::once(async move {
                if let Some(g) = gate {
                    g.acquire().await.expect("gate closed").forget();
                }
                if payload["fail"] == true {
                    return Err(talkhouse_model::SourceError::Other(
                        "this event always fails".into(),
                    ));
                }
                let id = payload["id"].as_str().unwrap_or_default().to_owned();
                *probe
                    .processed
                    .lock()
                    .unwrap()
                    .entry(id.clone())
                    .or_default() += 1;
                Ok(Event::Records(vec![
                    Row::new(ITEMS).set("id", id).with_raw(payload.to_string()),
                ]))
            })
            .boxed(),
        )
    }
}

pub fn config(inbox: &Path) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        inbox_dir: inbox.to_owned(),
        shutdown_grace: "2s".parse().unwrap(),
        ..ServeConfig::default()
    }
}

/// A server running on its own task.
pub struct Running {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<Result<(), talkhouse_server::ServerError>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    /// Graceful shutdown; returns what `run` returned.
    pub async fn shutdown(mut self) -> Result<(), talkhouse_server::ServerError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap()
    }
}

pub async fn start(
    config: ServeConfig,
    sources: Vec<Arc<dyn Source>>,
    dest: Arc<dyn Destination>,
) -> Running {
    let server = Server::bind(config, sources, dest).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

pub fn memory() -> Arc<MemoryDestination> {
    Arc::new(MemoryDestination::new())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Posts `body` with the right credentials; the future borrows nothing.
pub fn send(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> impl std::future::Future<Output = (u16, serde_json::Value)> + Send + use<> {
    let request = client.post(url).header("authorization", TOKEN).json(body);
    async move {
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }
}

/// Polls `cond` every 20 ms for up to 10 s.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
