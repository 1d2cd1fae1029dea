//! `talkhouse.toml`, as the binary parses it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = talkhouse_cli::config::Config::parse(std::path::Path::new("talkhouse.toml"), text);
});
