//! Logs on stderr, filtered by `RUST_LOG`, as text or JSON.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the subscriber. Default filter: `info` for talkhouse, `warn` for the rest; with
/// `quiet` (the demo, which shows progress bars and a summary instead), `warn` for all.
/// `RUST_LOG` overrides either.
pub fn init(format: LogFormat, quiet: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(if quiet {
            "warn"
        } else {
            "warn,talkhouse=info,talkhouse_sync=info,talkhouse_sources=info,talkhouse_server=info,talkhouse_destinations=info"
        })
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
