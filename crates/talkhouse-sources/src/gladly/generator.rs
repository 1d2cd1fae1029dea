//! A small generator: a stream's body is an async function that emits events into a bounded
//! channel, and the stream hands them to its consumer as they come (the body stops at the
//! channel's bound until they are read). The body's error, if any, ends the stream.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::{SinkExt, Stream, StreamExt};
use talkhouse_model::{Event, EventStream, SourceError};

/// Sends events from a stream's body to its consumer.
pub(super) struct Emitter(mpsc::Sender<Event>);

impl Emitter {
    /// Sends one event; fails when the consumer stopped reading.
    pub(super) async fn emit(&mut self, ev: Event) -> Result<(), SourceError> {
        self.0
            .send(ev)
            .await
            .map_err(|_| SourceError::Other("the consumer stopped reading".into()))
    }

    /// Sends events in order.
    pub(super) async fn emit_all(&mut self, evs: Vec<Event>) -> Result<(), SourceError> {
        for e in evs {
            self.emit(e).await?;
        }
        Ok(())
    }
}

struct Gen<'a> {
    body: Option<BoxFuture<'a, Result<(), SourceError>>>,
    rx: mpsc::Receiver<Event>,
    err: Option<SourceError>,
}

impl Stream for Gen<'_> {
    type Item = Result<Event, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(body) = self.body.as_mut()
            && let Poll::Ready(r) = body.as_mut().poll(cx)
        {
            self.body = None;
            if let Err(e) = r {
                self.err = Some(e);
            }
        }
        match self.rx.poll_next_unpin(cx) {
            Poll::Ready(Some(ev)) => Poll::Ready(Some(Ok(ev))),
            Poll::Ready(None) => Poll::Ready(self.err.take().map(Err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A stream of the events `f` emits, ending with its error if it fails.
pub(super) fn generate<'a, F, Fut>(f: F) -> EventStream<'a>
where
    F: FnOnce(Emitter) -> Fut,
    Fut: Future<Output = Result<(), SourceError>> + Send + 'a,
{
    let (tx, rx) = mpsc::channel(256);
    Box::pin(Gen {
        body: Some(Box::pin(f(Emitter(tx)))),
        rx,
        err: None,
    })
}
