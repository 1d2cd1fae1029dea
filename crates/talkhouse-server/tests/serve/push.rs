//! Pushes: verification outcomes, deduplication, limits, health and metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;
use talkhouse_model::{Destination, DestinationError, Source};

use crate::*;

#[tokio::test]
async fn ping_is_acknowledged_and_duplicates_are_processed_once() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let srv = start(
        config(dir.path()),
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        dest.clone(),
    )
    .await;
    let c = client();
    let url = srv.url("/webhooks/t");

    let (status, body) = send(&c, &url, &json!({ "type": "PING" })).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")));

    let event = json!({ "id": "e-1", "text": "hello" });
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, body) = send(&c, &url, &event).await;
        assert_eq!(status, 200);
        answers.push(body["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(answers, ["accepted", "duplicate", "duplicate"]);
    // Concurrent duplicates of a fresh id: exactly one is stored.
    let posts = (0..8).map(|_| send(&c, &url, &json!({ "id": "e-2" })));
    let statuses: Vec<String> = futures::future::join_all(posts)
        .await
        .into_iter()
        .map(|(_, b)| b["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "accepted").count(),
        1,
        "{statuses:?}"
    );

    wait_for("both events processed", || dest.count("t", "items") == 2).await;
    // Give a wrongly re-queued duplicate time to show up before counting.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(probe.count("e-1"), 1);
    assert_eq!(probe.count("e-2"), 1);
    assert_eq!(dest.count("t", "items"), 2);
    srv.shutdown().await.unwrap();
}

#[tokio::test]
async fn rejections_follow_the_source_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let mut cfg = config(dir.path());
    cfg.max_body_bytes = 1024;
    let srv = start(
        cfg,
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        memory(),
    )
    .await;
    let c = client();

    let bad_auth = c
        .post(srv.url("/webhooks/t"))
        .header("authorization", "Bearer nope")
        .json(&json!({ "id": "x" }));
    assert_eq!(bad_auth.send().await.unwrap().status().as_u16(), 401);
    let no_auth = c.post(srv.url("/webhooks/t")).json(&json!({ "id": "x" }));
    assert_eq!(no_auth.send().await.unwrap().status().as_u16(), 401);
    let malformed = c
        .post(srv.url("/webhooks/t"))
        .header("authorization", TOKEN)
        .body("{not json");
    assert_eq!(malformed.send().await.unwrap().status().as_u16(), 400);
    let unknown = c
        .post(srv.url("/webhooks/nobody"))
        .header("authorization", TOKEN)
        .json(&json!({ "id": "x" }));
    assert_eq!(unknown.send().await.unwrap().status().as_u16(), 404);
    let big = json!({ "id": "big", "text": "x".repeat(2000) });
    let (status, _) = send(&c, &srv.url("/webhooks/t"), &big).await;
    assert_eq!(status, 413);
    // Routing by vendor reaches the first source of that vendor; triggers take GET too.
    let (status, body) = send(
        &c,
        &srv.url("/webhooks/testvendor"),
        &json!({ "id": "v-1" }),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let trigger = c
        .get(srv.url("/triggers/t?type=x"))
        .header("authorization", TOKEN)
        .body(r#"{"id":"g-1"}"#);
    assert_eq!(trigger.send().await.unwrap().status().as_u16(), 200);

    wait_for("accepted events processed", || probe.processed_total() == 2).await;
    assert_eq!(probe.count("x"), 0, "rejected events must not be processed");
    assert_eq!(probe.count("big"), 0);
    srv.shutdown().await.unwrap();
}

/// A destination that is down.
struct Down;

#[async_trait::async_trait]
impl Destination for Down {
    fn describe(&self) -> String {
        "down".into()
    }
    async fn init(&self) -> Result<(), DestinationError> {
        Err(DestinationError::Injected("down".into()))
    }
    async fn prepare(
        &self,
        _: &str,
        _: &[talkhouse_model::TableSpec],
    ) -> Result<(), DestinationError> {
        Err(DestinationError::Injected("down".into()))
    }
    async fn read_state(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<serde_json::Value>, DestinationError> {
        Err(DestinationError::Injected("down".into()))
    }
    async fn commit(
        &self,
        _: talkhouse_model::Commit,
    ) -> Result<talkhouse_model::CommitStats, DestinationError> {
        Err(DestinationError::Injected("down".into()))
    }
    async fn record_load(&self, _: &talkhouse_model::LoadRecord) -> Result<(), DestinationError> {
        Err(DestinationError::Injected("down".into()))
    }
    async fn query(&self, _: &str) -> Result<talkhouse_model::QueryRows, DestinationError> {
        Err(DestinationError::Injected("down".into()))
    }
    async fn execute(&self, _: &str) -> Result<(), DestinationError> {
        Err(DestinationError::Injected("down".into()))
    }
}

#[tokio::test]
async fn health_readiness_and_acks_while_the_destination_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let up = start(
        config(dir.path()),
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        memory(),
    )
    .await;
    let c = client();
    assert_eq!(
        c.get(up.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        c.get(up.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    up.shutdown().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let source: Arc<dyn Source> = Arc::new(TestSource::new("t", probe.clone()));
    let down = start(config(dir.path()), vec![source], Arc::new(Down)).await;
    assert_eq!(
        c.get(down.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        c.get(down.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        503
    );
    // Pushes are still taken: they wait in the inbox.
    let (status, _) = send(&c, &down.url("/webhooks/t"), &json!({ "id": "kept" })).await;
    assert_eq!(status, 200);
    let metrics = c
        .get(down.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_metrics(&metrics);
    assert_eq!(
        samples.get("talkhouse_inbox_depth"),
        Some(&1.0),
        "{metrics}"
    );
    down.shutdown().await.unwrap();
}

/// Parses the Prometheus text format strictly enough to catch malformed output: every sample
/// belongs to a family declared with `# TYPE`, label sets are well-formed, values are numbers.
/// Returns `name{labels}` → value.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut families = BTreeSet::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name: {line}"
        );
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels: {line}"
            );
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name: {line}"
                );
                assert!(
                    !v.trim_end_matches('"').contains('"') || v.contains("\\\""),
                    "bad label value: {line}"
                );
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(*f)))
            .unwrap_or(name);
        assert!(families.contains(family), "sample without # TYPE: {line}");
        out.insert(series.to_owned(), value);
    }
    out
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let srv = start(
        config(dir.path()),
        vec![Arc::new(TestSource::new("t", probe.clone()))],
        dest.clone(),
    )
    .await;
    let c = client();
    let url = srv.url("/webhooks/t");
    for i in 0..5 {
        send(&c, &url, &json!({ "id": format!("m-{i}") })).await;
    }
    send(&c, &url, &json!({ "id": "m-0" })).await;
    send(&c, &url, &json!({ "type": "PING" })).await;
    let bad = c
        .post(url.clone())
        .json(&json!({ "id": "zz" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    wait_for("five events processed", || dest.count("t", "items") == 5).await;
    wait_for("metrics settle", || probe.processed_total() == 5).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let text = c
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse_metrics(&text);
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("missing {k} in\n{text}"))
    };
    assert_eq!(get("talkhouse_events_received_total{source=\"t\"}"), 5.0);
    assert_eq!(get("talkhouse_events_duplicate_total{source=\"t\"}"), 1.0);
    assert_eq!(get("talkhouse_events_ignored_total{source=\"t\"}"), 1.0);
    assert_eq!(
        get("talkhouse_events_rejected_total{source=\"t\",status=\"401\"}"),
        1.0
    );
    assert_eq!(
        get("talkhouse_events_processed_total{source=\"t\"}"),
        f64::from(probe.processed_total())
    );
    assert_eq!(
        get("talkhouse_event_rows_total{source=\"t\"}"),
        dest.count("t", "items") as f64
    );
    assert_eq!(get("talkhouse_inbox_depth"), 0.0);
    assert_eq!(get("talkhouse_push_ack_seconds_count{source=\"t\"}"), 7.0);
    assert_eq!(
        get(
            "talkhouse_http_requests_total{route=\"/webhooks/{source}\",method=\"POST\",status=\"200\"}"
        ),
        7.0
    );
    srv.shutdown().await.unwrap();
}

/// A failing event in a batch holds back only itself: the others are committed, it is retried
/// and finally set aside as dead.
#[tokio::test]
async fn a_failing_event_is_retried_then_set_aside_without_blocking_others() {
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut source = TestSource::new("t", probe.clone());
    source.gate = Some(gate.clone());
    let mut cfg = config(dir.path());
    cfg.max_attempts = 2;
    cfg.workers = 1;
    let srv = start(cfg, vec![Arc::new(source)], dest.clone()).await;
    let c = client();
    let url = srv.url("/webhooks/t");
    send(&c, &url, &json!({ "id": "ok-0" })).await;
    send(&c, &url, &json!({ "id": "bad", "fail": true })).await;
    for i in 1..5 {
        send(&c, &url, &json!({ "id": format!("ok-{i}") })).await;
    }
    gate.add_permits(1000);
    wait_for("good events processed", || dest.count("t", "items") == 5).await;
    // Attempt 1 right away, attempt 2 after a 1 s backoff, then dead.
    let mut dead = 0.0;
    for _ in 0..200 {
        let text = c
            .get(srv.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        dead = parse_metrics(&text)
            .get("talkhouse_events_dead_total{source=\"t\"}")
            .copied()
            .unwrap_or(0.0);
        if dead > 0.0 {
            assert_eq!(parse_metrics(&text)["talkhouse_inbox_depth"], 0.0, "{text}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(dead, 1.0);
    srv.shutdown().await.unwrap();
    for i in 0..5 {
        assert!(probe.count(&format!("ok-{i}")) >= 1);
    }
    // The dead event is kept in the log (payload and error) but not processed again.
    let log = std::fs::read_to_string(dir.path().join("inbox.log")).unwrap();
    assert!(log.contains("this event always fails"), "{log}");
}
