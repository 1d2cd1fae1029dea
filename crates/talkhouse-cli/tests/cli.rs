//! The `talkhouse` binary end to end: help, configuration errors, demo, status, report.

use std::path::Path;
use std::process::{Command, Output};

fn talkhouse(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talkhouse"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run talkhouse")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_command_and_option() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = talkhouse(dir.path(), &["--help"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    for cmd in [
        "demo", "sync", "serve", "load", "report", "status", "emulate", "purge", "giosg",
    ] {
        assert!(out.contains(cmd), "--help lacks {cmd}:\n{out}");
    }
    let o = talkhouse(dir.path(), &["sync", "--help"]);
    let (out, _) = text(&o);
    for opt in ["--config", "--source", "--full-refresh"] {
        assert!(out.contains(opt), "sync --help lacks {opt}:\n{out}");
    }
}

#[test]
fn a_config_error_names_the_key_and_line_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("talkhouse.toml"),
        "[destination]\nkind = \"duckdb\"\n\n[sources.ada]\ntoken = \"t\"\ntokn = \"x\"\n",
    )
    .expect("write config");
    let o = talkhouse(dir.path(), &["sync"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("tokn") && err.contains(":6") && err.contains("hint:"),
        "{err}"
    );

    let o = talkhouse(dir.path(), &["sync", "--config", "missing.toml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn secrets_never_reach_the_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("talkhouse.toml"),
        "[sources.ada]\nbase_url = \"http://127.0.0.1:9\"\ntoken = \"sup3r-s3cret-t0ken\"\n",
    )
    .expect("write config");
    let o = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
        .args(["sync"])
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .output()
        .expect("run");
    let (out, err) = text(&o);
    assert!(
        !out.contains("sup3r-s3cret-t0ken") && !err.contains("sup3r-s3cret-t0ken"),
        "{err}"
    );
}

#[test]
fn demo_fills_every_vendor_schema_then_status_and_report_read_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = talkhouse(dir.path(), &["demo", "--scale", "0.05"]);
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "demo failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    for vendor in ["gladly", "giosg", "ada", "ultimate"] {
        assert!(out.contains(vendor), "demo output lacks {vendor}:\n{out}");
    }
    // Quarantined records are summed up per stream, not logged one by one, and the demo
    // keeps the terminal for progress and the report.
    assert!(
        !err.contains("record quarantined"),
        "one line per quarantined record:\n{err}"
    );
    assert!(err.lines().count() <= 20, "stderr:\n{err}");
    let o = talkhouse(
        dir.path(),
        &[
            "status",
            "--config",
            "talkhouse-demo.toml",
            "--format",
            "json",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("status json");
    let streams = status["streams"].as_array().expect("streams");
    for vendor in ["gladly", "giosg", "ada", "ultimate"] {
        let rows: i64 = streams
            .iter()
            .filter(|s| s["source"] == vendor)
            .map(|s| s["rows"].as_i64().unwrap_or(0))
            .sum();
        assert!(rows > 0, "no rows for {vendor}: {status}");
        // Every load records the vendor requests its stream made.
        let requests: i64 = streams
            .iter()
            .filter(|s| s["source"] == vendor)
            .map(|s| s["requests"].as_i64().expect("requests recorded"))
            .sum();
        assert!(requests > 0, "no requests recorded for {vendor}: {status}");
    }
    let o = talkhouse(
        dir.path(),
        &[
            "report",
            "--config",
            "talkhouse-demo.toml",
            "--format",
            "json",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("report json");
    for key in [
        "generated_at",
        "sources",
        "conversations",
        "messages",
        "first_response_seconds",
        "sentiment",
        "ultimate",
        "ada",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}: {report}");
    }
    assert!(
        report["conversations"]["total"].as_i64().unwrap_or(0) > 0,
        "{report}"
    );
    // One number per metric: Ultimate's bot-handled and escalation rates are the same figure
    // on the cross-vendor line and in Ultimate's own block.
    let by_source = &report["escalation"]["by_source"]["ultimate"];
    for rate in ["bot_handled_rate", "escalation_rate"] {
        let a = by_source[rate].as_f64().expect("a model rate");
        let b = report["ultimate"][rate].as_f64().expect("Ultimate's rate");
        assert!(
            (a - b).abs() < 1e-12,
            "{rate}: {a} in the model, {b} by Ultimate"
        );
    }

    // A second run with nothing new changes no vendor row.
    let o = talkhouse(
        dir.path(),
        &[
            "sync",
            "--config",
            "talkhouse-demo.toml",
            "--source",
            "ultimate",
        ],
    );
    // The demo's emulators are gone: the sync must fail cleanly (exit 1), not panic.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o).1);
}
