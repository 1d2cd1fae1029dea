//! Fault storms: a sync of all four vendor emulators while they answer 10% of requests with
//! 500, drop 5% of connections mid-answer, add 50 ms to every answer and enforce their rate
//! limits strictly (bursts of the vendors' own 429s), ends with exactly the rows of a sync of
//! the same data without faults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

mod support;

use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_emulator::{EmulatorOptions, FaultSpec, Vendor};

use support::{rows, sources_toml, sync, tables};

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_through_a_fault_storm_ends_exact() {
    let calm = EmulatorOptions::new(9, 0.05);
    let mut stormy = calm.clone();
    stormy.faults = FaultSpec::parse("http500=0.1,reset=0.05,latency=50ms").unwrap();
    stormy.strict_rate_limits = true;
    let mut calm_running = Vec::new();
    let mut storm_running = Vec::new();
    for v in Vendor::ALL {
        calm_running.push(talkhouse_emulator::start(v, &calm, 0).await.unwrap());
        storm_running.push(talkhouse_emulator::start(v, &stormy, 0).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let calm_path = dir.path().join("calm.duckdb");
    let storm_path = dir.path().join("storm.duckdb");
    sync(
        dir.path(),
        "calm",
        &format!(
            "kind = \"duckdb\"\npath = {:?}",
            calm_path.display().to_string()
        ),
        &sources_toml(&calm_running),
    );
    sync(
        dir.path(),
        "storm",
        &format!(
            "kind = \"duckdb\"\npath = {:?}",
            storm_path.display().to_string()
        ),
        &sources_toml(&storm_running),
    );
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let (mut requests, mut errors, mut resets) = (0, 0, 0);
    for r in &storm_running {
        let c = &r.faults.counters;
        eprintln!(
            "{}: {} requests, {} answered 500, {} dropped",
            r.vendor,
            load(&c.requests),
            load(&c.http500),
            load(&c.resets)
        );
        requests += load(&c.requests);
        errors += load(&c.http500);
        resets += load(&c.resets);
    }
    assert!(
        requests > 200 && errors > 10 && resets > 5,
        "the storm blew: {requests} {errors} {resets}"
    );
    for r in calm_running.into_iter().chain(storm_running) {
        r.stop().await;
    }

    let calm = DuckDbDestination::open(&calm_path).unwrap();
    let storm = DuckDbDestination::open(&storm_path).unwrap();
    let mut compared = 0;
    for (table, columns) in &tables(&calm).await {
        let want = rows(&calm, table, columns).await;
        let got = rows(&storm, table, columns).await;
        assert_eq!(got.len(), want.len(), "rows of {table}");
        assert!(got == want, "{table} differs after the storm");
        compared += want.len();
    }
    assert!(compared > 500, "{compared} rows compared");
}
