//! The nginx.conf directives around the module, applied to a request and
//! its answer (docs/operations.md "Directives around the module"): the CORS
//! preflight and the referer allow-list before the file is looked at; then,
//! once, on every answer whatever built it (local file, early 304, proxy,
//! storage fetch, refusal): caching headers, `add_header`, CORS headers,
//! gzip and the download rate. The decisions are the pure modules'
//! ([`crate::http::cache_policy`], [`crate::http::cors`],
//! [`crate::http::referer`], [`crate::http::compress`], [`crate::pace`]);
//! this module only reads and writes the messages.

use std::io::Write;

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, ETAG, RANGE, REFERER,
};
use http::{HeaderMap, Request, Response, StatusCode};

use crate::body::{self, Body, FileBody, Segment};
use crate::clock::unix_now;
use crate::config::Directives;
use crate::fileid::FileKind;
use crate::http::cache_policy::{add_vary, Answered};
use crate::http::compress;
use crate::http::cors;
use crate::outcome::Outcome;
use crate::response;

/// What the request path learnt about the file an answer is for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'s> {
    /// The file ID's kind, once it parsed.
    pub kind: Option<FileKind>,
    /// The file's Content-Type (by its extension).
    pub content_type: Option<&'s str>,
}

/// Statuses nginx's `add_header` applies to.
const ADD_HEADER_STATUSES: &[u16] = &[200, 201, 204, 206, 301, 302, 303, 304, 307, 308];

/// The answer to an `OPTIONS` request when CORS is configured: 204 to a
/// valid preflight (with the `add_header` headers, as nginx adds them to a
/// 204), 403 with a log line to a refused one; `None` when the request is
/// not a preflight (the caller answers 405).
pub fn preflight<B>(d: &Directives, req: &Request<B>) -> Option<Response<Body>> {
    let c = d.cors.as_ref()?;
    if !cors::is_preflight(req.headers()) {
        return None;
    }
    Some(match c.preflight(req.headers()) {
        Ok(headers) => {
            let mut r = response::empty(StatusCode::NO_CONTENT);
            for (k, v) in headers.into_iter().chain(d.add_headers.iter().cloned()) {
                r.headers_mut().insert(k, v);
            }
            r
        }
        Err(why) => {
            tracing::warn!("OPTIONS {}: CORS preflight refused: {why}", req.uri());
            response::error(StatusCode::FORBIDDEN)
        }
    })
}

/// 403 with a log line when `valid_referers` refuses the request.
pub fn referer_refused(
    d: &Directives,
    headers: &HeaderMap,
    uri: &http::Uri,
) -> Option<Response<Body>> {
    let v = d.valid_referers.as_ref()?;
    let referer = headers.get(REFERER).map(HeaderValue::as_bytes);
    if v.admits(referer) {
        return None;
    }
    tracing::warn!(
        "{uri}: invalid referer {:?} -> 403",
        referer.map(String::from_utf8_lossy)
    );
    Some(response::error(StatusCode::FORBIDDEN))
}

/// Applies the directives to an answer (before a HEAD body is dropped).
pub async fn finish(
    d: &Directives,
    req: &HeaderMap,
    head: bool,
    facts: Facts<'_>,
    outcome: &Outcome,
    mut r: Response<Body>,
) -> Response<Body> {
    let status = r.status();
    let token_failed = *outcome == Outcome::TokenFail;
    let appender = facts.kind.map(|k| k == FileKind::Appender);
    let answered = Answered::of(status, appender, token_failed);
    let file_answer = matches!(answered, Answered::Immutable | Answered::Appender);
    if d.cache.is_set() {
        d.cache.apply(answered, unix_now(), r.headers_mut());
    }
    if ADD_HEADER_STATUSES.contains(&status.as_u16()) {
        for (k, v) in &d.add_headers {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    if let Some(c) = &d.cors {
        c.apply(req, r.headers_mut());
    }
    if let Some(g) = &d.gzip {
        let compressible = file_answer && facts.content_type.is_some_and(|t| g.compressible(t));
        if compressible {
            add_vary(r.headers_mut(), "Accept-Encoding");
            if status == StatusCode::OK
                && !head
                && !req.contains_key(RANGE)
                && compress::accepts_gzip(req)
                && !r.headers().contains_key(CONTENT_ENCODING)
            {
                r = gzip(g, req, r).await;
            }
        }
    }
    if let Some(spec) = d.limit_rate {
        if !head && !matches!(r.body(), Body::Empty) {
            r.extensions_mut().insert(spec);
        }
    }
    r
}

/// The gzip variant of a whole 200 answer of a local file (or fixed
/// bytes); proxied bodies and bodies outside `gzip_min_length` ..
/// [`compress::MAX_COMPRESSED_INPUT`] go out as they are. A request whose
/// `If-None-Match` names the variant's tag gets 304.
async fn gzip(g: &compress::Gzip, req: &HeaderMap, r: Response<Body>) -> Response<Body> {
    let len = match r.body() {
        Body::File(f) => f.len(),
        Body::Full(b) => b.len() as u64,
        _ => return r,
    };
    if !g.worth(len) {
        return r;
    }
    let tag = r.headers().get(ETAG).and_then(compress::gzip_etag);
    let (mut parts, body) = r.into_parts();
    if let Some(t) = &tag {
        if crate::http::conditional::none_match(req, t) {
            let mut nm = Response::from_parts(parts, body::empty());
            *nm.status_mut() = StatusCode::NOT_MODIFIED;
            let h = nm.headers_mut();
            h.remove(CONTENT_LENGTH);
            h.remove(http::header::CONTENT_TYPE);
            h.remove(http::header::CONTENT_DISPOSITION);
            h.remove(ACCEPT_RANGES);
            h.insert(ETAG, t.clone());
            return nm;
        }
    }
    let level = g.level;
    let done = tokio::task::spawn_blocking(move || compress_body(body, level)).await;
    let gz = match done {
        Ok(Ok(b)) => b,
        Ok(Err((e, body))) => {
            // A file that cannot be read whole: send it as it is; its own
            // reads report the problem and abort the connection.
            tracing::warn!("gzip skipped: {e}");
            return Response::from_parts(parts, body);
        }
        Err(e) => {
            tracing::error!("gzip task failed: {e}");
            return response::error(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let h = &mut parts.headers;
    h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(gz.len()));
    h.remove(ACCEPT_RANGES);
    match tag {
        Some(t) => h.insert(ETAG, t),
        None => h.remove(ETAG),
    };
    Response::from_parts(parts, body::full(gz))
}

/// Reads a file or fixed body whole and gzips it; on a read error the body
/// is handed back.
fn compress_body(body: Body, level: u32) -> Result<Bytes, (std::io::Error, Body)> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    let result = match &body {
        Body::Full(b) => enc.write_all(b),
        Body::File(f) => write_file(&mut enc, f),
        _ => Ok(()),
    };
    match result.and_then(|()| enc.finish()) {
        Ok(v) => Ok(Bytes::from(v)),
        Err(e) => Err((e, body)),
    }
}

fn write_file(out: &mut impl Write, f: &FileBody) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; body::CHUNK];
    for seg in f.segments() {
        match seg {
            Segment::Bytes(b) => out.write_all(b)?,
            Segment::File { offset, len } => {
                let (mut at, end) = (*offset, offset + len);
                while at < end {
                    let n = (end - at).min(buf.len() as u64) as usize;
                    let chunk = &mut buf[..n];
                    f.file().read_exact_at(chunk, at)?;
                    out.write_all(chunk)?;
                    at += n as u64;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_fixed_bytes() {
        let text = "hello hello hello hello hello hello".repeat(10);
        let gz = compress_body(body::full(text.clone()), 6).unwrap();
        let mut d = flate2::read::GzDecoder::new(&gz[..]);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut d, &mut back).unwrap();
        assert_eq!(back, text);
        assert!(gz.len() < text.len());
    }
}
