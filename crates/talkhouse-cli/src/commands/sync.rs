//! `talkhouse sync`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use talkhouse_model::{Destination, LoadStatus, Source};
use talkhouse_sync::{Run, SyncReport};

use crate::config::Config;

/// Run the configured sources once, incrementally.
///
/// Each stream commits its rows and its cursor together, so a sync that is stopped at any
/// moment resumes where it left off. Exit code 0 only if every stream finished.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file.
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
    /// Only this source (repeatable); all configured sources by default.
    #[arg(long = "source", value_name = "NAME")]
    sources: Vec<String>,
    /// Ignore saved cursors and read everything the vendors still have.
    #[arg(long)]
    full_refresh: bool,
}

/// Creates every source's tables and the cross-vendor views (the one pipeline's preparation).
///
/// # Errors
/// When the destination refuses.
pub async fn prepare_all(
    sources: &[Arc<dyn Source>],
    dest: &dyn Destination,
) -> anyhow::Result<()> {
    talkhouse_analytics::pipeline()
        .prepare(sources, dest)
        .await?;
    Ok(())
}

/// Syncs sources concurrently and prints a summary; returns whether all succeeded.
///
/// # Errors
/// When the destination cannot be prepared.
pub async fn sync_all(
    sources: Vec<Arc<dyn Source>>,
    dest: Arc<dyn Destination>,
    full_refresh: bool,
) -> anyhow::Result<bool> {
    let pipeline = talkhouse_analytics::pipeline();
    pipeline.prepare(&sources, &*dest).await?;
    let run = Run {
        full_refresh,
        progress: crate::progress::Bars::if_terminal(),
        ..Run::default()
    };
    let runs = sources
        .iter()
        .map(|s| pipeline.sync(s.clone(), dest.clone(), run.clone()));
    let reports: Vec<SyncReport> = futures::future::join_all(runs).await;
    crate::out(&summary(&sources, &reports));
    let mut ok = true;
    for (s, r) in sources.iter().zip(&reports) {
        if let Some(e) = &r.error {
            ok = false;
            crate::eprintln_safe(&format!("error: {}: {e}", s.name()));
        }
        for f in r.failures() {
            ok = false;
            crate::eprintln_safe(&format!(
                "error: {}.{} failed: {}",
                f.source,
                f.stream,
                f.error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    if !ok {
        crate::eprintln_safe(
            "hint: what the other streams committed is kept; run `talkhouse sync` again to resume, and `talkhouse status` for details",
        );
    }
    Ok(ok)
}

fn summary(sources: &[Arc<dyn Source>], reports: &[SyncReport]) -> String {
    let mut out = format!(
        "{:<14} {:<26} {:<10} {:>10} {:>12}\n",
        "source", "stream", "status", "rows", "quarantined"
    );
    for (s, r) in sources.iter().zip(reports) {
        if r.streams.is_empty() {
            out.push_str(&format!(
                "{:<14} {:<26} {:<10} {:>10} {:>12}\n",
                s.name(),
                "-",
                "failed",
                0,
                0
            ));
        }
        for st in &r.streams {
            let status = match st.status {
                LoadStatus::Succeeded => "ok",
                LoadStatus::Failed => "FAILED",
                LoadStatus::Running => "running",
            };
            out.push_str(&format!(
                "{:<14} {:<26} {:<10} {:>10} {:>12}\n",
                st.source, st.stream, status, st.rows, st.quarantined
            ));
        }
    }
    out
}

/// Runs `talkhouse sync`.
///
/// # Errors
/// Configuration errors (exit 2) and destination failures.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let sources = config.build_sources(&args.sources)?;
    if sources.is_empty() {
        return Err(crate::config::ConfigError {
            file: config.file.clone(),
            line: None,
            key: Some("sources".into()),
            message: "no sources are configured".into(),
            hint: Some(
                "add a [sources.gladly] (or giosg, ada, ultimate) section; see the README".into(),
            ),
        }
        .into());
    }
    let dest = config.open_destination().await?;
    let ok = sync_all(sources, dest, args.full_refresh).await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
