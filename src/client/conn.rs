//! One exchange on a plain connection to a peer, and the body read from
//! it: the request head goes out in one `send`, the response head is read
//! within `peer_response_timeout` and parsed ([`crate::wire::response::parse`]),
//! then [`Reader`] takes the body off the connection as its framing says
//! (RFC 9112 §6.3) and gives the connection back to the pool only when the
//! body ended exactly where the framing said (§9.3).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::net::TcpStream;

use super::relay::BodyFault;
use super::{Error, Pool};
use crate::wire::chunked::{Chunked, Step};
use crate::wire::io::send_all;
use crate::wire::response::{self, Head};

/// Bytes read from a peer at a time.
const READ: usize = 64 * 1024;

/// A connection with its response head read.
pub(super) struct Exchanged {
    pub(super) tcp: TcpStream,
    /// The head and any body bytes read with it.
    pub(super) buf: BytesMut,
    pub(super) head: Head,
}

/// A new connection to `peer` within `limit`.
pub(super) async fn connect(peer: SocketAddr, limit: Duration) -> Result<TcpStream, Error> {
    let tcp = tokio::time::timeout(limit, TcpStream::connect(peer))
        .await
        .map_err(|_| Error::ConnectTimeout)?
        .map_err(Error::Connect)?;
    // Small heads go out at once; a failure only costs latency.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Sends `req` on `tcp` and reads the response head within `limit`.
pub(super) async fn exchange(
    tcp: TcpStream,
    req: &[u8],
    head: bool,
    limit: Duration,
) -> Result<Exchanged, Error> {
    send_all(&tcp, req, false).await.map_err(Error::Send)?;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let head = tokio::time::timeout(limit, read_head(&tcp, &mut buf, head))
        .await
        .map_err(|_| Error::HeadTimeout)??;
    Ok(Exchanged { tcp, buf, head })
}

/// Reads until `buf` holds a complete response head.
async fn read_head(tcp: &TcpStream, buf: &mut BytesMut, head: bool) -> Result<Head, Error> {
    loop {
        if !buf.is_empty() {
            if let Some(h) = response::parse(buf, head).map_err(Error::Head)? {
                return Ok(h);
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(8 * 1024);
        }
        match tcp.try_read_buf(buf) {
            Ok(0) if buf.is_empty() => return Err(Error::Closed),
            Ok(0) => return Err(Error::TruncatedHead),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tcp.readable().await.map_err(Error::Read)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if buf.is_empty() => return Err(Error::Reset(e)),
            Err(e) => return Err(Error::Read(e)),
        }
    }
}

/// A connection lent to a body, and where it goes back.
pub(super) struct Conn {
    pub(super) tcp: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) pool: Arc<Pool>,
    pub(super) max_idle: usize,
}

/// What is left of a body.
#[derive(Debug)]
pub(super) enum Delimit {
    /// This many bytes (buffered ones included).
    Length(u64),
    /// Chunked.
    Chunked(Chunked),
    /// Until the peer closes.
    Close,
}

/// A peer's body read from its connection by whoever polls it (the idle
/// limit between reads is the [`super::relay::Relay`]'s).
pub struct Reader {
    /// `None` once the body ended or failed.
    conn: Option<Conn>,
    /// Bytes read and not yet relayed.
    buf: BytesMut,
    delimit: Delimit,
    /// The head allows another request on this connection.
    reusable: bool,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("delimit", &self.delimit)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

/// What the buffer yields next.
enum Next {
    Data(Bytes),
    More,
    End,
}

impl Reader {
    /// The body of a head read on `conn`; `buf` holds what followed the head.
    pub(super) fn new(conn: Conn, buf: BytesMut, delimit: Delimit, reusable: bool) -> Self {
        Reader {
            conn: Some(conn),
            buf,
            delimit,
            reusable,
        }
    }

    /// The next piece of body from the buffer, by the framing.
    fn take(&mut self) -> Result<Next, BodyFault> {
        match &mut self.delimit {
            Delimit::Length(0) => Ok(Next::End),
            Delimit::Length(_) | Delimit::Close if self.buf.is_empty() => Ok(Next::More),
            Delimit::Length(n) => {
                let take = (*n).min(self.buf.len() as u64);
                *n -= take;
                Ok(Next::Data(self.buf.split_to(take as usize).freeze()))
            }
            Delimit::Close => Ok(Next::Data(self.buf.split().freeze())),
            Delimit::Chunked(c) => match c.step(&mut self.buf).map_err(BodyFault::Chunk)? {
                Step::Data(b) => Ok(Next::Data(b)),
                Step::More => Ok(Next::More),
                Step::Done => Ok(Next::End),
            },
        }
    }

    /// The body ended exactly: pool the connection if it is clean.
    fn finish(&mut self) {
        if let Some(c) = self.conn.take() {
            let exact = !matches!(self.delimit, Delimit::Close);
            if exact && self.reusable && self.buf.is_empty() {
                c.pool.put(c.peer, c.tcp, c.max_idle, Instant::now());
            }
        }
    }

    /// The body failed: the connection is closed, never pooled.
    #[cold]
    fn fail(&mut self, e: BodyFault) -> Poll<Option<Result<Frame<Bytes>, BodyFault>>> {
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }

    /// Reads what the connection has; `Ok(0)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(c) = &self.conn else {
            return Poll::Ready(Ok(0));
        };
        if self.buf.capacity() - self.buf.len() < READ / 4 {
            self.buf.reserve(READ);
        }
        loop {
            match c.tcp.try_read_buf(&mut self.buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(c.tcp.poll_read_ready(cx))?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl HttpBody for Reader {
    type Data = Bytes;
    type Error = BodyFault;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyFault>>> {
        let this = &mut *self;
        loop {
            if this.conn.is_none() {
                return Poll::Ready(None);
            }
            match this.take() {
                Ok(Next::Data(b)) => {
                    if matches!(this.delimit, Delimit::Length(0)) {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Ok(Next::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Next::More) => {}
                Err(e) => return this.fail(e),
            }
            match ready!(this.poll_fill(cx)) {
                Ok(0) if matches!(this.delimit, Delimit::Close) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(BodyFault::Truncated),
                Ok(_) => {}
                Err(e) => return this.fail(BodyFault::Read(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || matches!(self.delimit, Delimit::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.delimit {
            Delimit::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
