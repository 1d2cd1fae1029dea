//! `talkhouse demo`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use talkhouse_emulator::{EmulatorOptions, Vendor};

use crate::config::Config;

/// Start the four vendor emulators on loopback, sync them into a DuckDB warehouse and print
/// the report: the whole pipeline in one command, offline.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data volume: 1 ≈ 1,000 conversations per vendor. The default, 100 per vendor, finishes
    /// in seconds; a larger world waits longer on the vendors' rate limits (Gladly's 10
    /// requests/s above all), which the emulators keep.
    #[arg(long, default_value_t = 0.1)]
    scale: f64,
    /// Days of history to read where a connector back-fills by day: Ultimate's daily exports
    /// (one request per bot per day at 2 requests/s) and Gladly's reports (contacts, work
    /// sessions: handle time).
    #[arg(long, default_value_t = 14)]
    days: u32,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The warehouse file to write.
    #[arg(long, default_value = "warehouse.duckdb")]
    warehouse: PathBuf,
    /// Where to write the generated configuration.
    #[arg(long, default_value = "talkhouse-demo.toml")]
    config_out: PathBuf,
}

/// Runs `talkhouse demo`.
///
/// # Errors
/// When an emulator, the sync or the report fails.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut opts = EmulatorOptions::new(args.seed, args.scale);
    opts.backfill_days = Some(args.days);
    let running = super::emulate::start_all(&Vendor::ALL, &opts, 0).await?;
    for r in &running {
        tracing::info!(vendor = %r.vendor, url = %r.base_url, "emulator started");
    }
    let mut text = format!(
        "# Written by `talkhouse demo`: the emulators it points at stop when the demo ends.\n\
         [destination]\nkind = \"duckdb\"\npath = {}\n\n",
        toml::Value::String(args.warehouse.display().to_string())
    );
    text.push_str(&super::emulate::sources_toml(&running)?);
    std::fs::write(&args.config_out, &text)?;
    let config = Config::parse(&args.config_out, text)?;
    let sources = config.build_sources(&[])?;
    let dest = config.open_destination().await?;
    let ok = super::sync::sync_all(sources, dest.clone(), false).await?;
    let report = talkhouse_analytics::report(&*dest, None).await?;
    crate::out(&report.to_table());
    crate::out(&format!(
        "demo finished in {:.1} s: warehouse {} (query it with the duckdb CLI), config {}",
        started.elapsed().as_secs_f64(),
        args.warehouse.display(),
        args.config_out.display()
    ));
    for r in running {
        r.stop().await;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
