//! Validators (ETag, Last-Modified) that a file ID carries itself
//! (module-behaviour.md §7).

use http::header::HeaderValue;

use crate::fileid::{FileId, FileKind};
use crate::http::conditional;

/// ETag and Last-Modified carried by the ID itself: normal and trunk files
/// are immutable, so every replica answers with the same validators.
pub fn id_validators(id: &FileId) -> Option<(HeaderValue, i64)> {
    match id.kind() {
        FileKind::Normal | FileKind::Trunk(_) => id.size().map(|size| {
            let enc = id.encoded();
            (
                conditional::etag_for_id(enc.crc32, size, enc.create_ts),
                enc.create_ts,
            )
        }),
        _ => None,
    }
}
