//! A whole Ultimate export file: gzip or not, NDJSON or a JSON array.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::ultimate::inputs::export_file(data);
});
