//! The upload API without FastDFS daemons (docs/upload.md): everything
//! decided before a tracker or storage is contacted, through real sockets.
//! A listener standing where the tracker would be counts connections, so
//! each refusal also proves nothing was contacted. The flows that store
//! files run against a real cluster in tests/e2e_upload.rs.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fdfs_httpd::upload::auth::{sign, string_to_sign};
use support::{raw, Resp, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "0123456789abcdef0123";

/// A listener where the tracker would be: reads each request header and
/// never answers; counts the requests that would store, change or delete
/// a file (QUERY_STORE 101/104, QUERY_UPDATE 103). The server's own
/// background refresh (other commands) is not counted.
async fn silent_tracker(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut h = [0u8; 10];
                if s.read_exact(&mut h).await.is_ok() && matches!(h[8], 101 | 103 | 104) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    (addr, n)
}

fn conf(store: &Path, tracker: SocketAddr, extra: &str) -> String {
    format!(
        "group_name=group1\nstore_path0={}\ntracker_server={tracker}\nurl_have_group_name=true\n\
         connect_timeout=2\nnetwork_timeout=2\n\
         upload.enabled = true\nupload.stall_timeout = 1s\n\
         upload.app = shop key={KEY} rights=upload,delete max_size=1K\n\
         upload.app = reader key=fedcba9876543210fedc rights=delete\n\
         upload.app = signed key=abcdefabcdefabcdefab auth=hmac ext=jpg,png\n\
         upload.app = far key=farfarfarfarfarfarfa networks=10.0.0.0/8\n{extra}",
        store.display()
    )
}

async fn start(ip: &str, extra: &str) -> (Server, Arc<AtomicUsize>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("data")).unwrap();
    let (tracker, seen) = silent_tracker(ip).await;
    let s = Server::start(&conf(&store, tracker, extra), dir.path(), ip).await;
    (s, seen, dir)
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "{} not JSON ({e}): {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
    })
}

fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let j = json(r);
    assert_eq!(j["error"], code, "{j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
}

/// A request with a body and `Connection: close`.
async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Resp {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    // Boxed: the tests' own futures stay small (many requests in a row).
    Box::pin(async move { raw(addr, &bytes, false).await }).await
}

fn keyed(app: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Fdfs-App-Id", app.to_owned()),
        ("X-Fdfs-App-Key", key.to_owned()),
    ]
}

fn signed(
    app: &str,
    key: &str,
    method: &str,
    path: &str,
    ts: i64,
    len: usize,
) -> Vec<(&'static str, String)> {
    let msg = string_to_sign(method, path, &ts.to_string(), Some(len as u64));
    vec![
        ("X-Fdfs-App-Id", app.to_owned()),
        ("X-Fdfs-Timestamp", ts.to_string()),
        ("X-Fdfs-Signature", sign(key.as_bytes(), &msg)),
    ]
}

fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, file, data) in parts {
        b.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => b.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => b.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

fn mp(boundary: &str) -> (&'static str, String) {
    (
        "Content-Type",
        format!("multipart/form-data; boundary={boundary}"),
    )
}

#[tokio::test]
async fn off_by_default_file_serving_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("data")).unwrap();
    let c = format!(
        "group_name=group1\nstore_path0={}\nurl_have_group_name=true\n",
        store.display()
    );
    let s = Server::start(&c, dir.path(), "127.0.14.1").await;
    let r = send(
        s.addr,
        "PUT",
        "/api/upload/a.txt",
        &keyed("shop", KEY),
        b"hello",
    )
    .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD"));
    let r = support::get(s.addr, "/api/download/group1/M00/00/00/x.txt").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    s.stop().await;
}

#[tokio::test]
async fn credentials_are_checked_before_anything_is_contacted() {
    let (s, seen, _dir) = start("127.0.14.2", "").await;
    let a = s.addr;
    let path = "/api/upload/a.txt";
    let now = support::now();
    // Missing, wrong key, unknown app, key for a signing-only app.
    assert_error(
        &send(a, "PUT", path, &[], b"hello").await,
        401,
        "unauthorized",
    );
    assert_error(
        &send(
            a,
            "PUT",
            path,
            &keyed("shop", "0123456789abcdef0124"),
            b"hello",
        )
        .await,
        401,
        "unauthorized",
    );
    assert_error(
        &send(a, "PUT", path, &keyed("nobody", KEY), b"hello").await,
        401,
        "unauthorized",
    );
    assert_error(
        &send(
            a,
            "PUT",
            path,
            &keyed("signed", "abcdefabcdefabcdefab"),
            b"hello",
        )
        .await,
        401,
        "unauthorized",
    );
    // Signatures: wrong key, expired, from the future, over another length.
    let png = "/api/upload/a.png";
    assert_error(
        &send(
            a,
            "PUT",
            png,
            &signed("signed", "abcdefabcdefabcdefaX", "PUT", png, now, 5),
            b"hello",
        )
        .await,
        401,
        "unauthorized",
    );
    assert_error(
        &send(
            a,
            "PUT",
            png,
            &signed("signed", "abcdefabcdefabcdefab", "PUT", png, now - 301, 5),
            b"hello",
        )
        .await,
        401,
        "unauthorized",
    );
    assert_error(
        &send(
            a,
            "PUT",
            png,
            &signed("signed", "abcdefabcdefabcdefab", "PUT", png, now + 400, 5),
            b"hello",
        )
        .await,
        401,
        "unauthorized",
    );
    assert_error(
        &send(
            a,
            "PUT",
            png,
            &signed("signed", "abcdefabcdefabcdefab", "PUT", png, now, 4),
            b"hello",
        )
        .await,
        401,
        "unauthorized",
    );
    // A right the app lacks, a network it is not allowed from: 403.
    assert_error(
        &send(
            a,
            "PUT",
            path,
            &keyed("reader", "fedcba9876543210fedc"),
            b"hello",
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &send(
            a,
            "PUT",
            path,
            &keyed("far", "farfarfarfarfarfarfa"),
            b"hello",
        )
        .await,
        403,
        "forbidden",
    );
    let del = "/api/files/group1/M00/00/00/wKgAAmZ6cJ2AAAAAAAAAAAAAAAA123.txt";
    assert_error(
        &send(
            a,
            "DELETE",
            del,
            &keyed("signed", "abcdefabcdefabcdefab"),
            b"",
        )
        .await,
        401,
        "unauthorized",
    );
    // Form fields authenticate too; a wrong one is refused the same way.
    let b = form(
        "XyZ",
        &[
            ("app_id", None, b"shop"),
            ("app_key", None, b"nope-nope-nope-nope"),
            ("fastdfs", Some("a.txt"), b"hello"),
        ],
    );
    assert_error(
        &send(a, "POST", "/api/upload", &[mp("XyZ")], &b).await,
        401,
        "unauthorized",
    );
    // A valid signature on an extension the app may not store: 415.
    let txt = "/api/upload/a.txt";
    assert_error(
        &send(
            a,
            "PUT",
            txt,
            &signed("signed", "abcdefabcdefabcdefab", "PUT", txt, now, 5),
            b"hello",
        )
        .await,
        415,
        "extension_not_allowed",
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0, "the tracker was contacted");
    assert!(s.app.uploads.count("upload", Some("unauthorized")) >= 9);
    let st = support::request(a, "GET", "/api/nothing", &[]).await;
    assert_error(&st, 404, "not_found");
    let r = support::request(a, "GET", "/api/upload", &[]).await;
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
    s.stop().await;
}

#[tokio::test]
async fn size_limit_answers_413_without_storing() {
    let (s, seen, _dir) = start("127.0.14.3", "").await;
    let a = s.addr;
    // Raw body announced too large: refused from the head, body unsent.
    let mut c = TcpStream::connect(a).await.unwrap();
    let head = format!("PUT /api/upload/big.bin HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: shop\r\nX-Fdfs-App-Key: {KEY}\r\nContent-Length: 1025\r\n\r\n");
    c.write_all(head.as_bytes()).await.unwrap();
    let r = support::read_response(&mut c, false).await;
    assert_error(&r, 413, "too_large");
    // Multipart, credentials in fields before the file: the part crosses
    // the limit mid-stream. Only part of the announced body is sent, so the
    // answer can only be 413 if the cut comes as the limit is crossed (a
    // server that waited for the rest would answer 408 after the stall).
    let big = vec![b'x'; 4096];
    let b = form(
        "Bnd",
        &[
            ("app_id", None, b"shop"),
            ("app_key", None, KEY.as_bytes()),
            ("fastdfs", Some("big.bin"), &big),
        ],
    );
    let mut c = TcpStream::connect(a).await.unwrap();
    let head = "POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=Bnd\r\nContent-Length: 60000\r\n\r\n";
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&b[..b.len() - 16]).await.unwrap();
    assert_error(
        &support::read_response(&mut c, false).await,
        413,
        "too_large",
    );
    // Multipart with header credentials and a Content-Length far too big.
    let mut c = TcpStream::connect(a).await.unwrap();
    let head = format!("POST /api/upload HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: shop\r\nX-Fdfs-App-Key: {KEY}\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 10000000\r\n\r\n");
    c.write_all(head.as_bytes()).await.unwrap();
    assert_error(
        &support::read_response(&mut c, false).await,
        413,
        "too_large",
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0, "the tracker was contacted");
    s.stop().await;
}

#[tokio::test]
async fn malformed_multipart_is_400() {
    let (s, seen, _dir) = start("127.0.14.4", "").await;
    let a = s.addr;
    let creds = |mut h: Vec<(&'static str, String)>, ct: (&'static str, String)| {
        h.push(ct);
        h
    };
    let k = || keyed("shop", KEY);
    // No boundary; not multipart at all.
    let r = send(
        a,
        "POST",
        "/api/upload",
        &creds(k(), ("Content-Type", "multipart/form-data".into())),
        b"--x\r\n",
    )
    .await;
    assert_error(&r, 400, "bad_request");
    let r = send(
        a,
        "POST",
        "/api/upload",
        &creds(k(), ("Content-Type", "text/plain".into())),
        b"hello",
    )
    .await;
    assert_error(&r, 400, "bad_request");
    // No fastdfs field.
    let b = form("B1", &[("other", None, b"v")]);
    let r = send(a, "POST", "/api/upload", &creds(k(), mp("B1")), &b).await;
    assert_error(&r, 400, "bad_request");
    assert!(json(&r)["message"].as_str().unwrap().contains("fastdfs"));
    // Two files.
    let b = form(
        "B2",
        &[
            ("fastdfs", Some("a.txt"), b"a"),
            ("fastdfs", Some("b.txt"), b"b"),
        ],
    );
    assert_error(
        &send(a, "POST", "/api/upload", &creds(k(), mp("B2")), &b).await,
        400,
        "bad_request",
    );
    let b = form(
        "B3",
        &[
            ("fastdfs", Some("a.txt"), b"a"),
            ("other", Some("b.txt"), b"b"),
        ],
    );
    assert_error(
        &send(a, "POST", "/api/upload", &creds(k(), mp("B3")), &b).await,
        400,
        "bad_request",
    );
    // A part that never ends: the body stops before the closing boundary.
    let b = b"--B4\r\nContent-Disposition: form-data; name=\"fastdfs\"; filename=\"a.txt\"\r\n\r\nhello and then nothing";
    assert_error(
        &send(a, "POST", "/api/upload", &creds(k(), mp("B4")), b).await,
        400,
        "bad_request",
    );
    // Garbage instead of parts.
    assert_error(
        &send(
            a,
            "POST",
            "/api/upload",
            &creds(k(), mp("B5")),
            b"\x00\x01\x02garbage",
        )
        .await,
        400,
        "bad_request",
    );
    // A text field longer than 8 KiB.
    let long = vec![b'a'; 9000];
    let b = form(
        "B6",
        &[("meta.note", None, &long), ("fastdfs", Some("a.txt"), b"a")],
    );
    assert_error(
        &send(a, "POST", "/api/upload", &creds(k(), mp("B6")), &b).await,
        400,
        "bad_request",
    );
    // A part head that never ends: refused once 2 MiB of framing piled up.
    let mut b = b"--B8\r\nContent-Disposition: form-data; name=\"fastdfs\"; X-Pad: ".to_vec();
    b.resize(3 << 20, b'a');
    // (10 MiB announced, 3 MiB sent: the answer comes while the body is
    // still open, not from the stall timeout or the body's end.)
    let mut c = TcpStream::connect(a).await.unwrap();
    let head = "POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B8\r\nContent-Length: 10485760\r\n\r\n";
    c.write_all(head.as_bytes()).await.unwrap();
    let _ = c.write_all(&b).await;
    let r = Box::pin(support::read_response(&mut c, false)).await;
    assert_error(&r, 400, "bad_request");
    assert!(
        json(&r)["message"].as_str().unwrap().contains("2 MiB"),
        "{:?}",
        json(&r)
    );
    // Metadata the storage could not keep: refused before anything is stored.
    let long = vec![b'v'; 300];
    let b = form(
        "B9",
        &[("meta.note", None, &long), ("fastdfs", Some("a.txt"), b"a")],
    );
    assert_error(
        &send(a, "POST", "/api/upload", &creds(k(), mp("B9")), &b).await,
        400,
        "bad_request",
    );
    let r = send(
        a,
        "PUT",
        "/api/upload/a.txt",
        &creds(k(), ("X-Fdfs-Meta-Note", "x".repeat(300))),
        b"a",
    )
    .await;
    assert_error(&r, 400, "bad_request");
    // An invalid explicit extension.
    let b = form(
        "B7",
        &[("ext", None, b"../x"), ("fastdfs", Some("a.txt"), b"a")],
    );
    assert_error(
        &send(a, "POST", "/api/upload", &creds(k(), mp("B7")), &b).await,
        400,
        "bad_request",
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0, "the tracker was contacted");
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_body_is_dropped_and_its_slot_freed() {
    let (s, seen, _dir) = start("127.0.14.5", "upload.max_concurrent = 1\n").await;
    let a = s.addr;
    // Announces 100 bytes of multipart, sends the head of a part, stalls.
    let mut c = TcpStream::connect(a).await.unwrap();
    let head = format!("POST /api/upload HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: shop\r\nX-Fdfs-App-Key: {KEY}\r\nContent-Type: multipart/form-data; boundary=S\r\nContent-Length: 300\r\n\r\n--S\r\nContent-Disposition: form-data; name=\"fastdfs\"; filename=\"a.txt\"\r\n\r\nabc");
    c.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The only slot is taken: 503 + Retry-After.
    let r = send(a, "PUT", "/api/upload/b.txt", &keyed("shop", KEY), b"hello").await;
    assert_error(&r, 503, "busy");
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    let t = Instant::now();
    let r = support::read_response(&mut c, false).await;
    assert_error(&r, 408, "timeout");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut rest)).await;
    assert_eq!(s.app.uploads.in_progress(), 0);
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    s.stop().await;
}

#[tokio::test]
async fn tracker_down_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("data")).unwrap();
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.14.6:0").unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    let log = dir.path().join("access.log");
    let extra = format!("access_log = {}\n", log.display());
    let s = Server::start(&conf(&store, dead, &extra), dir.path(), "127.0.14.6").await;
    let r = send(
        s.addr,
        "PUT",
        "/api/upload/a.txt",
        &keyed("shop", KEY),
        b"hello",
    )
    .await;
    assert_error(&r, 503, "tracker_unavailable");
    assert!(r.header("retry-after").is_some());
    let b = form(
        "T",
        &[
            ("app_id", None, b"shop"),
            ("app_key", None, KEY.as_bytes()),
            ("fastdfs", Some("a.txt"), b"hello"),
        ],
    );
    assert_error(
        &send(s.addr, "POST", "/api/upload", &[mp("T")], &b).await,
        503,
        "tracker_unavailable",
    );
    let del = "/api/files/group1/M00/00/00/abc.txt";
    assert_error(
        &send(s.addr, "DELETE", del, &keyed("shop", KEY), b"").await,
        503,
        "tracker_unavailable",
    );
    assert_eq!(
        s.app.uploads.count("upload", Some("tracker_unavailable")),
        2
    );
    let r = send(
        s.addr,
        "PUT",
        "/api/upload/a.txt",
        &keyed("shop", "wrong-wrong-wrong-wrong"),
        b"x",
    )
    .await;
    assert_error(&r, 401, "unauthorized");
    // Access log: the app's outcome once authenticated, `refused` before.
    let t = Instant::now();
    let served = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let served: Vec<String> = text
            .lines()
            .filter_map(|l| l.rsplit(' ').next())
            .map(str::to_owned)
            .collect();
        if served.len() >= 4 || t.elapsed() > Duration::from_secs(5) {
            break served;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        served,
        ["upload:shop", "upload:shop", "delete:shop", "refused"]
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains(KEY) && !text.contains("wrong-wrong"),
        "a key in the log: {text}"
    );
    // /status and /metrics count them; no key anywhere.
    let status = fdfs_httpd::admin::status_json(&s.app, &s.app.state());
    let j: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(j["uploads"]["ok"], 0);
    assert_eq!(j["uploads"]["failed"], 3);
    assert_eq!(j["uploads"]["in_progress"], 0);
    assert!(!status.contains(KEY));
    let mut m = String::new();
    s.app.uploads.render(&mut m);
    for line in [
        "fdfs_upload_requests_total{op=\"upload\",app=\"shop\",result=\"tracker_unavailable\"} 2",
        "fdfs_upload_requests_total{op=\"delete\",app=\"shop\",result=\"tracker_unavailable\"} 1",
        "fdfs_upload_requests_total{op=\"upload\",app=\"\",result=\"unauthorized\"} 1",
    ] {
        assert!(m.contains(line), "{line} not in {m}");
    }
    s.stop().await;
}

#[test]
fn check_config_reports_bad_upload_keys_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let path = dir.path().join("mod_fastdfs.conf");
    std::fs::write(
        &path,
        format!(
            "group_name=group1\nstore_path0={}\nlisten=127.0.14.7:8888\nupload.enabled=true\n\
             upload.app = shop key=tooshort\nupload.prefix = api\n",
            store.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    let p = path.display().to_string();
    assert!(
        text.contains(&format!("{p}:5: upload.app: app shop: the key must be")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{p}:6: upload.prefix = api")),
        "{text}"
    );
    assert!(!text.contains("tooshort"), "the key was printed: {text}");
}

/// `A_jpg` of the real fixture (2809 bytes).
const JPG: &str = "group1/M00/00/00/fwAAAmsGte2AfD5bAAAK-QVmom4187.jpg";

#[tokio::test]
async fn download_and_preview_serve_local_files_and_anti_steal_spares_apps() {
    let dir = tempfile::tempdir().unwrap();
    let store = support::real_store("A", dir.path());
    let bytes = std::fs::read(store.join("data/00/00/fwAAAmsGte2AfD5bAAAK-QVmom4187.jpg")).unwrap();
    let (tracker, _) = silent_tracker("127.0.14.8").await;
    let extra = "http.anti_steal.check_token=true\nhttp.anti_steal.token_ttl=900\n\
                 http.anti_steal.secret_key=FastDFS1234567890\nstorage_sync_file_max_delay=86400\n\
                 local_ip_addrs=127.0.0.2\nconnect_timeout=1\n";
    let s = Server::start(&conf(&store, tracker, extra), dir.path(), "127.0.14.8").await;
    let a = s.addr;
    // Without a token: the anti-steal rules (missing token: 400, as the module).
    let r = support::get(a, &format!("/api/preview/{JPG}")).await;
    assert_eq!(r.status, 400);
    // A download the token check refuses costs no metadata lookup (the
    // silent tracker would hold it for 2 s: two 1 s network timeouts).
    let t = Instant::now();
    let r = support::get(a, &format!("/api/download/{JPG}")).await;
    assert_eq!(r.status, 400);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // Authenticated as an app: served, inline, Range honoured.
    let h = [
        ("X-Fdfs-App-Id", "shop"),
        ("X-Fdfs-App-Key", KEY),
        ("Range", "bytes=0-9"),
    ];
    let r = support::request(a, "GET", &format!("/api/preview/{JPG}"), &h).await;
    assert_eq!((r.status, r.body.as_slice()), (206, &bytes[..10]));
    assert_eq!(r.header("content-disposition").as_deref(), Some("inline"));
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    // Download: attachment named by ?filename= (the tracker is silent, so
    // without it the name falls back to the ID's within 3 s).
    let h = [("X-Fdfs-App-Id", "shop"), ("X-Fdfs-App-Key", KEY)];
    let r = support::request(
        a,
        "GET",
        &format!("/api/download/{JPG}?filename=Gr%C3%BC%C3%9Fe.jpg"),
        &h,
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, bytes.len()));
    let cd = r.header("content-disposition").unwrap();
    assert!(cd.contains("filename*=UTF-8''Gr%C3%BC%C3%9Fe.jpg"), "{cd}");
    let t = Instant::now();
    let r = support::request(a, "HEAD", &format!("/api/download/{JPG}"), &h).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(6));
    let cd = r.header("content-disposition").unwrap();
    assert!(
        cd.starts_with("attachment; filename=\"fwAAAmsGte2AfD5bAAAK-QVmom4187.jpg\""),
        "{cd}"
    );
    // Wrong credentials: 401, not a file.
    let h = [
        ("X-Fdfs-App-Id", "shop"),
        ("X-Fdfs-App-Key", "nope-nope-nope-nope"),
    ];
    let r = support::request(a, "GET", &format!("/api/preview/{JPG}"), &h).await;
    assert_error(&r, 401, "unauthorized");
    // Not a file ID.
    let r = support::request(a, "GET", "/api/preview/group1/..%2F..%2Fetc/passwd", &[]).await;
    assert_error(&r, 400, "bad_request");
    // The file URL itself is unchanged.
    assert_eq!(support::get(a, &format!("/{JPG}")).await.status, 400);
    s.stop().await;
}

/// A tracker naming one storage for every QUERY_STORE (101), and that
/// storage taking UPLOAD_FILE (11) and SET_METADATA (13) as the real one
/// does: the content of each upload is recorded, and the name it gives
/// carries the content's crc32.
async fn storing_cluster(ip: &str) -> (SocketAddr, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    use fdfs_httpd::fileid::{IdBuilder, Source};
    use fdfs_httpd::proto::frame::reply;
    use fdfs_httpd::proto::upload::StoreTarget;
    let storage = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let saddr = storage.local_addr().unwrap();
    let stored = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = stored.clone();
    answer_frames(storage, move |cmd, body| match cmd {
        11 => {
            let content = body[15..].to_vec();
            let remote = IdBuilder::new()
                .group("group1")
                .source(Source::from_bytes([127, 0, 14, 9]))
                .create_ts(1_700_000_000)
                .size(content.len() as u64)
                .crc32(crc32fast::hash(&content))
                .extension("bin")
                .build_remote();
            kept.lock().unwrap().push(content);
            let mut r = b"group1".to_vec();
            r.resize(16, 0);
            r.extend_from_slice(remote.as_bytes());
            reply(0, &r)
        }
        13 => reply(0, b""),
        _ => reply(22, b""),
    });
    let tracker = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let taddr = tracker.local_addr().unwrap();
    let target = StoreTarget {
        group: "group1".into(),
        ip: saddr.ip().to_string(),
        port: saddr.port(),
        store_path_index: 0,
    }
    .encode();
    answer_frames(tracker, move |cmd, _| match cmd {
        101 => reply(0, &target),
        _ => reply(22, b""),
    });
    (taddr, stored)
}

/// Answers every FastDFS request on `l` (header, then a body of at most
/// 8 MiB) with `respond(cmd, body)`, connections kept open.
fn answer_frames<F>(l: TcpListener, respond: F)
where
    F: Fn(u8, Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
{
    let respond = Arc::new(respond);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let respond = respond.clone();
            tokio::spawn(async move {
                let mut h = [0u8; 10];
                while s.read_exact(&mut h).await.is_ok() {
                    let len = u64::from_be_bytes(h[..8].try_into().unwrap());
                    let mut body = vec![0u8; usize::try_from(len.min(8 << 20)).unwrap()];
                    if s.read_exact(&mut body).await.is_err()
                        || s.write_all(&respond(h[8], body)).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
}

/// Raw PUTs on plain HTTP/1.1: the body goes from the client's socket to
/// the storage's (spliced), after `100 Continue` when asked; a body that
/// came with its head, and another request on the same connection; a
/// client that stops early gets an error, never success.
#[tokio::test]
async fn raw_put_bodies_reach_the_storage_byte_for_byte() {
    let ip = "127.0.14.9";
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("data")).unwrap();
    let (tracker, stored) = storing_cluster(ip).await;
    let extra = "upload.app = big key=bigbigbigbigbigbigbigbig max_size=8M\n";
    let s = Server::start(&conf(&store, tracker, extra), dir.path(), ip).await;
    let data: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PUT /api/upload/a.bin HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: big\r\nX-Fdfs-App-Key: bigbigbigbigbigbigbigbig\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let want = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = [0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut got))
        .await
        .expect("100 Continue within 5 s")
        .unwrap();
    assert_eq!(&got, want);
    for piece in data.chunks(100_000) {
        c.write_all(piece).await.unwrap();
    }
    let r = support::read_response(&mut c, false).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = json(&r);
    assert_eq!(j["size"], data.len());
    assert_eq!(j["crc32"], crc32fast::hash(&data));
    // The same connection: a small body sent with its head.
    let small = b"small body, one packet";
    let mut req = format!(
        "PUT /api/upload/b.bin HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: big\r\nX-Fdfs-App-Key: bigbigbigbigbigbigbigbig\r\nContent-Length: {}\r\n\r\n",
        small.len()
    )
    .into_bytes();
    req.extend_from_slice(small);
    c.write_all(&req).await.unwrap();
    let r = support::read_response(&mut c, false).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["crc32"], crc32fast::hash(small));
    {
        let kept = stored.lock().unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept[0] == data, "first upload differs");
        assert_eq!(kept[1], small);
    }
    // Refused before the body is read: the answer comes without waiting
    // for the body (no 100 Continue), and the connection closes.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = "PUT /api/upload/d.bin HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: big\r\nX-Fdfs-App-Key: wrong-wrong-wrong-wrong\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n";
    c.write_all(head.as_bytes()).await.unwrap();
    let r = support::read_response(&mut c, false).await;
    assert_error(&r, 401, "unauthorized");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    // A client that stops half-way: an error, and nothing more stored.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PUT /api/upload/c.bin HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: big\r\nX-Fdfs-App-Key: bigbigbigbigbigbigbigbig\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&data[..data.len() / 2]).await.unwrap();
    c.shutdown().await.unwrap();
    let r = support::read_response(&mut c, false).await;
    assert_error(&r, 400, "bad_request");
    assert_eq!(stored.lock().unwrap().len(), 2);
    s.stop().await;
}
