//! A line of any Gladly export file; an items line maps to the same rows read as an export line
//! and as a REST record.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::gladly::inputs::export_line(data);
    assert!(talkhouse_sources::gladly::inputs::item_line_agrees(data));
});
