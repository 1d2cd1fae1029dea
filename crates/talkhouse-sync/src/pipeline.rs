//! The one way records reach a destination, whichever path brought them.
//!
//! A [`Pipeline`] holds what every load shares: the statements that lay the cross-vendor model
//! over the sources' tables, the per-row enrichment (sentiment, language) and the batch caps.
//! `talkhouse sync`, `load`, `demo` and every path of `talkhouse serve` (scheduled syncs,
//! webhooks, triggers) run records through the same pipeline, so the path a record took does not
//! change the row that lands. Callers only choose *what* to run: which sources, a full refresh,
//! progress bars.

use std::sync::Arc;

use talkhouse_model::{Destination, DestinationError, EventStream, Source};

use crate::engine::{self, BatchConfig, Enricher, Progress, StreamReport, SyncOptions, SyncReport};

/// What every load runs: model views, enrichment, batch caps. Cheap to clone.
#[derive(Clone, Default)]
pub struct Pipeline {
    model_views: Arc<[String]>,
    enricher: Option<Arc<dyn Enricher>>,
    batch: BatchConfig,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("model_views", &self.model_views.len())
            .field("enricher", &self.enricher.is_some())
            .field("batch", &self.batch)
            .finish()
    }
}

/// What a caller chooses for one run; everything else comes from the [`Pipeline`].
#[derive(Clone, Default)]
pub struct Run {
    /// Ignore committed cursors and read everything again.
    pub full_refresh: bool,
    /// Only these streams (all when `None`).
    pub streams: Option<Vec<String>>,
    /// Progress callbacks.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Pipeline {
    /// A pipeline that creates `model_views` (statements run after the sources' tables exist,
    /// in order) and runs `enricher` on every row before it is written.
    pub fn new(model_views: Vec<String>, enricher: Option<Arc<dyn Enricher>>) -> Self {
        Self {
            model_views: model_views.into(),
            enricher,
            batch: BatchConfig::default(),
        }
    }

    /// The same pipeline with other batch caps.
    #[must_use]
    pub fn with_batch(mut self, batch: BatchConfig) -> Self {
        self.batch = batch;
        self
    }

    /// The engine options of one run.
    pub fn options(&self, run: Run) -> SyncOptions {
        SyncOptions {
            full_refresh: run.full_refresh,
            batch: self.batch,
            streams: run.streams,
            progress: run.progress,
            enricher: self.enricher.clone(),
        }
    }

    /// Creates the sources' tables and views, then the model views over them. Idempotent.
    ///
    /// # Errors
    /// When the destination refuses.
    pub async fn prepare(
        &self,
        sources: &[Arc<dyn Source>],
        dest: &dyn Destination,
    ) -> Result<(), DestinationError> {
        for s in sources {
            engine::prepare(&**s, dest).await?;
        }
        if !sources.is_empty() {
            for stmt in self.model_views.iter() {
                dest.execute(stmt).await?;
            }
        }
        Ok(())
    }

    /// Runs every stream of `source` once (see [`engine::sync_source`]).
    pub async fn sync(
        &self,
        source: Arc<dyn Source>,
        dest: Arc<dyn Destination>,
        run: Run,
    ) -> SyncReport {
        engine::sync_source(source, dest, &self.options(run)).await
    }

    /// Commits the events of a push (a webhook or trigger) as one run of `stream` (see
    /// [`engine::commit_events`]).
    pub async fn commit_events(
        &self,
        source: &dyn Source,
        dest: &dyn Destination,
        stream: &str,
        events: EventStream<'_>,
    ) -> StreamReport {
        engine::commit_events(source, dest, stream, events, &self.options(Run::default())).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use talkhouse_model::{Row, TableRef};

    struct Mark;

    impl Enricher for Mark {
        fn enrich(&self, row: &mut Row) {
            row.put("marked", true);
        }
    }

    #[test]
    fn every_run_carries_the_pipelines_enricher_and_batch_caps() {
        let batch = BatchConfig {
            max_rows: 7,
            ..BatchConfig::default()
        };
        let p = Pipeline::new(Vec::new(), Some(Arc::new(Mark))).with_batch(batch);
        let opts = p.options(Run {
            full_refresh: true,
            ..Run::default()
        });
        assert!(opts.full_refresh);
        assert_eq!(opts.batch, batch);
        let mut row = Row::new(TableRef::source("t"));
        opts.enricher.unwrap().enrich(&mut row);
        assert!(row.get("marked").is_some());
    }
}
