//! Local lookup of a [`FileId`] under one store path.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::StatusCode;

use super::cache::OpenFileCache;
use super::trunk;
use crate::fileid::{FileId, FileKind};

/// A file found on local disk, ready to be served.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Open descriptor (possibly a trunk file shared by many IDs).
    pub file: Arc<File>,
    /// Where the content starts inside `file` (0, or after a trunk slot header).
    pub offset: u64,
    /// Content length.
    pub len: u64,
    /// Modification time, Unix seconds (the slot header's for trunk files).
    pub mtime: i64,
    /// Path opened (for logs).
    pub path: PathBuf,
}

/// Why a file counts as not local; each is logged with the path tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Nothing at the path.
    NotFound,
    /// Present but its size differs from the size in the ID (partial sync).
    SizeMismatch {
        /// Size encoded in the ID.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A directory or other non-regular file.
    NotRegular,
    /// A symlink whose target lies outside the store path.
    OutsideStore,
    /// Trunk slot free (type byte 0 or unknown).
    TrunkSlotFree,
    /// Trunk slot header differs from what the ID implies (slot reused).
    TrunkHeaderMismatch,
    /// Trunk file shorter than the slot.
    TrunkShort,
}

/// The result of a lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Serve this.
    Found(LocalFile),
    /// Treat as not local (replication-lag rules apply).
    Missing(Miss),
}

/// I/O failures that are not "missing": answered with an error status.
#[derive(Debug)]
pub enum StoreError {
    /// Permission denied on the file.
    Forbidden(io::Error),
    /// Any other I/O error.
    Io(io::Error),
}

impl StoreError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            StoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            StoreError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Forbidden(e) => write!(f, "permission denied: {e}"),
            StoreError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

fn classify(e: io::Error) -> Result<Lookup, StoreError> {
    match e.kind() {
        io::ErrorKind::NotFound => Ok(Lookup::Missing(Miss::NotFound)),
        io::ErrorKind::PermissionDenied => Err(StoreError::Forbidden(e)),
        _ if e.raw_os_error() == Some(20) => Ok(Lookup::Missing(Miss::NotFound)), // ENOTDIR
        _ => Err(StoreError::Io(e)),
    }
}

/// Looks `id` up under `store_path` (the `store_pathN` its `Mxx` names).
pub fn lookup(id: &FileId, store_path: &Path, cache: &OpenFileCache) -> Result<Lookup, StoreError> {
    let data = store_path.join("data");
    match id.kind() {
        FileKind::Trunk(slot) => trunk::lookup(id, slot, &data, cache),
        _ => lookup_plain(id, &data, cache),
    }
}

/// A plain file: `stat` semantics (slave files may be symlinks), but only
/// regular files inside the store are served.
pub(super) fn lookup_plain(
    id: &FileId,
    data: &Path,
    cache: &OpenFileCache,
) -> Result<Lookup, StoreError> {
    let path = data.join(id.true_filename());
    let c = match open_inside(&path, data, cache) {
        Ok(Ok(c)) => c,
        Ok(Err(miss)) => return Ok(Lookup::Missing(miss)),
        Err(e) => return classify(e),
    };
    if let Some(expected) = id.size() {
        if c.len != expected {
            return Ok(Lookup::Missing(Miss::SizeMismatch {
                expected,
                actual: c.len,
            }));
        }
    }
    Ok(Lookup::Found(LocalFile {
        file: c.file,
        offset: 0,
        len: c.len,
        mtime: c.mtime,
        path,
    }))
}

/// Opens `path` through the cache, refusing non-regular files and paths
/// that resolve outside `root` through a symlink, whether the link is the
/// file itself or one of the directories on the way.
pub(super) fn open_inside(
    path: &Path,
    root: &Path,
    cache: &OpenFileCache,
) -> io::Result<Result<super::cache::Cached, Miss>> {
    let lmeta = std::fs::symlink_metadata(path)?;
    if !lmeta.file_type().is_symlink() && !lmeta.is_file() {
        return Ok(Err(Miss::NotRegular));
    }
    let target = std::fs::canonicalize(path)?;
    let root = std::fs::canonicalize(root)?;
    if !target.starts_with(&root) {
        tracing::warn!(
            "refusing {}: a symlink leads outside the store ({})",
            path.display(),
            target.display()
        );
        return Ok(Err(Miss::OutsideStore));
    }
    let c = cache.open(path)?;
    if !c.file.metadata()?.is_file() {
        cache.forget(path);
        return Ok(Err(Miss::NotRegular));
    }
    Ok(Ok(c))
}
