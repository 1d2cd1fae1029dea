//! A line of any Gladly export file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::gladly::inputs::export_line(data);
});
