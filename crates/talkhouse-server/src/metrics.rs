//! Counters, gauges and histograms rendered in the Prometheus text format (version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

/// Kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Every family `serve` exports: name, kind, help.
const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "talkhouse_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by route and status.",
    ),
    (
        "talkhouse_push_ack_seconds",
        Kind::Histogram,
        "Time from a push's arrival to its acknowledgement.",
    ),
    (
        "talkhouse_events_received_total",
        Kind::Counter,
        "Pushed events stored in the inbox (duplicates not counted).",
    ),
    (
        "talkhouse_events_duplicate_total",
        Kind::Counter,
        "Pushed events already in the inbox (acknowledged, not stored again).",
    ),
    (
        "talkhouse_events_ignored_total",
        Kind::Counter,
        "Pushes acknowledged without storing (pings).",
    ),
    (
        "talkhouse_events_rejected_total",
        Kind::Counter,
        "Pushes refused by the source's verification, by status.",
    ),
    (
        "talkhouse_events_processed_total",
        Kind::Counter,
        "Inbox events processed and committed to the destination.",
    ),
    (
        "talkhouse_events_failed_total",
        Kind::Counter,
        "Failed processing attempts (retried with backoff).",
    ),
    (
        "talkhouse_events_dead_total",
        Kind::Counter,
        "Events set aside after too many failed attempts.",
    ),
    (
        "talkhouse_event_rows_total",
        Kind::Counter,
        "Vendor rows committed from pushed events.",
    ),
    (
        "talkhouse_inbox_depth",
        Kind::Gauge,
        "Events stored and not yet processed.",
    ),
    (
        "talkhouse_sync_runs_total",
        Kind::Counter,
        "Scheduled syncs finished, by status.",
    ),
    (
        "talkhouse_upkeep_runs_total",
        Kind::Counter,
        "Sources' scheduled upkeep (vendor-side work before a scheduled sync), by status.",
    ),
    (
        "talkhouse_sync_skipped_total",
        Kind::Counter,
        "Scheduled syncs not started because one of the same source was running.",
    ),
    (
        "talkhouse_sync_running",
        Kind::Gauge,
        "1 while the source's scheduled sync runs.",
    ),
    (
        "talkhouse_sync_duration_seconds",
        Kind::Histogram,
        "Duration of scheduled syncs.",
    ),
    (
        "talkhouse_sync_rows_total",
        Kind::Counter,
        "Vendor rows received by scheduled syncs.",
    ),
    (
        "talkhouse_sync_quarantined_total",
        Kind::Counter,
        "Records quarantined by scheduled syncs.",
    ),
    (
        "talkhouse_vendor_requests_total",
        Kind::Counter,
        "HTTP attempts sent to the vendor's API.",
    ),
    (
        "talkhouse_vendor_retries_total",
        Kind::Counter,
        "Retried vendor HTTP requests.",
    ),
    (
        "talkhouse_vendor_throttled_total",
        Kind::Counter,
        "429 answers received from the vendor.",
    ),
    (
        "talkhouse_vendor_failures_total",
        Kind::Counter,
        "Vendor HTTP requests that failed for good.",
    ),
];

const ACK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const SYNC_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

type Labels = Vec<(String, String)>;

#[derive(Debug, Default)]
struct Inner {
    values: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(out: &mut String, labels: &Labels, extra: Option<(&str, &str)>) {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape(v)));
    }
    if !parts.is_empty() {
        let _ = write!(out, "{{{}}}", parts.join(","));
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `v` to a counter.
    pub fn add(&self, name: &'static str, pairs: &[(&str, &str)], v: f64) {
        *self
            .lock()
            .values
            .entry((name, labels(pairs)))
            .or_insert(0.0) += v;
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1.0);
    }

    /// Sets a gauge (or a counter whose total is kept elsewhere).
    pub fn set(&self, name: &'static str, pairs: &[(&str, &str)], v: f64) {
        self.lock().values.insert((name, labels(pairs)), v);
    }

    /// Records one observation of a histogram.
    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], v: f64) {
        let bounds = if name.starts_with("talkhouse_sync") {
            SYNC_BUCKETS
        } else {
            ACK_BUCKETS
        };
        let mut inner = self.lock();
        let h = inner.histograms.entry((name, labels(pairs))).or_default();
        if h.buckets.is_empty() {
            h.buckets = vec![0; bounds.len()];
        }
        for (slot, bound) in h.buckets.iter_mut().zip(bounds) {
            if v <= *bound {
                *slot += 1;
            }
        }
        h.sum += v;
        h.count += 1;
    }

    /// The text exposition of every family.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        for (name, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
            if *kind == Kind::Histogram {
                let bounds = if name.starts_with("talkhouse_sync") {
                    SYNC_BUCKETS
                } else {
                    ACK_BUCKETS
                };
                for ((_, labels), h) in inner
                    .histograms
                    .range((*name, Vec::new())..)
                    .take_while(|((n, _), _)| n == name)
                {
                    for (count, bound) in h.buckets.iter().zip(bounds) {
                        out.push_str(name);
                        out.push_str("_bucket");
                        render_labels(&mut out, labels, Some(("le", &number(*bound))));
                        let _ = writeln!(out, " {count}");
                    }
                    let _ = write!(out, "{name}_bucket");
                    render_labels(&mut out, labels, Some(("le", "+Inf")));
                    let _ = writeln!(out, " {}", h.count);
                    let _ = write!(out, "{name}_sum");
                    render_labels(&mut out, labels, None);
                    let _ = writeln!(out, " {}", number(h.sum));
                    let _ = write!(out, "{name}_count");
                    render_labels(&mut out, labels, None);
                    let _ = writeln!(out, " {}", h.count);
                }
            } else {
                for ((_, labels), v) in inner
                    .values
                    .range((*name, Vec::new())..)
                    .take_while(|((n, _), _)| n == name)
                {
                    out.push_str(name);
                    render_labels(&mut out, labels, None);
                    let _ = writeln!(out, " {}", number(*v));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_labels_and_histograms() {
        let m = Metrics::new();
        m.inc("talkhouse_events_received_total", &[("source", "gla\"dly")]);
        m.observe("talkhouse_push_ack_seconds", &[("source", "s")], 0.003);
        let text = m.render();
        assert!(
            text.contains("talkhouse_events_received_total{source=\"gla\\\"dly\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("talkhouse_push_ack_seconds_bucket{source=\"s\",le=\"0.0025\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("talkhouse_push_ack_seconds_bucket{source=\"s\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("talkhouse_push_ack_seconds_count{source=\"s\"} 1\n"),
            "{text}"
        );
    }
}
