//! When a file is not local (docs/module-behaviour.md §8, §9): decide between
//! 404, the loop guard, a redirect and a proxy, and carry out the last two.
//!
//! Beyond the module: only known group members are contacted or redirected
//! to ([`members`]); when the source fails, the group's other live peers are
//! tried, fastest first, behind a circuit breaker ([`peers`]); the proxy is
//! HTTP/1.1 ([`crate::client`] to plain-HTTP peers, [`proxy`] to HTTPS ones)
//! and/or the FastDFS storage protocol
//! ([`storage_fetch`]), in `proxy_via` order; tracker parameters and the
//! group's storage list are refreshed in the background ([`cluster`]).

pub mod cluster;
pub mod decision;
pub mod events;
pub mod members;
pub mod peers;
pub mod proxy;
pub mod reach;
pub mod redirect;
pub mod storage_fetch;

pub use decision::{decide, Decision, Facts};

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use http::header::{HeaderValue, CONTENT_LENGTH, LOCATION};
use http::{HeaderMap, Response, StatusCode};

use crate::body::Body;
use crate::clock::{micros_now, unix_now};
use crate::config::{Config, ProxyVia, ResponseMode, StorageIds, DEFAULT_STORAGE_PORT};
use crate::fileid::{FileId, Source};
use crate::http::query::Query;
use crate::http::range::ByteRanges;
use crate::metrics::Metrics;
use crate::net;
use crate::outcome::Outcome;
use crate::response;
use crate::tls::PeerHttp;
use crate::validators::id_validators;
use members::{Candidate, Known, Role};

/// Why one attempt at a peer did not produce the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The peer does not have the file (404, or the loop guard's 400 from a
    /// peer that is not the source).
    NotHere,
    /// Connection refused/reset or a malformed answer.
    Unreachable,
    /// Connect or response head took too long.
    Timeout,
    /// `max_proxy_per_peer` requests to the peer are already in flight.
    Busy,
    /// The peer's circuit is open and another request is probing it.
    CoolingDown,
    /// The transport cannot reach this peer (`peer_scheme = https` without
    /// a usable `peer_ca_file`).
    Unsupported,
}

impl Failure {
    /// The status answered when this is the deciding failure.
    pub fn status(&self) -> StatusCode {
        match self {
            Failure::NotHere => StatusCode::NOT_FOUND,
            Failure::Unreachable | Failure::Unsupported => StatusCode::BAD_GATEWAY,
            Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::Busy | Failure::CoolingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A transport failure counts against the peer's circuit breaker.
    pub fn is_transport(&self) -> bool {
        matches!(self, Failure::Unreachable | Failure::Timeout)
    }

    /// What the peer said, for the log line.
    fn describe(&self) -> &'static str {
        match self {
            Failure::NotHere => "not here",
            Failure::Unreachable => "unreachable",
            Failure::Timeout => "timed out",
            Failure::Busy => "busy (max_proxy_per_peer)",
            Failure::CoolingDown => "circuit open, probed by another request",
            Failure::Unsupported => "https without peer_ca_file",
        }
    }
}

/// One failed attempt at a candidate, for the combined answer and its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The peer.
    pub ip: IpAddr,
    /// The source the ID names, or another peer of the group.
    pub role: Role,
    /// The transport tried (`None`: not contacted).
    pub via: Option<ProxyVia>,
    /// What came of it.
    pub failure: Failure,
}

/// The overall failure after every candidate failed. 404 when the source
/// was reached and does not have the file (the module's answer: CDNs cache
/// it, alerts stay quiet), or when every peer said so; otherwise 503 if one
/// was saturated or cooling down, else 504 if one timed out, else 502 (also
/// with no candidate at all).
pub fn combine(attempts: &[Attempt]) -> Failure {
    let not_here = |a: &Attempt| a.failure == Failure::NotHere;
    if attempts
        .iter()
        .any(|a| a.role == Role::Source && not_here(a))
        || (!attempts.is_empty() && attempts.iter().all(not_here))
    {
        return Failure::NotHere;
    }
    for f in [Failure::Busy, Failure::CoolingDown, Failure::Timeout] {
        if attempts.iter().any(|a| a.failure == f) {
            return f;
        }
    }
    Failure::Unreachable
}

/// `127.0.0.2 (source) via Http: unreachable; 127.0.0.3 via Storage: not here`.
fn describe(attempts: &[Attempt]) -> String {
    let mut out = String::new();
    for a in attempts {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&a.ip.to_string());
        if a.role == Role::Source {
            out.push_str(" (source)");
        }
        if let Some(via) = a.via {
            out.push_str(&format!(" via {via:?}"));
        }
        out.push_str(": ");
        out.push_str(a.failure.describe());
    }
    if out.is_empty() {
        out.push_str("no candidate");
    }
    out
}

/// The longest a client waits for one not-local request before 504.
pub const LAG_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Not-local state kept for the process lifetime (across reloads).
#[derive(Debug, Default)]
pub struct Lag {
    /// Tracker parameters and group storages.
    pub cluster: cluster::Cluster,
    /// Peer health, latency and concurrency slots.
    pub peers: peers::PeerTable,
    /// Pooled HTTPS client to peers.
    pub http: proxy::HttpProxy,
    /// Pooled plain-HTTP connections to peers.
    pub upstream: std::sync::Arc<crate::client::Pool>,
    /// Whether this node reaches its peers' ports (probed in the background).
    pub reach: reach::Reach,
    /// The last few forwarded or failed not-local requests.
    pub events: events::LagEvents,
}

/// What the not-local rules need from the server for one request:
/// borrowed from the state snapshot and the process-wide parts.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The configuration of the request's snapshot.
    pub config: &'a Config,
    /// Tracker view, peer health and the peer clients.
    pub lag: &'a Lag,
    /// Upstream counters.
    pub metrics: &'a Metrics,
    /// This node's own addresses (a decoded source among them is "us").
    pub local_ips: &'a [IpAddr],
    /// How peers are spoken to over HTTP, settled with the state.
    pub peer_http: &'a crate::tls::PeerHttp,
}

impl Context<'_> {
    /// Whether `ip` is one of this node's addresses.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local_ips.contains(&net::canonical(ip))
    }
}

/// A well-formed request for a file that is not on local disk.
#[derive(Debug)]
pub struct NotLocal<'a> {
    /// The file.
    pub id: &'a FileId,
    /// The URL's group is hosted here.
    pub hosted: bool,
    /// Normalised (decoded) path.
    pub path: &'a str,
    /// Raw query.
    pub raw_query: Option<&'a str>,
    /// Parsed query.
    pub query: &'a Query,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// HEAD request.
    pub head: bool,
    /// Parsed Range header.
    pub ranges: Option<&'a ByteRanges>,
    /// A Range header was present.
    pub range_header_present: bool,
    /// Local port of the accepted connection.
    pub local_port: u16,
    /// The request URI (logs).
    pub uri: &'a http::Uri,
}

/// Resolves the decoded source to an address (storage IDs through the ID
/// table; the first, inner address, as the module).
pub fn source_addr(ids: &StorageIds, id: &FileId) -> Option<IpAddr> {
    match id.encoded().source {
        Source::Ip(v4) => Some(IpAddr::V4(v4)),
        Source::StorageId(n) => ids.get(n).and_then(|e| e.hosts.first().copied()),
    }
}

/// Logs why and answers with `status`.
#[cold]
fn refuse(status: StatusCode, uri: &http::Uri, why: &str) -> Response<Body> {
    if status.is_server_error() {
        tracing::error!("{uri}: {why} -> {}", status.as_u16());
    } else {
        tracing::warn!("{uri}: {why} -> {}", status.as_u16());
    }
    response::error(status)
}

/// The answer for a file that is not local (§8 table, then redirect or
/// proxy with the member check and failover).
pub async fn not_local(cx: &Context<'_>, req: &NotLocal<'_>) -> (Outcome, Response<Body>) {
    let cfg = cx.config;
    let uri = req.uri;
    let view = cx.lag.cluster.view();
    let eff = view.effective(cfg);
    let source = source_addr(&eff.storage_ids, req.id);
    let facts = Facts {
        same_group: req.hosted,
        source,
        source_is_local: source.is_some_and(|ip| cx.is_local(ip)),
        create_ts: req.id.encoded().create_ts,
        now: unix_now(),
        max_delay: eff.max_delay,
        redirected: req.query.has("redirect"),
    };
    let ip = match decide(&facts) {
        Decision::NotFoundSourceIsLocal => {
            return (
                Outcome::NotFound,
                refuse(
                    StatusCode::NOT_FOUND,
                    uri,
                    "file not exist (source is this node)",
                ),
            )
        }
        Decision::NotFoundTooOld => {
            return (
                Outcome::NotFound,
                refuse(
                    StatusCode::NOT_FOUND,
                    uri,
                    "file not exist (older than storage_sync_file_max_delay)",
                ),
            )
        }
        Decision::LoopGuard => {
            return (
                Outcome::Refused,
                refuse(
                    StatusCode::BAD_REQUEST,
                    uri,
                    "redirect again (loop guard: the request was already forwarded once)",
                ),
            )
        }
        Decision::UnknownSource => {
            tracing::warn!(
                "{uri}: can't get ip address of source storage id {}",
                req.id.encoded().source
            );
            return (Outcome::NotFound, response::error(StatusCode::NOT_FOUND));
        }
        Decision::Forward(_) if facts.source_is_local => {
            return (
                Outcome::Refused,
                refuse(
                    StatusCode::BAD_REQUEST,
                    uri,
                    "group is not hosted here and the decoded source is this node",
                ),
            )
        }
        Decision::Forward(ip) => ip,
    };
    let known = Known {
        group: req.id.group(),
        peer_ip_addrs: &cfg.peer_ip_addrs,
        storage_ids: &eff.storage_ids,
        tracker: view.groups.get(req.id.group()).map(Vec::as_slice),
    };
    if !known.is_member(ip) {
        tracing::warn!(
            "{uri}: decoded source {ip} is not a known member of {} \
             (peer_ip_addrs, storage_ids, tracker); not contacted -> 404",
            req.id.group()
        );
        return (Outcome::NotFound, response::error(StatusCode::NOT_FOUND));
    }
    let port = cfg.peer_http_port.unwrap_or(req.local_port);
    let (outcome, r) = forward_or_redirect(cx, &known, ip, port, req).await;
    let (name, peer) = match outcome {
        Outcome::Redirect => ("redirect", Some(ip)),
        Outcome::Proxy(p) => ("proxy", Some(p)),
        Outcome::NotFound => ("not_found", Some(ip)),
        _ => ("failed", Some(ip)),
    };
    cx.lag.events.push(events::LagEvent {
        at: unix_now(),
        file_id: req.id.to_string(),
        outcome: name,
        peer,
        status: r.status().as_u16(),
    });
    (outcome, r)
}

/// A 302 to the source, or the proxy with failover (`response_mode`).
async fn forward_or_redirect(
    cx: &Context<'_>,
    known: &Known<'_>,
    ip: IpAddr,
    port: u16,
    req: &NotLocal<'_>,
) -> (Outcome, Response<Body>) {
    let cfg = cx.config;
    let uri = req.uri;
    match cfg.response_mode {
        ResponseMode::Redirect => (Outcome::Redirect, redirect(cfg, ip, port, req)),
        // Boxed: the peer fetches are large futures; redirects and local
        // requests should not carry (and copy) their space.
        ResponseMode::Proxy => {
            let mut attempts = Vec::new();
            let fwd = Box::pin(forward(cx, known, ip, port, req, &mut attempts));
            let (f, why) = match tokio::time::timeout(LAG_DEADLINE, fwd).await {
                Ok(Ok((peer, r))) => return (Outcome::Proxy(peer), r),
                Ok(Err(())) => (combine(&attempts), describe(&attempts)),
                Err(_) => (
                    Failure::Timeout,
                    format!(
                        "{} s deadline; {}",
                        LAG_DEADLINE.as_secs(),
                        describe(&attempts)
                    ),
                ),
            };
            let status = f.status();
            let outcome = if status == StatusCode::NOT_FOUND {
                Outcome::NotFound
            } else {
                Outcome::Error
            };
            let mut r = refuse(status, uri, &format!("no peer could serve it: {why}"));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                r.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            (outcome, r)
        }
    }
}

/// A clean 302 to the source (§8.1 with the replacement notes).
fn redirect(cfg: &Config, ip: IpAddr, port: u16, req: &NotLocal<'_>) -> Response<Body> {
    let loc = redirect::location(
        cfg.peer_scheme.as_str(),
        ip,
        port,
        req.path,
        req.raw_query,
        !req.query.is_empty(),
    );
    tracing::debug!("redirect to {loc}");
    let mut r = response::empty(StatusCode::FOUND);
    match HeaderValue::from_maybe_shared(bytes::Bytes::from(loc)) {
        Ok(v) => {
            r.headers_mut().insert(LOCATION, v);
            r.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            r
        }
        Err(_) => response::error(StatusCode::BAD_REQUEST),
    }
}

/// Tries the source, then the other live peers, each over the `proxy_via`
/// transports in order, until one answers; then, if none did, probes the
/// candidates skipped for an open circuit (one probe per peer in flight).
/// Every failed attempt is pushed to `attempts`.
async fn forward(
    cx: &Context<'_>,
    known: &Known<'_>,
    source: IpAddr,
    http_port: u16,
    req: &NotLocal<'_>,
    attempts: &mut Vec<Attempt>,
) -> Result<(IpAddr, Response<Body>), ()> {
    let lag = cx.lag;
    let cands = members::candidates(
        known,
        source,
        |ip| cx.is_local(ip),
        |ip| lag.peers.latency(ip),
    );
    let target = redirect::target(req.path, req.raw_query, !req.query.is_empty());
    let mut cooling = Vec::new();
    for c in &cands {
        if !lag.peers.allows(c.ip) {
            tracing::debug!("peer {}: circuit open, tried last", c.ip);
            cooling.push(c);
            continue;
        }
        if let Ok(r) = attempt(cx, c, http_port, &target, req, attempts).await {
            return Ok((c.ip, r));
        }
    }
    for c in cooling {
        let Some(_probe) = lag.peers.probe(c.ip) else {
            attempts.push(Attempt {
                ip: c.ip,
                role: c.role,
                via: None,
                failure: Failure::CoolingDown,
            });
            continue;
        };
        if let Ok(r) = attempt(cx, c, http_port, &target, req, attempts).await {
            return Ok((c.ip, r));
        }
    }
    Err(())
}

/// One candidate over the `proxy_via` transports in order.
async fn attempt(
    cx: &Context<'_>,
    c: &Candidate,
    http_port: u16,
    target: &str,
    req: &NotLocal<'_>,
    attempts: &mut Vec<Attempt>,
) -> Result<Response<Body>, ()> {
    let cfg = cx.config;
    let lag = cx.lag;
    let mut failed = |via: Option<ProxyVia>, failure: Failure| {
        attempts.push(Attempt {
            ip: c.ip,
            role: c.role,
            via,
            failure,
        })
    };
    let mut permit = match lag.peers.permit(c.ip, cfg.max_proxy_per_peer) {
        Ok(p) => p,
        Err(_) => {
            tracing::warn!("peer {}: max_proxy_per_peer reached", c.ip);
            failed(None, Failure::Busy);
            return Err(());
        }
    };
    for via in &cfg.proxy_via {
        let started = Instant::now();
        let res = match via {
            ProxyVia::Http => via_http(cx, c, http_port, target, req, &mut permit).await,
            ProxyVia::Storage => via_storage(cfg, c, req, &mut permit).await,
        };
        match res {
            Ok(r) => {
                let took = started.elapsed();
                lag.peers.success(c.ip, took);
                cx.metrics.record_upstream(c.ip, took, true);
                if c.role == Role::Peer {
                    tracing::info!("{}: served by failover peer {} ({via:?})", req.uri, c.ip);
                }
                return Ok(r);
            }
            Err(f) => {
                tracing::debug!("{}: peer {} via {via:?}: {f:?}", req.uri, c.ip);
                cx.metrics
                    .record_upstream(c.ip, started.elapsed(), f == Failure::NotHere);
                if f.is_transport() {
                    lag.peers.failure(c.ip);
                } else if f == Failure::NotHere {
                    lag.peers.success(c.ip, started.elapsed());
                }
                failed(Some(*via), f);
                if f == Failure::NotHere {
                    break;
                }
            }
        }
    }
    Err(())
}

async fn via_http(
    cx: &Context<'_>,
    c: &Candidate,
    port: u16,
    target: &str,
    req: &NotLocal<'_>,
    permit: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Response<Body>, Failure> {
    let cfg = cx.config;
    // The configuration refuses this pair; a CA bundle that became
    // unusable was logged once, when the state was built.
    let transport = match cx.peer_http {
        PeerHttp::Plain => proxy::Transport::Http,
        PeerHttp::Tls(tls) => proxy::Transport::Https(tls),
        PeerHttp::NoCa => return Err(Failure::Unsupported),
    };
    let ask = crate::client::headers::Ask {
        head: req.head,
        target,
        headers: req.headers,
        bypass: cfg.bypass_header.as_ref().map(|(n, _)| n),
    };
    let peer = SocketAddr::new(c.ip, port);
    let not_here = |status: StatusCode| {
        status == StatusCode::NOT_FOUND
            || (status == StatusCode::BAD_REQUEST && c.role == Role::Peer)
    };
    if let proxy::Transport::Http = transport {
        let limits = crate::client::Limits {
            connect: cfg.connect_timeout,
            head: cfg.peer_response_timeout,
            idle: cfg.peer_idle_timeout,
            max_idle: cfg
                .max_proxy_per_peer
                .unwrap_or(crate::client::DEFAULT_MAX_IDLE),
        };
        let answer = cx.lag.upstream.get(peer, &ask, limits).await.map_err(|e| {
            tracing::warn!("peer http://{peer}: {e}");
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Unreachable
            }
        })?;
        if not_here(answer.status) {
            return Err(Failure::NotHere);
        }
        return Ok(answer.relay(permit.take()));
    }
    let resp = cx
        .lag
        .http
        .send(
            peer,
            transport,
            &ask,
            cfg.connect_timeout,
            cfg.peer_response_timeout,
        )
        .await?;
    if not_here(resp.status()) {
        return Err(Failure::NotHere);
    }
    Ok(proxy::relay(
        resp,
        peer,
        cfg.peer_idle_timeout,
        permit.take(),
    ))
}

async fn via_storage(
    cfg: &Config,
    c: &Candidate,
    req: &NotLocal<'_>,
    permit: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Response<Body>, Failure> {
    let id = req.id;
    let port = c
        .storage_port
        .or_else(|| cfg.group(id.group()).map(|g| g.storage_server_port))
        .unwrap_or(DEFAULT_STORAGE_PORT);
    let src = storage_fetch::Source {
        addr: SocketAddr::new(c.ip, port),
        group: id.group().to_string(),
        remote: id.remote().to_string(),
        connect_timeout: cfg.connect_timeout,
        response_timeout: cfg.peer_response_timeout,
        idle_timeout: cfg.peer_idle_timeout,
    };
    let validators = id_validators(id);
    let want = storage_fetch::Want {
        ask: crate::http::plan::Ask {
            headers: req.headers,
            query: req.query,
            range: req.ranges,
            range_header_present: req.range_header_present,
            multi_range: cfg.multi_range_enabled,
            boundary: &micros_now,
        },
        flv: cfg
            .flv_extension
            .as_deref()
            .is_some_and(|e| id.extension() == Some(e)),
        content_type: cfg.content_type(id.extension()),
    };
    storage_fetch::fetch(src, validators, &want, req.head, permit.take()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_statuses() {
        assert_eq!(Failure::NotHere.status(), StatusCode::NOT_FOUND);
        assert_eq!(Failure::Unreachable.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(Failure::Unsupported.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(Failure::Timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(Failure::Busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            Failure::CoolingDown.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(Failure::Timeout.is_transport());
        assert!(Failure::Unreachable.is_transport());
        assert!(!Failure::NotHere.is_transport());
        assert!(!Failure::Busy.is_transport());
    }

    #[test]
    fn combined_failure() {
        use Failure::*;
        let at = |role, failure| Attempt {
            ip: "127.0.0.2".parse().unwrap(),
            role,
            via: Some(ProxyVia::Http),
            failure,
        };
        let (s, p) = (Role::Source, Role::Peer);
        assert_eq!(combine(&[]), Unreachable);
        assert_eq!(combine(&[at(s, NotHere), at(p, NotHere)]), NotHere);
        assert_eq!(combine(&[at(p, NotHere), at(p, NotHere)]), NotHere);
        // The source said 404: 404, whatever another peer did.
        assert_eq!(combine(&[at(s, NotHere), at(p, Unreachable)]), NotHere);
        assert_eq!(combine(&[at(s, NotHere), at(p, Timeout)]), NotHere);
        // The source could not be reached: 5xx.
        assert_eq!(combine(&[at(s, Unreachable), at(p, NotHere)]), Unreachable);
        assert_eq!(combine(&[at(s, Unreachable), at(p, Timeout)]), Timeout);
        assert_eq!(
            combine(&[at(s, Timeout), at(p, Busy), at(p, NotHere)]),
            Busy
        );
        assert_eq!(
            combine(&[at(s, CoolingDown), at(p, Unreachable)]),
            CoolingDown
        );
        assert_eq!(combine(&[at(s, Unsupported)]), Unreachable);
        // The source failed over http, then said 404 over the storage port.
        assert_eq!(combine(&[at(s, Timeout), at(s, NotHere)]), NotHere);
    }

    #[test]
    fn attempts_are_described_in_one_line() {
        let a = Attempt {
            ip: "127.0.0.2".parse().unwrap(),
            role: Role::Source,
            via: Some(ProxyVia::Http),
            failure: Failure::Unreachable,
        };
        let b = Attempt {
            ip: "127.0.0.3".parse().unwrap(),
            role: Role::Peer,
            via: None,
            failure: Failure::CoolingDown,
        };
        assert_eq!(
            describe(&[a, b]),
            "127.0.0.2 (source) via Http: unreachable; 127.0.0.3: circuit open, probed by another request"
        );
        assert_eq!(describe(&[]), "no candidate");
    }
}
