//! Writing a response to a plain TCP socket: the head and small pieces are
//! gathered into one buffer and sent with one `send`; file ranges larger
//! than [`INLINE`] go out with `sendfile` (zero-copy, like nginx's
//! `sendfile on`), the head before them marked `MSG_MORE` so it shares a
//! segment with the first file bytes (nginx's `tcp_nopush`). A body that
//! comes up short is an error: the caller closes the connection instead of
//! sending a truncated body as if complete.

use std::fs::File;
use std::future::poll_fn;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use http_body::Body as _;
use tokio::net::TcpStream;

use crate::body::{Body, FileBody, Segment};
use crate::config::ReadStrategy;
use crate::pace::RateSpec;
pub use crate::wire::io::send_all;
use crate::wire::Framing;

pub use super::write::SendError;
use super::write::{flush, read_on_threads, sendfile};

/// File ranges up to this size are read into the response buffer and sent
/// with the head in one `send`; larger ones use `sendfile`. Measured on
/// loopback: a copy is cheaper than `sendfile` for 1–4 KiB, dearer from
/// 16 KiB (docs/benchmark.md).
pub const INLINE: u64 = 8 * 1024;

/// Largest buffer gathered before it is sent.
const GATHER: usize = 128 * 1024;

/// A connection's reusable buffers.
#[derive(Debug, Default)]
pub struct Buffers {
    /// The response head, and small pieces gathered after it.
    pub out: Vec<u8>,
}

thread_local! {
    /// Where a small file is read before its `writev`: one per thread, not
    /// per connection (thousands of idle connections hold no file buffer),
    /// kept at its largest size so it is not zeroed per response.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sends `bufs.out` (the head) and `body` framed by `framing`, at `pace`'s
/// rate if set ([`super::throttle`]). Returns the body bytes sent.
/// `bufs.out` is left empty.
pub async fn response(
    tcp: &TcpStream,
    bufs: &mut Buffers,
    body: Body,
    framing: Framing,
    reads: ReadStrategy,
    pace: Option<RateSpec>,
) -> Result<u64, SendError> {
    let out = &mut bufs.out;
    let sent = match (framing, body, pace) {
        (Framing::Empty, _, _) | (_, Body::Empty, _) => 0,
        (_, body, Some(spec)) => {
            super::throttle::body(tcp, out, body, framing, reads, spec).await?
        }
        (_, Body::Full(b), None) => {
            gather(tcp, out, &b).await?;
            b.len() as u64
        }
        (_, Body::File(f), None) => match one_small_range(&f) {
            Some((offset, len)) => {
                small_file(tcp, out, f.file(), offset, len).await?;
                len
            }
            None => file(tcp, out, f, reads).await?,
        },
        (_, Body::Stream(s), None) => stream(tcp, out, s, framing).await?,
    };
    if let Framing::Length(n) = framing {
        if n != sent {
            return Err(SendError::Length);
        }
    }
    flush(tcp, out, false).await?;
    Ok(sent)
}

/// Appends `b` to `out`, or sends both when `b` is large.
async fn gather(tcp: &TcpStream, out: &mut Vec<u8>, b: &[u8]) -> Result<(), SendError> {
    if out.len() + b.len() <= GATHER {
        out.extend_from_slice(b);
        return Ok(());
    }
    flush(tcp, out, true).await?;
    send_all(tcp, b, false).await.map_err(SendError::Socket)
}

/// The range of a body that is one file range of at most [`INLINE`] bytes.
fn one_small_range(body: &FileBody) -> Option<(u64, u64)> {
    let mut segs = body.segments();
    match (segs.next(), segs.next()) {
        (Some(&Segment::File { offset, len }), None) if len <= INLINE => Some((offset, len)),
        _ => None,
    }
}

/// Head and a small file in one `writev`: the file is read into the
/// thread's scratch buffer, neither copied after the head nor zeroed first.
/// What the socket does not take at once is copied out before waiting (the
/// scratch buffer is never held across an `.await`).
async fn small_file(
    tcp: &TcpStream,
    out: &mut Vec<u8>,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let rest = SCRATCH.with(|scratch| -> Result<Vec<u8>, SendError> {
        let mut scratch = scratch.borrow_mut();
        let len = len as usize;
        if scratch.len() < len {
            scratch.resize(len, 0);
        }
        let data = &mut scratch[..len];
        file.read_exact_at(data, offset).map_err(SendError::File)?;
        let (mut a, mut b): (&[u8], &[u8]) = (out, data);
        loop {
            if a.is_empty() && b.is_empty() {
                return Ok(Vec::new());
            }
            match tcp.try_write_vectored(&[io::IoSlice::new(a), io::IoSlice::new(b)]) {
                Ok(n) if n >= a.len() => {
                    b = &b[n - a.len()..];
                    a = &[];
                }
                Ok(n) => a = &a[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok([a, b].concat()),
                Err(e) => return Err(SendError::Socket(e)),
            }
        }
    })?;
    out.clear();
    send_all(tcp, &rest, false).await.map_err(SendError::Socket)
}

async fn file(
    tcp: &TcpStream,
    out: &mut Vec<u8>,
    body: FileBody,
    reads: ReadStrategy,
) -> Result<u64, SendError> {
    let mut sent = 0;
    for seg in body.segments() {
        match *seg {
            Segment::Bytes(ref b) => gather(tcp, out, b).await?,
            Segment::File { offset, len }
                if len <= INLINE && out.len() as u64 + len <= GATHER as u64 =>
            {
                read_into(body.file(), out, offset, len)?;
            }
            Segment::File { offset, len } => match reads {
                ReadStrategy::Inline => {
                    flush(tcp, out, true).await?;
                    sendfile(tcp, body.file(), offset, len).await?;
                }
                ReadStrategy::Threads => {
                    flush(tcp, out, true).await?;
                    read_on_threads(tcp, body.file(), offset, len).await?;
                }
            },
        }
        sent += seg.len();
    }
    Ok(sent)
}

/// Reads `len` bytes at `offset` onto the end of `out`.
fn read_into(file: &File, out: &mut Vec<u8>, offset: u64, len: u64) -> Result<(), SendError> {
    let start = out.len();
    out.resize(start + len as usize, 0);
    file.read_exact_at(&mut out[start..], offset).map_err(|e| {
        out.truncate(start);
        SendError::File(e)
    })
}

async fn stream(
    tcp: &TcpStream,
    out: &mut Vec<u8>,
    mut body: crate::body::Stream,
    framing: Framing,
) -> Result<u64, SendError> {
    let mut sent = 0u64;
    loop {
        // A frame that is ready now joins the head (or the previous
        // frame) in one send; only a wait flushes what was gathered.
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        let frame = match ready {
            Poll::Ready(f) => f,
            Poll::Pending => {
                flush(tcp, out, false).await?;
                poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data: Bytes = match frame {
            None => break,
            Some(Err(e)) => {
                // What was relayed so far goes out before the abort, as
                // when the failure comes after a wait.
                let _ = flush(tcp, out, false).await;
                return Err(SendError::Body(e));
            }
            Some(Ok(f)) => match f.into_data() {
                Ok(d) if !d.is_empty() => d,
                _ => continue,
            },
        };
        sent += data.len() as u64;
        match framing {
            Framing::Length(n) if sent > n => return Err(SendError::Length),
            Framing::Chunked => {
                out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                gather(tcp, out, &data).await?;
                out.extend_from_slice(b"\r\n");
            }
            _ => gather(tcp, out, &data).await?,
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    Ok(sent)
}
