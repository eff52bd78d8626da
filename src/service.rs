//! The observation around every request (config-reference.md,
//! `access_log`, `trusted_proxies`, `rate_limit`): the client address, the
//! rate limit, the handler, then the access-log line and metrics when the
//! response body has been sent (or the client went away).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{REFERER, USER_AGENT};
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::access_log::{protocol, Entry};
use crate::access_rules;
use crate::body::{Body, BodyError};
use crate::clock::unix_now;
use crate::handler;
use crate::limits::{self, Activity, InFlight};
use crate::outcome::Outcome;
use crate::response;
use crate::state::App;

/// Addresses of the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// Local (listening) address: its port is used for redirects.
    pub local: SocketAddr,
    /// Client address.
    pub peer: SocketAddr,
}

/// The request without its body (GET and HEAD ignore it): what the path
/// borrows across `.await`s must be shareable, and a body need not be.
pub fn without_body<B>(req: Request<B>) -> Request<()> {
    let (parts, _) = req.into_parts();
    Request::from_parts(parts, ())
}

/// Serves one request on a connection through hyper: [`answer`], with the
/// body wrapped so the request is logged and counted when it ends.
pub async fn serve<B: crate::upload::RequestBody>(
    app: Arc<App>,
    conn: ConnInfo,
    req: Request<B>,
    activity: &Arc<Activity>,
) -> Response<Body> {
    let (resp, finish) = answer(app, conn, req, Some(activity)).await;
    let (parts, body) = resp.into_parts();
    let body = match parts.extensions.get::<crate::pace::RateSpec>() {
        Some(spec) => crate::paced::paced(body, *spec),
        None => body,
    };
    let observed = Observed {
        inner: body,
        done: Some(finish),
    };
    Response::from_parts(parts, crate::body::stream(observed))
}

/// Answers one request: resolves the client address, applies the rate
/// limit and runs [`handler::handle_in`]. The request is logged and
/// counted when the returned [`Finish`] is dropped, after the body was
/// sent (the caller adds the bytes it sent). `activity`: the connection's
/// in-flight tracking, for connections whose idle timeout needs it.
pub async fn answer<B: crate::upload::RequestBody>(
    app: Arc<App>,
    conn: ConnInfo,
    req: Request<B>,
    activity: Option<&Arc<Activity>>,
) -> (Response<Body>, Finish) {
    let start = Instant::now();
    let in_flight = activity.map(Activity::begin);
    let state = app.state();
    let client = limits::client_ip(conn.peer.ip(), req.headers(), &state.config.trusted_proxies);
    // The line's text is only gathered when a line is written.
    let logging = state.access_log.enabled();
    let header = |n| {
        req.headers()
            .get(n)
            .filter(|_| logging)
            .map(|v: &http::HeaderValue| v.as_bytes().to_vec())
    };
    let mut entry = Entry {
        client,
        time: if logging { unix_now() } else { 0 },
        method: if logging {
            req.method().as_str().to_owned()
        } else {
            String::new()
        },
        target: if logging {
            req.uri()
                .path_and_query()
                .map_or_else(|| req.uri().to_string(), |p| p.as_str().to_owned())
        } else {
            String::new()
        },
        protocol: protocol(req.version()),
        status: 0,
        bytes: 0,
        referer: header(REFERER),
        user_agent: header(USER_AGENT),
        request_time: Duration::ZERO,
        served: String::new(),
    };
    let limited = state.limiter.as_ref().and_then(|l| l.check(client).err());
    // nginx's allow/deny (access phase, after the rate limit).
    let denied = access_rules::deciding(&state.config.access_rules, client).filter(|r| !r.allow);
    let (kind, resp) = match (limited, denied) {
        (Some(wait), _) => {
            tracing::warn!("{client}: rate limited");
            if logging {
                entry.served = "rate_limited".to_owned();
            }
            ("rate_limited", limits::too_many_requests(wait))
        }
        (None, Some(rule)) => {
            tracing::warn!("{client}: access forbidden by rule \"{rule}\" -> 403");
            let o = Outcome::Denied;
            if logging {
                entry.served = o.label();
            }
            let mut r = response::error(http::StatusCode::FORBIDDEN);
            let failed = crate::http::cache_policy::Answered::Failed;
            state
                .config
                .directives
                .cache
                .apply(failed, unix_now(), r.headers_mut());
            (o.kind(), r)
        }
        (None, None) if crate::upload::is_api_path(&state, req.uri().path()) => {
            let (parts, body) = req.into_parts();
            let req = Request::from_parts(parts, body.into_body());
            let (o, r) = Box::pin(crate::upload::handle(
                &app,
                state,
                conn.local.port(),
                client,
                req,
            ))
            .await;
            if logging {
                entry.served = o.label();
            }
            (o.kind(), r)
        }
        (None, None) => {
            let (o, r) =
                handler::handle_in(&app, state, conn.local.port(), &without_body(req)).await;
            if logging {
                entry.served = o.label();
            }
            (o.kind(), r)
        }
    };
    entry.status = resp.status().as_u16();
    let finish = Finish {
        app,
        entry,
        start,
        kind,
        _in_flight: in_flight,
    };
    (resp, finish)
}

/// A request's log line and metrics, recorded when dropped (after its
/// body ended or was aborted).
pub struct Finish {
    app: Arc<App>,
    entry: Entry,
    start: Instant,
    /// Metrics label (`Outcome::kind`).
    kind: &'static str,
    _in_flight: Option<InFlight>,
}

impl Finish {
    /// Counts `n` more body bytes sent.
    pub fn add_bytes(&mut self, n: u64) {
        self.entry.bytes = self.entry.bytes.saturating_add(n);
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.entry.request_time = self.start.elapsed();
        self.app.metrics.record_request(
            self.kind,
            self.entry.status,
            self.entry.bytes,
            self.entry.request_time,
        );
        let state = self.app.state();
        if state.access_log.enabled() {
            state.access_log.write(&self.entry);
        }
    }
}

/// A response body that counts the bytes it yields and records the
/// request once it ends or is dropped.
struct Observed {
    inner: Body,
    done: Option<Finish>,
}

impl Observed {
    fn finish(&mut self) {
        drop(self.done.take());
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.finish();
    }
}

impl HttpBody for Observed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(d), Some(done)) = (frame.data_ref(), this.done.as_mut()) {
                    done.add_bytes(d.len() as u64);
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(_) => this.finish(),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
