//! The one HTTP client policy every connector uses.
//!
//! * **Auth**: [`Auth`] — Basic, `Token`, `Bearer` or a raw header; secrets stay [`Secret`]s and
//!   never reach a log line.
//! * **Rate limits**: a token bucket per vendor and per endpoint ([`Client::limit_endpoint`]),
//!   from the source's configuration (governor).
//! * **Retries**: 429, 408, 5xx but 501, and connection errors, with full-jitter exponential
//!   backoff; `Retry-After` (seconds or HTTP date) and `X-RateLimit-Reset` are honoured. The
//!   decision is the pure function [`retry::decide`].
//! * **Timeouts and bounded concurrency**.
//! * **Pagination** as a lazy [`paginate`] stream that always ends.
//!
//! ```no_run
//! # async fn demo() -> Result<(), talkhouse_http::HttpError> {
//! use talkhouse_http::{Auth, Client, ClientConfig, Request};
//! let client = Client::new(ClientConfig::new("ada", Auth::Bearer("t0ken".into())).rate(3.0))?;
//! let page: serde_json::Value =
//!     client.json(Request::get("http://127.0.0.1:9/api/v2/export/messages", "messages")).await?;
//! # let _ = page; Ok(()) }
//! ```

mod client;
mod error;
mod paginate;
pub mod retry;

pub use client::{Auth, BodyStream, Client, ClientConfig, HttpStats, Request};
pub use error::{HttpError, HttpErrorKind};
pub use paginate::paginate;
pub use retry::RetryPolicy;
pub use talkhouse_model::Secret;
