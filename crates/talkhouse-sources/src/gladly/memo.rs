//! The memo of one sync run's enrichment (streams `customers` and `conversations`): every GET
//! they make is asked once a run, callers of the same path at the same time share one request,
//! and later callers get the same answer (a merge's 301, a customer's conversation list, a
//! survivor's items), without asking again. It also keeps the earliest message known of each
//! conversation, so that its channel is the same whichever read of it comes last. Bodies no
//! later read needs are not kept (a customer profile's: its row is made once, at the first
//! read). With conversations from the report (the default) the memo so holds little more than
//! the paths of a run; with `conversations_from_report = false` it also keeps every
//! conversation's answer (a merge reads its survivor again) until the run ends.
//!
//! A run's memo is made when `customers` starts, handed to `conversations` (which runs after
//! it) and dropped when `conversations` ends, or when `customers` fails (then `conversations`
//! does not run). Webhooks and the `events` stream never read it: they are pushes of what
//! changed since, and ask Gladly again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use talkhouse_model::SourceError;
use tokio::sync::OnceCell;

use super::records::{First, earlier};
use super::source::Answer;

/// An answer as [`super::source::GladlySource::get`] gives it: status, headers, body.
pub(super) type Reply = (u16, Answer, Bytes);

/// What one sync run's enrichment asked and learnt.
#[derive(Debug, Default)]
pub(super) struct RunMemo {
    /// Path → its answer, once there is one (a failed request leaves the cell empty), its
    /// body empty when no later read needs it.
    answers: Mutex<HashMap<String, Arc<OnceCell<Reply>>>>,
    /// Conversation id → its earliest message known in the run.
    earliest: Mutex<HashMap<String, First>>,
}

impl RunMemo {
    /// The answer for `path`, and whether an earlier read of the run had it first: the first
    /// caller asks with `fetch` and gets the whole answer; a caller that comes while it is in
    /// flight waits for it, a later one gets it at once, both without its body when `keep`
    /// (given the status) says no later read needs it.
    ///
    /// # Errors
    /// What `fetch` failed with (it is not kept: the next caller asks again).
    pub(super) async fn answer<F>(
        &self,
        path: &str,
        fetch: F,
        keep: impl FnOnce(u16) -> bool,
    ) -> Result<(Reply, bool), SourceError>
    where
        F: Future<Output = Result<Reply, SourceError>>,
    {
        let cell = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(path.to_owned())
            .or_default()
            .clone();
        let mut whole = None;
        let slot = &mut whole;
        let kept = cell
            .get_or_try_init(move || async move {
                let reply = fetch.await?;
                let (code, answer, body) = &reply;
                let body = if keep(*code) {
                    body.clone()
                } else {
                    Bytes::new()
                };
                let kept = (*code, answer.clone(), body);
                *slot = Some(reply);
                Ok::<Reply, SourceError>(kept)
            })
            .await?;
        Ok(match whole {
            Some(reply) => (reply, false),
            None => (kept.clone(), true),
        })
    }

    /// Notes `seen`, a sighting of the earliest message of `conversation`, and gives the
    /// earliest of every sighting of the run so far (the same whatever order they came in).
    pub(super) fn earliest(&self, conversation: &str, seen: Option<First>) -> Option<First> {
        let mut map = self.earliest.lock().unwrap_or_else(PoisonError::into_inner);
        let best = earlier(map.get(conversation).copied(), seen)?;
        map.insert(conversation.to_owned(), best);
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::{DateTime, Utc};

    use super::*;

    fn reply(code: u16) -> Reply {
        let answer = Answer {
            date: None,
            location: None,
            limited: false,
        };
        (code, answer, Bytes::from_static(b"{}"))
    }

    #[tokio::test]
    async fn a_path_is_asked_once_and_its_answer_shared() {
        let memo = RunMemo::default();
        let asked = AtomicUsize::new(0);
        let fetch = || async {
            asked.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok::<_, SourceError>(reply(301))
        };
        let keep = |_| true;
        // Two callers at the same time, then one after: one request.
        let (a, b) = tokio::join!(
            memo.answer("/x", fetch(), keep),
            memo.answer("/x", fetch(), keep)
        );
        let c = memo.answer("/x", fetch(), keep).await;
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let again: Vec<Option<(u16, bool)>> = [a, b, c]
            .into_iter()
            .map(|r| r.ok().map(|((code, _, _), again)| (code, again)))
            .collect();
        assert_eq!(
            again,
            [Some((301, false)), Some((301, true)), Some((301, true))]
        );
        // Another path is asked on its own.
        assert!(memo.answer("/y", fetch(), keep).await.is_ok());
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_no_later_read_needs_goes_to_the_first_read_only() {
        let memo = RunMemo::default();
        let only_301 = |code| code == 301;
        let body = |r: Result<(Reply, bool), SourceError>| {
            r.ok().map(|((_, _, body), again)| (body.len(), again))
        };
        let first = memo.answer("/p", async { Ok(reply(200)) }, only_301).await;
        let later = memo.answer("/p", async { Ok(reply(200)) }, only_301).await;
        assert_eq!(
            (body(first), body(later)),
            (Some((2, false)), Some((0, true)))
        );
        memo.answer("/m", async { Ok(reply(301)) }, only_301)
            .await
            .ok();
        let moved = memo.answer("/m", async { Ok(reply(200)) }, only_301).await;
        assert_eq!(body(moved), Some((2, true)));
    }

    #[tokio::test]
    async fn a_failed_request_is_asked_again() {
        let memo = RunMemo::default();
        let keep = |_| true;
        let failed = memo
            .answer("/x", async { Err(SourceError::Other("down".into())) }, keep)
            .await;
        assert!(failed.is_err());
        let again = memo.answer("/x", async { Ok(reply(200)) }, keep).await;
        assert_eq!(
            again.map(|((code, _, _), again)| (code, again)).ok(),
            Some((200, false))
        );
    }

    #[test]
    fn the_earliest_message_is_the_same_in_any_order() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        let sightings = [
            Some((at("2026-03-08T10:30:00Z"), "sms")),
            None,
            Some((at("2026-03-08T10:00:00Z"), "chat")),
            Some((at("2026-03-09T08:00:00Z"), "sms")),
        ];
        let mut orders = vec![sightings.to_vec()];
        orders.push(sightings.iter().rev().copied().collect());
        for order in orders {
            let memo = RunMemo::default();
            let mut last = None;
            for seen in &order {
                last = memo.earliest("c", *seen);
            }
            assert_eq!(
                last,
                Some((at("2026-03-08T10:00:00Z"), "chat")),
                "{order:?}"
            );
        }
        assert_eq!(RunMemo::default().earliest("c", None), None);
    }
}
