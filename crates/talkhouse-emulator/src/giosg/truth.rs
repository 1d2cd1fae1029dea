//! The Giosg emulator's ground truth: what a correct sync holds at the current clock, with the
//! digest of every message text a connector with the right private key stores.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::data::{self, ChatView, Who};
use super::{STATUS_TYPES, api, crypto};
use crate::GroundTruth;

/// What a connector with the right private key must store for one message's `message`, or
/// `None` when it stays null. `Err(())` when the message must be quarantined (bad tag, key cache
/// expired so the connector has to decrypt).
fn expected_text(
    v: &ChatView<'_>,
    m: &data::MsgPlan,
    join_ciphertext: bool,
) -> Result<Option<String>, ()> {
    let status = matches!(m.kind, "join" | "leave");
    match &v.plan.key {
        None => Ok(if status || v.purged_at.is_some() {
            None
        } else {
            m.text.clone()
        }),
        Some(_) if status => Ok(join_ciphertext.then(|| {
            if m.kind == "leave" {
                "The Line is Closed!"
            } else {
                "The Line is Open!"
            }
            .to_owned()
        })),
        Some(_) if v.key_cached => Ok(m.text.clone()),
        Some(_) if m.corrupt => Err(()),
        Some(_) => Ok(m.text.clone()),
    }
}

/// What a correct sync holds at the current clock.
pub(super) fn truth(g: &api::Giosg) -> GroundTruth {
    let now = g.clock.now();
    let join_ct = g.switches.join_ciphertext;
    #[derive(Default)]
    struct Tally {
        chats: u64,
        messages: u64,
        memberships: u64,
        tags: u64,
        model_messages: u64,
        variables: BTreeSet<(String, &'static str)>,
    }
    let mut all = Tally::default();
    let mut with_msgs = Tally::default();
    let mut lines: Vec<String> = Vec::new();
    let (mut encrypted_chats, mut sealed_without_text, mut quarantined, mut open, mut purged) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut undecrypted_without_key = 0u64;
    let mut ended_chat_ids: Vec<(String, String)> = Vec::new();
    for v in g.org.visible(now) {
        let both = v.count(Some(Who::User(0))) > 0 && v.count(Some(Who::Visitor)) > 0;
        let add = |t: &mut Tally, lines: Option<&mut Vec<String>>, q: &mut u64| {
            t.chats += 1;
            t.memberships += v.members.len() as u64;
            t.tags += v.tags.len() as u64;
            if let Some(vid) = &v.plan.visitor_id {
                for var in &v.variables {
                    t.variables.insert((vid.clone(), var.key));
                }
            }
            let mut lines = lines;
            for m in &v.messages {
                match expected_text(&v, m, join_ct) {
                    Err(()) => *q += 1,
                    Ok(text) => {
                        t.messages += 1;
                        if !STATUS_TYPES.contains(&m.kind) {
                            t.model_messages += 1;
                        }
                        if let (Some(text), Some(l)) = (text, lines.as_deref_mut()) {
                            l.push(format!("{}\t{text}", m.id));
                        }
                    }
                }
            }
        };
        add(&mut all, Some(&mut lines), &mut quarantined);
        if both {
            let mut ignored = 0;
            add(&mut with_msgs, None, &mut ignored);
        }
        if v.plan.key.is_some() {
            encrypted_chats += 1;
            for m in &v.messages {
                let status = matches!(m.kind, "join" | "leave");
                let has_ct = !status || join_ct;
                if has_ct && (status || !v.key_cached) {
                    sealed_without_text += 1;
                    undecrypted_without_key += 1;
                }
            }
        }
        if v.ended_at.is_none() {
            open += 1;
        } else {
            ended_chat_ids.push((data_ts(v.ended_at), v.plan.id.clone()));
        }
        if v.purged_at.is_some() {
            purged += 1;
        }
    }
    lines.sort();
    let digest = crypto::sha1_hex(&lines.join("\n"));
    let tables = |t: &Tally| -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("chats".to_owned(), t.chats),
            ("chat_messages".to_owned(), t.messages),
            ("chat_memberships".to_owned(), t.memberships),
            ("chat_tags".to_owned(), t.tags),
            ("visitor_variables".to_owned(), t.variables.len() as u64),
            ("model_conversations".to_owned(), t.chats),
            ("model_messages".to_owned(), t.model_messages),
        ])
    };
    ended_chat_ids.sort();
    GroundTruth {
        tables: tables(&all),
        extra: json!({
            "organization_id": g.org.id,
            "now": api::ts(now),
            "only_with_messages": tables(&with_msgs),
            "message_text_digest": digest,
            "messages_with_text": lines.len(),
            "encrypted_chats": encrypted_chats,
            "quarantined_messages": quarantined,
            "ciphertext_only_messages": sealed_without_text,
            "undecrypted_without_key": undecrypted_without_key,
            "open_chats": open,
            "purged_chats": purged,
            "latest_ended_chat": ended_chat_ids.last().map(|(_, id)| id.clone()),
            "rooms": g.org.rooms.iter().map(|r| json!({"id": r.id, "name": r.name, "encrypted": r.encrypted})).collect::<Vec<_>>(),
            "api_user_id": g.org.api_user.id,
        }),
    }
}

fn data_ts(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(api::ts).unwrap_or_default()
}
