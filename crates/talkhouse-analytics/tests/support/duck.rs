//! The embedded DuckDB destination, in memory, as a test engine.

use talkhouse_destinations::duckdb::DuckDbDestination;
use talkhouse_model::Destination;

use super::Engine;

pub struct Duck(DuckDbDestination);

/// An empty in-memory DuckDB warehouse.
pub fn connect() -> Duck {
    Duck(DuckDbDestination::in_memory().expect("DuckDB starts in memory"))
}

#[async_trait::async_trait]
impl Engine for Duck {
    fn dest(&self) -> &dyn Destination {
        &self.0
    }
    fn timestamp_type(&self) -> &'static str {
        "TIMESTAMP"
    }
}
