//! The FastDFS tracker/storage wire protocol (docs/wire-protocol.md, all sections).
//!
//! - [`frame`]: the 10-byte packet header (§1), command codes (§2), the
//!   fixed-width field helpers every body uses.
//! - [`tracker`]: pure request builders and reply parsers for the tracker
//!   commands (§3–§6.1): parameters, storage-ID pages, group and storage
//!   lists, fetch queries. Encoders for the replies exist so fakes and tests
//!   can round-trip.
//! - [`storage`]: pure builders/parsers for the storage commands of §6.2
//!   (DOWNLOAD_FILE, QUERY_FILE_INFO).
//! - [`upload`]: pure builders/parsers for storing files (§8): QUERY_STORE,
//!   UPLOAD_FILE, UPLOAD_APPENDER_FILE, UPLOAD_SLAVE_FILE, APPEND_FILE,
//!   SET_METADATA, DELETE_FILE.
//! - [`client`]: async tokio clients with bounded connect and I/O timeouts.
//!
//! Every parser is total: it returns a [`ProtoError`] for any byte slice it
//! cannot decode and never panics.

pub mod client;
pub mod frame;
pub mod storage;
pub mod tracker;
pub mod upload;

pub use client::{Download, SendError, StorageClient, TrackerClient};
pub use frame::{Header, IpWidth};
pub use storage::{FileInfo, FileInfoFlags};
pub use tracker::{
    FetchReply, GroupStat, StorageCounts, StorageIdsPage, StorageStat, StorageStatus, TrackerParams,
};
pub use upload::StoreTarget;

use std::sync::Arc;

/// Why a protocol exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// A socket operation failed (connect refused, reset, …); the error is
    /// kept so a log line says what happened.
    Io(IoError),
    /// Connecting or a single read/write took longer than its timeout.
    Timeout,
    /// The peer answered with this non-zero status (an errno: 2 ENOENT,
    /// 22 EINVAL, 95 EOPNOTSUPP, …).
    Status(u8),
    /// The 10-byte header is malformed: negative or oversized `pkg_len`, or
    /// a reply whose `cmd` is not 100.
    BadHeader,
    /// The reply body does not have the documented layout; names the part.
    BadBody(&'static str),
    /// The peer closed the connection before the announced bytes arrived.
    UnexpectedEof,
    /// No tracker address was configured.
    NoTracker,
    /// An argument cannot be encoded (empty or over-long group name, NUL in
    /// a file name, …); nothing was sent.
    BadRequest(&'static str),
}

/// A socket error inside [`ProtoError::Io`]: the [`std::io::Error`] itself,
/// shared so that [`ProtoError`] stays `Clone`. Two are equal when their
/// kinds are (the message is for logs).
#[derive(Debug, Clone)]
pub struct IoError(Arc<std::io::Error>);

impl IoError {
    /// The error's kind.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.0.kind()
    }

    /// The OS error number, when the OS gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.0.raw_os_error()
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind()
    }
}

impl Eq for IoError {}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> Self {
        IoError(Arc::new(e))
    }
}

impl From<std::io::ErrorKind> for IoError {
    fn from(kind: std::io::ErrorKind) -> Self {
        IoError::from(std::io::Error::from(kind))
    }
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtoError::Io(e) => write!(f, "fastdfs i/o error: {e}"),
            ProtoError::Timeout => f.write_str("fastdfs peer timed out"),
            ProtoError::Status(s) => write!(f, "fastdfs peer answered status {s}"),
            ProtoError::BadHeader => f.write_str("malformed fastdfs packet header"),
            ProtoError::BadBody(what) => write!(f, "malformed fastdfs reply body: {what}"),
            ProtoError::UnexpectedEof => f.write_str("fastdfs peer closed the connection early"),
            ProtoError::NoTracker => f.write_str("no tracker configured"),
            ProtoError::BadRequest(what) => write!(f, "cannot encode fastdfs request: {what}"),
        }
    }
}

impl std::error::Error for ProtoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProtoError::Io(e) => Some(&*e.0),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ProtoError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => ProtoError::UnexpectedEof,
            std::io::ErrorKind::TimedOut => ProtoError::Timeout,
            _ => ProtoError::Io(IoError::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_conversion() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            ProtoError::from(Error::from(ErrorKind::UnexpectedEof)),
            ProtoError::UnexpectedEof
        );
        assert_eq!(
            ProtoError::from(Error::from(ErrorKind::TimedOut)),
            ProtoError::Timeout
        );
        assert_eq!(
            ProtoError::from(Error::from(ErrorKind::ConnectionReset)),
            ProtoError::Io(ErrorKind::ConnectionReset.into())
        );
        let refused = ProtoError::from(Error::new(ErrorKind::ConnectionRefused, "port 23000"));
        assert_eq!(refused.to_string(), "fastdfs i/o error: port 23000");
        assert!(std::error::Error::source(&refused).is_some());
    }
}
