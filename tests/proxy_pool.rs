//! The plain-HTTP upstream client through real sockets: a node on
//! 127.0.0.3 proxies to a fake source on 127.0.0.9 (same port) that counts
//! its connections and answers by `?mode=`: keep-alive reuse, a pooled
//! connection closed by the peer, truncated, stalled, chunked,
//! close-delimited and HTTP/1.0 bodies, HEAD, 304 and a 1 MiB body.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::fake_http::{self, FakeHttp as Fake, Step};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A file whose ID decodes to source 127.0.0.9.
const FAKE: &str = "/group1/M00/00/00/fwAACWsGtv2AG8RbAAABXgut8A0000.txt";

const BIG: usize = 1 << 20;

fn big_body() -> Vec<u8> {
    (0..BIG).map(|i| (i * 7 % 251) as u8).collect()
}

fn fake(listener: TcpListener) -> Fake {
    fake_http::spawn(listener, reply)
}

const OK: &str = "Content-Type: text/plain\r\nETag: \"e\"\r\nKeep-Alive: timeout=60\r\n";

fn reply(req: &fake_http::Request) -> Vec<Step> {
    let ok = |body: &[u8]| {
        let mut v = format!(
            "HTTP/1.1 200 OK\r\n{OK}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if !req.is_head() {
            v.extend_from_slice(body);
        }
        v
    };
    let stall = Step::Sleep(Duration::from_secs(30));
    let reply = match req.mode().unwrap_or("ok") {
        "close_after" => return vec![Step::Write(ok(b"hello world")), Step::Close],
        "truncate" => {
            let mut v =
                format!("HTTP/1.1 200 OK\r\n{OK}Content-Length: 100000\r\n\r\n").into_bytes();
            v.extend_from_slice(&[b'x'; 1000]);
            return vec![Step::Write(v), Step::Close];
        }
        "stall_head" => return vec![stall, Step::Close],
        "stall_body" => {
            let v = format!("HTTP/1.1 200 OK\r\n{OK}Content-Length: 100\r\n\r\n0123456789");
            return vec![Step::Write(v.into_bytes()), stall, Step::Close];
        }
        "chunked" => {
            let pieces: [&[u8]; 4] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                b"lo\r\n6;ext=1\r\n world",
                b"\r\n1",
                b"000\r\n",
            ];
            let mut steps = Vec::new();
            for p in pieces {
                steps.push(Step::Write(p.to_vec()));
                steps.push(Step::Sleep(Duration::from_millis(10)));
            }
            let mut rest = vec![b'c'; 0x1000];
            rest.extend_from_slice(b"\r\n0\r\nX-Trailer: t\r\n\r\n");
            steps.push(Step::Write(rest));
            return steps;
        }
        "close_delimited" => {
            let v = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
            return vec![Step::Write(v.to_vec()), Step::Close];
        }
        "http10" => b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nhello world".to_vec(),
        "not_modified" => b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n".to_vec(),
        "big" => ok(&big_body()),
        _ => ok(b"hello world"),
    };
    vec![Step::Write(reply)]
}

/// The node on 127.0.0.3 proxying to the fake on 127.0.0.9.
async fn setup(tmp: &std::path::Path, extra: &str) -> (Server, Fake) {
    let mut ls = bind_same_port(&["127.0.0.3", "127.0.0.9"]);
    let f = fake(ls.pop().unwrap());
    let delay = real_recorded_delay();
    let lb = ls.pop().unwrap();
    let b = real_node(
        tmp,
        "b",
        "B",
        "127.0.0.3",
        lb,
        "proxy",
        "127.0.0.9",
        extra,
        delay,
    )
    .await;
    (b, f)
}

fn at(mode: &str) -> String {
    format!("{FAKE}?mode={mode}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_share_one_upstream_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, f) = setup(tmp.path(), "").await;
    for i in 0..20 {
        let r = get(b.addr, FAKE).await;
        assert_eq!((r.status, r.complete), (200, true), "request {i}");
        assert_eq!(r.body, b"hello world");
        assert_eq!(r.header("etag").as_deref(), Some("\"e\""));
        assert_eq!(r.header("keep-alive"), None, "hop-by-hop stripped");
        assert_ne!(r.header("server").as_deref(), Some("fake"));
    }
    assert_eq!(f.accepted(), 1);
    // HEAD and 304 reuse it too.
    let r = request(b.addr, "HEAD", FAKE, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("11"));
    assert!(r.body.is_empty());
    let r = get(b.addr, &at("not_modified")).await;
    assert_eq!((r.status, r.body.len()), (304, 0));
    assert_eq!(get(b.addr, FAKE).await.body, b"hello world");
    assert_eq!(f.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_closed_by_the_peer_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, f) = setup(tmp.path(), "").await;
    for round in 1..=3 {
        let r = get(b.addr, &at("close_after")).await;
        assert_eq!((r.status, r.complete), (200, true));
        // Let the close reach the pooled connection.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = get(b.addr, FAKE).await;
        assert_eq!((r.status, r.complete), (200, true), "round {round}");
        assert_eq!(r.body, b"hello world");
        assert_eq!(f.accepted(), round + 1, "one new connection per close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_stalled_bodies_abort_the_client() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, f) = setup(tmp.path(), "network_timeout = 1\n").await;
    let r = get(b.addr, &at("truncate")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("100000"));
    assert!(!r.complete && r.body.len() < 100_000, "{}", r.body.len());

    let t0 = Instant::now();
    let r = get(b.addr, &at("stall_body")).await;
    assert_eq!(r.status, 200);
    assert!(!r.complete, "a stalled body must not look complete");
    assert_eq!(r.body, b"0123456789");
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());

    let t0 = Instant::now();
    let r = get(b.addr, &at("stall_head")).await;
    assert_eq!(r.status, 504);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );

    // None of those connections was pooled; the next request is clean.
    let before = f.accepted();
    let r = get(b.addr, FAKE).await;
    assert_eq!((r.status, r.complete), (200, true));
    assert_eq!(r.body, b"hello world");
    assert_eq!(f.accepted(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_body_costs_the_upstream_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, f) = setup(tmp.path(), "").await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", at("stall_body"));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = get(b.addr, FAKE).await;
    assert_eq!((r.status, r.complete), (200, true));
    assert_eq!(f.accepted(), 2, "the abandoned connection was not reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_close_delimited_and_http10_bodies() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, f) = setup(tmp.path(), "").await;
    let mut want = b"hello world".to_vec();
    want.extend_from_slice(&[b'c'; 0x1000]);
    for _ in 0..3 {
        let r = get(b.addr, &at("chunked")).await;
        assert_eq!((r.status, r.complete), (200, true));
        assert_eq!(r.body, want);
        assert_eq!(r.header("x-trailer"), None);
    }
    assert_eq!(
        f.accepted(),
        1,
        "a chunked body that ends exactly keeps the connection"
    );

    let r = get(b.addr, &at("close_delimited")).await;
    assert_eq!((r.status, r.complete), (200, true));
    assert_eq!(r.body, b"until the end");
    let r = get(b.addr, &at("http10")).await;
    assert_eq!((r.status, r.complete), (200, true));
    assert_eq!(r.body, b"hello world");
    assert_eq!(get(b.addr, FAKE).await.status, 200);
    assert_eq!(f.accepted(), 3, "neither was pooled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mebibyte_is_relayed_byte_exact_and_keeps_the_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, f) = setup(tmp.path(), "").await;
    let want = big_body();
    for _ in 0..3 {
        let r = get(b.addr, &at("big")).await;
        assert_eq!((r.status, r.complete), (200, true));
        assert_eq!(r.header("content-length").as_deref(), Some("1048576"));
        assert!(r.body == want, "body differs");
    }
    // On one keep-alive client connection too.
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    for _ in 0..2 {
        let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", at("big"));
        s.write_all(req.as_bytes()).await.unwrap();
        let r = read_response(&mut s, false).await;
        assert!(r.complete && r.body == want);
    }
    assert_eq!(f.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_open_more_connections_and_pool_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (b, f) = setup(tmp.path(), "").await;
    let addr: SocketAddr = b.addr;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let r = get(addr, FAKE).await;
                assert_eq!((r.status, r.complete), (200, true));
                assert_eq!(r.body, b"hello world");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = f.accepted();
    assert!(
        (1..=8).contains(&n),
        "{n} connections for 8 concurrent clients"
    );
}
