//! Cheap language detection for short customer-service messages.
//!
//! Trigram detectors (such as `whatlang`) are unreliable on the three-to-ten word messages that
//! dominate chat: "Thanks so much, that was really helpful!" comes out German. This detector
//! counts function words and the everyday words of support conversations for nine Latin-script
//! languages (English, German, Spanish, Finnish, French, Italian, Portuguese, Dutch, Swedish),
//! adds a little weight for tell-tale letters (`ñ ¿ ¡` Spanish, `ß` German, `å` Swedish, `ä ö`
//! Finnish, German and Swedish), and
//!
//! * answers the best-scoring language when it leads clearly;
//! * breaks a tie with `whatlang` restricted to the tied languages;
//! * asks `whatlang` alone when no word is known and the text is long enough for trigrams (at
//!   least 40 characters), accepting only a reliable answer;
//! * hands non-Latin scripts (Cyrillic, Arabic, CJK, …) to `whatlang` directly.
//!
//! Codes are ISO 639-1 where one exists (`en`, `de`, `fi`, …), else whatlang's ISO 639-3 code.
//! Text without letters (emoji, emoticons, numbers) has no language: `None`.

use std::collections::HashMap;
use std::sync::OnceLock;

use whatlang::{Detector, Lang, Script};

/// Languages with word lists, with their whatlang counterparts.
const KNOWN: [(&str, Lang); 9] = [
    ("en", Lang::Eng),
    ("de", Lang::Deu),
    ("es", Lang::Spa),
    ("fi", Lang::Fin),
    ("fr", Lang::Fra),
    ("it", Lang::Ita),
    ("pt", Lang::Por),
    ("nl", Lang::Nld),
    ("sv", Lang::Swe),
];

const EN: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "be", "been", "am", "i",
    "i'm", "im", "i've", "i'd", "i'll", "you", "your", "you're", "we", "they", "he", "she", "it",
    "it's", "my", "me", "our", "to", "of", "in", "on", "at", "for", "with", "from", "this", "that",
    "these", "what", "where", "when", "why", "how", "who", "can", "could", "would", "should",
    "will", "do", "does", "did", "don't", "didn't", "doesn't", "not", "no", "yes", "have", "has",
    "had", "hasn't", "haven't", "there", "here", "please", "thanks", "thank", "hi", "hello", "hey",
    "so", "very", "really", "much", "just", "still", "now", "again", "all", "any", "some", "need",
    "want", "like", "help", "order", "refund", "get", "got", "let", "if", "out", "up", "about",
    "ok", "okay", "great", "good", "bad", "day", "today", "tomorrow", "else", "anything", "nobody",
    "ever", "account", "email", "password", "address", "delivery", "week", "happy", "sorry", "its",
    "way", "by", "as", "than", "then", "because", "also", "too", "new", "last",
];
const DE: &[&str] = &[
    "der",
    "die",
    "das",
    "und",
    "oder",
    "aber",
    "ist",
    "sind",
    "war",
    "bin",
    "bist",
    "nicht",
    "kein",
    "keine",
    "ich",
    "du",
    "sie",
    "er",
    "es",
    "wir",
    "ihr",
    "ihre",
    "ihnen",
    "mein",
    "meine",
    "meiner",
    "meinen",
    "mir",
    "mich",
    "ein",
    "eine",
    "einen",
    "einem",
    "einer",
    "mit",
    "für",
    "auf",
    "zu",
    "von",
    "den",
    "dem",
    "des",
    "im",
    "wie",
    "wo",
    "warum",
    "was",
    "wer",
    "wann",
    "hallo",
    "danke",
    "vielen",
    "bitte",
    "sehr",
    "noch",
    "immer",
    "schon",
    "habe",
    "hat",
    "haben",
    "wurde",
    "wird",
    "kann",
    "können",
    "möchte",
    "jetzt",
    "alles",
    "gut",
    "schön",
    "auch",
    "nur",
    "mal",
    "heute",
    "morgen",
    "doch",
    "ja",
    "nein",
    "guten",
    "tag",
    "bestellung",
    "leid",
    "uns",
    "euch",
    "dass",
    "wenn",
    "weil",
    "hier",
    "da",
    "nach",
    "bei",
    "aus",
    "über",
];
const ES: &[&str] = &[
    "el", "la", "los", "las", "de", "del", "y", "o", "que", "en", "un", "una", "por", "para",
    "con", "no", "es", "está", "estoy", "están", "muy", "mi", "mis", "me", "te", "se", "lo", "le",
    "su", "hola", "gracias", "muchas", "mucho", "qué", "por qué", "cómo", "dónde", "cuándo", "ya",
    "todo", "todavía", "ha", "he", "hice", "pero", "sí", "pedido", "favor", "buenos", "días",
    "puedo", "puede", "necesito", "quiero", "tengo", "tiene", "al", "yo", "usted", "nos", "este",
    "esta", "eso", "también", "ahora", "hoy", "mañana", "bien",
];
const FI: &[&str] = &[
    "ja",
    "on",
    "ei",
    "se",
    "että",
    "olen",
    "ole",
    "oli",
    "olet",
    "minä",
    "sinä",
    "hän",
    "me",
    "te",
    "he",
    "tämä",
    "tuo",
    "mitä",
    "missä",
    "miten",
    "miksi",
    "milloin",
    "kiitos",
    "kiitoksia",
    "hei",
    "moi",
    "paljon",
    "kaikki",
    "nyt",
    "voin",
    "voi",
    "voisin",
    "haluaisin",
    "haluan",
    "todella",
    "vielä",
    "myös",
    "kun",
    "jos",
    "mutta",
    "tai",
    "minua",
    "minun",
    "minulle",
    "minut",
    "sinua",
    "sinun",
    "sinulle",
    "sinut",
    "teidän",
    "teille",
    "meidän",
    "ovat",
    "ollut",
    "enää",
    "jo",
    "vain",
    "kyllä",
    "tänään",
    "huomenna",
    "asia",
    "asian",
    "tilaus",
    "tilaukseni",
    "hyvä",
    "hienoa",
    "kanssa",
    "ettei",
    "eikä",
    "siis",
    "sitten",
];
const FR: &[&str] = &[
    "le", "la", "les", "de", "des", "du", "et", "est", "je", "j'ai", "vous", "nous", "pas", "une",
    "un", "pour", "que", "qui", "dans", "merci", "bonjour", "avec", "ce", "c'est", "mon", "ma",
    "mes", "votre", "vos", "sur", "au", "aux", "mais", "ou", "où", "très", "beaucoup", "suis",
    "avez", "commande", "pourquoi", "comment", "il", "elle", "ne", "oui", "non",
];
const IT: &[&str] = &[
    "il",
    "lo",
    "la",
    "gli",
    "di",
    "e",
    "che",
    "non",
    "per",
    "una",
    "un",
    "sono",
    "grazie",
    "ciao",
    "buongiorno",
    "con",
    "mi",
    "mio",
    "mia",
    "del",
    "della",
    "ho",
    "ha",
    "è",
    "come",
    "dove",
    "perché",
    "molto",
    "mille",
    "ordine",
    "anche",
    "ma",
    "questo",
    "questa",
    "sì",
    "prego",
];
const PT: &[&str] = &[
    "o", "a", "os", "as", "de", "do", "da", "dos", "das", "e", "que", "não", "é", "um", "uma",
    "para", "com", "obrigado", "obrigada", "olá", "meu", "minha", "você", "eu", "está", "estou",
    "muito", "pedido", "por", "favor", "mas", "em", "no", "na", "foi", "tem", "sim",
];
const NL: &[&str] = &[
    "de",
    "het",
    "een",
    "en",
    "is",
    "niet",
    "ik",
    "je",
    "jij",
    "u",
    "van",
    "dat",
    "dank",
    "bedankt",
    "hallo",
    "met",
    "voor",
    "op",
    "mijn",
    "zijn",
    "heb",
    "heeft",
    "wat",
    "waar",
    "waarom",
    "hoe",
    "bestelling",
    "nog",
    "al",
    "maar",
    "ook",
    "wel",
    "graag",
    "alstublieft",
];
const SV: &[&str] = &[
    "och",
    "att",
    "det",
    "är",
    "inte",
    "jag",
    "du",
    "en",
    "ett",
    "på",
    "för",
    "med",
    "tack",
    "hej",
    "min",
    "mitt",
    "mina",
    "har",
    "var",
    "vad",
    "hur",
    "varför",
    "beställning",
    "också",
    "men",
    "eller",
    "kan",
    "vill",
    "mycket",
    "nu",
    "om",
    "av",
    "till",
    "som",
];

fn words(code: &str) -> &'static [&'static str] {
    match code {
        "en" => EN,
        "de" => DE,
        "es" => ES,
        "fi" => FI,
        "fr" => FR,
        "it" => IT,
        "pt" => PT,
        "nl" => NL,
        _ => SV,
    }
}

/// Every listed word with a bit per language of [`KNOWN`] that lists it, built once.
fn word_index() -> &'static HashMap<&'static str, u16> {
    static INDEX: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        for (i, (code, _)) in KNOWN.iter().enumerate() {
            for w in words(code) {
                *index.entry(*w).or_insert(0u16) |= 1 << i;
            }
        }
        index
    })
}

/// Letters that hint at a language, with their weight.
fn letter_hints(c: char) -> &'static [(&'static str, f64)] {
    match c {
        'ñ' | '¿' | '¡' => &[("es", 1.5)],
        'ß' => &[("de", 1.5)],
        'ü' => &[("de", 0.5)],
        'å' => &[("sv", 1.5)],
        'ä' | 'ö' => &[("fi", 0.5), ("de", 0.3), ("sv", 0.3)],
        'ã' | 'õ' => &[("pt", 1.5)],
        'ç' => &[("fr", 0.5), ("pt", 0.5)],
        'è' | 'ê' | 'à' | 'ù' | 'î' | 'û' | 'œ' => &[("fr", 0.5), ("it", 0.3)],
        _ => &[],
    }
}

/// Minimum length (bytes) before whatlang alone is asked about Latin text without known words.
const TRIGRAM_MIN_LEN: usize = 40;

/// The language of `text`, or `None` when it cannot be told (no letters, or no evidence).
///
/// See the module documentation for the method and its limits.
pub fn detect_language(text: &str) -> Option<&'static str> {
    let mut latin = 0usize;
    let mut other = 0usize;
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        if c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(&c) {
            latin += 1;
        } else {
            other += 1;
        }
    }
    if latin + other == 0 {
        return None;
    }
    if other > latin {
        // Not English whichever it is; whatlang's best guess names it.
        return whatlang::detect_lang(text).map(iso639_1);
    }

    let lower = text.to_lowercase();
    let mut scores = [0.0f64; KNOWN.len()];
    for word in lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’'))
        .filter(|w| !w.is_empty())
    {
        let word: std::borrow::Cow<'_, str> = if word.contains('’') {
            word.replace('’', "'").into()
        } else {
            word.into()
        };
        if let Some(bits) = word_index().get(word.as_ref()) {
            for (i, score) in scores.iter_mut().enumerate() {
                if bits & (1 << i) != 0 {
                    *score += 1.0;
                }
            }
        }
    }
    for c in lower.chars() {
        for (code, weight) in letter_hints(c) {
            if let Some(i) = KNOWN.iter().position(|(k, _)| k == code) {
                scores[i] += weight;
            }
        }
    }

    let best = scores.iter().copied().fold(0.0f64, f64::max);
    if best < 1.0 {
        if text.len() < TRIGRAM_MIN_LEN {
            return None;
        }
        let detector = Detector::with_allowlist(KNOWN.iter().map(|(_, l)| *l).collect());
        return detector
            .detect(text)
            .filter(|i| i.is_reliable() && i.script() == Script::Latin)
            .map(|i| iso639_1(i.lang()));
    }
    let leaders: Vec<usize> = (0..KNOWN.len())
        .filter(|&i| (scores[i] - best).abs() < 0.25)
        .collect();
    if let [only] = leaders.as_slice() {
        return Some(KNOWN[*only].0);
    }
    // A tie between languages that share the words: let trigrams decide among them only.
    let detector = Detector::with_allowlist(leaders.iter().map(|&i| KNOWN[i].1).collect());
    detector.detect_lang(text).map(iso639_1)
}

/// ISO 639-1 for the common languages, whatlang's ISO 639-3 code otherwise.
fn iso639_1(lang: Lang) -> &'static str {
    if let Some((code, _)) = KNOWN.iter().find(|(_, l)| *l == lang) {
        return code;
    }
    match lang {
        Lang::Rus => "ru",
        Lang::Ukr => "uk",
        Lang::Bul => "bg",
        Lang::Pol => "pl",
        Lang::Ces => "cs",
        Lang::Dan => "da",
        Lang::Nob => "nb",
        Lang::Est => "et",
        Lang::Lav => "lv",
        Lang::Lit => "lt",
        Lang::Hun => "hu",
        Lang::Tur => "tr",
        Lang::Ell => "el",
        Lang::Ara => "ar",
        Lang::Heb => "he",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Kor => "ko",
        Lang::Cmn => "zh",
        Lang::Tha => "th",
        Lang::Vie => "vi",
        other => other.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_english_is_english() {
        for t in [
            "Thanks so much, that was really helpful!",
            "How do I reset my password?",
            "What are your opening hours on Saturday?",
            "Did that answer your question?",
            "ok thanks",
            "not good",
        ] {
            assert_eq!(detect_language(t), Some("en"), "{t}");
        }
    }

    #[test]
    fn other_languages() {
        assert_eq!(detect_language("Missä tilaukseni on?"), Some("fi"));
        assert_eq!(detect_language("Wo ist meine Bestellung?"), Some("de"));
        assert_eq!(detect_language("¿Dónde está mi pedido?"), Some("es"));
        assert_eq!(detect_language("Merci beaucoup, c'est parfait"), Some("fr"));
        // Cyrillic is handed to whatlang (Russian and Bulgarian are close on short text): not English.
        assert!(detect_language("Где мой заказ? Я жду уже две недели.").is_some_and(|l| l != "en"));
        assert_eq!(
            detect_language("これは素晴らしいサービスです、ありがとう"),
            Some("ja")
        );
    }

    #[test]
    fn no_letters_no_language() {
        assert_eq!(detect_language(":) 👍"), None);
        assert_eq!(detect_language("48213"), None);
        assert_eq!(detect_language(""), None);
    }
}
