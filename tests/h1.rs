//! The plain HTTP/1.1 path (`src/h1`) through real sockets: pipelining,
//! HTTP/1.0 persistence, `sendfile` bodies and ranges, and requests it
//! hands to hyper mid-connection (request bodies, malformed heads), whose
//! answers must look exactly like its own.

mod ops_common;
mod support;

use std::time::Duration;

use ops_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything the server sends until it closes (bounded).
async fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut all))
        .await
        .expect("closed within 20 s")
        .expect("read");
    all
}

/// Splits back-to-back responses whose bodies are framed by
/// Content-Length (or absent): (head text, body) each.
fn split_responses(mut b: &[u8], heads: &[bool]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for &head_only in heads {
        let end = b
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head end")
            + 4;
        let head = String::from_utf8(b[..end].to_vec()).unwrap();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        let len = if head_only || head.contains(" 304 ") {
            0
        } else {
            len
        };
        out.push((head, b[end..end + len].to_vec()));
        b = &b[end + len..];
    }
    assert!(b.is_empty(), "{} bytes after the last response", b.len());
    out
}

/// The head without its `date` field (which changes each second).
fn dateless(head: &str) -> String {
    head.lines()
        .filter(|l| !l.starts_with("date: "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10, 5000, 300_000]);
    let srv = support::Server::start(&conf(&st, ""), tmp.path(), "127.0.0.80").await;
    let mut reqs = String::new();
    for (url, _) in &st.files {
        reqs.push_str(&format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    reqs.push_str(&format!(
        "HEAD {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        st.files[1].0
    ));
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    // One write: the server finds four heads in its buffer.
    s.write_all(reqs.as_bytes()).await.unwrap();
    let all = read_all(&mut s).await;
    let rs = split_responses(&all, &[false, false, false, true]);
    for (i, (url, want)) in st.files.iter().enumerate() {
        assert!(
            rs[i].0.starts_with("HTTP/1.1 200 OK\r\n"),
            "{url}: {}",
            rs[i].0
        );
        assert!(rs[i].1 == *want, "{url}: body");
    }
    assert!(rs[3].0.contains("content-length: 5000\r\n"));
    assert!(rs[3].0.contains("connection: close\r\n"));
    srv.stop().await;
}

#[tokio::test]
async fn http10_persists_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[100]);
    let srv = support::Server::start(&conf(&st, ""), tmp.path(), "127.0.0.81").await;
    let url = &st.files[0].0;

    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(format!("GET {url} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let all = read_all(&mut s).await;
    let rs = split_responses(&all, &[false]);
    assert!(rs[0].0.starts_with("HTTP/1.0 200 OK\r\n"), "{}", rs[0].0);
    assert!(!rs[0].0.contains("connection:"));
    assert_eq!(rs[0].1, st.files[0].1);

    // Keep-alive asked: said so, and a second request is served.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let ka = format!("GET {url} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    s.write_all(ka.as_bytes()).await.unwrap();
    let r = support::read_response(&mut s, false).await;
    assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
    s.write_all(format!("GET {url} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let all = read_all(&mut s).await;
    assert!(all.starts_with(b"HTTP/1.0 200 OK\r\n"));
    srv.stop().await;
}

#[tokio::test]
async fn large_files_and_ranges_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[3 << 20, 9000]);
    let srv = support::Server::start(
        &conf(&st, "http.multi_range.enabled = true"),
        tmp.path(),
        "127.0.0.82",
    )
    .await;
    let (url, want) = &st.files[0];
    let r = support::get(srv.addr, url).await;
    assert_eq!(r.status, 200);
    assert!(r.complete && r.body == *want);
    // Ranges above and below the sendfile threshold, from any offset.
    for (a, b) in [
        (1, 100_000),
        (1_000_000, 2_999_999),
        (5, 9),
        (3_145_000, 3_145_727),
    ] {
        let h = format!("bytes={a}-{b}");
        let r = support::request(srv.addr, "GET", url, &[("Range", &h)]).await;
        assert_eq!(r.status, 206, "{h}");
        assert!(r.complete && r.body == want[a..=b], "{h}");
    }
    // Multipart: boundaries between two large parts.
    let r = support::request(
        srv.addr,
        "GET",
        url,
        &[("Range", "bytes=0-99999,2000000-2299999")],
    )
    .await;
    assert_eq!(r.status, 206);
    let parts = support::multipart_parts(
        &r.body,
        &support::boundary_of(&r.header("content-type").unwrap()),
    );
    // Preamble, two parts (their headers, then the bytes), closing line.
    assert_eq!(parts.len(), 4);
    let bytes = |p: &[u8]| p[p.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..].to_vec();
    assert!(bytes(&parts[1]) == want[..100_000]);
    assert!(bytes(&parts[2]) == want[2_000_000..2_300_000]);
    // 9000 bytes: just over the inline size.
    let r = support::get(srv.addr, &st.files[1].0).await;
    assert!(r.complete && r.body == st.files[1].1);
    srv.stop().await;
}

/// A request with a body goes to hyper, which answers it and every later
/// request of that connection; its heads are the h1 path's, field for
/// field.
#[tokio::test]
async fn handed_off_requests_get_the_same_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[4096]);
    let srv = support::Server::start(&conf(&st, ""), tmp.path(), "127.0.0.83").await;
    let url = &st.files[0].0;
    let get = format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n");
    let missing = "GET /group1/M00/00/00/nothere.jpg HTTP/1.1\r\nHost: x\r\n\r\n";
    let close = format!("HEAD {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

    // Served here: no body in any request.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(format!("{get}{missing}{close}").as_bytes())
        .await
        .unwrap();
    let ours = split_responses(&read_all(&mut s).await, &[false, false, true]);

    // The first request carries a body: hyper serves the connection.
    let with_body = format!("GET {url} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(format!("{with_body}{get}{missing}{close}").as_bytes())
        .await
        .unwrap();
    let theirs = split_responses(&read_all(&mut s).await, &[false, false, false, true]);

    assert_eq!(
        theirs[0].1, st.files[0].1,
        "the request with a body is answered"
    );
    for (a, b) in ours.iter().zip(&theirs[1..]) {
        assert_eq!(dateless(&a.0), dateless(&b.0));
        assert_eq!(a.1, b.1);
    }
    assert!(ours[1].0.starts_with("HTTP/1.1 400 ") || ours[1].0.starts_with("HTTP/1.1 404 "));
    srv.stop().await;
}

#[tokio::test]
async fn malformed_heads_get_hyper_400_and_the_server_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[100]);
    let srv = support::Server::start(&conf(&st, ""), tmp.path(), "127.0.0.84").await;
    for bad in [
        &b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"[..],
        b"GET /\x01 HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(bad).await.unwrap();
        let all = read_all(&mut s).await;
        assert!(
            all.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
            "{:?}: {}",
            String::from_utf8_lossy(bad),
            String::from_utf8_lossy(&all)
        );
    }
    assert_eq!(support::get(srv.addr, &st.files[0].0).await.status, 200);
    srv.stop().await;
}

/// Bytes of a head that arrive one at a time are still one request.
#[tokio::test]
async fn a_head_in_single_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[700]);
    let srv = support::Server::start(&conf(&st, ""), tmp.path(), "127.0.0.85").await;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        st.files[0].0
    );
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    for b in req.as_bytes() {
        s.write_all(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rs = split_responses(&read_all(&mut s).await, &[false]);
    assert!(rs[0].0.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(rs[0].1, st.files[0].1);
    srv.stop().await;
}

/// `read_strategy = threads`: ranges over the inline size are read on the
/// blocking pool instead of `sendfile`, with the same bytes.
#[tokio::test]
async fn read_strategy_threads_serves_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[(1 << 20) + 17]);
    let srv = support::Server::start(
        &conf(&st, "read_strategy = threads"),
        tmp.path(),
        "127.0.0.86",
    )
    .await;
    let (url, want) = &st.files[0];
    let r = support::get(srv.addr, url).await;
    assert!(r.status == 200 && r.complete && r.body == *want);
    let r = support::request(srv.addr, "GET", url, &[("Range", "bytes=300000-")]).await;
    assert!(r.status == 206 && r.complete && r.body == want[300_000..]);
    srv.stop().await;
}
