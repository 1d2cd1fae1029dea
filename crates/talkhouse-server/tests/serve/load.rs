//! A bounded loopback load test, ignored by default:
//!
//! ```text
//! cargo test --workspace --all-features --test serve -- --ignored load::load --nocapture
//! ```
//!
//! Sends `TALKHOUSE_LOAD_RATE` events per second (default 500) for `TALKHOUSE_LOAD_SECS` seconds
//! (default 20) on an open-loop schedule to a server on 127.0.0.1 with the file inbox, then waits
//! until everything acknowledged is in the destination. `TALKHOUSE_LOAD_INBOX=postgres` uses the
//! PostgreSQL inbox at `TALKHOUSE_TEST_POSTGRES_URL` instead of the file inbox. Prints acknowledgement latency
//! percentiles and the number of lost events (must be zero).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::*;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: run on purpose, see the module doc"]
#[allow(clippy::print_stderr, clippy::cast_precision_loss)]
async fn load() {
    let rate = env_or("TALKHOUSE_LOAD_RATE", 500).max(1);
    let secs = env_or("TALKHOUSE_LOAD_SECS", 20).clamp(1, 120);
    let total = rate * secs;
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let mut cfg = config(dir.path());
    let pg = std::env::var("TALKHOUSE_LOAD_INBOX").as_deref() == Ok("postgres");
    let name = if pg {
        format!("load_{}", std::process::id())
    } else {
        "t".to_owned()
    };
    if pg {
        cfg.inbox = talkhouse_server::InboxKind::Postgres;
        let url =
            std::env::var("TALKHOUSE_TEST_POSTGRES_URL").expect("TALKHOUSE_TEST_POSTGRES_URL");
        cfg.inbox_url = Some(url.into());
    }
    let srv = start(
        cfg,
        vec![Arc::new(TestSource::new(&name, probe.clone()))],
        dest.clone(),
    )
    .await;
    let c = client();
    let url = srv.url(&format!("/webhooks/{name}"));
    let start = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + period * u32::try_from(i).unwrap();
        let (c, url) = (c.clone(), url.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(due).await;
            let body = json!({ "id": format!("load-{i}"), "text": "a message of ordinary length, about sixty bytes" });
            let t = Instant::now();
            let resp = c.post(&url).header("authorization", TOKEN).json(&body).send().await;
            let ok = resp.as_ref().is_ok_and(|r| r.status().as_u16() == 200);
            (ok, t.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap());
    let mut failed = 0u64;
    while let Some(r) = tasks.join_next().await {
        let (ok, d) = r.unwrap();
        if ok {
            latencies.push(d);
        } else {
            failed += 1;
        }
    }
    let sent_for = start.elapsed();
    let acked = latencies.len();
    let drain = Instant::now();
    for _ in 0..3000 {
        if dest.count(&name, "items") >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_in = drain.elapsed();
    let stored = dest.count(&name, "items");
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(latencies.len() - 1)]
    };
    eprintln!(
        "load ({} inbox): {total} events at {rate}/s over {:.1}s: acked {acked}, failed {failed}; ack latency p50 {:?} p90 {:?} p99 {:?} max {:?}; \
         all processed {:?} after the last ack; in the destination {stored}; lost {}",
        if pg { "postgres" } else { "file" },
        sent_for.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies[latencies.len() - 1],
        drained_in,
        acked.saturating_sub(stored),
    );
    srv.shutdown().await.unwrap();
    if pg && let Ok(url) = std::env::var("TALKHOUSE_TEST_POSTGRES_URL") {
        crate::postgres::cleanup(&url, &name).await;
    }
    assert_eq!(failed, 0);
    assert_eq!(stored, acked, "acknowledged events lost");
    assert_eq!(
        probe.processed_total() as usize,
        acked,
        "events processed more than once"
    );
}
