//! SQL helpers shared by the SQL destinations.

/// Quotes an identifier (`"name"`, doubling embedded quotes).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal (`'it''s'`).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The bookkeeping columns every vendor and model table carries, in order.
pub fn bookkeeping_columns() -> [&'static str; 4] {
    ["_raw", "_synced_at", "_load_id", "_deleted_at"]
}

/// The DDL of schema `talkhouse`'s bookkeeping tables ([`talkhouse_model::bookkeeping`]) in
/// a SQL dialect given by its type names: `CREATE TABLE IF NOT EXISTS` for each (with its key
/// as primary key when `keys`), then `ADD COLUMN IF NOT EXISTS` for the columns declared after
/// the first release, so that a table an older release created gains them.
#[cfg_attr(not(any(feature = "duckdb", feature = "postgres")), allow(dead_code))]
pub(crate) fn bookkeeping_ddl(
    sql_type: fn(talkhouse_model::ColumnType) -> &'static str,
    keys: bool,
) -> String {
    use talkhouse_model::bookkeeping::{LOADS_KEY, STATE_KEY, TABLES};
    let mut out = String::from("CREATE SCHEMA IF NOT EXISTS talkhouse;\n");
    for (table, columns) in TABLES {
        let mut defs: Vec<String> = columns
            .iter()
            .map(|c| {
                let not_null = if c.required { " NOT NULL" } else { "" };
                format!("{} {}{not_null}", quote_ident(c.name), sql_type(c.ty))
            })
            .collect();
        let key = match *table {
            "state" => Some(STATE_KEY),
            "loads" => Some(LOADS_KEY),
            _ => None,
        };
        if let (true, Some(key)) = (keys, key) {
            let key: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
            defs.push(format!("PRIMARY KEY ({})", key.join(", ")));
        }
        out.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS talkhouse.{table} ({});\n",
            defs.join(", ")
        ));
        for c in columns.iter().filter(|c| c.added_later) {
            out.push_str(&format!(
                "ALTER TABLE talkhouse.{table} ADD COLUMN IF NOT EXISTS {} {};\n",
                quote_ident(c.name),
                sql_type(c.ty)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn the_bookkeeping_ddl_declares_every_column_and_the_keys() {
        let ddl = bookkeeping_ddl(|_| "T", true);
        for (table, columns) in talkhouse_model::bookkeeping::TABLES {
            assert!(ddl.contains(&format!("CREATE TABLE IF NOT EXISTS talkhouse.{table} (")));
            for c in *columns {
                assert!(
                    ddl.contains(&format!("\"{}\" T", c.name)),
                    "{table}.{}",
                    c.name
                );
            }
        }
        assert!(ddl.contains("PRIMARY KEY (\"load_id\", \"source\", \"stream\")"));
        assert!(
            ddl.contains("ALTER TABLE talkhouse.loads ADD COLUMN IF NOT EXISTS \"requests\" T;")
        );
        assert!(!bookkeeping_ddl(|_| "T", false).contains("PRIMARY KEY"));
    }
}
