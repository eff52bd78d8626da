//! Faults (issue 7 item 3): a source that accepts and never answers, resets
//! mid-body or sends more or fewer bytes than its Content-Length; a tracker
//! down at start that comes back; a flapping peer; a file deleted,
//! truncated or replaced while it is being served; descriptors running out
//! (the real binary under a low `ulimit -n`). Invalid-config reloads are
//! covered by tests/reload.rs (and run under load in tests/soak.rs).

#[path = "support/fake_fdfs.rs"]
mod fake_fdfs;
mod ops_common;
mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use fake_fdfs::TrackerSpec;
use fdfs_httpd::proto::{StorageStat, StorageStatus};
use support::fake_http::{self, Step};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Only on storage A (source 127.0.0.2), fresh within the recorded delay.
const ONLY_A: &str = "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const ONLY_A_REL: &str = "data/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
/// A file whose ID decodes to source 127.0.0.9 (the fake source below).
const FAKE: &str = "/group1/M00/00/00/fwAACWsGtv2AG8RbAAABXgut8A0000.txt";

fn only_a_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("real/storageA").join(ONLY_A_REL)).unwrap()
}

/// A node with store snapshot `store` ("A" or "B") on listener `l`.
async fn node(
    tmp: &Path,
    name: &str,
    store: &str,
    ip: &str,
    l: TcpListener,
    peers: &str,
    extra: &str,
) -> Server {
    real_node(
        tmp,
        name,
        store,
        ip,
        l,
        "proxy",
        peers,
        extra,
        real_recorded_delay(),
    )
    .await
}

/// A misbehaving HTTP source; the reply is chosen by `?mode=`.
fn fake_source(listener: TcpListener) -> fake_http::FakeHttp {
    fake_http::spawn(listener, |req| {
        let h = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n";
        let cut = |head: String| {
            let mut v = head.into_bytes();
            v.extend_from_slice(&[b'x'; 1000]);
            Step::Write(v)
        };
        match req.mode().unwrap_or("ok") {
            "hang" => vec![Step::Sleep(Duration::from_secs(3600)), Step::Close],
            "reset" => vec![
                cut(format!("{h}Content-Length: 100000\r\n\r\n")),
                Step::Sleep(Duration::from_millis(100)),
                Step::Reset,
            ],
            "reset_chunked" => vec![
                cut(format!("{h}Transfer-Encoding: chunked\r\n\r\n3e8\r\n")),
                Step::Sleep(Duration::from_millis(100)),
                Step::Reset,
            ],
            // Fewer bytes than announced, then silence (connection open).
            "short" => vec![
                cut(format!("{h}Content-Length: 100000\r\n\r\n")),
                Step::Sleep(Duration::from_secs(3600)),
                Step::Close,
            ],
            // More bytes than announced on a keep-alive connection.
            "long" => vec![Step::Write(
                format!("{h}Content-Length: 11\r\n\r\nhello worldEXTRA BYTES THAT DO NOT BELONG")
                    .into_bytes(),
            )],
            _ => vec![Step::Write(
                format!("{h}Content-Length: 11\r\n\r\nhello world").into_bytes(),
            )],
        }
    })
}

/// Item 3a: the source accepts and never answers. With another peer that
/// has the file the request fails over within the bounded wait; without
/// one the answer is 504.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_that_never_answers_fails_over_or_504() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);
    let lb2 = ls.pop().unwrap();
    let lc = ls.pop().unwrap();
    let lb = ls.pop().unwrap();
    let _hang = fake_source(ls.pop().unwrap()); // A: accepts, reads, never answers
    let timeouts = "connect_timeout = 1\nnetwork_timeout = 1\n";
    let _c = node(
        tmp.path(),
        "c",
        "A",
        "127.0.0.4",
        lc,
        "127.0.0.2,127.0.0.3,127.0.0.4",
        timeouts,
    )
    .await;
    let b = node(
        tmp.path(),
        "b",
        "B",
        "127.0.0.3",
        lb,
        "127.0.0.2,127.0.0.3,127.0.0.4",
        timeouts,
    )
    .await;
    let b2 = node(
        tmp.path(),
        "b2",
        "B",
        "127.0.0.5",
        lb2,
        "127.0.0.2,127.0.0.5",
        timeouts,
    )
    .await;
    let want = only_a_bytes();

    let t0 = Instant::now();
    let r = get(b.addr, &format!("{ONLY_A}?mode=hang")).await;
    assert_eq!(r.status, 200, "failed over to C");
    assert_eq!(r.body, want);
    assert!(r.complete);
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "bounded wait: {waited:?}");

    let t0 = Instant::now();
    let r = get(b2.addr, &format!("{ONLY_A}?mode=hang")).await;
    assert_eq!(r.status, 504);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    // After two timeouts the source's circuit is open: a request is one
    // probe of it (still bounded), and a request while that probe is in
    // flight fails fast with 503 + Retry-After instead of waiting too.
    let _ = get(b2.addr, &format!("{ONLY_A}?mode=hang")).await;
    let addr = b2.addr;
    let t0 = Instant::now();
    let probe = tokio::spawn(async move { get(addr, &format!("{ONLY_A}?mode=hang")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t1 = Instant::now();
    let r = get(b2.addr, &format!("{ONLY_A}?mode=hang")).await;
    assert_eq!(r.status, 503, "the source is being probed");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(
        t1.elapsed() < Duration::from_millis(500),
        "{:?}",
        t1.elapsed()
    );
    let r = probe.await.unwrap();
    assert_eq!(r.status, 504);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
}

/// Item 3b/3c: a source that resets mid-body (fixed length or chunked),
/// sends fewer bytes than its Content-Length and then stalls, or sends more
/// bytes than its Content-Length. The client never gets a short body that
/// looks complete, and the extra bytes never leak into the next response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_body_faults_never_look_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.3", "127.0.0.9"]);
    let _fake = fake_source(ls.pop().unwrap());
    let b = node(
        tmp.path(),
        "b",
        "B",
        "127.0.0.3",
        ls.pop().unwrap(),
        "127.0.0.9",
        "network_timeout = 1\n",
    )
    .await;

    let r = get(b.addr, &format!("{FAKE}?mode=reset")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("100000"));
    assert!(
        !r.complete && r.body.len() < 100_000,
        "reset: {}",
        r.body.len()
    );

    let r = get(b.addr, &format!("{FAKE}?mode=reset_chunked")).await;
    assert_eq!(r.status, 200);
    assert!(
        !r.complete,
        "chunked reset must not end with the last chunk"
    );

    let t0 = Instant::now();
    let r = get(b.addr, &format!("{FAKE}?mode=short")).await;
    assert_eq!(r.status, 200);
    assert!(
        !r.complete && r.body.len() < 100_000,
        "short: {}",
        r.body.len()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "stall bounded by network_timeout"
    );

    // More bytes than announced: exactly Content-Length bytes reach the
    // client, and later requests (pooled connection or not) are clean.
    for _ in 0..3 {
        let r = get(b.addr, &format!("{FAKE}?mode=long")).await;
        assert_eq!((r.status, r.complete), (200, true));
        assert_eq!(r.body, b"hello world");
        for _ in 0..3 {
            let r = get(b.addr, FAKE).await;
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello world"[..]));
        }
    }
}

fn stat(ip: &str) -> StorageStat {
    StorageStat::new(ip, StorageStatus::Active)
}

/// Item 3d: the tracker is down at start and comes back. Meanwhile local
/// files are served and the file of a member only the tracker knows is
/// refused (not a known member, never contacted); once the tracker answers
/// (retried with back-off) the member is known and the file is proxied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_down_at_start_then_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3"]);
    let lb = ls.pop().unwrap();
    let _a = node(
        tmp.path(),
        "a",
        "A",
        "127.0.0.2",
        ls.pop().unwrap(),
        "127.0.0.250",
        "",
    )
    .await;
    // The tracker's address, nothing listening yet.
    let taddr = fake_fdfs::closed_addr().await;
    let extra = format!("tracker_server = {taddr}\n");
    let b = node(tmp.path(), "b", "B", "127.0.0.3", lb, "127.0.0.250", &extra).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let local = "/group1/M00/00/00/fwAAA2sGte-AKzLrAAACQ2WpTGg453.png";
    let r = get(b.addr, local).await;
    assert_eq!(
        r.status, 200,
        "local files served while the tracker is down"
    );
    assert_eq!(
        get(b.addr, ONLY_A).await.status,
        404,
        "127.0.0.2 unknown yet"
    );

    // The tracker comes up on its configured address (a relay to the fake).
    let tracker = fake_fdfs::start_tracker_on(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        TrackerSpec {
            groups: vec![("group1".into(), vec![stat("127.0.0.2"), stat("127.0.0.3")])],
            ..TrackerSpec::default()
        },
    )
    .await;
    let relay = TcpListener::bind(taddr).await.unwrap();
    let to = tracker.addr;
    let _relay = tokio::spawn(async move {
        while let Ok((mut c, _)) = relay.accept().await {
            tokio::spawn(async move {
                if let Ok(mut t) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut t).await;
                }
            });
        }
    });
    let t0 = Instant::now();
    while !b.app.lag.cluster.view().groups.contains_key("group1") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "tracker never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = get(b.addr, ONLY_A).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, only_a_bytes());
}

/// Item 3e: a peer flaps (down, up, down, up). With a second peer holding
/// the file every answer is the right body; with none, answers are 200 or
/// 502 (quick), never anything else, and service resumes once the peer is
/// back (after at most the breaker's cool-down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
    let mut ls = bind_same_port(&ips);
    let port = ls[0].local_addr().unwrap().port();
    let lb2 = ls.pop().unwrap();
    let lc = ls.pop().unwrap();
    let lb = ls.pop().unwrap();
    let la = ls.pop().unwrap();
    let peers = "127.0.0.2,127.0.0.3,127.0.0.4";
    let mut a = Some(node(tmp.path(), "a", "A", "127.0.0.2", la, peers, "").await);
    let _c = node(tmp.path(), "c", "A", "127.0.0.4", lc, peers, "").await;
    let b = node(tmp.path(), "b", "B", "127.0.0.3", lb, peers, "").await;
    let b2 = node(
        tmp.path(),
        "b2",
        "B",
        "127.0.0.5",
        lb2,
        "127.0.0.2,127.0.0.5",
        "",
    )
    .await;
    let want = only_a_bytes();
    let a_addr: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for round in 0..2 {
        // Down.
        a.take().unwrap().stop().await;
        for _ in 0..5 {
            let r = get(b.addr, ONLY_A).await;
            assert_eq!(
                (r.status, r.complete),
                (200, true),
                "round {round}: failover to C"
            );
            assert_eq!(r.body, want);
            let t0 = Instant::now();
            let r = get(b2.addr, ONLY_A).await;
            assert_eq!(r.status, 502, "round {round}: no peer has it");
            assert!(t0.elapsed() < Duration::from_secs(1));
            *seen.entry(r.status).or_insert(0) += 1;
        }
        // Up again on the same address.
        let l = fdfs_httpd::transport::bind(a_addr).unwrap();
        a = Some(
            node(
                tmp.path(),
                &format!("a{round}"),
                "A",
                "127.0.0.2",
                l,
                peers,
                "",
            )
            .await,
        );
        let t0 = Instant::now();
        loop {
            let r = get(b2.addr, ONLY_A).await;
            *seen.entry(r.status).or_insert(0) += 1;
            match r.status {
                200 => {
                    assert_eq!(r.body, want);
                    break;
                }
                502 => {}
                s => panic!("round {round}: unexpected {s}"),
            }
            assert!(
                t0.elapsed() < fdfs_httpd::resolve::peers::BASE_COOLDOWN + Duration::from_secs(3),
                "round {round}: not served again after the peer came back"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let r = get(b.addr, ONLY_A).await;
        assert_eq!((r.status, r.body == want), (200, true));
    }
    eprintln!("statuses while flapping: {seen:?}");
}

/// Item 3f: the file is deleted, truncated or replaced while it is served.
/// Deleted or replaced (new inode): the open descriptor still has the old
/// content, so the body is complete and right. Truncated in place: the
/// transfer is aborted, never complete-looking, and the bytes up to the new
/// end are intact. Afterwards the change is
/// seen (404 or the new content) once the cache entry's 1 s is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changed_while_served() {
    const LEN: usize = 48 << 20; // larger than the socket buffers
    let tmp = tempfile::tempdir().unwrap();
    let st = ops_common::store(tmp.path(), &[LEN, LEN, LEN]);
    let srv = Server::start(&ops_common::conf(&st, ""), tmp.path(), "127.0.0.62").await;
    let disk = |url: &str| {
        st.root
            .join("data/00/00")
            .join(url.rsplit('/').next().unwrap())
    };

    for (i, what) in ["delete", "replace", "truncate"].into_iter().enumerate() {
        let (url, want) = &st.files[i];
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        let req = format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        // Read a little, so the response is under way, then change the file.
        let mut first = vec![0u8; 65536];
        let n = s.read(&mut first).await.unwrap();
        assert!(n > 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let path = disk(url);
        match what {
            "delete" => std::fs::remove_file(&path).unwrap(),
            "replace" => {
                let new = path.with_extension("tmp");
                std::fs::write(&new, vec![b'N'; 1000]).unwrap();
                std::fs::rename(&new, &path).unwrap();
            }
            _ => std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(1 << 20)
                .unwrap(),
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest))
            .await
            .expect("ends");
        let mut all = first[..n].to_vec();
        all.extend_from_slice(&rest);
        let start = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &all[start..];
        if what == "truncate" {
            assert!(
                body.len() < LEN,
                "{what}: a short body must be cut off, got {}",
                body.len()
            );
            // Up to the new end the bytes are the file's; bytes past it
            // that sendfile had already queued may read as zeros (as with
            // nginx `sendfile on`): the body is cut short either way.
            let kept = body.len().min(1 << 20);
            assert_eq!(&body[..kept], &want[..kept], "{what}: prefix intact");
        } else {
            assert_eq!(body.len(), LEN, "{what}");
            assert!(body == &want[..], "{what}: old content, complete");
        }
        // Within the cache's second: the cached descriptor may still be
        // used, but a short body is never sent as complete.
        let r = get(srv.addr, url).await;
        assert!(
            r.status != 200 || !r.complete || r.body == *want,
            "{what}: complete-looking wrong body"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = get(srv.addr, url).await;
        // Normal IDs carry their size: a missing or different-size file is
        // not local; its source is this node → 404.
        assert_eq!(r.status, 404, "{what}: change seen after the cache second");
    }
    srv.stop().await;
}

/// Item 3g: descriptors run out. The real binary under `ulimit -n 64` with
/// many idle connections keeps running, answers waiting connections 503
/// at once (rather than leaving them hanging), and serves again when the
/// idle connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptors_run_out_shed_503_and_recover() {
    let tmp = tempfile::tempdir().unwrap();
    let st = ops_common::store(tmp.path(), &[1000]);
    let conf = ops_common::conf(&st, "header_read_timeout = 60s\nkeepalive_timeout = 60s");
    let port = ops_common::free_port("127.0.0.63");
    let addr: SocketAddr = format!("127.0.0.63:{port}").parse().unwrap();
    let path = tmp.path().join("mod_fastdfs.conf");
    std::fs::write(&path, format!("{conf}\nlisten = {addr}\n")).unwrap();
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_fdfs-httpd"))
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut bin = ops_common::Binary { child, addr };
    let t0 = Instant::now();
    while get_ok(addr).await.is_none() {
        assert!(t0.elapsed() < Duration::from_secs(20), "not listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (url, want) = &st.files[0];
    assert_eq!(get(addr, url).await.body, *want);

    // 150 idle connections: far more than 64 descriptors.
    let mut idle = Vec::new();
    for _ in 0..150 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut shed = 0;
    for _ in 0..5 {
        let t0 = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(3), get(addr, url))
            .await
            .expect("answered, not left hanging");
        assert!(t0.elapsed() < Duration::from_secs(2));
        match r.status {
            503 => {
                shed += 1;
                assert_eq!(r.header("retry-after").as_deref(), Some("1"));
            }
            200 => assert_eq!(r.body, *want),
            s => panic!("unexpected {s}"),
        }
    }
    assert!(shed > 0, "load must be shed with 503");
    assert!(bin.child.try_wait().unwrap().is_none(), "still running");

    // Idle connections go away: served again.
    drop(idle);
    let t0 = Instant::now();
    loop {
        let r = get(addr, url).await;
        if r.status == 200 {
            assert_eq!(r.body, *want);
            break;
        }
        assert_eq!(r.status, 503);
        assert!(t0.elapsed() < Duration::from_secs(5), "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..20 {
        assert_eq!(get(addr, url).await.status, 200);
    }
    assert!(bin.wait(Duration::from_millis(10)).is_none());
}

async fn get_ok(addr: SocketAddr) -> Option<()> {
    TcpStream::connect(addr).await.ok().map(|_| ())
}
