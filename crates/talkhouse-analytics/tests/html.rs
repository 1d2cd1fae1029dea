//! The HTML report in headless Chromium: a screenshot, and the charts' colours counted in it.
//!
//! Skipped (with a message) where Debian's `chromium` is not installed, except under `CI=true`
//! (`scripts/test` installs it where it can). The screenshot is kept
//! as `$CARGO_TARGET_TMPDIR/report.png` for a look.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use talkhouse_analytics::metrics::{Distribution, RESPONSE_BUCKETS};
use talkhouse_analytics::report::{
    Ada, Bucket, DayCount, Escalation, FirstResponse, Report, SourceOutcome, Ultimate,
};

fn sample_report() -> Report {
    let mut r = Report {
        generated_at: "2026-03-11T00:00:00Z".into(),
        ..Report::default()
    };
    for (k, source) in ["gladly", "giosg", "ada"].iter().enumerate() {
        for d in 1..=10u64 {
            let count = 20 + (d * (k as u64 + 3)) % 17;
            r.conversations.by_day.push(DayCount {
                day: format!("2026-03-{d:02}"),
                source: (*source).into(),
                count,
            });
            r.conversations.total += count;
        }
        r.escalation.by_source.insert(
            (*source).into(),
            SourceOutcome {
                conversations: 200,
                escalation_rate: Some(0.1 + 0.1 * k as f64),
                bot_handled_rate: Some(0.6 - 0.1 * k as f64),
                csat_mean: Some(4.2),
                csat_responses: 40,
            },
        );
    }
    r.messages.total = 4000;
    r.messages.per_conversation = Distribution {
        mean: Some(6.2),
        median: Some(6.0),
        p90: Some(11.0),
    };
    r.first_response_seconds = FirstResponse {
        conversations: 500,
        responded: 480,
        mean: Some(95.0),
        median: Some(42.0),
        p90: Some(600.0),
        histogram: RESPONSE_BUCKETS
            .iter()
            .enumerate()
            .map(|(i, (label, upper))| Bucket {
                label: (*label).into(),
                upper_seconds: upper.is_finite().then_some(*upper),
                count: [60, 90, 120, 80, 50, 40, 25, 10, 5][i],
            })
            .collect(),
        ..FirstResponse::default()
    };
    r.sentiment.by_channel = BTreeMap::from([
        ("chat".into(), 0.31),
        ("email".into(), -0.42),
        ("sms".into(), 0.05),
    ]);
    r.escalation = Escalation {
        escalation_rate: Some(0.2),
        bot_handled_rate: Some(0.5),
        ..r.escalation
    };
    r.ultimate = Ultimate {
        present: true,
        total_conversations: 300,
        deflection_rate: Some(0.7),
        escalation_rate: Some(0.25),
        automation_rate: Some(0.55),
        ..Ultimate::default()
    };
    r.ada = Ada {
        present: true,
        conversations: 200,
        engaged_rate: Some(0.8),
        escalated_rate: Some(0.15),
        ..Ada::default()
    };
    r
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Pixels within a small distance of `rgb`.
fn count_colour(pixels: &[u8], channels: usize, rgb: [u8; 3]) -> usize {
    pixels
        .chunks(channels)
        .filter(|p| p.iter().zip(rgb).take(3).all(|(a, b)| a.abs_diff(b) <= 12))
        .count()
}

#[test]
fn html_report_draws_its_charts_in_chromium() {
    let html = sample_report().to_html();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is not installed, and CI=true requires this test to run (scripts/test installs it)"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let shot = dir.path().join("report.png");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1000,1700",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let file = std::fs::File::open(&shot).expect("chromium wrote a screenshot");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    if let Some(tmp) = option_env!("CARGO_TARGET_TMPDIR") {
        let _ = std::fs::copy(&shot, Path::new(&tmp).join("report.png"));
    }
    // Every chart has its own colour: blue (volume lines, histogram bars, rates), green (volume
    // line of the second source, positive sentiment), red (negative sentiment), orange
    // (escalation bars, third volume line).
    let blue = count_colour(pixels, channels, [0x25, 0x63, 0xeb]);
    let green = count_colour(pixels, channels, [0x16, 0xa3, 0x4a]);
    let red = count_colour(pixels, channels, [0xdc, 0x26, 0x26]);
    let orange = count_colour(pixels, channels, [0xea, 0x58, 0x0c]);
    eprintln!(
        "{}x{} screenshot: blue {blue}, green {green}, red {red}, orange {orange} pixels",
        info.width, info.height
    );
    assert!(
        blue > 5_000,
        "histogram and rate bars drew ({blue} blue pixels)"
    );
    assert!(
        green > 1_000,
        "positive sentiment bar and a volume line drew ({green})"
    );
    assert!(red > 1_000, "negative sentiment bar drew ({red})");
    assert!(orange > 1_000, "escalation bars drew ({orange})");
}
