//! Gladly's rows of the cross-vendor model that come from its reports and its team list.
//!
//! * A contact (a row of `ContactExportReportV3`) is a session: `talkhouse.model_sessions`, keyed
//!   by the contact id, with the vendor's message count and its handle time: `Total Contact
//!   Handle Time`, which is the agents' time on the contact plus their after-contact work (the
//!   two parts summed where the total is missing).
//! * A work session (a row of `WorkSessionsReportV3` with an agent) is agent work:
//!   `talkhouse.model_work`, keyed by the report's work session `id` (set once the contact has
//!   ended, which every row that lands has; the `contact:agent` pair otherwise). Its handle time
//!   is the work session's handle time plus its after-contact time; it runs from the agent's
//!   acceptance (the routing, else the contact's start) to the contact's end. Rows without an
//!   agent (nobody handled the contact) are not work.
//! * A team names its agents: `talkhouse.model_teams`, whose `agent_ids` is `,a1,a2,` so that
//!   any engine can match an agent with `LIKE`.
//!
//! The ids are the ones the report was made with (a merged customer's old id, a deleted
//! conversation's id): the model's views resolve them to the current ones through
//! `talkhouse.model_id_merges`.

use talkhouse_model::{Cell, Row, model};

/// A contact's channel (`PHONE_CALL`, `CHAT`, `FB_MESSENGER`…) as one of the model's channels.
pub(super) fn contact_channel(channel: &str) -> Option<&'static str> {
    Some(match channel {
        "CHAT" | "CHAT_MESSAGE" => "chat",
        "EMAIL" => "email",
        "SMS" => "sms",
        "PHONE_CALL" | "VOICEMAIL" | "ABANDONED_CALL" | "VOICE_AI_MESSAGE" => "voice",
        "FB_MESSENGER" | "FACEBOOK_MESSAGE" | "INSTAGRAM_DIRECT" | "TWITTER" => "social",
        "WHATSAPP" => "messaging",
        _ => return None,
    })
}

fn cell(row: &Row, column: &str) -> Cell {
    row.get(column).cloned().unwrap_or(Cell::Null)
}

fn text<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    row.get(column)
        .and_then(Cell::as_str)
        .filter(|s| !s.is_empty())
}

fn float(row: &Row, column: &str) -> Option<f64> {
    match row.get(column) {
        Some(Cell::Float(f)) => Some(*f),
        #[allow(clippy::cast_precision_loss)]
        Some(Cell::Integer(n)) => Some(*n as f64),
        _ => None,
    }
}

/// A total, or the sum of its parts where the total is missing (`None` when all are).
fn total_or_sum(total: Option<f64>, parts: &[Option<f64>]) -> Option<f64> {
    total.or_else(|| parts.iter().flatten().copied().reduce(|a, b| a + b))
}

/// The session of a `gladly.contacts` row.
pub(super) fn contact_session(contact: &Row) -> Option<Row> {
    let id = text(contact, "contact_id")?;
    let channel = text(contact, "channel").and_then(contact_channel);
    let handle = total_or_sum(
        float(contact, "total_contact_handle_time_sec"),
        &[
            float(contact, "contact_handle_time_sec"),
            float(contact, "after_contact_time_sec"),
        ],
    );
    Some(
        Row::new(model::SESSIONS)
            .set("session_id", id.to_owned())
            .set(
                "conversation_id",
                text(contact, "conversation_id").map(str::to_owned),
            )
            .set(
                "customer_id",
                text(contact, "customer_id").map(str::to_owned),
            )
            .set("channel", channel)
            .set("started_at", cell(contact, "queued_at"))
            .set("ended_at", cell(contact, "ended_at"))
            .set("message_count", cell(contact, "messages"))
            .set("handle_seconds", handle),
    )
}

/// The agent work of a `gladly.work_sessions` row; `None` when no agent handled the contact.
pub(super) fn agent_work(session: &Row) -> Option<Row> {
    let contact = text(session, "contact_session_id")?;
    let agent = text(session, "agent_id")?;
    let id = text(session, "id").map_or_else(|| format!("{contact}:{agent}"), str::to_owned);
    let started = [
        "agent_accepted_at",
        "contact_session_routed_at",
        "contact_session_created_at",
    ]
    .iter()
    .map(|c| cell(session, c))
    .find(|c| !c.is_null())
    .unwrap_or(Cell::Null);
    let handle = total_or_sum(
        None,
        &[
            float(session, "work_session_handle_time_sec"),
            float(session, "work_session_after_contact_time_sec"),
        ],
    );
    Some(
        Row::new(model::WORK)
            .set("work_session_id", id)
            .set("session_id", contact.to_owned())
            .set(
                "conversation_id",
                text(session, "conversation_id").map(str::to_owned),
            )
            .set(
                "customer_id",
                text(session, "customer_id").map(str::to_owned),
            )
            .set("agent_id", agent.to_owned())
            .set("started_at", started)
            .set("ended_at", cell(session, "contact_session_ended_at"))
            .set("handle_seconds", handle),
    )
}

/// The model row of a `gladly.teams` row (`agent_ids` a JSON list of ids).
pub(super) fn team(team: &Row) -> Option<Row> {
    let id = text(team, "id")?;
    let agents: Vec<&str> = match team.get("agent_ids") {
        Some(Cell::Json(serde_json::Value::Array(ids))) => ids
            .iter()
            .filter_map(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    let agent_ids = if agents.is_empty() {
        String::new()
    } else {
        format!(",{},", agents.join(","))
    };
    Some(
        Row::new(model::TEAMS)
            .set("team_id", id.to_owned())
            .set("name", text(team, "name").map(str::to_owned))
            .set("agent_ids", agent_ids),
    )
}

/// The model rows of a row of a Gladly table (none for most tables).
pub(super) fn model_rows_of(row: &Row) -> Option<Row> {
    use super::tables;
    if row.table == tables::CONTACTS {
        contact_session(row)
    } else if row.table == tables::WORK_SESSIONS {
        agent_work(row)
    } else if row.table == tables::TEAMS {
        team(row)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gladly::tables::{CONTACTS, TEAMS, WORK_SESSIONS};
    use serde_json::json;

    #[test]
    fn a_contact_is_a_session_with_its_handle_time() {
        let c = Row::new(CONTACTS)
            .set("contact_id", "k1")
            .set("conversation_id", "c1")
            .set("customer_id", "u1")
            .set("channel", "PHONE_CALL")
            .set("messages", 4_i64)
            .set("contact_handle_time_sec", 100.5)
            .set("after_contact_time_sec", 20.0);
        let s = contact_session(&c).expect("a session");
        assert_eq!(s.get("session_id"), Some(&Cell::Text("k1".into())));
        assert_eq!(s.get("channel"), Some(&Cell::Text("voice".into())));
        assert_eq!(s.get("handle_seconds"), Some(&Cell::Float(120.5)));
        assert_eq!(s.get("message_count"), Some(&Cell::Integer(4)));
        let c = c.set("total_contact_handle_time_sec", 130.0);
        let s = contact_session(&c).expect("a session");
        assert_eq!(s.get("handle_seconds"), Some(&Cell::Float(130.0)));
    }

    #[test]
    fn work_needs_an_agent_and_sums_after_contact_time() {
        let w = Row::new(WORK_SESSIONS)
            .set("contact_session_id", "k1")
            .set("agent_id", "")
            .set("work_session_handle_time_sec", 30.0);
        assert!(agent_work(&w).is_none(), "no agent, no work");
        let w = w
            .set("agent_id", "a1")
            .set("work_session_after_contact_time_sec", 12.0);
        let row = agent_work(&w).expect("work");
        assert_eq!(
            row.get("work_session_id"),
            Some(&Cell::Text("k1:a1".into()))
        );
        assert_eq!(row.get("handle_seconds"), Some(&Cell::Float(42.0)));
        let row = agent_work(&w.set("id", "ws9")).expect("work");
        assert_eq!(row.get("work_session_id"), Some(&Cell::Text("ws9".into())));
    }

    #[test]
    fn a_team_lists_its_agents_between_commas() {
        let t = Row::new(TEAMS)
            .set("id", "t1")
            .set("agent_ids", Cell::Json(json!(["a1", "a2"])));
        let row = team(&t).expect("a team");
        assert_eq!(row.get("agent_ids"), Some(&Cell::Text(",a1,a2,".into())));
    }
}
