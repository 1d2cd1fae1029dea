//! A Giosg REST record: chat, message, membership, tag, visitor variable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::giosg::inputs::record(data);
});
