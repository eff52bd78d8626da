//! The lag path after failures, through real sockets between fdfs-httpd
//! nodes on 127.0.0.2/.3/.4 (same port): a peer that is back is used by the
//! next request (an open circuit is probed, not waited out), and the answer
//! is the module's 404 when the source was reached and said it does not
//! have the file, whatever another peer did; 5xx only when the source
//! itself could not be reached.

mod support;

use std::time::{Duration, Instant};

use fdfs_httpd::fileid::{IdBuilder, Source};
use support::real_node as node;
use support::*;

/// A file that only store "A" (source 127.0.0.2) has.
const ONLY_A: &str = "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const ONLY_A_REL: &str = "data/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const PEERS: &str = "127.0.0.2,127.0.0.3,127.0.0.4";

/// A proxy-mode node over the fixture store `store` ("A" or "B") on `l`,
/// with [`PEERS`] and the recorded delay.
async fn proxy_node(
    tmp: &std::path::Path,
    name: &str,
    store: &str,
    l: tokio::net::TcpListener,
) -> Server {
    let ip = l.local_addr().unwrap().ip().to_string();
    node(
        tmp,
        name,
        store,
        &ip,
        l,
        "proxy",
        PEERS,
        "",
        real_recorded_delay(),
    )
    .await
}

/// A fresh ID whose source is A and that no store has.
fn ghost_of_a() -> String {
    let remote = IdBuilder::new()
        .source(Source::Ip("127.0.0.2".parse().unwrap()))
        .create_ts(now())
        .size(12)
        .rand23(4242)
        .extension("txt")
        .build_remote();
    format!("/group1/{remote}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_back_serves_the_next_request() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3"]);
    let lb = ls.pop().unwrap();
    let la = ls.pop().unwrap();
    let a_addr = la.local_addr().unwrap();
    drop(la); // the source is down
    let b = proxy_node(tmp.path(), "b", "B", lb).await;
    // Enough failures to open A's circuit (2) and then some.
    for i in 0..4 {
        let t0 = Instant::now();
        let r = get(b.addr, ONLY_A).await;
        assert_eq!(r.status, 502, "request {i} while A is down");
        assert!(t0.elapsed() < Duration::from_secs(1), "a fast 502");
    }
    // A is back on its address.
    let la = fdfs_httpd::transport::bind(a_addr).expect("rebind A");
    let _a = proxy_node(tmp.path(), "a", "A", la).await;
    let r = get(b.addr, ONLY_A).await;
    assert_eq!(r.status, 200, "the first request after A is back");
    let want = std::fs::read(fixtures().join("real/storageA").join(ONLY_A_REL)).unwrap();
    assert_eq!(r.body, want);
    // The circuit is closed again: A is asked first, and answers.
    for _ in 0..3 {
        assert_eq!(get(b.addr, ONLY_A).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_saying_404_is_404_even_with_a_peer_down() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    drop(ls.pop()); // C (127.0.0.4) is down
    let lb = ls.pop().unwrap();
    let la = ls.pop().unwrap();
    let _a = proxy_node(tmp.path(), "a", "A", la).await;
    let b = proxy_node(tmp.path(), "b", "B", lb).await;
    let ghost = ghost_of_a();
    for i in 0..4 {
        let r = get(b.addr, &ghost).await;
        assert_eq!(
            r.status, 404,
            "request {i}: A (the source) said 404, C is down"
        );
    }
    // A file A has is still served.
    assert_eq!(get(b.addr, ONLY_A).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_unreachable_and_a_peer_saying_404_is_502() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let lc = ls.pop().unwrap();
    let lb = ls.pop().unwrap();
    drop(ls); // A (the source) is down; C is up without the file
    let _c = proxy_node(tmp.path(), "c", "B", lc).await;
    let b = proxy_node(tmp.path(), "b", "B", lb).await;
    assert_eq!(get(b.addr, &ghost_of_a()).await.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_probe_per_cooling_peer_the_others_get_a_quick_503() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3"]);
    let lb = ls.pop().unwrap();
    let la = ls.pop().unwrap();
    let a_addr = la.local_addr().unwrap();
    drop(la);
    let b = proxy_node(tmp.path(), "b", "B", lb).await;
    for _ in 0..2 {
        assert_eq!(get(b.addr, ONLY_A).await.status, 502);
    }
    // A now accepts and never answers: the next request probes it and waits.
    let stall = tokio::net::TcpListener::bind(a_addr)
        .await
        .expect("rebind A");
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = stall.accept().await.expect("the probe connects");
        let _ = held_tx.send(());
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(s); // then the probe fails
    });
    let addr = b.addr;
    let probe = tokio::spawn(async move { get(addr, ONLY_A).await.status });
    tokio::time::timeout(Duration::from_secs(5), held_rx)
        .await
        .expect("probe within 5 s")
        .unwrap();
    let t0 = Instant::now();
    let r = get(b.addr, ONLY_A).await;
    assert_eq!(r.status, 503, "A is being probed by another request");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(t0.elapsed() < Duration::from_millis(500), "without waiting");
    assert_eq!(probe.await.unwrap(), 502, "the probe's own answer");
}
