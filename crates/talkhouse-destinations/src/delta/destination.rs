//! [`DeltaDestination`]: the Destination implementation.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{ArrayRef, RecordBatch};
use deltalake::datafusion::common::ScalarValue;
use deltalake::datafusion::functions::core::expr_fn::coalesce;
use deltalake::datafusion::prelude::{Expr, SessionConfig, SessionContext, ident, lit};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use talkhouse_model::bookkeeping::{self, BookColumn};
use talkhouse_model::{
    Cell, ColumnType, Commit, CommitStats, Destination, DestinationError, EraseMode, Erasure,
    LoadRecord, MODEL_SCHEMA, MaintainOptions, Maintenance, QueryRows, Row, TableRef, TableSpec,
};
use tokio::sync::Mutex;
use url::Url;

use super::config::DeltaRoot;
use super::values::{self, DAY};
use crate::quote_ident as q;

type Result<T> = std::result::Result<T, DestinationError>;

/// Name of the table that lists every table and view of the warehouse.
const CATALOG: &str = "_catalog";

/// A column list of a bookkeeping table.
type Columns = Vec<(String, ColumnType)>;

fn cols(list: &[(&str, ColumnType)]) -> Columns {
    list.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect()
}

/// The columns of a bookkeeping table ([`talkhouse_model::bookkeeping`]).
fn book_columns(list: &[BookColumn]) -> Columns {
    list.iter().map(|c| (c.name.to_owned(), c.ty)).collect()
}

fn catalog_columns() -> Columns {
    use ColumnType as T;
    cols(&[
        ("kind", T::Text),
        ("name", T::Text),
        ("sql", T::Text),
        ("position", T::Integer),
        ("updated_at", T::Timestamp),
    ])
}

/// The bookkeeping tables of schema `talkhouse`, as `(name, columns)`.
fn bookkeeping() -> Vec<(&'static str, Columns)> {
    bookkeeping::TABLES
        .iter()
        .map(|(name, list)| (*name, book_columns(list)))
        .chain([(CATALOG, catalog_columns())])
        .collect()
}

fn delta_err(context: impl Into<String>) -> impl FnOnce(DeltaTableError) -> DestinationError {
    let context = context.into();
    move |e| DestinationError::query(context, e)
}

fn df_err(
    context: impl Into<String>,
) -> impl FnOnce(deltalake::datafusion::error::DataFusionError) -> DestinationError {
    let context = context.into();
    move |e| DestinationError::query(context, e)
}

/// A SQL literal of a cell, for predicates (vendor ids are text or integers).
fn sql_literal(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Integer(i) => i.to_string(),
        Cell::Float(f) => f.to_string(),
        Cell::Boolean(b) => b.to_string(),
        other => {
            let text = match other {
                Cell::Text(s) => s.clone(),
                c => c.to_json().to_string(),
            };
            format!("'{}'", text.replace('\'', "''"))
        }
    }
}

/// The literal of a cell in a column of type `ty`, for `Expr` predicates.
fn expr_literal(cell: &Cell, ty: ColumnType) -> Expr {
    match (cell, ty) {
        (Cell::Integer(i), ColumnType::Integer) => lit(*i),
        (Cell::Integer(i), ColumnType::Text) => lit(i.to_string()),
        (Cell::Text(s), ColumnType::Integer) => s
            .trim()
            .parse::<i64>()
            .map_or_else(|_| lit(ScalarValue::Int64(None)), lit),
        (Cell::Text(s), _) => lit(s.clone()),
        (Cell::Boolean(b), _) => lit(*b),
        (Cell::Float(f), _) => lit(*f),
        (c, _) => lit(c.to_json().to_string()),
    }
}

fn timestamp_literal(t: DateTime<Utc>) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(t.timestamp_micros()),
        Some("UTC".into()),
    ))
}

fn typed_null(ty: ColumnType) -> Expr {
    lit(match ty {
        ColumnType::Text | ColumnType::Json => ScalarValue::Utf8(None),
        ColumnType::Integer => ScalarValue::Int64(None),
        ColumnType::Float => ScalarValue::Float64(None),
        ColumnType::Boolean => ScalarValue::Boolean(None),
        ColumnType::Timestamp => ScalarValue::TimestampMicrosecond(None, Some("UTC".into())),
        ColumnType::Date => ScalarValue::Date32(None),
    })
}

/// `t."a" = s."a" AND …`
fn join_on(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("t.{c} = s.{c}", c = q(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A stored row differs from its incoming version: soft-deleted, or any column or `_raw`
/// changed (as the other destinations and the in-memory reference decide).
fn changed(spec: &TableSpec) -> String {
    // Each comparison in parentheses: the SQL parser under deltalake reads the right side of
    // `IS DISTINCT FROM` as a whole expression, so `a IS DISTINCT FROM b OR c` would be
    // `a IS DISTINCT FROM (b OR c)`.
    let mut parts = vec![
        "(t._deleted_at IS NOT NULL)".to_owned(),
        "(t._raw IS DISTINCT FROM s._raw)".to_owned(),
    ];
    parts.extend(
        spec.columns
            .iter()
            .map(|c| format!("(t.{col} IS DISTINCT FROM s.{col})", col = q(c.name))),
    );
    parts.join(" OR ")
}

fn truncated(payload: &str) -> String {
    bookkeeping::truncate_payload(payload).to_owned()
}

/// What the process knows of the warehouse.
#[derive(Default)]
struct Inner {
    /// Open tables by `schema.table`, at the version this process last wrote or read.
    tables: HashMap<String, DeltaTable>,
    /// Specs of the tables prepared by this process, by `schema.table`.
    specs: HashMap<String, TableSpec>,
    /// Whether the bookkeeping tables exist.
    initialised: bool,
}

/// Delta Lake tables under one root: a local folder or an object store URL.
///
/// Writes within one process are serialised (one table commit at a time); readers see each
/// table at its latest version.
pub struct DeltaDestination {
    root: DeltaRoot,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for DeltaDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaDestination")
            .field("root", &self.root.shown())
            .finish_non_exhaustive()
    }
}

impl DeltaDestination {
    /// A destination rooted at `root` (`/data/warehouse`, `s3://bucket/prefix`, `gs://…`,
    /// `az://…`). Object-store credentials come from the usual environment variables
    /// (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    ///
    /// # Errors
    /// When the root is no folder or URL, or a local folder cannot be created.
    pub fn open(root: &str) -> Result<Self> {
        Ok(Self {
            root: DeltaRoot::parse(root)?,
            inner: Mutex::default(),
        })
    }

    /// The URL of the table `schema.table`.
    fn url_of(&self, schema: &str, table: &str) -> Result<Url> {
        self.root.table_url(schema, table)
    }

    /// Opens `schema.table`, creating it with `columns` if it does not exist and adding the
    /// columns it lacks.
    async fn ensure(
        &self,
        inner: &mut Inner,
        schema: &str,
        table: &str,
        columns: &[(String, ColumnType)],
        partitioned: bool,
    ) -> Result<()> {
        let key = format!("{schema}.{table}");
        let ctx = format!("preparing {key}");
        let mut t = match inner.tables.remove(&key) {
            Some(t) => t,
            None => {
                let url = self.url_of(schema, table)?;
                self.root.create_local_dir(&url)?;
                DeltaTable::try_from_url(url)
                    .await
                    .map_err(delta_err(ctx.clone()))?
            }
        };
        if t.version().is_none() {
            let mut create = t
                .create()
                .with_table_name(table)
                .with_columns(values::fields(columns))
                .with_save_mode(SaveMode::Ignore);
            if partitioned {
                create = create.with_partition_columns([DAY]);
            }
            t = create.await.map_err(delta_err(ctx.clone()))?;
        } else {
            let existing: HashSet<String> = t
                .snapshot()
                .map_err(delta_err(ctx.clone()))?
                .schema()
                .field_names()
                .cloned()
                .collect();
            let missing: Columns = columns
                .iter()
                .filter(|(n, _)| !existing.contains(n))
                .cloned()
                .collect();
            if !missing.is_empty() {
                for (name, _) in &missing {
                    tracing::info!(table = %key, column = %name, "adding column");
                }
                t = t
                    .add_columns()
                    .with_fields(values::fields(&missing))
                    .await
                    .map_err(delta_err(ctx))?;
            }
        }
        inner.tables.insert(key, t);
        Ok(())
    }

    /// The table `key` at its latest version.
    async fn latest(&self, inner: &mut Inner, key: &str) -> Result<DeltaTable> {
        let mut t = match inner.tables.get(key) {
            Some(t) => t.clone(),
            None => {
                let (schema, table) = key.split_once('.').unwrap_or((MODEL_SCHEMA, key));
                let url = self.url_of(schema, table)?;
                deltalake::open_table(url)
                    .await
                    .map_err(delta_err(format!("opening {key}")))?
            }
        };
        t.update_state()
            .await
            .map_err(delta_err(format!("reading {key}")))?;
        Ok(t)
    }

    async fn init_locked(&self, inner: &mut Inner) -> Result<()> {
        if inner.initialised {
            return Ok(());
        }
        for (name, columns) in bookkeeping() {
            self.ensure(inner, MODEL_SCHEMA, name, &columns, false)
                .await?;
        }
        inner.initialised = true;
        Ok(())
    }

    /// Rows of the catalog: `(kind, name, sql)` in creation order.
    async fn catalog(&self, inner: &mut Inner) -> Result<Vec<(String, String, Option<String>)>> {
        let key = format!("{MODEL_SCHEMA}.{CATALOG}");
        let table = self.latest(inner, &key).await?;
        let ctx = SessionContext::new();
        ctx.register_table(
            "catalog",
            table
                .table_provider()
                .await
                .map_err(df_err("reading the catalog"))?,
        )
        .map_err(df_err("reading the catalog"))?;
        table
            .update_datafusion_session(&ctx.state())
            .map_err(delta_err("reading the catalog"))?;
        let batches = ctx
            .sql("SELECT kind, name, sql FROM catalog ORDER BY position, name")
            .await
            .map_err(df_err("reading the catalog"))?
            .collect()
            .await
            .map_err(df_err("reading the catalog"))?;
        inner.tables.insert(key, table);
        let mut out = Vec::new();
        for b in &batches {
            for row in 0..b.num_rows() {
                let text = |i: usize| values::json_at(b.column(i).as_ref(), row);
                let (kind, name, sql) = (text(0), text(1), text(2));
                if let (Some(kind), Some(name)) = (kind.as_str(), name.as_str()) {
                    out.push((
                        kind.to_owned(),
                        name.to_owned(),
                        sql.as_str().map(str::to_owned),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Adds tables or views to the catalog (views replace an earlier definition of their name).
    async fn register(
        &self,
        inner: &mut Inner,
        entries: Vec<(&'static str, String, Option<String>)>,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let base = now.timestamp_micros();
        let position: Vec<Cell> = (0..entries.len())
            .map(|i| Cell::Integer(base + i64::try_from(i).unwrap_or(0)))
            .collect();
        let columns = catalog_columns();
        let arrays = vec![
            text_array(entries.iter().map(|e| Some(e.0.to_owned()))),
            text_array(entries.iter().map(|e| Some(e.1.clone()))),
            text_array(entries.iter().map(|e| e.2.clone())),
            values::column(ColumnType::Integer, position.iter().map(Some)),
            timestamps(now, entries.len()),
        ];
        let batch = values::batch(&columns, arrays)?;
        let key = format!("{MODEL_SCHEMA}.{CATALOG}");
        let table = self.latest(inner, &key).await?;
        let ctx = SessionContext::new();
        let source = ctx
            .read_batch(batch)
            .map_err(df_err("updating the catalog"))?;
        let (table, _) = table
            .merge(source, join_on(&["kind", "name"]))
            .with_source_alias("s")
            .with_target_alias("t")
            .when_matched_update(|u| {
                u.predicate("t.sql IS DISTINCT FROM s.sql")
                    .update("sql", "s.sql")
                    .update("updated_at", "s.updated_at")
            })
            .and_then(|m| m.when_not_matched_insert(|i| insert_all(i, &columns)))
            .map_err(delta_err("updating the catalog"))?
            .await
            .map_err(delta_err("updating the catalog"))?;
        inner.tables.insert(key, table);
        Ok(())
    }

    /// A DataFusion session with every table and view of the warehouse registered under its
    /// schema.
    async fn session(&self) -> Result<SessionContext> {
        let mut inner = self.inner.lock().await;
        self.init_locked(&mut inner).await?;
        let entries = self.catalog(&mut inner).await?;
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", MODEL_SCHEMA);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_udaf(super::percentile::percentile_cont());
        let mut schemas: HashSet<String> = HashSet::new();
        let mut tables: Vec<String> = bookkeeping()
            .iter()
            .map(|(n, _)| format!("{MODEL_SCHEMA}.{n}"))
            .collect();
        let mut views = Vec::new();
        for (kind, name, sql) in entries {
            match (kind.as_str(), sql) {
                ("view", Some(sql)) => views.push((name, sql)),
                ("table", _) if !tables.contains(&name) => tables.push(name),
                _ => {}
            }
        }
        for name in tables {
            let (schema, _) = name.split_once('.').unwrap_or((MODEL_SCHEMA, &name));
            if schemas.insert(schema.to_owned()) {
                ctx.sql(&format!("CREATE SCHEMA IF NOT EXISTS {}", q(schema)))
                    .await
                    .map_err(df_err("creating a query session"))?;
            }
            let table = self.latest(&mut inner, &name).await?;
            table
                .update_datafusion_session(&ctx.state())
                .map_err(delta_err(format!("reading {name}")))?;
            let provider = table
                .table_provider()
                .await
                .map_err(df_err(format!("reading {name}")))?;
            ctx.register_table(name.as_str(), provider)
                .map_err(df_err(format!("reading {name}")))?;
            inner.tables.insert(name, table);
        }
        drop(inner);
        for (name, sql) in views {
            ctx.sql(&format!("CREATE OR REPLACE VIEW {name} AS {sql}"))
                .await
                .map_err(df_err(format!("defining view {name}")))?;
        }
        Ok(ctx)
    }

    /// Merges one table's rows of a commit.
    async fn merge_rows(
        &self,
        inner: &mut Inner,
        c: &Commit,
        spec: &TableSpec,
        key: &str,
        rows: &[&Row],
    ) -> Result<u64> {
        let ctx_text = format!("merging {key}");
        // Last version of each key wins, in arrival order.
        let mut last: HashMap<Vec<String>, usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let k: Vec<String> = spec
                .primary_key
                .iter()
                .map(|c| row.get(c).map_or_else(String::new, sql_literal))
                .collect();
            last.insert(k, i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        let rows: Vec<&Row> = keep.into_iter().map(|i| rows[i]).collect();

        let columns = values::columns(spec);
        let mut arrays: Vec<ArrayRef> = spec
            .columns
            .iter()
            .map(|col| values::column(col.ty, rows.iter().map(|r| r.get(col.name))))
            .collect();
        arrays.push(text_array(rows.iter().map(|r| {
            Some(r.raw.clone().unwrap_or_else(|| r.cells_json().to_string()))
        })));
        arrays.push(timestamps(c.synced_at, rows.len()));
        arrays.push(text_array(rows.iter().map(|_| Some(c.load_id.clone()))));
        arrays.push(values::column(
            ColumnType::Timestamp,
            rows.iter().map(|_| None),
        ));
        if let Some(day) = spec.day_column {
            arrays.push(values::column(
                ColumnType::Date,
                rows.iter().map(|r| r.get(day)),
            ));
        }
        let batch = values::batch(&columns, arrays)?;
        let n = batch.num_rows() as u64;
        let table = self.latest(inner, key).await?;
        let props = commit_properties(c, None);

        let empty = table
            .get_file_uris()
            .map_err(delta_err(ctx_text.clone()))?
            .next()
            .is_none();
        if empty {
            // First load of the table: nothing to merge with.
            let table = table
                .write(vec![batch])
                .with_save_mode(SaveMode::Append)
                .with_commit_properties(props)
                .await
                .map_err(delta_err(ctx_text))?;
            inner.tables.insert(key.to_owned(), table);
            return Ok(n);
        }

        let session = SessionContext::new();
        let source = session
            .read_batch(batch)
            .map_err(df_err(ctx_text.clone()))?;
        let mut merge = table
            .merge(source, join_on(&spec.primary_key))
            .with_source_alias("s")
            .with_target_alias("t")
            .with_commit_properties(props)
            .when_matched_update(|u| {
                columns
                    .iter()
                    .fold(u.predicate(changed(spec)), |u, (name, _)| {
                        u.update(name.as_str(), format!("s.{}", q(name)))
                    })
            })
            .and_then(|m| m.when_not_matched_insert(|i| insert_all(i, &columns)))
            .map_err(delta_err(ctx_text.clone()))?;
        if let Some(parent) = &spec.parent_key {
            // Rows of the batch's parents that the batch no longer holds go.
            let predicate = parents_predicate(parent, &rows);
            merge = merge
                .when_not_matched_by_source_delete(|d| d.predicate(predicate))
                .map_err(delta_err(ctx_text.clone()))?;
        }
        let (table, metrics) = merge.await.map_err(delta_err(ctx_text))?;
        inner.tables.insert(key.to_owned(), table);
        Ok((metrics.num_target_rows_inserted + metrics.num_target_rows_updated) as u64)
    }

    /// Applies one erasure; returns the rows it touched.
    async fn erase(
        &self,
        inner: &mut Inner,
        c: &Commit,
        spec: &TableSpec,
        key: &str,
        e: &Erasure,
    ) -> Result<u64> {
        let context = format!("erasing from {key}");
        let ty = spec.column(e.column).map_or(ColumnType::Text, |col| col.ty);
        let mut matches = ident(e.column).eq(expr_literal(&e.value, ty));
        if spec.table.model && spec.column("source").is_some() {
            // Model tables hold every source's rows: erase only this source's.
            matches = matches.and(ident("source").eq(lit(c.source.clone())));
        }
        let table = self.latest(inner, key).await?;
        let count = count_where(&table, matches.clone(), &context).await?;
        if count == 0 {
            inner.tables.insert(key.to_owned(), table);
            return Ok(0);
        }
        let mode = if spec.table.model {
            EraseMode::Delete
        } else {
            e.mode
        };
        let props = commit_properties(c, None);
        let deleted_at = coalesce(vec![ident("_deleted_at"), timestamp_literal(c.synced_at)]);
        let table = match mode {
            EraseMode::Delete => {
                table
                    .delete()
                    .with_predicate(matches)
                    .with_commit_properties(props)
                    .await
                    .map_err(delta_err(context))?
                    .0
            }
            EraseMode::Keep => {
                table
                    .update()
                    .with_predicate(matches)
                    .with_update("_deleted_at", deleted_at)
                    .with_commit_properties(props)
                    .await
                    .map_err(delta_err(context))?
                    .0
            }
            EraseMode::Redact => {
                let mut update = table
                    .update()
                    .with_predicate(matches)
                    .with_update("_deleted_at", deleted_at)
                    .with_update("_raw", typed_null(ColumnType::Json))
                    .with_commit_properties(props);
                for col in spec.columns.iter().filter(|col| col.personal) {
                    update = update.with_update(col.name, typed_null(col.ty));
                }
                update.await.map_err(delta_err(context))?.0
            }
        };
        inner.tables.insert(key.to_owned(), table);
        Ok(count)
    }

    /// Appends quarantined records not already there (same source, stream, location, error).
    async fn quarantine(&self, inner: &mut Inner, c: &Commit) -> Result<()> {
        if c.quarantine.is_empty() {
            return Ok(());
        }
        let columns = book_columns(bookkeeping::QUARANTINE);
        let n = c.quarantine.len();
        // One entry per (location, error) within the batch, as the merge key requires.
        let mut seen = HashSet::new();
        let records: Vec<_> = c
            .quarantine
            .iter()
            .filter(|r| seen.insert((r.location.clone(), r.error.clone())))
            .collect();
        let arrays = vec![
            text_array(records.iter().map(|_| Some(c.source.clone()))),
            text_array(records.iter().map(|_| Some(c.stream.clone()))),
            text_array(records.iter().map(|r| Some(r.location.clone()))),
            text_array(records.iter().map(|r| Some(r.error.clone()))),
            text_array(records.iter().map(|r| Some(truncated(&r.payload)))),
            text_array(records.iter().map(|_| Some(c.load_id.clone()))),
            timestamps(c.synced_at, records.len()),
        ];
        let batch = values::batch(&columns, arrays)?;
        let key = format!("{MODEL_SCHEMA}.quarantine");
        let table = self.latest(inner, &key).await?;
        let session = SessionContext::new();
        let source = session
            .read_batch(batch)
            .map_err(df_err("writing quarantine"))?;
        let (table, _) = table
            .merge(source, join_on(&["source", "stream", "location", "error"]))
            .with_source_alias("s")
            .with_target_alias("t")
            .with_commit_properties(commit_properties(c, None))
            .when_not_matched_insert(|i| insert_all(i, &columns))
            .map_err(delta_err("writing quarantine"))?
            .await
            .map_err(delta_err("writing quarantine"))?;
        tracing::debug!(records = n, "quarantine written");
        inner.tables.insert(key, table);
        Ok(())
    }

    /// Writes the stream's cursor: the last commit of a [`Commit`].
    async fn write_state(
        &self,
        inner: &mut Inner,
        c: &Commit,
        state: &serde_json::Value,
    ) -> Result<()> {
        let columns = book_columns(bookkeeping::STATE);
        let arrays = vec![
            text_array([Some(c.source.clone())]),
            text_array([Some(c.stream.clone())]),
            text_array([Some(state.to_string())]),
            timestamps(c.synced_at, 1),
        ];
        let batch = values::batch(&columns, arrays)?;
        let key = format!("{MODEL_SCHEMA}.state");
        let table = self.latest(inner, &key).await?;
        let session = SessionContext::new();
        let source = session.read_batch(batch).map_err(df_err("writing state"))?;
        let (table, _) = table
            .merge(source, join_on(&["source", "stream"]))
            .with_source_alias("s")
            .with_target_alias("t")
            .with_commit_properties(commit_properties(c, Some(state)))
            .when_matched_update(|u| {
                u.update("cursor", "s.cursor")
                    .update("updated_at", "s.updated_at")
            })
            .and_then(|m| m.when_not_matched_insert(|i| insert_all(i, &columns)))
            .map_err(delta_err("writing state"))?
            .await
            .map_err(delta_err("writing state"))?;
        inner.tables.insert(key, table);
        Ok(())
    }
}

/// Commit metadata recorded in every Delta commit talkhouse makes (visible in the table
/// history): source, stream, load id and, on the state table, the cursor.
fn commit_properties(c: &Commit, cursor: Option<&serde_json::Value>) -> CommitProperties {
    let mut meta = serde_json::json!({
        "source": c.source,
        "stream": c.stream,
        "load_id": c.load_id,
    });
    if let (Some(cursor), Some(obj)) = (cursor, meta.as_object_mut()) {
        obj.insert("cursor".into(), cursor.clone());
    }
    CommitProperties::default().with_metadata([("talkhouse".to_owned(), meta)])
}

fn insert_all(
    i: deltalake::operations::merge::InsertBuilder,
    columns: &[(String, ColumnType)],
) -> deltalake::operations::merge::InsertBuilder {
    columns.iter().fold(i, |i, (name, _)| {
        i.set(name.as_str(), format!("s.{}", q(name)))
    })
}

/// `t."parent" IN (…)` (or an OR of ANDs for a composite parent key) over the batch's parents.
fn parents_predicate(parent: &[&str], rows: &[&Row]) -> String {
    let mut seen = HashSet::new();
    let keys: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            parent
                .iter()
                .map(|c| r.get(c).map_or_else(|| "NULL".to_owned(), sql_literal))
                .collect::<Vec<_>>()
        })
        .filter(|k| seen.insert(k.clone()))
        .collect();
    if let [col] = parent {
        let list: Vec<&str> = keys.iter().map(|k| k[0].as_str()).collect();
        format!("t.{} IN ({})", q(col), list.join(", "))
    } else {
        keys.iter()
            .map(|k| {
                let eq: Vec<String> = parent
                    .iter()
                    .zip(k)
                    .map(|(c, v)| format!("t.{} = {v}", q(c)))
                    .collect();
                format!("({})", eq.join(" AND "))
            })
            .collect::<Vec<_>>()
            .join(" OR ")
    }
}

fn text_array(values: impl IntoIterator<Item = Option<String>>) -> ArrayRef {
    let cells: Vec<Cell> = values
        .into_iter()
        .map(|v| v.map_or(Cell::Null, Cell::Text))
        .collect();
    values::column(ColumnType::Text, cells.iter().map(Some))
}

fn timestamps(t: DateTime<Utc>, n: usize) -> ArrayRef {
    let cell = Cell::Timestamp(t);
    values::column(ColumnType::Timestamp, (0..n).map(|_| Some(&cell)))
}

/// Rows of `table` matching `predicate`.
async fn count_where(table: &DeltaTable, predicate: Expr, context: &str) -> Result<u64> {
    let ctx = SessionContext::new();
    table
        .update_datafusion_session(&ctx.state())
        .map_err(delta_err(context))?;
    let provider = table.table_provider().await.map_err(df_err(context))?;
    let df = ctx
        .read_table(provider)
        .and_then(|df| df.filter(predicate))
        .map_err(df_err(context))?;
    let n = df.count().await.map_err(df_err(context))?;
    Ok(n as u64)
}

fn rows_of(batches: &[RecordBatch]) -> QueryRows {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for row in 0..b.num_rows() {
            let mut obj = serde_json::Map::with_capacity(b.num_columns());
            for (i, field) in schema.fields().iter().enumerate() {
                obj.insert(
                    field.name().clone(),
                    values::json_at(b.column(i).as_ref(), row),
                );
            }
            out.push(obj);
        }
    }
    out
}

/// `CREATE [OR REPLACE] VIEW name AS select` → `(name, select)`.
fn parse_view(sql: &str) -> Option<(String, String)> {
    let s = sql.trim().trim_end_matches(';');
    let lower = s.to_ascii_lowercase();
    let rest_at = ["create or replace view ", "create view "]
        .iter()
        .find(|p| lower.starts_with(*p))
        .map(|p| p.len())?;
    let rest = &s[rest_at..];
    let as_at = rest.to_ascii_lowercase().find(" as ")?;
    let name = rest[..as_at].trim().to_owned();
    let select = rest[as_at + 4..].trim().to_owned();
    (!name.is_empty() && !select.is_empty()).then_some((name, select))
}

#[async_trait::async_trait]
impl Destination for DeltaDestination {
    fn describe(&self) -> String {
        format!("delta:{}", self.root.shown())
    }

    async fn init(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        self.init_locked(&mut inner).await
    }

    async fn prepare(&self, source: &str, tables: &[TableSpec]) -> Result<()> {
        let mut inner = self.inner.lock().await;
        self.init_locked(&mut inner).await?;
        let known: HashSet<String> = self
            .catalog(&mut inner)
            .await?
            .into_iter()
            .filter(|(k, _, _)| k == "table")
            .map(|(_, n, _)| n)
            .collect();
        let mut new = Vec::new();
        for spec in tables {
            let schema = spec.table.schema(source);
            let key = format!("{schema}.{}", spec.table.name);
            self.ensure(
                &mut inner,
                schema,
                spec.table.name,
                &values::columns(spec),
                spec.day_column.is_some(),
            )
            .await?;
            if !known.contains(&key) {
                new.push(("table", key.clone(), None));
            }
            inner.specs.insert(key, spec.clone());
        }
        self.register(&mut inner, new).await
    }

    async fn read_state(&self, source: &str, stream: &str) -> Result<Option<serde_json::Value>> {
        let rows = self
            .query(&format!(
                "SELECT cursor FROM talkhouse.state WHERE source = {} AND stream = {}",
                sql_literal(&Cell::Text(source.to_owned())),
                sql_literal(&Cell::Text(stream.to_owned()))
            ))
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.get("cursor"))
            .and_then(|v| v.as_str())
            .and_then(|s| serde_json::from_str(s).ok()))
    }

    async fn commit(&self, c: Commit) -> Result<CommitStats> {
        let mut inner = self.inner.lock().await;
        self.init_locked(&mut inner).await?;
        let mut stats = CommitStats::default();
        let mut order: Vec<TableRef> = Vec::new();
        let mut groups: HashMap<TableRef, Vec<&Row>> = HashMap::new();
        for row in &c.rows {
            groups
                .entry(row.table)
                .or_insert_with(|| {
                    order.push(row.table);
                    Vec::new()
                })
                .push(row);
        }
        let spec_of = |inner: &Inner, t: &TableRef| {
            let key = format!("{}.{}", t.schema(&c.source), t.name);
            inner
                .specs
                .get(&key)
                .cloned()
                .map(|s| (key.clone(), s))
                .ok_or_else(|| {
                    DestinationError::query(format!("writing {key}"), "table was not prepared")
                })
        };
        // Data first, cursor last: a crash in between leaves the cursor behind the rows, and
        // the rerun's merges of the same records change nothing.
        for t in &order {
            let (key, spec) = spec_of(&inner, t)?;
            stats.rows_written += self
                .merge_rows(&mut inner, &c, &spec, &key, &groups[t])
                .await?;
        }
        for e in &c.erasures {
            let (key, spec) = spec_of(&inner, &e.table)?;
            stats.rows_erased += self.erase(&mut inner, &c, &spec, &key, e).await?;
        }
        self.quarantine(&mut inner, &c).await?;
        if let Some(state) = &c.state {
            self.write_state(&mut inner, &c, state).await?;
        }
        Ok(stats)
    }

    async fn record_load(&self, load: &LoadRecord) -> Result<()> {
        let mut inner = self.inner.lock().await;
        self.init_locked(&mut inner).await?;
        let columns = book_columns(bookkeeping::LOADS);
        let cells = load.cells();
        let arrays = columns
            .iter()
            .zip(&cells)
            .map(|((_, ty), cell)| values::column(*ty, [Some(cell)].into_iter()))
            .collect();
        let batch = values::batch(&columns, arrays)?;
        let key = format!("{MODEL_SCHEMA}.loads");
        let table = self.latest(&mut inner, &key).await?;
        let session = SessionContext::new();
        let source = session
            .read_batch(batch)
            .map_err(df_err("recording the load"))?;
        let (table, _) = table
            .merge(source, join_on(bookkeeping::LOADS_KEY))
            .with_source_alias("s")
            .with_target_alias("t")
            .when_matched_update(|u| {
                columns.iter().fold(u, |u, (name, _)| {
                    u.update(name.as_str(), format!("s.{}", q(name)))
                })
            })
            .and_then(|m| m.when_not_matched_insert(|i| insert_all(i, &columns)))
            .map_err(delta_err("recording the load"))?
            .await
            .map_err(delta_err("recording the load"))?;
        inner.tables.insert(key, table);
        Ok(())
    }

    async fn query(&self, sql: &str) -> Result<QueryRows> {
        let ctx = self.session().await?;
        let batches = ctx
            .sql(sql)
            .await
            .map_err(df_err("query"))?
            .collect()
            .await
            .map_err(df_err("query"))?;
        Ok(rows_of(&batches))
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        let Some((name, select)) = parse_view(sql) else {
            return Err(DestinationError::query(
                "execute",
                "the Delta Lake destination runs only CREATE [OR REPLACE] VIEW statements \
                 (rows change through commits)",
            ));
        };
        // The definition must plan against the tables as they are now.
        let ctx = self.session().await?;
        ctx.sql(&format!("CREATE OR REPLACE VIEW {name} AS {select}"))
            .await
            .map_err(df_err(format!("defining view {name}")))?;
        let mut inner = self.inner.lock().await;
        self.register(&mut inner, vec![("view", name, Some(select))])
            .await
    }

    async fn maintain(&self, opts: &MaintainOptions) -> Result<Vec<Maintenance>> {
        let mut inner = self.inner.lock().await;
        self.init_locked(&mut inner).await?;
        let mut names: Vec<String> = bookkeeping()
            .iter()
            .map(|(n, _)| format!("{MODEL_SCHEMA}.{n}"))
            .collect();
        for (kind, name, _) in self.catalog(&mut inner).await? {
            if kind == "table" && !names.contains(&name) {
                names.push(name);
            }
        }
        let retention = chrono::Duration::from_std(opts.retention)
            .map_err(|e| DestinationError::query("maintain", e))?;
        let mut out = Vec::new();
        for name in names {
            let context = format!("maintaining {name}");
            let table = self.latest(&mut inner, &name).await?;
            let mut m = Maintenance {
                table: name.clone(),
                ..Maintenance::default()
            };
            let table = if opts.dry_run {
                table
            } else {
                let (table, metrics) =
                    table.optimize().await.map_err(delta_err(context.clone()))?;
                m.files_compacted = metrics.num_files_removed;
                m.files_written = metrics.num_files_added;
                table
            };
            let (table, vacuumed) = table
                .vacuum()
                .with_retention_period(retention)
                .with_enforce_retention_duration(false)
                .with_dry_run(opts.dry_run)
                .await
                .map_err(delta_err(context.clone()))?;
            m.files_vacuumed = vacuumed.files_deleted.len() as u64;
            if !opts.dry_run {
                deltalake::checkpoints::create_checkpoint(&table, None)
                    .await
                    .map_err(delta_err(context))?;
            }
            inner.tables.insert(name, table);
            out.push(m);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_are_parsed() {
        assert_eq!(
            parse_view("CREATE OR REPLACE VIEW talkhouse.messages AS SELECT 1 AS x;"),
            Some(("talkhouse.messages".into(), "SELECT 1 AS x".into()))
        );
        assert_eq!(parse_view("DELETE FROM x"), None);
    }

    #[test]
    fn parents_become_one_predicate() {
        const T: TableRef = TableRef::source("t");
        let a = Row::new(T).set("p", "a'b");
        let b = Row::new(T).set("p", "c");
        assert_eq!(
            parents_predicate(&["p"], &[&a, &b, &a]),
            "t.\"p\" IN ('a''b', 'c')"
        );
        let c = Row::new(T).set("p", "x").set("n", 1_i64);
        assert_eq!(
            parents_predicate(&["p", "n"], &[&c]),
            "(t.\"p\" = 'x' AND t.\"n\" = 1)"
        );
    }
}
