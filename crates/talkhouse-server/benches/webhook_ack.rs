//! Webhook acknowledgement under open-loop load (issue 21, part 4).
//!
//! ```text
//! cargo bench --workspace --all-features --profile dev --bench webhook_ack [-- RATE…]
//! ```
//!
//! Starts `talkhouse serve` in this process on 127.0.0.1 (an in-memory destination, a test source
//! that accepts any JSON body with an `id`), then sends webhook POSTs on a fixed schedule, event
//! `i` due at `i / rate` seconds, over 32 keep-alive HTTP/1.1 connections (event `i` on
//! connection `i mod 32`). An event's latency runs from the moment it was due to its answer, so
//! a slow acknowledgement delays the events queued behind it on its connection and counts against
//! them too (no coordinated omission). Rates default to 500, 1,500 and 2,000 events/s, each for
//! `BENCH_SECS` seconds (default 10), with:
//!
//! * the file inbox (a temporary folder);
//! * the PostgreSQL inbox at `TALKHOUSE_BENCH_POSTGRES_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`; skipped when it cannot be reached);
//! * two servers sharing that PostgreSQL inbox, the connections split between them.
//!
//! For each it prints p50, p99 and max acknowledgement latency, how many events were
//! acknowledged and processed (and how long after the last acknowledgement the workers caught
//! up), and how many of those are durable: after the servers shut down, a fresh inbox
//! opened on the same folder or database is offered every acknowledged id again and must answer
//! `Duplicate` (it has it).

#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use talkhouse_model::{
    Column, ColumnType, Destination, Event, EventStream, PushRequest, PushVerdict, Row, Source,
    StreamContext, StreamDef, TableRef, TableSpec,
};
use talkhouse_server::inbox::file::FileInbox;
use talkhouse_server::inbox::postgres::PostgresInbox;
use talkhouse_server::{Inbox, InboxKind, ServeConfig, Server, Stored};
use talkhouse_sync::memory::MemoryDestination;
use tokio::sync::oneshot;
use tokio::time::Instant;

const ITEMS: TableRef = TableRef::source("items");
const CONNECTIONS: usize = 32;

/// Accepts a JSON body with an `id`; processing writes one row per event.
struct BenchSource {
    name: String,
}

impl Source for BenchSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn vendor(&self) -> &'static str {
        "benchvendor"
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
        Box::pin(futures::stream::empty())
    }
    fn verify_push(&self, request: &PushRequest) -> PushVerdict {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
            return PushVerdict::Reject {
                status: 400,
                message: "body is not JSON".into(),
            };
        };
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
    fn process_push(&self, payload: serde_json::Value) -> EventStream<'_> {
        Box::pin(
            futures::stream::once(async move {
                let id = payload["id"].as_str().unwrap_or_default().to_owned();
                Ok(Event::Records(vec![
                    Row::new(ITEMS).set("id", id).with_raw(payload.to_string()),
                ]))
            })
            .boxed(),
        )
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    File,
    Postgres,
    TwoReplicas,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::File => "file inbox",
            Setup::Postgres => "postgres inbox",
            Setup::TwoReplicas => "postgres inbox, 2 replicas",
        }
    }
}

struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), talkhouse_server::ServerError>>,
}

async fn start(config: ServeConfig, name: &str, dest: Arc<MemoryDestination>) -> Running {
    let source: Arc<dyn Source> = Arc::new(BenchSource {
        name: name.to_owned(),
    });
    let dest: Arc<dyn Destination> = dest;
    let server = Server::bind(config, vec![source], dest)
        .await
        .expect("the server starts");
    let addr = server.local_addr().expect("bound");
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        url: format!("http://{addr}/webhooks/{name}"),
        stop,
        task,
    }
}

/// One connection's share of the schedule: `(latency from due, acknowledged id)` per event.
async fn connection(
    url: String,
    first: u64,
    total: u64,
    period: Duration,
    start: Instant,
) -> Vec<(Duration, Option<String>)> {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut out = Vec::new();
    let mut i = first;
    while i < total {
        let due = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let id = format!("ack-{i}");
        let body = format!(
            "{{\"id\":\"{id}\",\"text\":\"a message of ordinary length, about sixty bytes\"}}"
        );
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let acked = match resp {
            Ok(r) if r.status().as_u16() == 200 => r
                .bytes()
                .await
                .is_ok_and(|b| std::str::from_utf8(&b).is_ok_and(|s| s.contains("\"accepted\""))),
            _ => false,
        };
        out.push((due.elapsed(), acked.then_some(id)));
        i += CONNECTIONS as u64;
    }
    out
}

/// How many of `ids` a fresh inbox already holds.
async fn durable(inbox: &dyn Inbox, source: &str, ids: &[String]) -> usize {
    let mut held = 0;
    let payload = serde_json::Value::Null;
    for chunk in ids.chunks(2048) {
        let puts = chunk.iter().map(|id| inbox.put(source, id, &payload));
        held += futures::future::join_all(puts)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(Stored::Duplicate)))
            .count();
    }
    held
}

async fn run(setup: Setup, rate: u64, secs: u64, pg_url: &str) {
    let total = rate * secs;
    let name = format!("bench_{}_{rate}", std::process::id());
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut config = ServeConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        inbox_dir: dir.path().to_owned(),
        shutdown_grace: "10s".parse().expect("interval"),
        ..ServeConfig::default()
    };
    if setup != Setup::File {
        config.inbox = InboxKind::Postgres;
        config.inbox_url = Some(pg_url.to_owned().into());
    }
    let dest = Arc::new(MemoryDestination::new());
    let mut servers = vec![start(config.clone(), &name, dest.clone()).await];
    if setup == Setup::TwoReplicas {
        servers.push(start(config.clone(), &name, dest.clone()).await);
    }
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start_at = Instant::now() + Duration::from_millis(200);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNECTIONS {
        let url = servers[c % servers.len()].url.clone();
        tasks.spawn(connection(url, c as u64, total, period, start_at));
    }
    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut acked = Vec::new();
    while let Some(r) = tasks.join_next().await {
        for (latency, id) in r.expect("a connection task") {
            latencies.push(latency);
            acked.extend(id);
        }
    }
    let sent_for = start_at.elapsed();
    // How long the workers take to process what is still in the inbox once the last event is
    // acknowledged: near zero when they keep up with the rate, growing with the run when not.
    let drain = Instant::now();
    while dest.count(&name, "items") < acked.len() && drain.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let caught_up = drain.elapsed();
    let processed = dest.count(&name, "items");
    for s in servers {
        let _ = s.stop.send(());
        s.task
            .await
            .expect("server task")
            .expect("the server stops cleanly");
    }
    let held = if setup == Setup::File {
        let inbox = FileInbox::open(dir.path(), Duration::from_secs(86_400)).expect("reopen");
        let held = durable(&inbox, &name, &acked).await;
        inbox.close().await.expect("close");
        held
    } else {
        let inbox = PostgresInbox::open(
            pg_url,
            Duration::from_secs(300),
            Duration::from_secs(86_400),
        )
        .await
        .expect("reopen");
        let held = durable(&inbox, &name, &acked).await;
        inbox.close().await.expect("close");
        cleanup(pg_url, &name).await;
        held
    };
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies
            .get(i.min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{:<28} {rate:>5}/s {:>5.1} s: sent {total}, acked {}, durable {held}, processed {} \
         ({:.1} s after the last ack); ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        setup.label(),
        sent_for.as_secs_f64(),
        acked.len(),
        processed,
        caught_up.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
}

/// Deletes the run's rows from the PostgreSQL inbox and vacuums it, so that the next run starts
/// on a table without this one's dead rows, as autovacuum would leave it between two loads (a
/// server with autovacuum off never would: every run then inherits every earlier run's).
async fn cleanup(url: &str, source: &str) {
    let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
        return;
    };
    tokio::spawn(conn);
    let _ = client
        .execute(
            "DELETE FROM talkhouse.serve_inbox WHERE source = $1",
            &[&source],
        )
        .await;
    let _ = client.batch_execute("VACUUM talkhouse.serve_inbox").await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // `cargo bench` adds `--bench`; numbers are rates.
        let mut rates: Vec<u64> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if rates.is_empty() {
            rates = vec![500, 1_500, 2_000];
        }
        let secs = std::env::var("BENCH_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10u64)
            .max(1);
        let pg_url = std::env::var("TALKHOUSE_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let pg = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls)
            .await
            .is_ok();
        if !pg {
            println!("PostgreSQL at {pg_url} cannot be reached: the file inbox only");
        }
        for setup in [Setup::File, Setup::Postgres, Setup::TwoReplicas] {
            if setup != Setup::File && !pg {
                continue;
            }
            for &rate in &rates {
                run(setup, rate, secs, &pg_url).await;
            }
        }
    });
}
