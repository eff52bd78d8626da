//! Bounded waits on sick peers (docs/replication-lag.md "Time limits"),
//! through real sockets: a peer that accepts and never answers, one that
//! stalls inside a body, a pooled connection that stops answering and a
//! non-HTTP banner, over plain HTTP, HTTPS and the storage protocol. Node B
//! (127.0.0.3) proxies; A (127.0.0.2) is the sick source; C (127.0.0.4),
//! when present, is a healthy peer with A's files.

#[path = "support/fake_fdfs.rs"]
mod fake_fdfs;
mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_fdfs::StorageSpec;
use support::real_node as node;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ONLY_A: &str = "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const ONLY_A_REL: &str = "data/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const PEERS: &str = "127.0.0.2,127.0.0.3,127.0.0.4";
/// Short limits so that the tests run in seconds (`network_timeout` is 30).
const LIMITS: &str = "peer_response_timeout = 1\npeer_idle_timeout = 1\n";

fn only_a_bytes() -> Vec<u8> {
    std::fs::read(fixtures().join("real/storageA").join(ONLY_A_REL)).unwrap()
}

/// What a sick peer does with each connection.
#[derive(Clone, Copy)]
enum Sick {
    /// Reads and never answers.
    Silent,
    /// Sends a 200 head promising the whole file, 10 bytes, then stalls.
    StallInBody,
    /// Sends an SSH banner as soon as it accepts, and stays open.
    Banner,
    /// Answers the very first request properly (keep-alive), then nothing.
    AnswersOnce,
}

/// Serves `listener` as a sick peer; connections are held open until the
/// test ends.
fn sick_peer(listener: TcpListener, how: Sick) {
    let answered = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let answered = answered.clone();
            tokio::spawn(async move {
                if let Sick::Banner = how {
                    let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
                }
                let mut buf = Vec::new();
                loop {
                    if read_request_head(&mut s, &mut buf).await.is_none() {
                        return;
                    }
                    let body = only_a_bytes();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    match how {
                        Sick::Silent => {}
                        Sick::StallInBody => {
                            let _ = s.write_all(head.as_bytes()).await;
                            let _ = s.write_all(&body[..10]).await;
                        }
                        Sick::Banner => {}
                        Sick::AnswersOnce if !answered.swap(true, Ordering::SeqCst) => {
                            let _ = s.write_all(head.as_bytes()).await;
                            let _ = s.write_all(&body).await;
                            continue;
                        }
                        Sick::AnswersOnce => {}
                    }
                    // Hold the connection, reading whatever comes.
                    let mut sink = [0u8; 1024];
                    while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
            });
        }
    });
}

/// B, optionally with C, on one port; A's listener handed to `sick`.
async fn site(
    tmp: &std::path::Path,
    with_c: bool,
    extra: &str,
) -> (Server, Option<Server>, TcpListener) {
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let lc = ls.pop().unwrap();
    let lb = ls.pop().unwrap();
    let la = ls.pop().unwrap();
    let delay = real_recorded_delay();
    let c = if with_c {
        Some(node(tmp, "c", "A", "127.0.0.4", lc, "proxy", PEERS, "", delay).await)
    } else {
        drop(lc);
        None
    };
    let extra = format!("{LIMITS}{extra}");
    let b = node(
        tmp,
        "b",
        "B",
        "127.0.0.3",
        lb,
        "proxy",
        PEERS,
        &extra,
        delay,
    )
    .await;
    (b, c, la)
}

/// GET within `limit`, else a test failure naming the wait.
async fn get_within(addr: SocketAddr, target: &str, limit: Duration) -> (Resp, Duration) {
    let t0 = Instant::now();
    let r = tokio::time::timeout(limit, get(addr, target))
        .await
        .unwrap_or_else(|_| panic!("no complete answer within {limit:?}"));
    (r, t0.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_left_after_peer_response_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, _c, la) = site(tmp.path(), true, "").await;
    sick_peer(la, Sick::Silent);
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!(r.status, 200, "served by C after A's 1 s");
    assert_eq!(r.body, only_a_bytes());
    assert!(
        took >= Duration::from_millis(900),
        "{took:?}: A was waited for"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_only_candidate_is_a_504() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, _, la) = site(tmp.path(), false, "").await;
    sick_peer(la, Sick::Silent);
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!(r.status, 504);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_inside_a_relayed_body_aborts_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, _, la) = site(tmp.path(), false, "").await;
    sick_peer(la, Sick::StallInBody);
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!(r.status, 200, "the head was relayed");
    assert!(!r.complete, "never a complete-looking short body");
    assert_eq!(r.body, &only_a_bytes()[..10]);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_head_fails_that_peer_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, _c, la) = site(tmp.path(), true, "").await;
    sick_peer(la, Sick::Banner);
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!(r.status, 200, "C serves");
    assert_eq!(r.body, only_a_bytes());
    assert!(
        took < Duration::from_millis(800),
        "{took:?}: no timeout waited"
    );

    let tmp = tempfile::tempdir().unwrap();
    let (b, _, la) = site(tmp.path(), false, "").await;
    sick_peer(la, Sick::Banner);
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!(r.status, 502, "the last candidate sent garbage");
    assert!(took < Duration::from_millis(800), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_that_stops_answering_moves_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, _c, la) = site(tmp.path(), true, "").await;
    sick_peer(la, Sick::AnswersOnce);
    let want = only_a_bytes();
    let (r, _) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!((r.status, r.body == want), (200, true), "A's one answer");
    // The pooled connection to A (and any new one) is silent now.
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(6)).await;
    assert_eq!(r.status, 200, "C serves");
    assert_eq!(r.body, want);
    assert!(took < Duration::from_millis(3500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_fetch_keeps_the_same_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = HashMap::new();
    files.insert(
        ONLY_A.trim_start_matches("/group1/").to_string(),
        only_a_bytes(),
    );
    let spec = StorageSpec {
        files,
        create_timestamp: 1_795_602_177,
        ..StorageSpec::default()
    };
    let st = fake_fdfs::start_storage_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)), spec).await;
    let silent = TcpListener::bind(("127.0.0.2", st.addr.port()))
        .await
        .expect("A's storage port");
    sick_peer(silent, Sick::Silent);
    let extra = format!(
        "proxy_via = storage\nstorage_server_port = {}\n",
        st.addr.port()
    );
    let (b, _, la) = site(tmp.path(), false, &extra).await;
    drop(la);
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!(r.status, 200, "C's storage serves after A's 1 s");
    assert_eq!(r.body, only_a_bytes());
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_peers_keep_the_same_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = test_ca::TestCa::new();
    let ca_file = tmp.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let leaf = ca.leaf("127.0.0.2");
    let tls =
        fdfs_httpd::tls::server_config_from_pem(leaf.chain_pem.as_bytes(), leaf.key_pem.as_bytes())
            .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    // hyper's client bounds connect and head together: connect_timeout +
    // peer_response_timeout (1 s + 1 s here).
    let extra = format!(
        "connect_timeout = 1\npeer_scheme = https\npeer_ca_file = {}\n",
        ca_file.display()
    );
    let (b, _, la) = site(tmp.path(), false, &extra).await;
    tokio::spawn(async move {
        while let Ok((s, _)) = la.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // Handshake, then read and never answer.
                if let Ok(mut t) = acceptor.accept(s).await {
                    let mut sink = [0u8; 1024];
                    while matches!(t.read(&mut sink).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(5)).await;
    assert_eq!(r.status, 504);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lag_request_waits_fifteen_seconds_at_most() {
    // Default limits (5 s per peer): A, C and D all silent take 15 s.
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);
    let lb = ls.remove(1);
    for l in ls {
        sick_peer(l, Sick::Silent);
    }
    let delay = real_recorded_delay();
    let peers = "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5";
    let b = node(
        tmp.path(),
        "b",
        "B",
        "127.0.0.3",
        lb,
        "proxy",
        peers,
        "",
        delay,
    )
    .await;
    let (r, took) = get_within(b.addr, ONLY_A, Duration::from_secs(20)).await;
    assert_eq!(r.status, 504);
    assert!(took >= Duration::from_secs(14), "{took:?}");
    assert!(took < Duration::from_secs(17), "{took:?}");
}
