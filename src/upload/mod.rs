//! The upload API (docs/upload.md), served under `upload.prefix` on the
//! HTTP listeners when `upload.enabled`:
//!
//! | request | does |
//! |---|---|
//! | `POST <prefix>/upload` (multipart, file in `fastdfs`) | store a file |
//! | `PUT <prefix>/upload/<name>` (raw body) | store a file |
//! | `PUT <prefix>/append/<file id>` | append to an appender file |
//! | `GET <prefix>/download/<file id>` | the file as an attachment |
//! | `GET <prefix>/preview/<file id>` | the file inline |
//! | `DELETE <prefix>/files/<file id>` | delete |
//!
//! Parts: [`auth`] (credentials, signatures), [`name`] (original names,
//! extensions), [`source`] (bounded body streams, spooling), [`store`]
//! (tracker and storage, retry, undo), [`answer`] (JSON answers).

pub mod answer;
pub mod auth;
pub mod name;
pub mod source;
pub mod store;

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;

use crate::body::{self, Body, BodyError};
use crate::clock::unix_now;
use crate::config::{UploadApp, UploadConfig};
use crate::outcome::Outcome;
use crate::proto::client::TrackerClient;
use crate::socket_body::SocketBody;
use crate::state::{App, State};
use answer::ApiError;
use auth::{AuthError, Presented};
use source::{body_chunks, metered, Meter, Spooled};
use store::{Cluster, Content, Kind, Stored, Undo};

/// Longest text field of a multipart form.
const MAX_TEXT_FIELD: usize = 8 * 1024;
/// Most parts in a multipart form.
const MAX_PARTS: usize = 64;
/// Multipart framing allowed on top of the file when judging
/// `Content-Length` against the size limit.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// Most metadata pairs per file.
const MAX_META: usize = 32;

/// A request body as the API reads it.
#[derive(Debug)]
pub enum ReqBody {
    /// None (plain HTTP/1.1 requests without a body).
    Empty,
    /// hyper's (TLS, h2, chunked and other handed-off requests).
    Hyper(Incoming),
    /// Still on a plain HTTP/1.1 client's socket (`Content-Length`).
    Socket(SocketBody),
}

/// A request body as the transports hand it over.
pub trait RequestBody: Send {
    /// The body as the API reads it.
    fn into_body(self) -> ReqBody;
}

impl RequestBody for () {
    fn into_body(self) -> ReqBody {
        ReqBody::Empty
    }
}

impl RequestBody for Incoming {
    fn into_body(self) -> ReqBody {
        ReqBody::Hyper(self)
    }
}

impl RequestBody for SocketBody {
    fn into_body(self) -> ReqBody {
        ReqBody::Socket(self)
    }
}

/// Whether `path` belongs to the upload API of `state`.
pub fn is_api_path(state: &State, path: &str) -> bool {
    state.config.upload.as_ref().is_some_and(|u| {
        path.strip_prefix(u.prefix.as_str())
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    })
}

/// One API request's context.
struct Ctx<'a> {
    app: &'a Arc<App>,
    state: Arc<State>,
    u: Arc<UploadConfig>,
    client: IpAddr,
    local_port: u16,
    start: Instant,
}

/// Answers an API request (`is_api_path` was true).
pub async fn handle(
    app: &Arc<App>,
    state: Arc<State>,
    local_port: u16,
    client: IpAddr,
    req: Request<ReqBody>,
) -> (Outcome, Response<Body>) {
    let Some(u) = state.config.upload.clone() else {
        return (
            Outcome::Refused,
            crate::response::error(StatusCode::NOT_FOUND),
        );
    };
    let ctx = Ctx {
        app,
        state,
        u,
        client,
        local_port,
        start: Instant::now(),
    };
    let path = req.uri().path().to_owned();
    let rest = path.get(ctx.u.prefix.len()..).unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (seg, arg) = match rest.split_once('/') {
        Some((s, a)) => (s, Some(a)),
        None => (rest, None),
    };
    let m = req.method().clone();
    let refused = |e: ApiError| (Outcome::Refused, e.response());
    match (seg, arg) {
        ("upload", None) if m == Method::POST => Box::pin(ctx.upload_form(req)).await,
        ("upload", Some(n)) if m == Method::PUT || m == Method::POST => {
            let n = n.to_owned();
            Box::pin(ctx.upload_raw(req, &n)).await
        }
        ("append", Some(id)) if m == Method::PUT || m == Method::POST => {
            let id = id.to_owned();
            Box::pin(ctx.append(req, &id)).await
        }
        ("download" | "preview", Some(id)) if m == Method::GET || m == Method::HEAD => {
            let id = id.to_owned();
            Box::pin(ctx.serve(req, &id, seg == "download")).await
        }
        ("files", Some(id)) if m == Method::DELETE => {
            let id = id.to_owned();
            Box::pin(ctx.delete(req, &id)).await
        }
        ("upload", None) => refused(not_allowed("POST")),
        ("upload" | "append", Some(_)) => refused(not_allowed("PUT, POST")),
        ("download" | "preview", Some(_)) => refused(not_allowed("GET, HEAD")),
        ("files", Some(_)) => refused(not_allowed("DELETE")),
        _ => refused(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such API endpoint",
        )),
    }
}

/// The crc32 a normal file's name carries (the storage's own, of the
/// bytes it stored).
fn crc_in_name(s: &Stored) -> u32 {
    match crate::fileid::FileId::parse(&s.group, &s.remote) {
        Ok(id) => id.encoded().crc32,
        Err(e) => {
            tracing::warn!("upload: the storage named {}/{}: {e}", s.group, s.remote);
            0
        }
    }
}

fn not_allowed(allow: &'static str) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("allowed: {allow}"),
    );
    e.allow = Some(allow);
    e
}

fn auth_error(e: AuthError) -> ApiError {
    let (status, code) = match e {
        AuthError::Network => (StatusCode::FORBIDDEN, "forbidden"),
        _ => (StatusCode::UNAUTHORIZED, "unauthorized"),
    };
    ApiError::new(status, code, e.message())
}

fn content_length(req: &Request<ReqBody>) -> Result<Option<u64>, ApiError> {
    match req.headers().get(CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("invalid Content-Length")),
    }
}

/// A file ID `group/M00/…` split into (group, remote name).
fn split_file_id(id: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request("not a FastDFS file ID (group/Mxx/xx/xx/name)");
    let raw = crate::fileid::url::percent_decode(id.as_bytes()).map_err(|_| bad())?;
    let id = String::from_utf8(raw).map_err(|_| bad())?;
    let (group, remote) = id.split_once('/').ok_or_else(bad)?;
    let ok_group = !group.is_empty()
        && group.len() <= crate::config::MAX_GROUP_NAME_LEN
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let ok_remote = remote.len() <= crate::proto::frame::REMOTE_NAME_MAX_LEN
        && remote.starts_with('M')
        && remote
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'))
        && !remote
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if !ok_group || !ok_remote {
        return Err(bad());
    }
    Ok((group.to_owned(), remote.to_owned()))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a form or query adds to an upload.
#[derive(Debug, Default)]
struct Extras {
    app_id: Option<String>,
    app_key: Option<String>,
    ext: Option<String>,
    name: Option<String>,
    master: Option<String>,
    prefix: Option<String>,
    appender: bool,
    meta: Vec<(String, String)>,
}

impl Extras {
    /// Takes a named text value; `false` for a name it does not know.
    fn set(&mut self, key: &str, value: String) -> Result<bool, ApiError> {
        match key {
            "app_id" => self.app_id = Some(value),
            "app_key" => self.app_key = Some(value),
            "ext" => self.ext = Some(value),
            "name" | "filename" => self.name = Some(value),
            "master" => self.master = Some(value),
            "prefix" => self.prefix = Some(value),
            "appender" => self.appender = matches!(value.as_str(), "1" | "true" | "yes"),
            k => match k.strip_prefix("meta.") {
                Some(m) if !m.is_empty() => {
                    if self.meta.len() >= MAX_META {
                        return Err(ApiError::bad_request("too many meta.* fields"));
                    }
                    let sep = |c: char| matches!(c, '\0' | '\u{1}' | '\u{2}');
                    if m.len() > crate::proto::upload::META_NAME_MAX || m.contains(sep) {
                        return Err(ApiError::bad_request(
                            "metadata names are 1-64 bytes without control separators",
                        ));
                    }
                    if value.len() > crate::proto::upload::META_VALUE_MAX || value.contains(sep) {
                        return Err(ApiError::bad_request(
                            "metadata values are at most 256 bytes without control separators",
                        ));
                    }
                    self.meta.push((m.to_owned(), value));
                }
                _ => return Ok(false),
            },
        }
        Ok(true)
    }

    fn from_query(q: Option<&str>) -> Result<Extras, ApiError> {
        let mut x = Extras::default();
        let q = crate::http::query::Query::parse(q.unwrap_or(""));
        for k in ["ext", "name", "filename", "master", "prefix", "appender"] {
            if let Some(v) = q.get(k) {
                x.set(k, v.to_owned())?;
            }
        }
        Ok(x)
    }
}

/// The file's details, once known.
struct Upload<'a> {
    app: &'a UploadApp,
    name: String,
    ext: String,
    content_type: Option<String>,
    extras: Extras,
}

impl Ctx<'_> {
    async fn cluster_resolved(&self) -> Cluster {
        let cfg = &self.state.config;
        let addrs = crate::resolve::cluster::tracker_addrs(cfg).await;
        Cluster {
            trackers: TrackerClient::new(addrs, cfg.connect_timeout, cfg.network_timeout),
            connect: cfg.connect_timeout,
            network: cfg.network_timeout,
        }
    }

    fn authenticate(&self, p: &Presented, req: &Request<ReqBody>) -> Result<&UploadApp, ApiError> {
        let len = content_length(req)?;
        auth::check(
            &self.u,
            p,
            auth::Request {
                method: req.method().as_str(),
                path: req.uri().path(),
                len,
                now: u64::try_from(unix_now()).unwrap_or(0),
                client: self.client,
            },
        )
        .map_err(|e| {
            let id = p.app_id.as_deref().unwrap_or("-");
            tracing::warn!("{}: upload API: app {id:?}: {}", self.client, e.message());
            auth_error(e)
        })
    }

    fn finish(
        &self,
        op: &'static str,
        app: Option<&UploadApp>,
        r: Result<(Response<Body>, u64), ApiError>,
    ) -> (Outcome, Response<Body>) {
        let id = app.map_or("", |a| a.id.as_str());
        let (result, bytes, resp) = match r {
            Ok((resp, n)) => ("ok", n, resp),
            Err(e) => {
                if e.status.is_server_error() {
                    tracing::error!("{}: {op} ({id}): {} {}", self.client, e.status, e.message);
                } else {
                    tracing::warn!("{}: {op} ({id}): {} {}", self.client, e.status, e.message);
                }
                (e.code, 0, e.response())
            }
        };
        self.app
            .uploads
            .record(op, id, result, bytes, self.start.elapsed());
        let outcome = match app {
            Some(a) if op == "delete" => Outcome::Delete(a.id.clone()),
            Some(a) => Outcome::Upload(a.id.clone()),
            None => Outcome::Refused,
        };
        (outcome, resp)
    }

    fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.app.uploads.slots.try_acquire().map_err(|_| {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many uploads in progress",
            );
            e.retry_after = Some(1);
            e
        })
    }

    /// Checks the extension (explicit `ext`, else the name's) against the
    /// application's list.
    fn extension(app: &UploadApp, name: &str, explicit: Option<&str>) -> Result<String, ApiError> {
        let ext = match explicit {
            Some(e) => name::valid_ext(e)
                .ok_or_else(|| ApiError::bad_request("ext must be 1-6 letters or digits"))?,
            None => name::extension(name),
        };
        if !app.extensions.is_empty() && !app.extensions.iter().any(|a| a.eq_ignore_ascii_case(ext))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "extension_not_allowed",
                format!(
                    "extension \"{ext}\" is not allowed for this application (allowed: {})",
                    app.extensions.join(", ")
                ),
            ));
        }
        Ok(ext.to_owned())
    }

    fn kind<'x>(x: &'x Extras, slave: &'x Option<(String, String)>) -> Result<Kind<'x>, ApiError> {
        Ok(match (slave, x.appender) {
            (Some(_), true) => {
                return Err(ApiError::bad_request("a slave file cannot be an appender"))
            }
            (Some((group, remote)), false) => Kind::Slave {
                group,
                remote,
                prefix: x
                    .prefix
                    .as_deref()
                    .ok_or_else(|| ApiError::bad_request("a slave upload needs prefix"))?,
            },
            (None, true) => Kind::Appender,
            (None, false) => Kind::Normal,
        })
    }

    /// Stores, sets metadata, and builds the answer (with its undo).
    async fn store_and_answer(
        &self,
        req_host: Option<String>,
        up: Upload<'_>,
        content: Content<'_>,
        crc_of: impl FnOnce(&Stored) -> u32,
    ) -> Result<(Response<Body>, u64), ApiError> {
        let slave = match &up.extras.master {
            Some(m) => Some(split_file_id(m)?),
            None => None,
        };
        let kind = Self::kind(&up.extras, &slave)?;
        let group = up.app.group.as_deref();
        let size = content.size();
        let cluster = self.cluster_resolved().await;
        let stored = cluster
            .store(group, kind, &up.ext, content, up.app.max_size)
            .await?;
        let crc32 = crc_of(&stored);
        let undo = Undo::new(stored.clone(), &cluster);
        let mut meta: Vec<(String, String)> = Vec::new();
        if !up.name.is_empty() {
            meta.push(("name".into(), truncate(&up.name, 256)));
        }
        if let Some(ct) = &up.content_type {
            meta.push(("content_type".into(), truncate(ct, 256)));
        }
        meta.extend(up.extras.meta.iter().cloned());
        if !meta.is_empty() {
            // On failure `undo` deletes the file.
            cluster.set_metadata(&stored, &meta).await?;
        }
        let doc = serde_json::json!({
            "file_id": format!("{}/{}", stored.group, stored.remote),
            "url": self.url(req_host.as_deref(), &stored),
            "size": size,
            "crc32": crc32,
            "name": up.name,
        });
        tracing::info!(
            "{}: upload ({}): {}/{} {size} bytes",
            self.client,
            up.app.id,
            stored.group,
            stored.remote
        );
        let (parts, b) = answer::json(StatusCode::OK, &doc).into_parts();
        let delivered = Delivered {
            inner: b,
            undo: Some(undo),
        };
        Ok((Response::from_parts(parts, body::stream(delivered)), size))
    }

    fn url(&self, host: Option<&str>, s: &Stored) -> String {
        let path = if self.state.config.url_have_group_name {
            format!("/{}/{}", s.group, s.remote)
        } else {
            format!("/{}", s.remote)
        };
        match (&self.u.public_base_url, host) {
            (Some(base), _) => format!("{base}{path}"),
            (None, Some(h)) => format!("http://{h}{path}"),
            (None, None) => path,
        }
    }

    async fn upload_raw(&self, req: Request<ReqBody>, raw_name: &str) -> (Outcome, Response<Body>) {
        let p = Presented::from_headers(req.headers());
        let app = match self.authenticate(&p, &req) {
            Ok(a) => a,
            Err(e) => return self.finish("upload", None, Err(e)),
        };
        let r = self.upload_raw_as(app, req, raw_name).await;
        self.finish("upload", Some(app), r)
    }

    async fn upload_raw_as(
        &self,
        app: &UploadApp,
        req: Request<ReqBody>,
        raw_name: &str,
    ) -> Result<(Response<Body>, u64), ApiError> {
        if !app.upload {
            return Err(forbidden("upload"));
        }
        let decoded = crate::fileid::url::percent_decode(raw_name.as_bytes())
            .map_err(|_| ApiError::bad_request("malformed percent escape in the name"))?;
        let mut extras = Extras::from_query(req.uri().query())?;
        let name = name::sanitize(&String::from_utf8_lossy(&decoded));
        for (k, v) in req.headers() {
            if let Some(m) = k.as_str().strip_prefix("x-fdfs-meta-") {
                let v = v
                    .to_str()
                    .map_err(|_| ApiError::bad_request("metadata headers must be ASCII"))?;
                extras.set(&format!("meta.{m}"), v.to_owned())?;
            }
        }
        let ext = Self::extension(app, &name, extras.ext.as_deref())?;
        let len = content_length(&req)?;
        if len.is_some_and(|n| n > app.max_size) {
            return Err(ApiError::too_large(app.max_size));
        }
        let _slot = self.slot()?;
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let host = host_of(&req);
        let up = Upload {
            app,
            name,
            ext,
            content_type,
            extras,
        };
        let stall = self.u.stall_timeout;
        let plain = up.extras.master.is_none() && !up.extras.appender;
        match (len, req.into_body()) {
            // Straight from the client's socket to the storage's; the
            // storage's crc32 is in the name it gives (docs/file-id.md).
            (Some(_), ReqBody::Socket(b)) if plain => {
                self.store_and_answer(host, up, Content::Socket(b, stall), crc_in_name)
                    .await
            }
            (Some(n), body) => {
                let meter = Arc::new(std::sync::Mutex::new(Meter::new(app.max_size)));
                let content = Content::Stream(metered(body_chunks(body, stall), meter.clone()), n);
                self.store_and_answer(host, up, content, |_| meter.lock().map_or(0, |m| m.crc32()))
                    .await
            }
            (None, body) => {
                let mut spooled = self.spool(body_chunks(body, stall), app.max_size).await?;
                let crc = spooled.crc32;
                self.store_and_answer(host, up, Content::File(&mut spooled), |_| crc)
                    .await
            }
        }
    }

    async fn spool(&self, chunks: source::Chunks<'_>, limit: u64) -> Result<Spooled, ApiError> {
        source::spool(chunks, limit, self.u.temp_dir.as_deref())
            .await
            .map_err(|e: std::io::Error| store::source_error(&e, limit))
    }

    async fn upload_form(&self, req: Request<ReqBody>) -> (Outcome, Response<Body>) {
        let p = Presented::from_headers(req.headers());
        let mut app = None;
        if !p.is_empty() {
            match self.authenticate(&p, &req) {
                Ok(a) => app = Some(a),
                Err(e) => return self.finish("upload", None, Err(e)),
            }
        }
        let (r, app) = self.upload_form_as(app, req).await;
        self.finish("upload", app, r)
    }

    async fn upload_form_as<'s>(
        &'s self,
        mut app: Option<&'s UploadApp>,
        req: Request<ReqBody>,
    ) -> (
        Result<(Response<Body>, u64), ApiError>,
        Option<&'s UploadApp>,
    ) {
        macro_rules! bail {
            ($e:expr) => {
                return (Err($e), app)
            };
        }
        if let Some(a) = app {
            if !a.upload {
                bail!(forbidden("upload"));
            }
        }
        let Some(ct) = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            bail!(ApiError::bad_request("expected multipart/form-data"));
        };
        let boundary = match multer::parse_boundary(ct) {
            Ok(b) => b,
            Err(_) => bail!(ApiError::bad_request(
                "expected multipart/form-data with a boundary"
            )),
        };
        let len = match content_length(&req) {
            Ok(l) => l,
            Err(e) => bail!(e),
        };
        if let (Some(a), Some(n)) = (app, len) {
            if n > a.max_size.saturating_add(MULTIPART_OVERHEAD) {
                bail!(ApiError::too_large(a.max_size));
            }
        }
        let _slot = match self.slot() {
            Ok(s) => s,
            Err(e) => bail!(e),
        };
        let mut extras = match Extras::from_query(req.uri().query()) {
            Ok(x) => x,
            Err(e) => bail!(e),
        };
        let host = host_of(&req);
        let stall = self.u.stall_timeout;
        let chunks = body_chunks(req.into_body(), stall);
        let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let chunks = source::framing_guard(chunks, delivered.clone());
        let mut form = multer::Multipart::new(chunks, boundary);
        let mut file: Option<(Spooled, String, Option<String>)> = None;
        let mut parts = 0usize;
        loop {
            let field = match form.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => bail!(multipart_error(&e)),
            };
            parts += 1;
            if parts > MAX_PARTS {
                bail!(ApiError::bad_request("too many parts"));
            }
            let fname = field.name().unwrap_or("").to_owned();
            if fname == "fastdfs" {
                if file.is_some() {
                    bail!(ApiError::bad_request(
                        "two files in the field fastdfs; send one per request"
                    ));
                }
                if app.is_none() && extras.app_id.is_some() && extras.app_key.is_some() {
                    let p = Presented {
                        app_id: extras.app_id.clone(),
                        app_key: extras.app_key.clone(),
                        ..Presented::default()
                    };
                    match self.authenticate(&p, &http::Request::new(ReqBody::Empty)) {
                        Ok(a) if !a.upload => {
                            app = Some(a);
                            bail!(forbidden("upload"))
                        }
                        Ok(a) => app = Some(a),
                        Err(e) => bail!(e),
                    }
                }
                let limit = app.map_or_else(|| self.u.largest_max_size(), |a| a.max_size);
                let name = name::sanitize(field.file_name().unwrap_or(""));
                let ctype = field.content_type().map(|m| m.to_string());
                let counted = delivered.clone();
                let stream = field.map(move |r| {
                    if let Ok(b) = &r {
                        counted.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    r.map_err(std::io::Error::other)
                });
                match source::spool(stream, limit, self.u.temp_dir.as_deref()).await {
                    Ok(s) => file = Some((s, name, ctype)),
                    Err(e) => bail!(if source::is_limit(&e) || source::is_stall(&e) {
                        store::source_error(&e, limit)
                    } else {
                        ApiError::bad_request(format!("malformed multipart body: {e}"))
                    }),
                }
                continue;
            }
            if field.file_name().is_some() {
                bail!(ApiError::bad_request(format!(
                    "a file in the field \"{}\": only one file, in the field fastdfs",
                    fname.escape_debug()
                )));
            }
            let mut field = field;
            let mut text = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        if text.len() + c.len() > MAX_TEXT_FIELD {
                            bail!(ApiError::bad_request(format!(
                                "field \"{}\" is longer than {MAX_TEXT_FIELD} bytes",
                                fname.escape_debug()
                            )));
                        }
                        text.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) => bail!(multipart_error(&e)),
                }
            }
            let Ok(text) = String::from_utf8(text) else {
                bail!(ApiError::bad_request(format!(
                    "field \"{}\" is not UTF-8",
                    fname.escape_debug()
                )));
            };
            if let Err(e) = extras.set(&fname, text) {
                bail!(e);
            }
        }
        drop(form);
        let Some((mut spooled, fname, ctype)) = file else {
            bail!(ApiError::bad_request("no file in the field fastdfs"));
        };
        let app = match app {
            Some(a) => a,
            None => {
                let p = Presented {
                    app_id: extras.app_id.clone(),
                    app_key: extras.app_key.clone(),
                    ..Presented::default()
                };
                match self.authenticate(&p, &http::Request::new(ReqBody::Empty)) {
                    Ok(a) => a,
                    Err(e) => return (Err(e), None),
                }
            }
        };
        if !app.upload {
            return (Err(forbidden("upload")), Some(app));
        }
        if spooled.size > app.max_size {
            return (Err(ApiError::too_large(app.max_size)), Some(app));
        }
        let name = match &extras.name {
            Some(n) => name::sanitize(n),
            None => fname,
        };
        let ext = match Self::extension(app, &name, extras.ext.as_deref()) {
            Ok(e) => e,
            Err(e) => return (Err(e), Some(app)),
        };
        let up = Upload {
            app,
            name,
            ext,
            content_type: ctype,
            extras,
        };
        let crc = spooled.crc32;
        let r = self
            .store_and_answer(host, up, Content::File(&mut spooled), |_| crc)
            .await;
        (r, Some(app))
    }

    async fn append(&self, req: Request<ReqBody>, id: &str) -> (Outcome, Response<Body>) {
        let p = Presented::from_headers(req.headers());
        let app = match self.authenticate(&p, &req) {
            Ok(a) => a,
            Err(e) => return self.finish("append", None, Err(e)),
        };
        let r = self.append_as(app, req, id).await;
        self.finish("append", Some(app), r)
    }

    async fn append_as(
        &self,
        app: &UploadApp,
        req: Request<ReqBody>,
        id: &str,
    ) -> Result<(Response<Body>, u64), ApiError> {
        if !app.upload {
            return Err(forbidden("upload"));
        }
        let (group, remote) = split_file_id(id)?;
        let Some(len) = content_length(&req)? else {
            return Err(ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "an append needs Content-Length",
            ));
        };
        if len > app.max_size {
            return Err(ApiError::too_large(app.max_size));
        }
        let _slot = self.slot()?;
        let host = host_of(&req);
        let chunks = body_chunks(req.into_body(), self.u.stall_timeout);
        let meter = Arc::new(std::sync::Mutex::new(Meter::new(app.max_size)));
        let cluster = self.cluster_resolved().await;
        let mut chunks = metered(chunks, meter.clone());
        cluster
            .append(&group, &remote, &mut chunks, len, app.max_size)
            .await?;
        drop(chunks);
        let crc32 = meter.lock().map_or(0, |m| m.crc32());
        let stored = Stored {
            group,
            remote,
            storage: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let doc = serde_json::json!({
            "file_id": format!("{}/{}", stored.group, stored.remote),
            "url": self.url(host.as_deref(), &stored),
            "size": len,
            "crc32": crc32,
            "name": "",
        });
        Ok((answer::json(StatusCode::OK, &doc), len))
    }

    async fn delete(&self, req: Request<ReqBody>, id: &str) -> (Outcome, Response<Body>) {
        let p = Presented::from_headers(req.headers());
        let app = match self.authenticate(&p, &req) {
            Ok(a) => a,
            Err(e) => return self.finish("delete", None, Err(e)),
        };
        let r = async {
            if !app.delete {
                return Err(forbidden("delete"));
            }
            let (group, remote) = split_file_id(id)?;
            if app.group.as_deref().is_some_and(|g| g != group) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this application may only delete files of its group",
                ));
            }
            let cluster = self.cluster_resolved().await;
            if cluster.delete(&group, &remote).await? {
                tracing::info!("{}: delete ({}): {group}/{remote}", self.client, app.id);
                Ok((crate::response::empty(StatusCode::NO_CONTENT), 0))
            } else {
                Err(store::not_found())
            }
        }
        .await;
        self.finish("delete", Some(app), r)
    }

    /// The `name` metadata of a file (what the upload recorded), else the
    /// file ID's own name; asked within 3 s.
    async fn original_name(&self, group: &str, remote: &str) -> String {
        let fallback = remote.rsplit('/').next().unwrap_or("").to_owned();
        let ask = async {
            let cluster = self.cluster_resolved().await;
            cluster.metadata_value(group, remote, "name").await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(3), ask).await {
            Ok(Some(n)) => Some(name::sanitize(&n))
                .filter(|n| !n.is_empty())
                .unwrap_or(fallback),
            _ => fallback,
        }
    }

    /// Download (attachment) and preview (inline) through the normal
    /// serving path: local, lag redirect/proxy, Range, conditional
    /// requests and anti-steal tokens all apply.
    async fn serve(
        &self,
        req: Request<ReqBody>,
        id: &str,
        download: bool,
    ) -> (Outcome, Response<Body>) {
        let (group, remote) = match split_file_id(id) {
            Ok(x) => x,
            Err(e) => return (Outcome::Refused, e.response()),
        };
        // Credentials, when presented, are checked before anything costs a
        // round trip; an application needs no anti-steal token.
        let p = Presented::from_headers(req.headers());
        let authenticated = if p.is_empty() {
            false
        } else {
            match self.authenticate(&p, &req) {
                Ok(_) => true,
                Err(e) => return (Outcome::Refused, e.response()),
            }
        };
        let path = if self.state.config.url_have_group_name {
            format!("/{group}/{remote}")
        } else {
            format!("/{remote}")
        };
        let q = crate::http::query::Query::parse(req.uri().query().unwrap_or(""));
        let mut query: Vec<String> = Vec::new();
        for k in ["token", "ts", "start", "end"] {
            if let Some(v) = q.get(k) {
                query.push(format!("{k}={}", encode_component(v)));
            }
        }
        if download {
            let cfg = &self.state.config;
            let name = match q.get("filename").filter(|n| !n.is_empty()) {
                Some(n) => n.to_owned(),
                // Refused by the token check anyway: no round trip for it.
                None if !authenticated
                    && crate::handler::token_refused(cfg, &group, &remote, &q, &req) =>
                {
                    String::new()
                }
                None => self.original_name(&group, &remote).await,
            };
            query.push(format!("filename={}", encode_component(&name)));
        }
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let (mut parts, _) = req.into_parts();
        if authenticated {
            parts.extensions.insert(crate::handler::TokenBypass);
        }
        parts.uri = match target.parse() {
            Ok(u) => u,
            Err(_) => {
                return (
                    Outcome::Refused,
                    ApiError::bad_request("file ID cannot be served").response(),
                )
            }
        };
        let inner = Request::from_parts(parts, ());
        let (o, mut r) =
            crate::handler::handle_in(self.app, self.state.clone(), self.local_port, &inner).await;
        if !download && r.status().is_success() {
            r.headers_mut()
                .insert(CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
        }
        (o, r)
    }
}

fn forbidden(right: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("this application lacks the {right} right"),
    )
}

fn multipart_error(e: &multer::Error) -> ApiError {
    if source::is_stall(e) {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request body stalled",
        );
    }
    match std::error::Error::source(e) {
        Some(inner) => ApiError::bad_request(format!("malformed multipart body: {e}: {inner}")),
        None => ApiError::bad_request(format!("malformed multipart body: {e}")),
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().filter(|c| *c != '\u{1}' && *c != '\u{2}') {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

fn host_of<B>(req: &Request<B>) -> Option<String> {
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
}

/// The answer's body: keeps the stored file when the answer was handed to
/// the connection in full, deletes it ([`Undo`]) when dropped before.
struct Delivered {
    inner: Body,
    undo: Option<Undo>,
}

impl HttpBody for Delivered {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None)) || this.inner.is_end_stream() {
            if let Some(mut u) = this.undo.take() {
                u.disarm();
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids() {
        assert_eq!(
            split_file_id("group1/M00/00/00/abc.txt").unwrap(),
            ("group1".to_owned(), "M00/00/00/abc.txt".to_owned())
        );
        for bad in [
            "",
            "group1",
            "group1/",
            "group1/X00/a",
            "group1/M00/../a",
            "group1/M00//a",
            "g/r/o/u/p/1/M00/%00",
            "group1/M00/a b",
        ] {
            assert!(split_file_id(bad).is_err(), "{bad}");
        }
        assert_eq!(encode_component("a b/ä"), "a%20b%2F%C3%A4");
    }
}
