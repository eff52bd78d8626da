//! A response body sent at a download rate (`limit_rate`;
//! docs/operations.md "Download rate") on a plain socket: file ranges still
//! go out with `sendfile` (or reads on the blocking pool with
//! `read_strategy = threads`), in parts the pacer ([`crate::pace`]) allows,
//! with a timer sleep between them (no busy loop); fixed and streamed bytes
//! likewise.

use std::fs::File;
use std::future::poll_fn;
use std::pin::Pin;
use std::time::Instant;

use http_body::Body as _;
use tokio::net::TcpStream;

use super::write::{flush, read_on_threads, sendfile, SendError};
use crate::body::{Body, Segment};
use crate::config::ReadStrategy;
use crate::pace::{Pacer, RateSpec, Step};
use crate::wire::io::send_all;
use crate::wire::Framing;

/// Sends `out` (the head) and `body` at `spec`'s rate; returns the body
/// bytes sent.
pub(super) async fn body(
    tcp: &TcpStream,
    out: &mut Vec<u8>,
    body: Body,
    framing: Framing,
    reads: ReadStrategy,
    spec: RateSpec,
) -> Result<u64, SendError> {
    flush(tcp, out, false).await?;
    let mut p = Pacer::new(spec, Instant::now());
    let sent = match body {
        Body::Empty => 0,
        Body::Full(b) => {
            bytes(tcp, &mut p, &b).await?;
            b.len() as u64
        }
        Body::File(f) => {
            let mut sent = 0;
            for seg in f.segments() {
                match *seg {
                    Segment::Bytes(ref b) => bytes(tcp, &mut p, b).await?,
                    Segment::File { offset, len } => {
                        file(tcp, &mut p, f.file(), offset, len, reads).await?
                    }
                }
                sent += seg.len();
            }
            sent
        }
        Body::Stream(mut s) => {
            let mut sent = 0u64;
            loop {
                let frame = poll_fn(|cx| Pin::new(&mut s).poll_frame(cx)).await;
                let data = match frame {
                    None => break,
                    Some(Err(e)) => return Err(SendError::Body(e)),
                    Some(Ok(f)) => match f.into_data() {
                        Ok(d) if !d.is_empty() => d,
                        _ => continue,
                    },
                };
                sent += data.len() as u64;
                match framing {
                    Framing::Length(n) if sent > n => return Err(SendError::Length),
                    Framing::Chunked => {
                        let size = format!("{:x}\r\n", data.len());
                        send_all(tcp, size.as_bytes(), true)
                            .await
                            .map_err(SendError::Socket)?;
                        bytes(tcp, &mut p, &data).await?;
                        send_all(tcp, b"\r\n", false)
                            .await
                            .map_err(SendError::Socket)?;
                    }
                    _ => bytes(tcp, &mut p, &data).await?,
                }
            }
            if framing == Framing::Chunked {
                send_all(tcp, b"0\r\n\r\n", false)
                    .await
                    .map_err(SendError::Socket)?;
            }
            sent
        }
    };
    Ok(sent)
}

/// Waits until the pacer lets part of `want` bytes go; returns that part.
async fn allowed(p: &Pacer, want: u64) -> u64 {
    loop {
        match p.next(want, Instant::now()) {
            Step::Send(n) => return n,
            Step::Wait(d) => tokio::time::sleep(d).await,
        }
    }
}

async fn bytes(tcp: &TcpStream, p: &mut Pacer, mut b: &[u8]) -> Result<(), SendError> {
    while !b.is_empty() {
        let n = allowed(p, b.len() as u64).await as usize;
        let (now, rest) = b.split_at(n.min(b.len()));
        send_all(tcp, now, false).await.map_err(SendError::Socket)?;
        p.sent(now.len() as u64);
        b = rest;
    }
    Ok(())
}

async fn file(
    tcp: &TcpStream,
    p: &mut Pacer,
    f: &File,
    mut offset: u64,
    len: u64,
    reads: ReadStrategy,
) -> Result<(), SendError> {
    let end = offset + len;
    while offset < end {
        let n = allowed(p, end - offset).await;
        match reads {
            ReadStrategy::Inline => sendfile(tcp, f, offset, n).await?,
            ReadStrategy::Threads => read_on_threads(tcp, f, offset, n).await?,
        }
        p.sent(n);
        offset += n;
    }
    Ok(())
}
