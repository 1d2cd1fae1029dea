//! `talkhouse maintain`.

use std::path::PathBuf;
use std::process::ExitCode;

use talkhouse_model::MaintainOptions;

use crate::config::Config;

/// Compact and vacuum the warehouse's tables where the destination needs it.
///
/// Delta Lake: rewrites each table's small files into larger ones (OPTIMIZE), deletes files
/// no longer referenced once they are older than `--retention` (VACUUM), and writes a
/// checkpoint of the transaction log. Run it daily, outside of syncs. DuckDB and PostgreSQL
/// maintain themselves; for them it reports that there is nothing to do.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
    /// Keep unreferenced files younger than this (`7d`, `48h`), so that readers still on an
    /// older table version and time travel keep working.
    #[arg(long, default_value = "7d", value_parser = parse_retention)]
    retention: std::time::Duration,
    /// List what vacuum would delete; compact nothing, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

fn parse_retention(s: &str) -> Result<std::time::Duration, String> {
    talkhouse_model::time::parse_duration(s)
        .and_then(|d| d.to_std().ok())
        .ok_or_else(|| format!("`{s}` is not a duration (try 7d, 48h or 30m)"))
}

/// Runs `talkhouse maintain`.
///
/// # Errors
/// Configuration errors and destination failures.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let dest = config.open_destination().await?;
    let opts = MaintainOptions {
        retention: args.retention,
        dry_run: args.dry_run,
    };
    let done = dest.maintain(&opts).await?;
    if done.is_empty() {
        crate::out(&format!(
            "{}: nothing to maintain (the database compacts and vacuums itself)",
            dest.describe()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!(
        "{:<44} {:>10} {:>8} {:>9}\n",
        "table",
        "compacted",
        "written",
        if args.dry_run {
            "to vacuum"
        } else {
            "vacuumed"
        }
    );
    for m in &done {
        out.push_str(&format!(
            "{:<44} {:>10} {:>8} {:>9}\n",
            m.table, m.files_compacted, m.files_written, m.files_vacuumed
        ));
    }
    let vacuumed: u64 = done.iter().map(|m| m.files_vacuumed).sum();
    let compacted: u64 = done.iter().map(|m| m.files_compacted).sum();
    out.push_str(&format!(
        "{} table(s): {compacted} file(s) compacted, {vacuumed} file(s) {}",
        done.len(),
        if args.dry_run {
            "would be vacuumed"
        } else {
            "vacuumed"
        }
    ));
    crate::out(&out);
    Ok(ExitCode::SUCCESS)
}
