//! Engine guarantees, against the in-memory destination.

use std::sync::Arc;

use talkhouse_model::{Destination, LoadStatus};
use talkhouse_sync::memory::MemoryDestination;
use talkhouse_sync::testing::CounterSource;
use talkhouse_sync::{BatchConfig, SyncOptions, sync_source};

fn opts(rows: usize) -> SyncOptions {
    SyncOptions {
        batch: BatchConfig {
            max_rows: rows,
            ..BatchConfig::default()
        },
        ..SyncOptions::default()
    }
}

#[tokio::test]
async fn failure_after_n_batches_then_rerun_is_exact() {
    let clean = Arc::new(MemoryDestination::new());
    let src = Arc::new(CounterSource::new("counter", 1_000, 50));
    assert!(
        sync_source(src.clone(), clean.clone(), &opts(120))
            .await
            .ok()
    );

    // Commit 0 of every sync records the source's row of `talkhouse.source_settings`.
    for n in [1, 2, 4, 8] {
        let dest = Arc::new(MemoryDestination::new());
        dest.fail_commits_after(n);
        let report = sync_source(
            src.clone(),
            dest.clone() as Arc<dyn Destination>,
            &opts(120),
        )
        .await;
        assert!(!report.ok(), "the injected failure must fail the stream");
        assert_eq!(report.streams[0].status, LoadStatus::Failed);
        dest.heal();
        assert!(
            sync_source(src.clone(), dest.clone(), &opts(120))
                .await
                .ok()
        );
        assert_eq!(
            dest.snapshot(),
            clean.snapshot(),
            "after failing at commit {n}"
        );
        assert_eq!(
            dest.state("counter", "items"),
            clean.state("counter", "items")
        );
    }
    assert_eq!(clean.count("counter", "items"), 1_000);
    assert_eq!(
        clean.count("counter", "item_tags"),
        (0..1_000).map(|i| i % 3).sum::<usize>()
    );
    assert_eq!(clean.count("talkhouse", "model_messages"), 1_000);
}

#[tokio::test]
async fn each_load_records_the_requests_its_own_run_made() {
    let dest = Arc::new(MemoryDestination::new());
    let first = Arc::new(CounterSource::new("counter", 300, 100));
    assert!(
        sync_source(first.clone(), dest.clone(), &opts(1000))
            .await
            .ok()
    );
    // The same source, 150 records later: the run resumes at 300 and reads two pages; the
    // source's counters keep running, the load records only what this run added.
    let second = Arc::new(CounterSource {
        pages_served: first.pages_served.clone(),
        ..CounterSource::new("counter", 450, 100)
    });
    assert!(sync_source(second, dest.clone(), &opts(1000)).await.ok());
    let requests: Vec<Option<u64>> = dest
        .loads()
        .iter()
        .map(|l| l.http.map(|h| h.attempts))
        .collect();
    assert_eq!(requests, vec![Some(3), Some(2)]);
}

#[tokio::test]
async fn second_run_with_nothing_new_changes_nothing_but_loads() {
    let dest = Arc::new(MemoryDestination::new());
    let src = Arc::new(CounterSource::new("counter", 300, 100));
    assert!(
        sync_source(src.clone(), dest.clone(), &opts(1000))
            .await
            .ok()
    );
    let before = (
        dest.rows("counter", "items"),
        dest.rows("counter", "item_tags"),
        dest.rows("talkhouse", "model_messages"),
    );
    // Re-read everything: every record arrives again, unchanged.
    let again = SyncOptions {
        full_refresh: true,
        ..opts(1000)
    };
    let report = sync_source(src.clone(), dest.clone(), &again).await;
    assert!(report.ok());
    assert_eq!(
        report.streams[0].rows,
        300 + (0..300).map(|i| i % 3).sum::<u64>()
    );
    let after = (
        dest.rows("counter", "items"),
        dest.rows("counter", "item_tags"),
        dest.rows("talkhouse", "model_messages"),
    );
    assert_eq!(
        before, after,
        "unchanged records must not be rewritten (_synced_at, _load_id included)"
    );
    assert_eq!(dest.loads().len(), 2);

    // A new version of every record does rewrite them.
    let v2 = Arc::new(CounterSource {
        version: 2,
        ..CounterSource::new("counter", 300, 100)
    });
    assert!(sync_source(v2, dest.clone(), &again).await.ok());
    let rewritten = dest.rows("counter", "items");
    assert!(rewritten.iter().all(|r| r.load_id != before.0[0].load_id));
}

#[tokio::test]
async fn malformed_records_are_quarantined_and_the_rest_loads() {
    let dest = Arc::new(MemoryDestination::new());
    let src = Arc::new(CounterSource {
        bad_every: 10,
        ..CounterSource::new("counter", 200, 30)
    });
    let report = sync_source(src, dest.clone(), &opts(1000)).await;
    assert!(report.ok());
    assert_eq!(report.streams[0].quarantined, 20);
    assert_eq!(dest.count("counter", "items"), 180);
    let q = dest.quarantine();
    assert_eq!(q.len(), 20);
    assert!(
        q.iter().all(|(s, st, r)| s == "counter"
            && st == "items"
            && r.location.starts_with("counter:"))
    );
    let loads = dest.loads();
    assert_eq!(loads[0].quarantined, 20);
    assert_eq!(loads[0].status, LoadStatus::Succeeded);
}

#[tokio::test]
async fn model_rows_get_the_source_name() {
    let dest = Arc::new(MemoryDestination::new());
    let src = Arc::new(CounterSource::new("counter_eu", 10, 10));
    assert!(sync_source(src, dest.clone(), &opts(1000)).await.ok());
    let rows = dest.rows("talkhouse", "model_messages");
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| r.cells.get("source")
                == Some(&talkhouse_model::Cell::Text("counter_eu".into())))
    );
}

/// Marks each model row with the length of its body: a stand-in for sentiment scoring.
struct BodyLength;

impl talkhouse_sync::Enricher for BodyLength {
    fn enrich(&self, row: &mut talkhouse_model::Row) {
        let len = row
            .get("body")
            .and_then(talkhouse_model::Cell::as_str)
            .map(str::len);
        if let Some(len) = len {
            row.put("sentiment", len as f64);
        }
    }
}

#[tokio::test]
async fn every_model_row_is_enriched_exactly_once_across_batches() {
    let dest = Arc::new(MemoryDestination::new());
    // 1,003 records in pages of 100, batches of 64 rows: enrichment of one batch overlaps the
    // commit of the one before, and the last, partial batch is enriched too.
    let src = Arc::new(CounterSource::new("counter", 1003, 100));
    let options = SyncOptions {
        enricher: Some(Arc::new(BodyLength)),
        ..opts(64)
    };
    assert!(sync_source(src, dest.clone(), &options).await.ok());
    let rows = dest.rows("talkhouse", "model_messages");
    assert_eq!(rows.len(), 1003);
    for r in &rows {
        let body = r.cells.get("body").and_then(talkhouse_model::Cell::as_str);
        let expected = body.map(|b| talkhouse_model::Cell::Float(b.len() as f64));
        assert_eq!(r.cells.get("sentiment"), expected.as_ref(), "{r:?}");
    }
    assert_eq!(
        dest.count("counter", "items"),
        1003,
        "vendor rows are not enriched"
    );
    assert!(
        dest.rows("counter", "items")
            .iter()
            .all(|r| !r.cells.contains_key("sentiment"))
    );
}
