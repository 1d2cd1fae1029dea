//! `talkhouse purge`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use talkhouse_destinations::quote_literal;
use talkhouse_model::{Cell, Commit, EraseMode, Erasure, TableRef, model};

use crate::config::Config;

/// Delete one person's data everywhere (GDPR/CCPA erasure): every row of every table that
/// identifies the customer, and their conversations whole (the agents' and bots' replies in
/// them included), in every configured source (or those named) and in the cross-vendor
/// model. Where the source keeps the customer ids merges retired, every id of the person is
/// erased (`talkhouse_sources::customer_ids`), and every conversation under every id merges
/// gave it (`talkhouse_sources::conversation_ids`). Prints what it removed, per table.
///
/// Ultimate's exports carry no customer id, so its rows cannot be found by customer. The
/// rows go from the warehouse; ask the vendor to erase its own copy.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vendor's customer id (Gladly customer id, Giosg visitor id, Ada chatter id).
    #[arg(long)]
    customer: String,
    /// Only this source (repeatable).
    #[arg(long = "source", value_name = "NAME")]
    sources: Vec<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
}

/// Runs `talkhouse purge`.
///
/// # Errors
/// Configuration errors and destination failures.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let sources = config.build_sources(&args.sources)?;
    let dest = config.open_destination().await?;
    super::sync::prepare_all(&sources, &*dest).await?;
    let mut out = String::new();
    let mut total = 0;
    let load_id = talkhouse_sync::new_load_id();
    for source in &sources {
        let schema = source.name();
        // Every id the person had or has in this source (merge chains, where the vendor keeps
        // them).
        let ids = talkhouse_sources::customer_ids(&**source, &*dest, &args.customer).await?;
        let columns = source.customer_columns();
        if columns.is_empty() {
            continue;
        }
        // The customer's conversations go whole: the agents' and bots' replies in them too.
        let src = quote_literal(schema);
        let mut conversations: Vec<String> = Vec::new();
        for id in &ids {
            let rows = dest
                .query(&format!(
                    "SELECT conversation_id FROM talkhouse.model_conversations \
                     WHERE source = {src} AND customer_id = {}",
                    quote_literal(id)
                ))
                .await?;
            conversations.extend(rows.iter().filter_map(|r| {
                r.get("conversation_id")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            }));
        }
        // Under every id a merge gave them.
        for id in conversations.clone() {
            for other in talkhouse_sources::conversation_ids(&**source, &*dest, &id).await? {
                if !conversations.contains(&other) {
                    conversations.push(other);
                }
            }
        }
        // Every model table that names a conversation or a customer (messages, sessions, work…).
        let mut plan: Vec<(TableRef, &'static str, &[String])> = Vec::new();
        for spec in model::tables() {
            for column in &spec.columns {
                match column.name {
                    "conversation_id" => plan.push((spec.table, column.name, &conversations)),
                    "customer_id" => plan.push((spec.table, column.name, &ids)),
                    _ => {}
                }
            }
        }
        plan.extend(
            source
                .conversation_columns()
                .into_iter()
                .map(|(t, c)| (t, c, conversations.as_slice())),
        );
        plan.extend(columns.into_iter().map(|(t, c)| (t, c, ids.as_slice())));
        let mut removed = 0;
        for (table, column, values) in plan {
            if values.is_empty() {
                continue;
            }
            let stats = dest
                .commit(Commit {
                    source: schema.to_owned(),
                    stream: "purge".into(),
                    load_id: load_id.clone(),
                    synced_at: Utc::now(),
                    rows: Vec::new(),
                    erasures: values
                        .iter()
                        .map(|v| Erasure {
                            table,
                            column,
                            value: Cell::Text(v.clone()),
                            mode: EraseMode::Delete,
                        })
                        .collect(),
                    quarantine: Vec::new(),
                    state: None,
                    more_follows: false,
                })
                .await?;
            if stats.rows_erased > 0 {
                out.push_str(&format!(
                    "  {}.{} by {column}: {} row(s)\n",
                    table.schema(schema),
                    table.name,
                    stats.rows_erased
                ));
            }
            removed += stats.rows_erased;
        }
        total += removed;
        out.push_str(&format!(
            "{schema}: removed {removed} row(s) for {} id(s) ({}) and {} conversation(s)\n",
            ids.len(),
            ids.join(", "),
            conversations.len()
        ));
    }
    out.push_str(&format!("{total} row(s) removed"));
    crate::out(&out);
    Ok(ExitCode::SUCCESS)
}
