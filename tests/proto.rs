//! FastDFS wire protocol: builders and parsers against the real captures in
//! tests/fixtures/wire, then clients against the fakes over loopback.

#[path = "support/fake_fdfs.rs"]
mod fake_fdfs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fake_fdfs::{Fault, StorageSpec, TrackerSpec};
use fdfs_httpd::proto::frame::{self, Header, IpWidth};
use fdfs_httpd::proto::storage::{download_request, query_file_info_request};
use fdfs_httpd::proto::tracker::{
    list_all_groups_request, list_one_group_request, list_storage_request, parameters_request,
    query_fetch_all_request, query_fetch_one_request, storage_ids_request,
};
use fdfs_httpd::proto::{
    Download, FetchReply, FileInfo, FileInfoFlags, GroupStat, ProtoError, StorageClient,
    StorageIdsPage, StorageStat, StorageStatus, TrackerClient, TrackerParams,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- captures

fn wire_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(wire_dir().join(name)).expect("read capture");
    serde_json::from_str(&text).expect("capture json")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// `{field: value}` of a decoded `fields` list.
fn fields(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .expect("fields array")
        .iter()
        .map(|f| (f["field"].as_str().unwrap().to_owned(), f["value"].clone()))
        .collect()
}

fn s<'a>(m: &'a BTreeMap<String, Value>, k: &str) -> &'a str {
    m[k].as_str().unwrap_or_else(|| panic!("{k} not a string"))
}

fn n(m: &BTreeMap<String, Value>, k: &str) -> i64 {
    m[k].as_i64().unwrap_or_else(|| panic!("{k} not a number"))
}

fn capture_files() -> Vec<String> {
    let index = load("index.json");
    index["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_owned())
        .collect()
}

/// Rebuilds a captured request with our builders; `None` for commands we do
/// not build (upload, delete, metadata, store queries, update query).
fn rebuild_request(cmd: u8, status: u8, body: &Value) -> Option<Vec<u8>> {
    let f = body.get("fields").map(fields).unwrap_or_default();
    let group = || s(&f, "group_name").to_owned();
    let remote = || s(&f, "remote_filename").to_owned();
    Some(match cmd {
        75 => parameters_request(),
        69 => storage_ids_request(n(&f, "start_index") as u32, n(&f, "allow_empty") != 0),
        90 => list_one_group_request(&group()).unwrap(),
        91 => list_all_groups_request(),
        92 => list_storage_request(&group(), f.get("storage_id").and_then(Value::as_str)).unwrap(),
        102 => query_fetch_one_request(&group(), &remote()).unwrap(),
        105 => query_fetch_all_request(&group(), &remote()).unwrap(),
        111 => frame::active_test_request(),
        82 => frame::quit_request(),
        14 => download_request(
            n(&f, "file_offset") as u64,
            n(&f, "download_bytes") as u64,
            &group(),
            &remote(),
        )
        .unwrap(),
        22 => {
            let flags = FileInfoFlags {
                no_crc32: status & 1 != 0,
                keep_silence: status & 2 != 0,
            };
            query_file_info_request(&group(), &remote(), flags).unwrap()
        }
        _ => return None,
    })
}

fn check_storage_list(body: &[u8], decoded: &Value) -> Vec<StorageStat> {
    let parsed = StorageStat::parse_list(body).expect("parse 92 reply");
    let storages = decoded["storages"].as_array().unwrap();
    assert_eq!(parsed.len(), storages.len());
    assert_eq!(parsed.len() as i64, decoded["count"].as_i64().unwrap());
    for (p, d) in parsed.iter().zip(storages) {
        let d = fields(d);
        assert_eq!(i64::from(p.status.code()), n(&d, "status"));
        assert_eq!(i64::from(p.rw_mode), n(&d, "rw_mode"));
        assert_eq!(p.id, s(&d, "id"));
        assert_eq!(p.ip, s(&d, "ip_addr"));
        assert_eq!(p.src_id, s(&d, "src_id"));
        assert_eq!(p.version, s(&d, "version"));
        assert_eq!(p.join_time, n(&d, "join_time"));
        assert_eq!(p.up_time, n(&d, "up_time"));
        assert_eq!(p.total_mb, n(&d, "total_mb"));
        assert_eq!(p.free_mb, n(&d, "free_mb"));
        assert_eq!(i64::from(p.storage_port), n(&d, "storage_port"));
        assert_eq!(p.last_source_update, n(&d, "stat.last_source_update"));
        assert_eq!(p.last_sync_update, n(&d, "stat.last_sync_update"));
        assert_eq!(p.last_synced_timestamp, n(&d, "stat.last_synced_timestamp"));
        assert_eq!(p.last_heart_beat_time, n(&d, "stat.last_heart_beat_time"));
        assert_eq!(p.is_trunk_server, n(&d, "if_trunk_server") != 0);
        assert_eq!(p.counts.total_upload, n(&d, "stat.total_upload_count"));
        assert_eq!(p.counts.success_upload, n(&d, "stat.success_upload_count"));
        assert_eq!(p.counts.total_download, n(&d, "stat.total_download_count"));
        assert_eq!(
            p.counts.success_download,
            n(&d, "stat.success_download_count")
        );
        assert_eq!(
            p.readable(),
            n(&d, "status") == 7 && n(&d, "rw_mode") & 4 != 0
        );
    }
    parsed
}

fn check_group_list(body: &[u8], decoded: &Value) {
    let parsed = GroupStat::parse_list(body).expect("parse group stats");
    assert_eq!(GroupStat::encode_list(&parsed), body, "re-encoded bytes");
    let groups = decoded["groups"].as_array().unwrap();
    assert_eq!(parsed.len(), groups.len());
    for (p, d) in parsed.iter().zip(groups) {
        let d = fields(d);
        assert_eq!(p.name, s(&d, "group_name"));
        let pairs = [
            (p.total_mb, "total_mb"),
            (p.free_mb, "free_mb"),
            (p.reserved_mb, "reserved_mb"),
            (p.trunk_free_mb, "trunk_free_mb"),
            (p.storage_count, "storage_count"),
            (p.storage_port, "storage_port"),
            (p.readable_server_count, "readable_server_count"),
            (p.writable_server_count, "writable_server_count"),
            (p.current_write_server, "current_write_server"),
            (p.store_path_count, "store_path_count"),
            (p.subdir_count_per_path, "subdir_count_per_path"),
            (p.current_trunk_file_id, "current_trunk_file_id"),
        ];
        for (ours, key) in pairs {
            assert_eq!(ours, n(&d, key), "{key}");
        }
    }
}

/// What fdfs_monitor printed about each storage, in order.
fn monitor_storages(stdout: &str) -> Vec<BTreeMap<String, String>> {
    let mut out: Vec<BTreeMap<String, String>> = Vec::new();
    for line in stdout.lines() {
        let line = line.trim();
        if line.starts_with("Storage ") && line.ends_with(':') {
            out.push(BTreeMap::new());
        } else if let (Some(cur), Some((k, v))) = (out.last_mut(), line.split_once('=')) {
            cur.entry(k.trim().to_owned())
                .or_insert_with(|| v.trim().to_owned());
        }
    }
    out
}

fn cross_check_monitor(stdout: &str, parsed: &[StorageStat]) {
    let printed = monitor_storages(stdout);
    assert_eq!(printed.len(), parsed.len());
    for (p, m) in parsed.iter().zip(&printed) {
        assert_eq!(m["id"], p.id);
        assert_eq!(
            m["host"],
            format!("{}:{}  {}", p.ip, p.storage_port, p.status.name())
        );
        assert_eq!(m["version"], p.version);
        assert_eq!(m["source storage id"], p.src_id);
        assert_eq!(
            m["if_trunk_server"],
            u8::from(p.is_trunk_server).to_string()
        );
        let rw = match p.rw_mode {
            6 => "both (normal)",
            4 => "readonly",
            2 => "writeonly",
            _ => "none",
        };
        assert!(
            m["read write mode"].starts_with(rw.split(' ').next().unwrap()),
            "{m:?}"
        );
    }
}

/// Checks an OK reply body against the capture's decoded section; returns
/// false for replies we do not parse.
fn check_reply(cmd: u8, body: &[u8], decoded: &Value, capture: &Value) -> bool {
    match cmd {
        75 => {
            let text = decoded["text"].as_str().unwrap();
            assert_eq!(body, text.as_bytes());
            let kv: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
            let p = TrackerParams::parse(body).expect("params");
            assert_eq!(p.use_storage_id, kv["use_storage_id"] == "1");
            assert_eq!(
                p.id_type_in_filename_is_id,
                kv["id_type_in_filename"] == "id"
            );
            assert_eq!(
                p.response_ip_addr_size.map(|v| v.to_string()).as_deref(),
                Some(kv["response_ip_addr_size"])
            );
            assert_eq!(
                p.storage_sync_file_max_delay,
                Some(kv["storage_sync_file_max_delay"].parse().unwrap())
            );
            assert_eq!(
                p.store_slave_file_use_link,
                kv["store_slave_file_use_link"] == "1"
            );
            assert_eq!(p.use_trunk_file, kv["use_trunk_file"] == "1");
        }
        69 => {
            let f = fields(&decoded["fields"]);
            let page = StorageIdsPage::parse(body).expect("ids page");
            assert_eq!(i64::from(page.total), n(&f, "total_count"));
            assert_eq!(page.lines.len() as i64, n(&f, "current_count"));
            let expect: Vec<&str> = decoded
                .get("ids_text")
                .and_then(Value::as_str)
                .unwrap_or("")
                .split_terminator('\n')
                .collect();
            assert_eq!(page.lines, expect);
            if let Some(ids) = decoded.get("ids").and_then(Value::as_array) {
                for (line, id) in page.lines.iter().zip(ids) {
                    let want = format!(
                        "{} {} {}",
                        id["id"].as_str().unwrap(),
                        id["group_name"].as_str().unwrap(),
                        id["ip_port"].as_str().unwrap()
                    );
                    assert_eq!(line, &want);
                }
            }
        }
        90 | 91 => check_group_list(body, decoded),
        92 => {
            let parsed = check_storage_list(body, decoded);
            if let Some(stdout) = capture.get("tool_stdout").and_then(Value::as_str) {
                if stdout.contains("Storage 1:") {
                    cross_check_monitor(stdout, &parsed);
                }
            }
        }
        102 | 103 | 105 => {
            let f = fields(&decoded["fields"]);
            let r = FetchReply::parse(body).expect("fetch reply");
            assert_eq!(r.group, s(&f, "group_name"));
            let expect: Vec<(String, u16)> = if f.contains_key("ip_addr") {
                vec![(s(&f, "ip_addr").to_owned(), n(&f, "port") as u16)]
            } else {
                (0..)
                    .map_while(|i| {
                        let ip = f.get(&format!("server[{i}].ip_addr"))?;
                        let port = f.get(&format!("server[{i}].port"))?;
                        Some((ip.as_str()?.to_owned(), port.as_i64()? as u16))
                    })
                    .collect()
            };
            assert!(!expect.is_empty());
            assert_eq!(r.servers, expect);
        }
        22 => {
            let f = fields(&decoded["fields"]);
            let info = FileInfo::parse(body).expect("file info");
            assert_eq!(info.size as i64, n(&f, "file_size"));
            assert_eq!(info.create_timestamp, n(&f, "create_timestamp"));
            assert_eq!(info.crc32, (n(&f, "crc32") & 0xffff_ffff) as u32);
            assert_eq!(info.source_ip, s(&f, "source_ip_addr"));
        }
        14 => {
            let raw = &decoded["raw_file_bytes"];
            assert_eq!(body.len() as i64, raw["content_len"].as_i64().unwrap());
            let digest: String = Sha256::digest(body)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(digest, raw["content_sha256"].as_str().unwrap());
        }
        111 => assert!(body.is_empty()),
        _ => return false,
    }
    true
}

#[test]
fn every_capture_matches_builders_and_parsers() {
    let files = capture_files();
    let mut on_disk: Vec<String> = std::fs::read_dir(wire_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".json") && f != "index.json")
        .collect();
    on_disk.sort();
    let mut listed = files.clone();
    listed.sort();
    assert_eq!(listed, on_disk, "index.json lists every capture");
    assert_eq!(files.len(), 52);
    let mut requests_rebuilt = 0;
    let mut replies_parsed = 0;
    let mut error_replies = 0;
    let mut not_ours: BTreeSet<String> = BTreeSet::new();
    for name in &files {
        let cap = load(name);
        let exchanges = cap["exchanges"].as_array().unwrap();
        let messages = cap["decoded"]["messages"].as_array().unwrap();
        assert_eq!(exchanges.len(), messages.len(), "{name}");
        let mut ours = 0;
        for (ex, msg) in exchanges.iter().zip(messages) {
            let bytes = unhex(ex["hex"].as_str().unwrap());
            let dir = ex["direction"].as_str().unwrap();
            assert_eq!(dir, msg["direction"].as_str().unwrap());
            let h = &msg["header"];
            let header = Header::decode(&bytes, u64::MAX).expect("header");
            assert_eq!(
                header.pkg_len as i64,
                h["pkg_len"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(i64::from(header.cmd), h["cmd"].as_i64().unwrap());
            assert_eq!(i64::from(header.status), h["status"].as_i64().unwrap());
            assert_eq!(header.encode().to_vec(), unhex(h["hex"].as_str().unwrap()));
            let body = &bytes[frame::HEADER_LEN..];
            assert_eq!(
                body.len() as u64,
                header.pkg_len,
                "{name}: one framed message per exchange"
            );
            if dir == "c2s" {
                if let Some(rebuilt) = rebuild_request(header.cmd, header.status, &msg["body"]) {
                    assert_eq!(rebuilt, bytes, "{name}: request cmd {}", header.cmd);
                    requests_rebuilt += 1;
                    ours += 1;
                }
            } else {
                let cmd = msg["in_reply_to_cmd"].as_u64().unwrap() as u8;
                match Header::decode_reply(&bytes, u64::MAX) {
                    Err(ProtoError::Status(st)) => {
                        assert_eq!(i64::from(st), h["status"].as_i64().unwrap());
                        assert!(body.is_empty());
                        error_replies += 1;
                        ours += 1;
                    }
                    Ok(_) => {
                        if check_reply(cmd, body, &msg["body"], &cap) {
                            replies_parsed += 1;
                            ours += 1;
                        }
                    }
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        }
        if ours == 0 {
            not_ours.insert(name.clone());
        }
    }
    // Captures made only of commands we neither build nor parse.
    let expected: BTreeSet<String> = [
        "storage_delete_file.json",
        "storage_upload_file.json",
        "tracker_query_store_variants.json",
        "tracker_query_store_without_group.json",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(not_ours, expected);
    assert_eq!(requests_rebuilt, 55);
    assert_eq!(replies_parsed, 48);
    assert_eq!(error_replies, 8);
}

#[test]
fn offline_storage_is_not_readable_in_capture() {
    let cap = load("tracker_list_groups_and_storages__b_offline.json");
    let reply = unhex(cap["exchanges"][3]["hex"].as_str().unwrap());
    let list = StorageStat::parse_list(&reply[10..]).unwrap();
    assert_eq!(list[0].status, StorageStatus::Active);
    assert!(list[0].readable());
    assert_eq!(list[1].status, StorageStatus::Offline);
    assert_eq!(list[1].up_time, 0);
    assert!(!list[1].readable());
}

#[test]
fn trunk_capture_fields() {
    let cap = load("trunk_tracker_list_groups_and_storages.json");
    let reply = unhex(cap["exchanges"][3]["hex"].as_str().unwrap());
    let list = StorageStat::parse_list(&reply[10..]).unwrap();
    assert_eq!(
        (list[0].id.as_str(), list[0].is_trunk_server),
        ("100001", true)
    );
    assert_eq!(
        (list[1].id.as_str(), list[1].src_id.as_str()),
        ("100002", "100001")
    );
    let params = load("trunk_tracker_server_parameters__nginx_module.json");
    let reply = unhex(params["exchanges"][1]["hex"].as_str().unwrap());
    let p = TrackerParams::parse(&reply[10..]).unwrap();
    assert!(p.use_storage_id && p.id_type_in_filename_is_id && p.use_trunk_file);
    assert_eq!(p.sync_file_max_delay(), 86400);
}

#[test]
fn captured_replies_survive_truncation_and_bit_flips() {
    for name in capture_files() {
        let cap = load(&name);
        for ex in cap["exchanges"].as_array().unwrap() {
            let bytes = unhex(ex["hex"].as_str().unwrap());
            let body = &bytes[frame::HEADER_LEN..];
            let mut variants: Vec<Vec<u8>> = (0..body.len().min(600))
                .map(|k| body[..k].to_vec())
                .collect();
            for i in (0..body.len()).step_by(7) {
                let mut v = body.to_vec();
                v[i] ^= 0x80;
                variants.push(v);
            }
            for v in &variants {
                let _ = TrackerParams::parse(v);
                let _ = StorageIdsPage::parse(v);
                let _ = StorageStat::parse_list(v);
                let _ = GroupStat::parse_list(v);
                let _ = FetchReply::parse(v);
                let _ = FileInfo::parse(v);
                let _ = Header::decode_reply(v, frame::MAX_REPLY_BODY);
            }
        }
    }
}

// ---------------------------------------------------------------- fakes

const CT: Duration = Duration::from_secs(2);
const NT: Duration = Duration::from_secs(2);

fn stat(id: &str, ip: &str, status: StorageStatus, rw_mode: u8) -> StorageStat {
    StorageStat {
        status,
        rw_mode,
        id: id.into(),
        ip: ip.into(),
        src_id: String::new(),
        version: "6.16.1".into(),
        join_time: 1_795_601_757,
        up_time: 1_795_602_043,
        total_mb: 258_019,
        free_mb: 79_721,
        storage_port: 23000,
        last_source_update: 1_795_602_177,
        last_sync_update: 1_795_602_964,
        last_synced_timestamp: 1_795_602_957,
        last_heart_beat_time: 1_795_602_973,
        is_trunk_server: false,
        counts: Default::default(),
    }
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const REMOTE: &str = "M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";

fn storage_spec() -> StorageSpec {
    let mut spec = StorageSpec::default();
    spec.files.insert(REMOTE.into(), content(200_000));
    spec.files
        .insert("M00/00/00/small.txt".into(), b"hello".to_vec());
    spec
}

async fn read_all(mut d: Download) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::new();
    while let Some(chunk) = d.next_chunk().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test]
async fn tracker_parameters_round_trip() {
    let spec = TrackerSpec {
        params_text: "use_storage_id=1\nid_type_in_filename=id\nresponse_ip_addr_size=46\nstorage_sync_file_max_delay=600\nstore_slave_file_use_link=1\n".into(),
        ..TrackerSpec::default()
    };
    let fake = fake_fdfs::start_tracker(spec).await;
    let client = TrackerClient::new(vec![fake.addr], CT, NT);
    let p = client.parameters().await.unwrap();
    assert!(p.use_storage_id && p.id_type_in_filename_is_id && p.store_slave_file_use_link);
    assert_eq!(p.response_ip_addr_size, Some(46));
    assert_eq!(p.storage_sync_file_max_delay, Some(600));
    assert_eq!(fake.seen_requests(), vec![parameters_request()]);
}

#[tokio::test]
async fn storage_ids_pages_on_one_connection() {
    let ids: Vec<String> = (1..=7)
        .map(|i| format!("10000{i} group1 127.0.0.{i}:23000"))
        .collect();
    let fake = fake_fdfs::start_tracker(TrackerSpec {
        storage_ids: Some(ids.clone()),
        ids_page_size: 3,
        ..TrackerSpec::default()
    })
    .await;
    let client = TrackerClient::new(vec![fake.addr], CT, NT);
    let text = client.storage_ids().await.unwrap();
    assert_eq!(
        text,
        ids.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
    assert_eq!(fake.connection_count(), 1);
    assert_eq!(
        fake.seen_requests(),
        vec![
            storage_ids_request(0, false),
            storage_ids_request(3, false),
            storage_ids_request(6, false)
        ]
    );
}

#[tokio::test]
async fn storage_ids_disabled_is_eopnotsupp() {
    let fake = fake_fdfs::start_tracker(TrackerSpec::default()).await;
    let client = TrackerClient::new(vec![fake.addr], CT, NT);
    assert_eq!(client.storage_ids().await, Err(ProtoError::Status(95)));
}

#[tokio::test]
async fn storage_ids_single_page_and_round_trip_cap() {
    let ids: Vec<String> = (0..40)
        .map(|i| format!("{} group1 10.0.0.{i}", 100000 + i))
        .collect();
    let fake = fake_fdfs::start_tracker(TrackerSpec {
        storage_ids: Some(ids.clone()),
        ..TrackerSpec::default()
    })
    .await;
    let client = TrackerClient::new(vec![fake.addr], CT, NT);
    assert_eq!(client.storage_ids().await.unwrap().lines().count(), 40);
    assert_eq!(fake.request_count(), 1);
    // One ID per page and 40 IDs: more than 32 round trips → error.
    let fake = fake_fdfs::start_tracker(TrackerSpec {
        storage_ids: Some(ids),
        ids_page_size: 1,
        ..TrackerSpec::default()
    })
    .await;
    let client = TrackerClient::new(vec![fake.addr], CT, NT);
    assert!(matches!(
        client.storage_ids().await,
        Err(ProtoError::BadBody(_))
    ));
    assert_eq!(fake.request_count(), 32);
}

#[tokio::test]
async fn list_storage_round_trip_v4_and_v6() {
    let mut b = stat("127.0.0.3", "127.0.0.3", StorageStatus::Offline, 6);
    b.up_time = 0;
    b.src_id = "127.0.0.2".into();
    let list = vec![stat("127.0.0.2", "127.0.0.2", StorageStatus::Active, 6), b];
    for width in [IpWidth::V4, IpWidth::V6] {
        let fake = fake_fdfs::start_tracker(TrackerSpec {
            groups: vec![("group1".into(), list.clone())],
            ip_width: width,
            ..TrackerSpec::default()
        })
        .await;
        let client = TrackerClient::new(vec![fake.addr], CT, NT);
        let got = client.list_storage("group1").await.unwrap();
        assert_eq!(got, list);
        assert_eq!(got.iter().filter(|s| s.readable()).count(), 1);
        assert_eq!(
            client.list_storage("group9").await,
            Err(ProtoError::Status(2))
        );
    }
}

#[tokio::test]
async fn fetch_all_round_trip() {
    let servers = vec![
        ("127.0.0.2".to_owned(), 23000u16),
        ("127.0.0.3".to_owned(), 23001),
    ];
    for width in [IpWidth::V4, IpWidth::V6] {
        let fake = fake_fdfs::start_tracker(TrackerSpec {
            fetch_servers: Some(servers.clone()),
            ip_width: width,
            ..TrackerSpec::default()
        })
        .await;
        let client = TrackerClient::new(vec![fake.addr], CT, NT);
        assert_eq!(
            client.query_fetch_all("group1", REMOTE).await.unwrap(),
            servers
        );
        assert_eq!(
            client.query_fetch_one("group1", REMOTE).await.unwrap(),
            servers[0]
        );
        assert_eq!(
            fake.seen_requests(),
            vec![
                query_fetch_all_request("group1", REMOTE).unwrap(),
                query_fetch_one_request("group1", REMOTE).unwrap()
            ]
        );
    }
    let fake = fake_fdfs::start_tracker(TrackerSpec::default()).await;
    let client = TrackerClient::new(vec![fake.addr], CT, NT);
    assert_eq!(
        client.query_fetch_all("group1", REMOTE).await,
        Err(ProtoError::Status(2))
    );
}

#[tokio::test]
async fn bad_arguments_make_no_connection() {
    let fake = fake_fdfs::start_tracker(TrackerSpec::default()).await;
    let client = TrackerClient::new(vec![fake.addr], CT, NT);
    assert!(matches!(
        client.list_storage("").await,
        Err(ProtoError::BadRequest(_))
    ));
    assert!(matches!(
        client
            .query_fetch_all("a_group_name_too_long", REMOTE)
            .await,
        Err(ProtoError::BadRequest(_))
    ));
    assert!(matches!(
        client.query_fetch_all("group1", "").await,
        Err(ProtoError::BadRequest(_))
    ));
    let storage = fake_fdfs::start_storage(storage_spec()).await;
    assert!(matches!(
        StorageClient::download(storage.addr, "group1", "a\0b", 0, 0, CT, NT).await,
        Err(ProtoError::BadRequest(_))
    ));
    assert_eq!(fake.connection_count() + storage.connection_count(), 0);
}

#[tokio::test]
async fn no_trackers_configured() {
    let client = TrackerClient::new(vec![], CT, NT);
    assert_eq!(client.parameters().await, Err(ProtoError::NoTracker));
}

#[tokio::test]
async fn first_trackers_down_then_one_answers() {
    let refused = fake_fdfs::closed_addr().await;
    let silent = fake_fdfs::start_tracker(TrackerSpec {
        fault: Fault::NeverAnswer,
        ..TrackerSpec::default()
    })
    .await;
    let good = fake_fdfs::start_tracker(TrackerSpec::default()).await;
    let nt = Duration::from_millis(300);
    let client = TrackerClient::new(vec![refused, silent.addr, good.addr], CT, nt);
    let start = Instant::now();
    let p = client.parameters().await.unwrap();
    assert!(!p.use_storage_id);
    assert!(start.elapsed() >= nt && start.elapsed() < Duration::from_secs(3));
    assert_eq!((silent.connection_count(), silent.request_count()), (1, 1));
    assert_eq!(good.connection_count(), 1);
}

#[tokio::test]
async fn all_trackers_down_returns_last_transport_error() {
    let a = fake_fdfs::closed_addr().await;
    let b = fake_fdfs::closed_addr().await;
    let client = TrackerClient::new(vec![a, b], CT, NT);
    assert_eq!(
        client.parameters().await,
        Err(ProtoError::Io(std::io::ErrorKind::ConnectionRefused.into()))
    );
}

#[tokio::test]
async fn query_file_info_found_and_missing() {
    let fake = fake_fdfs::start_storage(storage_spec()).await;
    let info = StorageClient::query_file_info(fake.addr, "group1", "M00/00/00/small.txt", CT, NT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        info,
        FileInfo {
            size: 5,
            create_timestamp: 1_795_601_849,
            crc32: crc32fast::hash(b"hello"),
            source_ip: "127.0.0.2".into(),
        }
    );
    let missing =
        StorageClient::query_file_info(fake.addr, "group1", "M00/00/00/nope.txt", CT, NT).await;
    assert_eq!(missing, Ok(None));
    // The module's flag (no crc32) travels in the header status byte.
    assert_eq!(fake.seen_requests()[0][9], 1);
    let wrong_group =
        StorageClient::query_file_info(fake.addr, "group2", "M00/00/00/small.txt", CT, NT).await;
    assert_eq!(wrong_group, Err(ProtoError::Status(22)));
}

#[tokio::test]
async fn download_whole_range_and_tail() {
    let fake = fake_fdfs::start_storage(storage_spec()).await;
    let data = content(200_000);
    let whole = StorageClient::download(fake.addr, "group1", REMOTE, 0, 0, CT, NT)
        .await
        .unwrap();
    assert_eq!(whole.len, 200_000);
    assert_eq!(read_all(whole).await.unwrap(), data);

    let range = StorageClient::download(fake.addr, "group1", REMOTE, 100, 50, CT, NT)
        .await
        .unwrap();
    assert_eq!(range.len, 50);
    assert_eq!(read_all(range).await.unwrap(), &data[100..150]);

    let tail = StorageClient::download(fake.addr, "group1", REMOTE, 199_990, 0, CT, NT)
        .await
        .unwrap();
    assert_eq!(read_all(tail).await.unwrap(), &data[199_990..]);

    let clamped = StorageClient::download(fake.addr, "group1", REMOTE, 199_990, 100, CT, NT)
        .await
        .unwrap();
    assert_eq!(clamped.len, 10);

    // Stream interface yields the same bytes.
    use futures_util::StreamExt;
    let d = StorageClient::download(fake.addr, "group1", REMOTE, 5, 70_000, CT, NT)
        .await
        .unwrap();
    let chunks: Vec<_> = d.into_stream().collect().await;
    assert!(chunks.len() >= 2);
    let joined: Vec<u8> = chunks
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(joined, &data[5..70_005]);
}

#[tokio::test]
async fn download_errors() {
    let fake = fake_fdfs::start_storage(storage_spec()).await;
    let past = StorageClient::download(fake.addr, "group1", REMOTE, 200_000, 10, CT, NT).await;
    assert_eq!(past.err(), Some(ProtoError::Status(22)));
    let missing =
        StorageClient::download(fake.addr, "group1", "M00/00/00/nope.txt", 0, 0, CT, NT).await;
    assert_eq!(missing.err(), Some(ProtoError::Status(2)));
    let refused = fake_fdfs::closed_addr().await;
    let down = StorageClient::download(refused, "group1", REMOTE, 0, 0, CT, NT).await;
    assert_eq!(
        down.err(),
        Some(ProtoError::Io(std::io::ErrorKind::ConnectionRefused.into()))
    );
}

#[tokio::test]
async fn download_cut_short_ends_with_error() {
    let mut spec = storage_spec();
    spec.fault = Fault::CloseAfterBodyBytes(1000);
    let fake = fake_fdfs::start_storage(spec).await;
    let mut d = StorageClient::download(fake.addr, "group1", REMOTE, 0, 0, CT, NT)
        .await
        .unwrap();
    assert_eq!(d.len, 200_000);
    let mut got = 0usize;
    let err = loop {
        match d.next_chunk().await {
            Some(Ok(chunk)) => got += chunk.len(),
            Some(Err(e)) => break e,
            None => panic!("stream ended silently after {got} bytes"),
        }
    };
    assert_eq!(err, ProtoError::UnexpectedEof);
    assert_eq!(got, 1000);
    assert!(d.next_chunk().await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn silent_storage_times_out_within_network_timeout() {
    let mut spec = storage_spec();
    spec.fault = Fault::NeverAnswer;
    let fake = fake_fdfs::start_storage(spec).await;
    let nt = Duration::from_millis(250);
    let start = Instant::now();
    let res = StorageClient::query_file_info(fake.addr, "group1", REMOTE, CT, nt).await;
    assert_eq!(res, Err(ProtoError::Timeout));
    let res = StorageClient::download(fake.addr, "group1", REMOTE, 0, 0, CT, nt).await;
    assert_eq!(res.err(), Some(ProtoError::Timeout));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= 2 * nt && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn fake_stops_when_dropped() {
    let fake = fake_fdfs::start_tracker(TrackerSpec::default()).await;
    let addr = fake.addr;
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client = TrackerClient::new(vec![addr], CT, NT);
    assert!(matches!(client.parameters().await, Err(ProtoError::Io(_))));
}

#[tokio::test]
async fn fake_on_other_loopback_address() {
    let ip: std::net::IpAddr = "127.0.0.7".parse().unwrap();
    let fake = fake_fdfs::start_storage_on(ip, storage_spec()).await;
    assert_eq!(fake.addr.ip(), ip);
    let info = StorageClient::query_file_info(fake.addr, "group1", REMOTE, CT, NT)
        .await
        .unwrap();
    assert_eq!(info.map(|i| i.size), Some(200_000));
}
