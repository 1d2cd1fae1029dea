//! A PostgreSQL-backed test double of `Destination` (query and execute only).

use talkhouse_model::{
    Commit, CommitStats, Destination, DestinationError, LoadRecord, QueryRows, TableSpec,
};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::Engine;

pub struct Pg {
    client: Client,
    admin: Client,
    db: String,
}

/// Connects and creates a fresh database; `None` when no server answers (outside CI).
///
/// The server comes from `TALKHOUSE_TEST_POSTGRES_URL` (as the destination's tests use) or
/// `TALKHOUSE_TEST_PG`, default `host=127.0.0.1 user=postgres dbname=test`. Under `CI=true` an
/// unreachable server fails the test instead of skipping it.
pub async fn connect() -> Option<Pg> {
    let base = std::env::var("TALKHOUSE_TEST_POSTGRES_URL")
        .or_else(|_| std::env::var("TALKHOUSE_TEST_PG"))
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into());
    let strict = std::env::var("CI").as_deref() == Ok("true");
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        assert!(!strict, "PostgreSQL {what} failed under CI: {e}");
        None
    };
    let cfg: tokio_postgres::Config = match base.parse() {
        Ok(c) => c,
        Err(e) => return fail("configuration", &e),
    };
    let (admin, conn) = match cfg.connect(NoTls).await {
        Ok(c) => c,
        Err(e) => return fail("connection", &e),
    };
    tokio::spawn(conn);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let db = format!(
        "th_analytics_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000
    );
    if let Err(e) = admin.batch_execute(&format!("CREATE DATABASE {db}")).await {
        return fail("CREATE DATABASE", &e);
    }
    let mut own = cfg.clone();
    own.dbname(&db);
    let (client, conn) = own.connect(NoTls).await.ok()?;
    tokio::spawn(conn);
    client.batch_execute("SET TIME ZONE 'UTC'").await.ok()?;
    Some(Pg { client, admin, db })
}

impl Pg {
    pub async fn cleanup(self) {
        drop(self.client);
        let _ = self
            .admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .await;
    }
}

#[async_trait::async_trait]
impl Engine for Pg {
    fn dest(&self) -> &dyn Destination {
        self
    }
    fn timestamp_type(&self) -> &'static str {
        "TIMESTAMPTZ"
    }
}

fn unsupported() -> DestinationError {
    DestinationError::Injected("not supported by the test double".into())
}

#[async_trait::async_trait]
impl Destination for Pg {
    fn describe(&self) -> String {
        format!("postgres-test:{}", self.db)
    }
    async fn init(&self) -> Result<(), DestinationError> {
        Ok(())
    }
    async fn prepare(&self, _: &str, _: &[TableSpec]) -> Result<(), DestinationError> {
        Err(unsupported())
    }
    async fn read_state(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<serde_json::Value>, DestinationError> {
        Err(unsupported())
    }
    async fn commit(&self, _: Commit) -> Result<CommitStats, DestinationError> {
        Err(unsupported())
    }
    async fn record_load(&self, _: &LoadRecord) -> Result<(), DestinationError> {
        Err(unsupported())
    }
    /// Text protocol: every value arrives as a JSON string (or null), as NUMERIC would.
    async fn query(&self, sql: &str) -> Result<QueryRows, DestinationError> {
        let msgs = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| DestinationError::query(sql.to_owned(), e))?;
        let mut out = Vec::new();
        for m in msgs {
            if let SimpleQueryMessage::Row(row) = m {
                let mut obj = serde_json::Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    let v = row.get(i).map_or(serde_json::Value::Null, |s| {
                        serde_json::Value::String(s.to_owned())
                    });
                    obj.insert(col.name().to_owned(), v);
                }
                out.push(obj);
            }
        }
        Ok(out)
    }
    async fn execute(&self, sql: &str) -> Result<(), DestinationError> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| DestinationError::query(sql.to_owned(), e))
    }
}
