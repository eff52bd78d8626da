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
//! - [`client`]: async tokio clients with bounded connect and I/O timeouts.
//!
//! Every parser is total: it returns a [`ProtoError`] for any byte slice it
//! cannot decode and never panics.

pub mod client;
pub mod frame;
pub mod storage;
pub mod tracker;

pub use client::{Download, StorageClient, TrackerClient};
pub use frame::{Header, IpWidth};
pub use storage::{FileInfo, FileInfoFlags};
pub use tracker::{
    FetchReply, GroupStat, StorageIdsPage, StorageStat, StorageStatus, TrackerParams,
};

use http::StatusCode;

/// Why a protocol exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// A socket operation failed with this kind (connect refused, reset, …).
    Io(std::io::ErrorKind),
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

impl ProtoError {
    /// The HTTP status a request that failed with this error should get when
    /// the server was acting as a gateway.
    pub fn status(&self) -> StatusCode {
        match self {
            ProtoError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProtoError::Status(2) => StatusCode::NOT_FOUND,
            ProtoError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProtoError::Io(_)
            | ProtoError::Status(_)
            | ProtoError::BadHeader
            | ProtoError::BadBody(_)
            | ProtoError::UnexpectedEof
            | ProtoError::NoTracker => StatusCode::BAD_GATEWAY,
        }
    }
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtoError::Io(kind) => write!(f, "fastdfs i/o error: {kind}"),
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

impl std::error::Error for ProtoError {}

impl From<std::io::Error> for ProtoError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => ProtoError::UnexpectedEof,
            std::io::ErrorKind::TimedOut => ProtoError::Timeout,
            kind => ProtoError::Io(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(ProtoError::Timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ProtoError::Status(2).status(), StatusCode::NOT_FOUND);
        assert_eq!(ProtoError::Status(22).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            ProtoError::BadRequest("x").status(),
            StatusCode::BAD_REQUEST
        );
        for e in [
            ProtoError::Io(std::io::ErrorKind::ConnectionRefused),
            ProtoError::BadHeader,
            ProtoError::BadBody("x"),
            ProtoError::UnexpectedEof,
            ProtoError::NoTracker,
        ] {
            assert_eq!(e.status(), StatusCode::BAD_GATEWAY, "{e}");
        }
    }

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
            ProtoError::Io(ErrorKind::ConnectionReset)
        );
    }
}
