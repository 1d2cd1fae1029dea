//! HTTP errors with their context as fields.

use talkhouse_model::SourceError;

/// What went wrong with a request, after the retry policy gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// Could not connect, or the connection dropped.
    Connect,
    /// No answer in time.
    Timeout,
    /// The server answered with a non-success status.
    Status(u16),
    /// The body was not what we expected.
    Decode,
    /// The request could not be built (bad URL, bad header).
    Build,
}

/// A failed request, with the vendor, URL (never credentials) and how many attempts were made.
#[derive(Debug, thiserror::Error)]
#[error("{vendor}: {method} {url} failed after {attempts} attempt(s): {message}")]
pub struct HttpError {
    /// Vendor name.
    pub vendor: &'static str,
    /// HTTP method.
    pub method: String,
    /// URL, without credentials (tokens are never put in URLs by this crate).
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// What went wrong.
    pub kind: HttpErrorKind,
    /// Detail: the server's message (truncated) or the transport error.
    pub message: String,
}

impl HttpError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            HttpErrorKind::Status(s) => Some(s),
            _ => None,
        }
    }
}

impl From<HttpError> for SourceError {
    fn from(e: HttpError) -> Self {
        match e.kind {
            HttpErrorKind::Status(status @ (401 | 403)) => SourceError::Auth {
                vendor: e.vendor,
                status,
                detail: format!("{} {}: {}", e.method, e.url, e.message),
            },
            _ => SourceError::Http {
                vendor: e.vendor,
                url: e.url.clone(),
                status: e.status(),
                message: format!("{} after {} attempt(s)", e.message, e.attempts),
            },
        }
    }
}
