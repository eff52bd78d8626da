//! Serving a file found on local disk (docs/module-behaviour.md §10–§13):
//! conditional requests, FLV `start=`, Range and multipart, HEAD.

use http::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, LAST_MODIFIED, SERVER,
};
use http::{HeaderMap, Response, StatusCode};

use crate::body::{self, Body, FileBody, Segment};
use crate::http::conditional::{self, Precondition};
use crate::http::disposition::content_disposition;
use crate::http::flv::{self, FLV_HEADER};
use crate::http::multipart::Multipart;
use crate::http::query::Query;
use crate::http::range::{self, ByteRanges, RangeError};
use crate::response::{self, SERVER_NAME};
use crate::store::LocalFile;

/// What is known about the representation being served.
#[derive(Debug)]
pub struct Entity<'a> {
    /// The open file and where its content lies.
    pub file: LocalFile,
    /// Last-Modified, Unix seconds: the ID's create time for normal/trunk
    /// files, the local mtime for appender/slave files (§6.2, §7).
    pub last_modified: i64,
    /// Strong validator (identical on every replica for normal/trunk files).
    pub etag: HeaderValue,
    /// Content-Type of the file.
    pub content_type: &'a str,
    /// `flv_extension` when FLV pseudo-streaming applies to this file.
    pub flv: bool,
}

/// Per-request inputs that shape the answer.
#[derive(Debug)]
pub struct Ask<'a> {
    /// Request headers (conditionals).
    pub headers: &'a HeaderMap,
    /// HEAD: same headers, no body.
    pub head: bool,
    /// Parsed query (`filename`, `start`, `end`).
    pub query: &'a Query,
    /// The parsed Range header, if any (a non-`bytes` unit was already dropped).
    pub range: Option<&'a ByteRanges>,
    /// Whether a Range header was present at all (it disables FLV `start`).
    pub range_header_present: bool,
    /// `http.multi_range.enabled`.
    pub multi_range: bool,
    /// Boundary for a multipart answer (microseconds since the epoch, like
    /// the module); called only when a multipart answer is built.
    pub boundary: fn() -> String,
}

/// The outcome kind, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// 200 with the whole file (or FLV slice).
    Full,
    /// 206.
    Partial,
    /// 304.
    NotModified,
    /// 412 / 416 / 400.
    Refused,
}

/// Builds the response for a local file.
pub fn serve(ent: Entity<'_>, ask: &Ask<'_>) -> (Served, Response<Body>) {
    let apply_range = match conditional::evaluate(ask.headers, &ent.etag, ent.last_modified) {
        Precondition::NotModified => return (Served::NotModified, not_modified(&ent)),
        Precondition::Failed => {
            return (
                Served::Refused,
                response::error(StatusCode::PRECONDITION_FAILED),
            )
        }
        Precondition::Proceed { apply_range } => apply_range,
    };
    let size = ent.file.len;
    let base = ent.file.offset;

    // FLV pseudo-streaming: only without a Range header (§12).
    if ent.flv && !ask.range_header_present {
        match flv::flv_slice(ask.query.get("start"), ask.query.get("end"), size) {
            Err(e) => {
                tracing::warn!("bad FLV start/end for {}: {e}", ent.file.path.display());
                return (Served::Refused, response::error(e.status()));
            }
            Ok(Some(slice)) => {
                let mut segs = Vec::with_capacity(2);
                if slice.with_header {
                    segs.push(Segment::Bytes(bytes::Bytes::from_static(&FLV_HEADER)));
                }
                segs.push(file_seg(base, slice.range.clone()));
                let mut r = with_body(&ent, ask, segs);
                common_headers(&ent, ask, &mut r);
                return (Served::Full, r);
            }
            Ok(None) => {}
        }
    }

    if let (Some(ranges), true) = (ask.range, apply_range) {
        match ranges.resolve(size, ask.multi_range) {
            Ok(list) if list.len() == 1 => {
                let rg = list[0].clone();
                let mut r = with_body(&ent, ask, vec![file_seg(base, rg.clone())]);
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                r.headers_mut().insert(
                    CONTENT_RANGE,
                    range::content_range(*rg.start(), *rg.end(), size),
                );
                common_headers(&ent, ask, &mut r);
                return (Served::Partial, r);
            }
            Ok(list) => {
                let boundary = (ask.boundary)();
                let mp = Multipart::new(&list, size, ent.content_type, &boundary);
                let mut segs = Vec::with_capacity(list.len() * 2 + 1);
                for (head, rg) in mp.parts() {
                    segs.push(Segment::Bytes(head));
                    segs.push(file_seg(base, rg));
                }
                segs.push(Segment::Bytes(mp.trailer()));
                let mut r = with_body(&ent, ask, segs);
                debug_assert_eq!(
                    r.headers()
                        .get(CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()),
                    Some(mp.content_length().to_string().as_str())
                );
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                r.headers_mut().insert(CONTENT_TYPE, mp.content_type());
                common_headers(&ent, ask, &mut r);
                return (Served::Partial, r);
            }
            Err(e) => return (Served::Refused, range_refused(e, size)),
        }
    }

    let mut r = with_body(
        &ent,
        ask,
        vec![Segment::File {
            offset: base,
            len: size,
        }],
    );
    common_headers(&ent, ask, &mut r);
    (Served::Full, r)
}

fn file_seg(base: u64, rg: std::ops::RangeInclusive<u64>) -> Segment {
    Segment::File {
        offset: base + *rg.start(),
        len: *rg.end() - *rg.start() + 1,
    }
}

fn with_body(ent: &Entity<'_>, ask: &Ask<'_>, segs: Vec<Segment>) -> Response<Body> {
    let fb = FileBody::new(ent.file.file.clone(), segs);
    let len = fb.len();
    let body = if ask.head {
        body::empty()
    } else {
        fb.into_body()
    };
    let mut r = Response::new(body);
    // Room for every header of a file answer: no regrowth.
    *r.headers_mut() = HeaderMap::with_capacity(12);
    let h = r.headers_mut();
    h.insert(SERVER, SERVER_NAME);
    h.insert(CONTENT_TYPE, header_value(ent.content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn common_headers(ent: &Entity<'_>, ask: &Ask<'_>, r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert(LAST_MODIFIED, conditional::http_date(ent.last_modified));
    h.insert(ETAG, ent.etag.clone());
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(name) = ask.query.get_bytes("filename") {
        if let Some(v) = content_disposition(name) {
            h.insert(CONTENT_DISPOSITION, v);
        }
    }
}

fn not_modified(ent: &Entity<'_>) -> Response<Body> {
    let mut r = response::empty(StatusCode::NOT_MODIFIED);
    let h = r.headers_mut();
    h.insert(LAST_MODIFIED, conditional::http_date(ent.last_modified));
    h.insert(ETAG, ent.etag.clone());
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// 416 carries `Content-Range: bytes */SIZE` (a correction of the module).
#[cold]
fn range_refused(e: RangeError, size: u64) -> Response<Body> {
    let mut r = response::error(e.status());
    if e.status() == StatusCode::RANGE_NOT_SATISFIABLE {
        r.headers_mut()
            .insert(CONTENT_RANGE, range::unsatisfied_range(size));
    }
    r
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}
