//! `talkhouse load`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, DestinationConfig, open_destination};

/// Load files you already downloaded.
#[derive(Debug, clap::Subcommand)]
pub enum LoadCommand {
    /// Load Gladly export files: a folder holding one job's files (conversation_items.jsonl,
    /// customers.jsonl, agents.jsonl, topics.jsonl; any may be missing), or a folder of such
    /// folders, loaded in name order. Same tables and idempotency as `sync`.
    Gladly(GladlyArgs),
}

/// Arguments of `load gladly`.
#[derive(Debug, clap::Args)]
pub struct GladlyArgs {
    /// The folder.
    #[arg(long)]
    dir: PathBuf,
    /// Configuration file (for the destination and the `[sources.gladly]` settings); without
    /// one, the default DuckDB warehouse `warehouse.duckdb` is used.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The source name (schema) to load into.
    #[arg(long, default_value = "gladly")]
    source: String,
}

/// Runs `talkhouse load`.
///
/// # Errors
/// Configuration errors, unreadable folders and destination failures.
pub async fn run(cmd: LoadCommand) -> anyhow::Result<ExitCode> {
    let LoadCommand::Gladly(args) = cmd;
    if !args.dir.is_dir() {
        anyhow::bail!(
            "{} is not a folder\nhint: pass the folder holding the export's .jsonl files",
            args.dir.display()
        );
    }
    let config_path = args.config.clone().unwrap_or_else(crate::default_config);
    let config = if config_path.exists() {
        Some(Config::load(&config_path)?)
    } else {
        None
    };
    let section = config
        .as_ref()
        .and_then(|c| c.sources.iter().find(|s| s.name == args.source))
        .map(|s| s.table.clone());
    let source =
        talkhouse_sources::gladly::load_dir_source(&args.source, section, args.dir.clone())
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let dest = match &config {
        Some(c) => c.open_destination().await?,
        None => open_destination(&DestinationConfig::default()).await?,
    };
    let ok = super::sync::sync_all(vec![source], dest, false).await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
