//! The worker pool: claims inbox events, processes them and commits what they yield.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use talkhouse_model::LoadStatus;
use tokio::sync::watch;
use tracing::Instrument;

use crate::App;
use crate::inbox::{InboxEvent, backoff};

/// The stream name pushed events are committed under.
pub(crate) const PUSH_STREAM: &str = "push";

/// One worker: runs until `stop` turns true, finishing the event in hand.
pub(crate) async fn run(app: Arc<App>, id: usize, stop: watch::Receiver<bool>) {
    tracing::debug!(worker = id, "worker started");
    let mut errors = 0u32;
    let names: Vec<String> = app.sources.iter().map(|s| s.name().to_owned()).collect();
    while !*stop.borrow() {
        let claimed = match app
            .inbox
            .claim(
                &names,
                app.config.batch_events.max(1),
                Duration::from_millis(250),
            )
            .await
        {
            Ok(c) => {
                errors = 0;
                c
            }
            Err(e) => {
                tracing::warn!(worker = id, error = %e, "cannot claim inbox events");
                errors = errors.saturating_add(1);
                tokio::time::sleep(backoff(errors.min(4))).await;
                continue;
            }
        };
        // Events of one source are committed together; if that fails, one by one, so that a
        // bad event only holds back itself.
        let mut by_source: Vec<(String, Vec<InboxEvent>)> = Vec::new();
        for event in claimed {
            match by_source.iter_mut().find(|(s, _)| *s == event.source) {
                Some((_, v)) => v.push(event),
                None => by_source.push((event.source.clone(), vec![event])),
            }
        }
        for (source, events) in by_source {
            if events.len() > 1 {
                let span =
                    tracing::info_span!("push_batch", source = %source, events = events.len());
                match process_batch(&app, &events).instrument(span).await {
                    Ok(()) => continue,
                    Err(e) => {
                        tracing::info!(source = %source, error = %e, "batch failed; processing its events one by one")
                    }
                }
            }
            for event in events {
                let span =
                    tracing::info_span!("push", source = %event.source, event_id = %event.event_id);
                process(&app, event).instrument(span).await;
            }
        }
    }
    tracing::debug!(worker = id, "worker stopped");
}

/// Processes events of one source as one unit: their pushes' events are committed together and
/// all are marked done. On failure nothing is marked (what was committed is harmless: processing
/// is idempotent) and the caller falls back to one by one.
async fn process_batch(app: &App, events: &[InboxEvent]) -> Result<(), String> {
    let Some(first) = events.first() else {
        return Ok(());
    };
    let Some(source) = app.sources.iter().find(|s| s.name() == first.source) else {
        return Err(format!("source `{}` is not configured", first.source));
    };
    app.ensure_prepared(source)
        .await
        .map_err(|e| format!("cannot prepare the destination: {e}"))?;
    let streams: Vec<_> = events
        .iter()
        .map(|e| source.process_push(e.payload.clone()))
        .collect();
    let combined = Box::pin(futures::stream::iter(streams).flatten());
    let report = app
        .pipeline
        .commit_events(&**source, &*app.dest, PUSH_STREAM, combined)
        .await;
    if report.status != LoadStatus::Succeeded {
        return Err(report.error.unwrap_or_else(|| "processing failed".into()));
    }
    app.metrics
        .events_processed(&first.source, events.len() as u64, report.rows);
    if let Err(e) = app.inbox.complete_all(events).await {
        tracing::warn!(error = %e, "processed, but could not mark the events done; they will be processed again");
    }
    Ok(())
}

async fn process(app: &App, event: InboxEvent) {
    let outcome = match app.sources.iter().find(|s| s.name() == event.source) {
        None => Err(format!("source `{}` is not configured", event.source)),
        Some(source) => match app.ensure_prepared(source).await {
            Err(e) => Err(format!("cannot prepare the destination: {e}")),
            Ok(()) => {
                let events = source.process_push(event.payload.clone());
                let report = app
                    .pipeline
                    .commit_events(&**source, &*app.dest, PUSH_STREAM, events)
                    .await;
                match report.status {
                    LoadStatus::Succeeded => Ok(report.rows),
                    _ => Err(report.error.unwrap_or_else(|| "processing failed".into())),
                }
            }
        },
    };
    match outcome {
        Ok(rows) => {
            app.metrics.events_processed(&event.source, 1, rows);
            if let Err(e) = app.inbox.complete(&event).await {
                tracing::warn!(source = %event.source, event_id = %event.event_id, error = %e, "processed, but could not mark it done; it will be processed again");
            }
        }
        Err(error) => {
            let dead = event.attempts.saturating_add(1) >= app.config.max_attempts;
            app.metrics.event_failed(&event.source, dead);
            let retry_in = backoff(event.attempts);
            if dead {
                tracing::error!(source = %event.source, event_id = %event.event_id, attempts = event.attempts + 1, error, "event set aside after too many attempts");
            } else {
                tracing::warn!(source = %event.source, event_id = %event.event_id, attempts = event.attempts + 1, retry_in = ?retry_in, error, "processing failed; will retry");
            }
            if let Err(e) = app.inbox.fail(&event, &error, retry_in, dead).await {
                tracing::warn!(error = %e, "could not record the failed attempt");
            }
        }
    }
}
