//! `talkhouse`: customer conversations into your own warehouse.
//!
//! This crate is glue: argument parsing, configuration, progress and output. The work lives in
//! the library crates (`talkhouse-sources`, `-sync`, `-destinations`, `-analytics`, `-server`,
//! `-emulator`).

mod commands;
mod logging;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
pub(crate) use talkhouse_cli::config;

/// Puts your customer conversations (Gladly, Giosg, Ada, Ultimate) into your own warehouse.
///
/// Configuration is read from ./talkhouse.toml (or --config FILE); `${VAR}` in it reads the
/// environment. Data goes to stdout, logs to stderr (filter them with RUST_LOG, e.g.
/// RUST_LOG=talkhouse=debug). Exit codes: 0 ok, 1 failure, 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(
    name = "talkhouse",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the built-in vendor emulators, sync them into ./warehouse.duckdb and print the report.
    Demo(commands::demo::Args),
    /// Run the configured sources once, incrementally.
    Sync(commands::sync::Args),
    /// Run the long-lived service: webhooks, triggers, scheduled syncs, health and metrics.
    Serve(commands::serve::Args),
    /// Load export files you already downloaded.
    #[command(subcommand)]
    Load(commands::load::LoadCommand),
    /// Print the analytics from the warehouse.
    Report(commands::report::Args),
    /// Show each source's streams: last run, cursor, rows, errors, quarantined records.
    Status(commands::status::Args),
    /// Run the vendor API emulators alone, for your own pipelines and tests.
    Emulate(commands::emulate::Args),
    /// Compact and vacuum the warehouse's tables (Delta Lake).
    Maintain(commands::maintain::Args),
    /// Delete one person's data everywhere (GDPR/CCPA erasure).
    Purge(commands::purge::Args),
    /// Giosg tools.
    #[command(subcommand)]
    Giosg(commands::giosg::GiosgCommand),
}

/// The default configuration file.
pub(crate) fn default_config() -> PathBuf {
    PathBuf::from("talkhouse.toml")
}

/// mimalloc: a sync allocates and frees millions of small strings, many of them freed on
/// another thread than the one that made them (parsed by the stream, freed after the write).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, matches!(cli.command, Command::Demo(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(a) => commands::demo::run(a).await,
            Command::Sync(a) => commands::sync::run(a).await,
            Command::Serve(a) => commands::serve::run(a).await,
            Command::Load(c) => commands::load::run(c).await,
            Command::Report(a) => commands::report::run(a).await,
            Command::Status(a) => commands::status::run(a).await,
            Command::Emulate(a) => commands::emulate::run(a).await,
            Command::Maintain(a) => commands::maintain::run(a).await,
            Command::Purge(a) => commands::purge::run(a).await,
            Command::Giosg(c) => commands::giosg::run(c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<config::ConfigError>() {
                eprintln_safe(&format!("error: {c}"));
                return ExitCode::from(2);
            }
            // The engine's errors arrive typed; those the user can act on carry a hint.
            if let Some(open) = e.downcast_ref::<config::OpenError>()
                && let Some(hint) = open.hint()
            {
                eprintln_safe(&format!("error: {e:#}\nhint: {hint}"));
                return ExitCode::from(2);
            }
            if let Some(talkhouse_server::ServerError::Config(_)) =
                e.downcast_ref::<talkhouse_server::ServerError>()
            {
                eprintln_safe(&format!(
                    "error: {e:#}\nhint: see the [serve] example in the README"
                ));
                return ExitCode::from(2);
            }
            eprintln_safe(&format!("error: {e:#}"));
            ExitCode::from(1)
        }
    }
}

/// Writes a line to stderr (the one place the binary prints errors).
#[allow(clippy::print_stderr)]
pub(crate) fn eprintln_safe(line: &str) {
    eprintln!("{line}");
}

/// Writes to stdout (data output).
#[allow(clippy::print_stdout)]
pub(crate) fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
}
