//! Lines of a byte stream (an export file being downloaded or read from disk).

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use talkhouse_model::SourceError;

/// A body as chunks of bytes.
pub(super) type ByteStream = BoxStream<'static, Result<Bytes, SourceError>>;

/// Splits a byte stream into lines without holding more than one chunk and one line.
pub(super) struct LineReader {
    inner: ByteStream,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts: lines are cut off the front without moving the
    /// rest, which is moved once per chunk instead.
    start: usize,
    eof: bool,
}

impl LineReader {
    /// A reader of `inner`.
    pub(super) fn new(inner: ByteStream) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            eof: false,
        }
    }

    /// The next line without its `\n` (and `\r`), or `None` at the end.
    pub(super) async fn next_line(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        // Where the search for a newline goes on: the bytes before it hold none.
        let mut scanned = self.start;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + pos;
                let mut line = self.buf[self.start..end].to_vec();
                self.start = end + 1;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.eof {
                let rest = self.buf.split_off(self.start);
                self.buf.clear();
                self.start = 0;
                return Ok((!rest.is_empty()).then_some(rest));
            }
            scanned = self.buf.len();
            match self.inner.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    self.buf.drain(..self.start);
                    scanned -= self.start;
                    self.start = 0;
                    self.buf.extend_from_slice(&chunk);
                }
                None => self.eof = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of `chunks` as the reader cuts them.
    async fn lines_of(chunks: &[&str]) -> Vec<String> {
        let chunks: Vec<Result<Bytes, SourceError>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c.as_bytes())))
            .collect();
        let mut reader = LineReader::new(Box::pin(futures::stream::iter(chunks)));
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.expect("line") {
            out.push(String::from_utf8(line).expect("utf-8"));
        }
        out
    }

    #[tokio::test]
    async fn lines_are_cut_across_chunks_crlf_and_a_missing_last_newline() {
        assert_eq!(
            lines_of(&["{\"a\":1}\n{\"b\"", ":2}\r\n\n", "{\"c\":3}"]).await,
            ["{\"a\":1}", "{\"b\":2}", "", "{\"c\":3}"]
        );
        assert_eq!(lines_of(&["x\ny\n"]).await, ["x", "y"]);
        assert_eq!(lines_of(&["", "a", "", "b\n", "c"]).await, ["ab", "c"]);
        assert!(lines_of(&[]).await.is_empty());
    }
}
