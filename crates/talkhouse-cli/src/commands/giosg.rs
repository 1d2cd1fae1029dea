//! `talkhouse giosg …`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// Giosg tools.
#[derive(Debug, clap::Subcommand)]
pub enum GiosgCommand {
    /// List open chats idle longer than the window (external "ghost" chats never end by
    /// themselves); end them only with --apply.
    EndStale(EndStaleArgs),
}

/// Arguments of `giosg end-stale`.
#[derive(Debug, clap::Args)]
pub struct EndStaleArgs {
    /// Idle window, e.g. 7d, 12h.
    #[arg(long, value_parser = parse_window)]
    older_than: chrono::Duration,
    /// End the listed chats (PATCH is_ended); without it, only list them.
    #[arg(long)]
    apply: bool,
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
    /// The Giosg source to use (default: the only one configured).
    #[arg(long)]
    source: Option<String>,
}

fn parse_window(s: &str) -> Result<chrono::Duration, String> {
    talkhouse_model::time::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration like 7d, 12h or 30m"))
}

/// Runs `talkhouse giosg …`.
///
/// # Errors
/// Configuration errors and API failures.
pub async fn run(cmd: GiosgCommand) -> anyhow::Result<ExitCode> {
    let GiosgCommand::EndStale(args) = cmd;
    let config = Config::load(&args.config)?;
    let giosg: Vec<_> = config
        .sources
        .iter()
        .filter(|s| s.vendor == "giosg" && args.source.as_ref().is_none_or(|n| *n == s.name))
        .collect();
    let [section] = giosg.as_slice() else {
        anyhow::bail!(
            "{} Giosg sources match\nhint: configure one [sources.giosg] section, or pick one with --source NAME",
            giosg.len()
        );
    };
    let chats = talkhouse_sources::giosg::end_stale(
        &section.name,
        section.table.clone(),
        args.older_than,
        args.apply,
    )
    .await?;
    let out = talkhouse_sources::giosg::stale_report(&chats, "use --apply");
    let failed = chats.iter().filter(|c| c.error.is_some()).count();
    crate::out(&out);
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
