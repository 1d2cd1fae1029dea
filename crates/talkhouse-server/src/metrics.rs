//! `/metrics`: every family `serve` exports, kept in a [`prometheus_client`] registry and
//! rendered in the Prometheus text format (version 0.0.4).
//!
//! The crate owns the exposition (names, `_total` suffixes, label escaping, cumulative
//! buckets); this module only declares the families and records into them through typed
//! methods, so a metric name is written once. Counters are registered without `_total`: the
//! encoder appends it, so `events_received` is scraped as `talkhouse_events_received_total`.
//!
//! The vendor request counters (`talkhouse_vendor_{requests,retries,throttled,failures}_total`,
//! labelled `source` and `vendor`) are not recorded here: each source's HTTP client
//! (`talkhouse_http::HttpStats`) counts every request once, and a [`Collector`] reads those
//! totals through [`Source::http_counters`] at each scrape. `talkhouse.loads` (and so
//! `talkhouse status`) records what each stream run added to the same counters.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use talkhouse_model::{HttpCounters, Source};

/// The `Content-Type` of what [`Metrics::render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Buckets of the push acknowledgement time, in seconds.
const ACK_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of a scheduled sync's duration, in seconds.
const SYNC_BUCKETS: [f64; 10] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0,
];

/// `{source}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

/// `{source, status}`: an HTTP status or `succeeded`/`failed`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceStatus {
    source: String,
    status: String,
}

/// `{route, method, status}` of a request `serve` answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: String,
}

/// `{source, vendor}` of the vendor request counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VendorLabels {
    source: String,
    vendor: String,
}

type Counters<L> = Family<L, Counter>;
type Histograms = Family<SourceLabel, Histogram, fn() -> Histogram>;

/// The registry and its families (cheap handles: the registry holds clones of them).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Counters<RequestLabels>,
    push_ack: Histograms,
    events_received: Counters<SourceLabel>,
    events_duplicate: Counters<SourceLabel>,
    events_ignored: Counters<SourceLabel>,
    events_rejected: Counters<SourceStatus>,
    events_processed: Counters<SourceLabel>,
    events_failed: Counters<SourceLabel>,
    events_dead: Counters<SourceLabel>,
    event_rows: Counters<SourceLabel>,
    inbox_depth: Gauge,
    sync_runs: Counters<SourceStatus>,
    upkeep_runs: Counters<SourceStatus>,
    sync_skipped: Counters<SourceLabel>,
    sync_running: Family<SourceLabel, Gauge>,
    sync_duration: Histograms,
    sync_rows: Counters<SourceLabel>,
    sync_quarantined: Counters<SourceLabel>,
}

fn source(name: &str) -> SourceLabel {
    SourceLabel {
        source: name.to_owned(),
    }
}

fn source_status(name: &str, status: &str) -> SourceStatus {
    SourceStatus {
        source: name.to_owned(),
        status: status.to_owned(),
    }
}

fn ack_histogram() -> Histogram {
    Histogram::new(ACK_BUCKETS)
}

fn sync_histogram() -> Histogram {
    Histogram::new(SYNC_BUCKETS)
}

impl Metrics {
    /// A registry with every family, the vendor request counters read from `sources`.
    pub fn new(sources: &[Arc<dyn Source>]) -> Self {
        let mut registry = Registry::default();
        let mut counters = |name: &str, help: &str| {
            let family = Counters::<SourceLabel>::default();
            registry.register(name, help, family.clone());
            family
        };
        let events_received = counters(
            "talkhouse_events_received",
            "Pushed events stored in the inbox (duplicates not counted)",
        );
        let events_duplicate = counters(
            "talkhouse_events_duplicate",
            "Pushed events already in the inbox (acknowledged, not stored again)",
        );
        let events_ignored = counters(
            "talkhouse_events_ignored",
            "Pushes acknowledged without storing (pings)",
        );
        let events_processed = counters(
            "talkhouse_events_processed",
            "Inbox events processed and committed to the destination",
        );
        let events_failed = counters(
            "talkhouse_events_failed",
            "Failed processing attempts (retried with backoff)",
        );
        let events_dead = counters(
            "talkhouse_events_dead",
            "Events set aside after too many failed attempts",
        );
        let event_rows = counters(
            "talkhouse_event_rows",
            "Vendor rows committed from pushed events",
        );
        let sync_skipped = counters(
            "talkhouse_sync_skipped",
            "Scheduled syncs not started because one of the same source was running",
        );
        let sync_rows = counters(
            "talkhouse_sync_rows",
            "Vendor rows received by scheduled syncs",
        );
        let sync_quarantined = counters(
            "talkhouse_sync_quarantined",
            "Records quarantined by scheduled syncs",
        );

        let http_requests = Counters::<RequestLabels>::default();
        registry.register(
            "talkhouse_http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        let events_rejected = Counters::<SourceStatus>::default();
        registry.register(
            "talkhouse_events_rejected",
            "Pushes refused by the source's verification, by status",
            events_rejected.clone(),
        );
        let sync_runs = Counters::<SourceStatus>::default();
        registry.register(
            "talkhouse_sync_runs",
            "Scheduled syncs finished, by status",
            sync_runs.clone(),
        );
        let upkeep_runs = Counters::<SourceStatus>::default();
        registry.register(
            "talkhouse_upkeep_runs",
            "Sources' scheduled upkeep (vendor-side work before a scheduled sync), by status",
            upkeep_runs.clone(),
        );
        let inbox_depth = Gauge::default();
        registry.register(
            "talkhouse_inbox_depth",
            "Events stored and not yet processed",
            inbox_depth.clone(),
        );
        let sync_running = Family::<SourceLabel, Gauge>::default();
        registry.register(
            "talkhouse_sync_running",
            "1 while the source's scheduled sync runs",
            sync_running.clone(),
        );
        let push_ack: Histograms = Family::new_with_constructor(ack_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "talkhouse_push_ack",
            "Time from a push's arrival to its acknowledgement",
            Unit::Seconds,
            push_ack.clone(),
        );
        let sync_duration: Histograms =
            Family::new_with_constructor(sync_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "talkhouse_sync_duration",
            "Duration of scheduled syncs",
            Unit::Seconds,
            sync_duration.clone(),
        );
        registry.register_collector(Box::new(VendorRequests {
            sources: sources.to_vec(),
        }));
        Self {
            registry,
            http_requests,
            push_ack,
            events_received,
            events_duplicate,
            events_ignored,
            events_rejected,
            events_processed,
            events_failed,
            events_dead,
            event_rows,
            inbox_depth,
            sync_runs,
            upkeep_runs,
            sync_skipped,
            sync_running,
            sync_duration,
            sync_rows,
            sync_quarantined,
        }
    }

    /// Counts a request `serve` answered (`talkhouse_http_requests_total`).
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        self.http_requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status: status.to_string(),
            })
            .inc();
    }

    /// Records how long a push took to acknowledge (`talkhouse_push_ack_seconds`).
    pub fn push_acknowledged(&self, source_name: &str, seconds: f64) {
        self.push_ack
            .get_or_create(&source(source_name))
            .observe(seconds);
    }

    /// Counts a pushed event stored in the inbox (`talkhouse_events_received_total`).
    pub fn event_received(&self, source_name: &str) {
        self.events_received
            .get_or_create(&source(source_name))
            .inc();
    }

    /// Counts a pushed event the inbox already held (`talkhouse_events_duplicate_total`).
    pub fn event_duplicate(&self, source_name: &str) {
        self.events_duplicate
            .get_or_create(&source(source_name))
            .inc();
    }

    /// Counts a push acknowledged without storing (`talkhouse_events_ignored_total`).
    pub fn event_ignored(&self, source_name: &str) {
        self.events_ignored
            .get_or_create(&source(source_name))
            .inc();
    }

    /// Counts a push the source refused, by the status answered
    /// (`talkhouse_events_rejected_total`).
    pub fn event_rejected(&self, source_name: &str, status: u16) {
        self.events_rejected
            .get_or_create(&source_status(source_name, &status.to_string()))
            .inc();
    }

    /// Counts inbox events processed and committed, with the vendor rows they yielded
    /// (`talkhouse_events_processed_total`, `talkhouse_event_rows_total`).
    pub fn events_processed(&self, source_name: &str, events: u64, rows: u64) {
        let label = source(source_name);
        self.events_processed.get_or_create(&label).inc_by(events);
        self.event_rows.get_or_create(&label).inc_by(rows);
    }

    /// Counts a failed processing attempt, and whether the event was set aside for good
    /// (`talkhouse_events_failed_total`, `talkhouse_events_dead_total`).
    pub fn event_failed(&self, source_name: &str, dead: bool) {
        let label = source(source_name);
        self.events_failed.get_or_create(&label).inc();
        if dead {
            self.events_dead.get_or_create(&label).inc();
        }
    }

    /// Sets the number of events stored and not yet processed (`talkhouse_inbox_depth`).
    pub fn set_inbox_depth(&self, depth: u64) {
        self.inbox_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts a scheduled sync not started because one was running
    /// (`talkhouse_sync_skipped_total`).
    pub fn sync_skipped(&self, source_name: &str) {
        self.sync_skipped.get_or_create(&source(source_name)).inc();
    }

    /// Marks a scheduled sync of the source as running or not (`talkhouse_sync_running`).
    pub fn sync_running(&self, source_name: &str, running: bool) {
        self.sync_running
            .get_or_create(&source(source_name))
            .set(i64::from(running));
    }

    /// Counts a scheduled upkeep run (`talkhouse_upkeep_runs_total`).
    pub fn upkeep_run(&self, source_name: &str, succeeded: bool) {
        self.upkeep_runs
            .get_or_create(&source_status(source_name, outcome(succeeded)))
            .inc();
    }

    /// Records a finished scheduled sync: its status, duration, rows and quarantined records
    /// (`talkhouse_sync_runs_total`, `talkhouse_sync_duration_seconds`,
    /// `talkhouse_sync_rows_total`, `talkhouse_sync_quarantined_total`).
    pub fn sync_finished(
        &self,
        source_name: &str,
        succeeded: bool,
        seconds: f64,
        rows: u64,
        quarantined: u64,
    ) {
        let label = source(source_name);
        self.sync_runs
            .get_or_create(&source_status(source_name, outcome(succeeded)))
            .inc();
        self.sync_duration.get_or_create(&label).observe(seconds);
        self.sync_rows.get_or_create(&label).inc_by(rows);
        self.sync_quarantined
            .get_or_create(&label)
            .inc_by(quarantined);
    }

    /// The text exposition of every family that has a sample ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            // Writing to a String cannot fail; a collector's error would land here.
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

fn outcome(succeeded: bool) -> &'static str {
    if succeeded { "succeeded" } else { "failed" }
}

/// The vendor request counters, read from each source's HTTP client at scrape time.
struct VendorRequests {
    sources: Vec<Arc<dyn Source>>,
}

impl std::fmt::Debug for VendorRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorRequests")
            .field("sources", &self.sources.len())
            .finish()
    }
}

/// A vendor counter family: name (without `_total`), help, and the field it reads.
type VendorFamily = (&'static str, &'static str, fn(&HttpCounters) -> u64);

/// The vendor counter families.
const VENDOR_FAMILIES: [VendorFamily; 4] = [
    (
        "talkhouse_vendor_requests",
        "HTTP attempts sent to the vendor's API (retries included).",
        |c| c.attempts,
    ),
    (
        "talkhouse_vendor_retries",
        "Retried vendor HTTP requests.",
        |c| c.retries,
    ),
    (
        "talkhouse_vendor_throttled",
        "429 answers received from the vendor.",
        |c| c.throttled,
    ),
    (
        "talkhouse_vendor_failures",
        "Vendor HTTP requests that failed for good.",
        |c| c.failures,
    ),
];

impl Collector for VendorRequests {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counted: Vec<(VendorLabels, HttpCounters)> = self
            .sources
            .iter()
            .filter_map(|s| {
                let labels = VendorLabels {
                    source: s.name().to_owned(),
                    vendor: s.vendor().to_owned(),
                };
                s.http_counters().map(|c| (labels, c))
            })
            .collect();
        if counted.is_empty() {
            return Ok(());
        }
        for (name, help, field) in VENDOR_FAMILIES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, counters) in &counted {
                ConstCounter::new(field(counters)).encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_labels_and_histograms() {
        let m = Metrics::new(&[]);
        m.event_received("gla\"dly");
        m.push_acknowledged("s", 0.003);
        m.sync_finished("s", true, 2.0, 7, 1);
        let text = m.render();
        for want in [
            "# TYPE talkhouse_events_received_total counter\n",
            "talkhouse_events_received_total{source=\"gla\\\"dly\"} 1\n",
            "# HELP talkhouse_push_ack_seconds Time from a push's arrival to its acknowledgement.\n",
            "talkhouse_push_ack_seconds_bucket{source=\"s\",le=\"0.0025\"} 0\n",
            "talkhouse_push_ack_seconds_bucket{source=\"s\",le=\"0.005\"} 1\n",
            "talkhouse_push_ack_seconds_bucket{source=\"s\",le=\"+Inf\"} 1\n",
            "talkhouse_push_ack_seconds_count{source=\"s\"} 1\n",
            "talkhouse_sync_runs_total{source=\"s\",status=\"succeeded\"} 1\n",
            "talkhouse_sync_duration_seconds_bucket{source=\"s\",le=\"1\"} 0\n",
            "talkhouse_sync_duration_seconds_bucket{source=\"s\",le=\"5\"} 1\n",
            "talkhouse_sync_rows_total{source=\"s\"} 7\n",
            "talkhouse_inbox_depth 0\n",
        ] {
            assert!(text.contains(want), "lacks {want:?} in\n{text}");
        }
        // No source keeps HTTP counters: no vendor families.
        assert!(!text.contains("talkhouse_vendor_"), "{text}");
    }
}
