//! Writing to a plain TCP socket, for both roles: a response head and
//! body pieces (server), a request head (client).

use std::io;

use rustix::net::SendFlags;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Sends all of `buf`, waiting for the socket as needed; `more` marks it
/// `MSG_MORE` (more bytes follow at once: the head before a `sendfile`).
pub async fn send_all(tcp: &TcpStream, mut buf: &[u8], more: bool) -> io::Result<()> {
    let flags = if more {
        SendFlags::NOSIGNAL | SendFlags::MORE
    } else {
        SendFlags::NOSIGNAL
    };
    while !buf.is_empty() {
        match tcp.try_io(Interest::WRITABLE, || {
            rustix::net::send(tcp, buf, flags).map_err(io::Error::from)
        }) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => tcp.writable().await?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
