//! Local lookup of a [`FileId`] under one store path.

use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::StatusCode;

use super::cache::OpenFileCache;
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

/// Maps an open/stat error: absent paths are "not local", the rest are errors.
pub(super) fn classify(e: io::Error) -> Result<Lookup, StoreError> {
    match e.kind() {
        io::ErrorKind::NotFound => Ok(Lookup::Missing(Miss::NotFound)),
        io::ErrorKind::PermissionDenied => Err(StoreError::Forbidden(e)),
        // A name too long for the file system, a path through a non-directory
        // or a link loop: the file is not here (404), not an I/O failure.
        _ if e.raw_os_error().is_some_and(is_not_here_errno) => Ok(Lookup::Missing(Miss::NotFound)),
        _ => Err(StoreError::Io(e)),
    }
}

/// `ENAMETOOLONG`, `ENOTDIR`, `ELOOP`.
fn is_not_here_errno(raw: i32) -> bool {
    use rustix::io::Errno;
    [Errno::NAMETOOLONG, Errno::NOTDIR, Errno::LOOP]
        .iter()
        .any(|e| e.raw_os_error() == raw)
}

/// `dir/rel` (`rel` relative, no leading `/`) in one allocation with room
/// for `spare` more bytes; what `Path::join` gives, without its per-push
/// checks and regrowth.
pub(super) fn under(dir: &Path, rel: &str, spare: usize) -> PathBuf {
    let d = dir.as_os_str();
    let mut s = std::ffi::OsString::with_capacity(d.len() + 1 + rel.len() + spare);
    s.push(d);
    if !d.is_empty() && !d.as_encoded_bytes().ends_with(b"/") {
        s.push("/");
    }
    s.push(rel);
    PathBuf::from(s)
}

/// A plain file: `stat` semantics (slave files may be symlinks), but only
/// regular files inside the store are served.
pub(super) fn lookup_plain(
    id: &FileId,
    data: &Path,
    cache: &OpenFileCache,
) -> Result<Lookup, StoreError> {
    let path = under(data, id.true_filename(), 0);
    // Normal IDs name immutable content (and their size is checked against
    // the ID below); appender and slave files are revalidated every time.
    let immutable = matches!(id.kind(), FileKind::Normal);
    let c = match open_inside(&path, data, cache, immutable) {
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
/// `immutable`: the content cannot change in place, so an entry checked
/// within the cache TTL is used without any system call.
pub(super) fn open_inside(
    path: &Path,
    root: &Path,
    cache: &OpenFileCache,
    immutable: bool,
) -> io::Result<Result<super::cache::Cached, Miss>> {
    // Cached entries passed the checks below when opened or revalidated.
    if immutable {
        if let Some(c) = cache.fresh(path) {
            return Ok(Ok(c));
        }
    }
    if !cache.contains(path) {
        // A path found absent lately (store::cache::ABSENT_TTL) is not
        // opened again; one with a cached descriptor never gets here.
        if cache.known_absent(path) {
            return Ok(Err(Miss::NotFound));
        }
        // Nothing to revalidate: open (the descriptor's `fstat` tells a
        // regular file from anything else).
        let opened = open_new(path, root, cache);
        if opened
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        {
            cache.note_absent(path);
        }
        return opened;
    }
    let lmeta = std::fs::symlink_metadata(path)?;
    if !lmeta.file_type().is_symlink() && !lmeta.is_file() {
        return Ok(Err(Miss::NotRegular));
    }
    let now_at_path = if lmeta.file_type().is_symlink() {
        std::fs::metadata(path)?
    } else {
        lmeta
    };
    // A cached descriptor of the very file now at the path passed the
    // checks below when it was opened; anything else is checked afresh.
    let mut c = match cache.same_file(path, now_at_path.dev(), now_at_path.ino()) {
        Some(c) => c,
        None => {
            cache.forget(path);
            return open_new(path, root, cache);
        }
    };
    // Appender files grow in place: size and mtime always come from a
    // fresh `fstat` of the descriptor.
    let meta = c.file.metadata()?;
    if !meta.is_file() {
        cache.forget(path);
        return Ok(Err(Miss::NotRegular));
    }
    c.len = meta.len();
    c.mtime = meta.mtime();
    Ok(Ok(c))
}

/// Opens `path` afresh and caches it; size and mtime come from the new
/// descriptor.
fn open_new(
    path: &Path,
    root: &Path,
    cache: &OpenFileCache,
) -> io::Result<Result<super::cache::Cached, Miss>> {
    let file = match open_beneath(path, root, cache) {
        Ok(Ok(file)) => file,
        Ok(Err(miss)) => return Ok(Err(miss)),
        // A socket or device node at the path.
        Err(e) if e.raw_os_error() == Some(6) => return Ok(Err(Miss::NotRegular)), // ENXIO
        Err(e) => return Err(e),
    };
    Ok(cache.insert(path, file)?.ok_or(Miss::NotRegular))
}

/// Opens `path` (which lies under `root`) so that no component, symlinks
/// included, resolves outside `root`: one `openat2(RESOLVE_BENEATH)` from
/// the store directory (Linux 5.6+). Symlinks the kernel will not resolve
/// beneath (absolute targets, as FastDFS writes for slave files) and
/// kernels without `openat2` take the slower way: the canonical path must
/// lie inside the canonical store.
fn open_beneath(path: &Path, root: &Path, cache: &OpenFileCache) -> io::Result<Result<File, Miss>> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    // `path` was built as `root/rel` (see `under`): strip it bytewise, not
    // component by component.
    let rel = path
        .as_os_str()
        .as_bytes()
        .strip_prefix(root.as_os_str().as_bytes())
        .map(|r| r.strip_prefix(b"/").unwrap_or(r))
        .filter(|r| !r.is_empty() && !root.as_os_str().is_empty());
    if let Some(rel) = rel.map(std::ffi::OsStr::from_bytes) {
        let dir = cache.root(root)?;
        // O_NONBLOCK: a FIFO planted behind a symlink cannot block the
        // thread; it has no effect on regular files.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(&*dir, rel, flags, Mode::empty(), how) {
            Ok(fd) => return Ok(Ok(File::from(fd))),
            // EXDEV: resolution left `root`; ELOOP: a link it will not
            // follow; ENOSYS/EPERM/EINVAL: no openat2 here.
            Err(e)
                if [
                    rustix::io::Errno::XDEV,
                    rustix::io::Errno::LOOP,
                    rustix::io::Errno::NOSYS,
                    rustix::io::Errno::PERM,
                    rustix::io::Errno::INVAL,
                ]
                .contains(&e) => {}
            Err(e) => return Err(e.into()),
        }
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
    File::open(path).map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_is_join() {
        for (d, r) in [
            ("/a", "data"),
            ("/a/", "data"),
            ("", "x"),
            ("/", "00/01/f.txt"),
            ("a", "b"),
        ] {
            assert_eq!(
                under(Path::new(d), r, 3).as_os_str(),
                Path::new(d).join(r).as_os_str(),
                "{d} {r}"
            );
        }
    }
}
