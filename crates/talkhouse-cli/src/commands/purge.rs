//! `talkhouse purge`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use talkhouse_model::{Cell, Commit, EraseMode, Erasure};

use crate::config::Config;

/// Delete one person's data everywhere (GDPR/CCPA erasure): every row of every table that
/// identifies the customer, in every configured source (or those named), including the
/// cross-vendor model. Ids the customer had before a merge are followed. Prints what it
/// removed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vendor's customer id (Gladly customer id, Giosg visitor id, Ada end-user id, …).
    #[arg(long)]
    customer: String,
    /// Only this source (repeatable).
    #[arg(long = "source", value_name = "NAME")]
    sources: Vec<String>,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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
    for source in &sources {
        let schema = source.name();
        // Ids merged into (or out of) this customer, where the vendor keeps merges.
        let mut ids = vec![args.customer.clone()];
        let has_merges = source
            .tables()
            .iter()
            .any(|t| !t.table.model && t.table.name == "customer_merges");
        if has_merges {
            let lit = quote_literal(&args.customer);
            let rows = dest
                .query(&format!(
                    "SELECT old_id AS id FROM {schema}.customer_merges WHERE new_id = {lit} \
                     UNION SELECT new_id AS id FROM {schema}.customer_merges WHERE old_id = {lit}"
                ))
                .await?;
            ids.extend(
                rows.iter()
                    .filter_map(|r| r.get("id").and_then(|v| v.as_str()).map(str::to_owned)),
            );
        }
        let columns = source.customer_columns();
        if columns.is_empty() {
            continue;
        }
        // Model messages hang off conversations: drop those of the customer's conversations.
        for id in &ids {
            let lit = quote_literal(id);
            let src = quote_literal(schema);
            dest.execute(&format!(
                "DELETE FROM talkhouse.model_messages WHERE source = {src} AND conversation_id IN \
                 (SELECT conversation_id FROM talkhouse.model_conversations WHERE source = {src} AND customer_id = {lit})"
            ))
            .await?;
        }
        let erasures: Vec<Erasure> = ids
            .iter()
            .flat_map(|id| {
                columns.iter().map(move |(table, column)| Erasure {
                    table: *table,
                    column,
                    value: Cell::Text(id.clone()),
                    mode: EraseMode::Delete,
                })
            })
            .collect();
        let stats = dest
            .commit(Commit {
                source: schema.to_owned(),
                stream: "purge".into(),
                load_id: talkhouse_sync::new_load_id(),
                synced_at: Utc::now(),
                rows: Vec::new(),
                erasures,
                quarantine: Vec::new(),
                state: None,
            })
            .await?;
        total += stats.rows_erased;
        out.push_str(&format!(
            "{schema}: removed {} row(s) for {} id(s): {}\n",
            stats.rows_erased,
            ids.len(),
            ids.join(", ")
        ));
    }
    out.push_str(&format!("{total} row(s) removed"));
    crate::out(&out);
    Ok(ExitCode::SUCCESS)
}
