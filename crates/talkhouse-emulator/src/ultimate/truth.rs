//! Ground truth: what a correct sync of the served day files ends with, and the vendor's
//! metrics (the "Popular Metrics" Ultimate documents) computed from the generated conversations.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::data::Conv;

/// Intent names the "first meaningful intent" metric leaves out by default.
pub const EXCLUDED_INTENTS: [&str; 2] = ["Greeting", "Talk to a human/agent"];

fn rate(num: u64, den: u64) -> Value {
    if den == 0 {
        Value::Null
    } else {
        #[allow(clippy::cast_precision_loss)]
        Value::from(num as f64 / den as f64)
    }
}

/// The seed's eight figures over a set of conversations (final versions, one per id).
pub fn rates<'a>(convs: impl IntoIterator<Item = &'a Conv>) -> Value {
    let (
        mut total,
        mut handled,
        mut deflected,
        mut escalated,
        mut failed,
        mut informed,
        mut automated,
    ) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut visitor, mut not_understood) = (0i64, 0i64);
    for c in convs {
        total += 1;
        match c.status {
            // SQL semantics: a NULL status is neither deflected nor escalated.
            None => {}
            Some(s) => {
                let esc = matches!(s, "email" | "agent" | "customEscalation");
                escalated += u64::from(esc);
                deflected += u64::from(!esc);
                handled += u64::from(s == "botHandled");
                failed += u64::from(s == "failedEscalation");
            }
        }
        informed += u64::from(c.resolution == "informed");
        automated += u64::from(matches!(c.resolution, "informed" | "resolved"));
        visitor += c.visitor_messages;
        not_understood += c.not_understood;
    }
    #[allow(clippy::cast_precision_loss)]
    let understood = if visitor == 0 {
        Value::Null
    } else {
        Value::from((visitor - not_understood) as f64 / visitor as f64)
    };
    json!({
        "total_conversations": total,
        "bot_handled_conversations": handled,
        "bot_handled_rate": rate(handled, total),
        "deflection_rate": rate(deflected, total),
        "escalation_rate": rate(escalated, total),
        "failed_escalation_rate": rate(failed, total),
        "informed_rate": rate(informed, total),
        "automation_rate": rate(automated, total),
        "messages_understood_rate": understood,
    })
}

/// First meaningful intent: `not_meaningful` false, name not excluded, earliest timestamp.
pub fn first_meaningful(c: &Conv) -> Option<&'static str> {
    c.intents
        .iter()
        .enumerate()
        .filter(|(_, i)| !i.not_meaningful && !EXCLUDED_INTENTS.contains(&i.name))
        .min_by_key(|(pos, i)| (i.ts, *pos))
        .map(|(_, i)| i.name)
}

/// All of Ultimate's documented metrics over final conversation versions.
pub fn metrics(convs: &[&Conv]) -> Value {
    let mut by_day: BTreeMap<String, Vec<&Conv>> = BTreeMap::new();
    let mut by_intent: BTreeMap<&str, Vec<&Conv>> = BTreeMap::new();
    let mut first: BTreeMap<&str, u64> = BTreeMap::new();
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for c in convs {
        by_day
            .entry(c.start.date_naive().to_string())
            .or_default()
            .push(c);
        if let Some(i) = first_meaningful(c) {
            by_intent.entry(i).or_default().push(c);
        }
        if let Some(i) = c.intents.first() {
            *first.entry(i.name).or_default() += 1;
        }
        if let Some(i) = c.intents.last() {
            *last.entry(i.name).or_default() += 1;
        }
    }
    let intents: serde_json::Map<String, Value> = by_intent
        .iter()
        .map(|(name, cs)| {
            let total = cs.len() as u64;
            let handled = cs.iter().filter(|c| c.status == Some("botHandled")).count() as u64;
            (
                (*name).to_owned(),
                json!({"total_conversations": total, "bot_handled_rate": rate(handled, total)}),
            )
        })
        .collect();
    json!({
        "overall": rates(convs.iter().copied()),
        "overall_parity": rates(convs.iter().copied().filter(|c| c.bot_messages > 0)),
        "by_day": by_day.iter().map(|(d, cs)| (d.clone(), rates(cs.iter().copied()))).collect::<serde_json::Map<_, _>>(),
        "by_first_meaningful_intent": intents,
        "first_intent_counts": first,
        "last_intent_counts": last,
    })
}
