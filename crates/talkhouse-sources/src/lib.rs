//! The vendor connectors, one folder per vendor with the same files in each:
//!
//! | file | what it holds |
//! |---|---|
//! | `mod.rs` | module doc (what it syncs, auth, pagination, rate limits, cursor, quirks) and re-exports |
//! | `config.rs` | the `[sources.<name>]` settings, strict (`deny_unknown_fields`) and documented |
//! | `source.rs` | the [`Source`] implementation: streams and their cursors |
//! | `records.rs` | vendor records → rows of the vendor tables and of the `talkhouse.*` model |
//! | `tables.rs` | the vendor's [`TableSpec`](talkhouse_model::TableSpec)s |
//!
//! Shared by the vendors: [`json`], the borrowed JSON document that bulk export lines are read
//! into, and the [`Doc`](json::Doc) trait through which one record mapping reads it or a
//! `serde_json::Value`.
//!
//! Adding a vendor is one line in [`all_vendors`].

use std::sync::Arc;

use talkhouse_model::{Destination, DestinationError, Source};

pub mod ada;
pub mod giosg;
pub mod gladly;
pub mod json;
pub mod ultimate;

/// A configuration problem in one `[sources.<name>]` section.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// The offending key, where one is to blame (the CLI uses it to find the line).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl ConfigError {
    /// An error about `key`.
    pub fn key(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: Some(key.to_owned()),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<toml::de::Error> for ConfigError {
    fn from(e: toml::de::Error) -> Self {
        let message = e.message().to_owned();
        // serde names the field in backticks: "unknown field `tokn`", "missing field `token`".
        let key = message.split('`').nth(1).map(str::to_owned);
        Self {
            key,
            message,
            hint: None,
        }
    }
}

/// Builds a source from its configured name and its section (with `${VAR}`s already expanded
/// and the `vendor` key removed).
pub type BuildFn = fn(name: &str, section: toml::Table) -> Result<Arc<dyn Source>, ConfigError>;

/// One supported vendor.
#[derive(Debug, Clone, Copy)]
pub struct VendorEntry {
    /// Vendor name, as in `vendor = "…"` and the default section names.
    pub vendor: &'static str,
    /// Builds a configured source.
    pub build: BuildFn,
}

/// Every supported vendor.
pub fn all_vendors() -> [VendorEntry; 4] {
    [
        VendorEntry {
            vendor: "gladly",
            build: gladly::build,
        },
        VendorEntry {
            vendor: "giosg",
            build: giosg::build,
        },
        VendorEntry {
            vendor: "ada",
            build: ada::build,
        },
        VendorEntry {
            vendor: "ultimate",
            build: ultimate::build,
        },
    ]
}

/// The entry for a vendor name.
pub fn vendor(name: &str) -> Option<VendorEntry> {
    all_vendors().into_iter().find(|v| v.vendor == name)
}

/// Every id one customer of `source` had or has, `customer` first, for `talkhouse purge`:
/// where the vendor merges customers ([`Source::customer_id_history`]; Gladly), the merge
/// chains in the warehouse are followed both ways (`gladly/merges.rs`).
///
/// # Errors
/// When the destination cannot run the queries.
pub async fn customer_ids(
    source: &dyn Source,
    dest: &dyn Destination,
    customer: &str,
) -> Result<Vec<String>, DestinationError> {
    match source.customer_id_history() {
        Some(history) => gladly::follow_id_history(dest, source.name(), history, customer).await,
        None => Ok(vec![customer.to_owned()]),
    }
}

/// Every id one conversation of `source` had or has, `conversation` first, for `talkhouse
/// purge`: where the vendor merges conversations ([`Source::conversation_id_history`]; Gladly),
/// the chains in the warehouse are followed both ways.
///
/// # Errors
/// When the destination cannot run the queries.
pub async fn conversation_ids(
    source: &dyn Source,
    dest: &dyn Destination,
    conversation: &str,
) -> Result<Vec<String>, DestinationError> {
    match source.conversation_id_history() {
        Some(history) => {
            gladly::follow_id_history(dest, source.name(), history, conversation).await
        }
        None => Ok(vec![conversation.to_owned()]),
    }
}
