//! Listeners and connections: accept with a connection cap and back-off on
//! errors (EMFILE), serve HTTP/1.1 (and h2c when enabled) through hyper,
//! drain gracefully on shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::handler::ConnInfo;
use crate::state::App;

/// Binds a listening socket like nginx does (`SO_REUSEADDR`, backlog 1024).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

/// Serves `listeners` until `shutdown` resolves, then stops accepting and
/// lets in-flight requests finish for up to `shutdown_grace`.
pub async fn run(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let cfg = app.state().config.clone();
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let ops = crate::admin::Ops::start(&app)?;
    // Caps open connections; a permit lives as long as its connection.
    let permits = Arc::new(Semaphore::new(
        cfg.max_connections.unwrap_or(Semaphore::MAX_PERMITS),
    ));
    let mut accept_tasks = Vec::new();
    for l in listeners {
        let app = app.clone();
        let graceful = graceful.clone();
        let permits = permits.clone();
        let mut stop = stop_rx.clone();
        accept_tasks.push(tokio::spawn(async move {
            let local = l.local_addr().ok();
            tracing::info!(
                "listening on {}",
                local.map_or("?".into(), |a| a.to_string())
            );
            loop {
                let permit = tokio::select! {
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    _ = stop.changed() => break,
                };
                let (tcp, peer) = tokio::select! {
                    r = l.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            // EMFILE/ENFILE and friends: back off instead of spinning.
                            tracing::error!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = stop.changed() => break,
                };
                let _ = tcp.set_nodelay(true);
                let conn_info = ConnInfo {
                    local: tcp.local_addr().unwrap_or_else(|_| local.unwrap_or(peer)),
                    peer,
                };
                serve_connection(&app, &graceful, tcp, conn_info, permit);
            }
        }));
    }
    shutdown.await;
    ops.stopping();
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let _ = stop_tx.send(true);
    for t in accept_tasks {
        let _ = t.await;
    }
    let grace = app.state().config.shutdown_grace;
    match Arc::try_unwrap(graceful) {
        Ok(g) => {
            if tokio::time::timeout(grace, g.shutdown()).await.is_err() {
                tracing::warn!(
                    "shutdown grace of {grace:?} elapsed; closing remaining connections"
                );
            }
        }
        Err(_) => tracing::warn!("connections still referenced at shutdown"),
    }
    Ok(())
}

fn serve_connection(
    app: &Arc<App>,
    graceful: &GracefulShutdown,
    tcp: tokio::net::TcpStream,
    info: ConnInfo,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let cfg = app.state().config.clone();
    let activity = crate::limits::Activity::new();
    let idle = (!cfg.keepalive_timeout.is_zero()).then_some(cfg.keepalive_timeout);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_buf_size(cfg.max_header_size.max(8192))
        .keep_alive(idle.is_some());
    let builder = if cfg.http2_cleartext {
        builder
    } else {
        builder.http1_only()
    };
    let (app, app_svc, act) = (app.clone(), app.clone(), activity.clone());
    let svc = service_fn(move |req| {
        let (app, act) = (app_svc.clone(), act.clone());
        async move {
            Ok::<_, std::convert::Infallible>(crate::access_log::serve(app, info, req, &act).await)
        }
    });
    let io = crate::limits::IdleIo::new(tcp, activity.clone(), idle);
    let conn = builder.serve_connection(TokioIo::new(io), svc).into_owned();
    let fut = graceful.watch(conn);
    tokio::spawn(async move {
        let _open = app.metrics.connection();
        if let Err(e) = fut.await {
            tracing::debug!("connection from {}: {e}", info.peer);
        }
        if activity.closed_idle() {
            app.metrics.idle_closed();
        }
        drop(permit);
    });
}
