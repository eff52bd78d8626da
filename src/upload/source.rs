//! Request bodies as bounded streams of bytes (docs/upload.md §4): a stall
//! longer than `upload.stall_timeout` ends the body with `TimedOut`; a
//! [`Meter`] counts bytes, computes the crc32 and stops at the size limit;
//! a multipart part is spooled to an unnamed temporary file (removed by the
//! system when closed, whatever happens) and read back in 64 KiB chunks.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// A boxed stream of body chunks.
pub type Chunks<'a> = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'a>>;

/// Chunk size when reading a spooled file back.
const READ_CHUNK: usize = 64 * 1024;

/// The error inside an [`io::Error`] when a body passes its size limit.
#[derive(Debug)]
pub struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body larger than the size limit")
    }
}

impl std::error::Error for LimitExceeded {}

/// Whether `e` (or an error it wraps) is a [`LimitExceeded`].
pub fn is_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<LimitExceeded>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.get_ref().is_some_and(|i| i.is::<LimitExceeded>()) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// Whether `e` (or an error it wraps) is a stall timeout.
pub fn is_stall(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The request body as chunks; a gap longer than `stall` between two
/// chunks is a `TimedOut` error. Trailers are skipped.
pub fn body_chunks(body: super::ReqBody, stall: Duration) -> Chunks<'static> {
    let body = match body {
        super::ReqBody::Empty => return Box::pin(futures_util::stream::empty()),
        super::ReqBody::Socket(s) => return Box::pin(s.into_chunks(stall)),
        super::ReqBody::Hyper(b) => b,
    };
    Box::pin(futures_util::stream::unfold(
        Some(body),
        move |body| async move {
            let mut body = body?;
            loop {
                match tokio::time::timeout(stall, body.frame()).await {
                    Err(_) => {
                        let e = io::Error::new(
                            io::ErrorKind::TimedOut,
                            "client sent nothing within upload.stall_timeout",
                        );
                        return Some((Err(e), None));
                    }
                    Ok(None) => return None,
                    Ok(Some(Err(e))) => return Some((Err(io::Error::other(e)), None)),
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(d) if d.is_empty() => continue,
                        Ok(d) => return Some((Ok(d), Some(body))),
                        Err(_) => continue,
                    },
                }
            }
        },
    ))
}

/// Most bytes a multipart body may hold outside its file's data (part
/// heads, boundaries, text fields, the parser's read-ahead): bounds what
/// the parser buffers while looking for a part's end of headers.
pub const MAX_FRAMING: u64 = 2 * 1024 * 1024;

/// `chunks`, failing once the bytes taken exceed the file bytes the
/// caller reports in `delivered` by more than [`MAX_FRAMING`].
pub fn framing_guard(
    chunks: Chunks<'static>,
    delivered: Arc<std::sync::atomic::AtomicU64>,
) -> Chunks<'static> {
    use std::sync::atomic::Ordering;
    let mut pulled = 0u64;
    Box::pin(chunks.map(move |c| {
        let c = c?;
        pulled = pulled.saturating_add(c.len() as u64);
        if pulled.saturating_sub(delivered.load(Ordering::Relaxed)) > MAX_FRAMING {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "multipart heads and fields over 2 MiB",
            ));
        }
        Ok(c)
    }))
}

/// Counts and checksums bytes, refusing more than `limit`.
#[derive(Debug, Clone)]
pub struct Meter {
    crc: crc32fast::Hasher,
    /// Bytes seen.
    pub len: u64,
    limit: u64,
}

impl Meter {
    /// A meter refusing more than `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Meter {
            crc: crc32fast::Hasher::new(),
            len: 0,
            limit,
        }
    }

    /// Counts `chunk`; an error once the total passes the limit.
    pub fn take(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.len = self.len.saturating_add(chunk.len() as u64);
        if self.len > self.limit {
            return Err(io::Error::other(LimitExceeded));
        }
        self.crc.update(chunk);
        Ok(())
    }

    /// The crc32 of the bytes seen.
    pub fn crc32(&self) -> u32 {
        self.crc.clone().finalize()
    }
}

/// `chunks` passed through `meter` (shared with the caller, who reads it
/// once the stream is done).
pub fn metered<'a>(chunks: Chunks<'a>, meter: Arc<Mutex<Meter>>) -> Chunks<'a> {
    Box::pin(chunks.map(move |c| {
        let c = c?;
        meter
            .lock()
            .map_err(|_| io::Error::other("meter poisoned"))?
            .take(&c)?;
        Ok(c)
    }))
}

/// A body part on disk.
#[derive(Debug)]
pub struct Spooled {
    file: tokio::fs::File,
    /// Its size.
    pub size: u64,
    /// Its crc32.
    pub crc32: u32,
}

/// Writes `chunks` to an unnamed temporary file in `dir` (or the system's
/// temporary directory), at most `limit` bytes.
pub async fn spool<S, E>(mut chunks: S, limit: u64, dir: Option<&Path>) -> Result<Spooled, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<io::Error>,
{
    let std_file = match dir {
        Some(d) => tempfile::tempfile_in(d),
        None => tempfile::tempfile(),
    }?;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut meter = Meter::new(limit);
    // Small chunks are gathered so the file sees few, large writes.
    let mut pending = BytesMut::new();
    while let Some(c) = chunks.next().await {
        let c = c?;
        meter.take(&c)?;
        pending.extend_from_slice(&c);
        if pending.len() >= READ_CHUNK {
            file.write_all(&pending).await?;
            pending.clear();
        }
    }
    file.write_all(&pending).await?;
    file.flush().await?;
    Ok(Spooled {
        file,
        size: meter.len,
        crc32: meter.crc32(),
    })
}

impl Spooled {
    /// The content from its start, in chunks of at most 64 KiB.
    pub async fn chunks(&mut self) -> io::Result<Chunks<'_>> {
        self.file.seek(io::SeekFrom::Start(0)).await?;
        let file = &mut self.file;
        Ok(Box::pin(futures_util::stream::unfold(
            Some(file),
            |f| async move {
                let f = f?;
                let mut buf = vec![0u8; READ_CHUNK];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(Bytes::from(buf)), Some(f)))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spool_limits_and_reads_back() {
        let parts: Vec<io::Result<Bytes>> =
            (0..100u8).map(|i| Ok(Bytes::from(vec![i; 1000]))).collect();
        let mut s = spool(futures_util::stream::iter(parts), 100_000, None)
            .await
            .unwrap();
        assert_eq!(s.size, 100_000);
        let mut all = Vec::new();
        let mut c = s.chunks().await.unwrap();
        while let Some(x) = c.next().await {
            all.extend_from_slice(&x.unwrap());
        }
        drop(c);
        assert_eq!(all.len(), 100_000);
        assert_eq!(s.crc32, crc32fast::hash(&all));

        let parts: Vec<io::Result<Bytes>> = (0..3).map(|_| Ok(Bytes::from(vec![0; 10]))).collect();
        let e = spool(futures_util::stream::iter(parts), 25, None)
            .await
            .unwrap_err();
        assert!(is_limit(&e));
        assert!(!is_stall(&e));
    }
}
