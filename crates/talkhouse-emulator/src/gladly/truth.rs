//! Ground truth: the rows a connector must hold at a given time (see the module doc).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::data::{self, CustomerState, World, kind};
use super::reports;
use crate::GroundTruth;

/// Ground truth at `now` (see the module doc).
pub fn truth(w: &World, now: DateTime<Utc>) -> GroundTruth {
    let horizon = w.t0.min(now) - Duration::days(14);
    let today = now.timestamp().div_euclid(86_400);
    let first = horizon.timestamp().div_euclid(86_400) - 2;
    let jobs: Vec<data::Job> = (first..=today)
        .map(|d| w.job(d))
        .filter(|j| {
            j.updated_at >= horizon
                && j.updated_at <= now
                && !j.failed
                && j.day_start >= w.origin - Duration::days(1)
        })
        .collect();
    // item id → (conversation key or None, customer index, is message)
    let mut items: BTreeMap<String, (Option<u64>, u64, bool)> = BTreeMap::new();
    let mut customers: HashSet<u64> = HashSet::new();
    // Conversations whose items some job holds.
    let mut exported: HashSet<u64> = HashSet::new();
    let mut quarantined = 0u64;
    for j in &jobs {
        if j.quirk == data::Quirk::Malformed {
            quarantined += 1;
        }
        let as_of = j.updated_at;
        let (from, to) = World::job_window(j);
        for key in w.job_conversations(j) {
            let Some(c) = w.conversation(key) else {
                continue;
            };
            if !w.conversation_exists(&c, as_of)
                || w.customer_deleted_at(c.customer)
                    .is_some_and(|t| as_of >= t)
            {
                continue;
            }
            let mut any = false;
            for (id, owner, i) in w.items_at(&c, as_of) {
                if i.at < from || i.at >= to {
                    continue;
                }
                any = true;
                let owner_spec = if owner == key {
                    c.clone()
                } else {
                    w.conversation(owner).unwrap_or_else(|| c.clone())
                };
                items.insert(
                    id,
                    (
                        Some(owner),
                        w.customer_at(&owner_spec, as_of),
                        i.ct.is_message(),
                    ),
                );
            }
            if any {
                customers.insert(w.customer_at(&c, as_of));
                exported.insert(key);
            }
        }
        if let Some((id, cust, _)) = w.job_activity(j).and_then(|d| w.activity(d)) {
            items.insert(id, (None, cust, false));
            customers.insert(cust);
        }
    }
    // Follow merges: the survivor and its conversations and items, re-read now.
    let mut merges = 0u64;
    let mut extra_customers: HashSet<u64> = HashSet::new();
    let mut conversations: HashSet<u64> = items.values().filter_map(|(c, _, _)| *c).collect();
    for c in customers.iter().copied().collect::<Vec<_>>() {
        let mut cur = c;
        let mut first_hop = true;
        while let CustomerState::Moved(to) = w.customer_state(cur, now) {
            if first_hop {
                merges += 1;
                first_hop = false;
            }
            extra_customers.insert(to);
            for conv in w.conversations_of(to, now) {
                conversations.insert(conv.key);
                for (id, owner, i) in w.items_at(&conv, now).into_iter().take(1000) {
                    items.insert(id, (Some(owner), to, i.ct.is_message()));
                }
            }
            cur = to;
        }
    }
    customers.extend(extra_customers);
    let live_customers = customers
        .iter()
        .filter(|c| w.customer_state(**c, now) == CustomerState::Live)
        .count();
    let live_conv = |k: u64| {
        w.conversation(k)
            .is_some_and(|c| w.conversation_exists(&c, now))
    };
    let live_items: Vec<&(Option<u64>, u64, bool)> = items
        .values()
        .filter(|(conv, cust, _)| {
            conv.is_none_or(live_conv) && w.customer_state(*cust, now) != CustomerState::Missing
        })
        .collect();
    let live_conversations = conversations.iter().filter(|k| live_conv(**k)).count() as u64;
    let mut tables = BTreeMap::new();
    tables.insert("conversation_items".to_owned(), live_items.len() as u64);
    tables.insert("customers".to_owned(), live_customers as u64);
    tables.insert("customer_merges".to_owned(), merges);
    // The OPEN→OPEN loser, once a job held its items and the merge happened: it answers 404,
    // its customer 301, and the surviving customer's open conversation holds its items.
    let (loser, survivor, merged_at) = w.open_merge();
    let conversation_merges = u64::from(exported.contains(&loser) && now >= merged_at);
    tables.insert("conversation_merges".to_owned(), conversation_merges);
    tables.insert("model_id_merges".to_owned(), merges + conversation_merges);
    tables.insert("conversations".to_owned(), live_conversations);
    tables.insert("agents".to_owned(), u64::from(w.agents));
    tables.insert("topics".to_owned(), u64::from(w.topics));
    tables.insert("inboxes".to_owned(), u64::from(w.inboxes));
    tables.insert("teams".to_owned(), u64::from(w.teams));
    let (contacts, work_sessions, conversation_report, malformed_report_rows) =
        reports::truth_counts(w, now);
    tables.insert("contacts".to_owned(), contacts);
    tables.insert("work_sessions".to_owned(), work_sessions);
    tables.insert("conversation_report".to_owned(), conversation_report);
    // A contact is a session of the model, a work session with an agent agent work.
    let work = reports::work_truth(w, now);
    tables.insert("model_sessions".to_owned(), contacts);
    tables.insert(
        "model_work".to_owned(),
        work["work_sessions_by_agent"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum()),
    );
    tables.insert("model_teams".to_owned(), u64::from(w.teams));
    tables.insert("model_conversations".to_owned(), live_conversations);
    tables.insert(
        "model_messages".to_owned(),
        live_items
            .iter()
            .filter(|(conv, _, msg)| conv.is_some() && *msg)
            .count() as u64,
    );
    let s = |n: u64| data::SPECIAL + n;
    GroundTruth {
        tables,
        extra: json!({
            "quarantined": quarantined + malformed_report_rows,
            "jobs": jobs.iter().map(|j| w.id(kind::JOB, u64::try_from(j.day).unwrap_or(0), 0)).collect::<Vec<_>>(),
            "merged_customers": {
                w.customer_id(s(data::special::MERGE_SRC)): w.customer_id(s(data::special::MERGE_DST)),
                w.customer_id(s(data::special::OPEN_SRC)): w.customer_id(s(data::special::OPEN_DST)),
            },
            "deleted_customers": [w.customer_id(s(data::special::GDPR))],
            "deleted_conversations": [w.id(kind::CONVERSATION, loser, 0), w.id(kind::CONVERSATION, s(data::special::GDPR), 0)],
            "surviving_conversation": w.id(kind::CONVERSATION, survivor, 0),
            "merged_conversations": {
                w.id(kind::CONVERSATION, loser, 0): w.id(kind::CONVERSATION, survivor, 0),
            },
            "inbox_move_conversation": w.id(kind::CONVERSATION, s(data::special::INBOX_MOVE), 0),
            "inbox_move_at": World::ts(w.inbox_move_at(), 3),
            "long_conversation": w.id(kind::CONVERSATION, s(data::special::LONG), 0),
            "all_types_conversation": w.id(kind::CONVERSATION, s(data::special::ALL_TYPES), 0),
            "work": work,
        }),
    }
}
