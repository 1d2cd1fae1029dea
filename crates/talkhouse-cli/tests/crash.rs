//! Crash consistency: `talkhouse sync` of all four vendor emulators, killed with SIGKILL at
//! random moments again and again (each run resuming from what the last one committed), then
//! run to the end, leaves exactly the rows of one clean run, on DuckDB, PostgreSQL and Delta
//! Lake.
//!
//! `TALKHOUSE_CRASH_KILLS` (default 20) sets the kills per destination and
//! `TALKHOUSE_CRASH_SEED` the moments (printed, so a failure can be replayed). Needs the
//! `delta` feature and PostgreSQL (`TALKHOUSE_TEST_POSTGRES_URL`; skipped without it, except
//! under `CI=true`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use talkhouse_destinations::delta::DeltaDestination;
use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_destinations::postgres::connect;
use talkhouse_emulator::{EmulatorOptions, Vendor};
use talkhouse_model::Destination;

use support::{FreshDatabase, postgres_url, rows, sources_toml, sync, tables, write_config};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts `talkhouse sync` and kills it after `after`; returns `None` if it was still running
/// (killed), else how long it took to finish by itself.
fn sync_killed_after(dir: &Path, config: &Path, after: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
        .args(["sync", "--config"])
        .arg(config)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no goodbye.
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

/// Quarantined records as a set (a rerun may quarantine a record again: the SQL
/// destinations keep a log).
async fn quarantine(dest: &dyn Destination) -> BTreeSet<String> {
    dest.query("SELECT source, stream, location, error FROM talkhouse.quarantine")
        .await
        .unwrap()
        .into_iter()
        .map(|r| serde_json::Value::Object(r).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_syncs_resume_to_the_rows_of_a_clean_run() {
    let Some(base) = postgres_url() else { return };
    let kills = env_u64("TALKHOUSE_CRASH_KILLS", 20);
    let seed = env_u64(
        "TALKHOUSE_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1),
    );
    eprintln!("crash test: {kills} kills per destination, TALKHOUSE_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let opts = EmulatorOptions::new(3, 0.05);
    let mut running = Vec::new();
    for v in Vendor::ALL {
        running.push(talkhouse_emulator::start(v, &opts, 0).await.unwrap());
    }
    let sources = sources_toml(&running);
    let dir = tempfile::tempdir().unwrap();

    // The reference: one clean run.
    let clean_path = dir.path().join("clean.duckdb");
    let started = Instant::now();
    sync(
        dir.path(),
        "clean",
        &format!(
            "kind = \"duckdb\"\npath = {:?}",
            clean_path.display().to_string()
        ),
        &sources,
    );
    let clean_took = started.elapsed();
    eprintln!("clean run: {:.1} s", clean_took.as_secs_f64());

    let db = FreshDatabase::create(&base, "th_crash").await;
    let pg_url = db.url.clone();
    let duck_path = dir.path().join("crashed.duckdb");
    let delta_root = dir.path().join("delta");
    let destinations = [
        (
            "duckdb",
            format!(
                "kind = \"duckdb\"\npath = {:?}",
                duck_path.display().to_string()
            ),
        ),
        (
            "postgres",
            format!("kind = \"postgres\"\nurl = {:?}", pg_url.to_string()),
        ),
        (
            "delta",
            format!(
                "kind = \"delta\"\nroot = {:?}",
                delta_root.display().to_string()
            ),
        ),
    ];

    for (name, destination) in &destinations {
        let config = write_config(dir.path(), name, destination, &sources);
        // Each run resumes where the last one was killed, so short runs (2–12% of a clean
        // run each) add up to the whole sync and most kills land while rows are being written.
        // Once a run finishes by itself, later runs only re-check: aim within its length.
        let mut bound = clean_took;
        let mut share = 0.02..0.12;
        let mut hit = 0;
        for _ in 0..kills {
            let after = bound.mul_f64(rng.random_range(share.clone()));
            match sync_killed_after(dir.path(), &config, after) {
                None => hit += 1,
                Some(took) => {
                    bound = took;
                    share = 0.05..0.95;
                }
            }
        }
        eprintln!("{name}: {hit} of {kills} runs killed mid-sync");
        assert!(
            hit * 2 >= kills,
            "{name}: too few runs were killed while working"
        );
        // Then run it to the end.
        sync(dir.path(), name, destination, &sources);
    }
    for r in running {
        r.stop().await;
    }

    let clean = DuckDbDestination::open(&clean_path).unwrap();
    let crashed: Vec<(&str, Box<dyn Destination>)> = vec![
        (
            "duckdb",
            Box::new(DuckDbDestination::open(&duck_path).unwrap()),
        ),
        (
            "postgres",
            Box::new(connect(pg_url.as_str()).await.unwrap()),
        ),
        (
            "delta",
            Box::new(DeltaDestination::open(&delta_root.display().to_string()).unwrap()),
        ),
    ];
    let tables = tables(&clean).await;
    let clean_quarantine = quarantine(&clean).await;
    for (name, dest) in &crashed {
        for (table, columns) in &tables {
            let want = rows(&clean, table, columns).await;
            let got = rows(&**dest, table, columns).await;
            assert_eq!(got.len(), want.len(), "{name}: rows of {table}");
            assert!(got == want, "{name}: {table} differs from the clean run");
        }
        assert_eq!(
            quarantine(&**dest).await,
            clean_quarantine,
            "{name}: quarantine"
        );
        eprintln!("{name}: every table equals the clean run");
    }
    drop(crashed);
    db.drop_it().await;
}
