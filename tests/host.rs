//! RFC 9112 §3.2: an HTTP/1.1 request without `Host`, or with more than
//! one, is answered 400; on the plain h1 path and on hyper's (a request
//! with a body is handed to hyper). HTTP/1.0 may omit it.

mod support;

use support::*;

const SMALL: &str = "/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";

#[tokio::test]
async fn host_is_required_once_on_both_http1_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let store = real_store("A", tmp.path());
    let dir = tmp.path().join("conf");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = real_conf(&store, "127.0.0.44", "127.0.0.44", "proxy", 86400);
    let server = Server::start(&conf, &dir, "127.0.0.44").await;
    // (request head fields after the request line, expected status)
    let cases: [(&str, &str, u16); 5] = [
        ("HTTP/1.1", "Host: a\r\n", 200),
        ("HTTP/1.1", "", 400),
        ("HTTP/1.1", "Host: a\r\nHost: b\r\n", 400),
        ("HTTP/1.1", "Host: a\r\nX: y\r\nhost: a\r\n", 400),
        ("HTTP/1.0", "", 200),
    ];
    for (version, fields, want) in cases {
        for body in ["", "hello"] {
            let framing = if body.is_empty() {
                String::new()
            } else {
                format!("Content-Length: {}\r\n", body.len())
            };
            let req = format!(
                "GET {SMALL} {version}\r\n{fields}{framing}Connection: close\r\n\r\n{body}"
            );
            let r = raw(server.addr, req.as_bytes(), false).await;
            let path = if body.is_empty() { "h1" } else { "hyper" };
            assert_eq!(r.status, want, "{path}: {req:?}");
            assert!(r.complete, "{path}: {req:?}");
            if want == 200 {
                assert_eq!(r.body.len(), 3300);
            }
        }
    }
    server.stop().await;
}
