//! Serving a non-local file over the FastDFS storage protocol
//! (`proxy_via = storage`; docs/module-behaviour.md §8.3, docs/wire-protocol.md
//! §6.2): QUERY_FILE_INFO gives the size (and answers HEAD), DOWNLOAD_FILE
//! with offset/length streams the bytes, one download per range. So a file
//! can be served while the source's HTTP server is down.
//!
//! The answer is the local path's: [`crate::http::plan`] decides it from
//! the size and the validators (the ID's, else the storage's size and
//! create time) — conditionals, FLV `start=`, single and multiple ranges,
//! `filename=`; [`fetch`] asks for the size and downloads the plan's file
//! pieces.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::sync::OwnedSemaphorePermit;

use super::Failure;
use crate::body::{Body, BodyError};
use crate::http::conditional;
use crate::http::plan::{self, Piece};
use crate::proto::{ProtoError, StorageClient};
use crate::response;

/// The request facts the answer needs ([`crate::http::plan::Ask`] with
/// the file's type, FLV flag and a ready boundary).
#[derive(Debug, Clone, Copy)]
pub struct Want<'a> {
    /// The request facts, the same as for a local file.
    pub ask: plan::Ask<'a>,
    /// FLV pseudo-streaming applies to this file.
    pub flv: bool,
    /// File content type (multipart part type).
    pub content_type: &'a str,
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
    /// `peer_response_timeout`: for each read and write of the file-info
    /// query, which decides whether this storage serves the request.
    pub response_timeout: Duration,
    /// `peer_idle_timeout`: for each read and write of the downloads that
    /// make up the body.
    pub idle_timeout: Duration,
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
        src.response_timeout,
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
    let rep = plan::Representation {
        size,
        etag: &etag,
        last_modified,
        content_type: want.content_type,
        flv: want.flv,
    };
    let p = plan::plan(&rep, &want.ask);
    Ok(response::planned(&p, head, |p| {
        stream(src, p.pieces().collect(), permit)
    }))
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
                Piece::File { start, len } => {
                    if len == 0 {
                        continue;
                    }
                    let d = StorageClient::download(
                        self.src.addr,
                        &self.src.group,
                        &self.src.remote,
                        start,
                        len,
                        self.src.connect_timeout,
                        self.src.idle_timeout,
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

fn stream(src: Source, pieces: VecDeque<Piece>, permit: Option<OwnedSemaphorePermit>) -> Body {
    let st = Streaming {
        src,
        pieces,
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
    use http::header::{CONTENT_RANGE, CONTENT_TYPE, IF_MODIFIED_SINCE, IF_NONE_MATCH};
    use http::{HeaderMap, StatusCode};

    use crate::http::query::Query;
    use crate::http::range::ByteRanges;

    use crate::http::plan::{Answer, Piece};
    use crate::http::range;

    fn want<'a>(h: &'a HeaderMap, q: &'a Query, r: Option<&'a ByteRanges>, flv: bool) -> Want<'a> {
        Want {
            ask: plan::Ask {
                headers: h,
                query: q,
                range: r,
                range_header_present: r.is_some(),
                multi_range: true,
                boundary: &|| "1795602202955932".to_owned(),
            },
            flv,
            content_type: "text/plain",
        }
    }

    fn etag() -> HeaderValue {
        conditional::etag_for_id(1, 350, 1_795_602_177)
    }

    /// What [`fetch`] decides for a file of `size` bytes: status, body
    /// pieces and headers.
    fn decide(size: u64, lm: i64, w: &Want<'_>) -> (StatusCode, Vec<Piece>, HeaderMap) {
        let e = etag();
        let p = plan::plan(
            &plan::Representation {
                size,
                etag: &e,
                last_modified: lm,
                content_type: w.content_type,
                flv: w.flv,
            },
            &w.ask,
        );
        let mut h = HeaderMap::new();
        p.write_headers(&mut h);
        (p.status(), p.pieces().collect(), h)
    }

    fn length(pieces: &[Piece]) -> u64 {
        pieces.iter().map(Piece::len).sum()
    }

    #[test]
    fn whole_file_and_empty_file() {
        let h = HeaderMap::new();
        let q = Query::parse("");
        let (status, pieces, headers) = decide(350, 1_795_602_177, &want(&h, &q, None, false));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(pieces, vec![Piece::File { start: 0, len: 350 }]);
        assert_eq!(headers[CONTENT_TYPE], "text/plain");
        assert!(!headers.contains_key(CONTENT_RANGE));
        let (status, pieces, _) = decide(0, 1, &want(&h, &q, None, false));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(length(&pieces), 0);
    }

    #[test]
    fn ranges() {
        let h = HeaderMap::new();
        let q = Query::parse("");
        let one = range::parse_range(b"bytes=0-9").unwrap().unwrap();
        let (status, pieces, headers) = decide(350, 1, &want(&h, &q, Some(&one), false));
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(pieces, vec![Piece::File { start: 0, len: 10 }]);
        assert_eq!(headers[CONTENT_RANGE], "bytes 0-9/350");
        let two = range::parse_range(b"bytes=0-4,10-14").unwrap().unwrap();
        let (_, pieces, headers) = decide(350, 1, &want(&h, &q, Some(&two), false));
        assert_eq!(pieces.len(), 5);
        assert_eq!(
            length(&pieces),
            196,
            "as recorded for p_range_multi_onlyA_B"
        );
        assert_eq!(
            headers[CONTENT_TYPE],
            "multipart/byteranges; boundary=1795602202955932"
        );
        let bad = range::parse_range(b"bytes=400-").unwrap().unwrap();
        let (status, pieces, _) = decide(350, 1, &want(&h, &q, Some(&bad), false));
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert!(pieces.is_empty());
        let mut w = want(&h, &q, Some(&two), false);
        w.ask.multi_range = false;
        assert_eq!(decide(350, 1, &w).0, StatusCode::RANGE_NOT_SATISFIABLE);
    }

    #[test]
    fn conditionals() {
        let q = Query::parse("");
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, etag());
        assert_eq!(
            decide(350, 1, &want(&h, &q, None, false)).0,
            StatusCode::NOT_MODIFIED
        );
        let mut h = HeaderMap::new();
        h.insert(IF_MODIFIED_SINCE, conditional::http_date(1_795_602_177));
        assert_eq!(
            decide(350, 1_795_602_177, &want(&h, &q, None, false)).0,
            StatusCode::NOT_MODIFIED
        );
        let mut h = HeaderMap::new();
        h.insert(
            http::header::IF_MATCH,
            HeaderValue::from_static("\"other\""),
        );
        assert_eq!(
            decide(350, 1, &want(&h, &q, None, false)).0,
            StatusCode::PRECONDITION_FAILED
        );
    }

    #[test]
    fn flv_start() {
        let h = HeaderMap::new();
        let q = Query::parse("start=500");
        let (status, pieces, _) = decide(8147, 1, &want(&h, &q, None, true));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(length(&pieces), 7660, "as recorded for p_flv_start_onlyA_B");
        assert_eq!(
            pieces[0],
            Piece::Bytes(Bytes::from_static(&crate::http::flv::FLV_HEADER))
        );
        let q = Query::parse("start=9000");
        assert_eq!(
            decide(8147, 1, &want(&h, &q, None, true)).0,
            StatusCode::BAD_REQUEST
        );
        // Not an FLV file: start= is ignored.
        let (_, pieces, _) = decide(8147, 1, &want(&h, &q, None, false));
        assert_eq!(length(&pieces), 8147);
    }

    #[test]
    fn the_ready_boundary_is_used() {
        let h = HeaderMap::new();
        let q = Query::parse("");
        let two = range::parse_range(b"bytes=0-4,10-14").unwrap().unwrap();
        let w = want(&h, &q, Some(&two), false);
        let e = etag();
        let p = plan::plan(
            &plan::Representation {
                size: 350,
                etag: &e,
                last_modified: 1,
                content_type: "text/plain",
                flv: false,
            },
            &w.ask,
        );
        let Answer::Multipart(mp) = p.answer() else {
            panic!("{:?}", p.answer())
        };
        assert_eq!(
            mp.content_type(),
            "multipart/byteranges; boundary=1795602202955932"
        );
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
