//! Scheduled syncs: one loop per scheduled source.
//!
//! A run starts when the last start (remembered in the inbox, so it survives restarts and is
//! shared by instances) is one interval old. Runs of a source are serialised by the loop itself
//! and, across instances, by the inbox's sync lock; a run that overran its interval is followed
//! by exactly one catch-up run, not one per missed tick. A source's
//! [`scheduled_upkeep`](talkhouse_model::Source::scheduled_upkeep) (ending idle chats, say) runs
//! under the same lock just before its sync, so the sync stores what it changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use talkhouse_model::Source;
use tokio::sync::watch;

use crate::App;
use crate::inbox::backoff;

/// How long to wait before looking again when another instance holds the source's lock.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// Sleeps `d`, or returns `false` early when asked to stop.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => true,
        _ = stop.changed() => !*stop.borrow(),
    }
}

/// Time until the next run is due (zero when due or never run).
async fn until_due(app: &App, name: &str, every: Duration) -> Result<Duration, crate::InboxError> {
    let last = app.inbox.last_sync(name).await?;
    Ok(last.map_or(Duration::ZERO, |t| {
        let next = t + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        (next - Utc::now()).to_std().unwrap_or(Duration::ZERO)
    }))
}

pub(crate) async fn run(
    app: Arc<App>,
    source: Arc<dyn Source>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let name = source.name().to_owned();
    let mut errors = 0u32;
    loop {
        let wait = match until_due(&app, &name, every).await {
            Ok(w) => w,
            Err(e) => {
                errors = errors.saturating_add(1);
                tracing::warn!(source = %name, error = %e, "cannot read the schedule");
                backoff(errors.min(6))
            }
        };
        if !pause(wait, &mut stop).await {
            return;
        }
        let lease = match app.inbox.try_lock_sync(&name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                app.metrics.sync_skipped(&name);
                tracing::debug!(source = %name, "sync already running elsewhere");
                if !pause(BUSY_RETRY.min(every), &mut stop).await {
                    return;
                }
                continue;
            }
            Err(e) => {
                errors = errors.saturating_add(1);
                tracing::warn!(source = %name, error = %e, "cannot take the sync lock");
                if !pause(backoff(errors.min(6)), &mut stop).await {
                    return;
                }
                continue;
            }
        };
        // Another instance may have run it while we waited for the lock.
        match until_due(&app, &name, every).await {
            Ok(w) if w > Duration::ZERO => {
                drop(lease);
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(source = %name, error = %e, "cannot read the schedule");
                drop(lease);
                continue;
            }
        }
        errors = 0;
        if let Err(e) = app.inbox.record_sync(&name, Utc::now()).await {
            tracing::warn!(source = %name, error = %e, "cannot record the sync start");
        }
        app.metrics.sync_running(&name, true);
        if let Some(upkeep) = source.scheduled_upkeep() {
            let succeeded = match upkeep.await {
                Ok(summary) => {
                    tracing::info!(source = %name, summary = %summary, "scheduled upkeep finished");
                    true
                }
                Err(e) => {
                    tracing::warn!(source = %name, error = %e, "scheduled upkeep failed; syncing anyway");
                    false
                }
            };
            app.metrics.upkeep_run(&name, succeeded);
        }
        let started = Instant::now();
        let report = app
            .pipeline
            .sync(
                source.clone(),
                app.dest.clone(),
                talkhouse_sync::Run::default(),
            )
            .await;
        let secs = started.elapsed().as_secs_f64();
        app.metrics.sync_running(&name, false);
        drop(lease);
        let status = if report.ok() { "succeeded" } else { "failed" };
        let rows: u64 = report.streams.iter().map(|s| s.rows).sum();
        let quarantined: u64 = report.streams.iter().map(|s| s.quarantined).sum();
        app.metrics
            .sync_finished(&name, report.ok(), secs, rows, quarantined);
        tracing::info!(source = %name, status, rows, quarantined, seconds = secs, "scheduled sync finished");
    }
}
