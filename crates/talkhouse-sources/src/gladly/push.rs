//! Webhooks: authentication (Basic or a static header, compared in constant time), the shape
//! check before an event is acknowledged, and what each event type fetches.

use serde_json::Value;
use talkhouse_model::time::parse_timestamp;
use talkhouse_model::{Event, PushRequest, PushVerdict, SourceError};

use super::generator::Emitter;
use super::records;
use super::source::{GladlySource, PUSH, cell_text, constant_time_eq, quarantine};

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
        let ty = payload.get("type").and_then(Value::as_str).unwrap_or("");
        let content = payload.get("content").cloned().unwrap_or(Value::Null);
        let at = payload
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_timestamp);
        let field = |k: &str| cell_text(&content, k);
        match ty {
            "CONTACT/MESSAGE_RECEIVED" | "CONTACT/MESSAGE_SENT" | "AUTOMATION/MESSAGE_RECEIVED" => {
                if let Some(mid) = field("messageId") {
                    let path = format!("/conversation-items/{mid}");
                    let (code, _, body) = self.get(&path, PUSH).await?;
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
            }
            "CUSTOMER/MERGED" | "CUSTOMER_PROFILE/MERGED" => {
                if let (Some(src), Some(dst)) =
                    (field("sourceCustomerId"), field("destinationCustomerId"))
                {
                    em.emit(Event::Records(vec![records::merge_row(&src, &dst, at)]))
                        .await?;
                    em.emit(records::mark_merged(&src)).await?;
                    em.emit_all(self.customer(&dst, at, 1, PUSH).await?).await?;
                }
                if let Some(c) = field("sourceConversationId") {
                    em.emit_all(self.conversation(&c, None, at, PUSH, true).await?)
                        .await?;
                }
                if let Some(c) = field("destinationConversationId") {
                    em.emit_all(self.conversation(&c, None, at, PUSH, true).await?)
                        .await?;
                }
            }
            "CUSTOMER_PROFILE/CREATED"
            | "CUSTOMER_PROFILE/UPDATED"
            | "CUSTOMER_PROFILE/DELETED" => {
                if let Some(c) = field("customerId") {
                    em.emit_all(self.customer(&c, at, 0, PUSH).await?).await?;
                }
            }
            t if t.starts_with("CONVERSATION") => {
                if let Some(c) = field("conversationId") {
                    em.emit_all(self.conversation(&c, None, at, PUSH, true).await?)
                        .await?;
                }
            }
            _ => tracing::debug!(event_type = ty, "webhook event needs no fetch"),
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
