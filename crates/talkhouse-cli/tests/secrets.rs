//! Secrets never reach the output: a full sync of all four vendor emulators with every log
//! level on (`RUST_LOG=trace`, text and JSON logs), with every kind of secret the configuration
//! takes — API tokens, the Giosg private key and app secret, Gladly's webhook password, the
//! PostgreSQL password — and not one of them appears in stdout or stderr.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

mod support;

use std::process::Command;

use talkhouse_emulator::{EmulatorOptions, Vendor};

use support::{FreshDatabase, postgres_url, sources_toml};

const WEBHOOK_PASSWORD: &str = "wh-pa55-9f2c61d0";
const PG_PASSWORD: &str = "pg-pa55-77e1b3aa";

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_level_log_of_a_full_sync_holds_no_secret() {
    let opts = EmulatorOptions::new(21, 0.03);
    let mut running = Vec::new();
    for v in Vendor::ALL {
        running.push(talkhouse_emulator::start(v, &opts, 0).await.unwrap());
    }
    // Every secret value the configuration holds; the PEM by each of its base64 lines.
    let mut secrets: Vec<String> = vec![WEBHOOK_PASSWORD.into()];
    for r in &running {
        for (key, value) in &r.credentials.fields {
            let Some(text) = value.as_str() else { continue };
            if *key == "private_key_pem" {
                secrets.extend(
                    text.lines()
                        .filter(|l| !l.starts_with("-----") && l.len() > 20)
                        .map(str::to_owned),
                );
            } else if ["token", "app_secret", "private_key_passphrase"].contains(key) {
                secrets.push(text.to_owned());
            }
        }
    }
    assert!(secrets.len() >= 8, "{secrets:?}");

    let dir = tempfile::tempdir().unwrap();
    let db = match postgres_url() {
        Some(base) => Some(FreshDatabase::create(&base, "th_secrets").await),
        None => None,
    };
    let destination = match &db {
        Some(db) => {
            // Trust auth ignores the password, but talkhouse still holds and sends it.
            let mut url = db.url.clone();
            url.set_password(Some(PG_PASSWORD)).unwrap();
            secrets.push(PG_PASSWORD.into());
            format!("kind = \"postgres\"\nurl = {:?}", url.to_string())
        }
        None => "kind = \"duckdb\"\npath = \"warehouse.duckdb\"".to_owned(),
    };
    let mut sources = sources_toml(&running);
    sources = sources.replacen(
        "[sources.gladly]\n",
        &format!("[sources.gladly]\nwebhook_username = \"gladly\"\nwebhook_password = \"{WEBHOOK_PASSWORD}\"\n"),
        1,
    );
    std::fs::write(
        dir.path().join("talkhouse.toml"),
        format!("[destination]\n{destination}\n\n{sources}"),
    )
    .unwrap();

    for format in ["text", "json"] {
        let out = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
            .args(["--log-format", format, "sync", "--full-refresh"])
            .current_dir(dir.path())
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sync failed:\n{stderr}");
        assert!(
            stderr.lines().count() > 1_000,
            "a trace log has many lines, got {}",
            stderr.lines().count()
        );
        for secret in &secrets {
            assert!(
                !stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()),
                "a secret ({}…) reached the {format} log",
                &secret[..4]
            );
        }
        eprintln!(
            "{format}: {} log lines, none holds any of {} secrets",
            stderr.lines().count(),
            secrets.len()
        );
    }
    // The same sync writes its secrets nowhere in the warehouse either.
    let status = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
        .args(["status", "--format", "json"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(secrets.iter().all(|s| !text.contains(s.as_str())));
    for r in running {
        r.stop().await;
    }
    if let Some(db) = db {
        db.drop_it().await;
    }
}
