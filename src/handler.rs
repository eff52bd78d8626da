//! The request path, top to bottom, in the module's order
//! (docs/module-behaviour.md §1–§8): method, limits, Range syntax, URL → file ID,
//! anti-steal token, store index, early 304, local lookup, then the
//! not-local rules; the nginx.conf directives around the module
//! ([`crate::directives`]: CORS preflight, `valid_referers` before the token)
//! and, once, on whatever answer came out (docs/operations.md "Directives
//! around the module").

use std::sync::Arc;

use http::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_TYPE, HOST, LAST_MODIFIED, RANGE, SERVER,
};
use http::{Method, Request, Response, StatusCode};

use crate::antisteal::token::{check_token, TokenFailure, TokenPolicy};
use crate::body::{self, Body, FileBody, Segment};
use crate::clock::{micros_now, unix_now};
use crate::config::{AntiSteal, Config, GroupConfig};
use crate::directives;
use crate::fileid::url::{is_conventional_group, normalize_path, split_target};
use crate::fileid::{FileId, FileKind};
use crate::http::conditional;
use crate::http::plan;
use crate::http::query::Query;
use crate::http::range::{self, ByteRanges};
use crate::outcome::Outcome;
use crate::resolve;
use crate::response::{self, SERVER_NAME};
use crate::serve::{self, Ask, Entity};
use crate::state::{App, State};
use crate::store::{self, Lookup};
use crate::validators::id_validators;

/// Longest accepted path: FastDFS IDs are far shorter; the module's limit.
const MAX_PATH: usize = 510;
/// Longest accepted query (the module's 511-byte limit broke long
/// `?filename=` values, docs/user-reports.md #34).
const MAX_QUERY: usize = 8192;

/// Answers one request with the state snapshot the caller took; never
/// fails: every problem is an HTTP status. `local_port`: the port the
/// connection was accepted on (redirects).
pub async fn handle_in<B: Sync>(
    app: &Arc<App>,
    state: Arc<State>,
    local_port: u16,
    req: &Request<B>,
) -> (Outcome, Response<Body>) {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host, or with more than
    // one, is answered 400 (HTTP/1.0 may omit it; h2 carries :authority).
    if req.version() == http::Version::HTTP_11 && req.headers().get_all(HOST).iter().count() != 1 {
        tracing::warn!(
            "{} {}: missing or repeated Host -> 400",
            req.method(),
            req.uri()
        );
        return (Outcome::Refused, response::error(StatusCode::BAD_REQUEST));
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        Method::OPTIONS if state.config.has_directives() => {
            let d = state
                .config
                .directives_for(group_of(&state.config, req.uri().path()));
            if let Some(r) = directives::preflight(d, req) {
                return (Outcome::Preflight, r);
            }
            tracing::warn!("{} {}: method not allowed", req.method(), req.uri());
            return (Outcome::Refused, response::method_not_allowed());
        }
        _ => {
            tracing::warn!("{} {}: method not allowed", req.method(), req.uri());
            return (Outcome::Refused, response::method_not_allowed());
        }
    };
    let mut facts = RouteFacts::default();
    let routed = route(app, &state, req, head, &mut facts);
    let (outcome, r) = match routed {
        Routed::Answered(o, r) => (o, r),
        // The not-local step is boxed (and peer fetches inside it again):
        // held inline, its values would make every local request's future
        // larger, and that future is copied at each `.await`.
        Routed::NotLocal(nl) => Box::pin(not_local(app, &state, local_port, nl, req, head)).await,
    };
    let d = state.config.directives_for(facts.group);
    if d.is_empty() {
        return (outcome, response::strip_body_for_head(head, r));
    }
    let f = directives::Facts {
        kind: facts.kind,
        content_type: facts.content_type,
    };
    let r = Box::pin(directives::finish(d, req.headers(), head, f, &outcome, r)).await;
    (outcome, response::strip_body_for_head(head, r))
}

/// What the route learnt on the way, for the directives applied to the answer.
#[derive(Default)]
struct RouteFacts<'r> {
    group: Option<&'r GroupConfig>,
    kind: Option<FileKind>,
    content_type: Option<&'r str>,
}

/// The hosted group a path names, if any (for an `OPTIONS` request's directives).
fn group_of<'c>(cfg: &'c Config, raw_path: &str) -> Option<&'c GroupConfig> {
    let path = normalize_path(raw_path).ok()?;
    let (url_group, _) = split_target(&path, cfg.url_have_group_name).ok()?;
    match url_group {
        Some(g) => cfg.group(g),
        None => cfg.groups.first(),
    }
}

/// Where §1–§7 left a request.
enum Routed<'r> {
    /// Answered (served locally, 304, refused...).
    Answered(Outcome, Response<Body>),
    /// Not on local disk: the §8 rules decide.
    NotLocal(NotLocalAsk<'r>),
}

/// What the not-local rules need from the route.
struct NotLocalAsk<'r> {
    id: FileId,
    hosted: Option<&'r GroupConfig>,
    path: std::borrow::Cow<'r, str>,
    raw_query: Option<&'r str>,
    query: Query,
    ranges: Option<ByteRanges>,
}

/// §1–§7, with no I/O but the local lookup: everything except the
/// not-local rules, which may wait on peers.
fn route<'r, B>(
    app: &App,
    state: &'r State,
    req: &'r Request<B>,
    head: bool,
    facts: &mut RouteFacts<'r>,
) -> Routed<'r> {
    let cfg = &state.config;
    let uri = req.uri();
    let raw_path = uri.path();
    let raw_query = uri.query();
    if raw_path.len() > MAX_PATH {
        return Routed::Answered(
            Outcome::Refused,
            refuse(StatusCode::BAD_REQUEST, uri, "path too long"),
        );
    }
    if raw_query.is_some_and(|q| q.len() > MAX_QUERY) {
        return Routed::Answered(
            Outcome::Refused,
            refuse(StatusCode::URI_TOO_LONG, uri, "query too long"),
        );
    }

    // §1.6: Range syntax is checked before the file ID is looked at.
    let range_header = req.headers().get(RANGE);
    let ranges: Option<ByteRanges> = match range_header.map(|v| range::parse_range(v.as_bytes())) {
        None => None,
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Routed::Answered(
                Outcome::Refused,
                refuse(e.status(), uri, &format!("bad Range header: {e:?}")),
            );
        }
    };

    // §2: URL → group + remote filename.
    let path = match normalize_path(raw_path) {
        Ok(p) => p,
        Err(e) => {
            return Routed::Answered(Outcome::Refused, refuse(e.status(), uri, &format!("{e:?}")))
        }
    };
    let (url_group, remote) = match split_target(&path, cfg.url_have_group_name) {
        Ok(t) => t,
        Err(e) => {
            return Routed::Answered(Outcome::Refused, refuse(e.status(), uri, &format!("{e:?}")))
        }
    };
    let Some(group) = url_group.or_else(|| cfg.groups.first().map(|g| g.name.as_str())) else {
        return Routed::Answered(
            Outcome::Refused,
            refuse(StatusCode::BAD_REQUEST, uri, "no group name in url"),
        );
    };
    let hosted = cfg.group(group);
    if hosted.is_none() && !is_conventional_group(group) {
        return Routed::Answered(
            Outcome::Refused,
            refuse(
                StatusCode::NOT_FOUND,
                uri,
                "group not hosted here and not groupN",
            ),
        );
    }
    let query = Query::parse(raw_query.unwrap_or(""));
    facts.group = hosted;

    // `valid_referers` before the token (nginx's rewrite phase runs before
    // the module's content handler).
    if let Some(r) = directives::referer_refused(cfg.directives_for(hosted), req.headers(), uri) {
        return Routed::Answered(Outcome::Denied, r);
    }

    // §4: anti-steal token, before the ID is parsed (module order).
    if let Some(policy) = anti_steal_of(cfg, hosted) {
        if !bypassed(cfg, req) {
            if let Err(why) = token_ok(policy, &query, remote) {
                return Routed::Answered(
                    Outcome::TokenFail,
                    token_failed(app, policy, why, uri, head),
                );
            }
        }
    }

    // §2.8–2.11: the file ID itself.
    let id = match FileId::parse(group, remote) {
        Ok(id) => id,
        Err(e) => {
            return Routed::Answered(
                Outcome::Refused,
                refuse(e.status(), uri, &format!("invalid file id: {e:?}")),
            );
        }
    };
    facts.kind = Some(*id.kind());
    if cfg.directives_for(hosted).gzip.is_some() {
        facts.content_type = Some(cfg.content_type(id.extension()));
    }
    let store_path = match hosted {
        Some(g) => match g.store_paths.get(usize::from(id.store_index())) {
            Some(p) => Some(p),
            None => {
                return Routed::Answered(
                    Outcome::Refused,
                    refuse(StatusCode::BAD_REQUEST, uri, "invalid store path index"),
                );
            }
        },
        None => None,
    };

    // §7: for normal/trunk files the validators come from the ID, so a
    // matching conditional is answered before touching the disk (works
    // even when the file is not local and its source is down).
    let id_validators = id_validators(&id);
    if let Some((etag, lm)) = &id_validators {
        if let Some(p) = plan::early_not_modified(req.headers(), etag, *lm) {
            let r = response::planned(&p, head, |_| body::empty());
            return Routed::Answered(Outcome::NotModified, r);
        }
    }

    // §6: local lookup.
    if let Some(sp) = store_path {
        match store::lookup(&id, sp, &app.files) {
            Ok(Lookup::Found(file)) => {
                let (etag, last_modified) = match id_validators {
                    Some(v) => v,
                    None => (conditional::etag_for_meta(file.len, file.mtime), file.mtime),
                };
                let flv = cfg
                    .flv_extension
                    .as_deref()
                    .is_some_and(|e| id.extension() == Some(e));
                let ent = Entity {
                    file,
                    last_modified,
                    etag,
                    content_type: cfg.content_type(id.extension()),
                    flv,
                };
                let ask = Ask {
                    headers: req.headers(),
                    head,
                    query: &query,
                    range: ranges.as_ref(),
                    range_header_present: range_header.is_some(),
                    multi_range: cfg.multi_range_enabled,
                    boundary: micros_now,
                };
                let (_, r) = serve::serve(ent, &ask);
                return Routed::Answered(Outcome::Local, r);
            }
            Ok(Lookup::Missing(miss)) => {
                tracing::debug!(
                    "{}: not local ({miss:?})",
                    sp.join("data").join(id.true_filename()).display()
                );
            }
            Err(e) => {
                tracing::error!(
                    "{}: {e}",
                    sp.join("data").join(id.true_filename()).display()
                );
                return Routed::Answered(Outcome::Error, response::error(e.status()));
            }
        }
    }

    // §8: not local.
    Routed::NotLocal(NotLocalAsk {
        id,
        hosted,
        path,
        raw_query,
        query,
        ranges,
    })
}

/// §8: not local; the rules and the redirect/proxy live in [`resolve`].
async fn not_local<B>(
    app: &App,
    state: &State,
    local_port: u16,
    ask: NotLocalAsk<'_>,
    req: &Request<B>,
    head: bool,
) -> (Outcome, Response<Body>) {
    let nl = resolve::NotLocal {
        id: &ask.id,
        hosted: ask.hosted.is_some(),
        path: &ask.path,
        raw_query: ask.raw_query,
        query: &ask.query,
        headers: req.headers(),
        head,
        ranges: ask.ranges.as_ref(),
        range_header_present: req.headers().contains_key(RANGE),
        local_port,
        uri: req.uri(),
    };
    let cx = resolve::Context {
        config: &state.config,
        lag: &app.lag,
        metrics: &app.metrics,
        local_ips: &state.local_ips,
        peer_http: &state.peer_http,
    };
    resolve::not_local(&cx, &nl).await
}

/// A request extension set by the upload API on download/preview requests
/// authenticated as an application: anti-steal tokens are not asked for
/// (docs/upload.md §2). Clients cannot set extensions.
#[derive(Debug, Clone, Copy)]
pub struct TokenBypass;

fn bypassed<B>(cfg: &Config, req: &Request<B>) -> bool {
    if req.extensions().get::<TokenBypass>().is_some() {
        return true;
    }
    match &cfg.bypass_header {
        Some((name, value)) => req
            .headers()
            .get_all(name)
            .iter()
            .any(|v| v.as_bytes() == value.as_bytes()),
        None => false,
    }
}

/// Whether the anti-steal token check (§4) will refuse `req` for
/// `group/remote` (`remote` without the group): the upload API's download
/// skips its metadata lookup for such a request.
pub(crate) fn token_refused<B>(
    cfg: &Config,
    group: &str,
    remote: &str,
    query: &Query,
    req: &Request<B>,
) -> bool {
    anti_steal_of(cfg, cfg.group(group))
        .is_some_and(|p| !bypassed(cfg, req) && token_ok(p, query, remote).is_err())
}

/// The anti-steal policy for a request to `hosted` (a hosted group's own,
/// else the node's).
fn anti_steal_of<'c>(cfg: &'c Config, hosted: Option<&'c GroupConfig>) -> Option<&'c AntiSteal> {
    hosted.map_or(cfg.anti_steal.as_ref(), |g| g.anti_steal.as_ref())
}

fn token_ok(policy: &AntiSteal, query: &Query, remote: &str) -> Result<(), TokenFailure> {
    let p = TokenPolicy {
        secret: &policy.secret_key,
        ttl: policy.token_ttl,
        reject_ts_zero: policy.reject_ts_zero,
        max_future_skew: policy.max_future_skew,
    };
    check_token(query.get("token"), query.get("ts"), remote, &p, unix_now())
}

/// §4.5: missing parameters → 400; a failed check → the fail file (200) or 400.
#[cold]
fn token_failed(
    app: &App,
    policy: &AntiSteal,
    why: TokenFailure,
    uri: &http::Uri,
    head: bool,
) -> Response<Body> {
    tracing::warn!("check token fail, uri: {}, reason: {why}", uri.path());
    let fail = match (&why, &policy.token_check_fail) {
        (TokenFailure::Missing, _) | (_, None) => return response::error(StatusCode::BAD_REQUEST),
        (_, Some(f)) => f,
    };
    let opened = app.files.open(&fail.path);
    let Ok(c) = opened else {
        tracing::error!(
            "token_check_fail file {} cannot be read",
            fail.path.display()
        );
        return response::error(StatusCode::BAD_REQUEST);
    };
    let fb = FileBody::new(
        c.file,
        vec![Segment::File {
            offset: 0,
            len: c.len,
        }],
    );
    let len = fb.len();
    let mut r = Response::new(if head { body::empty() } else { fb.into_body() });
    let h = r.headers_mut();
    h.insert(SERVER, SERVER_NAME);
    h.insert(CONTENT_TYPE, plan::content_type(&fail.content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(LAST_MODIFIED, conditional::http_date(0));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
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
