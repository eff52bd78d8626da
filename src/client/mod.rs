//! The plain-HTTP client of the proxy (docs/module-behaviour.md §8.2): HTTP/1.1
//! to group peers over pooled keep-alive connections, the relayed body
//! read in the task that sends it on to the client. The HTTP/1 codec is
//! [`crate::wire`]'s (the same framing rule the server role uses).
//!
//! - [`pool`]: idle connections per peer and the request with its one
//!   retry on a stale pooled connection.
//! - [`conn`]: one exchange (request head out, response head in) and the
//!   body taken off the connection by its framing ([`conn::Reader`]).
//! - [`relay`]: the relayed body with its stall timer, shared with the
//!   HTTPS client (`resolve::proxy`).
//! - [`headers`]: what a proxied request forwards each way, for both clients.
//!
//! A connection goes back to the pool only when its body ended exactly
//! where its framing said; any error, short body or early drop closes it,
//! and the client's response ends with an error (the client connection is
//! aborted, never given a short body as complete).

pub mod conn;
pub mod headers;
pub mod pool;
pub mod relay;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::SERVER;
use http::{HeaderMap, Response, StatusCode};
use tokio::sync::OwnedSemaphorePermit;

use conn::Reader;
pub use pool::Pool;
use relay::Relay;

use crate::body::{self, Body};
use crate::response::SERVER_NAME;
use crate::wire::response::HeadError;

/// How long an idle pooled connection is kept.
pub const IDLE: Duration = Duration::from_secs(30);

/// Idle connections kept per peer when `max_proxy_per_peer` is unlimited.
pub const DEFAULT_MAX_IDLE: usize = 256;

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
    /// No complete response head within `peer_response_timeout`.
    HeadTimeout,
    /// The response head is unusable.
    Head(HeadError),
}

impl Error {
    /// The peer took too long (connect or response head), rather than
    /// failing outright.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::ConnectTimeout | Error::HeadTimeout)
    }

    /// A reused connection failing like this was closed while idle: the
    /// request is sent again on a new connection.
    pub(crate) fn stale(&self) -> bool {
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
            Error::HeadTimeout => f.write_str("no response head within peer_response_timeout"),
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
    /// Limit for the response head (`peer_response_timeout`).
    pub head: Duration,
    /// Limit for every gap in the body (`peer_idle_timeout`).
    pub idle: Duration,
    /// Idle connections kept for the peer (`max_proxy_per_peer`, else
    /// [`DEFAULT_MAX_IDLE`]).
    pub max_idle: usize,
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
    /// The body is read from the connection as the client takes it,
    /// waiting at most `idle` between reads.
    Streaming {
        /// The body on its connection.
        reader: Box<Reader>,
        /// Where it comes from (named when it is aborted).
        peer: SocketAddr,
        /// `peer_idle_timeout`.
        idle: Duration,
    },
}

impl Answer {
    /// The client's response (as `resolve::proxy::relay` for HTTPS peers):
    /// status, relayed headers, our `Server`, the body. `permit` is released when the
    /// peer's body has been read whole (at once when it came with the head).
    pub fn relay(self, permit: Option<OwnedSemaphorePermit>) -> Response<Body> {
        let mut headers = headers::response_headers(&self.headers);
        headers.insert(SERVER, SERVER_NAME);
        let body = match self.body {
            Held::Whole(b) if b.is_empty() => body::empty(),
            Held::Whole(b) => body::full(b),
            Held::Streaming { reader, peer, idle } => {
                body::stream(Relay::new(*reader, peer, idle, permit))
            }
        };
        let mut r = Response::new(body);
        *r.status_mut() = self.status;
        *r.headers_mut() = headers;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_and_staleness() {
        let io = || io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(Error::ConnectTimeout.is_timeout());
        assert!(Error::HeadTimeout.is_timeout());
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
            assert!(!e.is_timeout(), "{e}");
        }
        assert!(Error::Send(io()).stale() && Error::Closed.stale() && Error::Reset(io()).stale());
        assert!(
            !Error::Read(io()).stale()
                && !Error::TruncatedHead.stale()
                && !Error::HeadTimeout.stale()
        );
    }
}
