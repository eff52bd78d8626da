//! Replication lag across real sockets between fdfs-httpd nodes on
//! 127.0.0.2/.3/.4/.5 (same port): proxy and redirect, keep-alive through
//! the proxy, loop guard, old files, failover, circuit breaking, aborted
//! upstream bodies, the member check (no open proxy), the storage-protocol
//! fetch, tracker integration and `max_proxy_per_peer`.

#[path = "support/fake_fdfs.rs"]
mod fake_fdfs;
mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use fake_fdfs::{StorageSpec, TrackerSpec};
use fdfs_httpd::fileid::{IdBuilder, Source};
use fdfs_httpd::proto::{StorageStat, StorageStatus};
use support::real_node as node;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const ONLY_A: &str = "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const ONLY_A_REL: &str = "data/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const ONLY_A_1M: &str = "/group1/M00/00/00/fwAAAmsGtwGAJuKsABAAAFrnhKU350.bin";

fn only_a_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("real/storageA").join(ONLY_A_REL)).unwrap()
}

fn bind(ips: &[&str]) -> (u16, Vec<TcpListener>) {
    let ls = bind_same_port(ips);
    (ls[0].local_addr().unwrap().port(), ls)
}

/// Store "B" under `tmp/name`, on `lb` (127.0.0.3), with the recorded delay.
async fn node_b(
    tmp: &Path,
    name: &str,
    lb: TcpListener,
    mode: &str,
    peers: &str,
    extra: &str,
) -> Server {
    let delay = real_recorded_delay();
    node(tmp, name, "B", "127.0.0.3", lb, mode, peers, extra, delay).await
}

/// One keep-alive connection; sends a GET and reads one response.
async fn get_on(s: &mut TcpStream, addr: SocketAddr, target: &str) -> Resp {
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    read_response(s, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_keep_alive_two_requests_on_one_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, la, lb) = bind_pair("127.0.0.2", "127.0.0.3");
    let peers = "127.0.0.2,127.0.0.3";
    let (_a, b) = real_pair(tmp.path(), la, lb, peers, "proxy", "").await;
    let want = only_a_bytes();
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let t0 = Instant::now();
    for _ in 0..3 {
        let r = get_on(&mut s, b.addr, ONLY_A).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, want);
        assert_ne!(r.header("connection").as_deref(), Some("close"));
    }
    assert!(t0.elapsed() < Duration::from_secs(3), "keep-alive stalled");
    // filename= and HEAD through the proxy.
    let r = get(b.addr, &format!("{ONLY_A}?filename=a.txt")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-disposition").unwrap().contains("a.txt"));
    let r = request(b.addr, "HEAD", ONLY_A, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("350"));
    // A 1 MiB body streams through completely.
    let r = get(b.addr, ONLY_A_1M).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 1_048_576);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_is_clean_and_keeps_the_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (port, la, lb) = bind_pair("127.0.0.2", "127.0.0.3");
    let peers = "127.0.0.2,127.0.0.3";
    let (a, b) = real_pair(tmp.path(), la, lb, peers, "redirect", "").await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    for q in ["", "?filename=a.txt"] {
        let r = get_on(&mut s, b.addr, &format!("{ONLY_A}{q}")).await;
        assert_eq!(r.status, 302);
        assert_eq!(r.header("content-length").as_deref(), Some("0"));
        assert!(r.header("transfer-encoding").is_none());
        let sep = if q.is_empty() { "?" } else { "&" };
        assert_eq!(
            r.header("location").unwrap(),
            format!("http://127.0.0.2:{port}{ONLY_A}{q}{sep}redirect=1")
        );
    }
    // Following the Location works on A; the loop guard stops a second hop.
    let r = get(a.addr, &format!("{ONLY_A}?redirect=1")).await;
    assert_eq!(r.status, 200);
    let r = get(b.addr, &format!("{ONLY_A}?redirect=1")).await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_timestamp_is_404_and_loop_guard_is_400() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, la, lb) = bind_pair("127.0.0.2", "127.0.0.3");
    let peers = "127.0.0.2,127.0.0.3";
    let a = node(tmp.path(), "a", "A", "127.0.0.2", la, "proxy", peers, "", 1).await;
    let b = node(tmp.path(), "b", "B", "127.0.0.3", lb, "proxy", peers, "", 1).await;
    assert_eq!(get(b.addr, ONLY_A).await.status, 404);
    assert_eq!(get(a.addr, ONLY_A).await.status, 200);
    let b2 = {
        let (_, mut ls) = bind(&["127.0.0.3"]);
        node_b(tmp.path(), "b2", ls.pop().unwrap(), "proxy", peers, "").await
    };
    assert_eq!(
        get(b2.addr, &format!("{ONLY_A}?redirect=1")).await.status,
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_down_fails_over_to_a_peer_that_has_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut ls) = bind(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let lc = ls.pop().unwrap();
    let lb = ls.pop().unwrap();
    drop(ls); // A (the source) is down
    let peers = "127.0.0.2,127.0.0.3,127.0.0.4";
    // C holds A's files (already synced).
    let (_c, b) = real_pair(tmp.path(), lc, lb, peers, "proxy", "").await;
    let want = only_a_bytes();
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = get(b.addr, ONLY_A).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, want);
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
    let r = request(b.addr, "GET", ONLY_A, &[("Range", "bytes=0-9")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &want[..10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_down_is_502_quickly() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut ls) = bind(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    drop(ls.pop());
    let lb = ls.pop().unwrap();
    drop(ls);
    let peers = "127.0.0.2,127.0.0.3,127.0.0.4";
    let b = node_b(tmp.path(), "b", lb, "proxy", peers, "").await;
    for _ in 0..4 {
        let t0 = Instant::now();
        assert_eq!(get(b.addr, ONLY_A).await.status, 502);
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_mid_body_aborts_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut ls) = bind(&["127.0.0.3", "127.0.0.9"]);
    let _fake = fake_http::recording_source(ls.pop().unwrap());
    let lb = ls.pop().unwrap();
    let b = node_b(tmp.path(), "b", lb, "proxy", "127.0.0.9", "").await;
    let path = format!("/group1/M00/00/00/{}", fake_http::FAKE_FILE);
    let r = get(b.addr, &format!("{path}?mode=abort")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("100000"));
    assert!(!r.complete, "a short body must not look complete");
    assert!(r.body.len() < 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_proxy_per_peer_answers_503_when_saturated() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut ls) = bind(&["127.0.0.3", "127.0.0.9"]);
    let fake = fake_http::recording_source(ls.pop().unwrap());
    let lb = ls.pop().unwrap();
    let extra = "max_proxy_per_peer = 1\n";
    let b = node_b(tmp.path(), "b", lb, "proxy", "127.0.0.9", extra).await;
    let path = format!("/group1/M00/00/00/{}", fake_http::FAKE_FILE);
    let slow = tokio::spawn(async move { get(b.addr, &format!("{path}?mode=slow")).await });
    let t0 = Instant::now();
    while fake.requests().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = format!("/group1/M00/00/00/{}", fake_http::FAKE_FILE);
    let addr: SocketAddr = format!("127.0.0.3:{}", fake.addr.port()).parse().unwrap();
    assert_eq!(get(addr, &path).await.status, 503);
    let r = slow.await.unwrap();
    assert_eq!(r.body, b"hello world");
    assert_eq!(get(addr, &path).await.status, 200, "slot released");
    // Only the forwarded headers reach the peer, with Host set to it.
    let head = fake.requests().pop().unwrap();
    assert!(
        head.starts_with(&format!("GET {path}?redirect=1 HTTP/1.1")),
        "{head}"
    );
    assert!(
        head.contains(&format!("host: 127.0.0.9:{}", fake.addr.port())),
        "{head}"
    );
    assert!(!head.to_ascii_lowercase().contains("user-agent"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_source_is_never_contacted() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut ls) = bind(&["127.0.0.3", "127.0.0.5"]);
    let trap = ls.pop().unwrap();
    let lb = ls.pop().unwrap();
    let peers = "127.0.0.2,127.0.0.3";
    let b = node_b(tmp.path(), "b", lb, "proxy", peers, "").await;
    let id = IdBuilder::new()
        .source(Source::Ip(Ipv4Addr::new(127, 0, 0, 5)))
        .create_ts(now())
        .size(10)
        .extension("txt")
        .build();
    assert_eq!(get(b.addr, &format!("/{id}")).await.status, 404);
    // Redirect mode does not send clients there either.
    let (_, mut ls) = bind(&["127.0.0.3"]);
    let r = node_b(tmp.path(), "r", ls.pop().unwrap(), "redirect", peers, "").await;
    assert_eq!(get(r.addr, &format!("/{id}")).await.status, 404);
    let seen = tokio::time::timeout(Duration::from_millis(300), trap.accept()).await;
    assert!(seen.is_err(), "the non-member address was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_local_copy_is_fetched_from_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, la, lb) = bind_pair("127.0.0.2", "127.0.0.3");
    let peers = "127.0.0.2,127.0.0.3";
    let (_a, b) = real_pair(tmp.path(), la, lb, peers, "proxy", "").await;
    let partial = tmp.path().join("b/storageB").join(ONLY_A_REL);
    let want = only_a_bytes();
    std::fs::write(&partial, &want[..100]).unwrap();
    let r = get(b.addr, ONLY_A).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, want);
}

fn storage_with_only_a() -> StorageSpec {
    let mut files = HashMap::new();
    files.insert(
        ONLY_A.trim_start_matches("/group1/").to_string(),
        only_a_bytes(),
    );
    StorageSpec {
        files,
        create_timestamp: 1_795_602_177,
        ..StorageSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_protocol_serves_when_the_source_http_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let st = fake_fdfs::start_storage_on(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        storage_with_only_a(),
    )
    .await;
    let (_, mut ls) = bind(&["127.0.0.2", "127.0.0.3"]);
    let lb = ls.pop().unwrap();
    drop(ls); // A's HTTP server is down, its storaged is up
    let extra = format!(
        "proxy_via = http,storage\nstorage_server_port = {}\n",
        st.addr.port()
    );
    let b = node_b(tmp.path(), "b", lb, "proxy", "127.0.0.2", &extra).await;
    let want = only_a_bytes();
    let r = get(b.addr, ONLY_A).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, want);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(
        r.header("last-modified").as_deref(),
        Some("Wed, 25 Nov 2026 10:22:57 GMT")
    );
    let r = request(b.addr, "GET", ONLY_A, &[("Range", "bytes=10-19")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range").as_deref(),
        Some("bytes 10-19/350")
    );
    assert_eq!(r.body, &want[10..20]);
    let r = request(b.addr, "GET", ONLY_A, &[("Range", "bytes=0-4,10-14")]).await;
    assert_eq!(r.status, 206);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("multipart/byteranges"));
    let r = request(b.addr, "HEAD", ONLY_A, &[]).await;
    assert_eq!(r.header("content-length").as_deref(), Some("350"));
    let r = request(
        b.addr,
        "GET",
        ONLY_A,
        &[("If-Modified-Since", "Wed, 25 Nov 2026 10:22:57 GMT")],
    )
    .await;
    assert_eq!(r.status, 304);
}

fn stat(ip: &str, status: StorageStatus, port: u16) -> StorageStat {
    StorageStat {
        storage_port: port,
        ..StorageStat::new(ip, status)
    }
}

async fn wait_for_view(s: &Server, group: &str) {
    let t0 = Instant::now();
    while !s.app.lag.cluster.view().groups.contains_key(group) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "tracker view never loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_lists_the_members_and_the_failover_peers() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, mut ls) = bind(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let lc = ls.pop().unwrap();
    let lb = ls.pop().unwrap();
    drop(ls); // A down
    let tracker = fake_fdfs::start_tracker_on(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6)),
        TrackerSpec {
            params_text: format!(
                "use_storage_id=0\nstorage_sync_file_max_delay={}\n",
                real_recorded_delay()
            ),
            groups: vec![(
                "group1".into(),
                vec![
                    stat("127.0.0.2", StorageStatus::Active, 23000),
                    stat("127.0.0.3", StorageStatus::Active, 23000),
                    stat("127.0.0.4", StorageStatus::Active, 23000),
                ],
            )],
            ..TrackerSpec::default()
        },
    )
    .await;
    // No peer_ip_addrs: members come from the tracker only. The first
    // tracker entry is dead; the second answers.
    let extra = format!(
        "tracker_server = {}\ntracker_server = {}\n",
        fake_fdfs::closed_addr().await,
        tracker.addr
    );
    let (_c, b) = real_pair(tmp.path(), lc, lb, "127.0.0.250", "proxy", &extra).await;
    wait_for_view(&b, "group1").await;
    let r = get(b.addr, ONLY_A).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, only_a_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_come_from_the_tracker() {
    let tmp = tempfile::tempdir().unwrap();
    let tracker = fake_fdfs::start_tracker_on(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 6)),
        TrackerSpec {
            params_text: "use_storage_id=0\nstorage_sync_file_max_delay=1\n".into(),
            groups: vec![(
                "group1".into(),
                vec![stat("127.0.0.2", StorageStatus::Active, 23000)],
            )],
            ..TrackerSpec::default()
        },
    )
    .await;
    let (_, la, lb) = bind_pair("127.0.0.2", "127.0.0.3");
    let extra = format!(
        "load_fdfs_parameters_from_tracker = true\ntracker_server = {}\n",
        tracker.addr
    );
    let (_a, b) = real_pair(tmp.path(), la, lb, "127.0.0.250", "proxy", &extra).await;
    wait_for_view(&b, "group1").await;
    assert_eq!(b.app.lag.cluster.view().params.unwrap().max_delay, 1);
    // The tracker's 1 s makes the recorded file "old": 404 without a proxy.
    assert_eq!(get(b.addr, ONLY_A).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_down_at_start_still_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, la, lb) = bind_pair("127.0.0.2", "127.0.0.3");
    let peers = "127.0.0.2,127.0.0.3";
    let extra = format!("tracker_server = {}\n", fake_fdfs::closed_addr().await);
    let (_a, b) = real_pair(tmp.path(), la, lb, peers, "proxy", &extra).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = get(b.addr, ONLY_A).await;
    assert_eq!(
        r.status, 200,
        "config peers apply while the tracker is down"
    );
}
