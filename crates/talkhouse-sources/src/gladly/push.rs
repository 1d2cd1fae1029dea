//! Webhooks: authentication (Basic or a static header, compared in constant time), the shape
//! check before an event is acknowledged, and what each event type fetches ([`Fetch`], also
//! what the `events` stream does with the Events API's events).

use chrono::{DateTime, Utc};
use serde_json::Value;
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{Event, PushRequest, PushVerdict, SourceError};

use super::enrich::{ConvHint, Fate};
use super::generator::Emitter;
use super::records::{self, Merged};
use super::source::{GladlySource, PUSH, cell_text, constant_time_eq, quarantine};

/// What an event (a webhook, or a line of the Events API) asks the source to fetch. Events of
/// one poll that ask for the same thing are fetched once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Fetch {
    /// `CONTACT/MESSAGE_*`: the item (`messageId`).
    Item(String),
    /// `CUSTOMER/MERGED` (and the deprecated `CUSTOMER_PROFILE/MERGED`): the merge of the
    /// customers, and of their conversations where the source one answers 404.
    Merge {
        /// `sourceCustomerId`.
        source_customer: Option<String>,
        /// `destinationCustomerId`.
        destination_customer: Option<String>,
        /// `sourceConversationId`.
        source_conversation: Option<String>,
        /// `destinationConversationId`.
        destination_conversation: Option<String>,
    },
    /// `CUSTOMER_PROFILE/CREATED|UPDATED|DELETED`: the profile.
    Customer(String),
    /// `CONVERSATION*` (status, assignee, topics, notes…): the conversation and its items.
    Conversation(String),
}

impl Fetch {
    /// What `event` asks for; `None` for events that need no fetch (agent status, tasks…).
    pub(super) fn of(event: &Value) -> Option<Self> {
        let ty = event.get("type").and_then(Value::as_str).unwrap_or("");
        let content = event.get("content").cloned().unwrap_or(Value::Null);
        let field = |k: &str| cell_text(&content, k);
        match ty {
            "CONTACT/MESSAGE_RECEIVED" | "CONTACT/MESSAGE_SENT" | "AUTOMATION/MESSAGE_RECEIVED" => {
                field("messageId").map(Fetch::Item)
            }
            "CUSTOMER/MERGED" | "CUSTOMER_PROFILE/MERGED" => Some(Fetch::Merge {
                source_customer: field("sourceCustomerId"),
                destination_customer: field("destinationCustomerId"),
                source_conversation: field("sourceConversationId"),
                destination_conversation: field("destinationConversationId"),
            }),
            "CUSTOMER_PROFILE/CREATED"
            | "CUSTOMER_PROFILE/UPDATED"
            | "CUSTOMER_PROFILE/DELETED" => field("customerId").map(Fetch::Customer),
            t if t.starts_with("CONVERSATION") => field("conversationId").map(Fetch::Conversation),
            _ => None,
        }
    }
}

/// An event's `timestamp`.
pub(super) fn event_time(event: &Value) -> Option<DateTime<Utc>> {
    event
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
}

impl GladlySource {
    fn webhook_authentic(&self, req: &PushRequest) -> bool {
        let mut configured = false;
        let mut ok = false;
        if let (Some(user), Some(pass)) = (&self.cfg.webhook_username, &self.cfg.webhook_password) {
            use base64::Engine;
            configured = true;
            let want = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", pass.expose()))
            );
            ok |= constant_time_eq(
                req.header("authorization").unwrap_or("").as_bytes(),
                want.as_bytes(),
            );
        }
        if let Some(h) = &self.cfg.webhook_header {
            configured = true;
            let got = req.header(&h.name.to_ascii_lowercase()).unwrap_or("");
            ok |= constant_time_eq(got.as_bytes(), h.value.expose().as_bytes());
        }
        if !configured {
            tracing::warn!(source = %self.name, "webhook refused: no webhook_username/webhook_password or webhook_header configured");
        }
        configured && ok
    }

    /// Fetches what an accepted webhook event points at.
    pub(super) async fn run_push(
        &self,
        mut em: Emitter,
        payload: Value,
    ) -> Result<(), SourceError> {
        match Fetch::of(&payload) {
            Some(fetch) => {
                self.fetch(&mut em, &fetch, event_time(&payload), PUSH)
                    .await
            }
            None => {
                let event_type = payload.get("type").and_then(Value::as_str).unwrap_or("");
                tracing::debug!(event_type, "webhook event needs no fetch");
                Ok(())
            }
        }
    }

    /// Fetches what an event (webhook or Events API) points at, for `stream`; `at` is the
    /// event's time (the `seen_at` of merges and assignments).
    pub(super) async fn fetch(
        &self,
        em: &mut Emitter,
        fetch: &Fetch,
        at: Option<DateTime<Utc>>,
        stream: &'static str,
    ) -> Result<(), SourceError> {
        match fetch {
            Fetch::Item(mid) => {
                let path = format!("/conversation-items/{mid}");
                let (code, _, body) = self.get(&path, stream).await?;
                match code {
                    200 => {
                        let raw = String::from_utf8_lossy(&body).into_owned();
                        match serde_json::from_str::<Value>(&raw)
                            .map_err(|e| e.to_string())
                            .and_then(|v| records::item_rows(&v, &raw, None))
                        {
                            Ok(rows) => em.emit(Event::Records(rows)).await?,
                            Err(e) => em.emit(quarantine(&path, e, &body)).await?,
                        }
                    }
                    404 => {}
                    _ => {
                        em.emit(quarantine(&path, format!("HTTP {code}"), &body))
                            .await?
                    }
                }
            }
            Fetch::Merge {
                source_customer,
                destination_customer,
                source_conversation,
                destination_conversation,
            } => {
                if let (Some(src), Some(dst)) = (source_customer, destination_customer) {
                    em.emit(Event::Records(records::merge_rows(
                        Merged::Customer,
                        src,
                        dst,
                        at,
                    )))
                    .await?;
                    em.emit(records::mark_merged(src)).await?;
                    em.emit_all(self.customer(dst, at, 1, stream).await?)
                        .await?;
                }
                // The source conversation either lives on (its id kept) or answers 404: then
                // it merged into the destination, which is read again with its items.
                let mut read_destination = true;
                if let Some(c) = source_conversation {
                    let hint = ConvHint {
                        merged_into: destination_conversation.as_deref(),
                        ..ConvHint::default()
                    };
                    let (events, fate) = self.conversation_fate(c, hint, at, stream, true).await?;
                    em.emit_all(events).await?;
                    read_destination = fate != Fate::Merged;
                }
                if let Some(d) = destination_conversation
                    && read_destination
                    && source_conversation.as_ref() != Some(d)
                {
                    em.emit_all(
                        self.conversation(d, ConvHint::default(), at, stream, true)
                            .await?,
                    )
                    .await?;
                }
            }
            Fetch::Customer(c) => {
                em.emit_all(self.customer(c, at, 0, stream).await?).await?;
            }
            Fetch::Conversation(c) => {
                em.emit_all(
                    self.conversation(c, ConvHint::default(), at, stream, true)
                        .await?,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The verdict on a pushed request (see [`talkhouse_model::Source::verify_push`]).
    pub(super) fn verify(&self, request: &PushRequest) -> PushVerdict {
        if self.api.is_none() {
            return PushVerdict::Reject {
                status: 404,
                message: "this source takes no pushed events".into(),
            };
        }
        if !self.webhook_authentic(request) {
            return PushVerdict::Reject {
                status: 401,
                message: "bad webhook credentials".into(),
            };
        }
        let Ok(v) = serde_json::from_slice::<Value>(&request.body) else {
            return PushVerdict::Reject {
                status: 400,
                message: "body is not JSON".into(),
            };
        };
        if v.get("type").and_then(Value::as_str) == Some("PING") {
            return PushVerdict::Ignore;
        }
        match v.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => PushVerdict::Accept {
                event_id: id.to_owned(),
                payload: v,
            },
            _ => PushVerdict::Reject {
                status: 400,
                message: "event has no id".into(),
            },
        }
    }
}
