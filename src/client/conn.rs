//! The plain-HTTP client of the proxy (module-behaviour.md §8.2): HTTP/1.1
//! to group peers over pooled keep-alive connections, the relayed body
//! read in the task that sends it on to the client.
//!
//! The request head goes out in one `send` (origin-form target, RFC 9112
//! §3.2.1). The response head is parsed with httparse ([`parse_head`],
//! pure) and its body delimited as RFC 9112 §6.3 says ([`Framing`]): none
//! (HEAD, 1xx, 204, 304), `Content-Length`, chunked ([`Chunked`], §7.1) or
//! until the connection closes. A connection goes back to the [`Pool`]
//! (§9.3) only when its body ended exactly where its framing said; any
//! error, short body or early drop closes it, and the client's response
//! ends with an error (the client connection is aborted, never given a
//! short body as complete). A pooled connection that fails before any
//! response byte (closed by the peer while idle, §9.6) is retried once on
//! a new connection: GET and HEAD are idempotent (RFC 9110 §9.2.2).
//! HTTPS peers use [`super::proxy::HttpProxy`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, SERVER, TRANSFER_ENCODING,
};
use http::{HeaderMap, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use super::proxy::{self, Ask};
use super::Failure;
use crate::body::{self, Body};
use crate::response::SERVER_NAME;

/// How long an idle pooled connection is kept.
pub const IDLE: Duration = Duration::from_secs(30);

/// Largest response head accepted (interim heads included).
pub const MAX_HEAD: usize = 64 * 1024;

/// Most header fields in one response head.
const MAX_FIELDS: usize = 100;

/// Longest chunk-size line or trailer line.
const MAX_LINE: usize = 4096;

/// Idle connections kept per peer when `max_proxy_per_peer` is unlimited.
pub const DEFAULT_MAX_IDLE: usize = 256;

/// Bytes read from a peer at a time.
const READ: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Pure: response heads and body framing.

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: the request was HEAD, or the status is 1xx, 204 or 304.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding (§7.1).
    Chunked,
    /// Everything until the peer closes the connection.
    Close,
}

/// A parsed final response head.
#[derive(Debug)]
pub struct Head {
    /// The status code.
    pub status: StatusCode,
    /// The header fields as received.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: Framing,
    /// The connection may carry another request after this body (§9.3):
    /// HTTP/1.1, no `Connection: close`, framing not `Close`, not both
    /// `Transfer-Encoding` and `Content-Length` (§6.3 item 3).
    pub reusable: bool,
    /// Bytes of the buffer taken by this head and any interim heads.
    pub len: usize,
}

/// Why a response head is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not an HTTP/1.x response head (status line or field syntax).
    Syntax(httparse::Error),
    /// Larger than [`MAX_HEAD`].
    TooLarge,
    /// `101 Switching Protocols`, never asked for.
    Upgrade,
    /// A header field name or value not representable.
    Field,
    /// `Content-Length` not a number, or several different ones (§6.3 item 5).
    ContentLength,
    /// A transfer coding other than one `chunked` (§6.3 item 4, §7).
    TransferCoding,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Syntax(e) => write!(f, "malformed response head: {e}"),
            HeadError::TooLarge => f.write_str("response head too large"),
            HeadError::Upgrade => f.write_str("unexpected 101 Switching Protocols"),
            HeadError::Field => f.write_str("invalid header field"),
            HeadError::ContentLength => f.write_str("invalid Content-Length"),
            HeadError::TransferCoding => f.write_str("unsupported Transfer-Encoding"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Parses the response head at the start of `buf`, skipping interim (1xx)
/// heads; `head_request` = the request was HEAD. `Ok(None)`: incomplete.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, HeadError> {
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut r = httparse::Response::new(&mut fields);
        let n = match r.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(HeadError::Syntax(e)),
        };
        at += n;
        if at > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let code = r.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| HeadError::Syntax(httparse::Error::Status))?;
        if code == 101 {
            return Err(HeadError::Upgrade);
        }
        if status.is_informational() {
            continue;
        }
        let mut headers = HeaderMap::with_capacity(r.headers.len());
        let mut length: Result<Option<u64>, HeadError> = Ok(None);
        let mut codings: Option<Codings> = None;
        let mut close = r.version != Some(1);
        for f in r.headers.iter() {
            let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| HeadError::Field)?;
            let value = HeaderValue::from_bytes(f.value).map_err(|_| HeadError::Field)?;
            if name == CONTENT_LENGTH {
                length = length.and_then(|prev| content_length(f.value, prev).map(Some));
            } else if name == TRANSFER_ENCODING {
                codings.get_or_insert_with(Codings::default).add(f.value);
            } else if name == CONNECTION {
                close |= tokens(f.value).any(|t| t.eq_ignore_ascii_case(b"close"));
            }
            headers.append(name, value);
        }
        let length = length?;
        let no_body = head_request || matches!(code, 204 | 304);
        let framing = match (no_body, codings) {
            (true, _) => Framing::Empty,
            (false, Some(c)) if c.is_chunked() => Framing::Chunked,
            (false, Some(_)) => return Err(HeadError::TransferCoding),
            (false, None) => length.map_or(Framing::Close, Framing::Length),
        };
        let reusable = !close
            && framing != Framing::Close
            && !(framing == Framing::Chunked && length.is_some());
        return Ok(Some(Head {
            status,
            headers,
            framing,
            reusable,
            len: at,
        }));
    }
}

/// Comma-separated list elements, trimmed of optional whitespace.
fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// Folds one `Content-Length` field into the value seen so far: every
/// element must be the same run of digits (§6.3 item 5, §8.6).
fn content_length(v: &[u8], prev: Option<u64>) -> Result<u64, HeadError> {
    let mut out = prev;
    for t in tokens(v) {
        if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
            return Err(HeadError::ContentLength);
        }
        let n = t.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        match (n, out) {
            (None, _) => return Err(HeadError::ContentLength),
            (Some(n), Some(o)) if n != o => return Err(HeadError::ContentLength),
            (Some(n), _) => out = Some(n),
        }
    }
    out.ok_or(HeadError::ContentLength)
}

/// The transfer codings named across all `Transfer-Encoding` fields.
#[derive(Debug, Default, Clone, Copy)]
struct Codings {
    count: usize,
    chunked: usize,
}

impl Codings {
    fn add(&mut self, v: &[u8]) {
        for t in tokens(v) {
            self.count += 1;
            if t.eq_ignore_ascii_case(b"chunked") {
                self.chunked += 1;
            }
        }
    }

    /// Exactly `chunked`: other codings cannot be relayed undecoded.
    fn is_chunked(&self) -> bool {
        self.count == 1 && self.chunked == 1
    }
}

/// Why a chunked body is malformed (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk size that is not hex digits, or overflows.
    Size,
    /// A chunk-size or trailer line longer than 4 KiB, or trailers over [`MAX_HEAD`].
    LineTooLong,
    /// Chunk data not followed by CRLF.
    DataEnd,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkError::Size => "invalid chunk size",
            ChunkError::LineTooLong => "chunk line or trailers too long",
            ChunkError::DataEnd => "chunk data not followed by CRLF",
        })
    }
}

impl std::error::Error for ChunkError {}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// This many data bytes of the current chunk left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// In the trailer section; bytes of trailers seen.
    Trailer(usize),
    /// The last chunk and trailer section were read.
    Done,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no complete next piece: read more.
    More,
    /// The body ended exactly (bytes after it stay in the buffer).
    Done,
}

/// An incremental chunked-body decoder (RFC 9112 §7.1): extensions and
/// trailer fields are read and discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: ChunkState::Size,
        }
    }
}

impl Chunked {
    /// Takes the next piece of body from the front of `buf`.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    let n = chunk_size(&line)?;
                    self.state = if n == 0 {
                        ChunkState::Trailer(0)
                    } else {
                        ChunkState::Data(n)
                    };
                }
                ChunkState::Data(n) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = n.min(buf.len() as u64);
                    let data = buf.split_to(take as usize).freeze();
                    self.state = match n - take {
                        0 => ChunkState::DataEnd,
                        left => ChunkState::Data(left),
                    };
                    return Ok(Step::Data(data));
                }
                ChunkState::DataEnd => match buf.get(..2) {
                    Some(b"\r\n") => {
                        buf.advance(2);
                        self.state = ChunkState::Size;
                    }
                    Some(_) => return Err(ChunkError::DataEnd),
                    None if buf.first().is_some_and(|&b| b != b'\r') => {
                        return Err(ChunkError::DataEnd)
                    }
                    None => return Ok(Step::More),
                },
                ChunkState::Trailer(seen) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    if line.as_ref() == b"\r\n" || line.as_ref() == b"\n" {
                        self.state = ChunkState::Done;
                        return Ok(Step::Done);
                    }
                    let seen = seen + line.len();
                    if seen > MAX_HEAD {
                        return Err(ChunkError::LineTooLong);
                    }
                    self.state = ChunkState::Trailer(seen);
                }
                ChunkState::Done => return Ok(Step::Done),
            }
        }
    }

    /// Whether the last chunk and the trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// Splits one line (through its LF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, ChunkError> {
    match buf.iter().take(MAX_LINE).position(|&b| b == b'\n') {
        Some(i) => Ok(Some(buf.split_to(i + 1))),
        None if buf.len() >= MAX_LINE => Err(ChunkError::LineTooLong),
        None => Ok(None),
    }
}

/// The size in a chunk-size line (`1*HEXDIG [ chunk-ext ] CRLF`).
fn chunk_size(line: &[u8]) -> Result<u64, ChunkError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 {
        return Err(ChunkError::Size);
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = (d as char).to_digit(16).ok_or(ChunkError::Size)?;
        Ok((acc << 4) | u64::from(v))
    })
}

/// The request head sent to a peer: `GET`/`HEAD`, origin-form `target`,
/// then `fields` (which carry `Host`).
pub fn request_head(head: bool, target: &str, fields: &HeaderMap) -> Result<Vec<u8>, Error> {
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Target);
    }
    let mut out = Vec::with_capacity(64 + target.len() + fields.len() * 48);
    out.extend_from_slice(if head { b"HEAD " } else { b"GET " });
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

// ---------------------------------------------------------------------------
// I/O: the pool, one exchange, the relayed body.

/// Why a peer gave no usable response head.
#[derive(Debug)]
pub enum Error {
    /// The request target cannot be sent as is.
    Target,
    /// The TCP connect failed.
    Connect(io::Error),
    /// The TCP connect took longer than `connect_timeout`.
    ConnectTimeout,
    /// Writing the request failed.
    Send(io::Error),
    /// The peer closed the connection before any response byte.
    Closed,
    /// The connection failed before any response byte.
    Reset(io::Error),
    /// Reading the response head failed after some of it arrived.
    Read(io::Error),
    /// The connection closed in the middle of the response head.
    TruncatedHead,
    /// No complete response head within `network_timeout`.
    HeadTimeout,
    /// The response head is unusable.
    Head(HeadError),
}

impl Error {
    /// How this counts for failover and the client's status.
    pub fn failure(&self) -> Failure {
        match self {
            Error::ConnectTimeout | Error::HeadTimeout => Failure::Timeout,
            _ => Failure::Unreachable,
        }
    }

    /// A reused connection failing like this was closed while idle: the
    /// request is sent again on a new connection.
    fn stale(&self) -> bool {
        matches!(self, Error::Send(_) | Error::Closed | Error::Reset(_))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Target => f.write_str("request target not sendable"),
            Error::Connect(e) => write!(f, "connect: {e}"),
            Error::ConnectTimeout => f.write_str("connect timed out"),
            Error::Send(e) => write!(f, "sending the request: {e}"),
            Error::Closed => f.write_str("connection closed before the response"),
            Error::Reset(e) => write!(f, "connection failed before the response: {e}"),
            Error::Read(e) => write!(f, "reading the response head: {e}"),
            Error::TruncatedHead => f.write_str("connection closed in the response head"),
            Error::HeadTimeout => f.write_str("no response head within network_timeout"),
            Error::Head(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) | Error::Send(e) | Error::Reset(e) | Error::Read(e) => Some(e),
            Error::Head(e) => Some(e),
            _ => None,
        }
    }
}

/// The limits of one proxied request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connect limit (`connect_timeout`).
    pub connect: Duration,
    /// Limit for the response head and every gap in the body (`network_timeout`).
    pub network: Duration,
    /// Idle connections kept for the peer (`max_proxy_per_peer`, else
    /// [`DEFAULT_MAX_IDLE`]).
    pub max_idle: usize,
}

/// An idle connection and when it was pooled.
struct Idle {
    tcp: TcpStream,
    since: Instant,
}

/// Idle keep-alive connections per peer (a group's few members, so a
/// list), most recently pooled last.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<(SocketAddr, Vec<Idle>)>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool")
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SocketAddr, Vec<Idle>)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently pooled connection to `peer`; connections idle
    /// for [`IDLE`] or longer (to any peer) are closed on the way.
    fn checkout(&self, peer: SocketAddr, now: Instant) -> Option<TcpStream> {
        let mut pool = self.lock();
        let mut found = None;
        for (addr, conns) in pool.iter_mut() {
            let expired = conns
                .iter()
                .position(|c| now.saturating_duration_since(c.since) < IDLE)
                .unwrap_or(conns.len());
            conns.drain(..expired);
            if *addr == peer {
                found = conns.pop().map(|c| c.tcp);
            }
        }
        found
    }

    /// Keeps `tcp` for the next request to `peer`, closing the oldest
    /// beyond `max_idle`.
    fn put(&self, peer: SocketAddr, tcp: TcpStream, max_idle: usize, now: Instant) {
        if max_idle == 0 {
            return;
        }
        let mut pool = self.lock();
        let conns = match pool.iter().position(|(a, _)| *a == peer) {
            Some(i) => &mut pool[i].1,
            None => {
                pool.push((peer, Vec::new()));
                match pool.last_mut() {
                    Some(e) => &mut e.1,
                    None => return,
                }
            }
        };
        if conns.len() >= max_idle {
            let excess = conns.len() + 1 - max_idle;
            conns.drain(..excess);
        }
        conns.push(Idle { tcp, since: now });
    }

    /// Idle connections kept for `peer`.
    pub fn idle(&self, peer: SocketAddr) -> usize {
        self.lock()
            .iter()
            .find(|(a, _)| *a == peer)
            .map_or(0, |(_, c)| c.len())
    }

    /// Asks `peer` over plain HTTP/1.1 and reads the response head.
    pub async fn get(
        self: &Arc<Self>,
        peer: SocketAddr,
        ask: &Ask<'_>,
        limits: Limits,
    ) -> Result<Answer, Error> {
        let host = HeaderValue::from_maybe_shared(Bytes::from(proxy::authority(peer)))
            .map_err(|_| Error::Target)?;
        let fields = proxy::request_headers(ask.headers, ask.bypass, host);
        let req = request_head(ask.head, ask.target, &fields)?;
        if let Some(tcp) = self.checkout(peer, Instant::now()) {
            match exchange(tcp, &req, ask.head, limits.network).await {
                Ok(x) => return Ok(self.answer(peer, x, limits)),
                Err(e) if e.stale() => {
                    tracing::debug!(
                        "peer http://{peer}: pooled connection unusable ({e}); new connection"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let tcp = connect(peer, limits.connect).await?;
        let x = exchange(tcp, &req, ask.head, limits.network).await?;
        Ok(self.answer(peer, x, limits))
    }

    /// The answer for a response head; a body that already arrived whole
    /// frees the connection at once.
    fn answer(self: &Arc<Self>, peer: SocketAddr, x: Exchanged, limits: Limits) -> Answer {
        let Exchanged { tcp, mut buf, head } = x;
        buf.advance(head.len.min(buf.len()));
        let whole = match head.framing {
            Framing::Empty | Framing::Length(0) => Bytes::new(),
            Framing::Length(n) if buf.len() as u64 >= n => buf.split_to(n as usize).freeze(),
            Framing::Length(n) => {
                return self.streaming(peer, tcp, buf, head, Delimit::Length(n), limits)
            }
            Framing::Chunked => {
                return self.streaming(
                    peer,
                    tcp,
                    buf,
                    head,
                    Delimit::Chunked(Chunked::default()),
                    limits,
                )
            }
            Framing::Close => return self.streaming(peer, tcp, buf, head, Delimit::Close, limits),
        };
        // Bytes beyond the body: the connection's framing is off.
        if head.reusable && buf.is_empty() {
            self.put(peer, tcp, limits.max_idle, Instant::now());
        }
        Answer {
            status: head.status,
            headers: head.headers,
            body: Held::Whole(whole),
        }
    }

    fn streaming(
        self: &Arc<Self>,
        peer: SocketAddr,
        tcp: TcpStream,
        buf: BytesMut,
        head: Head,
        delimit: Delimit,
        limits: Limits,
    ) -> Answer {
        Answer {
            status: head.status,
            headers: head.headers,
            body: Held::Streaming(Box::new(Reader {
                conn: Some(Conn {
                    tcp,
                    peer,
                    pool: self.clone(),
                    max_idle: limits.max_idle,
                }),
                buf,
                delimit,
                reusable: head.reusable,
                idle: limits.network,
                timer: None,
                armed: false,
                permit: None,
            })),
        }
    }
}

/// A connection with its response head read.
struct Exchanged {
    tcp: TcpStream,
    /// The head and any body bytes read with it.
    buf: BytesMut,
    head: Head,
}

async fn connect(peer: SocketAddr, limit: Duration) -> Result<TcpStream, Error> {
    let tcp = tokio::time::timeout(limit, TcpStream::connect(peer))
        .await
        .map_err(|_| Error::ConnectTimeout)?
        .map_err(Error::Connect)?;
    // Small heads go out at once; a failure only costs latency.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Sends `req` on `tcp` and reads the response head within `limit`.
async fn exchange(
    tcp: TcpStream,
    req: &[u8],
    head: bool,
    limit: Duration,
) -> Result<Exchanged, Error> {
    crate::h1::send::send_all(&tcp, req, false)
        .await
        .map_err(Error::Send)?;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let head = tokio::time::timeout(limit, read_head(&tcp, &mut buf, head))
        .await
        .map_err(|_| Error::HeadTimeout)??;
    Ok(Exchanged { tcp, buf, head })
}

async fn read_head(tcp: &TcpStream, buf: &mut BytesMut, head: bool) -> Result<Head, Error> {
    loop {
        if !buf.is_empty() {
            if let Some(h) = parse_head(buf, head).map_err(Error::Head)? {
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

/// A peer's response head, its body pending.
#[derive(Debug)]
pub struct Answer {
    /// The peer's status.
    pub status: StatusCode,
    headers: HeaderMap,
    body: Held,
}

#[derive(Debug)]
enum Held {
    /// The whole body (possibly empty) arrived with the head; the
    /// connection is already pooled or closed.
    Whole(Bytes),
    /// The body is read from the connection as the client takes it.
    Streaming(Box<Reader>),
}

impl Answer {
    /// The client's response (as [`proxy::relay`]): status, relayed
    /// headers, our `Server`, the body. `permit` is released when the
    /// peer's body has been read whole (at once when it came with the head).
    pub fn relay(self, permit: Option<OwnedSemaphorePermit>) -> Response<Body> {
        let mut headers = proxy::response_headers(&self.headers);
        headers.insert(SERVER, SERVER_NAME);
        let body = match self.body {
            Held::Whole(b) if b.is_empty() => body::empty(),
            Held::Whole(b) => body::full(b),
            Held::Streaming(mut r) => {
                r.permit = permit;
                body::stream(*r)
            }
        };
        let mut r = Response::new(body);
        *r.status_mut() = self.status;
        *r.headers_mut() = headers;
        r
    }
}

/// A connection lent to a body, and where it goes back.
struct Conn {
    tcp: TcpStream,
    peer: SocketAddr,
    pool: Arc<Pool>,
    max_idle: usize,
}

/// What is left of a body.
#[derive(Debug)]
enum Delimit {
    /// This many bytes (buffered ones included).
    Length(u64),
    /// Chunked.
    Chunked(Chunked),
    /// Until the peer closes.
    Close,
}

/// Why a relayed body ended early; the client's response is aborted.
#[derive(Debug)]
pub enum BodyFault {
    /// The peer closed the connection before the body's end.
    Truncated,
    /// The peer stopped sending for longer than `network_timeout`.
    Stalled,
    /// Reading from the peer failed.
    Read(io::Error),
    /// The chunked framing is malformed.
    Chunk(ChunkError),
}

impl std::fmt::Display for BodyFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyFault::Truncated => f.write_str("peer closed the connection mid-body"),
            BodyFault::Stalled => f.write_str("peer body stalled longer than network_timeout"),
            BodyFault::Read(e) => write!(f, "reading the peer body: {e}"),
            BodyFault::Chunk(e) => write!(f, "peer body: {e}"),
        }
    }
}

impl std::error::Error for BodyFault {}

/// A peer's body read from its connection by whoever polls it, with an
/// idle limit between reads.
struct Reader {
    /// `None` once the body ended or failed.
    conn: Option<Conn>,
    /// Bytes read and not yet relayed.
    buf: BytesMut,
    delimit: Delimit,
    /// The head allows another request on this connection.
    reusable: bool,
    idle: Duration,
    /// Armed at the first wait after a read (most small bodies never wait).
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// The `max_proxy_per_peer` slot, held until the body ends.
    permit: Option<OwnedSemaphorePermit>,
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
        self.permit = None;
    }

    #[cold]
    fn fail(&mut self, e: BodyFault) -> Poll<Option<Result<Frame<Bytes>, body::BodyError>>> {
        let peer = self.conn.take().map(|c| c.peer);
        self.permit = None;
        tracing::error!(
            "aborting proxied response: peer {}: {e}",
            peer.map_or_else(String::new, |p| p.to_string())
        );
        Poll::Ready(Some(Err(Box::new(e))))
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

    fn stall_timer(&mut self) -> Pin<&mut Sleep> {
        let deadline = tokio::time::Instant::now() + self.idle;
        if !self.armed {
            self.armed = true;
            if let Some(t) = &mut self.timer {
                t.as_mut().reset(deadline);
            }
        }
        self.timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
    }
}

impl HttpBody for Reader {
    type Data = Bytes;
    type Error = body::BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, body::BodyError>>> {
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
            match this.poll_fill(cx) {
                Poll::Ready(Ok(0)) if matches!(this.delimit, Delimit::Close) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => return this.fail(BodyFault::Truncated),
                Poll::Ready(Ok(_)) => this.armed = false,
                Poll::Ready(Err(e)) => return this.fail(BodyFault::Read(e)),
                Poll::Pending => {
                    return match this.stall_timer().poll(cx) {
                        Poll::Ready(()) => this.fail(BodyFault::Stalled),
                        Poll::Pending => Poll::Pending,
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Option<Head>, HeadError> {
        parse_head(s, false)
    }

    fn framing(s: &str) -> (Framing, bool) {
        let h = parse(s.as_bytes()).unwrap().unwrap();
        assert_eq!(h.len, s.len());
        (h.framing, h.reusable)
    }

    #[test]
    fn head_fields_status_and_length() {
        let raw = b"HTTP/1.1 206 Partial Content\r\nServer: nginx\r\nContent-Length: 5\r\n\
Content-Range: bytes 0-4/10\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\nhello";
        let h = parse(raw).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(h.len, raw.len() - 5);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.reusable);
        assert_eq!(h.headers.get("server").unwrap(), "nginx");
        assert_eq!(h.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(h.headers.len(), 5);
    }

    #[test]
    fn split_heads_are_incomplete_at_every_byte() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nETag: \"x\"\r\n\r\n";
        for i in 0..raw.len() {
            assert!(parse(&raw[..i]).unwrap().is_none(), "prefix {i}");
        }
        assert_eq!(parse(raw).unwrap().unwrap().len, raw.len());
    }

    #[test]
    fn framing_follows_rfc9112_6_3() {
        let t = |s: &str| framing(s);
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (Framing::Length(0), true)
        );
        assert_eq!(t("HTTP/1.1 200 OK\r\n\r\n"), (Framing::Close, false));
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n"),
            (Framing::Chunked, true)
        );
        // TE overrides CL; the connection is not reused (item 3).
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, false)
        );
        assert_eq!(
            t("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            t("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            t("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, Close\r\n\r\n"),
            (Framing::Length(3), false)
        );
        assert_eq!(
            t("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n"),
            (Framing::Length(3), false)
        );
        assert_eq!(
            t("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n"),
            (Framing::Length(3), false)
        );
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.reusable), (Framing::Empty, true));
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Empty);
    }

    #[test]
    fn content_length_duplicates_and_invalid_values() {
        let t = |cl: &str| {
            parse(format!("HTTP/1.1 200 OK\r\n{cl}\r\n").as_bytes()).map(|h| h.unwrap().framing)
        };
        assert_eq!(t("Content-Length: 7\r\n"), Ok(Framing::Length(7)));
        assert_eq!(t("Content-Length: 007\r\n"), Ok(Framing::Length(7)));
        assert_eq!(t("Content-Length: 7, 7\r\n"), Ok(Framing::Length(7)));
        assert_eq!(
            t("Content-Length: 7\r\nContent-Length: 7\r\n"),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            t("Content-Length: 18446744073709551615\r\n"),
            Ok(Framing::Length(u64::MAX))
        );
        for bad in [
            "Content-Length: 7\r\nContent-Length: 8\r\n",
            "Content-Length: 7, 8\r\n",
            "Content-Length: 7,\r\n",
            "Content-Length: \r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +7\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: 1 2\r\n",
            "Content-Length: 18446744073709551616\r\n",
            "Content-Length: 99999999999999999999999\r\n",
        ] {
            assert_eq!(t(bad), Err(HeadError::ContentLength), "{bad:?}");
        }
        // Invalid even where there is no body: the field would be relayed.
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true).unwrap_err(),
            HeadError::ContentLength
        );
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_refused() {
        for te in [
            "gzip",
            "gzip, chunked",
            "chunked, gzip",
            "chunked, chunked",
            "",
            "identity",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(
                parse(raw.as_bytes()).unwrap_err(),
                HeadError::TransferCoding,
                "{te:?}"
            );
        }
        let raw =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            parse(raw.as_bytes()).unwrap_err(),
            HeadError::TransferCoding
        );
    }

    #[test]
    fn interim_heads_are_skipped_and_upgrades_refused() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n";
        let h = parse(raw).unwrap().unwrap();
        assert_eq!((h.status, h.len), (StatusCode::OK, raw.len()));
        assert!(!h.headers.contains_key("link"));
        assert!(parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
            .unwrap()
            .is_none());
        assert_eq!(
            parse(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            HeadError::Upgrade
        );
    }

    #[test]
    fn bad_status_lines_are_syntax_errors() {
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"hello world\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
            b"\x00\x01\x02",
        ] {
            assert!(
                matches!(parse(bad), Err(HeadError::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            parse(b"HTTP/1.1 099 Odd\r\n\r\n"),
            Err(HeadError::Syntax(_))
        ));
        let many: String = (0..=MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(matches!(
            parse(raw.as_bytes()),
            Err(HeadError::Syntax(httparse::Error::TooManyHeaders))
        ));
        // A reason phrase may be empty or missing.
        assert!(parse(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .is_some());
    }

    #[test]
    fn oversize_heads_are_refused() {
        let big = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(big.as_bytes()).unwrap_err(), HeadError::TooLarge);
        let big = format!("{big}\r\n");
        assert_eq!(parse(big.as_bytes()).unwrap_err(), HeadError::TooLarge);
        let fits = format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
            "a".repeat(MAX_HEAD - 100)
        );
        assert!(parse(fits.as_bytes()).unwrap().is_some());
    }

    fn dechunk(input: &[u8], split: usize) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        let mut c = Chunked::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match c.step(&mut buf)? {
                Step::Data(b) => out.extend_from_slice(&b),
                Step::Done => return Ok((out, buf.to_vec())),
                Step::More if fed >= input.len() => return Ok((out, b"<more>".to_vec())),
                Step::More => {
                    let end = (fed + split).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_at_any_split() {
        let body = b"5\r\nhello\r\n6;ext=1;q=\"x\"\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        for split in 1..body.len() {
            let (out, rest) = dechunk(body, split).unwrap();
            assert_eq!(out, b"hello world0123456789", "split {split}");
            assert!(
                b"NEXT".starts_with(&rest),
                "split {split}: the decoder stops at the end"
            );
        }
        let (out, rest) = dechunk(b"0\r\n\r\n", 64).unwrap();
        assert_eq!((out.len(), rest), (0, vec![]));
        assert_eq!(dechunk(b"3\nabc\r\n0\n\n", 64).unwrap().0, b"abc");
        // Bytes after the body stay in the buffer.
        let mut c = Chunked::default();
        let mut buf = BytesMut::from(&b"1\r\na\r\n0\r\n\r\nHTTP"[..]);
        assert_eq!(c.step(&mut buf), Ok(Step::Data(Bytes::from_static(b"a"))));
        assert_eq!(c.step(&mut buf), Ok(Step::Done));
        assert!(c.is_done());
        assert_eq!(&buf[..], b"HTTP");
        assert_eq!(c.step(&mut buf), Ok(Step::Done));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for (bad, want) in [
            (&b"x\r\n"[..], ChunkError::Size),
            (b"\r\n", ChunkError::Size),
            (b";ext\r\n", ChunkError::Size),
            (b"-1\r\n", ChunkError::Size),
            (b"11111111111111111\r\n", ChunkError::Size),
            (b"3\r\nabcX\r\n", ChunkError::DataEnd),
            (b"3\r\nabc\rX", ChunkError::DataEnd),
            (b"3\r\nabcXY", ChunkError::DataEnd),
        ] {
            assert_eq!(
                dechunk(bad, 64).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(dechunk(b"ffffffffffffffff\r\nab", 64).unwrap().0, b"ab");
        let long = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE));
        assert_eq!(
            dechunk(long.as_bytes(), 64).unwrap_err(),
            ChunkError::LineTooLong
        );
        let trailers: String = (0..2000)
            .map(|i| format!("X-{i}: {}\r\n", "v".repeat(40)))
            .collect();
        let t = format!("0\r\n{trailers}\r\n");
        assert_eq!(
            dechunk(t.as_bytes(), 4096).unwrap_err(),
            ChunkError::LineTooLong
        );
        // Incomplete is not an error.
        assert_eq!(
            dechunk(b"5\r\nhel", 2).unwrap(),
            (b"hel".to_vec(), b"<more>".to_vec())
        );
    }

    #[test]
    fn request_heads_are_origin_form_in_one_buffer() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RANGE, HeaderValue::from_static("bytes=0-1"));
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("127.0.0.2:8080"),
        );
        let r = request_head(false, "/g/M00/x.txt?redirect=1", &h).unwrap();
        assert_eq!(
            r,
            b"GET /g/M00/x.txt?redirect=1 HTTP/1.1\r\nrange: bytes=0-1\r\nhost: 127.0.0.2:8080\r\n\r\n"
        );
        assert!(request_head(true, "/x", &HeaderMap::new())
            .unwrap()
            .starts_with(b"HEAD /x HTTP/1.1\r\n"));
        for bad in ["", "/a b", "/a\r\nX: y", "/\u{e9}", "/a\x7f"] {
            assert!(
                matches!(request_head(false, bad, &h), Err(Error::Target)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn error_failures_and_staleness() {
        let io = || io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(Error::ConnectTimeout.failure(), Failure::Timeout);
        assert_eq!(Error::HeadTimeout.failure(), Failure::Timeout);
        for e in [
            Error::Target,
            Error::Connect(io()),
            Error::Send(io()),
            Error::Closed,
            Error::Reset(io()),
            Error::Read(io()),
            Error::TruncatedHead,
            Error::Head(HeadError::TooLarge),
        ] {
            assert_eq!(e.failure(), Failure::Unreachable, "{e}");
        }
        assert!(Error::Send(io()).stale() && Error::Closed.stale() && Error::Reset(io()).stale());
        assert!(
            !Error::Read(io()).stale()
                && !Error::TruncatedHead.stale()
                && !Error::HeadTimeout.stale()
        );
    }

    #[tokio::test]
    async fn pool_is_lifo_bounded_and_expires() {
        let l = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let b: SocketAddr = "127.0.0.3:80".parse().unwrap();
        let conn = || async { TcpStream::connect(a).await.unwrap() };
        let p = Pool::default();
        let t0 = Instant::now();
        assert!(p.checkout(a, t0).is_none());
        let (c1, c2, c3) = (conn().await, conn().await, conn().await);
        let port = |c: &TcpStream| c.local_addr().unwrap().port();
        let (p2, p3) = (port(&c2), port(&c3));
        p.put(a, c1, 2, t0);
        p.put(a, c2, 2, t0 + Duration::from_secs(1));
        p.put(a, c3, 2, t0 + Duration::from_secs(2));
        assert_eq!(p.idle(a), 2, "bounded: the oldest closed");
        assert_eq!(p.idle(b), 0);
        assert!(p.checkout(b, t0).is_none());
        let got = p.checkout(a, t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(port(&got), p3, "most recent first");
        p.put(a, got, 2, t0 + Duration::from_secs(3));
        // c2 (pooled at t0+1) has idled IDLE at t0+1+IDLE; c3 is still fresh.
        let got = p.checkout(a, t0 + Duration::from_secs(1) + IDLE).unwrap();
        assert_ne!(port(&got), p2);
        assert_eq!(p.idle(a), 0, "the expired one was closed");
        p.put(a, got, 0, t0);
        assert_eq!(p.idle(a), 0, "max_idle 0 keeps nothing");
    }
}
