//! Response bodies: small in-memory bodies and streamed file slices.
//!
//! A file body is a list of [`Segment`]s (fixed bytes such as multipart part
//! headers or the FLV header, and byte ranges of an open file) read with
//! positional reads in chunks of at most [`CHUNK`] bytes, so no file is ever
//! loaded whole. If the file yields fewer bytes than announced (truncated or
//! replaced while being served), the body ends with an error: hyper then
//! aborts the connection instead of sending a short body as if complete.

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
use http_body_util::{BodyExt, Empty, Full};

/// Largest chunk read from a file at once (nginx reads trunk/multipart in 256 KiB chunks too).
pub const CHUNK: usize = 256 * 1024;

/// Largest file range [`FileBody::into_body`] reads at once into memory.
pub const SMALL: usize = 64 * 1024;

/// Error that ends a body early; the connection is aborted.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response this server sends.
pub type Body = BoxBody<Bytes, BodyError>;

/// An empty body (HEAD, 304, redirects).
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A body of fixed bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
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
    fn len(&self) -> u64 {
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

    /// The body as the common [`Body`] type: one small file range
    /// (≤ [`SMALL`]) is read now into a single buffer (one `pread`, no
    /// streaming state); anything else, or a read that comes up short,
    /// streams (a short file then aborts the response as usual).
    pub fn into_body(self) -> Body {
        if let [Segment::File { offset, len }] = self.segments.as_slices().0 {
            if *len <= SMALL as u64 && self.segments.len() == 1 {
                let mut buf = vec![0u8; *len as usize];
                if self.file.read_exact_at(&mut buf, *offset).is_ok() {
                    return full(buf);
                }
            }
        }
        self.boxed()
    }

    /// Boxes the body into the common [`Body`] type.
    pub fn boxed(self) -> Body {
        BodyExt::boxed(self)
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
        let b = body.boxed().collect().await?;
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
