//! A Gladly REST answer: customer profile, conversation, inbox, 301 `moved` body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::gladly::inputs::rest_record(data);
});
