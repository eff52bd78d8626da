//! The socket writers both body senders use ([`super::send`], and
//! [`super::throttle`] for paced bodies): flushing the gathered buffer,
//! `sendfile` of a file range, and file ranges read on the blocking pool.
//! A file that comes up short is an error, never a short body sent as whole.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::wire::io::send_all;

/// Why a response could not be sent whole.
#[derive(Debug)]
pub enum SendError {
    /// The socket failed (usually: the client went away).
    Socket(io::Error),
    /// The file could not be read, or was shorter than announced.
    File(io::Error),
    /// A streamed body failed (peer went away mid-body).
    Body(crate::body::BodyError),
    /// A body's length differed from its announced `Content-Length`.
    Length,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Socket(e) => write!(f, "socket: {e}"),
            SendError::File(e) => write!(f, "file read failed: {e}"),
            SendError::Body(e) => write!(f, "body failed: {e}"),
            SendError::Length => f.write_str("body length differs from Content-Length"),
        }
    }
}

/// Sends `out` (if anything) and clears it; `more` marks `MSG_MORE`.
pub(super) async fn flush(tcp: &TcpStream, out: &mut Vec<u8>, more: bool) -> Result<(), SendError> {
    if !out.is_empty() {
        send_all(tcp, out, more).await.map_err(SendError::Socket)?;
        out.clear();
    }
    Ok(())
}

/// `sendfile` of one file range, waiting for the socket as needed.
pub(super) async fn sendfile(
    tcp: &TcpStream,
    file: &File,
    mut offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let end = offset + len;
    while offset < end {
        let want = (end - offset).min(1 << 30) as usize;
        let r = tcp.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(tcp, file, Some(&mut offset), want).map_err(io::Error::from)
        });
        match r {
            Ok(0) => {
                return Err(SendError::File(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than announced",
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tcp.writable().await.map_err(SendError::Socket)?
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EINVAL/ENOSYS: a file system without sendfile support.
            Err(e) if matches!(e.raw_os_error(), Some(22) | Some(38)) => {
                return read_on_threads(tcp, file, offset, end - offset).await;
            }
            Err(e) => return Err(SendError::Socket(e)),
        }
    }
    Ok(())
}

/// Reads a file range on the blocking pool in [`crate::body::CHUNK`]
/// pieces and sends them (`read_strategy = threads`).
pub(super) async fn read_on_threads(
    tcp: &TcpStream,
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(), SendError> {
    let file = file.try_clone().map_err(SendError::File)?;
    let file = std::sync::Arc::new(file);
    let end = offset + len;
    let mut at = offset;
    while at < end {
        let want = (end - at).min(crate::body::CHUNK as u64) as usize;
        let f = file.clone();
        let chunk = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; want];
            f.read_exact_at(&mut buf, at).map(|()| buf)
        })
        .await
        .map_err(|e| SendError::File(io::Error::other(e)))?
        .map_err(SendError::File)?;
        send_all(tcp, &chunk, at + (want as u64) < end)
            .await
            .map_err(SendError::Socket)?;
        at += want as u64;
    }
    Ok(())
}
