//! The `talkhouse` binary's configuration (`talkhouse.toml`), as a library so that the fuzz
//! targets (`fuzz/`) and tests parse exactly what the binary parses. Everything else of the
//! binary is glue in `main.rs` and `commands/`.

pub mod config;
