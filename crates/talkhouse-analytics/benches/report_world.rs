//! A large warehouse for `talkhouse report` (issue 21, part 5), grown from a real small one.
//!
//! ```text
//! cargo bench --workspace --all-features --profile dev --bench report_world -- WAREHOUSE MESSAGES [--explain]
//! ```
//!
//! `WAREHOUSE` is a DuckDB warehouse talkhouse wrote (`talkhouse demo` makes one with every
//! vendor and every model table). The model's base tables are copied in SQL, each copy with
//! fresh ids (`<id>~<copy>`), until `talkhouse.model_messages` holds at least `MESSAGES` rows:
//! the data keeps its shape (messages per conversation and session, roles, channels, days,
//! sentiment, merges, work sessions); only the number of conversations and customers grows.
//! Agents and teams are not copied: more conversations, the same staff. The vendors' own
//! tables are not copied either (Ada's and Ultimate's metric views read them; they stay small).
//! A warehouse that already holds `MESSAGES` messages is left as it is.
//!
//! Then it times every query of the report on its own (the fixed ones and the Gladly ones), and
//! the whole report, in this process. `--explain` prints DuckDB's `EXPLAIN ANALYZE` of each.
//! `bench/report-10m` times `talkhouse report` itself, as a whole process.

#![allow(clippy::print_stdout, clippy::expect_used, missing_docs)]

use std::path::PathBuf;
use std::time::Instant;

use talkhouse_analytics::sql;
use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_model::Destination;

/// `(table, replacements)`: the id columns each copy renames, as `SELECT * REPLACE` items over
/// the copy number `k`.
fn copies() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let fresh = |c: &'static str| (c, format!("{c} || '~' || CAST(k AS VARCHAR)"));
    vec![
        (
            "model_messages",
            vec![
                fresh("message_id"),
                fresh("conversation_id"),
                fresh("session_id"),
                (
                    "sender_id",
                    "CASE WHEN sender_role = 'customer' THEN sender_id || '~' || CAST(k AS VARCHAR) \
                     ELSE sender_id END"
                        .to_owned(),
                ),
            ],
        ),
        (
            "model_conversations",
            vec![fresh("conversation_id"), fresh("customer_id")],
        ),
        (
            "model_sessions",
            vec![
                fresh("session_id"),
                fresh("conversation_id"),
                fresh("customer_id"),
            ],
        ),
        (
            "model_work",
            vec![
                fresh("work_session_id"),
                fresh("session_id"),
                fresh("conversation_id"),
                fresh("customer_id"),
            ],
        ),
        ("model_id_merges", vec![fresh("old_id"), fresh("new_id")]),
    ]
}

async fn count(dest: &DuckDbDestination, table: &str) -> u64 {
    let rows = dest
        .query(&format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM talkhouse.{table}"
        ))
        .await
        .expect("count");
    rows.first()
        .and_then(|r| r.get("n"))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

/// Copies the model's base tables until `talkhouse.model_messages` holds `target` rows.
async fn grow(dest: &DuckDbDestination, target: u64) {
    let base = count(dest, "model_messages").await;
    assert!(
        base > 0,
        "the warehouse holds no messages: make one with `talkhouse demo`"
    );
    if base >= target {
        println!("warehouse: {base} messages already, not grown");
        return;
    }
    let times = target.div_ceil(base);
    let started = Instant::now();
    for (table, replace) in copies() {
        let items: Vec<String> = replace.iter().map(|(c, e)| format!("{e} AS {c}")).collect();
        dest.execute(&format!(
            "INSERT INTO talkhouse.{table} SELECT * EXCLUDE (k) REPLACE ({}) \
             FROM talkhouse.{table}, range(1, {times}) AS copies(k)",
            items.join(", ")
        ))
        .await
        .unwrap_or_else(|e| panic!("copying {table}: {e}"));
    }
    dest.execute("CHECKPOINT").await.expect("checkpoint");
    let mut counts = Vec::new();
    for (table, _) in copies() {
        counts.push(format!("{table} {}", count(dest, table).await));
    }
    println!(
        "warehouse: {base} messages × {times} in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        counts.join(", ")
    );
}

/// The report's queries by name: the fixed ones, then the Gladly ones over the warehouse's
/// Gladly sources (the vendors' metric views are left out: they read the vendors' own tables).
async fn queries(dest: &DuckDbDestination) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sql::report_queries(None)
        .into_iter()
        .map(|(n, q)| (n.to_owned(), q))
        .collect();
    let gladly: Vec<String> = dest
        .query(sql::SOURCES)
        .await
        .expect("sources")
        .iter()
        .filter(|r| r.get("vendor").and_then(|v| v.as_str()) == Some("gladly"))
        .filter_map(|r| r.get("source").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    if !gladly.is_empty() {
        let g = &gladly;
        out.extend([
            ("gladly_sessions".into(), sql::session_count(g, None)),
            (
                "gladly_handle_time".into(),
                sql::handle_time(g, None, false),
            ),
            (
                "gladly_handle_time_by_channel".into(),
                sql::handle_time(g, None, true),
            ),
            (
                "gladly_top_agents".into(),
                sql::top_workers(g, None, "agent_id"),
            ),
            (
                "gladly_top_teams".into(),
                sql::top_workers(g, None, "team_id"),
            ),
            (
                "gladly_session_first_response".into(),
                sql::session_first_response(g, None),
            ),
        ]);
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` adds `--bench`; flags are ours or cargo's, the rest are the arguments.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let explain = args.iter().any(|a| a == "--explain");
    let plain: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let (Some(path), Some(target)) = (plain.first(), plain.get(1)) else {
        println!("usage: report_world WAREHOUSE MESSAGES [--explain] (see the file's doc)");
        return;
    };
    let target: u64 = target.parse().expect("MESSAGES is a number");
    let dest = DuckDbDestination::open(&PathBuf::from(path.as_str())).expect("open the warehouse");
    grow(&dest, target).await;

    let mut total = 0.0;
    for (name, q) in queries(&dest).await {
        let started = Instant::now();
        let rows = dest
            .query(&q)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let secs = started.elapsed().as_secs_f64();
        total += secs;
        println!("{name:<32} {secs:>7.3} s  {} rows", rows.len());
        if explain {
            let plan = dest
                .query(&format!("EXPLAIN ANALYZE {q}"))
                .await
                .unwrap_or_else(|e| panic!("explaining {name}: {e}"));
            for row in plan {
                for v in row.values() {
                    if let Some(text) = v.as_str() {
                        println!("{text}");
                    }
                }
            }
        }
    }
    println!("{:<32} {total:>7.3} s", "queries, one by one");
    let started = Instant::now();
    talkhouse_analytics::report(&dest, None)
        .await
        .expect("report");
    println!(
        "{:<32} {:>7.3} s",
        "report, in process",
        started.elapsed().as_secs_f64()
    );
}
