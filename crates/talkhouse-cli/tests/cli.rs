//! The `talkhouse` binary end to end: help, configuration errors, demo, status, report.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use talkhouse_emulator::{EmulatorOptions, Vendor};

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
    let demo = talkhouse(dir.path(), &["demo", "--scale", "0.05"]);
    let o = &demo;
    let (out, err) = text(o);
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
    // Gladly's contacts and agent work, from its reports: handle time, top agents and teams,
    // first response per contact, and the demo's own output shows handle time.
    let g = &report["gladly"];
    assert!(g["contacts"].as_u64().unwrap_or(0) > 0, "{g}");
    assert!(
        g["handle_seconds"]["median"].as_f64().unwrap_or(0.0) > 0.0,
        "{g}"
    );
    for list in ["top_agents", "top_teams"] {
        assert!(!g[list].as_array().is_none_or(Vec::is_empty), "{list}: {g}");
    }
    assert!(
        g["contact_first_response_seconds"]["contacts"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{g}"
    );
    let (demo_out, _) = text(&demo);
    assert!(demo_out.contains("handle time median"), "{demo_out}");
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

/// Conversations the vendors mark as tests (Ultimate `test_mode`, Ada `is_test_user`) load into
/// the vendor tables but stay out of `talkhouse.*` and every metric, and the report counts them;
/// `include_test = true` counts them again from the next sync, with nothing reloaded.
#[tokio::test(flavor = "multi_thread")]
async fn test_traffic_is_left_out_until_include_test() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = EmulatorOptions::new(5, 0.1);
    let mut running = Vec::new();
    let mut truth: BTreeMap<&str, Value> = BTreeMap::new();
    for v in [Vendor::Ada, Vendor::Ultimate] {
        let r = talkhouse_emulator::start(v, &opts, 0)
            .await
            .expect("emulator starts");
        let t = support::truth_json(&r.base_url).await;
        truth.insert(v.name(), t);
        running.push(r);
    }
    let sources = support::sources_toml(&running)
        .replace(
            "[sources.ultimate]\n",
            "[sources.ultimate]\nrequests_per_second = 1000.0\n",
        )
        .replace(
            "[sources.ada]\n",
            "[sources.ada]\nrequests_per_second = 50.0\n",
        );
    let duck = format!(
        "kind = \"duckdb\"\npath = {:?}",
        dir.path().join("w.duckdb").display().to_string()
    );
    support::sync(dir.path(), "w", &duck, &sources);
    let report = support::json_of(dir.path(), "w", "report");
    let mut tests = 0;
    for vendor in ["ada", "ultimate"] {
        let want = truth[vendor]["extra"]["test_conversations"]
            .as_u64()
            .expect("a count");
        assert!(want > 0, "the {vendor} emulator makes test conversations");
        assert_eq!(
            report["test_conversations_left_out"][vendor].as_u64(),
            Some(want),
            "{vendor}: {report}"
        );
        tests += want;
    }
    // Ultimate's figures, read from the connector's views, are the emulator's own computation,
    // which leaves test conversations out as Ultimate does.
    let overall = &truth["ultimate"]["extra"]["metrics"]["overall"];
    let ultimate = &report["ultimate"];
    assert_eq!(
        ultimate["total_conversations"], overall["total_conversations"],
        "{report}"
    );
    for rate in [
        "bot_handled_rate",
        "deflection_rate",
        "escalation_rate",
        "failed_escalation_rate",
        "informed_rate",
        "automation_rate",
        "messages_understood_rate",
    ] {
        let (a, b) = (ultimate[rate].as_f64(), overall[rate].as_f64());
        assert!(
            matches!((a, b), (Some(a), Some(b)) if (a - b).abs() < 1e-9),
            "{rate}: {a:?} in the report, {b:?} by the emulator"
        );
    }
    // Yesterday's file is read but today's is not: yesterday is not final.
    assert_eq!(
        ultimate["first_incomplete_day"], truth["ultimate"]["extra"]["last_day"],
        "{report}"
    );
    let table = talkhouse(dir.path(), &["report", "--config", "w.toml"]);
    let (out, err) = text(&table);
    assert!(table.status.success(), "{err}");
    assert!(
        out.contains("test conversations are left out") && out.contains("not final"),
        "{out}"
    );
    let total = report["conversations"]["total"].as_u64().expect("total");

    // With `include_test` the next sync counts them; nothing is fetched twice for it.
    let with_tests = sources
        .replace("[sources.ada]\n", "[sources.ada]\ninclude_test = true\n")
        .replace(
            "[sources.ultimate]\n",
            "[sources.ultimate]\ninclude_test = true\n",
        );
    support::sync(dir.path(), "w", &duck, &with_tests);
    let again = support::json_of(dir.path(), "w", "report");
    assert_eq!(again["test_conversations_left_out"], json!({}), "{again}");
    assert_eq!(
        again["conversations"]["total"].as_u64(),
        Some(total + tests),
        "{again}"
    );
    assert_eq!(
        again["ultimate"]["total_conversations"].as_u64(),
        overall["total_conversations"]
            .as_u64()
            .map(|n| n + truth["ultimate"]["extra"]["test_conversations"]
                .as_u64()
                .unwrap_or(0)),
        "{again}"
    );
    for r in running {
        r.stop().await;
    }
}

/// The reports keep the ids a merge retired; the model's views name the id each customer and
/// conversation goes by now: every session and work row reported under a retired id is counted
/// under its survivor, none under the retired id.
async fn assert_the_model_names_merged_ids_by_their_current_id(
    path: &std::path::Path,
    customers: &serde_json::Map<String, Value>,
    conversations: &serde_json::Map<String, Value>,
) {
    use talkhouse_destinations::duckdb::DuckDbDestination;

    let dest = DuckDbDestination::open(path).expect("warehouse");
    let count = |sql: String| {
        let dest = &dest;
        async move { support::count(dest, &sql).await }
    };
    let mut reported_under_old = 0;
    for (column, merges) in [
        ("customer_id", customers),
        ("conversation_id", conversations),
    ] {
        for (old, new) in merges {
            let new = new.as_str().expect("an id");
            for (view, table) in [
                ("talkhouse.sessions", "talkhouse.model_sessions"),
                ("talkhouse.work", "talkhouse.model_work"),
            ] {
                let raw = |id: &str| {
                    count(format!(
                        "SELECT count(*) AS n FROM {table} WHERE {column} = '{id}' \
                         AND _deleted_at IS NULL"
                    ))
                };
                let (under_old, under_new) = (raw(old).await, raw(new).await);
                reported_under_old += under_old;
                let seen = |id: &str| {
                    count(format!(
                        "SELECT count(*) AS n FROM {view} WHERE source = 'gladly' AND {column} = '{id}'"
                    ))
                };
                assert_eq!(seen(old).await, 0, "{view}.{column} still names {old}");
                assert_eq!(
                    seen(new).await,
                    under_old + under_new,
                    "{view}.{column}: rows reported under {old} and {new}"
                );
            }
        }
    }
    assert!(
        reported_under_old > 0,
        "the reports name some retired id, or this proves nothing"
    );
}

/// `purge` finds a Gladly customer under every id merges gave them (the merge chains are the
/// Gladly source's knowledge, not the CLI's), their conversations with them, the retired
/// conversation ids and the model's id history included, and leaves everyone else.
#[tokio::test(flavor = "multi_thread")]
async fn purge_finds_a_merged_gladly_customer_under_every_id() {
    use talkhouse_destinations::duckdb::DuckDbDestination;

    let dir = tempfile::tempdir().expect("tempdir");
    let opts = EmulatorOptions::new(11, 0.05);
    let gladly = talkhouse_emulator::start(Vendor::Gladly, &opts, 0)
        .await
        .expect("emulator starts");
    let truth = support::truth_json(&gladly.base_url).await;
    let path = dir.path().join("w.duckdb");
    let duck = format!("kind = \"duckdb\"\npath = {:?}", path.display().to_string());
    support::sync(dir.path(), "w", &duck, &support::sources_toml([&gladly]));
    let config = dir.path().join("w.toml");
    let merged = truth["extra"]["merged_customers"]
        .as_object()
        .expect("merged customers");
    assert_eq!(merged.len(), 2);
    let conversations = truth["extra"]["merged_conversations"]
        .as_object()
        .expect("merged conversations");
    assert_the_model_names_merged_ids_by_their_current_id(&path, merged, conversations).await;
    let mut ids: Vec<String> = Vec::new();
    for (old, new) in merged {
        let new = new.as_str().expect("an id");
        // Purging the survivor's id erases the old one too.
        let o = talkhouse(
            dir.path(),
            &[
                "purge",
                "--customer",
                new,
                "--config",
                &config.display().to_string(),
            ],
        );
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out}\n{err}");
        assert!(out.contains(old.as_str()), "{out}");
        ids.push(old.clone());
        ids.push(new.to_owned());
    }
    let dest = DuckDbDestination::open(&path).expect("warehouse");
    let list = |values: &[String]| {
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let conversations: Vec<String> = truth["extra"]["merged_conversations"]
        .as_object()
        .expect("merged conversations")
        .iter()
        .flat_map(|(old, new)| [old.clone(), new.as_str().unwrap_or("").to_owned()])
        .collect();
    let count = |sql: String| {
        let dest = &dest;
        async move { support::count(dest, &sql).await }
    };
    for (table, column, values) in [
        ("gladly.customers", "id", &ids),
        ("gladly.conversation_items", "customer_id", &ids),
        ("gladly.customer_merges", "old_id", &ids),
        ("gladly.customer_merges", "new_id", &ids),
        ("gladly.conversation_merges", "old_id", &conversations),
        ("gladly.conversation_merges", "new_id", &conversations),
        ("talkhouse.model_id_merges", "old_id", &ids),
        ("talkhouse.model_id_merges", "old_id", &conversations),
        (
            "talkhouse.model_messages",
            "conversation_id",
            &conversations,
        ),
        (
            "gladly.conversation_assignments",
            "conversation_id",
            &conversations,
        ),
        ("gladly.contacts", "customer_id", &ids),
        ("gladly.work_sessions", "customer_id", &ids),
        ("talkhouse.model_sessions", "customer_id", &ids),
        (
            "talkhouse.model_sessions",
            "conversation_id",
            &conversations,
        ),
        ("talkhouse.model_work", "customer_id", &ids),
        ("talkhouse.model_work", "conversation_id", &conversations),
    ] {
        let n = count(format!(
            "SELECT count(*) AS n FROM {table} WHERE {column} IN ({})",
            list(values)
        ))
        .await;
        assert_eq!(n, 0, "{table}.{column} after purge");
    }
    let left = count("SELECT count(*) AS n FROM gladly.conversation_items".into()).await;
    assert!(left > 0, "other customers stay");
    gladly.stop().await;
}
