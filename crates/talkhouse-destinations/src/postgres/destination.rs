//! [`PostgresDestination`]: the Destination implementation.

use std::collections::HashMap;
use std::sync::Mutex;

use talkhouse_model::{
    Commit, CommitStats, Destination, DestinationError, EraseMode, LoadRecord, MODEL_SCHEMA,
    Quarantined, QueryRows, Row, TableRef, TableSpec,
};
use tokio::sync::{MappedMutexGuard, Mutex as AsyncMutex, MutexGuard};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Transaction};

use talkhouse_model::bookkeeping::{LOADS, truncate_payload};

use super::config::{PostgresConfig, error_text};
use super::sql;
use super::values::{PgValue, clean_text, column_json, json_text, raw_json, to_pg, wire_type};

type Result<T> = std::result::Result<T, DestinationError>;

/// A PostgreSQL warehouse.
pub struct PostgresDestination {
    config: PostgresConfig,
    client: AsyncMutex<Option<Client>>,
    specs: Mutex<HashMap<(String, String), TableSpec>>,
}

impl std::fmt::Debug for PostgresDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDestination")
            .field("target", &self.config.describe())
            .finish_non_exhaustive()
    }
}

/// Connects to the PostgreSQL warehouse at `url` (`postgres://user:password@host:port/db`, with
/// `?sslmode=require` for TLS).
///
/// # Errors
/// When the URL does not parse or the server cannot be reached; messages never hold the password.
pub async fn connect(url: &str) -> Result<PostgresDestination> {
    PostgresDestination::connect(url).await
}

fn pg_err(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> DestinationError {
    let context = context.into();
    move |e| DestinationError::query(context, error_text(&e))
}

/// Rows of one target table, converted and deduplicated by primary key (last wins).
struct TableBatch<'a> {
    schema: String,
    spec: TableSpec,
    rows: Vec<Vec<PgValue<'a>>>,
    index: HashMap<String, usize>,
}

/// Converts one row to its table's column types; `Err` says why PostgreSQL cannot store it.
fn convert<'a>(
    row: &'a Row,
    spec: &TableSpec,
) -> std::result::Result<(Vec<PgValue<'a>>, String), String> {
    if let Some((name, _)) = row
        .cells
        .iter()
        .find(|(name, cell)| !cell.is_null() && spec.column(name).is_none())
    {
        return Err(format!(
            "column `{name}` is not declared by the table's spec"
        ));
    }
    let mut values = Vec::with_capacity(spec.columns.len() + 1);
    for c in &spec.columns {
        let v = match row.get(c.name) {
            None => PgValue::Null,
            Some(cell) => to_pg(cell, c.ty).map_err(|e| format!("column `{}`: {e}", c.name))?,
        };
        values.push(v);
    }
    let mut key = String::new();
    for k in &spec.primary_key {
        let pos = spec
            .columns
            .iter()
            .position(|c| c.name == *k)
            .ok_or_else(|| format!("key column `{k}` is not declared"))?;
        if values[pos] == PgValue::Null {
            return Err(format!("primary key column `{k}` has no value"));
        }
        values[pos].key_part(&mut key);
    }
    let raw = match &row.raw {
        Some(raw) => PgValue::Json(raw_json(raw)?),
        None => PgValue::Json(json_text(&row.cells_json()).into()),
    };
    values.push(raw);
    Ok((values, key))
}

/// What one commit carries once converted: batches per table (in arrival order) and the rows
/// PostgreSQL cannot store, quarantined instead.
fn stage_rows<'a>(
    commit: &'a Commit,
    specs: &HashMap<(String, String), TableSpec>,
) -> Result<(Vec<TableBatch<'a>>, Vec<Quarantined>)> {
    let mut batches: Vec<TableBatch<'a>> = Vec::new();
    let mut slot: HashMap<TableRef, usize> = HashMap::new();
    let mut rejected = Vec::new();
    for row in &commit.rows {
        let i = match slot.get(&row.table) {
            Some(i) => *i,
            None => {
                let schema = row.table.schema(&commit.source).to_owned();
                let spec = specs
                    .get(&(schema.clone(), row.table.name.to_owned()))
                    .ok_or_else(|| {
                        DestinationError::query(
                            format!("writing {schema}.{}", row.table.name),
                            "table was not declared by the source's tables()",
                        )
                    })?;
                batches.push(TableBatch {
                    schema,
                    spec: spec.clone(),
                    rows: Vec::new(),
                    index: HashMap::new(),
                });
                slot.insert(row.table, batches.len() - 1);
                batches.len() - 1
            }
        };
        let batch = &mut batches[i];
        match convert(row, &batch.spec) {
            Ok((values, key)) => match batch.index.get(&key) {
                Some(at) => batch.rows[*at] = values,
                None => {
                    batch.index.insert(key, batch.rows.len());
                    batch.rows.push(values);
                }
            },
            Err(error) => {
                tracing::warn!(schema = %batch.schema, table = row.table.name, %error, "row quarantined");
                rejected.push(Quarantined {
                    location: format!("{}.{}", batch.schema, row.table.name),
                    error,
                    payload: row
                        .raw
                        .clone()
                        .unwrap_or_else(|| json_text(&row.cells_json())),
                });
            }
        }
    }
    Ok((batches, rejected))
}

async fn merge_table(
    tx: &Transaction<'_>,
    n: usize,
    batch: &TableBatch<'_>,
    commit: &Commit,
) -> Result<u64> {
    let spec = &batch.spec;
    let target = sql::table_name(&batch.schema, spec.table.name);
    let ctx = format!("merging {}.{}", batch.schema, spec.table.name);
    let stage = format!("talkhouse_stage_{n}");
    tx.batch_execute(&sql::create_stage(&stage, spec))
        .await
        .map_err(pg_err(ctx.clone()))?;
    let mut types: Vec<Type> = spec.columns.iter().map(|c| wire_type(c.ty)).collect();
    types.push(Type::JSONB);
    let sink = tx
        .copy_in(&sql::copy_stage(&stage, spec))
        .await
        .map_err(pg_err(ctx.clone()))?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for row in &batch.rows {
        writer
            .as_mut()
            .write_raw(row.iter())
            .await
            .map_err(pg_err(ctx.clone()))?;
    }
    writer.finish().await.map_err(pg_err(ctx.clone()))?;
    // No ANALYZE: on a 50 000-row batch it costs about as much as the insert, and the planner's
    // page-based estimate of a fresh temp table already picks hash (anti-)joins on the staging rows.
    tx.execute(&sql::delete_stale(&target, &stage, spec), &[])
        .await
        .map_err(pg_err(ctx.clone()))?;
    tx.execute(
        &sql::insert_new(&target, &stage, spec),
        &[&commit.synced_at, &commit.load_id],
    )
    .await
    .map_err(pg_err(ctx))
}

async fn erase_all(
    tx: &Transaction<'_>,
    commit: &Commit,
    specs: &HashMap<(String, String), TableSpec>,
) -> Result<u64> {
    let mut erased = 0;
    for e in &commit.erasures {
        let schema = e.table.schema(&commit.source);
        // Like the in-memory destination: an erasure of an unknown table or column erases nothing.
        let Some(spec) = specs.get(&(schema.to_owned(), e.table.name.to_owned())) else {
            continue;
        };
        let Some(column) = spec.column(e.column) else {
            continue;
        };
        let Ok(value) = to_pg(&e.value, column.ty) else {
            continue;
        };
        if value == PgValue::Null {
            continue;
        }
        let mode = if e.table.model {
            EraseMode::Delete
        } else {
            e.mode
        };
        // Model tables hold every source's rows: erase only this source's.
        let scoped = e.table.model && spec.column("source").is_some();
        let target = sql::table_name(schema, spec.table.name);
        let text = sql::erase(&target, spec, e.column, mode, scoped);
        let ctx = format!("erasing from {schema}.{}", spec.table.name);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&value];
        if mode != EraseMode::Delete {
            params.push(&commit.synced_at);
        }
        if scoped {
            params.push(&commit.source);
        }
        erased += tx.execute(&text, &params).await.map_err(pg_err(ctx))?;
    }
    Ok(erased)
}

fn truncated(s: &str) -> String {
    clean_text(truncate_payload(s)).into_owned()
}

async fn write_quarantine(
    tx: &Transaction<'_>,
    commit: &Commit,
    extra: &[Quarantined],
) -> Result<()> {
    let all: Vec<&Quarantined> = commit.quarantine.iter().chain(extra).collect();
    if all.is_empty() {
        return Ok(());
    }
    let locations: Vec<String> = all.iter().map(|q| truncated(&q.location)).collect();
    let errors: Vec<String> = all.iter().map(|q| truncated(&q.error)).collect();
    let payloads: Vec<String> = all.iter().map(|q| truncated(&q.payload)).collect();
    let params: [&(dyn ToSql + Sync); 7] = [
        &commit.source,
        &commit.stream,
        &commit.load_id,
        &commit.synced_at,
        &locations,
        &errors,
        &payloads,
    ];
    tx.execute(sql::INSERT_QUARANTINE, &params)
        .await
        .map_err(pg_err("writing quarantine"))?;
    Ok(())
}

impl PostgresDestination {
    /// Connects to the warehouse at `url`.
    ///
    /// # Errors
    /// When the URL does not parse or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let config = PostgresConfig::parse(url)?;
        let client = config.connect().await?;
        Ok(Self {
            config,
            client: AsyncMutex::new(Some(client)),
            specs: Mutex::default(),
        })
    }

    /// The connection, reopened if it dropped.
    async fn conn(&self) -> Result<MappedMutexGuard<'_, Client>> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            tracing::info!(target = %self.config.describe(), "connecting to postgres");
            *guard = Some(self.config.connect().await?);
        }
        MutexGuard::try_map(guard, Option::as_mut).map_err(|_| DestinationError::Connect {
            target: self.config.describe(),
            message: "no connection".into(),
        })
    }

    fn specs(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), TableSpec>> {
        self.specs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Destination for PostgresDestination {
    fn describe(&self) -> String {
        self.config.describe()
    }

    async fn init(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(pg_err("creating schema talkhouse"))?;
        tx.batch_execute(sql::DDL_LOCK)
            .await
            .map_err(pg_err("creating schema talkhouse"))?;
        tx.batch_execute(&sql::init_sql())
            .await
            .map_err(pg_err("creating schema talkhouse"))?;
        tx.commit()
            .await
            .map_err(pg_err("creating schema talkhouse"))
    }

    async fn prepare(&self, source: &str, tables: &[TableSpec]) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(pg_err("preparing tables"))?;
        tx.batch_execute(sql::DDL_LOCK)
            .await
            .map_err(pg_err("preparing tables"))?;
        for spec in tables {
            let schema = spec.table.schema(source);
            let table = spec.table.name;
            let ctx = format!("creating {schema}.{table}");
            tx.batch_execute(&sql::create_table(schema, spec))
                .await
                .map_err(pg_err(ctx.clone()))?;
            let existing: Vec<String> = tx
                .query(
                    "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
                    &[&schema, &table],
                )
                .await
                .map_err(pg_err(ctx.clone()))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for c in &spec.columns {
                if !existing.iter().any(|e| e == c.name) {
                    tracing::info!(schema, table, column = c.name, "adding column");
                    tx.batch_execute(&sql::add_column(schema, table, c.name, c.ty))
                        .await
                        .map_err(pg_err(ctx.clone()))?;
                }
            }
        }
        tx.commit().await.map_err(pg_err("preparing tables"))?;
        let mut specs = self.specs();
        for spec in tables {
            specs.insert(
                (
                    spec.table.schema(source).to_owned(),
                    spec.table.name.to_owned(),
                ),
                spec.clone(),
            );
        }
        Ok(())
    }

    async fn read_state(&self, source: &str, stream: &str) -> Result<Option<serde_json::Value>> {
        let conn = self.conn().await?;
        let row = conn
            .query_opt(
                "SELECT cursor FROM talkhouse.state WHERE source = $1 AND stream = $2",
                &[&source, &stream],
            )
            .await
            .map_err(pg_err("reading state"))?;
        Ok(row.and_then(|r| r.get::<_, Option<serde_json::Value>>(0)))
    }

    async fn commit(&self, commit: Commit) -> Result<CommitStats> {
        let specs = self.specs().clone();
        let (batches, rejected) = stage_rows(&commit, &specs)?;
        let mut stats = CommitStats::default();
        let mut conn = self.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(pg_err("starting a transaction"))?;
        for (n, batch) in batches.iter().enumerate() {
            stats.rows_written += merge_table(&tx, n, batch, &commit).await?;
        }
        stats.rows_erased += erase_all(&tx, &commit, &specs).await?;
        write_quarantine(&tx, &commit, &rejected).await?;
        if let Some(state) = &commit.state {
            let cursor = PgValue::Json(json_text(state).into());
            tx.execute(
                sql::UPSERT_STATE,
                &[&commit.source, &commit.stream, &cursor, &commit.synced_at],
            )
            .await
            .map_err(pg_err("writing state"))?;
        }
        tx.commit().await.map_err(pg_err("committing"))?;
        Ok(stats)
    }

    async fn record_load(&self, load: &LoadRecord) -> Result<()> {
        let conn = self.conn().await?;
        let cells = load.cells();
        let values = cells
            .iter()
            .zip(LOADS)
            .map(|(cell, c)| to_pg(cell, c.ty))
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(|e| DestinationError::query("recording the load", e))?;
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        conn.execute(&sql::upsert_load(), &params)
            .await
            .map_err(pg_err("recording the load"))?;
        Ok(())
    }

    async fn query(&self, sql: &str) -> Result<QueryRows> {
        let conn = self.conn().await?;
        let rows = conn.query(sql, &[]).await.map_err(pg_err("query"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut obj = serde_json::Map::with_capacity(row.len());
            for (i, col) in row.columns().iter().enumerate() {
                obj.insert(
                    col.name().to_owned(),
                    column_json(row, i).map_err(|e| DestinationError::query("query", e))?,
                );
            }
            out.push(obj);
        }
        Ok(out)
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await.map_err(pg_err("executing DDL"))?;
        if sql.contains(&format!("{MODEL_SCHEMA}.")) {
            tx.batch_execute(&format!(
                "{}; CREATE SCHEMA IF NOT EXISTS {MODEL_SCHEMA}",
                sql::DDL_LOCK
            ))
            .await
            .map_err(pg_err("creating schema"))?;
        }
        tx.batch_execute("SAVEPOINT ddl")
            .await
            .map_err(pg_err("executing DDL"))?;
        if let Err(e) = tx.batch_execute(sql).await {
            // PostgreSQL cannot replace a view whose columns changed (DuckDB can): drop it first.
            let code = e.code().map(|c| c.code().to_owned());
            let Some(view) = sql::replaced_view(sql).filter(|_| code.as_deref() == Some("42P16"))
            else {
                return Err(DestinationError::query("executing DDL", error_text(&e)));
            };
            tracing::info!(view, "recreating a view whose columns changed");
            tx.batch_execute(&format!(
                "ROLLBACK TO SAVEPOINT ddl; DROP VIEW IF EXISTS {view}"
            ))
            .await
            .map_err(pg_err("executing DDL"))?;
            tx.batch_execute(sql)
                .await
                .map_err(pg_err("executing DDL"))?;
        }
        tx.commit().await.map_err(pg_err("executing DDL"))
    }

    async fn ping(&self) -> Result<()> {
        let conn = self.conn().await?;
        conn.simple_query("SELECT 1")
            .await
            .map_err(pg_err("ping"))?;
        Ok(())
    }
}
