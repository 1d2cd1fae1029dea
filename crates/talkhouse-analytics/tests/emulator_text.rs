//! Language detection and sentiment on the emulator's own message text, whose language and
//! tone the generator knows: every message must be detected as its language, English customer
//! messages must score on the side of their tone, and other languages must get no score.

#![allow(clippy::unwrap_used, missing_docs)]

#[allow(dead_code)]
#[path = "../../talkhouse-emulator/src/text.rs"]
mod text;

use rand::SeedableRng;
use rand::rngs::StdRng;
use text::{Lang, Tone};

#[test]
fn every_emulator_message_is_detected_and_scored_by_its_tone() {
    let mut rng = StdRng::seed_from_u64(42);
    let mut checked = 0;
    for _ in 0..400 {
        for lang in [Lang::En, Lang::Fi, Lang::De, Lang::Es] {
            for tone in [Tone::Positive, Tone::Negative, Tone::Neutral] {
                let messages = [
                    text::customer(&mut rng, lang, tone),
                    text::agent(&mut rng, lang),
                    text::bot(&mut rng, lang),
                ];
                for m in &messages {
                    assert_eq!(
                        talkhouse_analytics::detect_language(m),
                        Some(lang.code()),
                        "{m}"
                    );
                    let score = talkhouse_analytics::sentiment(m);
                    if lang == Lang::En {
                        assert!(score.is_some(), "{m}");
                    } else {
                        assert_eq!(score, None, "{m}");
                    }
                    checked += 1;
                }
                if lang == Lang::En {
                    let s = talkhouse_analytics::sentiment(&messages[0]).unwrap();
                    match tone {
                        Tone::Positive => assert!(s >= 0.05, "{}: {s}", messages[0]),
                        Tone::Negative => assert!(s <= -0.05, "{}: {s}", messages[0]),
                        Tone::Neutral => {}
                    }
                }
            }
        }
    }
    assert_eq!(checked, 400 * 4 * 3 * 3);
}
