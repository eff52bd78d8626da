//! A fake FastDFS tracker and storage for integration tests, speaking the
//! real framing (docs/wire-protocol.md §1) on loopback sockets.
//!
//! Include from a test file with
//! `#[path = "support/fake_fdfs.rs"] mod fake_fdfs;`. Each fake runs on a
//! spawned task, counts connections and requests, and stops (closing every
//! connection) when dropped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fdfs_httpd::fileid::{FileId, FileKind, Source};
use fdfs_httpd::proto::frame::{self, Header, IpWidth, Reader, HEADER_LEN};
use fdfs_httpd::proto::{FetchReply, FileInfo, GroupStat, StorageIdsPage, StorageStat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Largest request body the fakes accept before hanging up.
const MAX_REQUEST_BODY: u64 = 1024 * 1024;

/// Misbehaviour to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Answer like the real server.
    #[default]
    None,
    /// Read requests but never answer (connection stays open).
    NeverAnswer,
    /// For DOWNLOAD replies: announce the full length, send only this many
    /// body bytes, then close.
    CloseAfterBodyBytes(usize),
}

/// What a fake does with one request.
enum Action {
    /// Write these bytes, keep the connection.
    Send(Vec<u8>),
    /// Write these bytes, then close.
    SendAndClose(Vec<u8>),
    /// Close without writing (QUIT).
    Close,
    /// Never answer.
    Hang,
}

trait Respond: Send + Sync + 'static {
    fn respond(&self, header: Header, body: &[u8]) -> Action;
}

/// A running fake; stops when dropped.
pub struct FakeServer {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// Accepted connections.
    pub connections: Arc<AtomicUsize>,
    /// Complete requests read (header + body).
    pub requests: Arc<AtomicUsize>,
    /// Every request message received, raw (header + body), in order.
    pub seen: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Tells the accept loop to stop; dropping it has the same effect.
    shutdown: Option<oneshot::Sender<()>>,
    /// The accept loop; it owns the connection tasks, so aborting it ends them.
    task: JoinHandle<()>,
}

impl FakeServer {
    async fn spawn(ip: IpAddr, responder: Arc<dyn Respond>) -> FakeServer {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0))
            .await
            .expect("bind fake");
        let addr = listener.local_addr().expect("fake addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = oneshot::channel::<()>();
        let (c, r, s) = (connections.clone(), requests.clone(), seen.clone());
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            c.fetch_add(1, Ordering::SeqCst);
                            conns.spawn(serve(stream, responder.clone(), r.clone(), s.clone()));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                }
                while conns.try_join_next().is_some() {}
            }
            conns.abort_all();
        });
        FakeServer {
            addr,
            connections,
            requests,
            seen,
            shutdown: Some(tx),
            task,
        }
    }

    /// Number of accepted connections so far.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Number of requests read so far.
    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Copies of the raw requests received so far.
    pub fn seen_requests(&self) -> Vec<Vec<u8>> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    responder: Arc<dyn Respond>,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    loop {
        let mut head = [0u8; HEADER_LEN];
        if stream.read_exact(&mut head).await.is_err() {
            return;
        }
        let Ok(header) = Header::decode(&head, MAX_REQUEST_BODY) else {
            return;
        };
        let mut body = vec![0u8; header.pkg_len as usize];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut v) = seen.lock() {
            let mut raw = head.to_vec();
            raw.extend_from_slice(&body);
            v.push(raw);
        }
        match responder.respond(header, &body) {
            Action::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Action::SendAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            Action::Close => return,
            Action::Hang => std::future::pending::<()>().await,
        }
    }
}

/// The 16-byte group field of a request body, without padding.
fn group_of(field: &[u8]) -> String {
    frame::fixed_str(field, "group").unwrap_or_default()
}

fn status_only(status: u8) -> Action {
    Action::Send(frame::reply(status, &[]))
}

/// What a real 6.16.1 tracker answers to cmd 75 with the fixtures'
/// `tracker.conf` (recorded, and checked against a running tracker by
/// `tests/e2e_trunk.rs`: same keys, same order).
pub const REAL_PARAMS_TEXT: &str =
    "use_storage_id=0\nid_type_in_filename=ip\ntrust_storage_server_id=1\n\
response_ip_addr_size=16\nstorage_ip_changed_auto_adjust=1\nstorage_sync_file_max_delay=86400\n\
store_path=0\nreserved_storage_space=20.00%\nuse_trunk_file=0\nslot_min_size=256\n\
slot_max_size=1048576\ntrunk_alloc_alignment_size=256\ntrunk_file_size=67108864\n\
trunk_create_file_advance=0\ntrunk_create_file_time_base=02:00\ntrunk_create_file_interval=86400\n\
trunk_create_file_space_threshold=21474836480\ntrunk_init_check_occupying=0\n\
trunk_init_reload_from_binlog=0\ntrunk_free_space_merge=1\ndelete_unused_trunk_files=0\n\
trunk_compress_binlog_min_interval=86400\ntrunk_compress_binlog_interval=86400\n\
trunk_compress_binlog_time_base=03:00\ntrunk_binlog_max_backups=7\nstore_slave_file_use_link=0\n";

/// How the fake tracker answers.
#[derive(Debug, Clone)]
pub struct TrackerSpec {
    /// Reply text for cmd 75.
    pub params_text: String,
    /// storage_ids.conf lines for cmd 69; `None` = storage IDs off (status 95).
    pub storage_ids: Option<Vec<String>>,
    /// Lines per cmd 69 page (0 = all in one page).
    pub ids_page_size: usize,
    /// Groups and their storages for cmd 92 (unknown group → status 2).
    pub groups: Vec<(String, Vec<StorageStat>)>,
    /// Group figures for cmd 91.
    pub group_stats: Vec<GroupStat>,
    /// IP field width of 92/102/105 replies.
    pub ip_width: IpWidth,
    /// Servers for cmd 105 for every file (cmd 102 answers the first; a
    /// real tracker picks one by its `download_server` rule). `None`: the
    /// real tracker's rule over `groups` ([`TrackerSpec::servers_by_rule`]);
    /// nothing found, or a group missing from a non-empty `groups` → status 2.
    pub fetch_servers: Option<Vec<(String, u16)>>,
    /// Injected misbehaviour.
    pub fault: Fault,
}

impl Default for TrackerSpec {
    fn default() -> Self {
        TrackerSpec {
            params_text: REAL_PARAMS_TEXT.into(),
            storage_ids: None,
            ids_page_size: 0,
            groups: Vec::new(),
            group_stats: Vec::new(),
            ip_width: IpWidth::V4,
            fetch_servers: None,
            fault: Fault::None,
        }
    }
}

impl TrackerSpec {
    /// The storages the real tracker names for `group/remote`
    /// (`tracker_mem_get_storage_by_filename`): of the readable ones, for
    /// a normal or trunk file the source, and every storage when the file
    /// is older than `storage_sync_file_max_delay` or the storage synced
    /// past its create time (or to within a second of it, 300 s after it,
    /// `storage_sync_file_max_time`); for an appender or slave file only
    /// the source. Not imitated: the fallback to the group's current store
    /// server and the round robin of cmd 102.
    pub fn servers_by_rule(&self, group: &str, remote: &str) -> Vec<(String, u16)> {
        let Some((_, list)) = self.groups.iter().find(|(g, _)| g == group) else {
            return Vec::new();
        };
        let Ok(id) = FileId::parse(group, remote) else {
            return Vec::new();
        };
        let enc = id.encoded();
        let file_ts = enc.create_ts;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let max_delay = fdfs_httpd::proto::TrackerParams::parse(self.params_text.as_bytes())
            .map(|p| p.sync_file_max_delay() as i64)
            .unwrap_or(86400);
        let is_source = |s: &StorageStat| match enc.source {
            Source::StorageId(n) => s.id == n.to_string(),
            Source::Ip(ip) => s.ip == ip.to_string(),
        };
        let normal = matches!(id.kind(), FileKind::Normal | FileKind::Trunk(_));
        list.iter()
            .filter(|s| s.readable())
            .filter(|s| {
                is_source(s)
                    || (normal
                        && (file_ts < now - max_delay
                            || s.last_synced_timestamp > file_ts
                            || (s.last_synced_timestamp + 1 >= file_ts && now - file_ts > 300)))
            })
            .map(|s| (s.ip.clone(), s.storage_port))
            .collect()
    }
}

impl Respond for TrackerSpec {
    fn respond(&self, header: Header, body: &[u8]) -> Action {
        if self.fault == Fault::NeverAnswer {
            return Action::Hang;
        }
        match header.cmd {
            frame::CMD_QUIT => Action::Close,
            frame::CMD_ACTIVE_TEST => status_only(0),
            frame::CMD_PARAMETERS if body.is_empty() => {
                Action::Send(frame::reply(0, self.params_text.as_bytes()))
            }
            frame::CMD_FETCH_STORAGE_IDS if body.len() == 5 => {
                let mut r = Reader::new(body);
                let start = r.i32().unwrap_or(-1);
                let allow_empty = r.u8().unwrap_or(0) != 0;
                let Some(ids) = &self.storage_ids else {
                    return if allow_empty {
                        Action::Send(frame::reply(0, &[0; 8]))
                    } else {
                        status_only(frame::status::EOPNOTSUPP)
                    };
                };
                let Ok(start) = usize::try_from(start) else {
                    return status_only(frame::status::EINVAL);
                };
                if start >= ids.len() {
                    return status_only(frame::status::EINVAL);
                }
                let size = if self.ids_page_size == 0 {
                    ids.len()
                } else {
                    self.ids_page_size
                };
                let end = (start + size).min(ids.len());
                let page = StorageIdsPage {
                    total: ids.len() as u32,
                    lines: ids[start..end].to_vec(),
                };
                Action::Send(frame::reply(0, &page.encode()))
            }
            frame::CMD_LIST_ALL_GROUPS if body.is_empty() => {
                Action::Send(frame::reply(0, &GroupStat::encode_list(&self.group_stats)))
            }
            frame::CMD_LIST_STORAGE if (16..32).contains(&body.len()) => {
                let group = group_of(&body[..16]);
                let id = std::str::from_utf8(&body[16..]).unwrap_or("");
                let Some((_, list)) = self.groups.iter().find(|(g, _)| *g == group) else {
                    return status_only(frame::status::ENOENT);
                };
                let list: Vec<StorageStat> = list
                    .iter()
                    .filter(|s| id.is_empty() || s.id == id)
                    .cloned()
                    .collect();
                if !id.is_empty() && list.is_empty() {
                    return status_only(frame::status::ENOENT);
                }
                Action::Send(frame::reply(
                    0,
                    &StorageStat::encode_list(&list, self.ip_width),
                ))
            }
            frame::CMD_QUERY_FETCH_ONE | frame::CMD_QUERY_FETCH_ALL
                if body.len() >= 38 && body.len() < 144 =>
            {
                let group = group_of(&body[..16]);
                if !self.groups.is_empty() && !self.groups.iter().any(|(g, _)| *g == group) {
                    return status_only(frame::status::ENOENT);
                }
                let remote = String::from_utf8_lossy(&body[16..]).into_owned();
                let servers = match &self.fetch_servers {
                    Some(s) => s.clone(),
                    None => self.servers_by_rule(&group, &remote),
                };
                if servers.is_empty() {
                    return status_only(frame::status::ENOENT);
                }
                let servers = if header.cmd == frame::CMD_QUERY_FETCH_ONE {
                    servers[..1].to_vec()
                } else {
                    servers
                };
                let reply = FetchReply { group, servers };
                Action::Send(frame::reply(0, &reply.encode(self.ip_width)))
            }
            _ => status_only(frame::status::EINVAL),
        }
    }
}

/// How the fake storage answers.
#[derive(Debug, Clone)]
pub struct StorageSpec {
    /// Its group; requests for another group get status 22.
    pub group: String,
    /// Stored files: remote file name → content.
    pub files: HashMap<String, Vec<u8>>,
    /// Source IP reported by QUERY_FILE_INFO.
    pub source_ip: String,
    /// create_timestamp reported by QUERY_FILE_INFO.
    pub create_timestamp: i64,
    /// IP field width of QUERY_FILE_INFO replies.
    pub ip_width: IpWidth,
    /// Injected misbehaviour.
    pub fault: Fault,
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            group: "group1".into(),
            files: HashMap::new(),
            source_ip: "127.0.0.2".into(),
            create_timestamp: 1_795_601_849,
            ip_width: IpWidth::V4,
            fault: Fault::None,
        }
    }
}

impl Respond for StorageSpec {
    fn respond(&self, header: Header, body: &[u8]) -> Action {
        if self.fault == Fault::NeverAnswer {
            return Action::Hang;
        }
        match header.cmd {
            frame::CMD_QUIT => Action::Close,
            frame::CMD_ACTIVE_TEST => status_only(0),
            frame::CMD_QUERY_FILE_INFO if body.len() > 16 => {
                if group_of(&body[..16]) != self.group {
                    // The real storage closes after this EINVAL.
                    return Action::SendAndClose(frame::reply(frame::status::EINVAL, &[]));
                }
                let remote = String::from_utf8_lossy(&body[16..]).into_owned();
                let Some(content) = self.files.get(&remote) else {
                    return status_only(frame::status::ENOENT);
                };
                // Flag 1 (no crc32): the real storage answers 0 for
                // appender and slave files instead of reading them.
                let skip_crc = header.status & 1 != 0
                    && FileId::parse(&self.group, &remote)
                        .is_ok_and(|id| matches!(id.kind(), FileKind::Appender | FileKind::Slave));
                let info = FileInfo {
                    size: content.len() as u64,
                    create_timestamp: self.create_timestamp,
                    crc32: if skip_crc {
                        0
                    } else {
                        crc32fast::hash(content)
                    },
                    source_ip: self.source_ip.clone(),
                };
                Action::Send(frame::reply(0, &info.encode(self.ip_width)))
            }
            frame::CMD_DOWNLOAD_FILE if body.len() > 32 => {
                let mut r = Reader::new(body);
                let offset = r.i64().unwrap_or(-1);
                let len = r.i64().unwrap_or(-1);
                let group = group_of(r.take(16).unwrap_or_default());
                let remote = String::from_utf8_lossy(r.rest()).into_owned();
                if group != self.group || offset < 0 || len < 0 {
                    return Action::SendAndClose(frame::reply(frame::status::EINVAL, &[]));
                }
                let Some(content) = self.files.get(&remote) else {
                    return status_only(frame::status::ENOENT);
                };
                let (offset, len) = (offset as usize, len as usize);
                if offset >= content.len() {
                    // The real storage closes after a header-only EINVAL.
                    return Action::SendAndClose(frame::reply(frame::status::EINVAL, &[]));
                }
                let end = if len == 0 {
                    content.len()
                } else {
                    offset.saturating_add(len).min(content.len())
                };
                let data = &content[offset..end];
                match self.fault {
                    Fault::CloseAfterBodyBytes(n) => {
                        let mut msg = frame::reply(0, data);
                        msg.truncate(HEADER_LEN + n.min(data.len()));
                        Action::SendAndClose(msg)
                    }
                    _ => Action::Send(frame::reply(0, data)),
                }
            }
            // The real storage closes after an unknown command; the real
            // tracker keeps the connection.
            _ => Action::SendAndClose(frame::reply(frame::status::EINVAL, &[])),
        }
    }
}

/// Starts a fake tracker on 127.0.0.1 with a random port.
pub async fn start_tracker(spec: TrackerSpec) -> FakeServer {
    start_tracker_on(IpAddr::V4(Ipv4Addr::LOCALHOST), spec).await
}

/// Starts a fake tracker on the given loopback address, random port.
pub async fn start_tracker_on(ip: IpAddr, spec: TrackerSpec) -> FakeServer {
    FakeServer::spawn(ip, Arc::new(spec)).await
}

/// Starts a fake storage on 127.0.0.1 with a random port.
pub async fn start_storage(spec: StorageSpec) -> FakeServer {
    start_storage_on(IpAddr::V4(Ipv4Addr::LOCALHOST), spec).await
}

/// Starts a fake storage on the given loopback address, random port.
pub async fn start_storage_on(ip: IpAddr, spec: StorageSpec) -> FakeServer {
    FakeServer::spawn(ip, Arc::new(spec)).await
}

/// An address on which nothing listens (connections are refused).
pub async fn closed_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}
