//! Serving a file found on local disk (docs/module-behaviour.md §10–§13):
//! [`crate::http::plan`] decides the answer (conditional requests, FLV
//! `start=`, Range and multipart); here its pieces become segments of the
//! open file's body (offset by a trunk slot's header).

use http::{HeaderMap, HeaderValue, Response};

use crate::body::{Body, FileBody, Segment};
use crate::http::plan::{self, Answer, Piece};
use crate::http::query::Query;
use crate::http::range::ByteRanges;
use crate::response;
use crate::store::LocalFile;

pub use crate::http::plan::Served;

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

/// Builds the response for a local file.
pub fn serve(ent: Entity<'_>, ask: &Ask<'_>) -> (Served, Response<Body>) {
    let rep = plan::Representation {
        size: ent.file.len,
        etag: &ent.etag,
        last_modified: ent.last_modified,
        content_type: ent.content_type,
        flv: ent.flv,
    };
    let p = plan::plan(
        &rep,
        &plan::Ask {
            headers: ask.headers,
            query: ask.query,
            range: ask.range,
            range_header_present: ask.range_header_present,
            multi_range: ask.multi_range,
            boundary: &ask.boundary,
        },
    );
    if let Answer::BadFlv(e) = p.answer() {
        tracing::warn!("bad FLV start/end for {}: {e}", ent.file.path.display());
    }
    let (file, base) = (ent.file.file, ent.file.offset);
    let r = response::planned(&p, ask.head, |p| {
        let pieces = p.pieces();
        let mut segments = Vec::with_capacity(pieces.len());
        segments.extend(pieces.map(|piece| match piece {
            Piece::Bytes(b) => Segment::Bytes(b),
            Piece::File { start, len } => Segment::File {
                offset: base + start,
                len,
            },
        }));
        let fb = FileBody::new(file, segments);
        debug_assert_eq!(fb.len(), p.content_length());
        fb.into_body()
    });
    (p.served(), r)
}
