//! Delta Lake on an S3-compatible object store: `talkhouse sync` writes the Ada and Ultimate
//! emulators' data to `s3://…` on a local `moto` server, and an independent reader (Python's
//! `deltalake`, from the delta-rs project's Python package, not this crate's code path) reads
//! every table back with the counts the emulators declare.
//!
//! Needs `TALKHOUSE_TEST_PYTHON`: a Python with `moto[server]`, `boto3` and `deltalake`
//! (`scripts/test` prepares one in a virtualenv beside the build cache). Without it the test
//! skips, except under `CI=true`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use talkhouse_emulator::{EmulatorOptions, GroundTruth, Vendor};

fn python() -> Option<String> {
    match std::env::var("TALKHOUSE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TALKHOUSE_TEST_PYTHON is not set, and CI=true requires the Delta Lake S3 test to run"
            );
            eprintln!("skipping: TALKHOUSE_TEST_PYTHON is not set (see scripts/test)");
            None
        }
    }
}

/// The moto server, stopped on drop.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CREDENTIALS: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ALLOW_HTTP", "true"),
];

const MAKE_BUCKET: &str = "
import sys, boto3
s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',
                  aws_access_key_id='testing', aws_secret_access_key='testing')
s3.create_bucket(Bucket='lake')
";

const READ_BACK: &str = "
import sys, json
from deltalake import DeltaTable
endpoint, root, tables = sys.argv[1], sys.argv[2], sys.argv[3:]
opts = {'AWS_ENDPOINT_URL': endpoint, 'AWS_ACCESS_KEY_ID': 'testing',
        'AWS_SECRET_ACCESS_KEY': 'testing', 'AWS_REGION': 'us-east-1', 'AWS_ALLOW_HTTP': 'true'}
out = {}
for t in tables:
    dt = DeltaTable(f'{root}/{t.replace(\".\", \"/\")}', storage_options=opts)
    out[t] = {'rows': dt.to_pyarrow_dataset().count_rows(), 'version': dt.version(),
              'partitions': dt.metadata().partition_columns}
print(json.dumps(out))
";

async fn truth(base_url: &str) -> GroundTruth {
    let client = talkhouse_http::Client::new(talkhouse_http::ClientConfig::new(
        "emulator",
        talkhouse_http::Auth::None,
    ))
    .unwrap();
    let v = client
        .json(talkhouse_http::Request::get(
            format!("{base_url}/_emulator/truth"),
            "truth",
        ))
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_on_s3_read_back_by_an_independent_reader() {
    let Some(python) = python() else { return };
    let port = support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto_server = std::path::Path::new(&python).with_file_name("moto_server");
    let _moto = Moto(
        Command::new(&moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto_server.display())),
    );
    let started = Instant::now();
    loop {
        let made = Command::new(&python)
            .args(["-c", MAKE_BUCKET, &endpoint])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if made.success() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not come up"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let opts = EmulatorOptions::new(5, 0.1);
    let ada = talkhouse_emulator::start(Vendor::Ada, &opts, 0)
        .await
        .unwrap();
    let ultimate = talkhouse_emulator::start(Vendor::Ultimate, &opts, 0)
        .await
        .unwrap();
    let config = format!(
        "[destination]\nkind = \"delta\"\nroot = \"s3://lake/warehouse\"\n\n{}",
        support::sources_toml([&ada, &ultimate])
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("talkhouse.toml"), &config).unwrap();
    let mut sync = Command::new(env!("CARGO_BIN_EXE_talkhouse"));
    sync.arg("sync")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("AWS_ENDPOINT_URL", &endpoint);
    for (k, v) in CREDENTIALS {
        sync.env(k, v);
    }
    let out = sync.output().unwrap();
    assert!(
        out.status.success(),
        "sync to S3 failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (schema, r, tables) in [
        ("ada", &ada, &["conversations", "messages"][..]),
        (
            "ultimate",
            &ultimate,
            &[
                "conversations",
                "triggered_intent_replies",
                "triggered_replies",
            ][..],
        ),
    ] {
        let t = truth(&r.base_url).await;
        for table in tables {
            expected.insert(format!("{schema}.{table}"), t.tables[*table]);
        }
    }
    let mut read = Command::new(&python);
    read.args(["-c", READ_BACK, &endpoint, "s3://lake/warehouse"])
        .args(expected.keys());
    let out = read.output().unwrap();
    assert!(
        out.status.success(),
        "the Python reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (table, rows) in &expected {
        assert!(*rows > 0, "{table} should have rows");
        assert_eq!(got[table]["rows"].as_u64(), Some(*rows), "{table}: {got}");
    }
    assert_eq!(
        got["ada.messages"]["partitions"],
        serde_json::json!(["_day"]),
        "messages are partitioned by day"
    );
    eprintln!("read back from S3 by Python deltalake: {got}");
    ada.stop().await;
    ultimate.stop().await;
}
