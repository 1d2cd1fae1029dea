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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
