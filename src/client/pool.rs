//! Idle keep-alive connections to plain-HTTP peers (RFC 9112 §9.3), and
//! the request that uses them: a pooled connection that fails before any
//! response byte (closed by the peer while idle, §9.6) is retried once on
//! a new connection, GET and HEAD being idempotent (RFC 9110 §9.2.2).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http::header::HeaderValue;
use tokio::net::TcpStream;

use super::conn::{connect, exchange, Conn, Delimit, Exchanged, Reader};
use super::headers::{self, Ask};
use super::{Answer, Error, Held, Limits, IDLE};
use crate::wire::chunked::Chunked;
use crate::wire::request;
use crate::wire::response::Head;
use crate::wire::Framing;

/// An idle connection and when it was pooled.
struct Idle {
    tcp: TcpStream,
    since: Instant,
}

/// Idle keep-alive connections per peer and worker (a group's few
/// members, so a list), most recently pooled last. A connection is only
/// handed to the worker that pooled it ([`crate::worker`]): its socket is
/// registered with that worker's reactor.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<(Key, Vec<Idle>)>>,
}

/// A peer as seen from one worker.
type Key = (SocketAddr, usize);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool")
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Key, Vec<Idle>)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently pooled connection to `peer` on this worker;
    /// connections idle for [`IDLE`] or longer (to any peer) are closed on
    /// the way.
    pub(crate) fn checkout(&self, peer: SocketAddr, now: Instant) -> Option<TcpStream> {
        let peer = (peer, crate::worker::current());
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
    pub(crate) fn put(&self, peer: SocketAddr, tcp: TcpStream, max_idle: usize, now: Instant) {
        if max_idle == 0 {
            return;
        }
        let peer = (peer, crate::worker::current());
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

    /// Idle connections kept for `peer` (all workers).
    pub fn idle(&self, peer: SocketAddr) -> usize {
        self.lock()
            .iter()
            .filter(|((a, _), _)| *a == peer)
            .map(|(_, c)| c.len())
            .sum()
    }

    /// Asks `peer` over plain HTTP/1.1 and reads the response head.
    pub async fn get(
        self: &Arc<Self>,
        peer: SocketAddr,
        ask: &Ask<'_>,
        limits: Limits,
    ) -> Result<Answer, Error> {
        let host = HeaderValue::from_maybe_shared(Bytes::from(headers::authority(peer)))
            .map_err(|_| Error::Target)?;
        let fields = headers::request_headers(ask.headers, ask.bypass, host);
        let req = request::encode(ask.head, ask.target, &fields).map_err(|_| Error::Target)?;
        if let Some(tcp) = self.checkout(peer, Instant::now()) {
            match exchange(tcp, &req, ask.head, limits.head).await {
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
        let x = exchange(tcp, &req, ask.head, limits.head).await?;
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
            body: Held::Streaming {
                reader: Box::new(Reader::new(
                    Conn {
                        tcp,
                        peer,
                        pool: self.clone(),
                        max_idle: limits.max_idle,
                    },
                    buf,
                    delimit,
                    head.reusable,
                )),
                peer,
                idle: limits.idle,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
