//! One plain HTTP/1.1 connection: read a head, answer it through the
//! common request path ([`crate::service::answer`]), send the response,
//! repeat while the connection persists (RFC 9112 §9). Pipelined requests
//! are answered in order from the buffer.
//!
//! Timeouts follow nginx: the first request head must arrive within
//! `header_read_timeout` (and `keepalive_timeout`, when shorter) of the
//! accept; between requests the connection may idle for
//! `keepalive_timeout`; a head, once begun, must complete within
//! `header_read_timeout`. On graceful shutdown an idle connection closes
//! at once and a busy one after its current response.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};

use super::send;
use crate::service::ConnInfo;
use crate::state::App;
use crate::wire::request::{self, Handoff};
use crate::wire::response::{self, Exchange};

/// Initial read buffer (like nginx's 1 KiB `client_header_buffer_size`; a
/// request head is usually a few hundred bytes, a larger one grows it).
const READ: usize = 1024;

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
        let head = match request::take(&mut buf) {
            Ok(Some(h)) => h,
            Ok(None) if buf.len() >= max_head => {
                return Ended::Handoff(tcp, buf.freeze(), Handoff::TooLarge)
            }
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
            Err(why) => return Ended::Handoff(tcp, buf.freeze(), why),
        };
        let x = Exchange {
            head: head.request.method() == http::Method::HEAD,
            http10: head.request.version() == http::Version::HTTP_10,
            keep_alive: head.keep_alive && keepalive.is_some() && !*closing.borrow(),
        };
        let (resp, mut finish) =
            crate::service::answer(app.clone(), info, head.request, None).await;
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
            return Ended::Closed;
        }
        bufs.out.clear();
        head_started = false;
        // Between requests: idle for at most keepalive_timeout.
        deadline = Instant::now() + keepalive.unwrap_or(Duration::ZERO);
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
