//! The relayed body, once for both proxy clients: a peer's body (read
//! from a pooled plain connection, [`super::conn::Reader`], or hyper's
//! [`hyper::body::Incoming`] from an HTTPS peer) passed on to the client
//! with an idle limit between frames (`peer_idle_timeout`,
//! docs/module-behaviour.md §8.2). A body that fails or stalls ends the
//! client's response with an error, so the client connection is aborted:
//! never a short body sent as complete.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use crate::body::BodyError;
use crate::wire::chunked::ChunkError;

/// Why a relayed body ended early; the client's response is aborted.
#[derive(Debug)]
pub enum BodyFault {
    /// The peer closed the connection before the body's end.
    Truncated,
    /// The peer stopped sending for longer than `peer_idle_timeout`.
    Stalled,
    /// Reading from the peer failed.
    Read(io::Error),
    /// The chunked framing is malformed.
    Chunk(ChunkError),
}

impl fmt::Display for BodyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyFault::Truncated => f.write_str("peer closed the connection mid-body"),
            BodyFault::Stalled => f.write_str("peer body stalled longer than peer_idle_timeout"),
            BodyFault::Read(e) => write!(f, "reading the peer body: {e}"),
            BodyFault::Chunk(e) => write!(f, "peer body: {e}"),
        }
    }
}

impl std::error::Error for BodyFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyFault::Read(e) => Some(e),
            BodyFault::Chunk(e) => Some(e),
            BodyFault::Truncated | BodyFault::Stalled => None,
        }
    }
}

/// A peer's body on its way to the client.
pub struct Relay<B> {
    inner: B,
    /// Named in the log line when the body is aborted.
    peer: SocketAddr,
    /// Longest wait for the next frame (`peer_idle_timeout`).
    idle: Duration,
    /// Armed at the first `Pending` after a frame (most small bodies never
    /// wait, so no timer is registered for them).
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// The `max_proxy_per_peer` slot, held until the body ends or fails.
    permit: Option<OwnedSemaphorePermit>,
}

impl<B> fmt::Debug for Relay<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("peer", &self.peer)
            .field("idle", &self.idle)
            .finish()
    }
}

impl<B> Relay<B> {
    /// Relays `inner` from `peer`, waiting at most `idle` between frames;
    /// `permit` is released when the body ends.
    pub fn new(
        inner: B,
        peer: SocketAddr,
        idle: Duration,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        Relay {
            inner,
            peer,
            idle,
            timer: None,
            armed: false,
            permit,
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

    #[cold]
    fn abort(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.permit = None;
        tracing::error!("aborting proxied response: peer {}: {e}", self.peer);
        Poll::Ready(Some(Err(e)))
    }
}

impl<B> HttpBody for Relay<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                this.armed = false;
                if this.inner.is_end_stream() {
                    this.permit = None;
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(Some(Err(e))) => this.abort(e.into()),
            Poll::Ready(None) => {
                this.permit = None;
                Poll::Ready(None)
            }
            Poll::Pending => match this.stall_timer().poll(cx) {
                Poll::Ready(()) => this.abort(Box::new(BodyFault::Stalled)),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn frames_pass_and_a_stall_aborts() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BodyError>>(1);
        let inner = StreamBody::new(tokio_stream_shim(rx));
        let peer: SocketAddr = "127.0.0.9:80".parse().unwrap();
        let mut r = Relay::new(inner, peer, Duration::from_millis(50), None);
        tx.send(Ok(Frame::data(Bytes::from_static(b"ab"))))
            .await
            .unwrap();
        let f = r.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), "ab");
        // Nothing more within the idle limit: the body fails as stalled.
        let e = r.frame().await.unwrap().unwrap_err();
        assert_eq!(e.to_string(), BodyFault::Stalled.to_string());
        drop(tx);
    }

    /// An `mpsc::Receiver` as a `Stream` without tokio-stream.
    fn tokio_stream_shim<T>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Unpin {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
