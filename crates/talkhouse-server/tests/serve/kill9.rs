//! `kill -9` of a real server process during processing, then a restart on the same inbox.
//!
//! The test re-runs its own binary as the child (`child_server`, ignored unless
//! `TALKHOUSE_KILL9_DIR` is set), sends it events, SIGKILLs it while it is processing (each event
//! takes 10 ms), then processes the rest in-process. The child and the restart log every finished
//! `process_push` to one file, so the test sees both lives.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use talkhouse_model::{
    Event, EventStream, PushRequest, PushVerdict, Row, Source, StreamContext, StreamDef, TableSpec,
};

use crate::*;

const TOTAL: usize = 300;

/// Wraps the test source; appends `id\n` to `log` after each processed event.
struct Logged {
    inner: TestSource,
    log: std::path::PathBuf,
    delay: Duration,
}

impl Source for Logged {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn vendor(&self) -> &'static str {
        self.inner.vendor()
    }
    fn tables(&self) -> Vec<TableSpec> {
        self.inner.tables()
    }
    fn streams(&self) -> Vec<StreamDef> {
        self.inner.streams()
    }
    fn run_stream(&self, stream: &str, ctx: StreamContext) -> EventStream<'_> {
        self.inner.run_stream(stream, ctx)
    }
    fn verify_push(&self, request: &PushRequest) -> PushVerdict {
        self.inner.verify_push(request)
    }
    fn process_push(&self, payload: serde_json::Value) -> EventStream<'_> {
        let log = self.log.clone();
        let delay = self.delay;
        Box::pin(
            futures::stream::once(async move {
                tokio::time::sleep(delay).await;
                let id = payload["id"].as_str().unwrap_or_default().to_owned();
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                writeln!(f, "{id}").unwrap();
                Ok(Event::Records(vec![
                    Row::new(ITEMS).set("id", id).with_raw(payload.to_string()),
                ]))
            })
            .boxed(),
        )
    }
}

/// The child: serves until killed. Only runs when the parent sets `TALKHOUSE_KILL9_DIR`.
#[tokio::test]
#[ignore = "child process of kill9_during_processing"]
async fn child_server() {
    let Ok(dir) = std::env::var("TALKHOUSE_KILL9_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let source = Logged {
        inner: TestSource::new("t", Arc::new(Probe::default())),
        log: dir.join("processed.log"),
        delay: Duration::from_millis(10),
    };
    let mut cfg = config(&dir.join("inbox"));
    cfg.workers = 1;
    cfg.batch_events = 1;
    let srv = start(cfg, vec![Arc::new(source)], memory()).await;
    std::fs::write(dir.join("port.tmp"), srv.addr.port().to_string()).unwrap();
    std::fs::rename(dir.join("port.tmp"), dir.join("port")).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test]
#[allow(clippy::print_stderr)]
async fn kill9_during_processing_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "kill9::child_server", "--nocapture"])
        .env("TALKHOUSE_KILL9_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let port_file = dir.path().join("port");
    wait_for("the child server", || port_file.exists()).await;
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .parse()
        .unwrap();
    let c = client();
    let url = format!("http://127.0.0.1:{port}/webhooks/t");
    let posts = (0..TOTAL).map(|i| send(&c, &url, &json!({ "id": format!("k-{i}") })));
    let answers = futures::future::join_all(posts).await;
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 200 && b["status"] == "accepted")
    );
    let log = dir.path().join("processed.log");
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for("processing under way", || lines(&log) >= 20).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = lines(&log);
    assert!(before < TOTAL, "the child finished before it was killed");

    let source = Logged {
        inner: TestSource::new("t", Arc::new(Probe::default())),
        log: log.clone(),
        delay: Duration::ZERO,
    };
    let dest = memory();
    let srv = start(
        config(&dir.path().join("inbox")),
        vec![Arc::new(source)],
        dest.clone(),
    )
    .await;
    let distinct = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    wait_for("the rest processed", || distinct(&log) == TOTAL).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    srv.shutdown().await.unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    let mut counts = std::collections::BTreeMap::<&str, u32>::new();
    for id in text.lines() {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "kill9: {before} processed before SIGKILL, {} after; processed twice: {twice:?}",
        text.lines().count() - before
    );
    assert_eq!(counts.len(), TOTAL, "an acknowledged event was lost");
    // Only what was in flight at the kill may run again: one worker, one event per claim, plus
    // a done mark still queued for the writer.
    assert!(twice.len() <= 2, "{twice:?}");
}
