//! The admin listener (`admin_listen`, docs/config-keys.md), separate from
//! the public one so health checks and scrapes never compete with, or are
//! exposed to, clients:
//!
//! | path | answer |
//! |---|---|
//! | `/live` | 200 while the process serves |
//! | `/ready` | 200 when the config is loaded and every store path's `data` directory is readable, else 503 with the reasons |
//! | `/metrics` | Prometheus text format ([`crate::metrics`]) |
//! | `/status` | JSON (`Accept: application/json`, or no `text/html`): version, uptime, decoded config summary, known peers, the tracker's view (`tracker`: parameters and storage IDs when loaded from it, the effective values, each group's storages with their state; `cluster`: the hosted groups' storages as `fdfs_monitor` shows them), this node's reach of its peers, the last lag events, upload counts (`uploads`, `null` when the API is off); HTML ([`crate::status::page`]) to a browser |

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, SERVER};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::access_log::push_json_str;
use crate::body::{self, Body};
use crate::config::{AccessLog, Config, ResponseMode};
use crate::resolve::reach::PortProbe;
use crate::response::{self, SERVER_NAME};
use crate::state::{App, State};
use crate::status::{EventRow, GroupReport, PeerRow, PortView, Report, StorageRow, TrackerInfo};

/// The admin listener of a running server. Started by
/// [`crate::transport::run`] once the listeners are bound; dropping it stops
/// the listener.
#[derive(Debug)]
pub struct Admin {
    /// The serving task, `None` without `admin_listen`.
    task: Option<JoinHandle<()>>,
}

impl Admin {
    /// Binds `admin_listen` (when configured) and serves it.
    pub fn start(app: &Arc<App>) -> io::Result<Self> {
        Ok(Admin { task: spawn(app)? })
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        if let Some(a) = &self.task {
            a.abort();
        }
    }
}

/// Binds `admin_listen` when configured and serves it in a task until the
/// handle is aborted.
pub fn spawn(app: &Arc<App>) -> io::Result<Option<JoinHandle<()>>> {
    let Some(addr) = app.state().config.admin_listen else {
        return Ok(None);
    };
    let listener = crate::net::bind(addr).map_err(|e| {
        tracing::error!("cannot listen on admin_listen {addr}: {e}");
        e
    })?;
    tracing::info!("admin listening on {addr}");
    Ok(Some(tokio::spawn(serve(listener, app.clone()))))
}

/// Accepts admin connections on `listener` forever.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("admin accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(route(&app, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), svc);
            if let Err(e) = conn.await {
                tracing::debug!("admin connection: {e}");
            }
        });
    }
}

/// Answers one admin request.
pub fn route<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return response::method_not_allowed(),
    };
    let state = app.state();
    let r = match req.uri().path() {
        "/live" => text(StatusCode::OK, "ok\n".into(), "text/plain; charset=utf-8"),
        "/ready" => match ready(&state) {
            Ok(()) => text(
                StatusCode::OK,
                "ready\n".into(),
                "text/plain; charset=utf-8",
            ),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                why.iter().fold(String::new(), |mut s, w| {
                    let _ = writeln!(s, "{w}");
                    s
                }),
                "text/plain; charset=utf-8",
            ),
        },
        "/metrics" => {
            let mut m = app
                .metrics
                .render((app.files.hits(), app.files.misses(), app.files.len()));
            if state.config.upload.is_some() {
                app.uploads.render(&mut m);
            }
            text(
                StatusCode::OK,
                m,
                "text/plain; version=0.0.4; charset=utf-8",
            )
        }
        "/status" if wants_html(req.headers()) => {
            let mut r = text(
                StatusCode::OK,
                crate::status::page::render(&report(app, &state)),
                "text/html; charset=utf-8",
            );
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
            r.headers_mut()
                .insert(http::header::VARY, HeaderValue::from_static("Accept"));
            r
        }
        "/status" => {
            let mut r = text(StatusCode::OK, status_json(app, &state), "application/json");
            r.headers_mut()
                .insert(http::header::VARY, HeaderValue::from_static("Accept"));
            r
        }
        _ => response::error(StatusCode::NOT_FOUND),
    };
    response::strip_body_for_head(head, r)
}

/// A browser asks for HTML; `application/json` anywhere in `Accept` (or no
/// `text/html`) gets the JSON, as before the page existed.
pub fn wants_html(h: &http::HeaderMap) -> bool {
    let accept = h
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    accept.contains("text/html") && !accept.contains("application/json")
}

/// Gathers the status page's data: the tracker view of the hosted groups,
/// the probes, breakers and counters of every peer, the last lag events.
pub fn report(app: &App, state: &State) -> Report {
    let c = &state.config;
    let view = app.lag.cluster.view();
    let now = crate::clock::unix_now();
    let max_delay = view.effective(c).max_delay;
    let groups = c
        .groups
        .iter()
        .map(|g| {
            let list = view.storages.get(&g.name).map(Vec::as_slice).unwrap_or(&[]);
            GroupReport {
                name: g.name.clone(),
                stat: view.group_stats.iter().find(|s| s.name == g.name).cloned(),
                storages: list
                    .iter()
                    .map(|s| {
                        let me = s.ip.parse().is_ok_and(|ip| state.is_local(ip));
                        StorageRow::new(s, list, now, max_delay, me)
                    })
                    .collect(),
            }
        })
        .collect();
    let port = |p: &Option<PortProbe>| {
        p.as_ref().map(|p| PortView {
            port: p.port,
            at: p.at,
            rtt: p.rtt,
            error: p.error.clone(),
        })
    };
    let peers = app
        .lag
        .reach
        .snapshot()
        .iter()
        .map(|r| {
            let counts = app.lag.events.counts(r.ip);
            PeerRow {
                ip: r.ip,
                http: port(&r.http),
                storage: port(&r.storage),
                breaker: if app.lag.peers.allows(r.ip) {
                    "closed"
                } else {
                    "open"
                },
                proxied: counts.proxied,
                redirected: counts.redirected,
                failed: counts.failed,
            }
        })
        .collect();
    let events = app
        .lag
        .events
        .recent()
        .into_iter()
        .map(|e| EventRow {
            at: e.at,
            file_id: e.file_id,
            outcome: e.outcome,
            peer: e.peer,
            status: e.status,
        })
        .collect();
    Report {
        now,
        version: env!("CARGO_PKG_VERSION").into(),
        node: state.local_ips.clone(),
        max_delay,
        tracker: TrackerInfo {
            servers: c
                .tracker_servers
                .iter()
                .map(|t| format!("{}:{}", t.host, t.port))
                .collect(),
            refreshed_at: view.refreshed_at,
            last_error: view.last_error.clone(),
        },
        groups,
        peers,
        events,
    }
}

fn text(status: StatusCode, body: String, ct: &'static str) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(body::full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(SERVER, SERVER_NAME);
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// Readiness: every store path's `data` directory can be listed.
pub fn ready(state: &State) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for g in &state.config.groups {
        for (i, sp) in g.store_paths.iter().enumerate() {
            let data = sp.join("data");
            if let Err(e) = std::fs::read_dir(&data) {
                problems.push(format!("{} store_path{i} {}: {e}", g.name, data.display()));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// State of one known peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Peer address.
    pub addr: IpAddr,
    /// Health as known: `unknown` until a peer health table exists.
    pub state: &'static str,
    /// Successful fetches from it (proxy mode).
    pub upstream_ok: u64,
    /// Failed fetches from it.
    pub upstream_failed: u64,
}

/// The peers `/status` reports: the configured `peer_ip_addrs`, their
/// circuit-breaker state and the upstream counters.
pub fn known_peers(app: &App, cfg: &Config) -> Vec<PeerStatus> {
    cfg.peer_ip_addrs
        .iter()
        .map(|&addr| {
            let (ok, failed) = app.metrics.upstream_counts(addr);
            PeerStatus {
                addr,
                state: if app.lag.peers.allows(addr) {
                    "up"
                } else {
                    "circuit_open"
                },
                upstream_ok: ok,
                upstream_failed: failed,
            }
        })
        .collect()
}

fn json_list<T: std::fmt::Display>(out: &mut String, items: impl IntoIterator<Item = T>) {
    out.push('[');
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, it.to_string().as_bytes());
    }
    out.push(']');
}

fn json_opt<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("null"),
    }
}

/// The `/status` document.
pub fn status_json(app: &App, state: &State) -> String {
    let c = &state.config;
    let mut o = String::with_capacity(1024);
    o.push_str("{\"version\":");
    push_json_str(&mut o, env!("CARGO_PKG_VERSION").as_bytes());
    let _ = write!(
        o,
        ",\"pid\":{},\"uptime_seconds\":{},\"open_connections\":{},\"config\":{{\"listen\":",
        std::process::id(),
        app.metrics.uptime().as_secs(),
        app.metrics.open_connections()
    );
    json_list(&mut o, &c.listen);
    o.push_str(",\"tls_listen\":");
    json_list(&mut o, c.tls_listen());
    o.push_str(",\"admin_listen\":");
    match c.admin_listen {
        Some(a) => push_json_str(&mut o, a.to_string().as_bytes()),
        None => o.push_str("null"),
    }
    let _ = write!(
        o,
        ",\"response_mode\":\"{}\",\"url_have_group_name\":{},\"storage_sync_file_max_delay\":{},\"use_storage_id\":{},\"anti_steal\":{},\"groups\":[",
        match c.response_mode {
            ResponseMode::Proxy => "proxy",
            ResponseMode::Redirect => "redirect",
        },
        c.url_have_group_name,
        c.storage_sync_file_max_delay,
        c.use_storage_id,
        c.anti_steal.is_some(),
    );
    for (i, g) in c.groups.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str("{\"name\":");
        push_json_str(&mut o, g.name.as_bytes());
        o.push_str(",\"store_paths\":");
        json_list(&mut o, g.store_paths.iter().map(|p| p.display()));
        let _ = write!(o, ",\"anti_steal\":{}}}", g.anti_steal.is_some());
    }
    o.push_str("],\"local_ips\":");
    json_list(&mut o, &state.local_ips);
    o.push_str(",\"limits\":{\"rate_limit_per_ip\":");
    json_opt(&mut o, c.rate_limit_per_ip());
    o.push_str(",\"rate_limit_burst\":");
    json_opt(&mut o, c.rate_limit_burst());
    o.push_str(",\"max_connections\":");
    json_opt(&mut o, c.max_connections);
    o.push_str(",\"max_proxy_per_peer\":");
    json_opt(&mut o, c.max_proxy_per_peer);
    let _ = write!(
        o,
        ",\"header_read_timeout\":{},\"max_header_size\":{},\"keepalive_timeout\":{},\"shutdown_grace\":{}}},\"trusted_proxies\":",
        c.header_read_timeout.as_secs_f64(),
        c.max_header_size,
        c.keepalive_timeout.as_secs_f64(),
        c.shutdown_grace.as_secs_f64(),
    );
    json_list(&mut o, &c.trusted_proxies);
    o.push_str(",\"access_log\":");
    let al = match &c.access_log {
        AccessLog::Off => "off".to_owned(),
        AccessLog::Stderr => "stderr".to_owned(),
        AccessLog::File(p) => p.display().to_string(),
    };
    push_json_str(&mut o, al.as_bytes());
    o.push_str("},\"peers\":[");
    for (i, p) in known_peers(app, c).iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"addr\":\"{}\",\"state\":\"{}\",\"upstream_ok\":{},\"upstream_failed\":{}}}",
            p.addr, p.state, p.upstream_ok, p.upstream_failed
        );
    }
    o.push_str("],\"tracker\":");
    tracker_json(&mut o, app, c);
    o.push_str(",\"uploads\":");
    if c.upload.is_some() {
        o.push_str(&app.uploads.status_json());
    } else {
        o.push_str("null");
    }
    o.push(',');
    report(app, state).json_members(&mut o);
    o.push('}');
    o
}

/// The tracker's view (`resolve::cluster`): what was loaded from it, the
/// values in force, and each group's storages as last listed.
fn tracker_json(o: &mut String, app: &App, c: &Config) {
    let view = app.lag.cluster.view();
    let eff = view.effective(c);
    o.push_str("{\"params\":");
    match view.params {
        Some(p) => {
            let _ = write!(
                o,
                "{{\"storage_sync_file_max_delay\":{},\"use_storage_id\":{}}}",
                p.max_delay, p.use_storage_id
            );
        }
        None => o.push_str("null"),
    }
    let _ = write!(
        o,
        ",\"effective\":{{\"storage_sync_file_max_delay\":{},\"storage_ids\":{}}},\"groups\":{{",
        eff.max_delay,
        eff.storage_ids.len()
    );
    let mut groups: Vec<_> = view.groups.iter().collect();
    groups.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (name, peers)) in groups.into_iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        push_json_str(o, name.as_bytes());
        o.push_str(":[");
        for (j, p) in peers.iter().enumerate() {
            if j > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "{{\"addr\":\"{}\",\"storage_port\":{},\"readable\":{}}}",
                p.ip, p.storage_port, p.readable
            );
        }
        o.push(']');
    }
    o.push_str("}}");
}
