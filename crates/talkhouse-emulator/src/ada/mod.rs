//! The Ada Data Export API emulator (v1.3, v1.4 and v2), as Ada documents and serves it.
//!
//! # Endpoints
//! * `GET /data_api/v1.3/{conversations,messages}`, `GET /data_api/v1.4/…` and the same under
//!   `/api/data_api/…`: envelope `{"message": "OK", "data": […], "next_page_uri": "…"}` (the key
//!   is left out on the last page); errors `{"message": "…"}`; bad parameters 422 (400 for a
//!   window over 60 days or both `*_since` given).
//! * `GET /api/v2/export/{conversations,messages}`: envelope
//!   `{"data": […], "meta": {"next_page_uri": "…" | null}}`; errors
//!   `{"errors": [{"type", "message", "details"}]}`; bad parameters 400.
//!
//! Parameters as documented: `created_since` xor `updated_since` (messages require
//! `created_since`), `*_to` defaulting to `*_since` + 7 days, at most 60 days apart, `page_size`
//! 100–10,000 (default 10,000), datetimes ending in `Z`. Results are sorted by the bound's field
//! (`date_created` or `date_updated`, then `_id`); the lower bound is inclusive and the upper
//! exclusive. `next_page_uri` repeats the query with the lower bound moved to the last record's
//! timestamp, so every page's last record (and any sharing its instant) comes again on the next
//! page; about one conversation in twenty shares its start with the previous one, and the
//! greeting, welcome text and quick replies of a conversation share one instant.
//!
//! # Auth
//! `Authorization: Bearer <token>`. The v1.x endpoints take the one active Data Export token
//! ([`LEGACY_TOKEN`] until regenerated with `POST /_emulator/ada/regenerate_token`, which
//! invalidates the old one); v2 takes the v2 API key [`V2_TOKEN`] and answers 401 to a legacy
//! key with Ada's explanation.
//!
//! # Data and clock
//! Conversations follow a timeline (see [`data`]) that starts 30 days before the emulator
//! started and continues forever at the same pace, so advancing the clock brings new ones. A
//! record is visible once older than `now − lag`; conversations get a later version (CSAT filled
//! in, `date_updated` moved) for about a third of them; only the previous 12 months are served.
//! Ada sometimes ingests data later than its documented lag: with `ada.late_every` one message
//! in N (chosen by its id) becomes visible only `ada.late_delay` after the lag, behind a
//! connector's cursor if it trusts the lag.
//! v2 conversation dates carry no zone; message dates end in `+00:00`.
//!
//! # Control endpoints
//! `POST /_emulator/ada/regenerate_token` → `{"token": "…"}`; `GET /_emulator/ada/stats` →
//! request log (endpoint, version, status, bounds, records, wall-clock ms), 429s given and records
//! served; `POST /_emulator/ada/stats/reset` clears them.
//!
//! # Switches (`--variant ada.<switch>=<value>`)
//! | switch | values (default first) | what |
//! |---|---|---|
//! | `ada.rps` | `3`, `10` | requests per second per endpoint in strict mode |
//! | `ada.caps` | `off`, `on` | also 100 requests/min and 15,000/day per endpoint (strict mode) |
//! | `ada.rate_headers` | `off`, `on` | `Retry-After` on 429 and `X-RateLimit-*` on every answer |
//! | `ada.lag` | `2h`, `48h`, `0`, any duration | ingestion lag |
//! | `ada.late_every` | `0` (none), N | one message in N is ingested late |
//! | `ada.late_delay` | `6h`, any duration | how much later than the lag a late message appears |
//! | `ada.link` | `default` (v1 root-relative, v2 absolute), `root`, `relative`, `absolute` | form of `next_page_uri` |
//! | `ada.zoneless` | `v2_conversations`, `all`, `none` | which dates lack a zone suffix |
//! | `ada.old_window` | `empty`, `error` | bounds older than 12 months: nothing there, or 400/422 |
//! | `ada.non_z` | `reject`, `accept` | query datetimes not ending in `Z` |
//! | `ada.bot_sender` | `ada`, `Ada`, `bot` | the bot's literal in `sender`/`recipient` |
//! | `ada.trial_days` | unset, N | the Data Export token's trial expires N days after start (403) |
//! | `ada.v2_2026` | `on`, `off` | the 2026 v2 fields (`classifications`, `used_*`, `last_agent_*`) |

pub mod api;
pub mod data;
pub mod truth;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use chrono::Duration;
use serde_json::json;

use crate::server::VendorApp;
use crate::{Credentials, EmulatorOptions};
use api::{Ada, LinkStyle};
use data::{Shape, Timeline, Zoneless};
pub use truth::truth;

/// The Data Export (v1.x) token the emulator starts with.
pub const LEGACY_TOKEN: &str = "ada-emulator-data-export-token";
/// The v2 API key.
pub const V2_TOKEN: &str = "ada-emulator-v2-api-key";

/// Builds the state from the options and switches.
pub fn state(opts: &EmulatorOptions) -> Arc<Ada> {
    let v = &opts.variants;
    let anchor = opts.clock.now();
    let timeline = Timeline::new(opts.seed, anchor, opts.conversations());
    let shape = Shape {
        bot_literal: v.get_or("ada.bot_sender", "ada").to_owned(),
        zoneless: match v.get_or("ada.zoneless", "v2_conversations") {
            "all" => Zoneless::All,
            "none" => Zoneless::None,
            _ => Zoneless::V2Conversations,
        },
        v2_2026: v.get_or("ada.v2_2026", "on") != "off",
    };
    let lag = crate::clock::parse_duration(v.get_or("ada.lag", "2h")).unwrap_or(Duration::hours(2));
    let link = match v.get_or("ada.link", "default") {
        "root" => LinkStyle::Root,
        "relative" => LinkStyle::Relative,
        "absolute" => LinkStyle::Absolute,
        _ => LinkStyle::Default,
    };
    let rps: f64 = v.get_or("ada.rps", "3").parse().unwrap_or(3.0);
    let mut ada = Ada::new(
        timeline,
        shape,
        opts.clock.clone(),
        lag,
        link,
        opts.strict_rate_limits,
        rps,
    );
    ada.caps = v.on("ada.caps");
    ada.rate_headers = v.on("ada.rate_headers");
    ada.old_window_error = v.get_or("ada.old_window", "empty") == "error";
    ada.reject_non_z = v.get_or("ada.non_z", "reject") != "accept";
    ada.late_every = v.get_or("ada.late_every", "0").parse().unwrap_or(0);
    ada.late_delay = crate::clock::parse_duration(v.get_or("ada.late_delay", "6h"))
        .unwrap_or(Duration::hours(6));
    ada.trial_expires = v
        .get("ada.trial_days")
        .and_then(|d| d.parse::<i64>().ok())
        .map(|d| anchor + Duration::days(d));
    Arc::new(ada)
}

async fn regenerate(State(ada): State<Arc<Ada>>) -> Json<serde_json::Value> {
    let n = ada.regenerations.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("{LEGACY_TOKEN}-{n}");
    *ada.legacy_token
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = token.clone();
    Json(json!({ "token": token }))
}

async fn stats(State(ada): State<Arc<Ada>>) -> Json<serde_json::Value> {
    let log = ada
        .log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Json(json!({
        "requests": log,
        "throttled": ada.throttled.load(Ordering::Relaxed),
        "served": ada.served.load(Ordering::Relaxed),
    }))
}

async fn reset_stats(State(ada): State<Arc<Ada>>) -> Json<serde_json::Value> {
    ada.log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    ada.throttled.store(0, Ordering::Relaxed);
    ada.served.store(0, Ordering::Relaxed);
    Json(json!({}))
}

/// Builds the Ada emulator.
pub fn app(opts: &EmulatorOptions) -> VendorApp {
    let ada = state(opts);
    let router = axum::Router::new()
        .route("/data_api/{version}/{kind}", get(api::v1))
        .route("/api/data_api/{version}/{kind}", get(api::v1_api))
        .route("/api/v2/export/{kind}", get(api::v2))
        .route("/_emulator/ada/regenerate_token", post(regenerate))
        .route("/_emulator/ada/stats", get(stats))
        .route("/_emulator/ada/stats/reset", post(reset_stats))
        .with_state(ada.clone());
    VendorApp {
        router,
        credentials: Credentials {
            fields: vec![("api_version", json!("v2")), ("token", json!(V2_TOKEN))],
        },
        truth: Arc::new(move || truth(&ada)),
    }
}
