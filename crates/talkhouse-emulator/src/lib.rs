//! Faithful emulators of the four vendor APIs talkhouse syncs from.
//!
//! Each vendor lives in its own module (`gladly`, `giosg`, `ada`, `ultimate`), whose module doc
//! lists what it serves as the vendor documents it: endpoints, envelopes, auth failures, errors,
//! rate limits with the vendor's own 429 answers, pagination and quirks. What the vendors leave unconfirmed is a
//! switch in [`Variants`], so connectors are tested against every variant.
//!
//! Shared machinery:
//! * [`Clock`]: the emulators' "now", set and advanced by tests (or `POST /_emulator/clock`);
//!   data that lies in the future of the clock is not served yet, so incremental syncs can be
//!   tested by advancing it.
//! * [`faults`]: `--faults 'http500=0.1,reset=0.05,latency=50ms'` as a middleware layer.
//! * [`text`]: deterministic multilingual message text with positive, negative and neutral tone.
//! * [`GroundTruth`]: what a correct sync must end with, per table.
//! * [`serve`]: runs a router on a loopback port.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use talkhouse_emulator::{EmulatorOptions, Vendor, start};
//! let opts = EmulatorOptions::new(42, 1.0);
//! let running = start(Vendor::Ada, &opts, 0).await?;
//! println!("Ada emulator at {}", running.base_url);
//! # Ok(()) }
//! ```

pub mod clock;
pub mod faults;
pub mod rate;
pub mod server;
pub mod text;
pub mod truth;
pub mod variants;

pub mod ada;
pub mod giosg;
pub mod gladly;
pub mod ultimate;

pub use clock::Clock;
pub use faults::FaultSpec;
pub use server::{Running, serve, start};
pub use truth::GroundTruth;
pub use variants::Variants;

use std::fmt;

/// The four emulated vendors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vendor {
    /// Gladly: export jobs, REST enrichment, webhooks.
    Gladly,
    /// Giosg: owned chats and per-chat endpoints, chat-end triggers.
    Giosg,
    /// Ada: the Data Export API.
    Ada,
    /// Ultimate: daily export files behind signed URLs.
    Ultimate,
}

impl Vendor {
    /// All vendors, in display order.
    pub const ALL: [Vendor; 4] = [Vendor::Gladly, Vendor::Giosg, Vendor::Ada, Vendor::Ultimate];

    /// Lower-case name, as used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Gladly => "gladly",
            Vendor::Giosg => "giosg",
            Vendor::Ada => "ada",
            Vendor::Ultimate => "ultimate",
        }
    }

    /// Parses a lower-case vendor name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that shapes an emulator run.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Seed of all generated data: the same seed and scale give the same data.
    pub seed: u64,
    /// 1.0 ≈ 1,000 conversations per vendor; 1000 ≈ 1M (generated as a stream).
    pub scale: f64,
    /// The emulators' shared "now".
    pub clock: Clock,
    /// Injected faults.
    pub faults: FaultSpec,
    /// Enforce the vendor's documented rate limits strictly (429 past the limit).
    pub strict_rate_limits: bool,
    /// Switches for what the vendor facts leave unconfirmed.
    pub variants: Variants,
    /// Days of history the connectors are told to back-fill, in the credentials of emulators
    /// whose connector has such a setting (Ultimate's `backfill_days`, Gladly's
    /// `reports_backfill_days`); `None` keeps the connectors' defaults (Gladly's emulator then
    /// says 31, its history). `talkhouse demo` reads two weeks to finish in seconds.
    pub backfill_days: Option<u32>,
}

impl EmulatorOptions {
    /// Options with the given seed and scale, the clock at the current time rounded down to the
    /// hour, no faults, lenient rate limits and default variants.
    pub fn new(seed: u64, scale: f64) -> Self {
        Self {
            seed,
            scale,
            clock: Clock::at_now_rounded(),
            faults: FaultSpec::default(),
            strict_rate_limits: false,
            variants: Variants::default(),
            backfill_days: None,
        }
    }

    /// Number of conversations this scale asks for (at least 1).
    pub fn conversations(&self) -> u64 {
        // Scale is a user-facing positive factor; the product is well inside u64.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = (self.scale * 1000.0).round() as u64;
        n.max(1)
    }
}

/// Credentials and addresses a connector needs to reach one running emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Config keys and values to put in `[sources.<vendor>]` besides `base_url` (`email`,
    /// `token`, `organization_id`, `bot_ids`, …), in display order, each exactly as the
    /// connector's config accepts it. Emulator credentials are fixed and public.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}
