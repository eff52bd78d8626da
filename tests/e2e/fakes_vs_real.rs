#![allow(dead_code)]
//! The fakes of `tests/support/fake_fdfs.rs` against the real daemons: the
//! same raw requests (docs/wire-protocol.md) go to the real tracker or
//! storage and to a fake told the same facts (files, storages, ID table,
//! parameters); status, body and whether the connection stays open must be
//! equal. Stat blocks of LIST_STORAGE carry live counters, so they are
//! compared as the crate parses them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use fdfs_httpd::proto::frame::{self, Header, IpWidth, HEADER_LEN};
use fdfs_httpd::proto::storage::{download_request, query_file_info_request};
use fdfs_httpd::proto::tracker::{
    list_storage_request, parameters_request, query_fetch_all_request, query_fetch_one_request,
    storage_ids_request,
};
use fdfs_httpd::proto::{FileInfo, FileInfoFlags, StorageIdsPage, StorageStat, TrackerParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fake_fdfs::{self, StorageSpec, TrackerSpec};

/// One answer: status, body, and whether the peer closed afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Reply header's status byte (`None`: closed without a reply).
    pub status: Option<u8>,
    /// Reply body.
    pub body: Vec<u8>,
    /// The peer closed the connection after the reply.
    pub closed: bool,
}

/// Sends `req` on a fresh connection and reads one reply (bounded).
pub async fn exchange(addr: SocketAddr, req: &[u8]) -> Answer {
    let mut s = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
        .await
        .expect("connect within 3 s")
        .expect("connect");
    s.write_all(req).await.expect("write");
    let mut head = [0u8; HEADER_LEN];
    let got = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut head))
        .await
        .expect("reply within 5 s");
    if got.is_err() {
        return Answer {
            status: None,
            body: Vec::new(),
            closed: true,
        };
    }
    let h = Header::decode(&head, 1 << 30).expect("reply header");
    assert_eq!(h.cmd, frame::CMD_RESP, "reply cmd");
    let mut body = vec![0u8; h.pkg_len as usize];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut body))
        .await
        .expect("body within 5 s")
        .expect("body");
    let mut one = [0u8; 1];
    let closed = matches!(
        tokio::time::timeout(Duration::from_millis(150), s.read(&mut one)).await,
        Ok(Ok(0)) | Ok(Err(_))
    );
    Answer {
        status: Some(h.status),
        body,
        closed,
    }
}

/// What the comparison needs from the real cluster.
pub struct Facts<'a> {
    /// The real tracker.
    pub tracker: SocketAddr,
    /// A real storage of group1 holding `files`.
    pub storage: SocketAddr,
    /// Files on that storage: remote name (`M00/…`) → content.
    pub files: &'a [(String, Vec<u8>)],
}

/// The fields of a stat block that do not move between two calls (free
/// space and heart-beat times do).
fn stable(list: &[StorageStat]) -> Vec<String> {
    list.iter()
        .map(|s| {
            format!(
                "{:?} rw={} id={} ip={} src={} v={} join={} port={} trunk={}",
                s.status,
                s.rw_mode,
                s.id,
                s.ip,
                s.src_id,
                s.version,
                s.join_time,
                s.storage_port,
                s.is_trunk_server
            )
        })
        .collect()
}

/// Whether every server of `servers` is among those `fetch_all` lists.
fn tspec_has(fetch_all: &Answer, servers: &[(String, u16)]) -> bool {
    let all = fdfs_httpd::proto::FetchReply::parse(&fetch_all.body)
        .map(|r| r.servers)
        .unwrap_or_default();
    servers.iter().all(|s| all.contains(s))
}

fn describe(a: &Answer) -> String {
    let body = if a.body.len() <= 64 {
        format!("{:?}", String::from_utf8_lossy(&a.body))
    } else {
        format!("{} bytes", a.body.len())
    };
    format!("status {:?}, body {body}, closed {}", a.status, a.closed)
}

/// Compares the fakes with the real daemons; returns one line per
/// difference (empty when the fakes answer like the real daemons) and the
/// real answers seen, for the log.
pub async fn compare(f: &Facts<'_>) -> (Vec<String>, Vec<String>) {
    let mut diffs = Vec::new();
    let mut seen = Vec::new();

    // What the real tracker says, fed to the fake tracker.
    let params = exchange(f.tracker, &parameters_request()).await;
    let params_text = String::from_utf8_lossy(&params.body).into_owned();
    let p = TrackerParams::parse(&params.body).expect("real parameters parse");
    let ids_ans = exchange(f.tracker, &storage_ids_request(0, false)).await;
    let ids = if p.use_storage_id {
        Some(
            StorageIdsPage::parse(&ids_ans.body)
                .expect("real storage ids parse")
                .lines,
        )
    } else {
        None
    };
    let list_ans = exchange(
        f.tracker,
        &list_storage_request("group1", None).expect("request"),
    )
    .await;
    let list = StorageStat::parse_list(&list_ans.body).expect("real list parses");
    let (first, _) = &f.files[0];
    let fetch_all = exchange(
        f.tracker,
        &query_fetch_all_request("group1", first).expect("request"),
    )
    .await;
    let tspec = TrackerSpec {
        params_text: params_text.clone(),
        storage_ids: ids,
        groups: vec![("group1".into(), list.clone())],
        // The real tracker's rule over the real storage list.
        fetch_servers: None,
        ..TrackerSpec::default()
    };
    let fake_t = fake_fdfs::start_tracker_on(f.tracker.ip(), tspec.clone()).await;

    let unknown = "M00/00/00/wKgAAmgAAAAAAAAAAAAAAAAAAAA123.txt";
    let treqs: Vec<(String, Vec<u8>)> = vec![
        ("ACTIVE_TEST".into(), frame::active_test_request()),
        ("PARAMETERS".into(), parameters_request()),
        (
            "FETCH_STORAGE_IDS start 0".into(),
            storage_ids_request(0, false),
        ),
        (
            "FETCH_STORAGE_IDS start 99".into(),
            storage_ids_request(99, false),
        ),
        (
            "FETCH_STORAGE_IDS allow empty".into(),
            storage_ids_request(0, true),
        ),
        (
            "LIST_STORAGE unknown group".into(),
            list_storage_request("nogroup", None).expect("request"),
        ),
        (
            "LIST_STORAGE unknown storage id".into(),
            list_storage_request("group1", Some("999999")).expect("request"),
        ),
        (
            "QUERY_FETCH_ONE unknown group".into(),
            query_fetch_one_request("nogroup", first).expect("request"),
        ),
        (
            "QUERY_FETCH_ALL unknown file".into(),
            query_fetch_all_request("group1", unknown).expect("request"),
        ),
        ("unknown command 250".into(), frame::message(250, 0, &[])),
    ];
    for (what, req) in &treqs {
        let (real, fake) = tokio::join!(exchange(f.tracker, req), exchange(fake_t.addr, req));
        seen.push(format!("tracker {what}: {}", describe(&real)));
        if real != fake {
            diffs.push(format!(
                "tracker {what}: real {} / fake {}",
                describe(&real),
                describe(&fake)
            ));
        }
    }
    // LIST_STORAGE (all, one): the stat blocks as parsed (live counters
    // differ).
    let mut lists = vec![("group1", None)];
    if let Some(s) = list.first() {
        lists.push(("one storage", Some(s.id.as_str())));
    }
    for (what, id) in lists {
        let req = list_storage_request("group1", id).expect("request");
        let (real, fake) = tokio::join!(exchange(f.tracker, &req), exchange(fake_t.addr, &req));
        let rp = stable(&StorageStat::parse_list(&real.body).expect("real list parses"));
        let fp = stable(&StorageStat::parse_list(&fake.body).expect("fake list parses"));
        seen.push(format!(
            "tracker LIST_STORAGE {what}: status {:?}, {} bytes, {rp:?}",
            real.status,
            real.body.len()
        ));
        if rp != fp || real.status != fake.status || real.body.len() != fake.body.len() {
            diffs.push(format!(
                "tracker LIST_STORAGE {what}: real {} bytes {rp:?} / fake {} bytes {fp:?}",
                real.body.len(),
                fake.body.len()
            ));
        }
    }
    // QUERY_FETCH_ONE: the real tracker picks a server by its
    // `download_server` rule; the fake answers the first. Compared: the
    // status, the layout, and that the server is one fetch-all lists.
    let req = query_fetch_one_request("group1", first).expect("request");
    let (real, fake) = tokio::join!(exchange(f.tracker, &req), exchange(fake_t.addr, &req));
    seen.push(format!("tracker QUERY_FETCH_ONE: {}", describe(&real)));
    let one = |a: &Answer| {
        fdfs_httpd::proto::FetchReply::parse(&a.body)
            .ok()
            .map(|r| (r.group, r.servers.len(), tspec_has(&fetch_all, &r.servers)))
    };
    if real.status != fake.status || real.body.len() != fake.body.len() || one(&real) != one(&fake)
    {
        diffs.push(format!(
            "tracker QUERY_FETCH_ONE: real {} / fake {}",
            describe(&real),
            describe(&fake)
        ));
    }
    drop(fake_t);
    // QUERY_FETCH_ALL of every file: the rule reads the storages' sync
    // times, which move while files replicate, so the fake gets the list
    // of the moment; a difference that persists over three tries counts.
    for (remote, _) in f.files {
        let req = query_fetch_all_request("group1", remote).expect("request");
        let mut last = None;
        for _ in 0..3 {
            let now = exchange(
                f.tracker,
                &list_storage_request("group1", None).expect("request"),
            )
            .await;
            let spec = TrackerSpec {
                groups: vec![(
                    "group1".into(),
                    StorageStat::parse_list(&now.body).expect("real list parses"),
                )],
                ..tspec.clone()
            };
            let fake = fake_fdfs::start_tracker_on(f.tracker.ip(), spec).await;
            let (real, faked) = tokio::join!(exchange(f.tracker, &req), exchange(fake.addr, &req));
            if real == faked {
                seen.push(format!(
                    "tracker QUERY_FETCH_ALL {remote}: {}",
                    describe(&real)
                ));
                last = None;
                break;
            }
            last = Some((real, faked));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if let Some((real, faked)) = last {
            diffs.push(format!(
                "tracker QUERY_FETCH_ALL {remote}: real {} / fake {}",
                describe(&real),
                describe(&faked)
            ));
        }
    }
    // The fake's default parameter text has the real tracker's keys, in
    // its order (values follow each config).
    let keys = |t: &str| -> Vec<String> {
        t.lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    seen.push(format!("tracker PARAMETERS text: {params_text:?}"));
    if keys(&params_text) != keys(fake_fdfs::REAL_PARAMS_TEXT) {
        diffs.push(format!(
            "tracker PARAMETERS keys: real {:?} / fake default {:?}",
            keys(&params_text),
            keys(fake_fdfs::REAL_PARAMS_TEXT)
        ));
    }

    // The storage, one fake per file told what the real one reports.
    let no_crc = FileInfoFlags {
        no_crc32: true,
        keep_silence: false,
    };
    for (i, (remote, data)) in f.files.iter().enumerate() {
        let info = exchange(
            f.storage,
            &query_file_info_request("group1", remote, FileInfoFlags::default()).expect("request"),
        )
        .await;
        let info = FileInfo::parse(&info.body).expect("real file info parses");
        let sspec = StorageSpec {
            files: HashMap::from([(remote.clone(), data.clone())]),
            source_ip: info.source_ip.clone(),
            create_timestamp: info.create_timestamp,
            ip_width: IpWidth::V4,
            ..StorageSpec::default()
        };
        let fake_s = fake_fdfs::start_storage_on(f.storage.ip(), sspec).await;
        let mut sreqs: Vec<(String, Vec<u8>)> = Vec::new();
        if i == 0 {
            sreqs = vec![
                ("ACTIVE_TEST".into(), frame::active_test_request()),
                (
                    "QUERY_FILE_INFO unknown file".into(),
                    query_file_info_request("group1", unknown, no_crc).expect("request"),
                ),
                (
                    "QUERY_FILE_INFO other group".into(),
                    query_file_info_request("group2", remote, no_crc).expect("request"),
                ),
                (
                    "DOWNLOAD unknown file".into(),
                    download_request(0, 0, "group1", unknown).expect("request"),
                ),
                (
                    "DOWNLOAD other group".into(),
                    download_request(0, 0, "group2", remote).expect("request"),
                ),
                ("unknown command 250".into(), frame::message(250, 0, &[])),
            ];
        }
        let n = data.len() as u64;
        for (what, flags) in [("crc32", FileInfoFlags::default()), ("no crc32", no_crc)] {
            sreqs.push((
                format!("QUERY_FILE_INFO {what} {remote}"),
                query_file_info_request("group1", remote, flags).expect("request"),
            ));
        }
        for (off, len) in [
            (0, 0),
            (0, n),
            (1, 5),
            (n.saturating_sub(3), 0),
            (n.saturating_sub(3), 100),
            (n, 0),
            (n + 5, 1),
        ] {
            sreqs.push((
                format!("DOWNLOAD {off}+{len} of {n} {remote}"),
                download_request(off, len, "group1", remote).expect("request"),
            ));
        }
        for (what, req) in &sreqs {
            let (real, fake) = tokio::join!(exchange(f.storage, req), exchange(fake_s.addr, req));
            seen.push(format!("storage {what}: {}", describe(&real)));
            if real != fake {
                diffs.push(format!(
                    "storage {what}: real {} / fake {}",
                    describe(&real),
                    describe(&fake)
                ));
            }
        }
    }
    (diffs, seen)
}
