//! The pooled client for HTTPS peers (docs/module-behaviour.md §8.2, with
//! its replacement notes; plain-HTTP peers are [`crate::client`]'s). The
//! headers forwarded each way are [`crate::client::headers`]'; the body
//! streams as it arrives, bounded by `connect_timeout` (connect),
//! `peer_response_timeout` (response head) and `peer_idle_timeout` (every
//! gap in the body). A body
//! that ends early or stalls ends the client's response with an error, so
//! the client connection is aborted: never a short 200.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, SERVER};
use http::Uri;
use http::{Method, Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::Failure;
use crate::body::Body;
use crate::client::headers::{authority, request_headers, response_headers, Ask};
use crate::client::relay::Relay;
use crate::response::SERVER_NAME;

/// How long an idle pooled connection to a peer is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// How peers are spoken to.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// Plain HTTP (`peer_scheme = http`).
    Http,
    /// HTTPS, trusting this client configuration (`peer_ca_file`).
    Https(&'a Arc<ClientConfig>),
}

impl Transport<'_> {
    fn scheme(&self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Https(_) => "https",
        }
    }

    fn tls(&self) -> Option<&Arc<ClientConfig>> {
        match self {
            Transport::Http => None,
            Transport::Https(c) => Some(c),
        }
    }
}

/// The server name a peer's certificate must carry: its IP address (an
/// IP-address SAN), or the host name when the authority is not an IP.
pub fn server_name(host: &str) -> Option<ServerName<'static>> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Some(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(bare.to_string()).ok(),
    }
}

/// Why a connection to a peer could not be set up.
#[derive(Debug)]
pub enum ConnectError {
    /// The TCP connect failed or timed out.
    Tcp(Box<dyn std::error::Error + Send + Sync>),
    /// An `https` URI without a TLS configuration.
    NoTls,
    /// The URI has no host usable as a TLS server name.
    ServerName,
    /// The TLS handshake failed (certificate not trusted, wrong name...).
    Handshake(io::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Tcp(e) => write!(f, "connect: {e}"),
            ConnectError::NoTls => f.write_str("https peer without a TLS client configuration"),
            ConnectError::ServerName => f.write_str("peer host is not a valid TLS server name"),
            ConnectError::Handshake(e) => write!(f, "TLS handshake: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Tcp(e) => Some(&**e),
            ConnectError::Handshake(e) => Some(e),
            ConnectError::NoTls | ConnectError::ServerName => None,
        }
    }
}

/// TCP connector that adds TLS for `https` URIs.
#[derive(Clone)]
pub struct PeerConnector {
    tcp: HttpConnector,
    tls: Option<TlsConnector>,
}

impl PeerConnector {
    /// A connector with this connect limit, TLS with `tls` when given.
    pub fn new(connect_timeout: Duration, tls: Option<Arc<ClientConfig>>) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        PeerConnector {
            tcp,
            tls: tls.map(TlsConnector::from),
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<PeerStream, ConnectError>> + Send>>;

impl tower_service::Service<Uri> for PeerConnector {
    type Response = PeerStream;
    type Error = ConnectError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        self.tcp
            .poll_ready(cx)
            .map_err(|e| ConnectError::Tcp(Box::new(e)))
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let https = dst.scheme() == Some(&http::uri::Scheme::HTTPS);
        let tls = self.tls.clone();
        let name = dst.host().and_then(server_name);
        let tcp = self.tcp.call(dst);
        Box::pin(async move {
            let tcp = tcp.await.map_err(|e| ConnectError::Tcp(Box::new(e)))?;
            if !https {
                return Ok(PeerStream::Plain(tcp));
            }
            let tls = tls.ok_or(ConnectError::NoTls)?;
            let name = name.ok_or(ConnectError::ServerName)?;
            let s = tls
                .connect(name, tcp.into_inner())
                .await
                .map_err(ConnectError::Handshake)?;
            Ok(PeerStream::Tls(Box::new(TokioIo::new(s))))
        })
    }
}

/// A connection to a peer, plain or TLS.
pub enum PeerStream {
    /// Plain TCP.
    Plain(TokioIo<TcpStream>),
    /// TLS over TCP.
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for PeerStream {
    fn connected(&self) -> Connected {
        match self {
            PeerStream::Plain(s) => s.connected(),
            PeerStream::Tls(s) => s.inner().get_ref().0.connected(),
        }
    }
}

impl Read for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl Write for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            PeerStream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerStream::Plain(s) => s.is_write_vectored(),
            PeerStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

type PeerClient = Client<PeerConnector, Empty<Bytes>>;

/// What the cached client was built for: the connect limit and the TLS
/// configuration (by identity: a reload that reads `peer_ca_file` builds a
/// new one).
struct Built {
    connect_timeout: Duration,
    tls: Option<Arc<ClientConfig>>,
    client: PeerClient,
}

impl Built {
    fn fits(&self, connect_timeout: Duration, tls: Option<&Arc<ClientConfig>>) -> bool {
        self.connect_timeout == connect_timeout
            && match (&self.tls, tls) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// The pooled client, rebuilt when `connect_timeout` or the peer TLS
/// configuration changes on reload.
#[derive(Default)]
pub struct HttpProxy {
    client: Mutex<Option<Built>>,
}

impl std::fmt::Debug for HttpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpProxy")
    }
}

impl HttpProxy {
    fn client(&self, connect_timeout: Duration, tls: Option<&Arc<ClientConfig>>) -> PeerClient {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = slot.as_ref().filter(|b| b.fits(connect_timeout, tls)) {
            return b.client.clone();
        }
        let conn = PeerConnector::new(connect_timeout, tls.cloned());
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(conn);
        *slot = Some(Built {
            connect_timeout,
            tls: tls.cloned(),
            client: client.clone(),
        });
        client
    }

    /// Sends the request to `peer` and waits for the response head.
    pub async fn send(
        &self,
        peer: SocketAddr,
        transport: Transport<'_>,
        ask: &Ask<'_>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Response<Incoming>, Failure> {
        let auth = Bytes::from(authority(peer));
        let host =
            HeaderValue::from_maybe_shared(auth.clone()).map_err(|_| Failure::Unreachable)?;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(match transport {
            Transport::Http => http::uri::Scheme::HTTP,
            Transport::Https(_) => http::uri::Scheme::HTTPS,
        });
        parts.authority =
            Some(http::uri::Authority::from_maybe_shared(auth).map_err(|_| Failure::Unreachable)?);
        parts.path_and_query = Some(
            http::uri::PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(
                ask.target.as_bytes(),
            ))
            .map_err(|_| Failure::Unreachable)?,
        );
        let mut req = Request::new(Empty::<Bytes>::new());
        *req.method_mut() = if ask.head { Method::HEAD } else { Method::GET };
        *req.uri_mut() = Uri::from_parts(parts).map_err(|_| Failure::Unreachable)?;
        *req.headers_mut() = request_headers(ask.headers, ask.bypass, host);
        let fut = self.client(connect_timeout, transport.tls()).request(req);
        // The connect has its own limit; the head must follow within
        // peer_response_timeout.
        match tokio::time::timeout(connect_timeout + response_timeout, fut).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                let f = if timed_out(&e) {
                    Failure::Timeout
                } else {
                    Failure::Unreachable
                };
                tracing::warn!(
                    "peer {}://{peer}: {e} ({})",
                    transport.scheme(),
                    source_text(&e)
                );
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
/// `Server`, the body relayed with an idle limit
/// ([`crate::client::relay::Relay`], the same as for plain peers);
/// `permit` is released when the body ends.
pub fn relay(
    upstream: Response<Incoming>,
    peer: SocketAddr,
    idle: Duration,
    permit: Option<OwnedSemaphorePermit>,
) -> Response<Body> {
    let (parts, body) = upstream.into_parts();
    let mut headers = response_headers(&parts.headers);
    headers.insert(SERVER, SERVER_NAME);
    let body = Relay::new(body, peer, idle, permit);
    let mut r = Response::new(crate::body::stream(body));
    *r.status_mut() = parts.status;
    *r.headers_mut() = headers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_peer_ips() {
        let ip = |s: &str| Some(ServerName::IpAddress(s.parse::<IpAddr>().unwrap().into()));
        assert_eq!(server_name("127.0.0.2"), ip("127.0.0.2"));
        assert_eq!(server_name("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(server_name("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(
            server_name("storage.example"),
            Some(ServerName::try_from("storage.example").unwrap())
        );
        assert_eq!(server_name(""), None);
        assert_eq!(server_name("bad name"), None);
        assert_eq!(server_name("[]"), None);
    }

    fn test_tls() -> Arc<ClientConfig> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = p.self_signed(&key).unwrap();
        Arc::new(crate::tls::client_config_from_pem(ca.pem().as_bytes()).unwrap())
    }

    #[test]
    fn transports() {
        let tls = test_tls();
        assert_eq!(Transport::Http.scheme(), "http");
        assert!(Transport::Http.tls().is_none());
        assert_eq!(Transport::Https(&tls).scheme(), "https");
        assert!(Arc::ptr_eq(Transport::Https(&tls).tls().unwrap(), &tls));
    }

    #[tokio::test]
    async fn client_is_rebuilt_when_timeout_or_tls_changes() {
        let (a, b) = (test_tls(), test_tls());
        let t = Duration::from_secs(1);
        let p = HttpProxy::default();
        let fits = |t: Duration, tls: Option<&Arc<ClientConfig>>| {
            let slot = p.client.lock().unwrap();
            slot.as_ref().is_some_and(|x| x.fits(t, tls))
        };
        assert!(!fits(t, None));
        p.client(t, None);
        assert!(fits(t, None));
        assert!(!fits(Duration::from_secs(2), None));
        assert!(!fits(t, Some(&a)));
        p.client(t, Some(&a));
        assert!(fits(t, Some(&a)));
        assert!(fits(t, Some(&a.clone())), "same configuration, same client");
        assert!(!fits(t, Some(&b)));
        assert!(!fits(t, None));
    }

    #[tokio::test]
    async fn https_without_tls_config_is_refused_before_any_byte() {
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let mut conn = PeerConnector::new(Duration::from_secs(2), None);
        let uri: Uri = format!("https://{addr}/x").parse().unwrap();
        let (r, accepted) = tokio::join!(tower_service::Service::call(&mut conn, uri), l.accept());
        assert!(matches!(r, Err(ConnectError::NoTls)));
        let mut buf = [0u8; 1];
        let n = accepted.unwrap().0.read(&mut buf).await.unwrap();
        assert_eq!(n, 0, "nothing was sent in plaintext");
    }

    #[tokio::test]
    async fn connect_errors_name_their_cause() {
        let tls = test_tls();
        let mut conn = PeerConnector::new(Duration::from_secs(2), Some(tls));
        // Port 1 on a test address: refused.
        let uri: Uri = "https://127.0.0.2:1/x".parse().unwrap();
        let e = tower_service::Service::call(&mut conn, uri)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, ConnectError::Tcp(_)), "{e}");
        assert!(e.to_string().starts_with("connect: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn timeouts_are_found_in_the_chain() {
        let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "t");
        assert!(timed_out(&e));
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "r");
        assert!(!timed_out(&e));
    }
}
