//! Scale-out: two servers sharing a PostgreSQL inbox (and one destination).
//!
//! Needs `TALKHOUSE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); skipped
//! with a message when unset, unless `CI=true`, where it fails.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use talkhouse_model::Source;
use talkhouse_server::inbox::postgres::{PostgresInbox, autovacuum_off};
use talkhouse_server::{Inbox, InboxKind, ServeConfig};

use crate::*;

#[allow(clippy::print_stderr)]
fn postgres_url() -> Option<String> {
    match std::env::var("TALKHOUSE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TALKHOUSE_TEST_POSTGRES_URL must be set in CI"
            );
            eprintln!("skipped: set TALKHOUSE_TEST_POSTGRES_URL to run the PostgreSQL inbox tests");
            None
        }
    }
}

fn pg_config(url: &str, dir: &std::path::Path) -> ServeConfig {
    let mut cfg = config(dir);
    cfg.inbox = InboxKind::Postgres;
    cfg.inbox_url = Some(url.into());
    cfg
}

/// A connection of the test's own to the inbox's database.
async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

pub async fn cleanup(url: &str, source: &str) {
    let client = pg_client(url).await;
    for table in ["serve_inbox", "serve_schedule"] {
        let sql = format!("DELETE FROM talkhouse.{table} WHERE source = $1");
        let _ = client.execute(sql.as_str(), &[&source]).await;
    }
}

/// Events of `source` the inbox holds that are not marked done.
async fn not_done(url: &str, source: &str) -> i64 {
    pg_client(url)
        .await
        .query_one(
            "SELECT count(*) FROM talkhouse.serve_inbox WHERE source = $1 AND status <> 'done'",
            &[&source],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn two_instances_share_the_inbox_and_never_overlap_syncs() {
    let Some(url) = postgres_url() else { return };
    let name = format!("pg_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let make = || -> Arc<dyn Source> {
        let mut s = TestSource::new(&name, probe.clone());
        s.sync_time = Duration::from_millis(200);
        Arc::new(s)
    };
    let mut cfg = pg_config(&url, dir.path());
    cfg.schedule.insert(name.clone(), "50ms".parse().unwrap());
    cfg.workers = 3;
    let a = start(cfg.clone(), vec![make()], dest.clone()).await;
    let b = start(cfg, vec![make()], dest.clone()).await;
    let c = client();
    const TOTAL: usize = 200;
    let mut posts = Vec::new();
    for i in 0..TOTAL {
        // Every event goes to both instances: one stores it, the other sees a duplicate.
        let body = json!({ "id": format!("pg-{i}") });
        posts.push(send(&c, &a.url(&format!("/webhooks/{name}")), &body));
        posts.push(send(&c, &b.url(&format!("/webhooks/{name}")), &body));
    }
    let answers = futures::future::join_all(posts).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    let accepted = answers
        .iter()
        .filter(|(_, b)| b["status"] == "accepted")
        .count();
    assert_eq!(accepted, TOTAL);
    wait_for("every event processed", || {
        dest.count(&name, "items") == TOTAL
    })
    .await;
    wait_for("several syncs", || probe.syncs.load(Ordering::SeqCst) >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    for i in 0..TOTAL {
        assert_eq!(probe.count(&format!("pg-{i}")), 1, "event pg-{i}");
    }
    assert_eq!(
        probe.max_running.load(Ordering::SeqCst),
        1,
        "two syncs of one source overlapped"
    );
    // Processed in batches, and every batch marked done (or it would be claimed again once its
    // lease lapsed).
    assert_eq!(not_done(&url, &name).await, 0);
    cleanup(&url, &name).await;
}

/// A claim whose instance died returns after the lease; a restart processes what was stored.
#[tokio::test]
async fn events_survive_an_instance_and_are_processed_once() {
    let Some(url) = postgres_url() else { return };
    let name = format!("pgr_{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let probe = Arc::new(Probe::default());
    let dest = memory();
    let mut gated = TestSource::new(&name, probe.clone());
    gated.gate = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    let mut cfg = pg_config(&url, dir.path());
    cfg.lease = "1s".parse().unwrap();
    cfg.shutdown_grace = "100ms".parse().unwrap();
    let a = start(cfg.clone(), vec![Arc::new(gated)], dest.clone()).await;
    let c = client();
    for i in 0..20 {
        send(
            &c,
            &a.url(&format!("/webhooks/{name}")),
            &json!({ "id": format!("k-{i}") }),
        )
        .await;
    }
    // Stops with claims held (workers stuck on the gate): those come back after the lease.
    a.shutdown().await.unwrap();
    let b = start(
        cfg,
        vec![Arc::new(TestSource::new(&name, probe.clone()))],
        dest.clone(),
    )
    .await;
    wait_for("every event processed", || dest.count(&name, "items") == 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.shutdown().await.unwrap();
    for i in 0..20 {
        assert_eq!(probe.count(&format!("k-{i}")), 1, "event k-{i}");
    }
    cleanup(&url, &name).await;
}

/// The autovacuum setting is read for the server and for the table.
#[tokio::test]
async fn autovacuum_is_read_for_the_server_and_the_table() {
    let Some(url) = postgres_url() else { return };
    let client = pg_client(&url).await;
    let table = format!("public.talkhouse_autovacuum_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int) WITH (autovacuum_enabled = off)"
        ))
        .await
        .unwrap();
    assert!(autovacuum_off(&client, &table).await.unwrap());
    client
        .batch_execute(&format!("ALTER TABLE {table} RESET (autovacuum_enabled)"))
        .await
        .unwrap();
    let server: String = client
        .query_one("SHOW autovacuum", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        autovacuum_off(&client, &table).await.unwrap(),
        server == "off"
    );
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Where autovacuum leaves the inbox table alone, an instance vacuums it when it opens.
#[tokio::test]
async fn an_inbox_vacuums_its_table_where_autovacuum_does_not() {
    let Some(url) = postgres_url() else { return };
    let client = pg_client(&url).await;
    let open = || PostgresInbox::open(&url, Duration::from_secs(60), Duration::from_secs(3600));
    // The table exists once an inbox has opened; then autovacuum is turned off for it until the
    // end of the test (other tests' instances vacuuming it meanwhile is harmless).
    drop(open().await.unwrap());
    client
        .batch_execute("ALTER TABLE talkhouse.serve_inbox SET (autovacuum_enabled = false)")
        .await
        .unwrap();
    let vacuums = || async {
        let n: i64 = client
            .query_one(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'talkhouse.serve_inbox'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n
    };
    let before = vacuums().await;
    let inbox = open().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while vacuums().await <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the inbox table was not vacuumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    inbox.close().await.unwrap();
    client
        .batch_execute("ALTER TABLE talkhouse.serve_inbox RESET (autovacuum_enabled)")
        .await
        .unwrap();
}
