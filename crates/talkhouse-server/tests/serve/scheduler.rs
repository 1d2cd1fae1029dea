//! Scheduled syncs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::*;

/// Syncs take 250 ms and are due every 50 ms: runs follow each other (catch-up), never overlap.
#[tokio::test]
async fn a_source_never_syncs_twice_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let mut source = TestSource::new("t", probe.clone());
    source.sync_time = Duration::from_millis(250);
    let mut cfg = config(dir.path());
    cfg.schedule.insert("t".into(), "50ms".parse().unwrap());
    let dest = memory();
    let srv = start(cfg, vec![Arc::new(source)], dest.clone()).await;
    wait_for("three syncs", || probe.syncs.load(Ordering::SeqCst) >= 3).await;
    let text = client()
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    srv.shutdown().await.unwrap();
    assert_eq!(probe.max_running.load(Ordering::SeqCst), 1);
    let m = crate::push::parse_metrics(&text);
    assert!(
        m.get("talkhouse_sync_runs_total{source=\"t\",status=\"succeeded\"}")
            .copied()
            .unwrap_or(0.0)
            >= 2.0,
        "{text}"
    );
    assert!(
        m.contains_key("talkhouse_sync_duration_seconds_count{source=\"t\"}"),
        "{text}"
    );
    // Vendor HTTP counters come from the source at scrape time.
    let throttled = m["talkhouse_vendor_throttled_total{source=\"t\",vendor=\"testvendor\"}"];
    let requests = m["talkhouse_vendor_requests_total{source=\"t\",vendor=\"testvendor\"}"];
    assert!(throttled >= 2.0 && requests == 3.0 * throttled, "{text}");
    // The engine ran for real: loads recorded and the cursor committed.
    assert_eq!(
        dest.state("t", "items"),
        Some(serde_json::json!({ "at": 1 }))
    );
    assert!(dest.loads().len() >= 2);
}

/// The last start is remembered: a restart inside the interval does not sync again at once.
#[tokio::test]
async fn the_schedule_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let mut cfg = config(dir.path());
    cfg.schedule
        .insert("testvendor".into(), "1h".parse().unwrap());
    let srv = start(
        cfg.clone(),
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        memory(),
    )
    .await;
    wait_for("the first sync", || probe.syncs.load(Ordering::SeqCst) == 1).await;
    srv.shutdown().await.unwrap();
    let srv = start(
        cfg,
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        memory(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    srv.shutdown().await.unwrap();
    assert_eq!(probe.syncs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_schedule_naming_no_source_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.schedule.insert("zendesk".into(), "1h".parse().unwrap());
    let probe = Arc::new(Probe::default());
    let err =
        talkhouse_server::Server::bind(cfg, vec![Arc::new(TestSource::new("t", probe))], memory())
            .await
            .unwrap_err();
    assert!(err.to_string().contains("zendesk"), "{err}");
}

#[test]
fn the_serve_section_parses_strictly() {
    let cfg: talkhouse_server::ServeConfig = toml::from_str(
        r#"
        listen = "127.0.0.1:8080"
        schedule = { gladly = "1h", giosg = "15m" }
        inbox_dir = "/var/lib/talkhouse"
        max_body_bytes = 2048
        request_timeout = "5s"
        workers = 8
        "#,
    )
    .unwrap();
    assert_eq!(cfg.schedule["giosg"].0, Duration::from_secs(900));
    assert_eq!(cfg.request_timeout.0, Duration::from_secs(5));
    let err = toml::from_str::<talkhouse_server::ServeConfig>(
        "listen = \"127.0.0.1:1\"\nlisten_port = 3",
    )
    .unwrap_err();
    assert!(err.to_string().contains("listen_port"), "{err}");
    let err = toml::from_str::<talkhouse_server::ServeConfig>("schedule = { gladly = \"soon\" }")
        .unwrap_err();
    assert!(err.to_string().contains("soon"), "{err}");
}
