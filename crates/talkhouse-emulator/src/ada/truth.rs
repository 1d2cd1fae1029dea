//! The Ada emulator's ground truth: what a correct sync holds at the current clock.

use std::collections::BTreeMap;

use serde_json::json;

use super::api::Ada;
use super::data;
use crate::GroundTruth;

/// What a correct sync ends with at the current clock: every visible conversation (in its
/// latest visible version) and message of the last 12 months, once each.
pub fn truth(ada: &Ada) -> GroundTruth {
    let horizon = ada.horizon();
    let floor = ada.floor();
    let tl = &ada.timeline;
    let (mut conversations, mut messages, mut escalated, mut engaged, mut with_csat) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut test_conversations = 0u64;
    let mut types: BTreeMap<String, u64> = BTreeMap::new();
    let mut roles: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut i = tl.index_at(floor - data::MAX_UPDATE_SPAN);
    while tl.start_of(i) < horizon {
        let c = tl.conversation(i);
        i += 1;
        if let Some(updated) = c.updated_at(horizon).filter(|u| *u >= floor) {
            conversations += 1;
            escalated += u64::from(c.escalated);
            engaged += u64::from(c.engaged);
            test_conversations += u64::from(c.test_user);
            with_csat +=
                u64::from(c.csat_score.is_some() && c.late_update.is_some_and(|l| l <= updated));
        }
        for m in c
            .messages
            .iter()
            .filter(|m| m.at >= floor && ada.message_visible(m, horizon))
        {
            messages += 1;
            let t = m
                .data
                .get("_type")
                .and_then(|t| t.as_str())
                .unwrap_or("")
                .to_owned();
            *types.entry(t).or_default() += 1;
            let role = match m.from {
                data::Party::Chatter => "customer",
                data::Party::Bot => "bot",
                data::Party::Agent(_) => "agent",
            };
            *roles.entry(role).or_default() += 1;
        }
    }
    let mut tables = BTreeMap::new();
    tables.insert("conversations".to_owned(), conversations);
    tables.insert("messages".to_owned(), messages);
    tables.insert("model_conversations".to_owned(), conversations);
    tables.insert("model_messages".to_owned(), messages);
    GroundTruth {
        tables,
        extra: json!({
            "escalated": escalated,
            "engaged": engaged,
            "with_csat": with_csat,
            "test_conversations": test_conversations,
            "message_types": types,
            "sender_roles": roles,
            "horizon": data::fmt_query(horizon),
            "floor": data::fmt_query(floor),
        }),
    }
}
