//! Fault injection: `--faults 'http500=0.1,reset=0.05,latency=50ms,http429=0.05'`.
//!
//! * `http500=P`: answer 500 with probability P;
//! * `http429=P`: answer 429 with `Retry-After: 1` with probability P (bursts of 429s come from
//!   the vendors' own rate limits in strict mode);
//! * `reset=P`: send headers, then drop the connection mid-body, with probability P;
//! * `latency=D`: delay every answer by D (`50ms`, `1s`).
//!
//! Paths under `/_emulator/` (the control endpoints) are never faulted.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which faults to inject, and how often.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    /// Probability of a 500.
    pub http500: f64,
    /// Probability of a generic 429 with `Retry-After: 1`.
    pub http429: f64,
    /// Probability of a dropped connection.
    pub reset: f64,
    /// Added latency per answer.
    pub latency: Duration,
}

impl FaultSpec {
    /// Parses `http500=0.1,reset=0.05,latency=50ms`.
    ///
    /// # Errors
    /// Names the item that is not understood.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("fault `{item}` is not of the form name=value"))?;
            let prob = || -> Result<f64, String> {
                let p: f64 = v
                    .parse()
                    .map_err(|_| format!("fault `{k}` wants a probability, got `{v}`"))?;
                if (0.0..=1.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!(
                        "fault `{k}` wants a probability in [0, 1], got {p}"
                    ))
                }
            };
            match k {
                "http500" => out.http500 = prob()?,
                "http429" => out.http429 = prob()?,
                "reset" => out.reset = prob()?,
                "latency" => {
                    out.latency = crate::clock::parse_duration(v)
                        .and_then(|d| d.to_std().ok())
                        .ok_or_else(|| {
                            format!("fault `latency` wants a duration like 50ms, got `{v}`")
                        })?;
                }
                other => {
                    return Err(format!(
                        "unknown fault `{other}` (known: http500, http429, reset, latency)"
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        self.http500 > 0.0 || self.http429 > 0.0 || self.reset > 0.0 || !self.latency.is_zero()
    }
}

/// Counts of injected faults, for tests that check the rates.
#[derive(Debug, Default)]
pub struct FaultCounters {
    /// Requests seen by the layer (control paths excluded).
    pub requests: AtomicU64,
    /// 500s injected.
    pub http500: AtomicU64,
    /// 429s injected.
    pub http429: AtomicU64,
    /// Connections dropped.
    pub resets: AtomicU64,
}

/// State of the fault layer.
#[derive(Debug, Clone)]
pub struct Faults {
    spec: FaultSpec,
    rng: Arc<Mutex<StdRng>>,
    /// What was injected so far.
    pub counters: Arc<FaultCounters>,
}

impl Faults {
    /// A fault layer state with its own seeded random source.
    pub fn new(spec: FaultSpec, seed: u64) -> Self {
        Self {
            spec,
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed ^ 0x000f_a017))),
            counters: Arc::new(FaultCounters::default()),
        }
    }

    fn roll(&self) -> f64 {
        self.rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .random::<f64>()
    }
}

/// The axum middleware: use with `axum::middleware::from_fn_with_state(faults, inject)`.
pub async fn inject(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_emulator/") {
        return next.run(req).await;
    }
    faults.counters.requests.fetch_add(1, Ordering::Relaxed);
    if !faults.spec.latency.is_zero() {
        tokio::time::sleep(faults.spec.latency).await;
    }
    let spec = &faults.spec;
    if spec.http500 > 0.0 && faults.roll() < spec.http500 {
        faults.counters.http500.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected fault: internal server error",
        )
            .into_response();
    }
    if spec.http429 > 0.0 && faults.roll() < spec.http429 {
        faults.counters.http429.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "injected fault: too many requests",
        )
            .into_response();
    }
    let reset = spec.reset > 0.0 && faults.roll() < spec.reset;
    let resp = next.run(req).await;
    if reset {
        faults.counters.resets.fetch_add(1, Ordering::Relaxed);
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        let broken = futures::stream::iter([
            Ok(bytes::Bytes::from_static(b"{\"partial\":")),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            )),
        ]);
        return Response::from_parts(parts, Body::from_stream(broken));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_spec() {
        let f = FaultSpec::parse("http500=0.1,reset=0.05,latency=50ms").expect("valid spec");
        assert!((f.http500 - 0.1).abs() < f64::EPSILON);
        assert!((f.reset - 0.05).abs() < f64::EPSILON);
        assert_eq!(f.latency, Duration::from_millis(50));
        assert!(FaultSpec::parse("http500=2").is_err());
        assert!(FaultSpec::parse("boom=1").is_err());
    }
}
