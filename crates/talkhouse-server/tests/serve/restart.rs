//! Crashes, restarts and graceful shutdown: nothing acknowledged is lost, nothing is processed
//! twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;

use crate::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn done_lines(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("inbox.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("{\"done\""))
        .count()
}

/// The first server processes 5 of 40 acknowledged events and then dies with everything in
/// flight (its runtime is torn down: no shutdown code runs, like `kill -9`). The second server
/// on the same inbox processes the other 35, each exactly once, and not the first 5 again.
#[test]
fn crash_mid_processing_then_restart_processes_each_event_exactly_once() {
    const TOTAL: usize = 40;
    const FIRST: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();

    let rt = runtime();
    let gate = Arc::new(Semaphore::new(FIRST));
    let mut source = TestSource::new("t", probe.clone());
    source.gate = Some(gate.clone());
    // One event per claim here, so that the first five are marked done one by one (the second
    // server commits in batches, the default).
    let mut cfg = config(dir.path());
    cfg.batch_events = 1;
    let srv = rt.block_on(start(cfg, vec![Arc::new(source)], dest.clone()));
    rt.block_on(async {
        let c = client();
        for i in 0..TOTAL {
            let (status, body) = send(
                &c,
                &srv.url("/webhooks/t"),
                &json!({ "id": format!("r-{i}") }),
            )
            .await;
            assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
        }
        wait_for("the first events processed", || {
            probe.processed_total() as usize == FIRST
        })
        .await;
        wait_for("their done marks written", || {
            done_lines(dir.path()) == FIRST
        })
        .await;
    });
    // Workers are now blocked inside process_push on the closed gate: crash.
    rt.shutdown_background();
    let before: Vec<(String, u32)> = probe
        .processed
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(before.len(), FIRST);

    let rt = runtime();
    rt.block_on(async {
        let srv = start(
            config(dir.path()),
            vec![Arc::new(TestSource::new("t", probe.clone()))],
            dest.clone(),
        )
        .await;
        wait_for("every event processed", || {
            dest.count("t", "items") == TOTAL
        })
        .await;
        wait_for("the inbox drained", || {
            probe.processed_total() as usize == TOTAL
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        srv.shutdown().await.unwrap();
    });
    for i in 0..TOTAL {
        assert_eq!(probe.count(&format!("r-{i}")), 1, "event r-{i}");
    }
    assert_eq!(dest.count("t", "items"), TOTAL);
}

/// Graceful shutdown leaves unprocessed events in the inbox; the next start processes them.
#[tokio::test]
async fn graceful_shutdown_keeps_the_rest_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let mut source = TestSource::new("t", probe.clone());
    source.gate = Some(Arc::new(Semaphore::new(0)));
    let mut cfg = config(dir.path());
    cfg.shutdown_grace = "200ms".parse().unwrap();
    let srv = start(cfg, vec![Arc::new(source)], dest.clone()).await;
    let c = client();
    for i in 0..10 {
        send(
            &c,
            &srv.url("/webhooks/t"),
            &json!({ "id": format!("g-{i}") }),
        )
        .await;
    }
    drop(c);
    srv.shutdown().await.unwrap();
    assert_eq!(probe.processed_total(), 0);

    let srv = start(
        config(dir.path()),
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        dest.clone(),
    )
    .await;
    wait_for("kept events processed", || dest.count("t", "items") == 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.shutdown().await.unwrap();
    for i in 0..10 {
        assert_eq!(probe.count(&format!("g-{i}")), 1);
    }
    // A third start finds nothing to do, and still remembers the ids.
    let srv = start(
        config(dir.path()),
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        dest.clone(),
    )
    .await;
    let (_, body) = send(&client(), &srv.url("/webhooks/t"), &json!({ "id": "g-3" })).await;
    assert_eq!(body["status"].as_str(), Some("duplicate"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    srv.shutdown().await.unwrap();
    assert_eq!(probe.processed_total(), 10);
}

/// A torn last line (a crash in the middle of a write) is dropped; everything before it stays.
#[tokio::test]
async fn a_torn_log_line_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let line = |i: usize| {
        format!(
            "{{\"put\":{{\"seq\":{i},\"source\":\"t\",\"id\":\"p-{i}\",\"payload\":{{\"id\":\"p-{i}\"}},\"at\":\"2026-01-01T00:00:00Z\"}}}}\n"
        )
    };
    let mut text = format!("{}{}", line(1), line(2));
    text.push_str("{\"put\":{\"seq\":3,\"sou");
    std::fs::write(dir.path().join("inbox.log"), text).unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let srv = start(
        config(dir.path()),
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        dest.clone(),
    )
    .await;
    wait_for("stored events processed", || dest.count("t", "items") == 2).await;
    let (_, body) = send(&client(), &srv.url("/webhooks/t"), &json!({ "id": "p-9" })).await;
    assert_eq!(body["status"].as_str(), Some("accepted"));
    wait_for("the new one too", || dest.count("t", "items") == 3).await;
    srv.shutdown().await.unwrap();
}
