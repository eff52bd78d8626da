//! Async tracker and storage clients (docs/wire-protocol.md §1 framing and
//! timeouts, §3–§6). Every connect is bounded by `connect_timeout` and every
//! read or write by `network_timeout`, like the upstream C client.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{status, Header, HEADER_LEN, MAX_REPLY_BODY};
use super::storage::{download_request, query_file_info_request, FileInfo, FileInfoFlags};
use super::tracker::{
    list_all_groups_request, list_storage_request, parameters_request, query_fetch_all_request,
    query_fetch_one_request, query_update_request, storage_ids_request, FetchReply, GroupStat,
    StorageIdsPage, StorageStat, TrackerParams,
};
use super::upload::{
    delete_request, get_metadata_request, parse_metadata, parse_upload_reply, query_store_request,
    set_metadata_request, StoreTarget,
};
use super::ProtoError;
use crate::socket_body::{SocketBody, SpliceError};

/// Upstream gives up fetching the storage-ID table after this many pages (§4).
pub const MAX_STORAGE_ID_ROUND_TRIPS: usize = 32;
/// Largest chunk a [`Download`] yields.
const DOWNLOAD_CHUNK: u64 = 64 * 1024;
/// Reply size limits per command (well above what a real peer sends).
const MAX_PARAMS_BODY: u64 = 64 * 1024;
const MAX_IDS_PAGE_BODY: u64 = 4 * 1024 * 1024;
const MAX_FETCH_BODY: u64 = 64 * 1024;
const MAX_FILE_INFO_BODY: u64 = 70;
const MAX_STORE_BODY: u64 = 70;
/// Content is written to a storage in pieces of up to this size.
const SEND_CHUNK: usize = 256 * 1024;
const MAX_METADATA_BODY: u64 = 64 * 1024;
const MAX_UPLOAD_REPLY_BODY: u64 = 16 + 256;

/// The (group, remote name) an upload reply names; a reply that names none
/// is the storage's failure after it took the content.
fn stored_as(reply: &[u8]) -> Result<(String, String), SendError> {
    parse_upload_reply(reply).map_err(|error| SendError::Peer {
        error,
        consumed: true,
    })
}

/// Runs `fut` with a deadline, turning expiry into [`ProtoError::Timeout`].
async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = std::io::Result<T>>,
) -> Result<T, ProtoError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(res) => res.map_err(ProtoError::from),
        Err(_) => Err(ProtoError::Timeout),
    }
}

/// One open connection to a tracker or storage.
struct Conn {
    stream: TcpStream,
    /// Limit for each single read or write.
    network_timeout: Duration,
}

impl Conn {
    async fn connect(
        addr: SocketAddr,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<Conn, ProtoError> {
        let stream = bounded(connect_timeout, TcpStream::connect(addr)).await?;
        // Requests are small and answered at once: do not delay them.
        stream.set_nodelay(true).map_err(ProtoError::from)?;
        Ok(Conn {
            stream,
            network_timeout,
        })
    }

    async fn send(&mut self, req: &[u8]) -> Result<(), ProtoError> {
        bounded(self.network_timeout, self.stream.write_all(req)).await
    }

    async fn read_header(&mut self, max_body: u64) -> Result<Header, ProtoError> {
        let mut buf = [0u8; HEADER_LEN];
        bounded(self.network_timeout, self.stream.read_exact(&mut buf)).await?;
        Header::decode_reply(&buf, max_body)
    }

    /// Sends `req` and returns the body of an OK reply of at most `max_body`.
    async fn call(&mut self, req: &[u8], max_body: u64) -> Result<Vec<u8>, ProtoError> {
        self.send(req).await?;
        self.read_reply(max_body).await
    }

    /// A reply: its header, then a body of at most `max_body` bytes.
    async fn read_reply(&mut self, max_body: u64) -> Result<Vec<u8>, ProtoError> {
        let header = self.read_header(max_body).await?;
        let len = usize::try_from(header.pkg_len).map_err(|_| ProtoError::BadHeader)?;
        let mut body = vec![0u8; len];
        bounded(self.network_timeout, self.stream.read_exact(&mut body)).await?;
        Ok(body)
    }

    /// What a failed content write means: a storage that refuses (ENOSPC,
    /// …) may have answered before closing, and its status says more than
    /// the reset.
    async fn refused(&mut self, e: ProtoError) -> SendError {
        let status = tokio::time::timeout(Duration::from_secs(1), self.read_header(0)).await;
        let error = match status {
            Ok(Err(st @ ProtoError::Status(_))) => st,
            _ => e,
        };
        SendError::Peer {
            error,
            consumed: true,
        }
    }
}

/// Errors after which the next tracker is tried: the peer did not answer,
/// or answered with something that is not a FastDFS reply header.
fn is_transport(e: &ProtoError) -> bool {
    matches!(
        e,
        ProtoError::Io(_) | ProtoError::Timeout | ProtoError::UnexpectedEof | ProtoError::BadHeader
    )
}

/// A client for a list of trackers, tried in order until one answers. Holds
/// no connection between calls.
#[derive(Debug, Clone)]
pub struct TrackerClient {
    addrs: Vec<SocketAddr>,
    /// Limit for establishing each TCP connection.
    connect_timeout: Duration,
    /// Limit for each single read or write.
    network_timeout: Duration,
}

impl TrackerClient {
    /// A client for `addrs` (tried in this order on every call).
    pub fn new(
        addrs: Vec<SocketAddr>,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Self {
        TrackerClient {
            addrs,
            connect_timeout,
            network_timeout,
        }
    }

    /// Runs `op` on a connection to the first tracker that answers. A tracker
    /// that cannot be reached, times out, hangs up or sends no valid header
    /// is skipped; any other error (a status, a malformed body) is returned
    /// at once. When all fail, the last transport error is returned
    /// ([`ProtoError::NoTracker`] for an empty list).
    async fn with_tracker<T, F, Fut>(&self, op: F) -> Result<T, ProtoError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, ProtoError>>,
    {
        let mut last = ProtoError::NoTracker;
        for addr in &self.addrs {
            let res = match Conn::connect(*addr, self.connect_timeout, self.network_timeout).await {
                Ok(conn) => op(conn).await,
                Err(e) => Err(e),
            };
            match res {
                Err(e) if is_transport(&e) => {
                    tracing::debug!(tracker = %addr, error = %e, "tracker did not answer, trying the next");
                    last = e;
                }
                other => return other,
            }
        }
        Err(last)
    }

    /// Cluster parameters (cmd 75, §3).
    pub async fn parameters(&self) -> Result<TrackerParams, ProtoError> {
        let req = parameters_request();
        self.with_tracker(|mut conn| {
            let req = &req;
            async move {
                let body = conn.call(req, MAX_PARAMS_BODY).await?;
                TrackerParams::parse(&body)
            }
        })
        .await
    }

    /// The whole storage_ids.conf text (cmd 69, §4): all pages fetched on one
    /// connection, at most 32 round trips, one `\n`-terminated line per ID.
    /// A tracker without storage IDs answers [`ProtoError::Status`] 95.
    pub async fn storage_ids(&self) -> Result<String, ProtoError> {
        self.with_tracker(|mut conn| async move {
            let mut text = String::new();
            let mut start: u32 = 0;
            let mut total: Option<u32> = None;
            for _ in 0..MAX_STORAGE_ID_ROUND_TRIPS {
                let body = conn
                    .call(&storage_ids_request(start, false), MAX_IDS_PAGE_BODY)
                    .await?;
                let page = StorageIdsPage::parse(&body)?;
                if total.is_some_and(|t| t != page.total) {
                    return Err(ProtoError::BadBody("total_count changed between pages"));
                }
                total = Some(page.total);
                let got = u32::try_from(page.lines.len())
                    .map_err(|_| ProtoError::BadBody("page too large"))?;
                start = start
                    .checked_add(got)
                    .ok_or(ProtoError::BadBody("page too large"))?;
                if start > page.total {
                    return Err(ProtoError::BadBody("more storage ids than total_count"));
                }
                for line in &page.lines {
                    text.push_str(line);
                    text.push('\n');
                }
                if start == page.total {
                    return Ok(text);
                }
                if got == 0 {
                    return Err(ProtoError::BadBody("empty storage id page"));
                }
            }
            Err(ProtoError::BadBody(
                "storage id table needs more than 32 round trips",
            ))
        })
        .await
    }

    /// The storages of `group` with their status (cmd 92, §5.3). An unknown
    /// group is [`ProtoError::Status`] 2.
    pub async fn list_storage(&self, group: &str) -> Result<Vec<StorageStat>, ProtoError> {
        let req = list_storage_request(group, None)?;
        self.with_tracker(|mut conn| {
            let req = &req;
            async move {
                let body = conn.call(req, MAX_REPLY_BODY).await?;
                StorageStat::parse_list(&body)
            }
        })
        .await
    }

    /// Every group with its figures (cmd 91, §5.2).
    pub async fn list_groups(&self) -> Result<Vec<GroupStat>, ProtoError> {
        let req = list_all_groups_request();
        self.with_tracker(|mut conn| {
            let req = &req;
            async move {
                let body = conn.call(req, MAX_REPLY_BODY).await?;
                GroupStat::parse_list(&body)
            }
        })
        .await
    }

    async fn fetch(&self, req: Vec<u8>, group: &str) -> Result<Vec<(String, u16)>, ProtoError> {
        self.with_tracker(|mut conn| {
            let req = &req;
            async move {
                let body = conn.call(req, MAX_FETCH_BODY).await?;
                let reply = FetchReply::parse(&body)?;
                if reply.group != group {
                    return Err(ProtoError::BadBody("group in reply differs from request"));
                }
                Ok(reply.servers)
            }
        })
        .await
    }

    /// [`Self::fetch`] of a request whose reply names exactly one server.
    async fn fetch_one(
        &self,
        req: Vec<u8>,
        group: &str,
        several: &'static str,
    ) -> Result<(String, u16), ProtoError> {
        let mut servers = self.fetch(req, group).await?;
        match (servers.pop(), servers.is_empty()) {
            (Some(server), true) => Ok(server),
            _ => Err(ProtoError::BadBody(several)),
        }
    }

    /// Every storage that can serve `group/remote`, as (IP, FastDFS port)
    /// (cmd 105, §6.1). No readable server is [`ProtoError::Status`] 2.
    pub async fn query_fetch_all(
        &self,
        group: &str,
        remote: &str,
    ) -> Result<Vec<(String, u16)>, ProtoError> {
        let req = query_fetch_all_request(group, remote)?;
        self.fetch(req, group).await
    }

    /// The storage that takes changes to `group/remote` (cmd 103, §8.2).
    pub async fn query_update(
        &self,
        group: &str,
        remote: &str,
    ) -> Result<(String, u16), ProtoError> {
        let req = query_update_request(group, remote)?;
        self.fetch_one(req, group, "update reply lists several servers")
            .await
    }

    /// The storage and store path for a new file (cmd 101 without a group,
    /// 104 with one, §8.1). No storage with room is [`ProtoError::Status`]
    /// 28 (ENOSPC); an unknown group 2.
    pub async fn query_store(&self, group: Option<&str>) -> Result<StoreTarget, ProtoError> {
        let req = query_store_request(group)?;
        self.with_tracker(|mut conn| {
            let req = &req;
            async move {
                let body = conn.call(req, MAX_STORE_BODY).await?;
                let t = StoreTarget::parse(&body)?;
                if group.is_some_and(|g| g != t.group) {
                    return Err(ProtoError::BadBody("group in reply differs from request"));
                }
                Ok(t)
            }
        })
        .await
    }

    /// One storage that can serve `group/remote` (cmd 102, §6.1).
    pub async fn query_fetch_one(
        &self,
        group: &str,
        remote: &str,
    ) -> Result<(String, u16), ProtoError> {
        let req = query_fetch_one_request(group, remote)?;
        self.fetch_one(req, group, "fetch-one reply lists several servers")
            .await
    }
}

/// Storage commands over a fresh connection per call.
#[derive(Debug, Clone, Copy, Default)]
pub struct StorageClient;

impl StorageClient {
    /// Size, timestamp, crc32 and source of a file (cmd 22, §6.2), sent with
    /// the module's flag "do not compute crc32". `None` when the storage
    /// answers ENOENT.
    pub async fn query_file_info(
        addr: SocketAddr,
        group: &str,
        remote: &str,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<Option<FileInfo>, ProtoError> {
        let flags = FileInfoFlags {
            no_crc32: true,
            keep_silence: false,
        };
        let req = query_file_info_request(group, remote, flags)?;
        let mut conn = Conn::connect(addr, connect_timeout, network_timeout).await?;
        match conn.call(&req, MAX_FILE_INFO_BODY).await {
            Ok(body) => FileInfo::parse(&body).map(Some),
            Err(ProtoError::Status(status::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends DOWNLOAD (offset, len; len 0 = to end of file) and returns the
    /// announced length with a reader for the body. Errors: ENOENT is
    /// [`ProtoError::Status`] 2, `offset` ≥ size is 22. A reply announcing
    /// more than `len` bytes (when `len` > 0) is [`ProtoError::BadHeader`].
    pub async fn download(
        addr: SocketAddr,
        group: &str,
        remote: &str,
        offset: u64,
        len: u64,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<Download, ProtoError> {
        let req = download_request(offset, len, group, remote)?;
        let mut conn = Conn::connect(addr, connect_timeout, network_timeout).await?;
        conn.send(&req).await?;
        let header = conn.read_header(i64::MAX as u64).await?;
        if len > 0 && header.pkg_len > len {
            return Err(ProtoError::BadHeader);
        }
        Ok(Download {
            len: header.pkg_len,
            remaining: header.pkg_len,
            stream: Some(conn.stream),
            network_timeout,
        })
    }
}

/// Why sending a file to a storage failed.
#[derive(Debug)]
pub enum SendError {
    /// The content source failed (the client's body ended early, stalled,
    /// grew past its limit, a temp file could not be read).
    Source(std::io::Error),
    /// The storage failed or refused (`consumed`: whether any content was
    /// taken from the source, so it cannot be sent again unless it can be
    /// read again).
    Peer {
        /// The protocol error.
        error: ProtoError,
        /// Content was taken from the source before the failure.
        consumed: bool,
    },
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Source(e) => write!(f, "upload source: {e}"),
            SendError::Peer { error, .. } => error.fmt(f),
        }
    }
}

impl std::error::Error for SendError {}

impl StorageClient {
    /// Sends `head` (from [`super::upload`], whose `pkg_len` counts `size`
    /// content bytes) then exactly `size` bytes taken from `source`, and
    /// returns the reply body. Memory: one chunk of `source` at a time. A
    /// source that ends early or yields more than `size` bytes aborts the
    /// connection, so the storage discards the partial file.
    async fn send_content<S>(
        addr: SocketAddr,
        head: &[u8],
        size: u64,
        source: &mut S,
        max_reply: u64,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<Vec<u8>, SendError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        use futures_util::StreamExt;
        let mut conn = Self::begin(addr, head, connect_timeout, network_timeout).await?;
        let mut left = size;
        let mut consumed = false;
        // Small chunks (a client's body arrives in pieces of a few KiB) are
        // gathered into writes of up to 256 KiB.
        let mut pending = bytes::BytesMut::new();
        while left > 0 {
            let chunk = match source.next().await {
                Some(Ok(c)) => c,
                Some(Err(e)) => return Err(SendError::Source(e)),
                None => {
                    return Err(SendError::Source(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "content ended before its announced size",
                    )))
                }
            };
            consumed = true;
            if chunk.len() as u64 > left {
                return Err(SendError::Source(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "content longer than its announced size",
                )));
            }
            left -= chunk.len() as u64;
            let out = if pending.is_empty() && (chunk.len() >= SEND_CHUNK || left == 0) {
                chunk
            } else {
                pending.extend_from_slice(&chunk);
                if pending.len() < SEND_CHUNK && left > 0 {
                    continue;
                }
                pending.split().freeze()
            };
            if let Err(e) = conn.send(&out).await {
                return Err(conn.refused(e).await);
            }
        }
        Self::end(conn, max_reply, consumed).await
    }

    /// Connects and sends a content command's `head`.
    async fn begin(
        addr: SocketAddr,
        head: &[u8],
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<Conn, SendError> {
        let peer = |error| SendError::Peer {
            error,
            consumed: false,
        };
        let mut conn = Conn::connect(addr, connect_timeout, network_timeout)
            .await
            .map_err(peer)?;
        conn.send(head).await.map_err(peer)?;
        Ok(conn)
    }

    /// The storage's reply once the content was sent.
    async fn end(mut conn: Conn, max_reply: u64, consumed: bool) -> Result<Vec<u8>, SendError> {
        conn.read_reply(max_reply)
            .await
            .map_err(|error| SendError::Peer { error, consumed })
    }

    /// Uploads a file (UPLOAD_FILE 11, UPLOAD_APPENDER_FILE 23 or
    /// UPLOAD_SLAVE_FILE 21, by `head`) and returns its (group, remote
    /// name).
    pub async fn upload<S>(
        addr: SocketAddr,
        head: &[u8],
        size: u64,
        source: &mut S,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<(String, String), SendError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        let body = Self::send_content(
            addr,
            head,
            size,
            source,
            MAX_UPLOAD_REPLY_BODY,
            connect_timeout,
            network_timeout,
        )
        .await?;
        stored_as(&body)
    }

    /// [`Self::upload`] of a body still on the client's socket, moved to
    /// the storage with `splice(2)` (`body.len()` bytes, the size `head`
    /// announces); each wait on the client lasts at most `stall`.
    pub async fn upload_spliced(
        addr: SocketAddr,
        head: &[u8],
        body: &mut SocketBody,
        stall: Duration,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<(String, String), SendError> {
        let mut conn = Self::begin(addr, head, connect_timeout, network_timeout).await?;
        match body.splice_to(&conn.stream, stall, network_timeout).await {
            Ok(()) => {}
            Err(SpliceError::Source(e)) => return Err(SendError::Source(e)),
            Err(SpliceError::Sink(e)) => return Err(conn.refused(e.into()).await),
        }
        stored_as(&Self::end(conn, MAX_UPLOAD_REPLY_BODY, true).await?)
    }

    /// Appends to an appender file (APPEND_FILE 24, `head` from
    /// [`super::upload::append_head`]).
    pub async fn append<S>(
        addr: SocketAddr,
        head: &[u8],
        size: u64,
        source: &mut S,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<(), SendError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Unpin,
    {
        Self::send_content(
            addr,
            head,
            size,
            source,
            0,
            connect_timeout,
            network_timeout,
        )
        .await
        .map(drop)
    }

    /// Deletes a file (DELETE_FILE 12). `Ok(false)` when the storage
    /// answers ENOENT.
    pub async fn delete(
        addr: SocketAddr,
        group: &str,
        remote: &str,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<bool, ProtoError> {
        let req = delete_request(group, remote)?;
        let mut conn = Conn::connect(addr, connect_timeout, network_timeout).await?;
        match conn.call(&req, 0).await {
            Ok(_) => Ok(true),
            Err(ProtoError::Status(status::ENOENT)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A file's metadata (GET_METADATA 15); `None` when the storage
    /// answers ENOENT.
    pub async fn get_metadata(
        addr: SocketAddr,
        group: &str,
        remote: &str,
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<Option<Vec<(String, String)>>, ProtoError> {
        let req = get_metadata_request(group, remote)?;
        let mut conn = Conn::connect(addr, connect_timeout, network_timeout).await?;
        match conn.call(&req, MAX_METADATA_BODY).await {
            Ok(body) => parse_metadata(&body).map(Some),
            Err(ProtoError::Status(status::ENOENT)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a file's metadata (SET_METADATA 13, flag `O`).
    pub async fn set_metadata(
        addr: SocketAddr,
        group: &str,
        remote: &str,
        meta: &[(String, String)],
        connect_timeout: Duration,
        network_timeout: Duration,
    ) -> Result<(), ProtoError> {
        let req = set_metadata_request(group, remote, meta)?;
        let mut conn = Conn::connect(addr, connect_timeout, network_timeout).await?;
        conn.call(&req, 0).await.map(drop)
    }
}

/// The body of a DOWNLOAD reply, read in chunks. It never ends silently
/// short: if the peer closes or stalls before `len` bytes arrived, the last
/// item is an error.
#[derive(Debug)]
pub struct Download {
    /// Number of body bytes the storage announced.
    pub len: u64,
    /// Bytes still to read.
    remaining: u64,
    /// `None` once the body is complete or an error was returned.
    stream: Option<TcpStream>,
    /// Limit for each single read.
    network_timeout: Duration,
}

impl Download {
    /// Bytes not yet returned.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk (at most 64 KiB), an error, or `None` when the body is
    /// complete or after an error.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, ProtoError>> {
        if self.remaining == 0 {
            self.stream = None;
            return None;
        }
        let stream = self.stream.as_mut()?;
        let want = usize::try_from(self.remaining.min(DOWNLOAD_CHUNK)).unwrap_or(64 * 1024);
        let mut buf = vec![0u8; want];
        let res = match bounded(self.network_timeout, stream.read(&mut buf)).await {
            Ok(0) => Err(ProtoError::UnexpectedEof),
            Ok(n) => {
                buf.truncate(n);
                self.remaining = self.remaining.saturating_sub(n as u64);
                Ok(Bytes::from(buf))
            }
            Err(e) => Err(e),
        };
        if res.is_err() {
            self.stream = None;
        }
        Some(res)
    }

    /// The remaining body as a stream of chunks (same rules as
    /// [`Download::next_chunk`]).
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, ProtoError>> + Send + 'static {
        futures_util::stream::unfold(
            self,
            |mut d| async move { d.next_chunk().await.map(|c| (c, d)) },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_classification() {
        for e in [
            ProtoError::Io(std::io::ErrorKind::ConnectionRefused.into()),
            ProtoError::Timeout,
            ProtoError::UnexpectedEof,
            ProtoError::BadHeader,
        ] {
            assert!(is_transport(&e), "{e}");
        }
        for e in [
            ProtoError::Status(2),
            ProtoError::BadBody("x"),
            ProtoError::NoTracker,
            ProtoError::BadRequest("x"),
        ] {
            assert!(!is_transport(&e), "{e}");
        }
    }
}
