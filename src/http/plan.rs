//! One decision for how a file is answered (docs/module-behaviour.md §7,
//! §10–§13; RFC 9110 §13–§15).
//!
//! From the size and validators of a representation and the request,
//! [`plan`] says the status, the headers and the body as [`Piece`]s
//! (literal bytes and ranges of the file), without touching the file. The
//! local path ([`crate::serve`]) turns the pieces into ranges of the open
//! file, the storage-protocol fetch ([`crate::resolve::storage_fetch`])
//! into ranged downloads from a peer storage; the early 304 of
//! [`crate::handler`] is [`early_not_modified`]. One renderer
//! ([`crate::response::planned`]) writes every plan as a response.
//!
//! The steps, in the module's order:
//! 1. preconditions ([`conditional::evaluate`], RFC 9110 §13.2.2): 412, 304,
//!    or go on — `If-Range` (§13.1.5) deciding whether a Range applies;
//! 2. FLV `start=`/`end=` (§12) when the file is FLV and the request has no
//!    `Range` header at all — even one ignored for its unit (module quirk,
//!    kept) — and before any Range: 200 (never 206, no `Content-Range`)
//!    with the slice, the 13-byte FLV header first when `start` > 0, or
//!    400;
//! 3. Range (RFC 9110 §14.2, module §11): one range → 206 with
//!    `Content-Range` (§14.4); several → 206 `multipart/byteranges`
//!    (§14.6) in the module's framing (§11.4); unsatisfiable → 416 with
//!    `Content-Range: bytes */SIZE` (§15.5.17; a correction of the module,
//!    §16.2);
//! 4. else 200 with the whole file; an empty file is a 200 with
//!    `Content-Length: 0` (§10).
//!
//! Headers of a 200/206, in this order: `Content-Type` (the file's type
//! through [`content_type`], or the multipart type), `Content-Length`
//! (RFC 9110 §8.6: bytes sent, + 13 for the FLV header, the multipart
//! total), `Content-Range` (one range), `Last-Modified` (§8.8.2; the ID's
//! create time for normal/trunk files, module §7), `ETag` (§8.8.3),
//! `Accept-Ranges: bytes` (§14.3; the module sends it on every 200/206,
//! §10), `Content-Disposition` (`filename=`, RFC 6266, module §10).
//! A 304 (RFC 9110 §15.4.5) carries `Last-Modified`, `ETag` and
//! `Accept-Ranges`, as nginx's own 304 does (recorded `inm_star_A`, §7);
//! the module's early 304 had none of them. 412 and 400 carry no entity
//! headers; a 416 only its `Content-Range`. The renderer adds `Server`
//! first, and the error text body for 412/416/400.

use std::fmt;
use std::ops::RangeInclusive;

use ::http::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, LAST_MODIFIED,
};
use ::http::{HeaderMap, HeaderValue, StatusCode};
use bytes::Bytes;

use super::conditional::{self, Precondition};
use super::disposition::content_disposition;
use super::flv::{self, FlvError, FlvSlice, FLV_HEADER};
use super::multipart::Multipart;
use super::query::Query;
use super::range::{self, ByteRanges, RangeError};

/// The type sent when the configured one is not a valid header value.
pub const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";

/// `Content-Type` for a configured type (`mime.types`,
/// `http.default_content_type`, the token-fail file's type): the type
/// itself, or [`FALLBACK_CONTENT_TYPE`] when it cannot be a header value
/// (a control character, RFC 9110 §5.5).
pub fn content_type(configured: &str) -> HeaderValue {
    HeaderValue::from_str(configured).unwrap_or(HeaderValue::from_static(FALLBACK_CONTENT_TYPE))
}

/// What is known about the representation answered.
#[derive(Debug, Clone, Copy)]
pub struct Representation<'a> {
    /// Its length in bytes.
    pub size: u64,
    /// Strong validator.
    pub etag: &'a HeaderValue,
    /// Last-Modified, Unix seconds.
    pub last_modified: i64,
    /// The configured type of the file (also the multipart part type).
    pub content_type: &'a str,
    /// `flv_extension` matches: FLV pseudo-streaming applies.
    pub flv: bool,
}

/// The request facts that shape the answer.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    /// Request headers (conditionals).
    pub headers: &'a HeaderMap,
    /// Parsed query (`filename`, `start`, `end`).
    pub query: &'a Query,
    /// The parsed Range header, if any (a non-`bytes` unit was already dropped).
    pub range: Option<&'a ByteRanges>,
    /// Whether a Range header was present at all (it disables FLV `start`).
    pub range_header_present: bool,
    /// `http.multi_range.enabled`.
    pub multi_range: bool,
    /// The multipart boundary; called only when the answer is multipart.
    pub boundary: &'a (dyn Fn() -> String + Sync),
}

impl fmt::Debug for Ask<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ask")
            .field("headers", &self.headers)
            .field("query", &self.query)
            .field("range", &self.range)
            .field("range_header_present", &self.range_header_present)
            .field("multi_range", &self.multi_range)
            .finish_non_exhaustive()
    }
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

/// Which answer, with what it needs beyond the representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 304: the preconditions say the client's copy is current.
    NotModified,
    /// 412: `If-Match` / `If-Unmodified-Since` failed.
    PreconditionFailed,
    /// The Range cannot be served (416, with `Content-Range: bytes */SIZE`).
    RangeRefused(RangeError),
    /// Bad FLV `start`/`end` (400).
    BadFlv(FlvError),
    /// 200 with the whole file.
    Whole,
    /// 206 with one range.
    Partial(RangeInclusive<u64>),
    /// 206 `multipart/byteranges` with 2..5 ranges.
    Multipart(Multipart),
    /// 200 with an FLV slice, maybe after the FLV header.
    Flv(FlvSlice),
}

/// One piece of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal bytes (multipart part header and trailer, FLV header).
    Bytes(Bytes),
    /// `len` bytes of the representation from `start` (relative to its
    /// first byte: a trunk slot's offset is the renderer's business).
    File {
        /// First byte.
        start: u64,
        /// Number of bytes.
        len: u64,
    },
}

impl Piece {
    /// Bytes this piece sends.
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File { len, .. } => *len,
        }
    }

    /// Whether this piece sends nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn range(r: &RangeInclusive<u64>) -> Piece {
        Piece::File {
            start: *r.start(),
            len: range_len(r),
        }
    }
}

/// How one file is answered: status, headers and body pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    answer: Answer,
    size: u64,
    etag: &'a HeaderValue,
    last_modified: i64,
    content_type: &'a str,
    filename: Option<&'a [u8]>,
}

/// Decides the answer for `rep` (docs/module-behaviour.md §10–§13; the steps in
/// the module doc).
pub fn plan<'a>(rep: &Representation<'a>, ask: &Ask<'a>) -> Plan<'a> {
    let answer = decide(rep, ask);
    Plan {
        answer,
        size: rep.size,
        etag: rep.etag,
        last_modified: rep.last_modified,
        content_type: rep.content_type,
        filename: ask.query.get_bytes("filename"),
    }
}

fn decide(rep: &Representation<'_>, ask: &Ask<'_>) -> Answer {
    let apply_range = match conditional::evaluate(ask.headers, rep.etag, rep.last_modified) {
        Precondition::NotModified => return Answer::NotModified,
        Precondition::Failed => return Answer::PreconditionFailed,
        Precondition::Proceed { apply_range } => apply_range,
    };
    if rep.flv && !ask.range_header_present {
        match flv::flv_slice(ask.query.get("start"), ask.query.get("end"), rep.size) {
            Err(e) => return Answer::BadFlv(e),
            Ok(Some(slice)) => return Answer::Flv(slice),
            Ok(None) => {}
        }
    }
    if let (Some(ranges), true) = (ask.range, apply_range) {
        return match ranges.resolve(rep.size, ask.multi_range) {
            Ok(mut list) if list.len() == 1 => Answer::Partial(list.swap_remove(0)),
            Ok(list) => Answer::Multipart(Multipart::new(
                &list,
                rep.size,
                rep.content_type,
                &(ask.boundary)(),
            )),
            Err(e) => Answer::RangeRefused(e),
        };
    }
    Answer::Whole
}

/// The 304 decided from the ID's validators before the disk is looked at
/// (docs/module-behaviour.md §7: normal and trunk files; a file missing here
/// still gets it). Not for `If-None-Match: *`: it asks whether a current
/// representation exists (RFC 9110 §13.1.2), which only the lookup can
/// tell. Otherwise the same evaluation as [`plan`]'s first step, so a
/// failing `If-Match` is never answered 304 here.
pub fn early_not_modified<'a>(
    headers: &HeaderMap,
    etag: &'a HeaderValue,
    last_modified: i64,
) -> Option<Plan<'a>> {
    let star = headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == b"*");
    if star || conditional::evaluate(headers, etag, last_modified) != Precondition::NotModified {
        return None;
    }
    Some(Plan {
        answer: Answer::NotModified,
        // A 304 sends neither a length nor a type.
        size: 0,
        etag,
        last_modified,
        content_type: "",
        filename: None,
    })
}

impl<'a> Plan<'a> {
    /// The decision.
    pub fn answer(&self) -> &Answer {
        &self.answer
    }

    /// The status line's code.
    pub fn status(&self) -> StatusCode {
        match &self.answer {
            Answer::NotModified => StatusCode::NOT_MODIFIED,
            Answer::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Answer::RangeRefused(e) => e.status(),
            Answer::BadFlv(e) => e.status(),
            Answer::Whole | Answer::Flv(_) => StatusCode::OK,
            Answer::Partial(_) | Answer::Multipart(_) => StatusCode::PARTIAL_CONTENT,
        }
    }

    /// The outcome kind: [`Served::Full`] and [`Served::Partial`] carry
    /// the file's content, [`Served::Refused`] an error text.
    pub fn served(&self) -> Served {
        match &self.answer {
            Answer::NotModified => Served::NotModified,
            Answer::PreconditionFailed | Answer::RangeRefused(_) | Answer::BadFlv(_) => {
                Served::Refused
            }
            Answer::Whole | Answer::Flv(_) => Served::Full,
            Answer::Partial(_) | Answer::Multipart(_) => Served::Partial,
        }
    }

    /// `Content-Length` of a 200/206: the sum of [`Plan::pieces`]; 0 for
    /// the other answers (their body is not the file's).
    pub fn content_length(&self) -> u64 {
        match &self.answer {
            Answer::Whole => self.size,
            Answer::Partial(r) => range_len(r),
            Answer::Multipart(mp) => mp.content_length(),
            Answer::Flv(slice) => slice.content_length(),
            Answer::NotModified
            | Answer::PreconditionFailed
            | Answer::RangeRefused(_)
            | Answer::BadFlv(_) => 0,
        }
    }

    /// The body of a 200/206, in order; nothing for the other answers.
    /// The whole file is one piece even when empty.
    pub fn pieces(&self) -> Pieces<'_> {
        let count = match &self.answer {
            Answer::Whole | Answer::Partial(_) => 1,
            Answer::Flv(slice) => 1 + usize::from(slice.with_header),
            Answer::Multipart(mp) => 2 * mp.part_count() + 1,
            Answer::NotModified
            | Answer::PreconditionFailed
            | Answer::RangeRefused(_)
            | Answer::BadFlv(_) => 0,
        };
        Pieces {
            plan: self,
            next: 0,
            count,
        }
    }

    /// Writes this answer's headers after `Server` (module doc: which, in
    /// which order).
    pub fn write_headers(&self, h: &mut HeaderMap) {
        match self.served() {
            Served::NotModified => self.validators(h),
            Served::Refused => {
                if let Answer::RangeRefused(e) = &self.answer {
                    if e.status() == StatusCode::RANGE_NOT_SATISFIABLE {
                        h.insert(CONTENT_RANGE, range::unsatisfied_range(self.size));
                    }
                }
            }
            Served::Full | Served::Partial => {
                let ct = match &self.answer {
                    Answer::Multipart(mp) => mp.content_type(),
                    _ => content_type(self.content_type),
                };
                h.insert(CONTENT_TYPE, ct);
                h.insert(CONTENT_LENGTH, HeaderValue::from(self.content_length()));
                if let Answer::Partial(r) = &self.answer {
                    h.insert(
                        CONTENT_RANGE,
                        range::content_range(*r.start(), *r.end(), self.size),
                    );
                }
                self.validators(h);
                if let Some(v) = self.filename.and_then(content_disposition) {
                    h.insert(CONTENT_DISPOSITION, v);
                }
            }
        }
    }

    fn validators(&self, h: &mut HeaderMap) {
        h.insert(LAST_MODIFIED, conditional::http_date(self.last_modified));
        h.insert(ETAG, self.etag.clone());
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }

    fn piece(&self, i: usize) -> Option<Piece> {
        match &self.answer {
            Answer::Whole => (i == 0).then_some(Piece::File {
                start: 0,
                len: self.size,
            }),
            Answer::Partial(r) => (i == 0).then(|| Piece::range(r)),
            Answer::Flv(slice) => match (slice.with_header, i) {
                (true, 0) => Some(Piece::Bytes(Bytes::from_static(&FLV_HEADER))),
                (true, 1) | (false, 0) => Some(Piece::range(&slice.range)),
                _ => None,
            },
            Answer::Multipart(mp) => match mp.part(i / 2) {
                Some((head, _)) if i % 2 == 0 => Some(Piece::Bytes(head)),
                Some((_, r)) => Some(Piece::range(&r)),
                None if i == 2 * mp.part_count() => Some(Piece::Bytes(mp.trailer())),
                None => None,
            },
            Answer::NotModified
            | Answer::PreconditionFailed
            | Answer::RangeRefused(_)
            | Answer::BadFlv(_) => None,
        }
    }
}

/// The pieces of a [`Plan`], in order (no allocation of their own).
#[derive(Debug, Clone)]
pub struct Pieces<'p> {
    plan: &'p Plan<'p>,
    next: usize,
    count: usize,
}

impl Iterator for Pieces<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        if self.next >= self.count {
            return None;
        }
        let p = self.plan.piece(self.next);
        self.next += 1;
        p
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.count - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Pieces<'_> {}

/// Length of an inclusive range, saturating (`5..=1` is empty).
fn range_len(r: &RangeInclusive<u64>) -> u64 {
    r.end()
        .checked_sub(*r.start())
        .map_or(0, |d| d.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::HeaderName;

    /// Create time of the recorded files (responses.jsonl).
    const LM: i64 = 1_795_602_177;
    const BOUNDARY: &str = "1795602202955932";

    fn etag() -> HeaderValue {
        conditional::etag_for_id(1, 350, LM)
    }

    fn boundary() -> String {
        BOUNDARY.to_owned()
    }

    fn no_boundary() -> String {
        panic!("boundary asked for a single-part answer")
    }

    /// A request: headers, query, Range header (None: absent).
    struct Req {
        headers: HeaderMap,
        query: Query,
        range_header: Option<&'static str>,
        ranges: Option<ByteRanges>,
        multi_range: bool,
    }

    impl Req {
        fn new(query: &str, range_header: Option<&'static str>, headers: &[(&str, &str)]) -> Req {
            let mut h = HeaderMap::new();
            for (k, v) in headers {
                h.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            Req {
                headers: h,
                query: Query::parse(query),
                range_header,
                ranges: range_header.and_then(|r| range::parse_range(r.as_bytes()).unwrap()),
                multi_range: true,
            }
        }

        fn ask<'a>(&'a self, boundary: &'a (dyn Fn() -> String + Sync)) -> Ask<'a> {
            Ask {
                headers: &self.headers,
                query: &self.query,
                range: self.ranges.as_ref(),
                range_header_present: self.range_header.is_some(),
                multi_range: self.multi_range,
                boundary,
            }
        }
    }

    fn rep(size: u64, etag: &HeaderValue, flv: bool) -> Representation<'_> {
        Representation {
            size,
            etag,
            last_modified: LM,
            content_type: if flv { "video/x-flv" } else { "text/plain" },
            flv,
        }
    }

    fn answer(size: u64, flv: bool, req: &Req) -> Answer {
        let e = etag();
        plan(&rep(size, &e, flv), &req.ask(&boundary))
            .answer()
            .clone()
    }

    /// Headers as (name, value) text, in order.
    fn headers(p: &Plan<'_>) -> Vec<(String, String)> {
        let mut h = HeaderMap::new();
        p.write_headers(&mut h);
        h.iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect()
    }

    fn names(p: &Plan<'_>) -> Vec<String> {
        headers(p).into_iter().map(|(k, _)| k).collect()
    }

    fn header(p: &Plan<'_>, name: &str) -> Option<String> {
        headers(p)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The body the pieces describe, over `file`.
    fn body(p: &Plan<'_>, file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in p.pieces() {
            match piece {
                Piece::Bytes(b) => out.extend_from_slice(&b),
                Piece::File { start, len } => {
                    out.extend_from_slice(&file[start as usize..(start + len) as usize])
                }
            }
        }
        out
    }

    fn file(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8).collect()
    }

    /// Checks what every plan must satisfy: the pieces add up to the
    /// Content-Length, the iterator's length is exact, the status matches
    /// the outcome kind.
    fn consistent(p: &Plan<'_>) {
        let pieces = p.pieces();
        assert_eq!(pieces.len(), pieces.clone().count());
        let sum: u64 = p.pieces().map(|pc| pc.len()).sum();
        assert_eq!(sum, p.content_length(), "{:?}", p.answer());
        let with_content = matches!(p.served(), Served::Full | Served::Partial);
        assert_eq!(with_content, p.pieces().len() > 0, "{:?}", p.answer());
        if with_content {
            assert_eq!(
                header(p, "content-length"),
                Some(p.content_length().to_string())
            );
        }
        let class = match p.served() {
            Served::Full => 200,
            Served::Partial => 206,
            Served::NotModified => 304,
            Served::Refused => p.status().as_u16(),
        };
        assert_eq!(p.status().as_u16(), class);
    }

    // --- step 4: the whole file ---------------------------------------

    #[test]
    fn whole_file() {
        let e = etag();
        let req = Req::new("", None, &[]);
        let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(p.answer(), &Answer::Whole);
        assert_eq!(p.status(), StatusCode::OK);
        assert_eq!(p.served(), Served::Full);
        assert_eq!(
            p.pieces().collect::<Vec<_>>(),
            vec![Piece::File { start: 0, len: 350 }]
        );
        assert_eq!(
            headers(&p),
            vec![
                ("content-type".into(), "text/plain".into()),
                ("content-length".into(), "350".into()),
                (
                    "last-modified".into(),
                    "Wed, 25 Nov 2026 10:22:57 GMT".into()
                ),
                ("etag".into(), e.to_str().unwrap().into()),
                ("accept-ranges".into(), "bytes".into()),
            ]
        );
    }

    #[test]
    fn empty_file_is_200_with_length_0_and_one_empty_piece() {
        // docs/module-behaviour.md §10 [observed]: 200, Content-Length: 0.
        let e = etag();
        let req = Req::new("", None, &[]);
        let p = plan(&rep(0, &e, false), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(p.status(), StatusCode::OK);
        assert_eq!(
            p.pieces().collect::<Vec<_>>(),
            vec![Piece::File { start: 0, len: 0 }]
        );
        assert!(p.pieces().all(|pc| pc.is_empty()));
        assert_eq!(header(&p, "content-length").as_deref(), Some("0"));
        // Any range on it is 416 (§11.2).
        let req = Req::new("", Some("bytes=0-"), &[]);
        assert_eq!(
            answer(0, false, &req),
            Answer::RangeRefused(RangeError::Unsatisfiable)
        );
    }

    #[test]
    fn filename_gives_content_disposition_last() {
        let e = etag();
        let req = Req::new("filename=my%20report.txt", None, &[]);
        let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(
            names(&p).last().map(String::as_str),
            Some("content-disposition")
        );
        assert!(header(&p, "content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"my report.txt\""));
        // On every answer with content, never on 304 or errors.
        let req = Req::new("filename=a.txt", Some("bytes=0-0,2-2"), &[]);
        let p = plan(&rep(350, &e, false), &req.ask(&boundary));
        assert!(header(&p, "content-disposition").is_some());
        let req = Req::new("filename=a.txt", Some("bytes=400-"), &[]);
        let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        assert_eq!(header(&p, "content-disposition"), None);
        let etag_text = e.to_str().unwrap().to_owned();
        let req = Req::new("filename=a.txt", None, &[("if-none-match", &etag_text)]);
        let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        assert_eq!(header(&p, "content-disposition"), None);
    }

    #[test]
    fn content_type_fallback() {
        assert_eq!(content_type("image/png"), "image/png");
        assert_eq!(
            content_type("text/html; charset=utf-8"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type("bad\r\ntype"), FALLBACK_CONTENT_TYPE);
        assert_eq!(content_type("a\x7fb"), FALLBACK_CONTENT_TYPE);
        // Bytes above 0x7f are obs-text (RFC 9110 §5.5), passed through.
        assert_eq!(content_type("caf\u{e9}").as_bytes(), "caf\u{e9}".as_bytes());
        // An empty configured type is a valid (empty) header value.
        assert_eq!(content_type(""), "");
        let e = etag();
        let req = Req::new("", None, &[]);
        let mut r = rep(5, &e, false);
        r.content_type = "x\ny";
        let p = plan(&r, &req.ask(&no_boundary));
        assert_eq!(
            header(&p, "content-type").as_deref(),
            Some(FALLBACK_CONTENT_TYPE)
        );
    }

    // --- step 3: Range ------------------------------------------------

    #[test]
    fn one_range_is_206_with_content_range() {
        let e = etag();
        let req = Req::new("", Some("bytes=0-9"), &[]);
        let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(p.answer(), &Answer::Partial(0..=9));
        assert_eq!(p.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(p.served(), Served::Partial);
        assert_eq!(
            p.pieces().collect::<Vec<_>>(),
            vec![Piece::File { start: 0, len: 10 }]
        );
        assert_eq!(
            names(&p),
            [
                "content-type",
                "content-length",
                "content-range",
                "last-modified",
                "etag",
                "accept-ranges"
            ]
        );
        assert_eq!(
            header(&p, "content-range").as_deref(),
            Some("bytes 0-9/350")
        );
        assert_eq!(header(&p, "content-length").as_deref(), Some("10"));
        // Suffix, open end, clamped end (§11.2).
        let req = Req::new("", Some("bytes=-5"), &[]);
        assert_eq!(answer(350, false, &req), Answer::Partial(345..=349));
        let req = Req::new("", Some("bytes=340-"), &[]);
        assert_eq!(answer(350, false, &req), Answer::Partial(340..=349));
        let req = Req::new("", Some("bytes=340-9999"), &[]);
        assert_eq!(answer(350, false, &req), Answer::Partial(340..=349));
        // `0-0` is one byte (correction, §16.2).
        let req = Req::new("", Some("bytes=0-0"), &[]);
        let e = etag();
        let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        assert_eq!(header(&p, "content-length").as_deref(), Some("1"));
        assert_eq!(body(&p, &file(350)), vec![0]);
    }

    #[test]
    fn several_ranges_are_multipart() {
        let e = etag();
        let req = Req::new("", Some("bytes=0-4,10-14"), &[]);
        let p = plan(&rep(350, &e, false), &req.ask(&boundary));
        consistent(&p);
        assert_eq!(p.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(p.served(), Served::Partial);
        let Answer::Multipart(mp) = p.answer() else {
            panic!("{:?}", p.answer())
        };
        assert_eq!(
            mp,
            &Multipart::new(&[0..=4, 10..=14], 350, "text/plain", BOUNDARY)
        );
        let pieces: Vec<Piece> = p.pieces().collect();
        assert_eq!(pieces.len(), 5);
        assert_eq!(pieces[1], Piece::File { start: 0, len: 5 });
        assert_eq!(pieces[3], Piece::File { start: 10, len: 5 });
        assert_eq!(pieces[4], Piece::Bytes(mp.trailer()));
        assert_eq!(
            p.content_length(),
            196,
            "as recorded for p_range_multi_onlyA_B"
        );
        assert_eq!(
            header(&p, "content-type").as_deref(),
            Some("multipart/byteranges; boundary=1795602202955932")
        );
        // No Content-Range on the whole answer (§11.4); the rest as for 206.
        assert_eq!(
            names(&p),
            [
                "content-type",
                "content-length",
                "last-modified",
                "etag",
                "accept-ranges"
            ]
        );
        // Request order kept, overlaps not merged; five ranges.
        let req = Req::new("", Some("bytes=5-9,0-9,5-9,-1,0-0"), &[]);
        let p = plan(&rep(350, &e, false), &req.ask(&boundary));
        consistent(&p);
        let Answer::Multipart(mp) = p.answer() else {
            panic!()
        };
        let ranges: Vec<_> = mp.parts().map(|(_, r)| r).collect();
        assert_eq!(ranges, vec![5..=9, 0..=9, 5..=9, 349..=349, 0..=0]);
        let b = body(&p, &file(350));
        assert_eq!(b.len() as u64, p.content_length());
        assert!(b.ends_with(b"\r\n--1795602202955932--\r\n"));
    }

    #[test]
    fn recorded_multipart_body_is_reproduced() {
        // range_A_09: `bytes=0-4,10-14` on the recorded 3300-byte text file.
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/real/responses.jsonl"
        ))
        .unwrap();
        let rec: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["id"] == "range_A_09_bytes=0-4,10-14")
            .unwrap();
        use base64::Engine;
        let want = base64::engine::general_purpose::STANDARD
            .decode(rec["body_b64"].as_str().unwrap())
            .unwrap();
        let ct = rec["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == "Content-Type")
            .map(|h| h[1].as_str().unwrap().to_owned())
            .unwrap();
        let b = ct
            .strip_prefix("multipart/byteranges; boundary=")
            .unwrap()
            .to_owned();
        let content = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/real/storageA/data/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt"
        ))
        .unwrap();
        let e = etag();
        let req = Req::new("", Some("bytes=0-4,10-14"), &[]);
        let rec_boundary = move || b.clone();
        let p = plan(&rep(3300, &e, false), &req.ask(&rec_boundary));
        assert_eq!(body(&p, &content), want);
        assert_eq!(header(&p, "content-type"), Some(ct));
    }

    #[test]
    fn unsatisfiable_range_is_416_with_content_range() {
        let e = etag();
        for (r, why) in [
            ("bytes=350-", RangeError::Unsatisfiable),
            ("bytes=400-", RangeError::Unsatisfiable),
            ("bytes=9-5", RangeError::Unsatisfiable),
            ("bytes=-0", RangeError::Unsatisfiable),
            ("bytes=0-1,350-", RangeError::Unsatisfiable),
        ] {
            let req = Req::new("", Some(r), &[]);
            let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
            consistent(&p);
            assert_eq!(p.answer(), &Answer::RangeRefused(why), "{r}");
            assert_eq!(p.status(), StatusCode::RANGE_NOT_SATISFIABLE);
            assert_eq!(p.served(), Served::Refused);
            // RFC 9110 §15.5.17; the module sent none (§11.2).
            assert_eq!(
                headers(&p),
                vec![("content-range".into(), "bytes */350".into())]
            );
            assert_eq!(p.pieces().count(), 0);
        }
        // Several ranges with multi-range disabled (§11.2).
        let mut req = Req::new("", Some("bytes=0-4,10-14"), &[]);
        req.multi_range = false;
        let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        assert_eq!(p.answer(), &Answer::RangeRefused(RangeError::MultiDisabled));
        assert_eq!(p.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(header(&p, "content-range").as_deref(), Some("bytes */350"));
        // A single range is still fine then.
        let mut req = Req::new("", Some("bytes=0-4"), &[]);
        req.multi_range = false;
        assert_eq!(answer(350, false, &req), Answer::Partial(0..=4));
    }

    #[test]
    fn foreign_range_unit_is_ignored() {
        // `items=0-9` was dropped at parse time: the whole file (§16.2).
        let req = Req::new("", Some("items=0-9"), &[]);
        assert!(req.ranges.is_none());
        assert_eq!(answer(350, false, &req), Answer::Whole);
    }

    // --- step 1: preconditions ----------------------------------------

    #[test]
    fn not_modified() {
        let e = etag();
        let etag_text = e.to_str().unwrap().to_owned();
        let date = conditional::http_date(LM);
        let date = date.to_str().unwrap();
        for h in [
            vec![("if-none-match", etag_text.as_str())],
            vec![("if-none-match", "*")],
            vec![("if-modified-since", date)],
        ] {
            let req = Req::new("", None, &h);
            let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
            consistent(&p);
            assert_eq!(p.answer(), &Answer::NotModified, "{h:?}");
            assert_eq!(p.status(), StatusCode::NOT_MODIFIED);
            assert_eq!(p.served(), Served::NotModified);
            assert_eq!(
                headers(&p),
                vec![
                    ("last-modified".into(), date.into()),
                    ("etag".into(), etag_text.clone()),
                    ("accept-ranges".into(), "bytes".into()),
                ]
            );
            assert_eq!(p.content_length(), 0);
        }
    }

    #[test]
    fn preconditions_come_before_range_and_flv() {
        let e = etag();
        let etag_text = e.to_str().unwrap().to_owned();
        // 304 even though the Range is unsatisfiable or the FLV start bad.
        let req = Req::new("", Some("bytes=9999-"), &[("if-none-match", &etag_text)]);
        assert_eq!(answer(350, false, &req), Answer::NotModified);
        let req = Req::new("start=9999", None, &[("if-none-match", &etag_text)]);
        assert_eq!(answer(350, true, &req), Answer::NotModified);
        // 412 likewise, and it beats 304 (RFC 9110 §13.2.2).
        let req = Req::new(
            "start=9999",
            Some("bytes=9999-"),
            &[("if-match", "\"other\""), ("if-none-match", &etag_text)],
        );
        assert_eq!(answer(350, true, &req), Answer::PreconditionFailed);
    }

    #[test]
    fn precondition_failed() {
        let e = etag();
        for h in [
            vec![("if-match", "\"other\"")],
            vec![("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        ] {
            let req = Req::new("filename=x", Some("bytes=0-1"), &h);
            let p = plan(&rep(350, &e, false), &req.ask(&no_boundary));
            consistent(&p);
            assert_eq!(p.answer(), &Answer::PreconditionFailed, "{h:?}");
            assert_eq!(p.status(), StatusCode::PRECONDITION_FAILED);
            assert_eq!(p.served(), Served::Refused);
            assert!(headers(&p).is_empty());
        }
    }

    #[test]
    fn if_range_decides_whether_the_range_applies() {
        let e = etag();
        let etag_text = e.to_str().unwrap().to_owned();
        let date = conditional::http_date(LM);
        let date = date.to_str().unwrap();
        let req = Req::new("", Some("bytes=0-9"), &[("if-range", &etag_text)]);
        assert_eq!(answer(350, false, &req), Answer::Partial(0..=9));
        let req = Req::new("", Some("bytes=0-9"), &[("if-range", date)]);
        assert_eq!(answer(350, false, &req), Answer::Partial(0..=9));
        // Stale: the whole file (RFC 9110 §13.1.5; recorded if_range_A).
        let req = Req::new(
            "",
            Some("bytes=0-9"),
            &[("if-range", "Wed, 01 Jan 2020 00:00:00 GMT")],
        );
        assert_eq!(answer(350, false, &req), Answer::Whole);
        let req = Req::new("", Some("bytes=0-9"), &[("if-range", "\"other\"")]);
        assert_eq!(answer(350, false, &req), Answer::Whole);
        // A stale If-Range also spares an unsatisfiable Range its 416.
        let req = Req::new("", Some("bytes=999-"), &[("if-range", "\"other\"")]);
        assert_eq!(answer(350, false, &req), Answer::Whole);
    }

    // --- step 2: FLV --------------------------------------------------

    #[test]
    fn flv_start() {
        let e = etag();
        let req = Req::new("start=500", None, &[]);
        let p = plan(&rep(8147, &e, true), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(p.status(), StatusCode::OK);
        assert_eq!(p.served(), Served::Full);
        assert_eq!(
            p.content_length(),
            7660,
            "as recorded for p_flv_start_onlyA_B"
        );
        let pieces: Vec<Piece> = p.pieces().collect();
        assert_eq!(
            pieces,
            vec![
                Piece::Bytes(Bytes::from_static(&FLV_HEADER)),
                Piece::File {
                    start: 500,
                    len: 7647
                }
            ]
        );
        // Status stays 200 with no Content-Range; the file's type (§12).
        assert_eq!(header(&p, "content-range"), None);
        assert_eq!(header(&p, "content-type").as_deref(), Some("video/x-flv"));
        // start=0: no header; start=-100: the last 100 bytes, no header.
        let req = Req::new("start=0", None, &[]);
        let p = plan(&rep(8147, &e, true), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(
            p.pieces().collect::<Vec<_>>(),
            vec![Piece::File {
                start: 0,
                len: 8147
            }]
        );
        let req = Req::new("start=-100", None, &[]);
        let p = plan(&rep(8147, &e, true), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(
            p.pieces().collect::<Vec<_>>(),
            vec![Piece::File {
                start: 8047,
                len: 100
            }]
        );
        // `end` is exclusive (§12 [observed] 1037-byte file: 113 bytes).
        let req = Req::new("start=100&end=200", None, &[]);
        let p = plan(&rep(1037, &e, true), &req.ask(&no_boundary));
        consistent(&p);
        assert_eq!(p.content_length(), 113);
        // No (parsable) start: the whole file.
        for q in ["", "start=abc", "end=100"] {
            let req = Req::new(q, None, &[]);
            assert_eq!(answer(8147, true, &req), Answer::Whole, "{q}");
        }
    }

    #[test]
    fn bad_flv_start_is_400_without_headers() {
        let e = etag();
        for (q, why) in [
            ("start=9000", FlvError::StartBeyondEnd),
            ("start=1000&end=500", FlvError::EmptySlice),
            ("start=0&end=0", FlvError::EmptySlice),
        ] {
            let req = Req::new(q, None, &[]);
            let p = plan(&rep(8147, &e, true), &req.ask(&no_boundary));
            consistent(&p);
            assert_eq!(p.answer(), &Answer::BadFlv(why), "{q}");
            assert_eq!(p.status(), StatusCode::BAD_REQUEST);
            assert_eq!(p.served(), Served::Refused);
            assert!(headers(&p).is_empty());
        }
    }

    #[test]
    fn flv_only_for_flv_files_and_without_a_range_header() {
        // Not an FLV file: start= is ignored.
        let req = Req::new("start=9000", None, &[]);
        assert_eq!(answer(8147, false, &req), Answer::Whole);
        // Any Range header disables FLV (§12), a satisfiable one is served.
        let req = Req::new("start=500", Some("bytes=0-9"), &[]);
        assert_eq!(answer(8147, true, &req), Answer::Partial(0..=9));
        // Even one ignored for its unit (module quirk kept).
        let req = Req::new("start=500", Some("items=0-9"), &[]);
        assert_eq!(answer(8147, true, &req), Answer::Whole);
        let req = Req::new("start=9000", Some("items=0-9"), &[]);
        assert_eq!(answer(8147, true, &req), Answer::Whole);
        // FLV comes before If-Range: a stale one does not matter to it.
        let req = Req::new("start=500", None, &[("if-range", "\"other\"")]);
        assert!(matches!(answer(8147, true, &req), Answer::Flv(_)));
    }

    // --- the early 304 ------------------------------------------------

    #[test]
    fn early_not_modified_from_the_id() {
        let e = etag();
        let etag_text = e.to_str().unwrap().to_owned();
        let date = conditional::http_date(LM);
        let date = date.to_str().unwrap().to_owned();
        let h = |pairs: &[(&str, &str)]| Req::new("", None, pairs).headers;
        let p = early_not_modified(&h(&[("if-none-match", &etag_text)]), &e, LM).unwrap();
        consistent(&p);
        assert_eq!(p.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(p.served(), Served::NotModified);
        // The same headers as the 304 of [`plan`], Accept-Ranges included.
        let req = Req::new("", None, &[("if-none-match", &etag_text)]);
        let full = plan(&rep(350, &e, false), &req.ask(&no_boundary));
        assert_eq!(headers(&p), headers(&full));
        assert_eq!(names(&p), ["last-modified", "etag", "accept-ranges"]);
        assert!(early_not_modified(&h(&[("if-modified-since", &date)]), &e, LM).is_some());
        // Not for `*`: only the lookup knows whether the file exists.
        assert!(early_not_modified(&h(&[("if-none-match", "*")]), &e, LM).is_none());
        // Nothing to say without a matching validator, or when a
        // precondition fails.
        assert!(early_not_modified(&h(&[]), &e, LM).is_none());
        assert!(early_not_modified(&h(&[("if-none-match", "\"other\"")]), &e, LM).is_none());
        assert!(early_not_modified(
            &h(&[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")]),
            &e,
            LM
        )
        .is_none());
        assert!(early_not_modified(
            &h(&[("if-match", "\"other\""), ("if-none-match", &etag_text)]),
            &e,
            LM
        )
        .is_none());
    }

    // --- across the table ---------------------------------------------

    #[test]
    fn every_combination_is_consistent() {
        let e = etag();
        let etag_text = e.to_str().unwrap().to_owned();
        let content = file(1037);
        let ranges = [
            None,
            Some("bytes=0-9"),
            Some("bytes=-5"),
            Some("bytes=1000-"),
            Some("bytes=2000-"),
            Some("bytes=0-1,5-6"),
            Some("bytes=0-1,2000-"),
            Some("items=0-9"),
        ];
        let queries = ["", "start=100", "start=5000", "start=abc", "filename=a.flv"];
        let conds: [&[(&str, &str)]; 5] = [
            &[],
            &[("if-none-match", &etag_text)],
            &[("if-match", "\"x\"")],
            &[("if-range", "\"x\"")],
            &[("if-range", &etag_text)],
        ];
        for size in [0u64, 1, 1037] {
            for flv in [false, true] {
                for r in ranges {
                    for q in queries {
                        for c in conds {
                            for multi in [false, true] {
                                let mut req = Req::new(q, r, c);
                                req.multi_range = multi;
                                let p = plan(&rep(size, &e, flv), &req.ask(&boundary));
                                consistent(&p);
                                if size == 1037 {
                                    let b = body(&p, &content);
                                    assert_eq!(b.len() as u64, p.content_length());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
