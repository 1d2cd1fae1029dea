//! What the end-to-end tests share: PostgreSQL's URL, configs pointing at running emulators,
//! `talkhouse sync` as a child process, and every warehouse table in a form all destinations
//! agree on.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use talkhouse_model::Destination;

pub fn postgres_url() -> Option<String> {
    match std::env::var("TALKHOUSE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "TALKHOUSE_TEST_POSTGRES_URL is not set, and CI=true requires the PostgreSQL tests to run"
            );
            eprintln!("skipping: TALKHOUSE_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// `[sources.*]` pointing at the running emulators.
pub fn sources_toml<'a>(
    running: impl IntoIterator<Item = &'a talkhouse_emulator::Running>,
) -> String {
    let mut out = String::new();
    for r in running {
        out.push_str(&format!(
            "[sources.{}]\nbase_url = {:?}\n",
            r.vendor, r.base_url
        ));
        for (k, v) in &r.credentials.fields {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out.push('\n');
    }
    out
}

/// Writes `<dir>/<name>.toml` with `destination` (the body of `[destination]`) and `sources`.
pub fn write_config(dir: &Path, name: &str, destination: &str, sources: &str) -> PathBuf {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("[destination]\n{destination}\n\n{sources}"),
    )
    .unwrap();
    config
}

pub fn sync(dir: &Path, name: &str, destination: &str, sources: &str) {
    let config = write_config(dir, name, destination, sources);
    let out = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
        .args(["sync", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sync into {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `n` of a `SELECT count(*) AS n …` (`u64::MAX` when it is missing, so an equality fails).
pub async fn count(dest: &dyn Destination, sql: &str) -> u64 {
    dest.query(sql).await.expect("query")[0]["n"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

/// An emulator's ground truth (`/_emulator/truth`) as JSON.
pub async fn truth_json(base_url: &str) -> Value {
    reqwest::get(format!("{base_url}/_emulator/truth"))
        .await
        .expect("truth")
        .json()
        .await
        .expect("truth is JSON")
}

/// The tables to compare, with DuckDB's type of each column, bookkeeping left out where it
/// differs by nature (`_synced_at`, `_load_id`; `_deleted_at` is compared as set or not).
pub async fn tables(duck: &dyn Destination) -> BTreeMap<String, Vec<(String, String)>> {
    let rows = duck
        .query(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns \
             WHERE table_schema IN ('gladly', 'giosg', 'ada', 'ultimate') \
             OR (table_schema = 'talkhouse' AND table_name LIKE 'model_%') \
             ORDER BY table_schema, table_name, ordinal_position",
        )
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for r in rows {
        let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        let column = text("column_name");
        if column == "_synced_at" || column == "_load_id" {
            continue;
        }
        out.entry(format!("{}.{}", text("table_schema"), text("table_name")))
            .or_default()
            .push((column, text("data_type")));
    }
    out
}

/// JSON with object keys sorted.
pub fn canon(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, canon(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(canon).collect()),
        other => other,
    }
}

/// One value in a form all three destinations agree on.
pub fn normal(ty: &str, column: &str, v: Value) -> Value {
    if column == "_deleted_at" {
        return Value::Bool(!v.is_null());
    }
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        ("JSON", Value::String(s)) => canon(serde_json::from_str(&s).unwrap_or(Value::String(s))),
        ("JSON", v) => canon(v),
        ("TIMESTAMP" | "TIMESTAMP WITH TIME ZONE", Value::String(s)) => {
            match chrono::DateTime::parse_from_rfc3339(&s) {
                Ok(t) => Value::from(t.timestamp_micros()),
                Err(_) => Value::String(s),
            }
        }
        (_, v) => v,
    }
}

pub async fn rows(
    dest: &dyn Destination,
    table: &str,
    columns: &[(String, String)],
) -> Vec<String> {
    let list: Vec<String> = columns.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let (schema, name) = table.split_once('.').unwrap();
    let result = dest
        .query(&format!(
            "SELECT {} FROM \"{schema}\".\"{name}\"",
            list.join(", ")
        ))
        .await
        .unwrap_or_else(|e| panic!("{} reading {table}: {e}", dest.describe()));
    let mut out: Vec<String> = result
        .into_iter()
        .map(|mut r| {
            let obj: BTreeMap<&str, Value> = columns
                .iter()
                .map(|(c, ty)| {
                    (
                        c.as_str(),
                        normal(ty, c, r.remove(c).unwrap_or(Value::Null)),
                    )
                })
                .collect();
            serde_json::to_string(&obj).unwrap()
        })
        .collect();
    out.sort();
    out
}

/// Runs `talkhouse <command> --config <dir>/<name>.toml --format json` and parses its output.
pub fn json_of(dir: &Path, name: &str, command: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_talkhouse"))
        .args([command, "--format", "json", "--config"])
        .arg(dir.join(format!("{name}.toml")))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command} on {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{command} on {name} printed no JSON: {e}"))
}

/// Asserts two JSON documents are equal, numbers within a relative 1e-9 (engines sum floats in
/// different orders).
pub fn assert_close(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{path}: {x} != {y}"
            );
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                assert_close(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths differ");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (x, y) => assert_eq!(x, y, "{path}"),
    }
}

/// A database of its own on the PostgreSQL server at `base`, dropped by [`FreshDatabase::drop_it`].
pub struct FreshDatabase {
    /// Its URL.
    pub url: url::Url,
    admin: tokio_postgres::Client,
    name: String,
}

impl FreshDatabase {
    /// Creates `<prefix>_<pid>` (dropping a leftover of that name first).
    pub async fn create(base: &str, prefix: &str) -> Self {
        let (admin, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let name = format!("{prefix}_{}", std::process::id());
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut url = url::Url::parse(base).unwrap();
        url.set_path(&format!("/{name}"));
        Self { url, admin, name }
    }

    /// Drops the database.
    pub async fn drop_it(self) {
        let _ = self
            .admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
