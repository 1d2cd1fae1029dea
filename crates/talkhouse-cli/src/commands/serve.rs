//! `talkhouse serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

/// Run the long-lived service: Gladly webhooks (`POST /webhooks/gladly`), Giosg chat-end
/// triggers (`GET /triggers/giosg`), scheduled syncs from `[serve] schedule`, `/healthz`,
/// `/readyz` and Prometheus `/metrics`. Every event is stored durably before it is
/// acknowledged; SIGTERM or Ctrl-C stops gracefully and keeps unprocessed events for the next
/// start.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (`[serve]` section: listen, schedule, inbox settings).
    #[arg(long, short, default_value_os_t = crate::default_config())]
    config: PathBuf,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight work");
}

/// Runs `talkhouse serve`.
///
/// # Errors
/// Configuration errors, an address in use, destination failures.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let sources = config.build_sources(&[])?;
    let dest = config.open_destination().await?;
    talkhouse_server::serve(config.serve.clone(), sources, dest, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
