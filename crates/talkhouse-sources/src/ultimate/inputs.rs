//! Entry points for untrusted Ultimate input, for the fuzz targets (`fuzz/`) and tests: each
//! takes arbitrary bytes and must return, never panic.

use super::{records, source};

/// A whole export file (gzip or not, NDJSON or a JSON array); returns how many records
/// parsed.
pub fn export_file(data: &[u8]) -> usize {
    let Ok(bytes) = source::gunzip(bytes::Bytes::copy_from_slice(data)) else {
        return 0;
    };
    let day = chrono::NaiveDate::default();
    source::split_records(&bytes)
        .into_iter()
        .filter_map(|(_, item)| item.ok())
        .filter(|v| records::parse_record(v, day).is_ok())
        .count()
}
