//! A request body still on the client's socket: plain HTTP/1.1 with a
//! `Content-Length` (RFC 9112 §6.2), handed over with the bytes read along
//! with the head. Read as a stream of chunks, or moved to another socket
//! with `splice(2)` through a pipe, so the bytes never enter user space.
//! It never reads past its length (a pipelined request stays on the
//! socket), and it says whether every byte was taken: only then can the
//! connection carry another request.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use rustix::pipe::{splice, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::wire::io::send_all;

/// Largest chunk read at once.
const CHUNK: usize = 256 * 1024;
/// Pipe capacity asked for when splicing (the kernel may give less).
const PIPE: usize = 1024 * 1024;
/// RFC 9110 §10.1.1: owed before the first read when the client asked.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The body of one request, `len` bytes in all.
#[derive(Debug)]
pub struct SocketBody {
    tcp: Arc<TcpStream>,
    /// Body bytes that came with the head.
    pre: Bytes,
    /// Bytes still on the socket.
    left: u64,
    /// `Expect: 100-continue` not yet answered.
    owe_continue: bool,
    done: Arc<AtomicBool>,
}

/// Which side of a splice failed.
#[derive(Debug)]
pub enum SpliceError {
    /// The client's socket (closed early, stalled, reset).
    Source(io::Error),
    /// The destination socket.
    Sink(io::Error),
}

impl SocketBody {
    /// The body of `len` bytes whose first bytes, `pre` (at most `len`),
    /// were read with the head. The flag turns true once every byte was
    /// taken.
    pub fn new(
        tcp: Arc<TcpStream>,
        pre: Bytes,
        len: u64,
        expect_continue: bool,
    ) -> (Self, Arc<AtomicBool>) {
        let done = Arc::new(AtomicBool::new(len == 0));
        let left = len.saturating_sub(pre.len() as u64);
        let body = SocketBody {
            tcp,
            pre,
            left,
            owe_continue: expect_continue && left > 0,
            done: done.clone(),
        };
        (body, done)
    }

    /// Bytes not yet taken.
    pub fn len(&self) -> u64 {
        self.pre.len() as u64 + self.left
    }

    /// Whether every byte was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn send_continue(&mut self, timeout: Duration) -> io::Result<()> {
        if std::mem::take(&mut self.owe_continue) {
            send_within(&self.tcp, CONTINUE, false, timeout).await?;
        }
        Ok(())
    }

    fn note_done(&self) {
        if self.is_empty() {
            self.done.store(true, Ordering::Release);
        }
    }

    /// The next chunk, `None` at the end; a read that waits longer than
    /// `stall` fails with `TimedOut`.
    async fn next_chunk(&mut self, stall: Duration) -> Option<io::Result<Bytes>> {
        if !self.pre.is_empty() {
            let c = std::mem::take(&mut self.pre);
            self.note_done();
            return Some(Ok(c));
        }
        if self.left == 0 {
            return None;
        }
        if let Err(e) = self.send_continue(stall).await {
            return Some(Err(e));
        }
        let want = usize::try_from(self.left).map_or(CHUNK, |l| l.min(CHUNK));
        let mut buf = BytesMut::with_capacity(want);
        loop {
            match self.tcp.try_read_buf(&mut (&mut buf).limit(want)) {
                Ok(0) => return Some(Err(early_end())),
                Ok(n) => {
                    self.left -= n as u64;
                    self.note_done();
                    return Some(Ok(buf.freeze()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = ready(self.tcp.readable(), stall).await {
                        return Some(Err(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The body as chunks of at most 256 KiB. Between two chunks the
    /// stream is pending once (as hyper's body channel is), so a reader
    /// that pulls until pending (multer) holds one chunk, not the body.
    pub fn into_chunks(
        self,
        stall: Duration,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::unfold((self, false), move |(mut b, later)| async move {
            if later {
                tokio::task::yield_now().await;
            }
            let c = b.next_chunk(stall).await?;
            Some((c, (b, true)))
        })
    }

    /// Moves the whole body to `to`: the bytes read with the head by a
    /// write, the rest by `splice(2)` through a pipe. Waits on the client
    /// at most `stall`, on `to` at most `timeout`, each time.
    pub async fn splice_to(
        &mut self,
        to: &TcpStream,
        stall: Duration,
        timeout: Duration,
    ) -> Result<(), SpliceError> {
        if !self.pre.is_empty() {
            send_within(to, &self.pre, self.left > 0, timeout)
                .await
                .map_err(SpliceError::Sink)?;
            self.pre = Bytes::new();
            self.note_done();
        }
        if self.left == 0 {
            return Ok(());
        }
        self.send_continue(stall)
            .await
            .map_err(SpliceError::Source)?;
        let (r, w) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| SpliceError::Source(e.into()))?;
        let room = rustix::pipe::fcntl_setpipe_size(&w, PIPE).unwrap_or(64 * 1024);
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        while self.left > 0 {
            // Fill the pipe from the client (waiting only while it is
            // empty), then drain it into `to`.
            let mut in_pipe = 0usize;
            while self.left > 0 && in_pipe < room {
                let want = usize::try_from(self.left).map_or(room, |l| l.min(room - in_pipe));
                match self.tcp.try_io(Interest::READABLE, || {
                    splice(&*self.tcp, None, &w, None, want, flags).map_err(io::Error::from)
                }) {
                    Ok(0) => return Err(SpliceError::Source(early_end())),
                    Ok(n) => {
                        in_pipe += n;
                        self.left -= n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if in_pipe > 0 {
                            break;
                        }
                        ready(self.tcp.readable(), stall)
                            .await
                            .map_err(SpliceError::Source)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(SpliceError::Source(e)),
                }
            }
            // More to come: the kernel may hold a partial segment back
            // (as MSG_MORE does) instead of waking the reader per piece.
            let more = if self.left > 0 {
                flags | SpliceFlags::MORE
            } else {
                flags
            };
            drain(&r, in_pipe, to, timeout, more).await?;
        }
        self.note_done();
        Ok(())
    }
}

/// Moves `n` bytes from the pipe `r` to `to`.
async fn drain(
    r: &OwnedFd,
    mut n: usize,
    to: &TcpStream,
    timeout: Duration,
    flags: SpliceFlags,
) -> Result<(), SpliceError> {
    while n > 0 {
        match to.try_io(Interest::WRITABLE, || {
            splice(r, None, to, None, n, flags).map_err(io::Error::from)
        }) {
            Ok(0) => return Err(SpliceError::Sink(io::ErrorKind::WriteZero.into())),
            Ok(k) => n -= k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready(to.writable(), timeout)
                    .await
                    .map_err(SpliceError::Sink)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SpliceError::Sink(e)),
        }
    }
    Ok(())
}

fn early_end() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the client closed before the end of its body",
    )
}

/// Waits for `f` (a readiness or a short write), at most `limit`.
async fn ready(
    f: impl std::future::Future<Output = io::Result<()>>,
    limit: Duration,
) -> io::Result<()> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer took longer than the timeout",
        )),
    }
}

/// [`send_all`] of a few bytes (a `100 Continue`, the body bytes read
/// with the head), within `limit`.
async fn send_within(to: &TcpStream, bytes: &[u8], more: bool, limit: Duration) -> io::Result<()> {
    ready(send_all(to, bytes, more), limit).await
}
