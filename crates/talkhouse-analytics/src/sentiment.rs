//! Message sentiment in [-1, 1]: VADER for English, nothing for other languages.
//!
//! # Method
//!
//! Scores are VADER's *compound* score (Hutto & Gilbert, ICWSM-14), computed by the
//! [`vader_parity`] crate, which reimplements vaderSentiment 3.3.2 over that package's own
//! lexicons (about 7,500 words and emoticons, 3,500 emoji) and is tested for exact output parity
//! with it. The rules it applies: lexicon valences; boosters and dampeners ("very", "kind of");
//! negation within three words ("not good", "wasn't very good"); ALL-CAPS emphasis in mixed-case
//! text; the contrastive "but" (words before it count half, after it one and a half); `!` and `?`
//! emphasis; special idioms; emoticons (`:)`, `:(`) and emoji (translated to their names first).
//! The compound is normalised into [-1, 1]; by VADER's convention ≥ 0.05 is positive and ≤ -0.05
//! negative. The lexicon ships inside the crate: nothing is downloaded at run time.
//!
//! # Language
//!
//! VADER's lexicon is English. Every text first goes through [`detect_language`]: English is
//! scored, any other language gets `None` rather than a guess (a Finnish "kiitos" would
//! otherwise score as neutral, which is wrong, not merely unknown). Text without letters (emoji
//! and emoticons only) is scored, since those carry their own sentiment. Text with letters whose
//! language cannot be told is scored only when VADER's lexicon knows some of its words ("awful,
//! terrible!"), else it gets `None` (a name, a tracking number with a word of another language). Where the vendor states the
//! language ([`score_message`] with a hint), the hint decides instead of detection.
//!
//! # Limits
//!
//! * Sarcasm, domain words ("charged twice" is neutral to VADER) and multi-sentence nuance are
//!   beyond a lexicon; long texts saturate towards ±1 as valences add up.
//! * Only the first [`MAX_SCORED_BYTES`] bytes of a message are scored; e-mail bodies with long
//!   quoted threads are cut (at a character boundary).
//! * HTML tags are stripped crudely (`<…>` removed) before scoring; entities are left as they are.
//! * Language detection is tuned for short support messages in the nine languages of
//!   [`crate::lang`]; mixed-language text is classified by its majority.

use std::borrow::Cow;
use std::sync::OnceLock;

use talkhouse_model::{Cell, Row, model};
use vader_parity::SentimentIntensityAnalyzer;

pub use crate::lang::detect_language;

/// Longest prefix of a message that is scored, in bytes.
pub const MAX_SCORED_BYTES: usize = 16 * 1024;

fn analyzer() -> &'static SentimentIntensityAnalyzer {
    static ANALYZER: OnceLock<SentimentIntensityAnalyzer> = OnceLock::new();
    ANALYZER.get_or_init(SentimentIntensityAnalyzer::new)
}

/// Sentiment of `text` in [-1, 1], or `None` for empty text and languages other than English.
///
/// ```
/// use talkhouse_analytics::sentiment;
/// assert!(sentiment("Thanks, that was really helpful!").unwrap() > 0.5);
/// assert!(sentiment("This is not good at all.").unwrap() < 0.0);
/// assert_eq!(sentiment("Kiitos paljon, tämä auttoi!"), None);
/// ```
pub fn sentiment(text: &str) -> Option<f64> {
    score_message(text, None).0
}

/// Scores a message, trusting the vendor's language `hint` (ISO code such as `en`, `en-US`,
/// `fi`) where given; otherwise detects the language. Returns the score and the language used
/// (detected or hinted, lower-case primary subtag).
pub fn score_message(text: &str, hint: Option<&str>) -> (Option<f64>, Option<String>) {
    let text = prepare(text);
    let text = text.trim();
    if text.is_empty() {
        return (None, hint.map(primary_subtag));
    }
    let language = match hint.map(primary_subtag).filter(|h| !h.is_empty()) {
        Some(h) => Some(h),
        None => detect_language(text).map(str::to_owned),
    };
    let score = match language.as_deref() {
        Some("en") => Some(analyzer().polarity_scores(text)),
        Some(_) => None,
        // Emoji and emoticons only: scored. Letters of no known language: scored only when
        // VADER's English lexicon knows some of the words ("awful terrible!").
        None => {
            let scores = analyzer().polarity_scores(text);
            let letters = text.chars().any(char::is_alphabetic);
            (!letters || scores.pos + scores.neg > 0.0).then_some(scores)
        }
    };
    (score.map(|s| s.compound.clamp(-1.0, 1.0)), language)
}

/// Fills `sentiment` (and `language`, when unset) on a `talkhouse.model_messages` row that has a
/// `body`; leaves every other row alone. This is what the sync engine runs on each row.
pub fn enrich_row(row: &mut Row) {
    if row.table != model::MESSAGES {
        return;
    }
    let Some(body) = row.get("body").and_then(Cell::as_str) else {
        return;
    };
    let hint = row
        .get("language")
        .and_then(Cell::as_str)
        .map(str::to_owned);
    let (score, language) = score_message(body, hint.as_deref());
    if let Some(score) = score {
        row.put("sentiment", score);
    }
    if hint.is_none()
        && let Some(language) = language
    {
        row.put("language", language);
    }
}

fn primary_subtag(tag: &str) -> String {
    tag.trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Cuts overly long text and strips HTML tags.
fn prepare(text: &str) -> Cow<'_, str> {
    let mut text = Cow::Borrowed(text);
    if text.len() > MAX_SCORED_BYTES {
        let mut end = MAX_SCORED_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text = Cow::Owned(text[..end].to_owned());
    }
    if text.contains('<') && text.contains('>') {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_ref();
        while let Some(start) = rest.find('<') {
            let after = &rest[start..];
            // Only tag-like runs: `<` followed by a letter, `/` or `!`, closed within 500 bytes.
            let tag_like =
                after[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!');
            match after.find('>').filter(|&end| tag_like && end < 500) {
                Some(end) => {
                    out.push_str(&rest[..start]);
                    out.push(' ');
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[..=start]);
                    rest = &after[1..];
                }
            }
        }
        out.push_str(rest);
        text = Cow::Owned(out);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> f64 {
        sentiment(text).unwrap_or_else(|| panic!("no score for {text:?}"))
    }

    #[test]
    fn polarity() {
        assert!(s("The service was good.") > 0.05);
        assert!(s("The service was terrible.") < -0.05);
        assert!(s("Where is my order?").abs() < 0.05);
    }

    #[test]
    fn negation_flips() {
        assert!(s("The service was good.") > 0.0);
        assert!(s("The service was not good.") < 0.0);
        assert!(s("The service wasn't bad.") > 0.0);
        assert!(s("I'm not happy at all, the package was damaged.") < -0.3);
    }

    #[test]
    fn boosters_and_dampeners() {
        let plain = s("The service was good.");
        assert!(s("The service was very good.") > plain);
        assert!(s("The service was extremely good.") > plain);
        assert!(s("The service was kind of good.") < plain);
        assert!(s("The service was very bad.") < s("The service was bad."));
    }

    #[test]
    fn caps_emphasis() {
        assert!(s("The service was GOOD, thanks") > s("The service was good, thanks"));
        assert!(s("The service was TERRIBLE today") < s("The service was terrible today"));
    }

    #[test]
    fn punctuation_emphasis() {
        assert!(s("The service was good!!!") > s("The service was good."));
        assert!(s("The service was awful!!") < s("The service was awful."));
    }

    #[test]
    fn but_shifts_weight_to_the_second_clause() {
        // Positive then negative: "but" makes the negative half dominate.
        assert!(s("The agent was nice but the refund was terrible.") < 0.0);
        assert!(s("The wait was bad but the agent was great.") > 0.0);
    }

    #[test]
    fn emoticons_and_emoji() {
        assert!(s("thanks :)") > s("thanks"));
        assert!(s("my order :(") < 0.0);
        assert!(s("😀") > 0.0, "emoji only is scored");
        assert!(s("😢") < 0.0);
        assert!(s("😠") < 0.0);
        assert!(s("Delivery arrived 😍") > 0.0);
    }

    #[test]
    fn range() {
        for t in [
            "good good good great awesome love love!!!",
            "awful terrible horrible worst hate!!!",
        ] {
            let v = s(t);
            assert!((-1.0..=1.0).contains(&v), "{t}: {v}");
        }
    }

    #[test]
    fn other_languages_are_null() {
        for t in [
            "Kiitos paljon, tämä auttoi!",
            "Ich bin sehr enttäuscht vom Service.",
            "Estoy muy decepcionado con el servicio.",
            "Merci beaucoup, c'est parfait",
        ] {
            assert_eq!(sentiment(t), None, "{t}");
        }
        assert_eq!(sentiment(""), None);
        assert_eq!(sentiment("   "), None);
    }

    #[test]
    fn hint_decides() {
        assert_eq!(score_message("Super, danke!", Some("de-DE")).0, None);
        let (score, lang) = score_message("Super, danke!", Some("en"));
        assert!(score.is_some());
        assert_eq!(lang.as_deref(), Some("en"));
    }

    #[test]
    fn html_is_stripped() {
        assert!(s("<p>Thanks, <b>great</b> help!</p>") > 0.5);
        assert!((s("if a < b and c > d") - s("if a < b and c > d")).abs() < f64::EPSILON);
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let text = "ä".repeat(MAX_SCORED_BYTES) + " great";
        let _ = sentiment(&text);
    }

    #[test]
    fn enriches_model_rows_only() {
        let mut row =
            Row::new(model::MESSAGES).set("body", "Thank you, everything works great now.");
        enrich_row(&mut row);
        assert!(matches!(row.get("sentiment"), Some(Cell::Float(v)) if *v > 0.5));
        assert_eq!(row.get("language"), Some(&Cell::Text("en".into())));

        let mut fi = Row::new(model::MESSAGES).set("body", "Olen todella pettynyt palveluun.");
        enrich_row(&mut fi);
        assert_eq!(fi.get("sentiment"), None);
        assert_eq!(fi.get("language"), Some(&Cell::Text("fi".into())));

        let mut other = Row::new(model::CONVERSATIONS).set("body", "great");
        enrich_row(&mut other);
        assert_eq!(other.get("sentiment"), None);
    }
}

/// The sync engine's enricher: [`enrich_row`] on every row.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sentiment;

impl talkhouse_sync::Enricher for Sentiment {
    fn enrich(&self, row: &mut Row) {
        enrich_row(row);
    }
}
