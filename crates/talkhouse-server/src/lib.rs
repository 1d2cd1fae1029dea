//! `talkhouse serve`: the long-running service.
//!
//! One process that
//!
//! * answers vendors' pushes: `POST /webhooks/{source}` and `GET|POST /triggers/{source}`, where
//!   `{source}` is a configured source name or a vendor (the first source of that vendor). The
//!   source's [`Source::verify_push`] decides: `Accept` stores the event durably in the
//!   [inbox](inbox) *before* the 2xx (a duplicate `(source, event_id)` is acknowledged and not
//!   stored again), `Ignore` answers 200, `Reject` answers its status (401, 400, 404);
//! * processes the inbox with a pool of workers: [`Source::process_push`] turns an event into
//!   rows, which are committed like a sync's ([`talkhouse_sync::commit_events`]); a failed
//!   attempt is retried with backoff; after a crash or restart every unprocessed event is
//!   processed, and processing is idempotent by event id;
//! * runs each source's sync at its `[serve] schedule` interval, never two runs of one source at
//!   once (across instances too, with the PostgreSQL inbox), catching up a missed run once; each
//!   run starts with the source's [`Source::scheduled_upkeep`], if any (ending idle chats, say);
//! * reports `/healthz` (alive), `/readyz` (destination answers [`Destination::ping`]) and
//!   `/metrics` (Prometheus text);
//! * shuts down gracefully when the given future resolves: stops accepting, finishes in-flight
//!   requests, events and syncs (up to `shutdown_grace`), and leaves the rest in the inbox.
//!
//! Request bodies over `max_body_bytes` get 413, requests slower than `request_timeout` get 408.
//!
//! ```no_run
//! # async fn run(sources: Vec<std::sync::Arc<dyn talkhouse_model::Source>>,
//! #              dest: std::sync::Arc<dyn talkhouse_model::Destination>) -> Result<(), talkhouse_server::ServerError> {
//! let config: talkhouse_server::ServeConfig = toml::from_str(r#"listen = "127.0.0.1:8080""#).unwrap();
//! talkhouse_server::serve(config, sources, dest, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod config;
mod http;
pub mod inbox;
mod metrics;
mod scheduler;
mod worker;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use talkhouse_model::{Destination, Source};
use talkhouse_sync::Pipeline;
use tokio::sync::watch;

pub use config::{InboxKind, Interval, IntervalError, ServeConfig, ServeConfigError};
pub use inbox::{Inbox, InboxError, InboxEvent, Stored};
pub use metrics::Metrics;

/// Why `serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The `[serve]` section cannot work.
    #[error("[serve]: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The inbox failed.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Http(#[source] std::io::Error),
}

/// Everything the handlers, workers and schedulers share.
pub(crate) struct App {
    pub(crate) config: ServeConfig,
    pub(crate) sources: Vec<Arc<dyn Source>>,
    pub(crate) dest: Arc<dyn Destination>,
    pub(crate) inbox: Arc<dyn Inbox>,
    pub(crate) metrics: Arc<Metrics>,
    /// The one pipeline of every load (`talkhouse_analytics::pipeline`): a row that arrives by
    /// webhook, trigger or schedule is the row `talkhouse sync` writes.
    pub(crate) pipeline: Pipeline,
    prepared: tokio::sync::Mutex<HashSet<String>>,
}

impl App {
    /// The source a path segment names: a configured name first, else the first source of
    /// that vendor.
    pub(crate) fn route(&self, name: &str) -> Option<&Arc<dyn Source>> {
        self.sources
            .iter()
            .find(|s| s.name() == name)
            .or_else(|| self.sources.iter().find(|s| s.vendor() == name))
    }

    /// Creates the source's tables and the model views once (retried on the next call if it
    /// failed).
    pub(crate) async fn ensure_prepared(&self, source: &Arc<dyn Source>) -> Result<(), String> {
        let mut done = self.prepared.lock().await;
        if done.contains(source.name()) {
            return Ok(());
        }
        self.pipeline
            .prepare(std::slice::from_ref(source), &*self.dest)
            .await
            .map_err(|e| e.to_string())?;
        done.insert(source.name().to_owned());
        Ok(())
    }
}

/// A bound, not yet running server (lets callers learn the port before it runs).
pub struct Server {
    app: Arc<App>,
    listener: tokio::net::TcpListener,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Opens the inbox the config names and binds the listen address.
    ///
    /// # Errors
    /// Bad configuration (a schedule naming no source, a postgres inbox without URL), an inbox
    /// that cannot be opened, an address that cannot be bound.
    pub async fn bind(
        config: ServeConfig,
        sources: Vec<Arc<dyn Source>>,
        dest: Arc<dyn Destination>,
    ) -> Result<Self, ServerError> {
        let dedupe = config.dedupe_window.0;
        let inbox: Arc<dyn Inbox> = match config.inbox {
            InboxKind::File => {
                let dir = config.inbox_dir.clone();
                let opened =
                    tokio::task::spawn_blocking(move || inbox::file::FileInbox::open(&dir, dedupe))
                        .await
                        .map_err(|e| ServerError::Config(format!("opening the inbox: {e}")))??;
                Arc::new(opened)
            }
            InboxKind::Postgres => {
                let Some(url) = &config.inbox_url else {
                    return Err(ServerError::Config(
                        "inbox = \"postgres\" needs inbox_url".into(),
                    ));
                };
                Arc::new(
                    inbox::postgres::PostgresInbox::open(url.expose(), config.lease.0, dedupe)
                        .await?,
                )
            }
        };
        Self::bind_with_inbox(config, sources, dest, inbox).await
    }

    /// Like [`Server::bind`] with an inbox of the caller's.
    ///
    /// # Errors
    /// Bad configuration or an address that cannot be bound.
    pub async fn bind_with_inbox(
        config: ServeConfig,
        sources: Vec<Arc<dyn Source>>,
        dest: Arc<dyn Destination>,
        inbox: Arc<dyn Inbox>,
    ) -> Result<Self, ServerError> {
        let configured: Vec<(&str, &str)> =
            sources.iter().map(|s| (s.name(), s.vendor())).collect();
        config
            .check(&configured)
            .map_err(|e| ServerError::Config(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let metrics = Arc::new(Metrics::new(&sources));
        let app = Arc::new(App {
            config,
            sources,
            dest,
            inbox,
            metrics,
            pipeline: talkhouse_analytics::pipeline(),
            prepared: tokio::sync::Mutex::default(),
        });
        Ok(Self { app, listener })
    }

    /// The bound address (useful with port 0).
    ///
    /// # Errors
    /// When the socket cannot say.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics registry (what `/metrics` renders).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.app.metrics.clone()
    }

    /// Runs until `shutdown` resolves, then stops gracefully.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let app = self.app;
        let addr = self.listener.local_addr().ok();
        tracing::info!(addr = ?addr, sources = app.sources.len(), "talkhouse serve listening");
        for source in &app.sources {
            if let Err(e) = app.ensure_prepared(source).await {
                tracing::warn!(source = source.name(), error = %e, "cannot prepare the destination yet; will retry");
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for id in 0..app.config.workers {
            tasks.spawn(worker::run(app.clone(), id, stop_rx.clone()));
        }
        for (key, every) in &app.config.schedule {
            if let Some(source) = app.route(key) {
                tasks.spawn(scheduler::run(
                    app.clone(),
                    source.clone(),
                    every.0,
                    stop_rx.clone(),
                ));
            }
        }
        let router = http::router(app.clone());
        let signal = {
            let stop_tx = stop_tx.clone();
            async move {
                shutdown.await;
                tracing::info!("shutdown requested: no new requests; finishing in-flight work");
                let _ = stop_tx.send(true);
            }
        };
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(signal)
            .await;
        let _ = stop_tx.send(true);
        let grace = app.config.shutdown_grace.0;
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(grace = ?grace, "in-flight work did not finish in time; it stays in the inbox or is re-run");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        app.inbox.close().await?;
        tracing::info!("talkhouse serve stopped");
        served.map_err(ServerError::Http)
    }
}

/// Runs `talkhouse serve` until `shutdown` resolves (the CLI passes SIGTERM or Ctrl-C).
///
/// # Errors
/// See [`Server::bind`] and [`Server::run`].
pub async fn serve(
    config: ServeConfig,
    sources: Vec<Arc<dyn Source>>,
    dest: Arc<dyn Destination>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::bind(config, sources, dest)
        .await?
        .run(shutdown)
        .await
}
