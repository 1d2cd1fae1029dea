//! Pagination as a lazy stream that always ends.

use futures::Stream;
use std::future::Future;

/// Pages through an API lazily: `fetch(cursor)` returns a page and the next cursor. No request
/// is made until the stream is polled; it ends when the next cursor is `None`, repeats the
/// cursor just used, or after an error (which is yielded last).
///
/// The next-page decision belongs in the vendor's pure `next_cursor(&page)` function, which
/// `fetch` calls; this helper only guarantees laziness and termination.
pub fn paginate<C, T, E, F, Fut>(first: C, fetch: F) -> impl Stream<Item = Result<T, E>>
where
    C: Clone + PartialEq,
    F: FnMut(C) -> Fut,
    Fut: Future<Output = Result<(T, Option<C>), E>>,
{
    futures::stream::unfold((Some(first), fetch), |(cursor, mut fetch)| async move {
        let current = cursor?;
        match fetch(current.clone()).await {
            Ok((page, next)) => {
                let next = next.filter(|n| *n != current);
                Some((Ok(page), (next, fetch)))
            }
            Err(e) => Some((Err(e), (None, fetch))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn stops_on_none_and_on_repeat() {
        let pages: Vec<Result<u32, ()>> = paginate(1u32, |c| async move {
            Ok::<_, ()>((c, if c < 3 { Some(c + 1) } else { None }))
        })
        .collect()
        .await;
        assert_eq!(pages, vec![Ok(1), Ok(2), Ok(3)]);

        let repeated: Vec<Result<u32, ()>> =
            paginate(5u32, |c| async move { Ok::<_, ()>((c, Some(5))) })
                .collect()
                .await;
        assert_eq!(repeated, vec![Ok(5)]);
    }

    #[tokio::test]
    async fn lazy_until_polled_and_ends_after_error() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c2 = calls.clone();
        let s = paginate(0u32, move |c| {
            let calls = c2.clone();
            async move {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if c == 1 {
                    Err("boom")
                } else {
                    Ok((c, Some(c + 1)))
                }
            }
        });
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        let all: Vec<_> = s.collect().await;
        assert_eq!(all, vec![Ok(0), Err("boom")]);
    }
}
