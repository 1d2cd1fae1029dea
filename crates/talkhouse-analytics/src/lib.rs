//! Analytics over the cross-vendor model: views, metrics, sentiment and the report.
//!
//! * [`model_views`]: the views `talkhouse.messages`, `talkhouse.conversations`,
//!   `talkhouse.sessions`, `talkhouse.work`, `talkhouse.first_responses` and
//!   `talkhouse.session_first_responses` (with `talkhouse.current_ids`, merges followed) over
//!   the base tables every source writes (`talkhouse.model_*`), in portable SQL.
//! * [`sentiment`] / [`enrich_row`]: a score in [-1, 1] per English message (VADER), `None` for
//!   other languages; [`detect_language`] tells which.
//! * [`report`]: every figure of `talkhouse report` through
//!   [`Destination::query`](talkhouse_model::Destination::query), rendered by
//!   [`Report::to_json`], [`Report::to_table`] and [`Report::to_html`].
//! * [`metrics`]: the definitions (percentiles, rates, first response) in plain Rust.
//! * [`pipeline`]: the one [`Pipeline`](talkhouse_sync::Pipeline) every load runs through
//!   (these views, sentiment and language on every message).
//!
//! ```
//! let views = talkhouse_analytics::model_view_statements();
//! assert!(views[0].starts_with("CREATE OR REPLACE VIEW talkhouse.messages AS SELECT"));
//! ```

mod lang;
pub mod metrics;
mod render;
pub mod report;
pub mod sentiment;
pub mod sql;
mod views;

pub use lang::detect_language;
pub use render::human_seconds;
pub use report::{AnalyticsError, Report, ReportOptions, report, report_with};
pub use sentiment::{Sentiment, enrich_row, score_message, sentiment};
pub use views::{model_view_statements, model_views};

/// The pipeline every path that loads records runs through: `sync`, `load`, `demo` and each
/// path of `serve` (scheduled syncs, webhooks, triggers). It lays the cross-vendor views over the
/// sources' tables and scores sentiment and language on every message before it is written, so
/// a row is the same whichever path brought it.
pub fn pipeline() -> talkhouse_sync::Pipeline {
    talkhouse_sync::Pipeline::new(
        model_view_statements(),
        Some(std::sync::Arc::new(Sentiment)),
    )
}
