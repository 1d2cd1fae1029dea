//! The SQL text the PostgreSQL destination runs: DDL and the merge of one staged batch.

use talkhouse_model::{EraseMode, TableSpec};

use super::values::sql_type;
use crate::quote_ident as q;

/// Serialises DDL across processes and tests (`CREATE … IF NOT EXISTS` races on the catalog).
pub(crate) const DDL_LOCK: &str = "SELECT pg_advisory_xact_lock(7244052313419055)";

/// The bookkeeping tables of schema `talkhouse` ([`talkhouse_model::bookkeeping`]), with
/// their keys, and the index `status` reads quarantine counts by.
pub(crate) fn init_sql() -> String {
    let mut sql = crate::sql::bookkeeping_ddl(sql_type, true);
    sql.push_str(
        "CREATE INDEX IF NOT EXISTS quarantine_source_stream ON talkhouse.quarantine (source, stream);\n",
    );
    sql
}

/// `"schema"."table"`.
pub(crate) fn table_name(schema: &str, table: &str) -> String {
    format!("{}.{}", q(schema), q(table))
}

fn list(cols: &[&str]) -> String {
    cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
}

/// Creates the schema and table (with bookkeeping columns and primary key) if missing.
pub(crate) fn create_table(schema: &str, spec: &TableSpec) -> String {
    let mut cols: Vec<String> = spec
        .columns
        .iter()
        .map(|c| format!("{} {}", q(c.name), sql_type(c.ty)))
        .collect();
    cols.extend([
        "_raw jsonb".to_owned(),
        "_synced_at timestamptz".to_owned(),
        "_load_id text".to_owned(),
        "_deleted_at timestamptz".to_owned(),
        format!("PRIMARY KEY ({})", list(&spec.primary_key)),
    ]);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};\nCREATE TABLE IF NOT EXISTS {t} ({cols})",
        s = q(schema),
        t = table_name(schema, spec.table.name),
        cols = cols.join(", ")
    )
}

/// Adds a column a newer spec declares.
pub(crate) fn add_column(
    schema: &str,
    table: &str,
    column: &str,
    ty: talkhouse_model::ColumnType,
) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
        table_name(schema, table),
        q(column),
        sql_type(ty)
    )
}

/// The staging table of a batch: the spec's columns plus `_raw`, dropped at commit.
pub(crate) fn create_stage(stage: &str, spec: &TableSpec) -> String {
    let mut cols: Vec<String> = spec
        .columns
        .iter()
        .map(|c| format!("{} {}", q(c.name), sql_type(c.ty)))
        .collect();
    cols.push("_raw jsonb".to_owned());
    format!(
        "CREATE TEMP TABLE {} ({}) ON COMMIT DROP",
        q(stage),
        cols.join(", ")
    )
}

/// Binary `COPY` into the staging table.
pub(crate) fn copy_stage(stage: &str, spec: &TableSpec) -> String {
    let cols: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
    format!(
        "COPY {} ({}, _raw) FROM STDIN (FORMAT binary)",
        q(stage),
        list(&cols)
    )
}

fn eq_on(cols: &[&str], a: &str, b: &str) -> String {
    cols.iter()
        .map(|c| format!("{a}.{col} = {b}.{col}", col = q(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Deletes the rows of the batch's groups that are absent from the batch, differ from their
/// staged version (any column or `_raw`), or are marked deleted. Written as a semi-join and an
/// anti-join (no `OR` around the subquery), so PostgreSQL hashes the staging table instead of
/// scanning it once per target row.
pub(crate) fn delete_stale(target: &str, stage: &str, spec: &TableSpec) -> String {
    let mut same: Vec<String> = spec.columns.iter().map(|c| q(c.name)).collect();
    same.push("_raw".to_owned());
    let s_row: Vec<String> = same.iter().map(|c| format!("s.{c}")).collect();
    let t_row: Vec<String> = same.iter().map(|c| format!("t.{c}")).collect();
    format!(
        "DELETE FROM {target} t
         WHERE EXISTS (SELECT 1 FROM {stage} s WHERE {group})
           AND NOT EXISTS (
               SELECT 1 FROM {stage} s
               WHERE {pk} AND t._deleted_at IS NULL AND ROW({s_row}) IS NOT DISTINCT FROM ROW({t_row}))",
        stage = q(stage),
        group = eq_on(spec.group_key(), "s", "t"),
        pk = eq_on(&spec.primary_key, "s", "t"),
        s_row = s_row.join(", "),
        t_row = t_row.join(", "),
    )
}

/// Inserts staged rows whose key is absent; `$1` is `_synced_at`, `$2` `_load_id`.
pub(crate) fn insert_new(target: &str, stage: &str, spec: &TableSpec) -> String {
    let cols: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
    let cols = list(&cols);
    format!(
        "INSERT INTO {target} ({cols}, _raw, _synced_at, _load_id)
         SELECT {cols}, _raw, $1, $2 FROM {stage}
         ON CONFLICT ({pk}) DO NOTHING",
        stage = q(stage),
        pk = list(&spec.primary_key),
    )
}

/// Applies an erasure to the rows whose `column = $1`. Update modes take `_deleted_at` as `$2`.
/// With `scoped` (model tables, shared by all sources) only rows whose `source` is the next
/// parameter (`$2` for delete, `$3` otherwise) are touched.
pub(crate) fn erase(
    target: &str,
    spec: &TableSpec,
    column: &str,
    mode: EraseMode,
    scoped: bool,
) -> String {
    let scope = |n: u8| {
        if scoped {
            format!(" AND \"source\" = ${n}")
        } else {
            String::new()
        }
    };
    match mode {
        EraseMode::Delete => format!("DELETE FROM {target} WHERE {} = $1{}", q(column), scope(2)),
        EraseMode::Keep => format!(
            "UPDATE {target} SET _deleted_at = coalesce(_deleted_at, $2) WHERE {} = $1{}",
            q(column),
            scope(3)
        ),
        EraseMode::Redact => {
            let mut sets = vec![
                "_deleted_at = coalesce(_deleted_at, $2)".to_owned(),
                "_raw = NULL".to_owned(),
            ];
            sets.extend(
                spec.columns
                    .iter()
                    .filter(|c| c.personal)
                    .map(|c| format!("{} = NULL", q(c.name))),
            );
            format!(
                "UPDATE {target} SET {} WHERE {} = $1{}",
                sets.join(", "),
                q(column),
                scope(3)
            )
        }
    }
}

/// Quarantined records of one commit, from three parallel text arrays.
pub(crate) const INSERT_QUARANTINE: &str = "
INSERT INTO talkhouse.quarantine (source, stream, location, error, payload, load_id, quarantined_at)
SELECT $1, $2, l, e, p, $3, $4 FROM unnest($5::text[], $6::text[], $7::text[]) AS x(l, e, p)";

/// The stream's cursor.
pub(crate) const UPSERT_STATE: &str = "
INSERT INTO talkhouse.state (source, stream, cursor, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (source, stream) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = EXCLUDED.updated_at";

/// Inserts or updates one row of `talkhouse.loads`: parameters in the order of
/// [`talkhouse_model::bookkeeping::LOADS`].
pub(crate) fn upsert_load() -> String {
    use talkhouse_model::bookkeeping::{LOADS, LOADS_KEY};
    let names: Vec<&str> = LOADS.iter().map(|c| c.name).collect();
    let params: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|n| !LOADS_KEY.contains(n))
        .map(|n| format!("{c} = EXCLUDED.{c}", c = q(n)))
        .collect();
    format!(
        "INSERT INTO talkhouse.loads ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        list(&names),
        params.join(", "),
        list(LOADS_KEY),
        updates.join(", ")
    )
}

/// The view named by `CREATE OR REPLACE VIEW <name> AS …`, if the statement is one.
pub(crate) fn replaced_view(sql: &str) -> Option<&str> {
    let rest = sql.trim_start();
    let prefix = "create or replace view ";
    if rest.len() < prefix.len() || !rest[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = rest[prefix.len()..].trim_start();
    let end = rest.find(char::is_whitespace)?;
    let name = &rest[..end];
    rest[end..]
        .trim_start()
        .get(..3)
        .filter(|a| a.eq_ignore_ascii_case("as "))
        .map(|_| name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use talkhouse_model::{Column, ColumnType, TableRef};

    fn child() -> TableSpec {
        TableSpec::new(
            TableRef::source("tags"),
            vec![
                Column::new("item_id", ColumnType::Integer),
                Column::new("position", ColumnType::Integer),
                Column::personal("tag", ColumnType::Text),
            ],
            &["item_id", "position"],
        )
        .child_of(&["item_id"])
    }

    #[test]
    fn ddl() {
        let sql = create_table("src", &child());
        assert!(sql.contains(r#"CREATE TABLE IF NOT EXISTS "src"."tags" ("item_id" bigint, "position" bigint, "tag" text, _raw jsonb"#));
        assert!(sql.contains(r#"PRIMARY KEY ("item_id", "position")"#));
    }

    #[test]
    fn merge_uses_group_and_primary_keys() {
        let sql = delete_stale(r#""src"."tags""#, "stage_0", &child());
        assert!(
            sql.contains(
                r#"WHERE EXISTS (SELECT 1 FROM "stage_0" s WHERE s."item_id" = t."item_id")"#
            ),
            "{sql}"
        );
        assert!(
            sql.contains(r#"s."item_id" = t."item_id" AND s."position" = t."position" AND t._deleted_at IS NULL AND ROW("#),
            "{sql}"
        );
        let sql = insert_new(r#""src"."tags""#, "stage_0", &child());
        assert!(sql.contains(r#"ON CONFLICT ("item_id", "position") DO NOTHING"#));
    }

    #[test]
    fn redaction_nulls_personal_columns() {
        let sql = erase("t", &child(), "item_id", EraseMode::Redact, false);
        assert!(sql.contains(r#""tag" = NULL"#) && sql.contains("_raw = NULL"));
        assert!(!sql.contains(r#""position" = NULL"#));
        assert!(
            erase("t", &child(), "item_id", EraseMode::Delete, true)
                .ends_with(r#"= $1 AND "source" = $2"#)
        );
    }

    #[test]
    fn finds_replaced_views() {
        assert_eq!(
            replaced_view("CREATE OR REPLACE VIEW gladly.v AS SELECT 1"),
            Some("gladly.v")
        );
        assert_eq!(
            replaced_view("  create or replace view x\n as select 1"),
            Some("x")
        );
        assert_eq!(replaced_view("CREATE VIEW x AS SELECT 1"), None);
    }
}
