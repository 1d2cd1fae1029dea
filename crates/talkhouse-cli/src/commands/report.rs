//! `talkhouse report`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;

/// Print the analytics: conversations and messages per source, channel and day, messages per
/// conversation and session, first response times, sentiment, and the vendors' own metrics
/// (Ultimate's automation rates, Ada's engagement and escalation).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
    /// Output format: `json` keys are stable; `html` is one self-contained page.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only conversations started on or after this date (YYYY-MM-DD).
    #[arg(long)]
    since: Option<chrono::NaiveDate>,
}

/// Report format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Aligned text.
    Table,
    /// One JSON object (DESIGN contract).
    Json,
    /// A self-contained HTML page.
    Html,
}

/// Renders a report in a format.
pub fn render(r: &talkhouse_analytics::Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Table => r.to_table(),
        Format::Json => r.to_json()?,
        Format::Html => r.to_html(),
    })
}

/// Runs `talkhouse report`.
///
/// # Errors
/// Configuration errors and query failures.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let dest = config.open_destination().await?;
    let report = talkhouse_analytics::report(&*dest, args.since).await?;
    let text = render(&report, args.format)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => crate::out(&text),
    }
    Ok(ExitCode::SUCCESS)
}
