//! The HTTP proxy to a peer (module-behaviour.md §8.2, with its
//! replacement notes): a pooled HTTP/1.1 keep-alive client, only the
//! headers that matter forwarded (Range, If-*, the anti-steal bypass
//! header; `Host` set to the peer), hop-by-hop headers stripped both ways,
//! the body streamed as it arrives, bounded by `connect_timeout` (connect),
//! `network_timeout` (response head, and every gap in the body). A body
//! that ends early or stalls ends the client's response with an error, so
//! the client connection is aborted: never a short 200.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, SERVER};
use http::{HeaderMap, Method, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use super::Failure;
use crate::body::{Body, BodyError};
use crate::response::SERVER_NAME;

/// How long an idle pooled connection to a peer is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Request headers passed to the peer (besides `Host` and the bypass header).
const FORWARDED: [HeaderName; 6] = [
    http::header::RANGE,
    http::header::IF_MATCH,
    http::header::IF_NONE_MATCH,
    http::header::IF_MODIFIED_SINCE,
    http::header::IF_UNMODIFIED_SINCE,
    http::header::IF_RANGE,
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) and `Proxy-Connection`.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The headers sent to the peer: the forwarded ones, the bypass header
/// (name only matters; every value is passed), and `Host`.
pub fn request_headers(
    client: &HeaderMap,
    bypass: Option<&HeaderName>,
    host: HeaderValue,
) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in FORWARDED.iter().chain(bypass) {
        for v in client.get_all(name) {
            out.append(name.clone(), v.clone());
        }
    }
    out.insert(HOST, host);
    out
}

/// The peer's response headers to relay: everything except hop-by-hop
/// headers (including those named in `Connection`), `Date` and `Server`
/// (ours are sent) and nginx internals (`X-Accel-*`, `X-Pad`), as the
/// module drops them.
pub fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    let named: Vec<String> = upstream
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, v) in upstream {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || named.iter().any(|t| t == n)
            || n == "date"
            || n == "server"
            || n == "x-pad"
            || n.starts_with("x-accel-")
        {
            continue;
        }
        out.append(name.clone(), v.clone());
    }
    out
}

/// `ip:port` as a URI authority (IPv6 in brackets).
pub fn authority(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

type PeerClient = Client<HttpConnector, Empty<Bytes>>;

/// The pooled client, rebuilt when `connect_timeout` changes on reload.
#[derive(Default)]
pub struct HttpProxy {
    client: Mutex<Option<(Duration, PeerClient)>>,
}

impl std::fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpProxy")
    }
}

/// What to ask a peer.
#[derive(Debug)]
pub struct Ask<'a> {
    /// HEAD instead of GET.
    pub head: bool,
    /// `<path>?<query>&redirect=1`.
    pub target: &'a str,
    /// The client's request headers.
    pub headers: &'a HeaderMap,
    /// The anti-steal bypass header's name, if configured.
    pub bypass: Option<&'a HeaderName>,
}

impl HttpProxy {
    fn client(&self, connect_timeout: Duration) -> PeerClient {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, c)) = slot.as_ref() {
            if *t == connect_timeout {
                return c.clone();
            }
        }
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(connect_timeout));
        conn.set_nodelay(true);
        let c = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(conn);
        *slot = Some((connect_timeout, c.clone()));
        c
    }

    /// Sends the request to `peer` and waits for the response head.
    pub async fn send(
        &self,
        peer: SocketAddr,
        ask: &Ask<'_>,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<Response<Incoming>, Failure> {
        let auth = authority(peer);
        let uri = format!("http://{auth}{}", ask.target);
        let host = HeaderValue::from_str(&auth).map_err(|_| Failure::Unreachable)?;
        let mut req = Request::new(Empty::<Bytes>::new());
        *req.method_mut() = if ask.head { Method::HEAD } else { Method::GET };
        *req.uri_mut() = uri.parse().map_err(|_| Failure::Unreachable)?;
        *req.headers_mut() = request_headers(ask.headers, ask.bypass, host);
        let fut = self.client(connect_timeout).request(req);
        // The connect has its own limit; the head must follow within network_timeout.
        match tokio::time::timeout(connect_timeout + network_timeout, fut).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                let f = if timed_out(&e) {
                    Failure::Timeout
                } else {
                    Failure::Unreachable
                };
                tracing::warn!("peer {auth}: {e} ({:?})", source_text(&e));
                Err(f)
            }
        }
    }
}

fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(err) = cur {
        parts.push(err.to_string());
        cur = err.source();
    }
    parts.join(": ")
}

/// The client's response from the peer's: status and relayed headers, our
/// `Server`, the body streamed with an idle limit; `permit` is released
/// when the body ends.
pub fn relay(
    upstream: Response<Incoming>,
    idle: Duration,
    permit: Option<OwnedSemaphorePermit>,
) -> Response<Body> {
    let (parts, body) = upstream.into_parts();
    let mut headers = response_headers(&parts.headers);
    headers.insert(SERVER, SERVER_NAME);
    let body = Relay {
        inner: body,
        idle,
        timer: Box::pin(tokio::time::sleep(idle)),
        _permit: permit,
    };
    let mut r = Response::new(BodyExt::boxed(body));
    *r.status_mut() = parts.status;
    *r.headers_mut() = headers;
    r
}

/// A peer's body with an idle limit between frames.
struct Relay {
    inner: Incoming,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// The peer stopped sending for longer than `network_timeout`.
#[derive(Debug)]
struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("peer body stalled longer than network_timeout")
    }
}

impl std::error::Error for Stalled {}

impl HttpBody for Relay {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::error!("aborting proxied response: peer body failed: {e}");
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::error!("aborting proxied response: {Stalled}");
                    Poll::Ready(Some(Err(Box::new(Stalled))))
                }
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

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwards_only_what_matters() {
        let client = map(&[
            ("Host", "client.example"),
            ("Connection", "keep-alive"),
            ("Range", "bytes=0-9"),
            ("If-None-Match", "\"a\""),
            ("If-None-Match", "\"b\""),
            ("If-Modified-Since", "Wed, 25 Nov 2026 10:22:57 GMT"),
            ("If-Unmodified-Since", "x"),
            ("If-Match", "*"),
            ("If-Range", "\"a\""),
            ("Cookie", "s=1"),
            ("X-Test", "fwd"),
            ("X-Bypass", "yes"),
            ("Authorization", "Basic x"),
        ]);
        let bypass = HeaderName::from_static("x-bypass");
        let h = request_headers(
            &client,
            Some(&bypass),
            HeaderValue::from_static("127.0.0.2:8888"),
        );
        assert_eq!(h.get(HOST).unwrap(), "127.0.0.2:8888");
        assert_eq!(h.get_all("if-none-match").iter().count(), 2);
        for n in [
            "range",
            "if-modified-since",
            "if-unmodified-since",
            "if-match",
            "if-range",
            "x-bypass",
        ] {
            assert!(h.contains_key(n), "{n}");
        }
        for n in ["connection", "cookie", "x-test", "authorization"] {
            assert!(!h.contains_key(n), "{n}");
        }
        assert_eq!(h.len(), 9);
        let h = request_headers(&client, None, HeaderValue::from_static("h"));
        assert!(!h.contains_key("x-bypass"));
    }

    #[test]
    fn strips_hop_by_hop_from_responses() {
        let up = map(&[
            ("Server", "nginx/1.26.3"),
            ("Date", "Wed, 25 Nov 2026 10:23:23 GMT"),
            ("Content-Type", "text/x-fake"),
            ("Content-Length", "11"),
            ("Content-Range", "bytes 0-10/11"),
            ("Connection", "keep-alive, X-Private"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("X-Private", "1"),
            ("X-Accel-Redirect", "/x"),
            ("X-Pad", "avoid browser bug"),
            ("Upgrade", "h2c"),
            ("Trailer", "x"),
            ("TE", "trailers"),
            ("Proxy-Authenticate", "x"),
            ("Set-Cookie", "a=b"),
            ("Set-Cookie", "c=d"),
            ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("ETag", "\"fake-etag\""),
            ("X-Custom", "hello"),
            ("Location", "http://127.0.0.9:8888/elsewhere"),
        ]);
        let h = response_headers(&up);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "content-length",
                "content-range",
                "set-cookie",
                "last-modified",
                "etag",
                "x-custom",
                "location"
            ]
        );
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
    }

    #[test]
    fn authorities() {
        assert_eq!(
            authority("127.0.0.2:8888".parse().unwrap()),
            "127.0.0.2:8888"
        );
        assert_eq!(
            authority("[2001:db8::1]:80".parse().unwrap()),
            "[2001:db8::1]:80"
        );
    }

    #[test]
    fn timeouts_are_found_in_the_chain() {
        let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "t");
        assert!(timed_out(&e));
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "r");
        assert!(!timed_out(&e));
    }
}
