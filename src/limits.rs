//! Per-client limits (docs/config-keys.md, "limits and timeouts"): the
//! client address behind trusted proxies (`trusted_proxies`), the per-IP
//! request rate (`rate_limit_per_ip`, `rate_limit_burst`; GCRA through
//! `governor`, answered 429 with `Retry-After`), and the keep-alive idle
//! timeout (`keepalive_timeout`), which hyper 1 does not have for HTTP/1:
//! [`IdleIo`] ends a connection that stays idle between requests.
//!
//! `max_connections` is the accept semaphore in [`crate::transport`]; header
//! read timeout and header size are hyper's (`header_read_timeout`,
//! `max_buf_size`).

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;
use http::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::body::Body;
use crate::config::Cidr;
use crate::response;

/// The client address of a request: the connection's peer, or, when the
/// peer is a trusted proxy, the right-most `X-Forwarded-For` entry that is
/// not itself a trusted proxy (entries further left are client-supplied and
/// can be forged). Unparsable entries stop the walk at the last good one.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(s) = v.to_str() else {
            // Non-ASCII: nothing in this header or later ones is believed.
            return peer;
        };
        hops.extend(s.split(',').map(str::trim).filter(|h| !h.is_empty()));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` element: an IP, `[v6]`, `[v6]:port` or `v4:port`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inner, _) = rest.split_once(']')?;
        return inner.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    let (host, port) = s.rsplit_once(':')?;
    if port.bytes().all(|b| b.is_ascii_digit()) && !host.contains(':') {
        return host.parse::<IpAddr>().ok();
    }
    None
}

/// How many requests a client may send at once: the steady rate of one
/// request per `1/rate` seconds plus `burst` extra ones (nginx
/// `limit_req ... burst=N nodelay`).
pub fn bucket_size(burst: Option<u32>) -> NonZeroU32 {
    NonZeroU32::new(burst.unwrap_or(0).saturating_add(1)).unwrap_or(NonZeroU32::MIN)
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let s = wait.as_secs();
    let s = if wait.subsec_nanos() > 0 {
        s.saturating_add(1)
    } else {
        s
    };
    s.max(1)
}

/// Per-client-IP request rate limiter.
#[derive(Debug)]
pub struct RateLimiter {
    inner: governor::RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
    checks: AtomicU64,
    /// `(per_second, burst)`: a reload with the same quota keeps this
    /// limiter and its clients' buckets.
    quota: (u32, Option<u32>),
}

/// Checks between sweeps of idle clients from the limiter's table.
const SWEEP_EVERY: u64 = 4096;

impl RateLimiter {
    /// `per_second` requests per second per IP, `burst` extra at once;
    /// `None` when `per_second` is zero.
    pub fn new(per_second: u32, burst: Option<u32>) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let quota = Quota::per_second(rate).allow_burst(bucket_size(burst));
        Some(RateLimiter {
            inner: governor::RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
            quota: (per_second, burst),
        })
    }

    /// From the configuration; `None` = unlimited.
    pub fn from_config(cfg: &crate::config::Config) -> Option<Self> {
        let rate = cfg.rate_limit?;
        Self::new(rate.per_ip, rate.burst)
    }

    /// Whether `other` limits at the same rate and burst.
    pub fn same_quota(&self, other: &RateLimiter) -> bool {
        self.quota == other.quota
    }

    /// Admits one request from `ip`, or says how long until it would be.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.inner.retain_recent();
            self.inner.shrink_to_fit();
        }
        self.inner
            .check_key(&ip.to_canonical())
            .map_err(|not_until| not_until.wait_time_from(self.inner.clock().now()))
    }
}

/// 429 Too Many Requests with `Retry-After` in seconds.
pub fn too_many_requests(wait: Duration) -> Response<Body> {
    let mut r = response::error(StatusCode::TOO_MANY_REQUESTS);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(wait)));
    r
}

/// Requests in flight on one connection and when it last became idle;
/// shared by the connection's [`IdleIo`] and its requests.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    reader: Mutex<Option<Waker>>,
    idle_closed: AtomicBool,
}

impl Activity {
    /// A connection that is idle from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            reader: Mutex::new(None),
            idle_closed: AtomicBool::new(false),
        })
    }

    /// Marks a request in flight until the guard is dropped (after the last
    /// byte of its response body, or its abort).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Whether the connection was ended by the idle timeout.
    pub fn closed_idle(&self) -> bool {
        self.idle_closed.load(Ordering::Relaxed)
    }

    fn idle_since(&self) -> Instant {
        self.idle_since
            .lock()
            .map_or_else(|_| Instant::now(), |t| *t)
    }

    fn touch(&self) {
        if let Ok(mut t) = self.idle_since.lock() {
            *t = Instant::now();
        }
    }
}

/// A request in flight; see [`Activity::begin`].
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.touch();
            // The reader may be parked without an idle timer: wake it so it
            // arms one.
            if let Some(w) = a.reader.lock().ok().and_then(|mut w| w.take()) {
                w.wake();
            }
        }
    }
}

/// A connection's I/O that reports end-of-file once the connection has had
/// no request in flight for `timeout` (hyper then closes it cleanly).
/// Bytes received while idle restart the clock; a slow request head is
/// bounded by hyper's header read timeout instead.
#[derive(Debug)]
pub struct IdleIo<T> {
    io: T,
    activity: Arc<Activity>,
    timeout: Option<Duration>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl<T> IdleIo<T> {
    /// Wraps `io`; `timeout` of `None` never closes for idling.
    pub fn new(io: T, activity: Arc<Activity>, timeout: Option<Duration>) -> Self {
        let deadline = activity.idle_since() + timeout.unwrap_or(Duration::ZERO);
        IdleIo {
            io,
            activity,
            timeout,
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            expired: false,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(Ok(()));
        }
        let idle = this.activity.in_flight.load(Ordering::Acquire) == 0;
        if let (Some(t), true) = (this.timeout, idle) {
            // The deadline only ever moves later (idle_since grows), so the
            // timer is re-armed lazily when it fires early, not per request.
            while this.sleep.as_mut().poll(cx).is_ready() {
                let deadline = tokio::time::Instant::from_std(this.activity.idle_since() + t);
                if deadline <= this.sleep.deadline() {
                    this.expired = true;
                    this.activity.idle_closed.store(true, Ordering::Relaxed);
                    return Poll::Ready(Ok(()));
                }
                this.sleep.as_mut().reset(deadline);
            }
        }
        if let Ok(mut w) = this.activity.reader.lock() {
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if idle && matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(s: &[&str]) -> Vec<Cidr> {
        s.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let t = cidrs(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("192.0.2.1"), &xff(&["198.51.100.7"]), &t),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff(&["198.51.100.7"]), &[]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn trusted_peer_right_most_untrusted_hop() {
        let t = cidrs(&["10.0.0.0/8", "::1"]);
        let peer = ip("10.1.1.1");
        assert_eq!(
            client_ip(peer, &xff(&["198.51.100.7"]), &t),
            ip("198.51.100.7")
        );
        // A forged left-most entry is ignored.
        assert_eq!(
            client_ip(peer, &xff(&["1.2.3.4, 198.51.100.7, 10.2.2.2"]), &t),
            ip("198.51.100.7")
        );
        // Several headers form one list.
        assert_eq!(
            client_ip(peer, &xff(&["1.2.3.4", "198.51.100.7", "10.2.2.2"]), &t),
            ip("198.51.100.7")
        );
        // All hops trusted: the left-most one.
        assert_eq!(
            client_ip(peer, &xff(&["10.9.9.9, 10.2.2.2"]), &t),
            ip("10.9.9.9")
        );
        // No header: the peer.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &t), peer);
        assert_eq!(
            client_ip(ip("::1"), &xff(&["2001:db8::5"]), &t),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn garbage_stops_the_walk() {
        let t = cidrs(&["10.0.0.0/8"]);
        let peer = ip("10.1.1.1");
        assert_eq!(client_ip(peer, &xff(&["198.51.100.7, unknown"]), &t), peer);
        assert_eq!(
            client_ip(peer, &xff(&["unknown, 10.3.3.3"]), &t),
            ip("10.3.3.3")
        );
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.\xff").unwrap(),
        );
        assert_eq!(client_ip(peer, &h, &t), peer);
        assert_eq!(client_ip(peer, &xff(&[" , ,"]), &t), peer);
    }

    #[test]
    fn hop_forms() {
        assert_eq!(parse_hop("192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("192.0.2.1:5555"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("[2001:db8::1]:80"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_hop("::ffff:192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(parse_hop("unknown"), None);
        assert_eq!(parse_hop("_hidden"), None);
        assert_eq!(parse_hop("1.2.3.4:x"), None);
        assert_eq!(parse_hop("[::1"), None);
    }

    #[test]
    fn mapped_peer_matches_v4_ranges() {
        let t = cidrs(&["127.0.0.1"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &xff(&["192.0.2.9"]), &t),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn bucket_and_retry_after() {
        assert_eq!(bucket_size(None).get(), 1);
        assert_eq!(bucket_size(Some(50)).get(), 51);
        assert_eq!(bucket_size(Some(u32::MAX)).get(), u32::MAX);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(10)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn limiter_allows_burst_then_refuses_per_ip() {
        assert!(RateLimiter::new(0, None).is_none());
        let l = RateLimiter::new(1, Some(2)).unwrap();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        // Another client has its own bucket; a mapped address is the same client.
        assert!(l.check(ip("192.0.2.2")).is_ok());
        assert!(l.check(ip("::ffff:192.0.2.1")).is_err());
        let r = too_many_requests(wait);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
    }

    #[test]
    fn limiter_sweeps_without_losing_state() {
        let l = RateLimiter::new(1000, Some(10)).unwrap();
        for i in 0..(SWEEP_EVERY + 10) {
            let _ = l.check(IpAddr::from([10, 0, (i >> 8) as u8, i as u8]));
        }
    }

    #[tokio::test]
    async fn idle_io_ends_after_timeout_only_when_idle() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(64);
        let act = Activity::new();
        let mut io = IdleIo::new(a, act.clone(), Some(Duration::from_millis(100)));
        // A request in flight: no EOF even past the timeout.
        let guard = act.begin();
        let mut buf = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_millis(250), io.read(&mut buf)).await;
        assert!(r.is_err(), "must keep waiting while a request is in flight");
        b.write_all(b"x").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        drop(guard);
        let t0 = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(2), io.read(&mut buf))
            .await
            .expect("idle EOF")
            .unwrap();
        assert_eq!(n, 0);
        assert!(t0.elapsed() >= Duration::from_millis(80));
        assert!(act.closed_idle());
        // Stays closed.
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn idle_io_without_timeout_never_ends() {
        use tokio::io::AsyncReadExt;
        let (a, _b) = tokio::io::duplex(64);
        let act = Activity::new();
        let mut io = IdleIo::new(a, act.clone(), None);
        let mut buf = [0u8; 8];
        let r = tokio::time::timeout(Duration::from_millis(150), io.read(&mut buf)).await;
        assert!(r.is_err());
        assert!(!act.closed_idle());
    }

    #[tokio::test]
    async fn guard_drop_wakes_a_parked_reader() {
        use tokio::io::AsyncReadExt;
        let (a, _b) = tokio::io::duplex(64);
        let act = Activity::new();
        let guard = act.begin();
        let mut io = IdleIo::new(a, act.clone(), Some(Duration::from_millis(50)));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            io.read(&mut buf).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(guard);
        let n = tokio::time::timeout(Duration::from_secs(2), reader)
            .await
            .expect("woken and closed")
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
    }
}
