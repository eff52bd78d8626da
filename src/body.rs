//! Response bodies: small in-memory bodies and streamed file slices.
//!
//! A file body is a list of [`Segment`]s (fixed bytes such as multipart part
//! headers or the FLV header, and byte ranges of an open file) read with
//! positional reads in chunks of at most [`CHUNK`] bytes, so no file is ever
//! loaded whole. If the file yields fewer bytes than announced (truncated or
//! replaced while being served), the body ends with an error: the
//! connection is aborted instead of sending a short body as if complete.
//!
//! [`Body`] keeps what a body is (empty, bytes, file ranges, a stream)
//! visible, so the plain HTTP/1.1 writer ([`crate::h1`]) can send file
//! ranges with `sendfile` while hyper polls the same body as frames.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;

/// Largest chunk read from a file at once (nginx reads trunk/multipart in 256 KiB chunks too).
pub const CHUNK: usize = 256 * 1024;

/// Error that ends a body early; the connection is aborted.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response this server sends.
#[derive(Debug)]
pub enum Body {
    /// No bytes (HEAD, 304, redirects).
    Empty,
    /// Fixed bytes; emptied once sent.
    Full(Bytes),
    /// Ranges of an open file and fixed pieces between them.
    File(FileBody),
    /// Anything else (proxied and storage-protocol bodies).
    Stream(Stream),
}

/// A boxed body of unknown shape.
pub type Stream = BoxBody<Bytes, BodyError>;

/// An empty body (HEAD, 304, redirects).
pub fn empty() -> Body {
    Body::Empty
}

/// A body of fixed bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Body::Full(bytes.into())
}

/// A body streamed from `inner`.
pub fn stream<B>(inner: B) -> Body
where
    B: HttpBody<Data = Bytes, Error = BodyError> + Send + Sync + 'static,
{
    Body::Stream(BodyExt::boxed(inner))
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) if b.is_empty() => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(b))))),
            Body::File(f) => Pin::new(f).poll_frame(cx),
            Body::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_empty(),
            Body::File(f) => f.is_end_stream(),
            Body::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.len() as u64),
            Body::File(f) => f.size_hint(),
            Body::Stream(s) => s.size_hint(),
        }
    }
}

/// One piece of a streamed file body.
#[derive(Debug, Clone)]
pub enum Segment {
    /// Fixed bytes (multipart part header, FLV header, trailer).
    Bytes(Bytes),
    /// `len` bytes of the file starting at absolute offset `offset`.
    File {
        /// Absolute offset in the open file (trunk slots start after their header).
        offset: u64,
        /// Number of bytes to send.
        len: u64,
    },
}

impl Segment {
    /// Whether this piece sends nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes this piece sends.
    pub fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::File { len, .. } => *len,
        }
    }
}

/// A streamed body over an open file.
#[derive(Debug)]
pub struct FileBody {
    file: Arc<File>,
    segments: VecDeque<Segment>,
    remaining: u64,
}

impl FileBody {
    /// A body sending `segments` in order, reading file ranges from `file`.
    pub fn new(file: Arc<File>, segments: Vec<Segment>) -> Self {
        let remaining = segments.iter().map(Segment::len).sum();
        FileBody {
            file,
            segments: segments.into(),
            remaining,
        }
    }

    /// Total bytes this body will send (equals the Content-Length).
    pub fn len(&self) -> u64 {
        self.remaining
    }

    /// Whether the body sends nothing.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The body as the common [`Body`] type.
    pub fn into_body(self) -> Body {
        Body::File(self)
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The pieces still to send, in order.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter()
    }

    fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            let seg = self.segments.front_mut()?;
            match seg {
                Segment::Bytes(b) => {
                    let b = std::mem::take(b);
                    self.segments.pop_front();
                    if b.is_empty() {
                        continue;
                    }
                    return Some(Ok(b));
                }
                Segment::File { offset, len } => {
                    if *len == 0 {
                        self.segments.pop_front();
                        continue;
                    }
                    let want = (*len).min(CHUNK as u64) as usize;
                    let mut buf = vec![0u8; want];
                    let mut filled = 0;
                    while filled < want {
                        match self
                            .file
                            .read_at(&mut buf[filled..], *offset + filled as u64)
                        {
                            Ok(0) => {
                                return Some(Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "file shorter than announced",
                                )))
                            }
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    *offset += want as u64;
                    *len -= want as u64;
                    return Some(Ok(Bytes::from(buf)));
                }
            }
        }
    }
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        // Positional reads of page-cached data are short; doing them inline
        // avoids a thread hop per chunk (see ARCHITECTURE.md, "I/O").
        match self.next_chunk() {
            None => Poll::Ready(None),
            Some(Ok(b)) => {
                self.remaining -= b.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Some(Err(e)) => {
                tracing::error!("aborting response: read failed: {e}");
                self.segments.clear();
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    async fn collect(body: FileBody) -> Result<Vec<u8>, BodyError> {
        let b = body.into_body().collect().await?;
        Ok(b.to_bytes().to_vec())
    }

    #[tokio::test]
    async fn segments_in_order_across_chunks() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(CHUNK * 2 + 10)).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let body = FileBody::new(
            Arc::new(f),
            vec![
                Segment::Bytes(Bytes::from_static(b"head")),
                Segment::File {
                    offset: 5,
                    len: (CHUNK + 100) as u64,
                },
                Segment::Bytes(Bytes::from_static(b"tail")),
            ],
        );
        assert_eq!(body.len(), (CHUNK + 108) as u64);
        let out = collect(body).await.unwrap();
        assert_eq!(&out[..4], b"head");
        assert_eq!(&out[4..out.len() - 4], &data[5..5 + CHUNK + 100]);
        assert_eq!(&out[out.len() - 4..], b"tail");
    }

    #[tokio::test]
    async fn small_range_is_read_at_once_and_short_one_still_fails() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let f = Arc::new(f);
        let b = FileBody::new(f.clone(), vec![Segment::File { offset: 2, len: 5 }]).into_body();
        assert_eq!(b.size_hint().exact(), Some(5));
        let out = b.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"23456");
        let b = FileBody::new(f, vec![Segment::File { offset: 0, len: 20 }]).into_body();
        assert!(b.collect().await.is_err());
    }

    #[tokio::test]
    async fn short_file_is_an_error_not_a_short_body() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let body = FileBody::new(Arc::new(f), vec![Segment::File { offset: 0, len: 20 }]);
        assert!(collect(body).await.is_err());
    }
}
