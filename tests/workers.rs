//! Worker threads (`worker_threads`), on the real binary: with three
//! workers each accepted connection is served by the next worker thread
//! (`fdfs-worker-<i>`, its CPU time read from `/proc/<pid>/task/*/schedstat`);
//! each worker keeps its own idle connections to a peer (a socket is only
//! used on the thread whose event loop it is registered with).

mod ops_common;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use ops_common::Binary;
use support::fake_http::{self, Step};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Worker threads of `pid` by name → thread ID.
fn workers(pid: u32) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid = e.unwrap().file_name().to_string_lossy().to_string();
        let comm =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
        let comm = comm.trim();
        if comm.starts_with("fdfs-worker-") {
            out.insert(comm.to_owned(), tid.parse().unwrap());
        }
    }
    out
}

/// Nanoseconds thread `tid` of `pid` has run so far.
fn ran_ns(pid: u32, tid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// A keep-alive GET on `s`.
async fn ask(s: &mut TcpStream, target: &str) -> support::Resp {
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    support::read_response(s, false).await
}

#[tokio::test]
async fn each_connection_goes_to_the_next_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let st = ops_common::store(tmp.path(), &[4096]);
    let conf = ops_common::conf(&st, "worker_threads = 3");
    let b = Binary::start(tmp.path(), &conf, "127.0.0.52", &[]);
    let pid = b.child.id();
    let ws = workers(pid);
    let names: Vec<&str> = ws.keys().map(String::as_str).collect();
    assert_eq!(names, ["fdfs-worker-1", "fdfs-worker-2", "fdfs-worker-3"]);
    // Binary::start's readiness probe was the first connection (worker 1);
    // the next three go to workers 2, 3, 1.
    let (url, want) = &st.files[0];
    let mut busiest = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..3 {
        let before: Vec<u64> = ws.values().map(|&t| ran_ns(pid, t)).collect();
        let mut s = TcpStream::connect(b.addr).await.unwrap();
        for i in 0..300 {
            let r = ask(&mut s, url).await;
            assert_eq!((r.status, r.complete), (200, true), "request {i}");
            assert!(r.body == *want, "request {i}: body differs");
        }
        conns.push(s);
        let grew: Vec<u64> = ws
            .values()
            .zip(&before)
            .map(|(&t, b)| ran_ns(pid, t) - b)
            .collect();
        let top = (0..3).max_by_key(|&i| grew[i]).unwrap();
        busiest.push(ws.keys().nth(top).unwrap().clone());
    }
    assert_eq!(
        busiest,
        ["fdfs-worker-2", "fdfs-worker-3", "fdfs-worker-1"],
        "the worker that served each connection"
    );
}

/// A file of store "B" whose ID decodes to source 127.0.0.9.
const FAKE: &str = "/group1/M00/00/00/fwAACWsGtv2AG8RbAAABXgut8A0000.txt";

#[tokio::test]
async fn each_worker_pools_its_own_peer_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ls = support::bind_same_port(&["127.0.0.3", "127.0.0.9"]);
    let fake = fake_http::spawn(ls.pop().unwrap(), |_| {
        let body = "hello world";
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        vec![Step::Write(format!("{head}{body}").into_bytes())]
    });
    let addr: SocketAddr = ls.pop().unwrap().local_addr().unwrap();
    let store = support::real_store("B", tmp.path());
    let conf = support::real_conf(
        &store,
        "127.0.0.3",
        "127.0.0.9",
        "proxy",
        support::real_recorded_delay(),
    );
    let _b = Binary::start_on(
        tmp.path(),
        &format!("{conf}worker_threads = 2\n"),
        addr,
        &[],
    );
    // The readiness probe took worker 1; connections 1..3 go to workers
    // 2, 1, 2. A worker's second connection reuses what its first pooled.
    let mut conns = Vec::new();
    for (n, want_upstream) in [(1, 1), (2, 2), (3, 2)] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        for i in 0..5 {
            let r = ask(&mut s, FAKE).await;
            assert_eq!((r.status, r.complete), (200, true), "conn {n} request {i}");
            assert_eq!(r.body, b"hello world");
        }
        assert_eq!(fake.used(), want_upstream, "after connection {n}");
        conns.push(s);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
