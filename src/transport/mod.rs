//! Listeners and connections: accept with a connection cap and back-off on
//! errors (EMFILE), serve plain HTTP/1.1 on [`crate::h1`] and everything
//! else through hyper (h2 negotiated by ALPN on TLS listeners, h2c prior
//! knowledge on plain listeners when `http2_cleartext`), add and remove
//! listeners on reload, drain gracefully on shutdown. Issue 5 items 1–2.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::service::ConnInfo;
use crate::state::App;

pub mod workers;

pub use workers::Workers;

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Plain HTTP (`listen`): HTTP/1.1, and h2c when `http2_cleartext`.
    Http,
    /// HTTPS (`tls_listen`): HTTP/1.1 or HTTP/2 chosen by ALPN.
    Https,
}

impl Kind {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Https => "https",
        }
    }
}

/// A bound listening socket and the configured address it stands for
/// (with port 0 the bound port differs from the configured one).
#[derive(Debug)]
pub struct Listener {
    /// What it speaks.
    pub kind: Kind,
    /// Address as configured: the key reloads compare.
    pub addr: SocketAddr,
    /// The socket.
    pub tcp: TcpListener,
}

/// A change to a running server's listeners, sent by a reload.
#[derive(Debug)]
pub enum Change {
    /// Start accepting on a new listener.
    Add(Listener),
    /// Stop accepting on the listener configured as this address and close
    /// it; its open connections finish.
    Remove(SocketAddr),
    /// The listener at this address now speaks this kind.
    Retype(SocketAddr, Kind),
}

/// A listener that could not be bound.
#[derive(Debug)]
pub struct BindError {
    /// What it was for.
    pub kind: Kind,
    /// The configured address.
    pub addr: SocketAddr,
    /// Why.
    pub error: io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot listen ({}) on {}: {}",
            self.kind.as_str(),
            self.addr,
            self.error
        )
    }
}

impl std::error::Error for BindError {}

pub use crate::net::bind;

/// The listeners `config` asks for: `listen` as HTTP, `tls_listen` as HTTPS.
pub fn wanted(config: &Config) -> Vec<(Kind, SocketAddr)> {
    let plain = config.listen.iter().map(|a| (Kind::Http, *a));
    let tls = config.tls_listen().iter().map(|a| (Kind::Https, *a));
    plain.chain(tls).collect()
}

/// Binds every listener `config` asks for; the first failure is returned
/// (sockets already bound are closed).
pub fn bind_all(config: &Config) -> Result<Vec<Listener>, BindError> {
    wanted(config)
        .into_iter()
        .map(|(kind, addr)| match bind(addr) {
            Ok(tcp) => Ok(Listener { kind, addr, tcp }),
            Err(error) => Err(BindError { kind, addr, error }),
        })
        .collect()
}

/// Serves plain HTTP `listeners` until `shutdown` resolves, then stops
/// accepting and lets in-flight requests finish for up to `shutdown_grace`.
/// The listener set is fixed; see [`serve`] for one that reloads change.
pub async fn run(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut ls = Vec::with_capacity(listeners.len());
    for tcp in listeners {
        ls.push(Listener {
            kind: Kind::Http,
            addr: tcp.local_addr()?,
            tcp,
        });
    }
    let (_keep, changes) = mpsc::unbounded_channel();
    serve(ls, app, changes, shutdown).await
}

/// What every accept loop shares.
struct Shared {
    app: Arc<App>,
    graceful: GracefulShutdown,
    /// Caps open connections; a permit lives as long as its connection.
    permits: Arc<Semaphore>,
    /// A descriptor kept in reserve for shedding load when descriptors run out.
    reserve: Reserve,
    /// Turns true on graceful shutdown; plain HTTP/1.1 connections
    /// ([`crate::h1`]) hold a receiver, so its closing says they all ended.
    closing: watch::Sender<bool>,
    /// Wakes idle plain connections when shutdown begins.
    wake: Arc<tokio::sync::Notify>,
    /// Worker runtimes the connections are served on (else this one).
    workers: Option<Arc<Workers>>,
}

impl Shared {
    /// Serves `tcp` with `serve` on the next worker, or on this runtime.
    fn spawn<F, Fut>(&self, tcp: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match &self.workers {
            Some(w) => w.spawn(tcp, serve),
            None => {
                tokio::spawn(serve(tcp));
            }
        }
    }
}

/// One descriptor (`/dev/null`) held back so that, when `accept` fails with
/// EMFILE/ENFILE, it can be released to accept the waiting connection,
/// answer it 503 and close it, instead of leaving clients hanging in the
/// backlog until some descriptor frees up.
struct Reserve(std::sync::Mutex<Option<std::fs::File>>);

impl Reserve {
    fn new() -> Self {
        Reserve(std::sync::Mutex::new(Self::open()))
    }

    fn open() -> Option<std::fs::File> {
        std::fs::File::open("/dev/null").ok()
    }

    /// Releases the reserved descriptor; false when none was held.
    fn release(&self) -> bool {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.take().is_some()
    }

    /// Takes a descriptor back into reserve (if one can be had again).
    fn refill(&self) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Self::open();
        }
    }
}

/// Out of descriptors (process or system limit).
fn out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23) | Some(24)) // ENFILE, EMFILE
}

/// The answer to a connection shed for lack of descriptors: the shared
/// 503 with `Retry-After: 1`, encoded as the h1 path encodes every head
/// (`Connection: close`).
#[cold]
async fn shed_503() -> Vec<u8> {
    use http_body_util::BodyExt;
    let mut r = crate::response::error(http::StatusCode::SERVICE_UNAVAILABLE);
    r.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    let (mut parts, body) = r.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(256);
    let x = crate::wire::response::Exchange {
        head: false,
        http10: false,
        keep_alive: false,
    };
    crate::wire::response::encode(&mut out, &mut parts, Some(body.len() as u64), x);
    out.extend_from_slice(&body);
    out
}

/// Out of descriptors: frees the reserve, accepts one waiting connection,
/// answers it 503 (plain listeners; TLS ones are just closed) and closes
/// it, then takes the reserve back. Returns false when there was no
/// reserve to free (the caller backs off).
async fn shed(l: &TcpListener, kind: Kind, reserve: &Reserve) -> bool {
    if !reserve.release() {
        reserve.refill();
        return false;
    }
    if let Ok(Ok((tcp, _))) = tokio::time::timeout(Duration::from_millis(50), l.accept()).await {
        if kind == Kind::Http {
            let mut sink = [0u8; 4096];
            let _ = tcp.try_read(&mut sink);
            let _ = tcp.try_write(&shed_503().await);
        }
        drop(tcp);
    }
    reserve.refill();
    true
}

/// A running accept loop.
struct Accepting {
    kind: watch::Sender<Kind>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Serves `listeners`, applying [`Change`]s as they arrive, until
/// `shutdown` resolves; then stops accepting and drains like [`run`].
pub async fn serve(
    listeners: Vec<Listener>,
    app: Arc<App>,
    changes: mpsc::UnboundedReceiver<Change>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_and_tell(listeners, app, changes, None, || {}, shutdown).await
}

/// [`serve`] with connections served on `workers` when given, calling
/// `ready` once every listener (the admin one too) is bound and
/// accepting: the moment to tell systemd `READY=1`.
pub async fn serve_and_tell(
    listeners: Vec<Listener>,
    app: Arc<App>,
    mut changes: mpsc::UnboundedReceiver<Change>,
    workers: Option<Arc<Workers>>,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let cfg = app.state().config.clone();
    let admin = crate::admin::Admin::start(&app)?;
    crate::resolve::cluster::spawn_refresher(&app);
    crate::resolve::reach::spawn_prober(&app);
    let shared = Arc::new(Shared {
        app: app.clone(),
        graceful: GracefulShutdown::new(),
        permits: Arc::new(Semaphore::new(
            cfg.max_connections.unwrap_or(Semaphore::MAX_PERMITS),
        )),
        reserve: Reserve::new(),
        closing: watch::Sender::new(false),
        wake: Arc::new(tokio::sync::Notify::new()),
        workers,
    });
    let mut running: HashMap<SocketAddr, Accepting> = HashMap::new();
    let mut stopped: Vec<JoinHandle<()>> = Vec::new();
    for l in listeners {
        if let Some(old) = running.insert(l.addr, accept_loop(&shared, l)) {
            let _ = old.stop.send(true);
            stopped.push(old.task);
        }
    }
    ready();
    tokio::pin!(shutdown);
    let mut open = true;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            c = changes.recv(), if open => match c {
                Some(Change::Add(l)) => {
                    if let Some(old) = running.insert(l.addr, accept_loop(&shared, l)) {
                        let _ = old.stop.send(true);
                        stopped.push(old.task);
                    }
                }
                Some(Change::Remove(addr)) => {
                    if let Some(old) = running.remove(&addr) {
                        let _ = old.stop.send(true);
                        stopped.push(old.task);
                    }
                }
                Some(Change::Retype(addr, kind)) => {
                    if let Some(a) = running.get(&addr) {
                        a.kind.send_replace(kind);
                        tracing::info!("{addr} now serves {}", kind.as_str());
                    }
                }
                None => open = false,
            },
        }
    }
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    for a in running.values() {
        let _ = a.stop.send(true);
    }
    stopped.extend(running.into_values().map(|a| a.task));
    for t in stopped {
        let _ = t.await;
    }
    let grace = app.state().config.shutdown_grace;
    match Arc::try_unwrap(shared) {
        Ok(s) => {
            s.closing.send_replace(true);
            s.wake.notify_waiters();
            let drained = async {
                tokio::join!(s.graceful.shutdown(), s.closing.closed());
            };
            if tokio::time::timeout(grace, drained).await.is_err() {
                tracing::warn!(
                    "shutdown grace of {grace:?} elapsed; closing remaining connections"
                );
            }
        }
        Err(_) => tracing::warn!("connections still referenced at shutdown"),
    }
    drop(admin);
    Ok(())
}

/// Spawns the accept loop of one listener.
fn accept_loop(shared: &Arc<Shared>, l: Listener) -> Accepting {
    let (kind_tx, kind_rx) = watch::channel(l.kind);
    let (stop_tx, mut stop) = watch::channel(false);
    let shared = shared.clone();
    let task = tokio::spawn(async move {
        let Listener { addr, tcp: l, .. } = l;
        let local = l.local_addr().ok();
        tracing::info!(
            "listening ({}) on {}",
            kind_rx.borrow().as_str(),
            local.map_or(addr.to_string(), |a| a.to_string())
        );
        let mut shed_count: u64 = 0;
        loop {
            let permit = tokio::select! {
                p = shared.permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = stop.changed() => break,
            };
            let (tcp, peer) = tokio::select! {
                r = l.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        let kind = *kind_rx.borrow();
                        if out_of_fds(&e) && shed(&l, kind, &shared.reserve).await {
                            shed_count += 1;
                            if shed_count.is_power_of_two() {
                                tracing::error!("out of file descriptors: {shed_count} connections answered 503 so far");
                            }
                            continue;
                        }
                        // Other errors: back off instead of spinning.
                        tracing::error!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let _ = tcp.set_nodelay(true);
            let info = ConnInfo {
                local: tcp.local_addr().unwrap_or_else(|_| local.unwrap_or(peer)),
                peer,
            };
            let kind = *kind_rx.borrow();
            let watcher = shared.graceful.watcher();
            match kind {
                Kind::Http => serve_plain(&shared, watcher, tcp, info, permit),
                Kind::Https => serve_tls(&shared, watcher, tcp, info, permit),
            }
        }
        tracing::info!(
            "closed listener {}",
            local.map_or(addr.to_string(), |a| a.to_string())
        );
    });
    Accepting {
        kind: kind_tx,
        stop: stop_tx,
        task,
    }
}

/// Which HTTP versions a connection may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// HTTP/1.x only.
    Http1,
    /// HTTP/2 only (ALPN `h2`).
    Http2,
    /// Either, by the connection preface.
    Auto,
}

/// Serves a plain connection: HTTP/1.1 on [`crate::h1`]; what that path
/// hands off (h2c, request bodies, malformed input) continues on hyper.
fn serve_plain(
    shared: &Shared,
    watcher: Watcher,
    tcp: TcpStream,
    info: ConnInfo,
    permit: OwnedSemaphorePermit,
) {
    let app = shared.app.clone();
    let shutdown = crate::h1::Shutdown {
        flag: shared.closing.subscribe(),
        wake: shared.wake.clone(),
    };
    shared.spawn(tcp, move |tcp| async move {
        let _open = app.metrics.connection();
        match crate::h1::serve(&app, tcp, info, shutdown).await {
            crate::h1::Ended::Closed => {}
            crate::h1::Ended::Idle => app.metrics.idle_closed(),
            crate::h1::Ended::Handoff(tcp, read, why) => {
                tracing::trace!("connection from {}: {why:?}, continued on hyper", info.peer);
                let h2c = app.state().config.http2_cleartext;
                let proto = if h2c { Proto::Auto } else { Proto::Http1 };
                // The bytes already read go first, then the socket.
                let (r, w) = tcp.into_split();
                let io = tokio::io::join(std::io::Cursor::new(read).chain(r), w);
                hyper_connection(&app, watcher, io, info, proto).await;
            }
        }
        drop(permit);
    });
}

/// Completes the TLS handshake (bounded by `header_read_timeout`) with the
/// certificate current at accept time, then serves the ALPN-chosen version.
fn serve_tls(
    shared: &Shared,
    watcher: Watcher,
    tcp: TcpStream,
    info: ConnInfo,
    permit: OwnedSemaphorePermit,
) {
    let state = shared.app.state();
    let Some(tls) = state.tls.clone() else {
        tracing::error!(
            "TLS connection from {} dropped: no certificate loaded",
            info.peer
        );
        return;
    };
    let timeout = state.config.header_read_timeout;
    let app = shared.app.clone();
    shared.spawn(tcp, move |tcp| async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake with {}: {e}", info.peer);
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake with {}: timed out", info.peer);
                return;
            }
        };
        let proto = match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => Proto::Http2,
            Some(_) => Proto::Http1,
            None => Proto::Auto,
        };
        let _open = app.metrics.connection();
        if proto == Proto::Http2 {
            // hyper has no limit for the h2 connection preface: a client
            // that negotiated h2 and sends nothing is closed after
            // header_read_timeout, like a silent HTTP/1.1 client.
            let (mut r, w) = tokio::io::split(stream);
            let mut preface = [0u8; H2_PREFACE_LEN];
            match tokio::time::timeout(timeout, r.read_exact(&mut preface)).await {
                Ok(Ok(_)) => {
                    let io = tokio::io::join(std::io::Cursor::new(preface).chain(r), w);
                    hyper_connection(&app, watcher, io, info, proto).await;
                }
                Ok(Err(e)) => tracing::debug!("h2 preface from {}: {e}", info.peer),
                Err(_) => tracing::debug!(
                    "h2 connection from {}: no preface within header_read_timeout, closed",
                    info.peer
                ),
            }
        } else {
            hyper_connection(&app, watcher, stream, info, proto).await;
        }
        drop(permit);
    });
}

/// Length of the HTTP/2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE_LEN: usize = 24;

/// Serves HTTP on an established connection through hyper.
async fn hyper_connection<I>(app: &Arc<App>, watcher: Watcher, io: I, info: ConnInfo, proto: Proto)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = app.state().config.clone();
    // Tracks requests in flight so the keep-alive idle timeout only runs
    // between requests.
    let activity = crate::limits::Activity::new();
    let idle = (!cfg.keepalive_timeout.is_zero()).then_some(cfg.keepalive_timeout);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_buf_size(cfg.max_header_size.max(8192))
        .keep_alive(idle.is_some());
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(cfg.max_header_size).unwrap_or(u32::MAX));
    let builder = match proto {
        Proto::Http1 => builder.http1_only(),
        Proto::Http2 => builder.http2_only(),
        Proto::Auto => builder,
    };
    let svc = service(app.clone(), info, activity.clone());
    let io = crate::limits::IdleIo::new(io, activity.clone(), idle);
    let conn = builder.serve_connection(TokioIo::new(io), svc).into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection from {}: {e}", info.peer);
    }
    if activity.closed_idle() {
        app.metrics.idle_closed();
    }
}

/// The hyper service answering every request of one connection.
fn service(
    app: Arc<App>,
    info: ConnInfo,
    activity: Arc<crate::limits::Activity>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::body::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<
        Output = Result<http::Response<crate::body::Body>, std::convert::Infallible>,
    > + Send,
> + Clone
       + Send
       + 'static {
    service_fn(move |req| {
        let (app, act) = (app.clone(), activity.clone());
        async move {
            Ok::<_, std::convert::Infallible>(crate::service::serve(app, info, req, &act).await)
        }
    })
}
