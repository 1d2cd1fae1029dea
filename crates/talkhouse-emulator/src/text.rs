//! Deterministic message text: English, Finnish, German and Spanish, in three tones.
//!
//! Every vendor draws its message bodies here, so analytics and sentiment see realistic text:
//! customers who are happy, angry or matter-of-fact, agents and bots who answer in kind.

use rand::Rng;
use rand::seq::IndexedRandom;

/// A message language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// English.
    En,
    /// Finnish.
    Fi,
    /// German.
    De,
    /// Spanish.
    Es,
}

impl Lang {
    /// ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fi => "fi",
            Lang::De => "de",
            Lang::Es => "es",
        }
    }
}

/// The tone of a customer's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tone {
    /// Pleased, grateful.
    Positive,
    /// Angry, disappointed.
    Negative,
    /// Matter-of-fact.
    Neutral,
}

/// Picks a language: 70 % English, 10 % each of Finnish, German and Spanish.
pub fn pick_lang<R: Rng + ?Sized>(rng: &mut R) -> Lang {
    match rng.random_range(0..10) {
        0 => Lang::Fi,
        1 => Lang::De,
        2 => Lang::Es,
        _ => Lang::En,
    }
}

/// Picks a tone: 30 % positive, 30 % negative, 40 % neutral.
pub fn pick_tone<R: Rng + ?Sized>(rng: &mut R) -> Tone {
    match rng.random_range(0..10) {
        0..=2 => Tone::Positive,
        3..=5 => Tone::Negative,
        _ => Tone::Neutral,
    }
}

const CUSTOMER_EN_POS: &[&str] = &[
    "Thanks so much, that was really helpful!",
    "Great service, I love the new app :)",
    "Perfect, the refund arrived. You are awesome!",
    "Thank you, everything works great now.",
    "I'm very happy with my order, thanks!",
    "Wonderful, that solved it. Have a nice day!",
];
const CUSTOMER_EN_NEG: &[&str] = &[
    "This is terrible, my order still hasn't arrived!",
    "I am very disappointed with the service.",
    "Why was I charged twice? This is unacceptable.",
    "The app keeps crashing and nobody helps me. Awful!",
    "I'm not happy at all, the package was damaged.",
    "Worst experience ever, I want a refund now!!",
];
const CUSTOMER_EN_NEU: &[&str] = &[
    "Hi, I need to change my delivery address.",
    "Where is my order? The number is 48213.",
    "Can I return an item I bought last week?",
    "How do I reset my password?",
    "What are your opening hours on Saturday?",
    "I'd like to update the email on my account.",
];
const CUSTOMER_FI_POS: &[&str] = &[
    "Kiitos paljon, tämä auttoi!",
    "Loistavaa palvelua, kiitos!",
    "Hienoa, kaikki toimii nyt.",
];
const CUSTOMER_FI_NEG: &[&str] = &[
    "Tilaukseni ei ole vieläkään tullut, tämä on surkeaa.",
    "Olen todella pettynyt palveluun.",
    "Minua veloitettiin kahdesti, ei hyväksyttävää!",
];
const CUSTOMER_FI_NEU: &[&str] = &[
    "Hei, haluaisin vaihtaa toimitusosoitteen.",
    "Missä tilaukseni on?",
    "Miten voin palauttaa tuotteen?",
];
const CUSTOMER_DE_POS: &[&str] = &[
    "Vielen Dank, das hat mir sehr geholfen!",
    "Toller Service, danke schön!",
    "Super, jetzt funktioniert alles.",
];
const CUSTOMER_DE_NEG: &[&str] = &[
    "Meine Bestellung ist immer noch nicht da, das ist schrecklich.",
    "Ich bin sehr enttäuscht vom Service.",
    "Warum wurde ich doppelt belastet? Unmöglich!",
];
const CUSTOMER_DE_NEU: &[&str] = &[
    "Hallo, ich möchte meine Lieferadresse ändern.",
    "Wo ist meine Bestellung?",
    "Wie kann ich einen Artikel zurückgeben?",
];
const CUSTOMER_ES_POS: &[&str] = &[
    "¡Muchas gracias, me ayudó mucho!",
    "Excelente servicio, gracias.",
    "Perfecto, ya funciona todo.",
];
const CUSTOMER_ES_NEG: &[&str] = &[
    "Mi pedido todavía no ha llegado, es terrible.",
    "Estoy muy decepcionado con el servicio.",
    "¿Por qué me cobraron dos veces? ¡Inaceptable!",
];
const CUSTOMER_ES_NEU: &[&str] = &[
    "Hola, necesito cambiar mi dirección de envío.",
    "¿Dónde está mi pedido?",
    "¿Cómo puedo devolver un artículo?",
];

const AGENT_EN: &[&str] = &[
    "Hi, thanks for reaching out! Let me check that for you.",
    "I'm sorry for the trouble. I have issued a refund.",
    "I've updated your address. Anything else I can help with?",
    "Your order is on its way and should arrive tomorrow.",
    "I understand, I've escalated this to our billing team.",
    "Glad I could help. Have a great day!",
];
const AGENT_FI: &[&str] = &[
    "Hei, kiitos yhteydenotosta! Tarkistan asian.",
    "Pahoittelen vaivaa, palautus on tehty.",
];
const AGENT_DE: &[&str] = &[
    "Hallo, danke für Ihre Nachricht! Ich prüfe das.",
    "Es tut mir leid, ich habe eine Erstattung veranlasst.",
];
const AGENT_ES: &[&str] = &[
    "Hola, gracias por escribirnos. Lo reviso enseguida.",
    "Lamento las molestias, ya hice el reembolso.",
];
const BOT_EN: &[&str] = &[
    "Hi! I'm the virtual assistant. How can I help you today?",
    "You can track your order from the Orders page.",
    "I can help with returns. Do you have your order number?",
    "Let me connect you with a human agent.",
    "Did that answer your question?",
];
const BOT_FI: &[&str] = &[
    "Hei! Olen virtuaaliavustaja. Miten voin auttaa?",
    "Yhdistän sinut asiakaspalvelijalle.",
];
const BOT_DE: &[&str] = &[
    "Hallo! Ich bin der virtuelle Assistent. Wie kann ich helfen?",
    "Ich verbinde Sie mit einem Mitarbeiter.",
];
const BOT_ES: &[&str] = &[
    "¡Hola! Soy el asistente virtual. ¿En qué puedo ayudarte?",
    "Te conecto con un agente.",
];

fn pick<'a, R: Rng + ?Sized>(rng: &mut R, list: &'a [&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("")
}

/// A customer's message in `lang` with `tone`.
pub fn customer<R: Rng + ?Sized>(rng: &mut R, lang: Lang, tone: Tone) -> String {
    let list = match (lang, tone) {
        (Lang::En, Tone::Positive) => CUSTOMER_EN_POS,
        (Lang::En, Tone::Negative) => CUSTOMER_EN_NEG,
        (Lang::En, Tone::Neutral) => CUSTOMER_EN_NEU,
        (Lang::Fi, Tone::Positive) => CUSTOMER_FI_POS,
        (Lang::Fi, Tone::Negative) => CUSTOMER_FI_NEG,
        (Lang::Fi, Tone::Neutral) => CUSTOMER_FI_NEU,
        (Lang::De, Tone::Positive) => CUSTOMER_DE_POS,
        (Lang::De, Tone::Negative) => CUSTOMER_DE_NEG,
        (Lang::De, Tone::Neutral) => CUSTOMER_DE_NEU,
        (Lang::Es, Tone::Positive) => CUSTOMER_ES_POS,
        (Lang::Es, Tone::Negative) => CUSTOMER_ES_NEG,
        (Lang::Es, Tone::Neutral) => CUSTOMER_ES_NEU,
    };
    pick(rng, list).to_owned()
}

/// An agent's reply in `lang`.
pub fn agent<R: Rng + ?Sized>(rng: &mut R, lang: Lang) -> String {
    let list = match lang {
        Lang::En => AGENT_EN,
        Lang::Fi => AGENT_FI,
        Lang::De => AGENT_DE,
        Lang::Es => AGENT_ES,
    };
    pick(rng, list).to_owned()
}

/// A bot's reply in `lang`.
pub fn bot<R: Rng + ?Sized>(rng: &mut R, lang: Lang) -> String {
    let list = match lang {
        Lang::En => BOT_EN,
        Lang::Fi => BOT_FI,
        Lang::De => BOT_DE,
        Lang::Es => BOT_ES,
    };
    pick(rng, list).to_owned()
}

const FIRST: &[&str] = &[
    "Aino", "Mikko", "Laura", "James", "Maria", "Lukas", "Sofia", "Olivia", "Noah", "Emma", "Juan",
    "Lena", "Omar", "Yuki", "Priya", "Ava", "Elias", "Carmen", "Felix", "Helmi",
];
const LAST: &[&str] = &[
    "Virtanen",
    "Smith",
    "Müller",
    "García",
    "Korhonen",
    "Johnson",
    "Schmidt",
    "López",
    "Nieminen",
    "Brown",
    "Fischer",
    "Martínez",
    "Lee",
    "Khan",
    "Rossi",
];

/// A person's full name.
pub fn person_name<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("{} {}", pick(rng, FIRST), pick(rng, LAST))
}

/// An e-mail address derived from a name and a number (unique when `n` is).
pub fn email(name: &str, n: u64) -> String {
    let local: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect();
    format!("{local}.{n}@example.com")
}

/// A phone number in E.164 form, unique for distinct `n` below 10^7.
pub fn phone(n: u64) -> String {
    format!("+1555{:07}", n % 10_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn same_seed_same_text() {
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        for _ in 0..20 {
            let (la, ta) = (pick_lang(&mut a), pick_tone(&mut a));
            let (lb, tb) = (pick_lang(&mut b), pick_tone(&mut b));
            assert_eq!(customer(&mut a, la, ta), customer(&mut b, lb, tb));
        }
    }
}
