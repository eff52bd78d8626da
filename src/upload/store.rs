//! Putting a file into FastDFS (docs/upload.md §4, docs/wire-protocol.md
//! §8): the tracker picks the storage, the content is streamed to it, one
//! retry on the storage the tracker offers next when the first failed
//! before confirming (and the content can be sent again), metadata set,
//! and a stored file deleted again when what follows fails ([`Undo`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::StatusCode;

use super::answer::ApiError;
use super::source::{is_limit, is_stall, Chunks, Spooled};
use crate::proto::client::{SendError, StorageClient, TrackerClient};
use crate::proto::frame::status::{EINVAL, ENOENT, ENOSPC};
use crate::proto::upload::{append_head, slave_head, upload_head};
use crate::proto::ProtoError;
use crate::socket_body::SocketBody;

/// The trackers and timeouts of one request.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The trackers.
    pub trackers: TrackerClient,
    /// Connect timeout.
    pub connect: Duration,
    /// Per read/write timeout.
    pub network: Duration,
}

/// A file stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its group.
    pub group: String,
    /// Its remote name (`M00/…`).
    pub remote: String,
    /// The storage that took it.
    pub storage: SocketAddr,
}

/// What kind of file to create.
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    /// A normal file.
    Normal,
    /// An appender file.
    Appender,
    /// A slave of `master` (group, remote) named with `prefix`.
    Slave {
        /// The master's group.
        group: &'a str,
        /// The master's remote name.
        remote: &'a str,
        /// The slave's prefix.
        prefix: &'a str,
    },
}

/// Where the content comes from.
pub enum Content<'a> {
    /// A stream read once (`size` bytes).
    Stream(Chunks<'a>, u64),
    /// A spooled file, readable again for the retry.
    File(&'a mut Spooled),
    /// A body still on the client's socket, spliced to the storage; each
    /// wait on the client lasts at most the duration.
    Socket(SocketBody, Duration),
}

impl Content<'_> {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Content::Stream(_, n) => *n,
            Content::File(s) => s.size,
            Content::Socket(b, _) => b.len(),
        }
    }
}

fn addr(ip: &str, port: u16) -> Result<SocketAddr, ApiError> {
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "tracker_error",
                "the tracker named a storage without an IP address",
            )
        })
}

/// An answer for a tracker failure.
pub fn tracker_error(e: &ProtoError) -> ApiError {
    match e {
        ProtoError::Status(ENOSPC) => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "no storage has room for the file",
        ),
        ProtoError::Status(ENOENT) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_storage",
            "the tracker knows no active storage for this group",
        ),
        ProtoError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "tracker_timeout",
            "the tracker did not answer in time",
        ),
        ProtoError::Io(_)
        | ProtoError::UnexpectedEof
        | ProtoError::BadHeader
        | ProtoError::NoTracker => {
            let mut a = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "tracker_unavailable",
                "no tracker could be reached",
            );
            a.retry_after = Some(5);
            a
        }
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "tracker_error",
            format!("the tracker answered: {e}"),
        ),
    }
}

/// An answer for a storage failure.
pub fn storage_error(e: &ProtoError) -> ApiError {
    match e {
        ProtoError::Status(ENOSPC) => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the storage is out of space",
        ),
        ProtoError::Timeout => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "storage_timeout",
            "the storage did not answer in time",
        ),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "storage_error",
            format!("the storage failed: {e}"),
        ),
    }
}

/// An answer for a failed request body.
pub fn source_error(e: &std::io::Error, limit: u64) -> ApiError {
    if is_limit(e) {
        ApiError::too_large(limit)
    } else if is_stall(e) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request body stalled",
        )
    } else {
        ApiError::bad_request(format!("the request body ended early: {e}"))
    }
}

/// Worth a second storage: the first did not answer or had no room.
fn retryable(e: &ProtoError) -> bool {
    matches!(
        e,
        ProtoError::Io(_)
            | ProtoError::Timeout
            | ProtoError::UnexpectedEof
            | ProtoError::BadHeader
            | ProtoError::Status(ENOSPC)
    )
}

impl Cluster {
    async fn locate(
        &self,
        group: Option<&str>,
        kind: Kind<'_>,
    ) -> Result<(SocketAddr, u8), ApiError> {
        match kind {
            Kind::Slave { group, remote, .. } => {
                let (ip, port) = self
                    .trackers
                    .query_update(group, remote)
                    .await
                    .map_err(|e| tracker_error(&e))?;
                Ok((addr(&ip, port)?, 0))
            }
            _ => {
                let t = self
                    .trackers
                    .query_store(group)
                    .await
                    .map_err(|e| tracker_error(&e))?;
                Ok((addr(&t.ip, t.port)?, t.store_path_index))
            }
        }
    }

    /// Stores `content` (size limit `limit` for the error text).
    pub async fn store(
        &self,
        group: Option<&str>,
        kind: Kind<'_>,
        ext: &str,
        mut content: Content<'_>,
        limit: u64,
    ) -> Result<Stored, ApiError> {
        let size = content.size();
        for attempt in 0..2 {
            let (storage, spi) = self.locate(group, kind).await?;
            let head = match kind {
                Kind::Normal => upload_head(false, spi, size, ext),
                Kind::Appender => upload_head(true, spi, size, ext),
                Kind::Slave { remote, prefix, .. } => slave_head(remote, prefix, ext, size),
            }
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let res = match &mut content {
                Content::Stream(s, _) => {
                    StorageClient::upload(storage, &head, size, s, self.connect, self.network).await
                }
                Content::Socket(b, stall) => {
                    StorageClient::upload_spliced(
                        storage,
                        &head,
                        b,
                        *stall,
                        self.connect,
                        self.network,
                    )
                    .await
                }
                Content::File(f) => {
                    let mut chunks = f.chunks().await.map_err(|e| {
                        tracing::error!("upload: reading the spooled part: {e}");
                        ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "internal",
                            "the spooled part could not be read",
                        )
                    })?;
                    StorageClient::upload(
                        storage,
                        &head,
                        size,
                        &mut chunks,
                        self.connect,
                        self.network,
                    )
                    .await
                }
            };
            match res {
                Ok((group, remote)) => {
                    return Ok(Stored {
                        group,
                        remote,
                        storage,
                    })
                }
                Err(SendError::Source(e)) => return Err(source_error(&e, limit)),
                Err(SendError::Peer { error, consumed }) => {
                    let again = attempt == 0
                        && retryable(&error)
                        && (!consumed || matches!(content, Content::File(_)))
                        && !matches!(kind, Kind::Slave { .. });
                    tracing::warn!(
                        "upload to storage {storage} failed: {error}{}",
                        if again {
                            "; asking the tracker for another"
                        } else {
                            ""
                        }
                    );
                    if !again {
                        return Err(storage_error(&error));
                    }
                }
            }
        }
        Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "storage_error",
            "no storage took the file",
        ))
    }

    /// Appends `content` to the appender file `group/remote`.
    pub async fn append(
        &self,
        group: &str,
        remote: &str,
        chunks: &mut Chunks<'_>,
        size: u64,
        limit: u64,
    ) -> Result<(), ApiError> {
        let (ip, port) = self
            .trackers
            .query_update(group, remote)
            .await
            .map_err(|e| tracker_error(&e))?;
        let storage = addr(&ip, port)?;
        let head = append_head(remote, size).map_err(|e| ApiError::bad_request(e.to_string()))?;
        match StorageClient::append(storage, &head, size, chunks, self.connect, self.network).await
        {
            Ok(()) => Ok(()),
            Err(SendError::Source(e)) => Err(source_error(&e, limit)),
            Err(SendError::Peer {
                error: ProtoError::Status(ENOENT),
                ..
            }) => Err(not_found()),
            Err(SendError::Peer {
                error: ProtoError::Status(EINVAL),
                ..
            }) => Err(ApiError::bad_request("not an appender file")),
            Err(SendError::Peer { error, .. }) => Err(storage_error(&error)),
        }
    }

    /// Sets the metadata of a stored file.
    pub async fn set_metadata(
        &self,
        s: &Stored,
        meta: &[(String, String)],
    ) -> Result<(), ApiError> {
        StorageClient::set_metadata(
            s.storage,
            &s.group,
            &s.remote,
            meta,
            self.connect,
            self.network,
        )
        .await
        .map_err(|e| storage_error(&e))
    }

    /// The metadata value `key` of `group/remote`, from a storage that has
    /// it (`None` on any failure: callers fall back).
    pub async fn metadata_value(&self, group: &str, remote: &str, key: &str) -> Option<String> {
        let (ip, port) = self.trackers.query_fetch_one(group, remote).await.ok()?;
        let storage = addr(&ip, port).ok()?;
        let meta = StorageClient::get_metadata(storage, group, remote, self.connect, self.network)
            .await
            .ok()??;
        meta.into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Deletes `group/remote`: `Ok(false)` when it does not exist.
    pub async fn delete(&self, group: &str, remote: &str) -> Result<bool, ApiError> {
        let (ip, port) = match self.trackers.query_update(group, remote).await {
            Ok(s) => s,
            Err(ProtoError::Status(ENOENT)) => return Ok(false),
            Err(e) => return Err(tracker_error(&e)),
        };
        StorageClient::delete(addr(&ip, port)?, group, remote, self.connect, self.network)
            .await
            .map_err(|e| storage_error(&e))
    }
}

/// 404 for a file ID that does not exist.
pub fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file")
}

/// Deletes a stored file when dropped armed: the upload's answer was not
/// delivered (client gone, metadata failed, the request was cancelled).
#[derive(Debug)]
pub struct Undo {
    stored: Option<(Stored, Duration, Duration)>,
}

impl Undo {
    /// Armed for `s`.
    pub fn new(s: Stored, c: &Cluster) -> Self {
        Undo {
            stored: Some((s, c.connect, c.network)),
        }
    }

    /// The answer was delivered: keep the file.
    pub fn disarm(&mut self) {
        self.stored = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        let Some((s, connect, network)) = self.stored.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                "upload {}/{}: answer not delivered and no runtime to delete it",
                s.group,
                s.remote
            );
            return;
        };
        rt.spawn(async move {
            match StorageClient::delete(s.storage, &s.group, &s.remote, connect, network).await {
                Ok(_) => tracing::warn!(
                    "upload {}/{}: answer not delivered, file deleted",
                    s.group,
                    s.remote
                ),
                Err(e) => tracing::error!(
                    "upload {}/{}: answer not delivered; deleting it failed: {e}",
                    s.group,
                    s.remote
                ),
            }
        });
    }
}
