//! A Gladly webhook delivery: `Authorization` header and body.
#![no_main]

use std::sync::{Arc, LazyLock};

use talkhouse_model::Source;

static SOURCE: LazyLock<Arc<dyn Source>> = LazyLock::new(|| {
    let section: toml::Table = toml::from_str(
        r#"base_url = "http://127.0.0.1:9"
           email = "api@example.com"
           token = "t"
           webhook_username = "gladly"
           webhook_password = "secret""#,
    )
    .expect("a valid section");
    talkhouse_sources::gladly::build("gladly", section).expect("a Gladly source")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::gladly::inputs::webhook(&**SOURCE, data);
});
