//! An Ada Data Export API record (conversation or message).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::ada::inputs::record(data);
});
