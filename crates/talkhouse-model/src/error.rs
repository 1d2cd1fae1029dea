//! Errors at the edges of sources and destinations.

/// Why a source stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The vendor refused our credentials.
    #[error("{vendor} rejected the credentials ({status}): {detail}")]
    Auth {
        /// Vendor name.
        vendor: &'static str,
        /// HTTP status.
        status: u16,
        /// What the vendor said (never our credentials).
        detail: String,
    },
    /// An HTTP request failed after the retry policy gave up.
    #[error("{vendor} request {url} failed: {message}")]
    Http {
        /// Vendor name.
        vendor: &'static str,
        /// URL without credentials.
        url: String,
        /// HTTP status, if one arrived.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// A response could not be understood as a whole (a single bad record is quarantined
    /// instead).
    #[error("unexpected response from {location}: {message}")]
    Protocol {
        /// URL or file.
        location: String,
        /// What was wrong.
        message: String,
    },
    /// The source's configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// Local I/O (export files, key files).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure, with context.
    #[error("{0}")]
    Other(String),
}

/// Why a destination operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// Connecting or opening failed.
    #[error("cannot open the destination {target}: {message}")]
    Connect {
        /// Path or URL without credentials.
        target: String,
        /// The cause.
        message: String,
    },
    /// A statement failed.
    #[error("{context}: {message}")]
    Query {
        /// What was being done (`merging gladly.customers`).
        context: String,
        /// The database's message.
        message: String,
    },
    /// A commit was rejected on purpose (tests inject these).
    #[error("injected failure: {0}")]
    Injected(String),
}

impl DestinationError {
    /// A query error with context.
    pub fn query(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Query {
            context: context.into(),
            message: err.to_string(),
        }
    }
}
