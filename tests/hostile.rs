//! Hostile requests against a real server (issue 7 item 2): raw bytes on a
//! socket, each probe checked for its status, for framing (Content-Length
//! matches the body, nothing trails the responses) and for leaks (a canary
//! file next to the store, and `/etc/passwd`, never appear in any response),
//! followed by a normal request that must still succeed.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fdfs_httpd::fileid::{IdBuilder, Source};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Content of the canary file placed next to the store.
const MARKER: &str = "CANARY-7f3a9c-outside-the-store";
/// A line every `/etc/passwd` has.
const PASSWD: &str = "root:x:0:0";
/// A small file of fixture store A.
const SMALL: &str = "/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
const SMALL_REMOTE: &str = "M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
const SMALL_LEN: usize = 3300;
/// This node and its peer (redirect target).
const IP: &str = "127.0.0.9";
const PEER: &str = "127.0.0.10";

struct Env {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    canary: PathBuf,
    server: Server,
}

impl Env {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Path of the data directory `data/00/00`.
    fn subdir(&self) -> PathBuf {
        self.store.join("data/00/00")
    }
}

async fn start() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let store = real_store("A", tmp.path());
    // Next to the store, and inside its parent: the targets of climbing.
    let canary = tmp.path().join("canary.txt");
    std::fs::write(&canary, MARKER).unwrap();
    std::fs::write(store.join("canary.txt"), MARKER).unwrap();
    let dir = tmp.path().join("conf");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = real_conf(
        &store,
        IP,
        &format!("{IP},{PEER}"),
        "redirect",
        recorded_max_delay(1_795_600_000),
    );
    let server = Server::start(&conf, &dir, IP).await;
    Env {
        _tmp: tmp,
        store,
        canary,
        server,
    }
}

/// One parsed response and the raw bytes it came from.
#[derive(Debug)]
struct Wire {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Wire {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Sends `bytes`, half-closes, reads to EOF (5 s at most) and splits what
/// came back into responses. Panics if the bytes are not a sequence of
/// well-framed responses (declared lengths match, nothing trails).
async fn send(addr: SocketAddr, bytes: &[u8], head: bool) -> Vec<Wire> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything we send.
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let all = String::from_utf8_lossy(&buf).into_owned();
    assert!(!all.contains(MARKER), "canary leaked: {all:?}");
    assert!(!all.contains(PASSWD), "/etc/passwd leaked: {all:?}");
    parse_all(&buf, head)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn parse_all(mut buf: &[u8], head: bool) -> Vec<Wire> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let end = find(buf, b"\r\n\r\n")
            .unwrap_or_else(|| panic!("unterminated head: {:?}", String::from_utf8_lossy(buf)));
        let (head_bytes, rest) = buf.split_at(end);
        let rest = &rest[4..];
        let mut lines = head_bytes.split(|&b| b == b'\n');
        let status_line = String::from_utf8_lossy(lines.next().unwrap()).into_owned();
        assert!(status_line.starts_with("HTTP/1."), "{status_line:?}");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.trim().parse().ok())
            .expect("status");
        let mut headers = Vec::new();
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':').expect("header colon");
            let v = String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .as_bytes()
                .to_vec();
            headers.push((String::from_utf8_lossy(&line[..colon]).into_owned(), v));
        }
        let mut w = Wire {
            status,
            headers,
            body: Vec::new(),
        };
        let bodyless = head || status == 304 || status == 204 || status < 200;
        if let Some(te) = w.header("transfer-encoding") {
            assert!(te.eq_ignore_ascii_case("chunked"), "{te}");
            let mut r = rest;
            loop {
                let p = find(r, b"\r\n").expect("chunk size");
                let size = usize::from_str_radix(std::str::from_utf8(&r[..p]).unwrap().trim(), 16)
                    .expect("chunk size hex");
                r = &r[p + 2..];
                if size == 0 {
                    assert!(r.starts_with(b"\r\n"), "chunked trailer");
                    r = &r[2..];
                    break;
                }
                w.body.extend_from_slice(&r[..size]);
                assert_eq!(&r[size..size + 2], b"\r\n");
                r = &r[size + 2..];
            }
            buf = r;
        } else {
            let len: usize = w
                .header("content-length")
                .map(|v| v.parse().expect("numeric Content-Length"))
                .unwrap_or(0);
            if bodyless {
                buf = rest;
            } else {
                assert!(
                    rest.len() >= len,
                    "body shorter ({}) than Content-Length {len}",
                    rest.len()
                );
                w.body = rest[..len].to_vec();
                buf = &rest[len..];
            }
        }
        out.push(w);
    }
    out
}

/// A `GET` with `Connection: close` and extra raw header lines.
fn get_req(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {IP}\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

/// Exactly one response to `bytes`.
async fn one(addr: SocketAddr, bytes: &[u8]) -> Wire {
    let mut v = send(addr, bytes, false).await;
    assert_eq!(v.len(), 1, "expected one response, got {v:?}");
    v.remove(0)
}

/// The server still serves a normal request, byte-exact.
async fn alive(addr: SocketAddr) {
    let w = one(addr, &get_req(SMALL, "")).await;
    assert_eq!(w.status, 200);
    assert_eq!(w.body.len(), SMALL_LEN);
}

/// Status of a probe; asserts the server survives it.
async fn probe(env: &Env, bytes: &[u8]) -> Vec<Wire> {
    let r = send(env.addr(), bytes, false).await;
    alive(env.addr()).await;
    r
}

async fn status_of(env: &Env, target: &str) -> u16 {
    let r = probe(env, &get_req(target, "")).await;
    assert_eq!(r.len(), 1, "{target}: {r:?}");
    r[0].status
}

/// Every position a dot-dot (or an encoded slash) can take in the path of
/// a valid ID, in plain and encoded forms: never 200, never the canary.
#[tokio::test]
async fn dot_dot_and_encoded_slashes_everywhere() {
    let env = start().await;
    assert!(env.canary.exists());
    let segs: Vec<&str> = SMALL.trim_start_matches('/').split('/').collect();
    let forms = [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "..%2f..",
        "%2f..%2f",
        "..%5c..",
        "%2f",
        ".",
        "%00",
        "%252e%252e",
    ];
    let mut n = 0;
    for form in forms {
        for pos in 0..=segs.len() {
            // Insert as its own segment, and glued to the next one.
            for glue in [false, true] {
                let mut parts: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
                if glue && pos < parts.len() {
                    parts[pos] = format!("{form}{}", parts[pos]);
                } else {
                    parts.insert(pos, form.to_string());
                }
                let target = format!("/{}", parts.join("/"));
                let r = probe(&env, &get_req(&target, "")).await;
                assert_eq!(r.len(), 1, "{target}");
                let st = r[0].status;
                // `.` segments and `%2f` normalise away exactly like nginx;
                // the result may then be the file itself, byte-exact.
                if st == 200 {
                    assert_eq!(r[0].body.len(), SMALL_LEN, "{target}");
                } else {
                    assert!([400, 404].contains(&st), "{target}: {st}");
                }
                n += 1;
            }
        }
    }
    // Climbing to the canary and to /etc/passwd, plainly.
    for t in [
        "/group1/M00/00/00/../../../canary.txt",
        "/group1/M00/00/00/../../../../canary.txt",
        "/group1/M00/00/../../canary.txt",
        "/group1/M00/%2e%2e/canary.txt",
        "/group1/M00/00/00/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fcanary.txt",
        "/group1/M00/00/00/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/../../../../etc/passwd",
        "/group1/../canary.txt",
        "/group1/M00/00/00/....//....//canary.txt",
    ] {
        let st = status_of(&env, t).await;
        assert!([400, 404].contains(&st), "{t}: {st}");
        n += 1;
    }
    println!("{n} traversal probes");
    alive(env.addr()).await;
}

#[tokio::test]
async fn nul_bytes_and_overlong_targets() {
    let env = start().await;
    for t in [
        format!("{SMALL}%00"),
        format!("{SMALL}%00.txt"),
        "/group1/M00/00/00/%00/../../canary.txt".to_string(),
    ] {
        assert_eq!(status_of(&env, &t).await, 400, "{t}");
    }
    // A raw NUL in the request line is not HTTP: refused or dropped.
    let r = probe(
        &env,
        format!("GET {SMALL}\0 HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(r.iter().all(|w| w.status == 400), "{r:?}");
    // Overlong path (limit 510) and query (limit 8192).
    let long_path = format!("{SMALL}{}", "/x".repeat(300));
    assert_eq!(status_of(&env, &long_path).await, 400);
    let huge_path = format!("/group1/{}", "a".repeat(60_000));
    let st = status_of(&env, &huge_path).await;
    assert!([400, 414, 431].contains(&st), "{st}");
    let long_query = format!("{SMALL}?filename={}", "a".repeat(9000));
    assert_eq!(status_of(&env, &long_query).await, 414);
    // Within the query limit, a long filename is fine (docs/user-reports.md #34).
    let ok_query = format!("{SMALL}?filename={}.txt", "b".repeat(4000));
    assert_eq!(status_of(&env, &ok_query).await, 200);
}

#[tokio::test]
async fn ten_thousand_query_parameters() {
    let env = start().await;
    let many: Vec<String> = (0..10_000).map(|i| format!("k{i}=v")).collect();
    let st = status_of(&env, &format!("{SMALL}?{}", many.join("&"))).await;
    // 414 from the handler, or 431 when the head outgrows the read buffer.
    assert!([414, 431].contains(&st), "{st}");
    // As many as fit under the limit are all parsed and still served.
    let st = status_of(&env, &format!("{SMALL}?{}", "a&".repeat(4000))).await;
    assert_eq!(st, 200);
    let st = status_of(&env, &format!("{SMALL}?{}", "&".repeat(8000))).await;
    assert_eq!(st, 200);
}

/// Checks a 206 body against its Content-Range.
fn check_206(w: &Wire) {
    let cr = w.header("content-range").expect("Content-Range");
    let spec = cr.strip_prefix("bytes ").expect("bytes unit");
    let (range, total) = spec.split_once('/').unwrap();
    assert_eq!(total, SMALL_LEN.to_string());
    let (s, e) = range.split_once('-').unwrap();
    let (s, e): (usize, usize) = (s.parse().unwrap(), e.parse().unwrap());
    assert!(s <= e && e < SMALL_LEN, "{cr}");
    assert_eq!(w.body.len(), e - s + 1);
}

#[tokio::test]
async fn hostile_ranges() {
    let env = start().await;
    let cases: Vec<(String, &[u16])> = vec![
        // duplicated / conflicting headers: the first one counts, never a mix
        (
            "Range: bytes=0-9\r\nRange: bytes=20-29\r\n".into(),
            &[206, 416],
        ),
        (
            "Range: bytes=0-9\r\nRange: bytes=999999-\r\n".into(),
            &[206, 416],
        ),
        (
            "Range: bytes=0-9\r\nRange: items=1-2\r\n".into(),
            &[206, 416],
        ),
        // huge numbers
        (
            "Range: bytes=99999999999999999999999999-\r\n".into(),
            &[416],
        ),
        (
            "Range: bytes=0-99999999999999999999999999\r\n".into(),
            &[206],
        ),
        (
            "Range: bytes=-99999999999999999999999999\r\n".into(),
            &[206],
        ),
        (
            "Range: bytes=18446744073709551615-18446744073709551615\r\n".into(),
            &[416],
        ),
        ("Range: bytes=18446744073709551616-\r\n".into(), &[416]),
        // negative sizes and reversed ranges
        ("Range: bytes=--5\r\n".into(), &[416]),
        ("Range: bytes=-0\r\n".into(), &[416]),
        ("Range: bytes=5--1\r\n".into(), &[416]),
        ("Range: bytes=10-5\r\n".into(), &[416]),
        ("Range: bytes=-5-10\r\n".into(), &[416]),
        ("Range: bytes=+5-10\r\n".into(), &[416]),
        ("Range: bytes=0x10-0x20\r\n".into(), &[416]),
        ("Range: bytes=3300-\r\n".into(), &[416]),
        ("Range: bytes=\r\n".into(), &[416]),
        ("Range: bytes=,\r\n".into(), &[416]),
        // many ranges: 1,000 (too long a header), and 6 (over the limit)
        (
            format!("Range: bytes={}\r\n", vec!["0-0"; 1000].join(",")),
            &[400, 416],
        ),
        ("Range: bytes=0-0,1-1,2-2,3-3,4-4,5-5\r\n".into(), &[416]),
        ("Range: bytes=0-0,0-0,0-0,0-0,0-0\r\n".into(), &[206]),
        (format!("Range: bytes={}\r\n", "9".repeat(10_000)), &[400]),
    ];
    for (hdr, want) in &cases {
        let r = probe(&env, &get_req(SMALL, hdr)).await;
        assert_eq!(r.len(), 1, "{hdr:?}");
        let w = &r[0];
        assert!(want.contains(&w.status), "{hdr:?}: {}", w.status);
        if w.status == 206 {
            let ct = w.header("content-type").unwrap_or_default();
            if ct.starts_with("multipart/byteranges") {
                assert!(w.body.ends_with(b"--\r\n"));
            } else {
                check_206(w);
            }
        }
        if w.status == 416 {
            // Syntax errors are refused before the size is known (§1.6);
            // a Content-Range, when sent, names the real size.
            if let Some(cr) = w.header("content-range") {
                assert_eq!(cr, "bytes */3300", "{hdr:?}");
            }
        }
    }
}

#[tokio::test]
async fn lowercase_store_prefix_and_odd_ids() {
    let env = start().await;
    for t in [
        SMALL.replace("M00", "m00"),
        SMALL.replace("/00/00/", "/0a/00/"),
        SMALL.replace("group1", "group1-"),
        format!("/group1/M01/{}", &SMALL_REMOTE[4..]),
        format!("/group1/MFF/{}", &SMALL_REMOTE[4..]),
        format!("{SMALL}-m"),
        format!("/{}/{SMALL_REMOTE}", "g".repeat(17)),
    ] {
        let st = status_of(&env, &t).await;
        assert!([400, 404].contains(&st), "{t}: {st}");
    }
    // Another group is not hosted here, and the source the ID names
    // (127.0.0.2) is not a known member: neither served from this store
    // nor redirected there.
    let r = probe(&env, &get_req(&SMALL.replace("group1", "GROUP1"), "")).await;
    assert_eq!(r[0].status, 404);
    assert!(r[0].header("location").is_none());
}

/// An ID for a local normal file of `len` bytes that does not exist yet.
fn local_id(len: u64, rand23: u32) -> (String, String) {
    let b = IdBuilder::new()
        .source(Source::Ip(IP.parse().unwrap()))
        .create_ts(now())
        .size(len)
        .rand23(rand23)
        .extension("txt");
    let remote = b.build_remote();
    let name = remote.rsplit('/').next().unwrap().to_string();
    (format!("/group1/{remote}"), name)
}

#[tokio::test]
async fn symlinks_out_of_the_store_are_not_followed() {
    let env = start().await;
    let len = MARKER.len() as u64;
    // Final component: absolute and relative links to the canary.
    let (t1, n1) = local_id(len, 1);
    std::os::unix::fs::symlink(&env.canary, env.subdir().join(&n1)).unwrap();
    let (t2, n2) = local_id(len, 2);
    std::os::unix::fs::symlink("../../../canary.txt", env.subdir().join(&n2)).unwrap();
    let (t3, n3) = local_id(len, 3);
    std::os::unix::fs::symlink("/etc/passwd", env.subdir().join(&n3)).unwrap();
    // A directory of the path linked outside the store.
    let outside = env.canary.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let (t4, n4) = local_id(len, 4);
    std::fs::copy(&env.canary, outside.join(&n4)).unwrap();
    let linked_dir = env.store.join("data/00/77");
    std::os::unix::fs::symlink(&outside, &linked_dir).unwrap();
    let t4 = t4.replace("/00/00/", "/00/77/");
    // A link inside the store is fine (slave files may be links).
    let (t5, n5) = local_id(SMALL_LEN as u64, 5);
    std::os::unix::fs::symlink(
        SMALL_REMOTE.rsplit('/').next().unwrap(),
        env.subdir().join(&n5),
    )
    .unwrap();
    for t in [&t1, &t2, &t3, &t4] {
        let st = status_of(&env, t).await;
        assert!([403, 404].contains(&st), "{t}: {st}");
    }
    assert_eq!(status_of(&env, &t5).await, 200);
}

#[tokio::test]
async fn directories_and_unopenable_files() {
    let env = start().await;
    // A directory where the file should be.
    let (t, n) = local_id(0, 6);
    std::fs::create_dir(env.subdir().join(&n)).unwrap();
    assert_eq!(status_of(&env, &t).await, 404);
    // A dangling link and a link loop: the open fails without permissions
    // being involved, so this holds for root too.
    let (t, n) = local_id(5, 7);
    std::os::unix::fs::symlink("does-not-exist", env.subdir().join(&n)).unwrap();
    assert_eq!(status_of(&env, &t).await, 404);
    let (t, n) = local_id(5, 8);
    let p = env.subdir().join(&n);
    std::os::unix::fs::symlink(&p, &p).unwrap();
    let st = status_of(&env, &t).await;
    assert!([404, 503].contains(&st), "{st}");
    // A FIFO is not a regular file (and opening it would block).
    let (t, n) = local_id(5, 9);
    let fifo = env.subdir().join(&n);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        assert_eq!(status_of(&env, &t).await, 404);
    }
    // A file without read permission: only meaningful when not root.
    let (t, n) = local_id(5, 10);
    let p = env.subdir().join(&n);
    std::fs::write(&p, "hello").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&p).is_ok() {
        println!("skipped the mode-000 case: running as root, permission bits are ignored");
        assert_eq!(status_of(&env, &t).await, 200);
    } else {
        assert_eq!(status_of(&env, &t).await, 403);
    }
}

#[tokio::test]
async fn request_smuggling_probes() {
    let env = start().await;
    let canary_get = "GET /group1/M00/00/00/../../../canary.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let probes: Vec<String> = vec![
        // CL and TE together (TE wins or the request is refused)
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{canary_get}"),
        // two different Content-Lengths
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 60\r\n\r\n{canary_get}"),
        // obfuscated Transfer-Encoding
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n{canary_get}"),
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
        // negative and garbage Content-Length
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n"),
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        // a body on GET, then a pipelined request
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET {SMALL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET {SMALL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        // bare LF line endings, header folding
        format!("GET {SMALL} HTTP/1.1\nHost: x\nConnection: close\n\n"),
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\nConnection: close\r\n\r\n"),
        // a pipelined traversal after a good request
        format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\n\r\n{canary_get}"),
    ];
    for p in &probes {
        let r = probe(&env, p.as_bytes()).await;
        for w in &r {
            assert!(
                [200, 400, 404, 411, 413, 501].contains(&w.status),
                "{p:?}: {}",
                w.status
            );
            if w.status == 200 {
                assert_eq!(w.body.len(), SMALL_LEN, "{p:?}");
            }
        }
    }
}

#[tokio::test]
async fn invalid_utf8_in_headers_and_old_forms() {
    let env = start().await;
    let mut bad = format!("GET {SMALL} HTTP/1.1\r\nHost: x\r\nX-Junk: ").into_bytes();
    bad.extend_from_slice(b"\xff\xfe\xc3\x28\r\nRange: bytes=\xff-\r\nIf-None-Match: \"\xe9\"\r\n");
    bad.extend_from_slice(b"Connection: close\r\n\r\n");
    let r = probe(&env, &bad).await;
    assert_eq!(r.len(), 1);
    assert!([400, 416].contains(&r[0].status), "{}", r[0].status);
    // Non-UTF-8 in the query (token, filename) is not a crash.
    let r = probe(
        &env,
        &get_req(&format!("{SMALL}?filename=%ff%fe&token=%c3%28"), ""),
    )
    .await;
    assert_eq!(r[0].status, 200);
    // HTTP/1.0 without Host.
    let r = probe(&env, format!("GET {SMALL} HTTP/1.0\r\n\r\n").as_bytes()).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].body.len(), SMALL_LEN);
    // HTTP/0.9-style and unknown versions.
    let r = send(env.addr(), format!("GET {SMALL}\r\n\r\n").as_bytes(), false).await;
    assert!(r.iter().all(|w| w.status >= 400), "{r:?}");
    alive(env.addr()).await;
    // Absolute-form: the path counts, the authority does not pick files.
    let r = probe(&env, &get_req(&format!("http://evil.example{SMALL}"), "")).await;
    assert_eq!(r[0].status, 200);
    let r = probe(
        &env,
        &get_req(
            "http://evil.example/group1/M00/00/00/../../../canary.txt",
            "",
        ),
    )
    .await;
    assert!([400, 404].contains(&r[0].status));
    // Other methods.
    for m in [
        "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "FOO",
    ] {
        let target = if m == "CONNECT" {
            "evil.example:443"
        } else {
            SMALL
        };
        let r = probe(
            &env,
            format!("{m} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert!(
            r.iter().all(|w| [400, 405, 501].contains(&w.status)),
            "{m}: {r:?}"
        );
    }
    // HEAD is well-framed too: headers only.
    let r = send(
        env.addr(),
        format!("HEAD {SMALL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        true,
    )
    .await;
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].header("content-length").as_deref(), Some("3300"));
}

#[tokio::test]
async fn host_spoofing_never_reaches_the_location() {
    let env = start().await;
    // Not local, sourced from the peer, recent: redirected to the peer.
    let b = IdBuilder::new()
        .source(Source::Ip(PEER.parse().unwrap()))
        .create_ts(now())
        .size(10)
        .extension("txt");
    let target = format!("/group1/{}", b.build_remote());
    let port = env.addr().port();
    let want_prefix = format!("http://{PEER}:{port}/group1/");
    for (t, extra) in [
        (target.clone(), "".to_string()),
        (target.clone(), "X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nForwarded: host=evil.example\r\n".into()),
        (format!("http://evil.example:666{target}"), "".into()),
        (format!("{target}?x=1"), "X-Host: evil.example\r\n".into()),
    ] {
        for host in ["evil.example", "evil.example:80", "127.0.0.1@evil.example", ""] {
            let req = format!(
                "GET {t} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n"
            );
            let r = probe(&env, req.as_bytes()).await;
            assert_eq!(r.len(), 1);
            let w = &r[0];
            if w.status == 400 {
                continue; // e.g. an empty or malformed Host refused
            }
            assert_eq!(w.status, 302, "{req:?}");
            let loc = w.header("location").expect("Location");
            assert!(loc.starts_with(&want_prefix), "{loc}");
            assert!(!loc.contains("evil"), "{loc}");
            assert!(!loc.contains('@'), "{loc}");
        }
    }
    // A CRLF smuggled into the query does not split the Location header.
    let r = probe(
        &env,
        &get_req(&format!("{target}?a=%0d%0aSet-Cookie:%20x=1"), ""),
    )
    .await;
    assert!(r[0].header("set-cookie").is_none());
}
