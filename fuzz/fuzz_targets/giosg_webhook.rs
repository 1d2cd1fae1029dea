//! A Giosg webhook body (`{channel, action, resource_id, resource, app_user_auth}`), posted with
//! the right key.
#![no_main]

use std::sync::{Arc, LazyLock};

use talkhouse_model::Source;

static SOURCE: LazyLock<Arc<dyn Source>> = LazyLock::new(|| {
    let section: toml::Table = toml::from_str(
        r#"base_url = "http://127.0.0.1:9"
           organization_id = "0b6c6a52-1f5e-4a9e-9f43-2c1d2b3a4e5f"
           token = "t"
           webhook_secret = "k3y""#,
    )
    .expect("a valid section");
    talkhouse_sources::giosg::build("giosg", section).expect("a Giosg source")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = talkhouse_sources::giosg::inputs::webhook(&**SOURCE, "k3y", data);
});
