//! A Reports API answer (CSV) → rows of a report table.
//!
//! Gladly's reports are UTF-8 CSV, possibly led by a byte-order mark; quoted fields may hold
//! commas and newlines; an empty body is an empty window. Headers are English phrases ("Contact
//! ID", "Contact Handle Time (sec)", "Assigned Inbox ID – Created" with a dash or an en dash):
//! [`snake_case`] turns them into column names. A header of the table's column list lands in its
//! typed column; every header, known or not, lands in `_raw` (a JSON object of header → value,
//! in the report's order), and unknown ones are reported so that the stream can warn. A blank
//! field is NULL. Timestamps without an offset are in the zone the report was requested in.
//! A row that cannot be read (wrong number of fields, a value that is not of its column's type,
//! no key) is quarantined with its report, window and line; the rest of the report goes on.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{Cell, Column, ColumnType, Quarantined, Row, TableRef};

/// What one report answer held.
#[derive(Debug, Default)]
pub(super) struct ParsedReport {
    /// Rows of the report table.
    pub(super) rows: Vec<Row>,
    /// Records that could not be read.
    pub(super) quarantined: Vec<Quarantined>,
    /// Data records in the body (read or not): what a row cap would cut.
    pub(super) records: u64,
    /// Rows left out because their contact has not ended yet (work sessions).
    pub(super) not_ended: u64,
    /// Headers (as sent) that have no column.
    pub(super) unknown_headers: BTreeSet<String>,
}

/// How to read one report.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReportShape {
    /// The table its rows go to.
    pub(super) table: TableRef,
    /// The table's columns (named after the headers).
    pub(super) columns: &'static [Column],
    /// Key columns, each required, except `empty_key` which may be blank (stored as "").
    pub(super) key: &'static [&'static str],
    /// A key column that may be blank: an agent-less work session.
    pub(super) empty_key: Option<&'static str>,
    /// A column whose blank value means the row is not final yet: the row is left out.
    pub(super) required_end: Option<&'static str>,
}

/// `Contact Handle Time (sec)` → `contact_handle_time_sec`: lower case, every run of other
/// characters than letters and digits one `_`, none at either end.
pub(super) fn snake_case(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut gap = false;
    for ch in header.chars() {
        if ch.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.extend(ch.to_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

/// Reads a report's body. `location` names the report and window (`ContactExportReportV3
/// 2026-03-01..2026-03-07`); quarantined records get `location:line N`.
pub(super) fn parse(body: &[u8], shape: &ReportShape, tz: Tz, location: &str) -> ParsedReport {
    let mut out = ParsedReport::default();
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return out;
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(body);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => {
            out.quarantined.push(Quarantined {
                location: format!("{location}:line 1"),
                error: format!("unreadable header row: {e}"),
                payload: String::from_utf8_lossy(body).chars().take(2000).collect(),
            });
            return out;
        }
    };
    let names: Vec<String> = headers.iter().map(|h| snake_case(h)).collect();
    // Header index of each column of the table, where the report has it.
    let slots: Vec<(&'static Column, Option<usize>)> = shape
        .columns
        .iter()
        .map(|c| (c, names.iter().position(|n| n == c.name)))
        .collect();
    for (h, n) in headers.iter().zip(&names) {
        if !shape.columns.iter().any(|c| c.name == n) {
            out.unknown_headers.insert(h.clone());
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                out.records += 1;
                // The reader counts the lines before the record; the file line is one more.
                let line = record.position().map_or(line, csv::Position::line) + 1;
                let at = format!("{location}:line {line}");
                if record.len() != headers.len() {
                    out.quarantined.push(Quarantined {
                        location: at,
                        error: format!(
                            "{} fields where the header has {}",
                            record.len(),
                            headers.len()
                        ),
                        payload: record.iter().collect::<Vec<_>>().join(","),
                    });
                    continue;
                }
                match row_of(&record, &headers, &slots, shape, tz) {
                    Ok(Some(row)) => out.rows.push(row),
                    Ok(None) => out.not_ended += 1,
                    Err(error) => out.quarantined.push(Quarantined {
                        location: at,
                        error,
                        payload: raw_of(&record, &headers).to_string(),
                    }),
                }
            }
            Err(e) => {
                out.records += 1;
                let line = e.position().map_or(line, csv::Position::line) + 1;
                out.quarantined.push(Quarantined {
                    location: format!("{location}:line {line}"),
                    error: format!("unreadable CSV record: {e}"),
                    payload: String::new(),
                });
                // An I/O error cannot happen on bytes in memory; anything else is one record.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
            }
        }
    }
    out
}

/// The record as `_raw`: header → value, blank → null.
fn raw_of(record: &csv::StringRecord, headers: &[String]) -> Value {
    let map: Map<String, Value> = headers
        .iter()
        .zip(record.iter())
        .map(|(h, v)| {
            let v = if v.trim().is_empty() {
                Value::Null
            } else {
                Value::String(v.to_owned())
            };
            (h.clone(), v)
        })
        .collect();
    Value::Object(map)
}

/// One record → its row; `Ok(None)` when the row is not final yet.
fn row_of(
    record: &csv::StringRecord,
    headers: &[String],
    slots: &[(&'static Column, Option<usize>)],
    shape: &ReportShape,
    tz: Tz,
) -> Result<Option<Row>, String> {
    let mut row = Row::new(shape.table);
    for (column, slot) in slots {
        let text = slot
            .and_then(|i| record.get(i))
            .map(str::trim)
            .unwrap_or("");
        if text.is_empty() {
            if shape.key.contains(&column.name) {
                if shape.empty_key == Some(column.name) {
                    row.put(column.name, "");
                    continue;
                }
                return Err(format!("no `{}` (the row's key)", column.name));
            }
            if shape.required_end == Some(column.name) {
                return Ok(None);
            }
            continue;
        }
        let cell = typed(text, column.ty, tz).ok_or_else(|| {
            format!(
                "`{}` is not a {}: {text:?}",
                column.name,
                type_name(column.ty)
            )
        })?;
        row.put(column.name, cell);
    }
    Ok(Some(row.with_raw(raw_of(record, headers).to_string())))
}

fn type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Integer => "whole number",
        ColumnType::Float => "number",
        ColumnType::Boolean => "boolean",
        ColumnType::Timestamp => "timestamp",
        ColumnType::Date => "date",
        ColumnType::Text | ColumnType::Json => "text",
    }
}

/// A non-blank field as a cell of `ty`; `None` when it is not of that type.
fn typed(text: &str, ty: ColumnType, tz: Tz) -> Option<Cell> {
    Some(match ty {
        ColumnType::Text | ColumnType::Json => Cell::Text(text.to_owned()),
        ColumnType::Integer => match text.parse::<i64>() {
            Ok(n) => Cell::Integer(n),
            Err(_) => {
                let f = text.parse::<f64>().ok().filter(|f| f.fract() == 0.0)?;
                // A whole number written with a decimal point; in i64 range by the check.
                if f.abs() >= 9.0e18 {
                    return None;
                }
                #[allow(clippy::cast_possible_truncation)]
                let n = f as i64;
                Cell::Integer(n)
            }
        },
        ColumnType::Float => Cell::Float(text.parse::<f64>().ok().filter(|f| f.is_finite())?),
        ColumnType::Boolean => Cell::Boolean(match text.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => true,
            "false" | "f" | "no" | "n" | "0" => false,
            _ => return None,
        }),
        ColumnType::Timestamp => Cell::Timestamp(report_time(text, tz)?),
        ColumnType::Date => Cell::Date(NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?),
    })
}

/// A report timestamp: with `Z` or an offset as it says, without one in `tz` (`2023-09-27
/// 07:30`, with or without seconds and fractions, `T` or a space).
pub(super) fn report_time(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let t = text.trim();
    let iso = if t.as_bytes().get(10) == Some(&b' ') {
        format!("{}T{}", &t[..10], &t[11..])
    } else {
        t.to_owned()
    };
    if let Ok(x) = DateTime::parse_from_rfc3339(&iso) {
        return Some(x.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&iso, fmt) {
            return tz
                .from_local_datetime(&naive)
                .earliest()
                .map(|x| x.with_timezone(&Utc));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return tz
            .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .earliest()
            .map(|x| x.with_timezone(&Utc));
    }
    // Offsets other than RFC 3339's (`+0000`), epochs.
    parse_timestamp(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gladly::tables::{CONTACT_COLUMNS, CONTACTS, WORK_SESSION_COLUMNS, WORK_SESSIONS};

    const CONTACTS_SHAPE: ReportShape = ReportShape {
        table: CONTACTS,
        columns: CONTACT_COLUMNS,
        key: &["contact_id"],
        empty_key: None,
        required_end: None,
    };

    #[test]
    fn headers_become_snake_case() {
        assert_eq!(snake_case("Contact ID"), "contact_id");
        assert_eq!(
            snake_case("Contact Handle Time (sec)"),
            "contact_handle_time_sec"
        );
        assert_eq!(
            snake_case("Assigned Inbox ID \u{2013} Created"),
            "assigned_inbox_id_created"
        );
        assert_eq!(
            snake_case("Created-to-First Closed Time in seconds"),
            "created_to_first_closed_time_in_seconds"
        );
        assert_eq!(snake_case("\u{feff}Timezone Filter"), "timezone_filter");
    }

    #[test]
    fn bom_quoted_newlines_blanks_unknown_headers_and_a_bad_row() {
        let body = "\u{feff}Contact ID,Queued At,Entry Point,Messages,Mood\r\n\
                    k1,2024-09-15 07:30,\"Main menu,\nthen billing\",3,calm\r\n\
                    k2,,,,\r\n\
                    k3,2024-09-15T10:00:00Z\r\n\
                    k4,2024-09-15 08:00,,many,\r\n\
                    ,2024-09-15 08:00,,1,\r\n";
        let tz: Tz = "America/New_York".parse().expect("zone");
        let r = parse(
            body.as_bytes(),
            &CONTACTS_SHAPE,
            tz,
            "R 2024-09-15..2024-09-15",
        );
        assert_eq!(r.records, 5);
        assert_eq!(r.rows.len(), 2);
        let first = &r.rows[0];
        assert_eq!(
            first.get("entry_point"),
            Some(&Cell::Text("Main menu,\nthen billing".into()))
        );
        // 07:30 in New York in September is 11:30 UTC.
        assert_eq!(
            first.get("queued_at"),
            DateTime::parse_from_rfc3339("2024-09-15T11:30:00Z")
                .ok()
                .map(|t| Cell::Timestamp(t.with_timezone(&Utc)))
                .as_ref()
        );
        assert_eq!(first.get("messages"), Some(&Cell::Integer(3)));
        assert!(
            first
                .raw
                .as_deref()
                .is_some_and(|r| r.contains("\"Mood\":\"calm\""))
        );
        assert_eq!(r.rows[1].get("queued_at"), None, "blank is NULL");
        assert_eq!(r.unknown_headers.iter().collect::<Vec<_>>(), ["Mood"]);
        let lines: Vec<&str> = r.quarantined.iter().map(|q| q.location.as_str()).collect();
        assert_eq!(
            lines,
            [
                "R 2024-09-15..2024-09-15:line 5",
                "R 2024-09-15..2024-09-15:line 6",
                "R 2024-09-15..2024-09-15:line 7"
            ]
        );
        assert!(parse(b"", &CONTACTS_SHAPE, tz, "R").records == 0);
    }

    #[test]
    fn work_sessions_without_agent_keep_an_empty_key_and_unended_ones_wait() {
        let shape = ReportShape {
            table: WORK_SESSIONS,
            columns: WORK_SESSION_COLUMNS,
            key: &["contact_session_id", "agent_id"],
            empty_key: Some("agent_id"),
            required_end: Some("contact_session_ended_at"),
        };
        let body = "Contact Session ID,Agent ID,Contact Session Ended At,Within SLA\n\
                    s1,,2024-09-15 09:00:00,TRUE\n\
                    s2,a1,,false\n";
        let r = parse(body.as_bytes(), &shape, Tz::UTC, "W");
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.not_ended, 1);
        assert_eq!(r.rows[0].get("agent_id"), Some(&Cell::Text(String::new())));
        assert_eq!(r.rows[0].get("within_sla"), Some(&Cell::Boolean(true)));
    }
}
