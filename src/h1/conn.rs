//! One plain HTTP/1.1 connection: read a head, answer it through the
//! common request path ([`crate::service::answer`]), send the response,
//! repeat while the connection persists (RFC 9112 §9). Pipelined requests
//! are answered in order from the buffer. A request of the upload API
//! with a `Content-Length` body is answered here too, its body handed to
//! the handler as a [`SocketBody`]; every other body goes to hyper.
//!
//! Timeouts follow nginx: the first request head must arrive within
//! `header_read_timeout` (and `keepalive_timeout`, when shorter) of the
//! accept; between requests the connection may idle for
//! `keepalive_timeout`; a head, once begun, must complete within
//! `header_read_timeout`. On graceful shutdown an idle connection closes
//! at once and a busy one after its current response.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};

use super::send;
use crate::service::ConnInfo;
use crate::socket_body::SocketBody;
use crate::state::App;
use crate::wire::request::{self, Handoff};
use crate::wire::response::{self, Exchange};

/// Initial read buffer (like nginx's 1 KiB `client_header_buffer_size`; a
/// request head is usually a few hundred bytes, a larger one grows it).
const READ: usize = 1024;
/// Longest wait for a client to stop sending an unread body.
const LINGER: Duration = Duration::from_secs(5);

/// How a connection ended.
#[derive(Debug)]
pub enum Ended {
    /// Closed (by either side, or after an error).
    Closed,
    /// Closed by the keep-alive idle timeout.
    Idle,
    /// A request this path leaves to hyper: serve the rest of the
    /// connection there, starting with these bytes.
    Handoff(TcpStream, Bytes, Handoff),
}

/// What ends a wait for bytes.
enum Wait {
    Data,
    Eof,
    Timeout,
    Closing,
}

/// Graceful shutdown as a connection sees it.
#[derive(Debug)]
pub struct Shutdown {
    /// Turns true when shutdown begins; the server counts live receivers
    /// to know when every connection has ended.
    pub flag: watch::Receiver<bool>,
    /// Notified (all waiters) when shutdown begins.
    pub wake: Arc<Notify>,
}

/// Serves `tcp` until it closes or a request must go to hyper.
pub async fn serve(app: &Arc<App>, tcp: TcpStream, info: ConnInfo, shutdown: Shutdown) -> Ended {
    let Shutdown {
        flag: closing,
        wake,
    } = shutdown;
    // Registered once for the connection's life (not per wait), then the
    // flag is checked, so a shutdown that began before is not missed.
    let notified = wake.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let cfg = app.state().config.clone();
    let keepalive = (!cfg.keepalive_timeout.is_zero()).then_some(cfg.keepalive_timeout);
    let head_timeout = cfg.header_read_timeout;
    let max_head = cfg.max_header_size.max(8192);
    let reads = cfg.read_strategy;
    drop(cfg);
    let drained_is_final = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    // Shared with a request's body while the handler reads it.
    let tcp = Arc::new(tcp);
    let mut buf = BytesMut::with_capacity(READ);
    let mut bufs = send::Buffers::default();
    bufs.out.reserve(512);
    // When the connection gives up waiting: for the first head, the
    // shorter of both timeouts.
    let mut deadline = Instant::now() + keepalive.map_or(head_timeout, |k| k.min(head_timeout));
    let mut head_started = false;
    let timer = sleep_until(deadline);
    tokio::pin!(timer);
    loop {
        let keep_body =
            |h: &request::Head| crate::upload::is_api_path(&app.state(), h.request.uri().path());
        let head = match request::take_if(&mut buf, keep_body) {
            Ok(Some(h)) => h,
            Ok(None) if buf.len() >= max_head => return handoff(tcp, buf, Handoff::TooLarge),
            Ok(None) => {
                if !buf.is_empty() && !head_started {
                    head_started = true;
                    deadline = deadline.min(Instant::now() + head_timeout);
                }
                if buf.capacity() - buf.len() < READ / 4 {
                    buf.reserve(READ);
                }
                let spare = buf.capacity() - buf.len();
                match tcp.try_read_buf(&mut buf) {
                    Ok(0) => return Ended::Closed,
                    Ok(n) => {
                        if n < spare && drained_is_final {
                            forget_readable(&tcp);
                        }
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!("connection from {}: {e}", info.peer);
                        return Ended::Closed;
                    }
                }
                let idle = buf.is_empty();
                match wait(
                    &tcp,
                    timer.as_mut(),
                    deadline,
                    &closing,
                    notified.as_mut(),
                    idle,
                )
                .await
                {
                    Wait::Data => continue,
                    Wait::Eof => return Ended::Closed,
                    Wait::Closing => return Ended::Closed,
                    Wait::Timeout if idle => return Ended::Idle,
                    Wait::Timeout => {
                        tracing::debug!("connection from {}: request head timed out", info.peer);
                        return Ended::Closed;
                    }
                }
            }
            Err(why) => return handoff(tcp, buf, why),
        };
        let method_head = head.request.method() == http::Method::HEAD;
        let http10 = head.request.version() == http::Version::HTTP_10;
        let (resp, mut finish, body_done) = if head.body == 0 {
            let (r, f) = crate::service::answer(app.clone(), info, head.request, None).await;
            (r, f, true)
        } else {
            // The body's first bytes came with the head; the rest is read
            // (or spliced) from the socket by whoever answers.
            let pre = buf
                .split_to(usize::try_from(head.body).map_or(buf.len(), |b| b.min(buf.len())))
                .freeze();
            let expect = head
                .request
                .headers()
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            let (body, done) = SocketBody::new(tcp.clone(), pre, head.body, expect);
            let req = head.request.map(|()| body);
            let (r, f) = crate::service::answer(app.clone(), info, req, None).await;
            (r, f, done.load(Ordering::Acquire))
        };
        // A body left unread leaves the connection unusable.
        let x = Exchange {
            head: method_head,
            http10,
            keep_alive: head.keep_alive && body_done && keepalive.is_some() && !*closing.borrow(),
        };
        let (mut parts, body) = resp.into_parts();
        let len = http_body::Body::size_hint(&body).exact();
        let (framing, close) = response::encode(&mut bufs.out, &mut parts, len, x);
        let pace = parts.extensions.get::<crate::pace::RateSpec>().copied();
        drop(parts);
        match send::response(&tcp, &mut bufs, body, framing, reads, pace).await {
            Ok(n) => finish.add_bytes(n),
            Err(e) => {
                match e {
                    send::SendError::Socket(ref e) => {
                        tracing::debug!("connection from {}: {e}", info.peer)
                    }
                    ref e => tracing::error!("aborting response to {}: {e}", info.peer),
                }
                return Ended::Closed;
            }
        }
        drop(finish);
        if !x.keep_alive || close {
            let _ = rustix::net::shutdown(&tcp, rustix::net::Shutdown::Write);
            if !body_done {
                linger(&tcp).await;
            }
            return Ended::Closed;
        }
        bufs.out.clear();
        head_started = false;
        // Between requests: idle for at most keepalive_timeout.
        deadline = Instant::now() + keepalive.unwrap_or(Duration::ZERO);
    }
}

/// After answering a request whose body was left unread: reads and drops
/// what the client still sends, for at most [`LINGER`] (1 s without data
/// ends it), so closing does not reset the connection before the client
/// read the answer (nginx's `lingering_close`).
async fn linger(tcp: &TcpStream) {
    let end = Instant::now() + LINGER;
    let mut scratch = vec![0u8; 64 * 1024];
    while let Ok(Ok(())) = tokio::time::timeout(
        Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
        tcp.readable(),
    )
    .await
    {
        match tcp.try_read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        if Instant::now() >= end {
            return;
        }
    }
}

/// Hands the connection to hyper with what was read; the socket is no
/// longer shared once a request's body is gone.
fn handoff(tcp: Arc<TcpStream>, buf: BytesMut, why: Handoff) -> Ended {
    match Arc::try_unwrap(tcp) {
        Ok(tcp) => Ended::Handoff(tcp, buf.freeze(), why),
        Err(_) => Ended::Closed,
    }
}

/// A read that did not fill the buffer drained the socket: clear tokio's
/// readiness now, so the next read waits for epoll instead of costing a
/// `recv` that fails with EAGAIN (nginx does the same with its `ready`
/// flag). Only on a current-thread runtime: there the I/O driver cannot
/// run between the read and this clear, so a later arrival is still
/// reported by its own (edge-triggered) event.
fn forget_readable(tcp: &TcpStream) {
    let _ = tcp.try_io(tokio::io::Interest::READABLE, || {
        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
    });
}

/// Waits until `tcp` is readable, the deadline passes, or (when `idle`)
/// shutdown begins. The timer is re-armed only when the deadline moved
/// earlier or it fired before a later deadline, not per request.
async fn wait(
    tcp: &TcpStream,
    mut timer: std::pin::Pin<&mut tokio::time::Sleep>,
    deadline: Instant,
    closing: &watch::Receiver<bool>,
    mut notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    idle: bool,
) -> Wait {
    if idle && *closing.borrow() {
        return Wait::Closing;
    }
    if deadline < timer.deadline() {
        timer.as_mut().reset(deadline);
    }
    loop {
        tokio::select! {
            biased;
            r = tcp.readable() => return if r.is_ok() { Wait::Data } else { Wait::Eof },
            () = timer.as_mut() => {
                if Instant::now() >= deadline {
                    return Wait::Timeout;
                }
                timer.as_mut().reset(deadline);
            }
            () = notified.as_mut(), if idle => return Wait::Closing,
        }
    }
}
