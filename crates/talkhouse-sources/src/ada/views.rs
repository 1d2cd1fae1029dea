//! Ada's metrics as SQL views, the one place they are defined; the report reads them.
//!
//! Views, in the source's schema:
//! * `metric_conversations`: one row per conversation with 0/1 columns `engaged`
//!   (`is_engaged`), `escalated` (`is_escalated`) and `engaged_escalated` (both), and
//!   `date_created` for filtering by day; conversations of test users (`is_test_user`) left out
//!   unless `include_test`;
//! * `metrics`: `total_conversations`, the three counts as `<flag>_conversations`, and
//!   `engaged_rate` (engaged ÷ conversations), `escalated_rate` (escalated ÷ conversations),
//!   `escalated_of_engaged_rate` (escalated among engaged ÷ engaged). Rates are NULL when the
//!   denominator is 0.

/// The 0/1 columns of `metric_conversations`, as `(column, condition)`.
const FLAGS: [(&str, &str); 3] = [
    ("engaged", "c.is_engaged"),
    ("escalated", "c.is_escalated"),
    ("engaged_escalated", "c.is_engaged AND c.is_escalated"),
];

/// The views as `(name, SELECT …)`, with `{schema}` standing for the source's schema.
pub fn views(include_test: bool) -> Vec<(&'static str, String)> {
    let test = if include_test {
        ""
    } else {
        " AND COALESCE(c.is_test_user, FALSE) = FALSE"
    };
    let flags: Vec<String> = FLAGS
        .iter()
        .map(|(name, cond)| format!("CASE WHEN {cond} THEN 1 ELSE 0 END AS {name}"))
        .collect();
    let counts: Vec<String> = FLAGS
        .iter()
        .map(|(name, _)| format!("CAST(SUM({name}) AS BIGINT) AS {name}_conversations"))
        .collect();
    let rate = |num: &str, den: &str, name: &str| {
        format!("CAST(SUM({num}) AS DOUBLE PRECISION) / NULLIF({den}, 0) AS {name}")
    };
    vec![
        (
            "metric_conversations",
            format!(
                "SELECT c.id AS conversation_id, c.date_created, c.is_test_user,
  {}
FROM {{schema}}.conversations c
WHERE c._deleted_at IS NULL{test}",
                flags.join(",\n  ")
            ),
        ),
        (
            "metrics",
            format!(
                "SELECT CAST(COUNT(*) AS BIGINT) AS total_conversations,
  {},
  {},
  {},
  {}
FROM {{schema}}.metric_conversations",
                counts.join(",\n  "),
                rate("engaged", "COUNT(*)", "engaged_rate"),
                rate("escalated", "COUNT(*)", "escalated_rate"),
                rate(
                    "engaged_escalated",
                    "SUM(engaged)",
                    "escalated_of_engaged_rate"
                ),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_users_are_left_out_unless_asked_for() {
        let all = |v: Vec<(&str, String)>| v.into_iter().map(|(_, s)| s).collect::<String>();
        assert!(all(views(false)).contains("is_test_user, FALSE) = FALSE"));
        assert!(!all(views(true)).contains("is_test_user, FALSE) = FALSE"));
        let names: Vec<&str> = views(false).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["metric_conversations", "metrics"]);
    }
}
