//! Following Gladly's merge chains in the warehouse: a customer merged into another (and that
//! one into a third) keeps rows under each id it had, in the vendor tables and in the reports,
//! which keep the ids they were made with. `talkhouse purge` asks for every id of one person.

use talkhouse_model::{Destination, DestinationError, IdHistory};

/// Every id linked to `id` by chains of `history` in schema `schema`, both ways (A → B → C:
/// starting from B finds A and C), `id` first, until no new id turns up.
///
/// # Errors
/// When the destination cannot run the query.
pub async fn follow_id_history(
    dest: &dyn Destination,
    schema: &str,
    history: IdHistory,
    id: &str,
) -> Result<Vec<String>, DestinationError> {
    let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let table = format!(
        "{}.{}",
        ident(history.table.schema(schema)),
        ident(history.table.name)
    );
    let (old, new) = (ident(history.old), ident(history.new));
    let mut ids = vec![id.to_owned()];
    let mut frontier = ids.clone();
    while let Some(next) = frontier.pop() {
        let lit = format!("'{}'", next.replace('\'', "''"));
        let rows = dest
            .query(&format!(
                "SELECT {old} AS id FROM {table} WHERE {new} = {lit} \
                 UNION SELECT {new} AS id FROM {table} WHERE {old} = {lit}"
            ))
            .await?;
        for r in &rows {
            if let Some(other) = r.get("id").and_then(|v| v.as_str())
                && !ids.iter().any(|known| known == other)
            {
                ids.push(other.to_owned());
                frontier.push(other.to_owned());
            }
        }
    }
    Ok(ids)
}
