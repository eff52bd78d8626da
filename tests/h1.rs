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

/// Splits back-to-back responses: (head text, body) each (see
/// [`split_framed`]).
fn split_responses(b: &[u8], heads: &[bool]) -> Vec<(String, Vec<u8>)> {
    split_framed(b, heads)
        .into_iter()
        .map(|a| (a.head, a.body))
        .collect()
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

/// One response of a pipelined run: head text and body (de-chunked).
struct Answer {
    head: String,
    body: Vec<u8>,
}

/// Splits back-to-back responses framed by Content-Length, chunked or
/// absent (HEAD, 304), as RFC 9112 §6.3 says.
fn split_framed(mut b: &[u8], heads: &[bool]) -> Vec<Answer> {
    let mut out = Vec::new();
    for &head_only in heads {
        let end = b
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head end")
            + 4;
        let head = String::from_utf8(b[..end].to_vec()).unwrap();
        b = &b[end..];
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let no_body = head_only || head.contains(" 304 ");
        let mut body = Vec::new();
        if no_body {
        } else if field("transfer-encoding: ").as_deref() == Some("chunked") {
            loop {
                let line = b.windows(2).position(|w| w == b"\r\n").unwrap();
                let n =
                    usize::from_str_radix(std::str::from_utf8(&b[..line]).unwrap(), 16).unwrap();
                b = &b[line + 2..];
                if n == 0 {
                    assert_eq!(&b[..2], b"\r\n", "no trailers");
                    b = &b[2..];
                    break;
                }
                body.extend_from_slice(&b[..n]);
                assert_eq!(&b[n..n + 2], b"\r\n");
                b = &b[n + 2..];
            }
        } else {
            let len = field("content-length: ").map_or(0, |v| v.parse::<usize>().unwrap());
            body = b[..len].to_vec();
            b = &b[len..];
        }
        out.push(Answer { head, body });
    }
    assert!(b.is_empty(), "{} bytes after the last response", b.len());
    out
}

/// A multipart boundary (time-based, so different per response) replaced
/// by `B` in the head and the body.
fn unbound(a: &Answer) -> (String, Vec<u8>) {
    let head = dateless(&a.head);
    let Some(at) = head.find("boundary=") else {
        return (head, a.body.clone());
    };
    let boundary = head[at + 9..].lines().next().unwrap().trim().to_string();
    let body = String::from_utf8_lossy(&a.body).replace(&boundary, "B");
    (head.replace(&boundary, "B"), body.into_bytes())
}

/// Sends `reqs` pipelined on one connection to the h1 path, then the same
/// behind a request with a body (so hyper serves them all), and compares
/// the answers head field by head field (`date` aside) and body by body.
/// `heads[i]`: request `i` is HEAD. The last request must end the
/// connection. Returns the h1 path's answers.
async fn same_through_both(
    addr: std::net::SocketAddr,
    reqs: &[String],
    heads: &[bool],
    handoff_target: &str,
) -> Vec<Answer> {
    let all: String = reqs.concat();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(all.as_bytes()).await.unwrap();
    let ours = split_framed(&read_all(&mut s).await, heads);

    let with_body =
        format!("GET {handoff_target} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{with_body}{all}").as_bytes())
        .await
        .unwrap();
    let mut hs = vec![false];
    hs.extend_from_slice(heads);
    let theirs = split_framed(&read_all(&mut s).await, &hs);
    for (i, (a, b)) in ours.iter().zip(&theirs[1..]).enumerate() {
        let (ha, ba) = unbound(a);
        let (hb, bb) = unbound(b);
        let fa: Vec<&str> = ha.lines().collect();
        let fb: Vec<&str> = hb.lines().collect();
        assert_eq!(fa, fb, "request {i}: {}", reqs[i]);
        assert!(ba == bb, "request {i}: body");
        assert_eq!(
            a.head.contains("\r\ndate: "),
            b.head.contains("\r\ndate: "),
            "request {i}: date"
        );
    }
    ours
}

/// 206, multipart 206, 304, 416, a 302 to the file's source (redirect
/// mode) and HTTP/1.0: the same heads from the h1 path and from hyper.
#[tokio::test]
async fn statuses_look_the_same_through_both_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[4096]);
    let srv = support::Server::start(
        &conf(&st, "http.multi_range.enabled = true"),
        tmp.path(),
        "127.0.0.87",
    )
    .await;
    let url = &st.files[0].0;
    let etag = support::get(srv.addr, url).await.header("etag").unwrap();
    let req = |extra: &str| format!("GET {url} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    let reqs = [
        req("Range: bytes=10-99\r\n"),
        req("Range: bytes=0-1,100-199,4000-\r\n"),
        req(&format!("If-None-Match: {etag}\r\n")),
        req("Range: bytes=99999-\r\n"),
        format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", st.remote),
        format!("HEAD {url} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        format!("GET {url} HTTP/1.0\r\n\r\n"),
    ];
    let heads = [false, false, false, false, false, true, false];
    let ours = same_through_both(srv.addr, &reqs, &heads, url).await;
    let status: Vec<&str> = ours.iter().map(|a| &a.head[..12]).collect();
    assert_eq!(
        status,
        [
            "HTTP/1.1 206",
            "HTTP/1.1 206",
            "HTTP/1.1 304",
            "HTTP/1.1 416",
            "HTTP/1.1 302",
            "HTTP/1.0 200",
            "HTTP/1.0 200"
        ]
    );
    assert_eq!(ours[0].body, st.files[0].1[10..100]);
    assert!(ours[1].head.contains("multipart/byteranges"));
    assert!(
        ours[4].head.contains("location: http://127.0.0.2:"),
        "{}",
        ours[4].head
    );
    assert!(ours[5].head.contains("connection: keep-alive\r\n"));
    assert_eq!(ours[6].body, st.files[0].1);
    srv.stop().await;
}

/// A proxied body the peer sends chunked (length unknown): relayed chunked
/// with the same head by both paths.
#[tokio::test]
async fn a_proxied_chunked_body_looks_the_same_through_both_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[100]);
    let mut ls = support::bind_same_port(&["127.0.0.88", "127.0.0.2"]);
    let peer = ls.pop().unwrap();
    let node = ls.pop().unwrap();
    let fake = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut s, _)) = peer.accept().await {
            conns.spawn(async move {
                let mut buf = Vec::new();
                while support::read_request_head(&mut s, &mut buf).await.is_some() {
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"c\"\r\n\
Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let cfg = conf(&st, "").replace("response_mode = redirect", "response_mode = proxy");
    let srv = support::Server::start_on(&cfg, tmp.path(), node).await;
    let reqs = [
        format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", st.remote),
        format!(
            "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            st.remote
        ),
    ];
    let ours = same_through_both(srv.addr, &reqs, &[false, false], &st.files[0].0).await;
    for a in &ours {
        assert!(a.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", a.head);
        assert!(
            a.head.contains("transfer-encoding: chunked\r\n"),
            "{}",
            a.head
        );
        assert!(a.head.contains("etag: \"c\"\r\n"));
        assert_eq!(a.body, b"hello world");
    }
    srv.stop().await;
    fake.abort();
}
