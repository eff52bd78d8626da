//! Tracker commands: pure request builders, reply parsers and reply encoders
//! (docs/wire-protocol.md §3 parameters, §4 storage-ID table, §5 groups and
//! storages, §6.1 fetch queries).

use super::frame::{
    check_remote, encode_group, message, put_fixed_str, IpWidth, Reader, CMD_FETCH_STORAGE_IDS,
    CMD_LIST_ALL_GROUPS, CMD_LIST_ONE_GROUP, CMD_LIST_STORAGE, CMD_PARAMETERS, CMD_QUERY_FETCH_ALL,
    CMD_QUERY_FETCH_ONE, GROUP_NAME_LEN, STORAGE_ID_LEN, VERSION_LEN,
};
use super::ProtoError;

/// Default `storage_sync_file_max_delay` when the tracker does not send it
/// (§3).
pub const DEFAULT_SYNC_FILE_MAX_DELAY: u64 = 86400;

/// STORAGE_PARAMETER_REQ (75): header only.
pub fn parameters_request() -> Vec<u8> {
    message(CMD_PARAMETERS, 0, &[])
}

/// FETCH_STORAGE_IDS (69): `start_index` (4 BE) + `allow_empty` (1 byte).
pub fn storage_ids_request(start_index: u32, allow_empty: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(5);
    body.extend_from_slice(&start_index.to_be_bytes());
    body.push(u8::from(allow_empty));
    message(CMD_FETCH_STORAGE_IDS, 0, &body)
}

/// LIST_ONE_GROUP (90): 16-byte group name.
pub fn list_one_group_request(group: &str) -> Result<Vec<u8>, ProtoError> {
    Ok(message(CMD_LIST_ONE_GROUP, 0, &encode_group(group)?))
}

/// LIST_ALL_GROUPS (91): header only.
pub fn list_all_groups_request() -> Vec<u8> {
    message(CMD_LIST_ALL_GROUPS, 0, &[])
}

/// LIST_STORAGE (92): 16-byte group name, optionally followed by a storage
/// ID (1..=15 bytes, no NUL) to list only that storage.
pub fn list_storage_request(group: &str, storage_id: Option<&str>) -> Result<Vec<u8>, ProtoError> {
    let mut body = encode_group(group)?.to_vec();
    if let Some(id) = storage_id {
        let b = id.as_bytes();
        if b.is_empty() || b.len() >= STORAGE_ID_LEN || b.contains(&0) {
            return Err(ProtoError::BadRequest(
                "storage id must be 1..15 bytes without NUL",
            ));
        }
        body.extend_from_slice(b);
    }
    Ok(message(CMD_LIST_STORAGE, 0, &body))
}

fn group_remote_body(group: &str, remote: &str) -> Result<Vec<u8>, ProtoError> {
    let mut body = encode_group(group)?.to_vec();
    body.extend_from_slice(check_remote(remote)?);
    Ok(body)
}

/// QUERY_FETCH_ONE (102): 16-byte group + remote file name (no NUL).
pub fn query_fetch_one_request(group: &str, remote: &str) -> Result<Vec<u8>, ProtoError> {
    Ok(message(
        CMD_QUERY_FETCH_ONE,
        0,
        &group_remote_body(group, remote)?,
    ))
}

/// QUERY_UPDATE (103): the storage to append to, set metadata on or
/// delete a file (same layout as 102).
pub fn query_update_request(group: &str, remote: &str) -> Result<Vec<u8>, ProtoError> {
    Ok(message(
        super::frame::CMD_QUERY_UPDATE,
        0,
        &group_remote_body(group, remote)?,
    ))
}

/// QUERY_FETCH_ALL (105): 16-byte group + remote file name (no NUL).
pub fn query_fetch_all_request(group: &str, remote: &str) -> Result<Vec<u8>, ProtoError> {
    Ok(message(
        CMD_QUERY_FETCH_ALL,
        0,
        &group_remote_body(group, remote)?,
    ))
}

/// The cluster parameters the tracker reports for cmd 75 (§3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerParams {
    /// `storage_sync_file_max_delay` in seconds, if sent (module default
    /// [`DEFAULT_SYNC_FILE_MAX_DELAY`]).
    pub storage_sync_file_max_delay: Option<u64>,
    /// `use_storage_id` (default false).
    pub use_storage_id: bool,
    /// `id_type_in_filename=id` (false for `ip` or when absent).
    pub id_type_in_filename_is_id: bool,
    /// `response_ip_addr_size`: 16 or 46, if sent.
    pub response_ip_addr_size: Option<u8>,
    /// `store_slave_file_use_link` (default false).
    pub store_slave_file_use_link: bool,
    /// `use_trunk_file` (default false).
    pub use_trunk_file: bool,
}

/// libfastcommon's INI truth test: `true`, `yes`, `on` or `1`, any case.
fn ini_bool(v: &str) -> bool {
    ["true", "yes", "on", "1"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

impl TrackerParams {
    /// Parses the `key=value` text of a cmd 75 reply (INI rules: blank and
    /// `#` lines skipped, keys and values trimmed, first occurrence wins,
    /// unknown keys ignored).
    pub fn parse(body: &[u8]) -> Result<TrackerParams, ProtoError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ProtoError::BadBody("parameters are not UTF-8"))?;
        let mut params = TrackerParams {
            storage_sync_file_max_delay: None,
            use_storage_id: false,
            id_type_in_filename_is_id: false,
            response_ip_addr_size: None,
            store_slave_file_use_link: false,
            use_trunk_file: false,
        };
        let mut seen: Vec<&str> = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            match key {
                "storage_sync_file_max_delay" => {
                    let v = value
                        .parse::<u64>()
                        .map_err(|_| ProtoError::BadBody("storage_sync_file_max_delay"))?;
                    params.storage_sync_file_max_delay = Some(v);
                }
                "use_storage_id" => params.use_storage_id = ini_bool(value),
                "id_type_in_filename" => {
                    params.id_type_in_filename_is_id = value.eq_ignore_ascii_case("id")
                }
                "response_ip_addr_size" => {
                    params.response_ip_addr_size = match value {
                        "16" => Some(16),
                        "46" => Some(46),
                        _ => return Err(ProtoError::BadBody("response_ip_addr_size")),
                    }
                }
                "store_slave_file_use_link" => params.store_slave_file_use_link = ini_bool(value),
                "use_trunk_file" => params.use_trunk_file = ini_bool(value),
                _ => {}
            }
        }
        Ok(params)
    }

    /// `storage_sync_file_max_delay`, or the 86400 s default.
    pub fn sync_file_max_delay(&self) -> u64 {
        self.storage_sync_file_max_delay
            .unwrap_or(DEFAULT_SYNC_FILE_MAX_DELAY)
    }
}

/// One page of the storage-ID table (cmd 69 reply, §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageIdsPage {
    /// Number of IDs the tracker has in total.
    pub total: u32,
    /// The raw storage_ids.conf lines of this page, without `\n`; exactly
    /// `current_count` of them.
    pub lines: Vec<String>,
}

impl StorageIdsPage {
    /// Parses `total_count` (4) + `current_count` (4) + text lines.
    pub fn parse(body: &[u8]) -> Result<StorageIdsPage, ProtoError> {
        let mut r = Reader::new(body);
        let total =
            u32::try_from(r.i32()?).map_err(|_| ProtoError::BadBody("negative total_count"))?;
        let current =
            u32::try_from(r.i32()?).map_err(|_| ProtoError::BadBody("negative current_count"))?;
        if current > total {
            return Err(ProtoError::BadBody("current_count > total_count"));
        }
        let text = std::str::from_utf8(r.rest())
            .map_err(|_| ProtoError::BadBody("storage ids are not UTF-8"))?;
        let lines: Vec<String> = text.split_terminator('\n').map(str::to_owned).collect();
        if u32::try_from(lines.len()) != Ok(current) {
            return Err(ProtoError::BadBody(
                "storage id line count != current_count",
            ));
        }
        Ok(StorageIdsPage { total, lines })
    }

    /// Encodes the page as a reply body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.total.to_be_bytes());
        let current = u32::try_from(self.lines.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&current.to_be_bytes());
        for line in &self.lines {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out
    }
}

/// `FDFS_STORAGE_STATUS_*` (§5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageStatus {
    /// 0: joined, not yet syncing.
    Init,
    /// 1: waiting to start the initial sync.
    WaitSync,
    /// 2: initial full sync in progress (incomplete data).
    Syncing,
    /// 3: address change being processed.
    IpChanged,
    /// 4: removed by an admin.
    Deleted,
    /// 5: not heart-beating.
    Offline,
    /// 6: connected, not yet active.
    Online,
    /// 7: serving.
    Active,
    /// 9: disk recovery in progress.
    Recovery,
    /// 99: placeholder.
    None,
    /// Any other code.
    Unknown(u8),
}

impl StorageStatus {
    /// Decodes the status byte.
    pub fn from_u8(code: u8) -> StorageStatus {
        match code {
            0 => StorageStatus::Init,
            1 => StorageStatus::WaitSync,
            2 => StorageStatus::Syncing,
            3 => StorageStatus::IpChanged,
            4 => StorageStatus::Deleted,
            5 => StorageStatus::Offline,
            6 => StorageStatus::Online,
            7 => StorageStatus::Active,
            9 => StorageStatus::Recovery,
            99 => StorageStatus::None,
            other => StorageStatus::Unknown(other),
        }
    }

    /// The status byte.
    pub fn code(self) -> u8 {
        match self {
            StorageStatus::Init => 0,
            StorageStatus::WaitSync => 1,
            StorageStatus::Syncing => 2,
            StorageStatus::IpChanged => 3,
            StorageStatus::Deleted => 4,
            StorageStatus::Offline => 5,
            StorageStatus::Online => 6,
            StorageStatus::Active => 7,
            StorageStatus::Recovery => 9,
            StorageStatus::None => 99,
            StorageStatus::Unknown(c) => c,
        }
    }

    /// The upper-case name `fdfs_monitor` prints (`ACTIVE`, `OFFLINE`, …).
    pub fn name(self) -> &'static str {
        match self {
            StorageStatus::Init => "INIT",
            StorageStatus::WaitSync => "WAIT_SYNC",
            StorageStatus::Syncing => "SYNCING",
            StorageStatus::IpChanged => "IP_CHANGED",
            StorageStatus::Deleted => "DELETED",
            StorageStatus::Offline => "OFFLINE",
            StorageStatus::Online => "ONLINE",
            StorageStatus::Active => "ACTIVE",
            StorageStatus::Recovery => "RECOVERY",
            StorageStatus::None => "NONE",
            StorageStatus::Unknown(_) => "UNKNOWN",
        }
    }
}

/// `rw_mode` bit for "readable" (`R_OK`).
pub const RW_READ: u8 = 4;
/// `rw_mode` bit for "writable" (`W_OK`).
pub const RW_WRITE: u8 = 2;

/// Size of a LIST_STORAGE record in IPv4 mode.
pub const STORAGE_STAT_V4_LEN: usize = 487;
/// Size of a LIST_STORAGE record in IPv6 mode.
pub const STORAGE_STAT_V6_LEN: usize = 517;
/// Size of the stat block inside a LIST_STORAGE record.
const STAT_BLOCK_LEN: usize = 348;
/// Offset of `last_source_update` inside the stat block.
const STAT_LAST_SOURCE_UPDATE: usize = 316;
/// Offset of `total_upload_count` inside the stat block (after three
/// 4-byte connection counts); `success_upload_count` follows.
const STAT_UPLOAD_COUNTS: usize = 12;
/// Offset of `total_download_count` inside the stat block;
/// `success_download_count` follows.
const STAT_DOWNLOAD_COUNTS: usize = 108;

/// Upload and download counters of a storage (stat block, §5.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageCounts {
    /// Uploads tried.
    pub total_upload: i64,
    /// Uploads that succeeded.
    pub success_upload: i64,
    /// Downloads tried.
    pub total_download: i64,
    /// Downloads that succeeded.
    pub success_download: i64,
}

/// One storage server as reported by LIST_STORAGE (cmd 92, §5.3). Of the
/// stat block only the upload/download counters and the four timestamps
/// are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageStat {
    /// Status (§5.1).
    pub status: StorageStatus,
    /// `rw_mode`: bit 4 readable, bit 2 writable (6.13+).
    pub rw_mode: u8,
    /// Storage ID (the IP when storage IDs are off).
    pub id: String,
    /// Address suited to the requesting client.
    pub ip: String,
    /// Storage this one syncs from (empty when none).
    pub src_id: String,
    /// Version string, e.g. `6.16.1`.
    pub version: String,
    /// Join time (unix s).
    pub join_time: i64,
    /// Start time of the running daemon (unix s; 0 when offline).
    pub up_time: i64,
    /// Disk total in MB.
    pub total_mb: i64,
    /// Disk free in MB.
    pub free_mb: i64,
    /// FastDFS port (no HTTP port is reported).
    pub storage_port: u16,
    /// Last time a file was uploaded to it as source (unix s).
    pub last_source_update: i64,
    /// Last time it received a synced file (unix s).
    pub last_sync_update: i64,
    /// Source-side timestamp up to which it has replicated (unix s).
    pub last_synced_timestamp: i64,
    /// Last heartbeat (unix s).
    pub last_heart_beat_time: i64,
    /// Whether it is the group's trunk server.
    pub is_trunk_server: bool,
    /// Upload/download counters.
    pub counts: StorageCounts,
}

impl StorageStat {
    /// A record of a storage at `ip` (also its id) on port 23000 in
    /// `status`, readable and writable, version 6.16.1, every time and
    /// counter zero: what fakes and tests start from.
    pub fn new(ip: &str, status: StorageStatus) -> StorageStat {
        StorageStat {
            status,
            rw_mode: 6,
            id: ip.into(),
            ip: ip.into(),
            src_id: String::new(),
            version: "6.16.1".into(),
            join_time: 0,
            up_time: 0,
            total_mb: 0,
            free_mb: 0,
            storage_port: 23000,
            last_source_update: 0,
            last_sync_update: 0,
            last_synced_timestamp: 0,
            last_heart_beat_time: 0,
            is_trunk_server: false,
            counts: StorageCounts::default(),
        }
    }

    /// True when the storage may serve reads: status ACTIVE and `rw_mode`
    /// has the read bit. Records of this layout only come from 6.13+
    /// trackers (older ones use other record sizes and fail to parse), and
    /// those always fill `rw_mode` (6 when `rw=` is not configured), so 0
    /// really means `rw=none`.
    pub fn readable(&self) -> bool {
        self.status == StorageStatus::Active && self.rw_mode & RW_READ != 0
    }

    fn parse_one(rec: &[u8], width: IpWidth) -> Result<StorageStat, ProtoError> {
        let mut r = Reader::new(rec);
        let status = StorageStatus::from_u8(r.u8()?);
        let rw_mode = r.u8()?;
        let id = r.fixed_str(STORAGE_ID_LEN, "storage id")?;
        let ip = r.fixed_str(width.size(), "storage ip")?;
        let src_id = r.fixed_str(STORAGE_ID_LEN, "src id")?;
        let version = r.fixed_str(VERSION_LEN, "version")?;
        let join_time = r.i64()?;
        let up_time = r.i64()?;
        let total_mb = r.i64()?;
        let free_mb = r.i64()?;
        let _reserved_mb = r.i64()?;
        let _upload_priority = r.i64()?;
        let _store_path_count = r.i64()?;
        let _subdir_count_per_path = r.i64()?;
        let _current_write_path = r.i64()?;
        let storage_port =
            u16::try_from(r.i64()?).map_err(|_| ProtoError::BadBody("storage port"))?;
        let stat = r.take(STAT_BLOCK_LEN)?;
        let mut s = Reader::new(stat.get(STAT_LAST_SOURCE_UPDATE..).unwrap_or_default());
        let last_source_update = s.i64()?;
        let last_sync_update = s.i64()?;
        let last_synced_timestamp = s.i64()?;
        let last_heart_beat_time = s.i64()?;
        let at = |off: usize| {
            Reader::new(stat.get(off..).unwrap_or_default())
                .i64()
                .unwrap_or(0)
        };
        let counts = StorageCounts {
            total_upload: at(STAT_UPLOAD_COUNTS),
            success_upload: at(STAT_UPLOAD_COUNTS + 8),
            total_download: at(STAT_DOWNLOAD_COUNTS),
            success_download: at(STAT_DOWNLOAD_COUNTS + 8),
        };
        let is_trunk_server = r.u8()? != 0;
        if r.remaining() != 0 {
            return Err(ProtoError::BadBody("storage record length"));
        }
        Ok(StorageStat {
            status,
            rw_mode,
            id,
            ip,
            src_id,
            version,
            join_time,
            up_time,
            total_mb,
            free_mb,
            storage_port,
            last_source_update,
            last_sync_update,
            last_synced_timestamp,
            last_heart_beat_time,
            is_trunk_server,
            counts,
        })
    }

    /// Parses a LIST_STORAGE reply body: records of 487 bytes (IPv4 mode)
    /// or, if the length is not a multiple of that, 517 bytes (IPv6 mode).
    pub fn parse_list(body: &[u8]) -> Result<Vec<StorageStat>, ProtoError> {
        let (width, size) = if body.len() % STORAGE_STAT_V4_LEN == 0 {
            (IpWidth::V4, STORAGE_STAT_V4_LEN)
        } else if body.len() % STORAGE_STAT_V6_LEN == 0 {
            (IpWidth::V6, STORAGE_STAT_V6_LEN)
        } else {
            return Err(ProtoError::BadBody("storage list length"));
        };
        body.chunks_exact(size)
            .map(|rec| StorageStat::parse_one(rec, width))
            .collect()
    }

    /// Appends this record in the given IP width (fields not kept are 0).
    pub fn encode(&self, width: IpWidth, out: &mut Vec<u8>) {
        out.push(self.status.code());
        out.push(self.rw_mode);
        put_fixed_str(out, &self.id, STORAGE_ID_LEN);
        put_fixed_str(out, &self.ip, width.size());
        put_fixed_str(out, &self.src_id, STORAGE_ID_LEN);
        put_fixed_str(out, &self.version, VERSION_LEN);
        for v in [
            self.join_time,
            self.up_time,
            self.total_mb,
            self.free_mb,
            0,
            0,
            0,
            0,
            0,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&i64::from(self.storage_port).to_be_bytes());
        let stat = out.len();
        out.resize(stat + STAT_LAST_SOURCE_UPDATE, 0);
        for (off, v) in [
            (STAT_UPLOAD_COUNTS, self.counts.total_upload),
            (STAT_UPLOAD_COUNTS + 8, self.counts.success_upload),
            (STAT_DOWNLOAD_COUNTS, self.counts.total_download),
            (STAT_DOWNLOAD_COUNTS + 8, self.counts.success_download),
        ] {
            out[stat + off..stat + off + 8].copy_from_slice(&v.to_be_bytes());
        }
        for v in [
            self.last_source_update,
            self.last_sync_update,
            self.last_synced_timestamp,
            self.last_heart_beat_time,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.push(u8::from(self.is_trunk_server));
    }

    /// Encodes a whole LIST_STORAGE reply body.
    pub fn encode_list(list: &[StorageStat], width: IpWidth) -> Vec<u8> {
        let mut out = Vec::new();
        for s in list {
            s.encode(width, &mut out);
        }
        out
    }
}

/// Size of a LIST_ONE_GROUP / LIST_ALL_GROUPS record.
pub const GROUP_STAT_LEN: usize = 113;

/// One group as reported by cmd 90/91 (§5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStat {
    /// Group name.
    pub name: String,
    /// Disk total in MB.
    pub total_mb: i64,
    /// Disk free in MB.
    pub free_mb: i64,
    /// Reserved space in MB (6.13.1+).
    pub reserved_mb: i64,
    /// Free trunk space in MB.
    pub trunk_free_mb: i64,
    /// Number of storages.
    pub storage_count: i64,
    /// FastDFS port of the group.
    pub storage_port: i64,
    /// Storages that can serve reads (6.13+).
    pub readable_server_count: i64,
    /// Storages that accept writes (6.13+).
    pub writable_server_count: i64,
    /// Index of the current write server.
    pub current_write_server: i64,
    /// Store paths per storage.
    pub store_path_count: i64,
    /// Sub-directories per store path level.
    pub subdir_count_per_path: i64,
    /// Current trunk file ID (-1 without trunk).
    pub current_trunk_file_id: i64,
}

impl GroupStat {
    /// Parses a cmd 90/91 reply body: a whole number of 113-byte records.
    pub fn parse_list(body: &[u8]) -> Result<Vec<GroupStat>, ProtoError> {
        if body.len() % GROUP_STAT_LEN != 0 {
            return Err(ProtoError::BadBody("group list length"));
        }
        body.chunks_exact(GROUP_STAT_LEN)
            .map(|rec| {
                let mut r = Reader::new(rec);
                let name = r.fixed_str(GROUP_NAME_LEN + 1, "group name")?;
                let mut v = [0i64; 12];
                for slot in v.iter_mut() {
                    *slot = r.i64()?;
                }
                let [total_mb, free_mb, reserved_mb, trunk_free_mb, storage_count, storage_port, readable_server_count, writable_server_count, current_write_server, store_path_count, subdir_count_per_path, current_trunk_file_id] =
                    v;
                Ok(GroupStat {
                    name,
                    total_mb,
                    free_mb,
                    reserved_mb,
                    trunk_free_mb,
                    storage_count,
                    storage_port,
                    readable_server_count,
                    writable_server_count,
                    current_write_server,
                    store_path_count,
                    subdir_count_per_path,
                    current_trunk_file_id,
                })
            })
            .collect()
    }

    /// Encodes a whole cmd 90/91 reply body.
    pub fn encode_list(list: &[GroupStat]) -> Vec<u8> {
        let mut out = Vec::with_capacity(list.len() * GROUP_STAT_LEN);
        for g in list {
            put_fixed_str(&mut out, &g.name, GROUP_NAME_LEN + 1);
            for v in [
                g.total_mb,
                g.free_mb,
                g.reserved_mb,
                g.trunk_free_mb,
                g.storage_count,
                g.storage_port,
                g.readable_server_count,
                g.writable_server_count,
                g.current_write_server,
                g.store_path_count,
                g.subdir_count_per_path,
                g.current_trunk_file_id,
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out
    }
}

/// A QUERY_FETCH_ONE / QUERY_FETCH_ALL / QUERY_UPDATE reply (§6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReply {
    /// Group name echoed by the tracker.
    pub group: String,
    /// Storages that can serve the file: (IP, FastDFS port), at least one.
    pub servers: Vec<(String, u16)>,
}

const FETCH_V4_FIRST: usize = GROUP_NAME_LEN + 15 + 8;
const FETCH_V4_NEXT: usize = 15 + 8;
const FETCH_V6_FIRST: usize = GROUP_NAME_LEN + 45 + 8;
const FETCH_V6_NEXT: usize = 45 + 8;

impl FetchReply {
    /// Parses the body: group (16) + n × (IP (15 or 45) + port (8)), the
    /// IPv4 layout tried first (39 + (n−1)·23, else 69 + (n−1)·53).
    pub fn parse(body: &[u8]) -> Result<FetchReply, ProtoError> {
        let len = body.len();
        let ip_len = if len >= FETCH_V4_FIRST && (len - FETCH_V4_FIRST) % FETCH_V4_NEXT == 0 {
            15
        } else if len >= FETCH_V6_FIRST && (len - FETCH_V6_FIRST) % FETCH_V6_NEXT == 0 {
            45
        } else {
            return Err(ProtoError::BadBody("fetch reply length"));
        };
        let mut r = Reader::new(body);
        let group = r.fixed_str(GROUP_NAME_LEN, "group name")?;
        let mut servers = Vec::new();
        while r.remaining() > 0 {
            let ip = r.fixed_str(ip_len, "server ip")?;
            let port = u16::try_from(r.i64()?).map_err(|_| ProtoError::BadBody("server port"))?;
            servers.push((ip, port));
        }
        Ok(FetchReply { group, servers })
    }

    /// Encodes the reply body in the given IP width.
    pub fn encode(&self, width: IpWidth) -> Vec<u8> {
        let mut out = Vec::new();
        put_fixed_str(&mut out, &self.group, GROUP_NAME_LEN);
        for (ip, port) in &self.servers {
            put_fixed_str(&mut out, ip, width.size() - 1);
            out.extend_from_slice(&i64::from(*port).to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::Header;

    fn sample(status: u8, rw_mode: u8) -> StorageStat {
        StorageStat {
            status: StorageStatus::from_u8(status),
            rw_mode,
            id: "100001".into(),
            ip: "127.0.0.6".into(),
            src_id: "".into(),
            version: "6.16.1".into(),
            join_time: 1795602358,
            up_time: 1795602995,
            total_mb: 258019,
            free_mb: 79720,
            storage_port: 23000,
            last_source_update: 1,
            last_sync_update: 2,
            last_synced_timestamp: 1795602411,
            last_heart_beat_time: 1795602995,
            is_trunk_server: true,
            counts: StorageCounts {
                total_upload: 3,
                success_upload: 2,
                total_download: 9,
                success_download: 8,
            },
        }
    }

    #[test]
    fn request_builders() {
        assert_eq!(parameters_request(), [0, 0, 0, 0, 0, 0, 0, 0, 75, 0]);
        assert_eq!(
            storage_ids_request(1, true),
            [0, 0, 0, 0, 0, 0, 0, 5, 69, 0, 0, 0, 0, 1, 1]
        );
        assert_eq!(list_all_groups_request(), [0, 0, 0, 0, 0, 0, 0, 0, 91, 0]);
        let r = list_one_group_request("group1").unwrap();
        assert_eq!(r.len(), 26);
        assert_eq!(r[8], 90);
        let r = list_storage_request("group1", Some("127.0.0.3")).unwrap();
        assert_eq!(Header::decode(&r, 100).unwrap().pkg_len, 25);
        assert_eq!(&r[26..], b"127.0.0.3");
        assert!(list_storage_request("group1", Some("")).is_err());
        assert!(list_storage_request("group1", Some("0123456789abcdef")).is_err());
        assert!(list_storage_request("group1", Some("0123456789abcde")).is_ok());
        let r = query_fetch_all_request("group1", "M00/00/00/a.txt").unwrap();
        assert_eq!(r[8], 105);
        assert_eq!(&r[26..], b"M00/00/00/a.txt");
        assert_eq!(query_fetch_one_request("group1", "M00/x").unwrap()[8], 102);
        assert!(query_fetch_one_request("", "M00/x").is_err());
        assert!(query_fetch_one_request("g", "").is_err());
    }

    #[test]
    fn params_parse() {
        let p = TrackerParams::parse(
            b"use_storage_id=1\nid_type_in_filename=id\nresponse_ip_addr_size=46\n\
              storage_sync_file_max_delay=3600\nuse_trunk_file=1\nstore_slave_file_use_link=1\n",
        )
        .unwrap();
        assert_eq!(
            p,
            TrackerParams {
                storage_sync_file_max_delay: Some(3600),
                use_storage_id: true,
                id_type_in_filename_is_id: true,
                response_ip_addr_size: Some(46),
                store_slave_file_use_link: true,
                use_trunk_file: true,
            }
        );
        let d = TrackerParams::parse(b"").unwrap();
        assert_eq!(d.sync_file_max_delay(), 86400);
        assert!(
            !d.use_storage_id && !d.id_type_in_filename_is_id && d.response_ip_addr_size.is_none()
        );
        // INI details: spaces, comments, CRLF, first wins, yes/on/true.
        let p = TrackerParams::parse(
            b"# c\r\n use_storage_id = yes \r\nuse_storage_id=0\nid_type_in_filename=ip\nnoequals\nstore_slave_file_use_link=On\n",
        )
        .unwrap();
        assert!(p.use_storage_id && !p.id_type_in_filename_is_id && p.store_slave_file_use_link);
        assert!(
            !TrackerParams::parse(b"use_storage_id=2")
                .unwrap()
                .use_storage_id
        );
    }

    #[test]
    fn params_errors() {
        assert_eq!(
            TrackerParams::parse(b"storage_sync_file_max_delay=x"),
            Err(ProtoError::BadBody("storage_sync_file_max_delay"))
        );
        assert_eq!(
            TrackerParams::parse(b"storage_sync_file_max_delay=-1"),
            Err(ProtoError::BadBody("storage_sync_file_max_delay"))
        );
        assert_eq!(
            TrackerParams::parse(b"response_ip_addr_size=auto"),
            Err(ProtoError::BadBody("response_ip_addr_size"))
        );
        assert!(TrackerParams::parse(b"\xff").is_err());
    }

    #[test]
    fn storage_ids_page() {
        let page = StorageIdsPage {
            total: 2,
            lines: vec![
                "100001 group1 127.0.0.6:23000".into(),
                "100002 group1 127.0.0.7:23000".into(),
            ],
        };
        let body = page.encode();
        assert_eq!(body.len(), 68);
        assert_eq!(StorageIdsPage::parse(&body), Ok(page));
        assert_eq!(
            StorageIdsPage::parse(&[0; 8]),
            Ok(StorageIdsPage {
                total: 0,
                lines: vec![]
            })
        );
        assert!(StorageIdsPage::parse(&[0; 7]).is_err());
        // current > total, negative, line count mismatch, bad UTF-8
        assert!(
            StorageIdsPage::parse(&[0, 0, 0, 1, 0, 0, 0, 2, b'a', b'\n', b'b', b'\n']).is_err()
        );
        assert!(StorageIdsPage::parse(&[0xff, 0, 0, 1, 0, 0, 0, 0]).is_err());
        assert!(StorageIdsPage::parse(&[0, 0, 0, 2, 0, 0, 0, 2, b'a', b'\n']).is_err());
        assert!(StorageIdsPage::parse(&[0, 0, 0, 1, 0, 0, 0, 1, 0xff, b'\n']).is_err());
        // last line without newline still counts
        assert_eq!(
            StorageIdsPage::parse(&[0, 0, 0, 1, 0, 0, 0, 1, b'a'])
                .unwrap()
                .lines,
            vec!["a"]
        );
    }

    #[test]
    fn status_codes_round_trip() {
        let table = [
            (0, StorageStatus::Init, "INIT"),
            (1, StorageStatus::WaitSync, "WAIT_SYNC"),
            (2, StorageStatus::Syncing, "SYNCING"),
            (3, StorageStatus::IpChanged, "IP_CHANGED"),
            (4, StorageStatus::Deleted, "DELETED"),
            (5, StorageStatus::Offline, "OFFLINE"),
            (6, StorageStatus::Online, "ONLINE"),
            (7, StorageStatus::Active, "ACTIVE"),
            (9, StorageStatus::Recovery, "RECOVERY"),
            (99, StorageStatus::None, "NONE"),
        ];
        for (code, st, name) in table {
            assert_eq!(StorageStatus::from_u8(code), st);
            assert_eq!(st.code(), code);
            assert_eq!(st.name(), name);
        }
        for code in 0..=255u8 {
            assert_eq!(StorageStatus::from_u8(code).code(), code);
        }
        assert_eq!(StorageStatus::from_u8(8), StorageStatus::Unknown(8));
    }

    #[test]
    fn readable_rule() {
        for status in 0..=255u8 {
            for rw in [0u8, 2, 4, 6] {
                let expect = status == 7 && (rw == 4 || rw == 6);
                assert_eq!(
                    sample(status, rw).readable(),
                    expect,
                    "status {status} rw {rw}"
                );
            }
        }
    }

    #[test]
    fn storage_stat_round_trip_both_widths() {
        let a = sample(7, 6);
        let mut b = sample(5, 4);
        b.ip = "2001:db8::1".into();
        b.is_trunk_server = false;
        b.src_id = "100001".into();
        for (width, size) in [(IpWidth::V4, 487), (IpWidth::V6, 517)] {
            let body = StorageStat::encode_list(&[a.clone(), b.clone()], width);
            assert_eq!(body.len(), 2 * size);
            assert_eq!(
                StorageStat::parse_list(&body).unwrap(),
                vec![a.clone(), b.clone()]
            );
        }
        assert_eq!(StorageStat::parse_list(&[]), Ok(vec![]));
        assert_eq!(
            StorageStat::parse_list(&[0; 486]),
            Err(ProtoError::BadBody("storage list length"))
        );
    }

    #[test]
    fn storage_stat_rejects_bad_port_and_text() {
        let mut body = StorageStat::encode_list(&[sample(7, 6)], IpWidth::V4);
        body[130] = 1; // port becomes > u16
        assert_eq!(
            StorageStat::parse_list(&body),
            Err(ProtoError::BadBody("storage port"))
        );
        let mut body = StorageStat::encode_list(&[sample(7, 6)], IpWidth::V4);
        body[2] = 0xff;
        assert_eq!(
            StorageStat::parse_list(&body),
            Err(ProtoError::BadBody("storage id"))
        );
    }

    #[test]
    fn group_stat_parse() {
        let mut rec = b"group1".to_vec();
        rec.resize(17, 0);
        for v in 1..=12i64 {
            rec.extend_from_slice(&v.to_be_bytes());
        }
        let g = GroupStat::parse_list(&rec).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "group1");
        assert_eq!((g[0].total_mb, g[0].current_trunk_file_id), (1, 12));
        assert_eq!(GroupStat::parse_list(&[]), Ok(vec![]));
        assert!(GroupStat::parse_list(&rec[..112]).is_err());
    }

    #[test]
    fn fetch_reply_lengths() {
        let one = FetchReply {
            group: "group1".into(),
            servers: vec![("127.0.0.2".into(), 23000)],
        };
        let two = FetchReply {
            group: "group1".into(),
            servers: vec![("127.0.0.2".into(), 23000), ("127.0.0.3".into(), 23001)],
        };
        assert_eq!(one.encode(IpWidth::V4).len(), 39);
        assert_eq!(two.encode(IpWidth::V4).len(), 62);
        assert_eq!(one.encode(IpWidth::V6).len(), 69);
        assert_eq!(two.encode(IpWidth::V6).len(), 122);
        for r in [&one, &two] {
            for w in [IpWidth::V4, IpWidth::V6] {
                assert_eq!(FetchReply::parse(&r.encode(w)).as_ref(), Ok(r));
            }
        }
        for bad in [0usize, 16, 38, 40, 61, 68, 70, 121] {
            assert_eq!(
                FetchReply::parse(&vec![0; bad]),
                Err(ProtoError::BadBody("fetch reply length"))
            );
        }
        let mut b = one.encode(IpWidth::V4);
        b[31] = 0x80; // negative port
        assert_eq!(
            FetchReply::parse(&b),
            Err(ProtoError::BadBody("server port"))
        );
    }

    #[test]
    fn parsers_are_total() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = [
            StorageStat::encode_list(&[sample(7, 6), sample(5, 0)], IpWidth::V4),
            StorageStat::encode_list(&[sample(7, 6)], IpWidth::V6),
            FetchReply {
                group: "g".into(),
                servers: vec![("1.2.3.4".into(), 1), ("::1".into(), 2)],
            }
            .encode(IpWidth::V6),
            b"use_storage_id=1\nresponse_ip_addr_size=16\n".to_vec(),
        ];
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for v in &valid {
            for n in 0..=v.len() {
                inputs.push(v[..n].to_vec());
            }
        }
        for _ in 0..3000 {
            let len = (next() % 1100) as usize;
            inputs.push((0..len).map(|_| next() as u8).collect());
        }
        for len in [487usize, 517, 974, 39, 62, 69, 113, 226] {
            let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            inputs.push(v.clone());
            v.iter_mut().for_each(|b| *b &= 0x7f);
            inputs.push(v);
        }
        for input in &inputs {
            let _ = TrackerParams::parse(input);
            let _ = StorageIdsPage::parse(input);
            let _ = StorageStat::parse_list(input);
            let _ = GroupStat::parse_list(input);
            let _ = FetchReply::parse(input);
            let _ = Header::decode(input, u64::MAX);
        }
    }
}
