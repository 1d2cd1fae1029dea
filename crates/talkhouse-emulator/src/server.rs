//! Running an emulator on a loopback port, with its control endpoints.
//!
//! Besides the vendor's API, every emulator answers:
//! * `GET /_emulator/clock` → `{"now": "…"}`; `POST /_emulator/clock` with `{"advance": "1d"}` or
//!   `{"set": "2026-01-01T00:00:00Z"}`;
//! * `GET /_emulator/truth` → the [`GroundTruth`] at the current clock;
//! * `GET /_emulator/faults` → counts of injected faults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::Faults;
use crate::{Clock, Credentials, EmulatorOptions, GroundTruth, Vendor};

/// What a vendor module hands the server.
pub struct VendorApp {
    /// The vendor's API routes.
    pub router: Router,
    /// What a connector needs besides the base URL.
    pub credentials: Credentials,
    /// Ground truth at the current clock.
    pub truth: Arc<dyn Fn() -> GroundTruth + Send + Sync>,
}

/// A running emulator.
#[derive(Debug)]
pub struct Running {
    /// Which vendor.
    pub vendor: Vendor,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// What a connector needs besides the base URL.
    pub credentials: Credentials,
    /// The shared clock.
    pub clock: Clock,
    /// Injected-fault counters.
    pub faults: Faults,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone)]
struct Control {
    clock: Clock,
    truth: Arc<dyn Fn() -> GroundTruth + Send + Sync>,
    faults: Faults,
}

/// Builds the vendor's app for these options.
pub fn app(vendor: Vendor, opts: &EmulatorOptions) -> VendorApp {
    match vendor {
        Vendor::Gladly => crate::gladly::app(opts),
        Vendor::Giosg => crate::giosg::app(opts),
        Vendor::Ada => crate::ada::app(opts),
        Vendor::Ultimate => crate::ultimate::app(opts),
    }
}

/// Starts one vendor's emulator on `127.0.0.1:port` (0 picks a free port).
///
/// # Errors
/// When the port cannot be bound.
pub async fn start(vendor: Vendor, opts: &EmulatorOptions, port: u16) -> std::io::Result<Running> {
    let app = app(vendor, opts);
    serve(vendor, app, opts, port).await
}

/// Serves a built app with control endpoints and the fault layer.
///
/// # Errors
/// When the port cannot be bound.
pub async fn serve(
    vendor: Vendor,
    app: VendorApp,
    opts: &EmulatorOptions,
    port: u16,
) -> std::io::Result<Running> {
    let faults = Faults::new(opts.faults.clone(), opts.seed);
    let control = Control {
        clock: opts.clock.clone(),
        truth: app.truth.clone(),
        faults: faults.clone(),
    };
    let control_routes = Router::new()
        .route("/_emulator/clock", get(get_clock).post(post_clock))
        .route("/_emulator/truth", get(get_truth))
        .route("/_emulator/faults", get(get_faults))
        .with_state(control);
    let router = app
        .router
        .merge(control_routes)
        .layer(axum::middleware::from_fn_with_state(
            faults.clone(),
            crate::faults::inject,
        ));
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(vendor = %vendor, error = %err, "emulator server stopped");
        }
    });
    Ok(Running {
        vendor,
        base_url: format!("http://{addr}"),
        addr,
        credentials: app.credentials,
        clock: opts.clock.clone(),
        faults,
        shutdown: Some(tx),
        task,
    })
}

async fn get_clock(State(c): State<Control>) -> Json<serde_json::Value> {
    Json(json!({ "now": c.clock.now().to_rfc3339() }))
}

#[derive(serde::Deserialize)]
struct ClockChange {
    advance: Option<String>,
    set: Option<String>,
}

async fn post_clock(State(c): State<Control>, Json(change): Json<ClockChange>) -> Response {
    if let Some(set) = change.set {
        match chrono::DateTime::parse_from_rfc3339(&set) {
            Ok(t) => c.clock.set(t.with_timezone(&chrono::Utc)),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("bad `set`: {e}")).into_response(),
        }
    }
    if let Some(adv) = change.advance {
        match crate::clock::parse_duration(&adv) {
            Some(d) => c.clock.advance(d),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    "bad `advance`: use 90s, 15m, 2h or 7d",
                )
                    .into_response();
            }
        }
    }
    Json(json!({ "now": c.clock.now().to_rfc3339() })).into_response()
}

async fn get_truth(State(c): State<Control>) -> Json<GroundTruth> {
    Json((c.truth)())
}

async fn get_faults(State(c): State<Control>) -> Json<serde_json::Value> {
    let n = &c.faults.counters;
    Json(json!({
        "requests": n.requests.load(Ordering::Relaxed),
        "http500": n.http500.load(Ordering::Relaxed),
        "http429": n.http429.load(Ordering::Relaxed),
        "resets": n.resets.load(Ordering::Relaxed),
    }))
}
