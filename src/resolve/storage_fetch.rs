//! Serving a non-local file over the FastDFS storage protocol
//! (`proxy_via = storage`; docs/module-behaviour.md §8.3, docs/wire-protocol.md
//! §6.2): QUERY_FILE_INFO gives the size (and answers HEAD), DOWNLOAD_FILE
//! with offset/length streams the bytes, one download per range. So a file
//! can be served while the source's HTTP server is down.
//!
//! The answer follows the local rules (§10–§13): conditionals against the
//! ID's validators, FLV `start=`, single and multiple ranges,
//! `filename=`. [`plan`] decides it (pure); [`fetch`] does the I/O.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, LAST_MODIFIED,
};
use http::{HeaderMap, Response, StatusCode};
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::sync::OwnedSemaphorePermit;

use super::Failure;
use crate::body::{self, Body, BodyError};
use crate::http::conditional::{self, Precondition};
use crate::http::disposition::content_disposition;
use crate::http::flv::{self, FLV_HEADER};
use crate::http::multipart::Multipart;
use crate::http::query::Query;
use crate::http::range::{self, ByteRanges};
use crate::proto::{ProtoError, StorageClient};
use crate::response;

/// One piece of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Fixed bytes (multipart part header, FLV header, trailer).
    Bytes(Bytes),
    /// File bytes, inclusive range.
    File(RangeInclusive<u64>),
}

/// What to answer, decided before any byte is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// 304 with the validators.
    NotModified,
    /// An error status (412, 416 with `Content-Range: bytes */SIZE`, 400 for FLV).
    Refuse(StatusCode),
    /// Send these pieces with this status; `content_type` replaces the
    /// file's type (multipart); `content_range` for a single range.
    Send {
        /// 200 or 206.
        status: StatusCode,
        /// The body.
        pieces: Vec<Piece>,
        /// Multipart type, when several ranges.
        content_type: Option<HeaderValue>,
        /// Single-range `Content-Range`.
        content_range: Option<HeaderValue>,
    },
}

/// The request facts [`plan`] needs.
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// Request headers (conditionals).
    pub headers: &'a HeaderMap,
    /// Parsed query (`start`, `end`).
    pub query: &'a Query,
    /// Parsed Range, if any.
    pub range: Option<&'a ByteRanges>,
    /// A Range header was present (disables FLV).
    pub range_header_present: bool,
    /// `http.multi_range.enabled`.
    pub multi_range: bool,
    /// FLV pseudo-streaming applies to this file.
    pub flv: bool,
    /// File content type (multipart part type).
    pub content_type: &'a str,
    /// Multipart boundary.
    pub boundary: &'a str,
}

/// Decides the answer for a file of `size` bytes with validators
/// `etag`/`last_modified`, in the order the local path uses.
pub fn plan(size: u64, etag: &HeaderValue, last_modified: i64, w: &Want<'_>) -> Plan {
    let apply_range = match conditional::evaluate(w.headers, etag, last_modified) {
        Precondition::NotModified => return Plan::NotModified,
        Precondition::Failed => return Plan::Refuse(StatusCode::PRECONDITION_FAILED),
        Precondition::Proceed { apply_range } => apply_range,
    };
    let whole = || {
        if size == 0 {
            Vec::new()
        } else {
            vec![Piece::File(0..=size - 1)]
        }
    };
    if w.flv && !w.range_header_present {
        match flv::flv_slice(w.query.get("start"), w.query.get("end"), size) {
            Err(e) => return Plan::Refuse(e.status()),
            Ok(Some(slice)) => {
                let mut pieces = Vec::with_capacity(2);
                if slice.with_header {
                    pieces.push(Piece::Bytes(Bytes::from_static(&FLV_HEADER)));
                }
                pieces.push(Piece::File(slice.range));
                return Plan::Send {
                    status: StatusCode::OK,
                    pieces,
                    content_type: None,
                    content_range: None,
                };
            }
            Ok(None) => {}
        }
    }
    if let (Some(ranges), true) = (w.range, apply_range) {
        return match ranges.resolve(size, w.multi_range) {
            Ok(list) if list.len() == 1 => {
                let rg = list[0].clone();
                Plan::Send {
                    status: StatusCode::PARTIAL_CONTENT,
                    content_range: Some(range::content_range(*rg.start(), *rg.end(), size)),
                    pieces: vec![Piece::File(rg)],
                    content_type: None,
                }
            }
            Ok(list) => {
                let mp = Multipart::new(&list, size, w.content_type, w.boundary);
                let mut pieces = Vec::with_capacity(list.len() * 2 + 1);
                for (head, rg) in mp.parts() {
                    pieces.push(Piece::Bytes(head));
                    pieces.push(Piece::File(rg));
                }
                pieces.push(Piece::Bytes(mp.trailer()));
                Plan::Send {
                    status: StatusCode::PARTIAL_CONTENT,
                    pieces,
                    content_type: Some(mp.content_type()),
                    content_range: None,
                }
            }
            Err(e) => Plan::Refuse(e.status()),
        };
    }
    Plan::Send {
        status: StatusCode::OK,
        pieces: whole(),
        content_type: None,
        content_range: None,
    }
}

/// Total length of `pieces`.
pub fn length(pieces: &[Piece]) -> u64 {
    pieces.iter().fold(0u64, |acc, p| {
        acc.saturating_add(match p {
            Piece::Bytes(b) => b.len() as u64,
            Piece::File(r) => r
                .end()
                .checked_sub(*r.start())
                .map_or(0, |d| d.saturating_add(1)),
        })
    })
}

/// Maps a storage error to the failover classification.
pub fn failure(e: &ProtoError) -> Failure {
    match e {
        ProtoError::Timeout => Failure::Timeout,
        ProtoError::Status(2) => Failure::NotHere,
        _ => Failure::Unreachable,
    }
}

/// Where and what to fetch.
#[derive(Debug, Clone)]
pub struct Source {
    /// The storage's FastDFS address.
    pub addr: SocketAddr,
    /// Group name.
    pub group: String,
    /// Remote file name (`M00/...`).
    pub remote: String,
    /// `connect_timeout`.
    pub connect_timeout: Duration,
    /// `network_timeout`.
    pub network_timeout: Duration,
}

/// Validators for the answer: the ID's when it carries them, else derived
/// from the storage's size and create time.
pub type Validators = Option<(HeaderValue, i64)>;

/// Fetches the file from `src` and builds the answer (`head`: no download).
pub async fn fetch(
    src: Source,
    id_validators: Validators,
    want: &Want<'_>,
    head: bool,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<Response<Body>, Failure> {
    let info = StorageClient::query_file_info(
        src.addr,
        &src.group,
        &src.remote,
        src.connect_timeout,
        src.network_timeout,
    )
    .await
    .map_err(|e| {
        tracing::warn!("storage {}: query file info: {e}", src.addr);
        failure(&e)
    })?
    .ok_or(Failure::NotHere)?;
    let size = info.size;
    let (etag, last_modified) = id_validators.unwrap_or_else(|| {
        (
            conditional::etag_for_meta(size, info.create_timestamp),
            info.create_timestamp,
        )
    });
    let validators = |h: &mut HeaderMap| {
        h.insert(LAST_MODIFIED, conditional::http_date(last_modified));
        h.insert(ETAG, etag.clone());
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    };
    match plan(size, &etag, last_modified, want) {
        Plan::NotModified => {
            let mut r = response::empty(StatusCode::NOT_MODIFIED);
            validators(r.headers_mut());
            Ok(r)
        }
        Plan::Refuse(status) => {
            let mut r = response::error(status);
            if status == StatusCode::RANGE_NOT_SATISFIABLE {
                r.headers_mut()
                    .insert(CONTENT_RANGE, range::unsatisfied_range(size));
            }
            Ok(r)
        }
        Plan::Send {
            status,
            pieces,
            content_type,
            content_range,
        } => {
            let len = length(&pieces);
            let body = if head {
                body::empty()
            } else {
                stream(src, pieces, permit)
            };
            let mut r = Response::new(body);
            *r.status_mut() = status;
            let h = r.headers_mut();
            h.insert(http::header::SERVER, response::SERVER_NAME);
            h.insert(
                CONTENT_TYPE,
                content_type.unwrap_or_else(|| {
                    HeaderValue::from_str(want.content_type)
                        .unwrap_or(HeaderValue::from_static("application/octet-stream"))
                }),
            );
            h.insert(CONTENT_LENGTH, HeaderValue::from(len));
            if let Some(cr) = content_range {
                h.insert(CONTENT_RANGE, cr);
            }
            validators(h);
            if let Some(name) = want.query.get_bytes("filename") {
                if let Some(v) = content_disposition(name) {
                    h.insert(CONTENT_DISPOSITION, v);
                }
            }
            Ok(r)
        }
    }
}

struct Streaming {
    src: Source,
    pieces: VecDeque<Piece>,
    current: Option<crate::proto::Download>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Streaming {
    async fn next(&mut self) -> Option<Result<Bytes, ProtoError>> {
        loop {
            if let Some(d) = self.current.as_mut() {
                match d.next_chunk().await {
                    Some(r) => return Some(r),
                    None => self.current = None,
                }
            }
            match self.pieces.pop_front()? {
                Piece::Bytes(b) => return Some(Ok(b)),
                Piece::File(r) => {
                    let len = length(&[Piece::File(r.clone())]);
                    if len == 0 {
                        continue;
                    }
                    let d = StorageClient::download(
                        self.src.addr,
                        &self.src.group,
                        &self.src.remote,
                        *r.start(),
                        len,
                        self.src.connect_timeout,
                        self.src.network_timeout,
                    )
                    .await;
                    match d {
                        Ok(d) if d.len == len => self.current = Some(d),
                        Ok(_) => {
                            return Some(Err(ProtoError::BadBody("download shorter than asked")))
                        }
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }
    }
}

fn stream(src: Source, pieces: Vec<Piece>, permit: Option<OwnedSemaphorePermit>) -> Body {
    let st = Streaming {
        src,
        pieces: pieces.into(),
        current: None,
        _permit: permit,
    };
    let s = futures_util::stream::unfold((st, false), |(mut st, failed)| async move {
        if failed {
            return None;
        }
        let item = st.next().await?;
        let failed = item.is_err();
        Some((item, (st, failed)))
    })
    .map(|r| match r {
        Ok(b) => Ok(Frame::data(b)),
        Err(e) => {
            tracing::error!("aborting storage-protocol response: {e}");
            Err(Box::new(e) as BodyError)
        }
    });
    crate::body::stream(StreamBody::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, RANGE};

    fn want<'a>(h: &'a HeaderMap, q: &'a Query, r: Option<&'a ByteRanges>, flv: bool) -> Want<'a> {
        Want {
            headers: h,
            query: q,
            range: r,
            range_header_present: r.is_some(),
            multi_range: true,
            flv,
            content_type: "text/plain",
            boundary: "1795602202955932",
        }
    }

    fn etag() -> HeaderValue {
        conditional::etag_for_id(1, 350, 1_795_602_177)
    }

    #[test]
    fn whole_file_and_empty_file() {
        let h = HeaderMap::new();
        let q = Query::parse("");
        let p = plan(350, &etag(), 1_795_602_177, &want(&h, &q, None, false));
        assert_eq!(
            p,
            Plan::Send {
                status: StatusCode::OK,
                pieces: vec![Piece::File(0..=349)],
                content_type: None,
                content_range: None
            }
        );
        let p = plan(0, &etag(), 1, &want(&h, &q, None, false));
        let Plan::Send { pieces, .. } = p else {
            panic!()
        };
        assert!(pieces.is_empty());
    }

    #[test]
    fn ranges() {
        let h = HeaderMap::new();
        let q = Query::parse("");
        let one = range::parse_range(b"bytes=0-9").unwrap().unwrap();
        let Plan::Send {
            status,
            pieces,
            content_range,
            ..
        } = plan(350, &etag(), 1, &want(&h, &q, Some(&one), false))
        else {
            panic!()
        };
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(pieces, vec![Piece::File(0..=9)]);
        assert_eq!(content_range.unwrap(), "bytes 0-9/350");
        let two = range::parse_range(b"bytes=0-4,10-14").unwrap().unwrap();
        let Plan::Send {
            pieces,
            content_type,
            ..
        } = plan(350, &etag(), 1, &want(&h, &q, Some(&two), false))
        else {
            panic!()
        };
        assert_eq!(pieces.len(), 5);
        assert_eq!(
            length(&pieces),
            196,
            "as recorded for p_range_multi_onlyA_B"
        );
        assert_eq!(
            content_type.unwrap(),
            "multipart/byteranges; boundary=1795602202955932"
        );
        let bad = range::parse_range(b"bytes=400-").unwrap().unwrap();
        assert_eq!(
            plan(350, &etag(), 1, &want(&h, &q, Some(&bad), false)),
            Plan::Refuse(StatusCode::RANGE_NOT_SATISFIABLE)
        );
        let mut w = want(&h, &q, Some(&two), false);
        w.multi_range = false;
        assert!(matches!(plan(350, &etag(), 1, &w), Plan::Refuse(_)));
    }

    #[test]
    fn conditionals() {
        let q = Query::parse("");
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, etag());
        assert_eq!(
            plan(350, &etag(), 1, &want(&h, &q, None, false)),
            Plan::NotModified
        );
        let mut h = HeaderMap::new();
        h.insert(IF_MODIFIED_SINCE, conditional::http_date(1_795_602_177));
        assert_eq!(
            plan(350, &etag(), 1_795_602_177, &want(&h, &q, None, false)),
            Plan::NotModified
        );
        let mut h = HeaderMap::new();
        h.insert(
            http::header::IF_MATCH,
            HeaderValue::from_static("\"other\""),
        );
        assert_eq!(
            plan(350, &etag(), 1, &want(&h, &q, None, false)),
            Plan::Refuse(StatusCode::PRECONDITION_FAILED)
        );
        let _ = RANGE;
    }

    #[test]
    fn flv_start() {
        let h = HeaderMap::new();
        let q = Query::parse("start=500");
        let Plan::Send { pieces, .. } = plan(8147, &etag(), 1, &want(&h, &q, None, true)) else {
            panic!()
        };
        assert_eq!(length(&pieces), 7660, "as recorded for p_flv_start_onlyA_B");
        assert_eq!(pieces[0], Piece::Bytes(Bytes::from_static(&FLV_HEADER)));
        let q = Query::parse("start=9000");
        assert_eq!(
            plan(8147, &etag(), 1, &want(&h, &q, None, true)),
            Plan::Refuse(StatusCode::BAD_REQUEST)
        );
        // Not an FLV file: start= is ignored.
        let Plan::Send { pieces, .. } = plan(8147, &etag(), 1, &want(&h, &q, None, false)) else {
            panic!()
        };
        assert_eq!(length(&pieces), 8147);
    }

    #[test]
    fn error_classification() {
        assert_eq!(failure(&ProtoError::Timeout), Failure::Timeout);
        assert_eq!(failure(&ProtoError::Status(2)), Failure::NotHere);
        assert_eq!(failure(&ProtoError::Status(22)), Failure::Unreachable);
        assert_eq!(
            failure(&ProtoError::Io(
                std::io::ErrorKind::ConnectionRefused.into()
            )),
            Failure::Unreachable
        );
    }
}
