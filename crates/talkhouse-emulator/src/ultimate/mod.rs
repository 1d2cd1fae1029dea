//! The Ultimate ("AI agents – Advanced") Data Export API emulator, as Ultimate documents it.
//!
//! # Endpoints
//! * `POST /data-export/v3/get-signed-urls` (also `/data-export/v2/…` and the Zendesk-host path
//!   `/ai-agents/api/data-export/v3/…`): headers `authorization` (the raw organization API
//!   key), `organizationid`, `botid` (names case-insensitive); body `{"date": "YYYY-MM-DD",
//!   "ttl": minutes}`. Answers `{"date", "urls": [...]}`; 400 (text `invalid date format`) for a
//!   bad body, 401 for a bad key or organization, 403 for a bot of another organization, 404
//!   when the bot has no export for that day (before it existed, today, the future, or a day
//!   without conversations), 429 in strict rate-limit mode.
//! * `GET /storage/{org}/{bot}/conversation_<bot>_<date>_<shard:012>.json?X-Goog-…`: the signed
//!   shard files, served without auth; a URL past `X-Goog-Date + X-Goog-Expires` (emulator
//!   clock) answers 403 `ExpiredToken`, a tampered one 403 `SignatureDoesNotMatch`.
//!
//! # Data and day semantics
//! Conversations are generated per (bot, start day) from the seed over the 30 days before the
//! clock's day at construction and 7 days after it. Day file `x` holds the versions whose
//! `conversation_end_time` falls on `x`, and exists from `x+1 00:00 + ready_minutes`; chats that
//! run over midnight and e-mail bot tickets (up to 72 h) land in later files; about 6 % of rows
//! are *late*: they join their day file only `late_hours` after midnight (the file grows);
//! about 3 % of conversations are re-opened and appear again, later and escalated, in the next
//! day's file; about 3 % are duplicated within their day file; some files have a truncated
//! line; about 3 % carry `conversations_data` that is not JSON; 4 % are suggestion-engine
//! conversations (`bot_messages_count = 0`), 3 % are test mode. The second bot starts 20 days
//! ago (404 before). Intents include `Greeting` (meaningful for odd bots, so only the name
//! filter removes it), `Talk to a human/agent` and not-meaningful ones; array order is not
//! always timestamp order.
//!
//! # Switches (`--variant ultimate.<key>=<value>`)
//! | key | values (default first) | what |
//! |---|---|---|
//! | `response_key` | `urls`, `signed_urls` | key of the URL list |
//! | `format` | `ndjson`, `array` | file format |
//! | `gzip` | `off`, `magic`, `encoding` | gzip body without header / with `Content-Encoding: gzip` |
//! | `keys` | `lower`, `upper` | key casing |
//! | `counts` | `string`, `int` | message counts as strings (`seed`) or integers |
//! | `booleans` | `bool`, `string` | booleans as JSON booleans or strings |
//! | `timestamps` | `z`, `nozone`, `utc`, `epoch` | timestamp format |
//! | `intents` | `objects`, `strings`, `string` | shape of `triggered_intent_replies` |
//! | `fields` | `llm`, `knowledge`, `both` | `llm_*` (`seed`) or observed `knowledge_*` + extras |
//! | `status` | `camel`, `snake` | `botHandled` or `bot_handled` |
//! | `shards` | `3` | shard files per day at most |
//! | `bots` | `2` | bots in the organization |
//! | `bearer` | `reject`, `accept` | whether `Bearer <key>` is accepted |
//! | `empty_day` | `404`, `empty` | a day without conversations: 404 or 200 with no URLs |
//! | `expire_first` | `off`, `on` | the first answer per (bot, day) has already-expired URLs |
//! | `ready_minutes` | `0` | minutes after midnight before yesterday's file exists |
//! | `late_hours` | `6` | hours after midnight before late rows join the file |
//! | `today_file` | `off`, `on` | serve today's partial file (conversations ended so far) |
//! | `v2_retention_days` | `30` | v2 refuses older dates with 400 |
//!
//! # Ground truth
//! Tables `conversations`, `triggered_intent_replies`, `triggered_replies` and
//! `model_conversations` count the final versions (latest day file) of every conversation in
//! the files served for days `first_day ..= yesterday` at the current clock. `extra` holds the
//! window, the bot ids, counts of the quirks served (`duplicates`, `reopened`, `late_rows`,
//! `malformed_lines`, `bad_conversations_data`), and `metrics` (see [`truth::metrics`]).

mod api;
pub mod data;
pub mod render;
pub mod truth;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::json;

use crate::rate::Bucket;
use crate::server::VendorApp;
use crate::{Clock, Credentials, EmulatorOptions, GroundTruth};

use api::{download, signed_v2, signed_v3};
use data::{Conv, World};
use render::{Line, Shape};

/// The fixed, public API key of the emulator.
pub const API_KEY: &str = "ult-emulator-key-5c1e";

/// Settings read from the variants.
#[derive(Debug, Clone)]
struct Settings {
    shape: Shape,
    signed_urls_key: bool,
    array: bool,
    gzip: String,
    shards: usize,
    bearer: bool,
    empty_404: bool,
    expire_first: bool,
    ready: Duration,
    late: Duration,
    today_file: bool,
    v2_retention_days: i64,
}

struct State_ {
    world: World,
    settings: Settings,
    clock: Clock,
    seen: Mutex<HashSet<(usize, NaiveDate)>>,
    bucket: Option<Bucket>,
}

type St = Arc<State_>;

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

impl State_ {
    /// The versions in bot `b`'s file for day `x` at `now`, or `None` when there is no export.
    fn day_versions(&self, b: usize, x: NaiveDate, now: DateTime<Utc>) -> Option<Vec<Conv>> {
        let s = &self.settings;
        let after = midnight(x + Duration::days(1));
        let ready = now >= after + s.ready || (s.today_file && x == now.date_naive());
        if !ready {
            return None;
        }
        let late_visible = now >= after + s.late;
        let v: Vec<Conv> = self
            .world
            .ending_on(b, x)
            .into_iter()
            .filter(|c| c.end <= now && (!c.late || late_visible))
            .collect();
        Some(v)
    }

    /// The lines of a day file, or `None` when there is no export.
    fn day_lines(&self, b: usize, x: NaiveDate, now: DateTime<Utc>) -> Option<Vec<Line>> {
        let versions = self.day_versions(b, x, now)?;
        if versions.is_empty() {
            return if self.settings.empty_404 {
                None
            } else {
                Some(Vec::new())
            };
        }
        let mut lines: Vec<Line> = versions
            .iter()
            .map(|c| Line::Record(render::record(&self.world, c, &self.settings.shape)))
            .collect();
        if self.world.has_malformed_line(b, x) {
            lines.insert(lines.len() / 2, render::malformed(&self.world, b, x));
        }
        for c in versions.iter().filter(|c| c.duplicate) {
            lines.push(Line::Record(render::record(
                &self.world,
                c,
                &self.settings.shape,
            )));
        }
        Some(lines)
    }

    fn truth(&self) -> GroundTruth {
        let now = self.clock.now();
        let first = self.world.first_day();
        let last = now.date_naive() - Duration::days(1);
        let mut finals: BTreeMap<String, Conv> = BTreeMap::new();
        let mut appearances: BTreeMap<String, u32> = BTreeMap::new();
        let (mut duplicates, mut late_rows, mut malformed) = (0u64, 0u64, 0u64);
        for b in 0..self.world.bots.len() {
            let mut x = first;
            while x <= last {
                if let Some(v) = self.day_versions(b, x, now)
                    && !v.is_empty()
                {
                    malformed += u64::from(self.world.has_malformed_line(b, x));
                    for c in v {
                        duplicates += u64::from(c.duplicate);
                        late_rows += u64::from(c.late);
                        *appearances.entry(c.id.clone()).or_default() += 1;
                        finals.insert(c.id.clone(), c);
                    }
                }
                x += Duration::days(1);
            }
        }
        let convs: Vec<&Conv> = finals.values().collect();
        let real: Vec<&Conv> = convs.iter().filter(|c| !c.test_mode).copied().collect();
        let n = convs.len() as u64;
        let mut tables = BTreeMap::new();
        // One row per bot and day read, from the first day to yesterday.
        let days = u64::try_from((last - first).num_days() + 1).unwrap_or(0);
        tables.insert(
            "export_days".to_owned(),
            self.world.bots.len() as u64 * days,
        );
        tables.insert("conversations".to_owned(), n);
        tables.insert("model_conversations".to_owned(), n);
        tables.insert(
            "triggered_intent_replies".to_owned(),
            convs.iter().map(|c| c.intents.len() as u64).sum(),
        );
        tables.insert(
            "triggered_replies".to_owned(),
            convs.iter().map(|c| c.replies.len() as u64).sum(),
        );
        let extra = json!({
            "first_day": first.to_string(),
            "last_day": last.to_string(),
            "organization_id": self.world.org_id,
            "bot_ids": self.world.bots.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
            "duplicates": duplicates,
            "reopened": appearances.values().filter(|n| **n > 1).count(),
            "late_rows": late_rows,
            "malformed_lines": malformed,
            "bad_conversations_data": convs.iter().filter(|c| !c.data_ok).count(),
            "suggestion_engine": convs.iter().filter(|c| c.bot_messages == 0).count(),
            // The vendor's figures leave test conversations (`test_mode`) out.
            "metrics": truth::metrics(&real),
            "test_conversations": convs.len() - real.len(),
        });
        GroundTruth { tables, extra }
    }
}

fn settings(opts: &EmulatorOptions) -> Settings {
    let v = &opts.variants;
    let num = |k: &str, d: i64| v.get(k).and_then(|s| s.parse::<i64>().ok()).unwrap_or(d);
    Settings {
        shape: Shape {
            upper_keys: v.get_or("ultimate.keys", "lower") == "upper",
            counts_as_strings: v.get_or("ultimate.counts", "string") == "string",
            bools_as_strings: v.get_or("ultimate.booleans", "bool") == "string",
            timestamps: v.get_or("ultimate.timestamps", "z").to_owned(),
            intents: v.get_or("ultimate.intents", "objects").to_owned(),
            fields: v.get_or("ultimate.fields", "llm").to_owned(),
            snake_status: v.get_or("ultimate.status", "camel") == "snake",
        },
        signed_urls_key: v.get_or("ultimate.response_key", "urls") == "signed_urls",
        array: v.get_or("ultimate.format", "ndjson") == "array",
        gzip: v.get_or("ultimate.gzip", "off").to_owned(),
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        shards: num("ultimate.shards", 3).max(1) as usize,
        bearer: v.get_or("ultimate.bearer", "reject") == "accept",
        empty_404: v.get_or("ultimate.empty_day", "404") == "404",
        expire_first: v.on("ultimate.expire_first"),
        ready: Duration::minutes(num("ultimate.ready_minutes", 0)),
        late: Duration::hours(num("ultimate.late_hours", 6)),
        today_file: v.on("ultimate.today_file"),
        v2_retention_days: num("ultimate.v2_retention_days", 30),
    }
}

/// Builds the Ultimate emulator.
pub fn app(opts: &EmulatorOptions) -> VendorApp {
    let s = settings(opts);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bots = opts
        .variants
        .get("ultimate.bots")
        .and_then(|b| b.parse::<usize>().ok())
        .unwrap_or(2)
        .clamp(1, 4);
    let world = World::new(
        opts.seed,
        opts.conversations(),
        opts.clock.now().date_naive(),
        bots,
    );
    let mut credentials = Credentials {
        fields: vec![
            ("organization_id", json!(world.org_id)),
            (
                "bot_ids",
                json!(world.bots.iter().map(|b| b.id.clone()).collect::<Vec<_>>()),
            ),
            ("token", json!(API_KEY)),
        ],
    };
    // One request per bot per day at the connector's 2 requests/s: the days read set the
    // time a first sync takes.
    if let Some(days) = opts.backfill_days {
        credentials.fields.push(("backfill_days", json!(days)));
    }
    let state: St = Arc::new(State_ {
        world,
        settings: s,
        clock: opts.clock.clone(),
        seen: Mutex::new(HashSet::new()),
        bucket: opts.strict_rate_limits.then(|| Bucket::new(5.0, 10.0)),
    });
    let truth_state = state.clone();
    let router = Router::new()
        .route("/data-export/v3/get-signed-urls", post(signed_v3))
        .route(
            "/ai-agents/api/data-export/v3/get-signed-urls",
            post(signed_v3),
        )
        .route("/data-export/v2/get-signed-urls", post(signed_v2))
        .route("/storage/{org}/{bot}/{file}", get(download))
        .with_state(state);
    VendorApp {
        router,
        credentials,
        truth: Arc::new(move || truth_state.truth()),
    }
}
