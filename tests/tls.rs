//! TLS listeners (issue 5 item 1): a real rustls client trusting a CA made
//! at test time fetches over HTTP/1.1 and over HTTP/2 chosen by ALPN
//! (Range, multi-range, redirect with `peer_scheme = https`), h2c prior
//! knowledge on plain listeners only with `http2_cleartext = true`, a
//! certificate swapped on disk is served after a reload, a bad one is
//! rejected, and `--check-config` checks the TLS files.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use fdfs_httpd::process::reload::ReloadError;
use fdfs_httpd::tls::TlsError;
use fdfs_httpd::transport::Kind;
use support::test_ca::{stray_key_pem, Leaf, TestCa};
use support::*;

const SMALL: &str = "/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
const SMALL_REL: &str = "data/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
const ONLY_A: &str = "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const T: Duration = Duration::from_secs(10);

/// Writes `text` to `path` through a rename, like certificate tools do.
fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Site {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: PathBuf,
    ca: TestCa,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
    leaf_der: Vec<u8>,
}

impl Site {
    fn new(node: &str) -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let store = real_store(node, tmp.path());
        let dir = tmp.path().join("conf");
        std::fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::new();
        let leaf = ca.leaf("localhost");
        let ca_file = dir.join("ca.pem");
        let cert_file = dir.join("cert.pem");
        let key_file = dir.join("key.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(&cert_file, leaf.chain_pem).unwrap();
        std::fs::write(&key_file, leaf.key_pem).unwrap();
        Site {
            dir,
            store,
            ca,
            ca_file,
            cert_file,
            key_file,
            leaf_der: leaf.der,
            _tmp: tmp,
        }
    }

    /// Writes mod_fastdfs.conf: the real-node settings plus `extra`.
    fn conf(&self, local_ip: &str, mode: &str, extra: &str) -> PathBuf {
        let text = format!(
            "{}tls_cert_file = {}\ntls_key_file = {}\n{extra}",
            real_conf(
                &self.store,
                local_ip,
                "127.0.0.2,127.0.0.3",
                mode,
                recorded_max_delay(1_795_601_849)
            ),
            self.cert_file.display(),
            self.key_file.display(),
        );
        let path = self.dir.join("mod_fastdfs.conf");
        std::fs::write(&path, text).unwrap();
        path
    }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_connect(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Tls {
    let tcp = tokio::time::timeout(T, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(T, tokio_rustls::TlsConnector::from(cfg).connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

fn peer_leaf(s: &Tls) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// A response with its body collected.
struct Got {
    status: StatusCode,
    version: Version,
    headers: http::HeaderMap,
    body: Bytes,
}

async fn collect(r: http::Response<hyper::body::Incoming>) -> Got {
    let (parts, body) = r.into_parts();
    let body = tokio::time::timeout(T, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    Got {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

type H2 = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

async fn h2<IO>(io: IO) -> hyper::Result<H2>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok(send)
}

async fn h2_get(send: &mut H2, scheme: &str, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut b = Request::get(format!("{scheme}://localhost{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = tokio::time::timeout(T, send.send_request(b.body(Empty::new()).unwrap()))
        .await
        .unwrap()
        .expect("h2 response");
    collect(r).await
}

async fn h1_get<IO>(io: IO, path: &str) -> Got
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let r = tokio::time::timeout(T, send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    collect(r).await
}

fn header(g: &Got, name: &str) -> String {
    g.headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn tls_serves_http11_and_h2_by_alpn_with_ranges() {
    let site = Site::new("A");
    let conf = site.conf(
        "127.0.0.2",
        "proxy",
        &format!(
            "listen = 127.0.0.21:0\ntls_listen = 127.0.0.22:0\npeer_ca_file = {}\n",
            site.ca_file.display()
        ),
    );
    let srv = Running::start(&conf).await;
    let tls_addr = srv.first_addr(Kind::Https);
    let file = std::fs::read(site.store.join(SMALL_REL)).unwrap();

    // HTTP/1.1 with the crate's own peer client config (ALPN http/1.1).
    let peer_cfg = fdfs_httpd::tls::client_config_for(&srv.reloader.app().state().config)
        .unwrap()
        .expect("peer TLS configuration");
    let s = tls_connect(tls_addr, peer_cfg).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(peer_leaf(&s), site.leaf_der);
    let g = h1_get(s, SMALL).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.version, Version::HTTP_11);
    assert_eq!(g.body, file);

    // HTTP/2 chosen by ALPN.
    let s = tls_connect(tls_addr, site.ca.client_config(&[b"h2", b"http/1.1"])).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut send = h2(s).await.expect("h2 handshake");
    let g = h2_get(&mut send, "https", SMALL, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.version, Version::HTTP_2);
    assert_eq!(g.body, file);
    assert_eq!(header(&g, "content-length"), "3300");

    // Range on the same h2 connection (streams multiplexed).
    let g = h2_get(&mut send, "https", SMALL, &[("range", "bytes=10-19")]).await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(g.version, Version::HTTP_2);
    assert_eq!(header(&g, "content-range"), "bytes 10-19/3300");
    assert_eq!(&g.body[..], &file[10..20]);

    // Multi-range: multipart/byteranges with both parts.
    let g = h2_get(&mut send, "https", SMALL, &[("range", "bytes=0-4,100-109")]).await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    let ct = header(&g, "content-type");
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let body = &g.body[..];
    let find = |needle: &[u8]| body.windows(needle.len()).position(|w| w == needle);
    let p1 = find(b"Content-range: bytes 0-4/3300\r\n\r\n").expect("part 1");
    let p2 = find(b"Content-range: bytes 100-109/3300\r\n\r\n").expect("part 2");
    let d1 = p1 + b"Content-range: bytes 0-4/3300\r\n\r\n".len();
    let d2 = p2 + b"Content-range: bytes 100-109/3300\r\n\r\n".len();
    assert_eq!(&body[d1..d1 + 5], &file[0..5]);
    assert_eq!(&body[d2..d2 + 10], &file[100..110]);
    assert_eq!(
        header(&g, "content-length"),
        body.len().to_string(),
        "multipart length announced"
    );

    // Concurrent streams on one connection.
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let mut send = send.clone();
        tasks.push(tokio::spawn(async move {
            let r = format!("bytes={}-{}", i * 100, i * 100 + 99);
            let g = h2_get(&mut send, "https", SMALL, &[("range", r.as_str())]).await;
            (i, g.status, g.body)
        }));
    }
    for t in tasks {
        let (i, st, b) = t.await.unwrap();
        assert_eq!(st, StatusCode::PARTIAL_CONTENT);
        let i = i as usize;
        assert_eq!(&b[..], &file[i * 100..i * 100 + 100]);
    }

    // The plain listener beside it still speaks HTTP/1.1.
    let r = get(srv.first_addr(Kind::Http), SMALL).await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn redirect_over_h2_uses_peer_scheme() {
    let site = Site::new("B");
    let conf = site.conf(
        "127.0.0.3",
        "redirect",
        "listen = 127.0.0.23:0\ntls_listen = 127.0.0.24:0\npeer_scheme = https\n",
    );
    let srv = Running::start(&conf).await;
    let tls_addr = srv.first_addr(Kind::Https);
    let s = tls_connect(tls_addr, site.ca.client_config(&[b"h2"])).await;
    let mut send = h2(s).await.unwrap();
    let g = h2_get(&mut send, "https", ONLY_A, &[]).await;
    assert_eq!(g.version, Version::HTTP_2);
    assert_eq!(g.status, StatusCode::FOUND);
    let loc = header(&g, "location");
    assert_eq!(
        loc,
        format!("https://127.0.0.2:{}{ONLY_A}?redirect=1", tls_addr.port())
    );
    srv.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_only_with_http2_cleartext() {
    let site = Site::new("A");
    let file = std::fs::read(site.store.join(SMALL_REL)).unwrap();

    let conf = site.conf(
        "127.0.0.2",
        "proxy",
        "listen = 127.0.0.25:0\nhttp2_cleartext = true\n",
    );
    let srv = Running::start(&conf).await;
    let addr = srv.first_addr(Kind::Http);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut send = h2(tcp).await.expect("h2c handshake");
    let g = h2_get(&mut send, "http", SMALL, &[("range", "bytes=3290-")]).await;
    assert_eq!(g.version, Version::HTTP_2);
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&g.body[..], &file[3290..]);
    // HTTP/1.1 still works on the same listener.
    assert_eq!(get(addr, SMALL).await.status, 200);
    srv.stop().await;

    let conf = site.conf(
        "127.0.0.2",
        "proxy",
        "listen = 127.0.0.26:0\nhttp2_cleartext = false\n",
    );
    let srv = Running::start(&conf).await;
    let addr = srv.first_addr(Kind::Http);
    let tcp = TcpStream::connect(addr).await.unwrap();
    let refused = match h2(tcp).await {
        Err(_) => true,
        Ok(mut send) => {
            let req = Request::get(format!("http://localhost{SMALL}"))
                .body(Empty::new())
                .unwrap();
            match tokio::time::timeout(T, send.send_request(req)).await {
                Ok(Ok(r)) => panic!("h2c answered without http2_cleartext: {}", r.status()),
                Ok(Err(_)) => true,
                Err(_) => panic!("h2c attempt neither answered nor refused"),
            }
        }
    };
    assert!(refused);
    let r = get(addr, SMALL).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, file);
    srv.stop().await;
}

#[tokio::test]
async fn certificate_swap_on_disk_is_served_after_reload() {
    let site = Site::new("A");
    let conf = site.conf(
        "127.0.0.2",
        "proxy",
        "listen = 127.0.0.27:0\ntls_listen = 127.0.0.28:0\n",
    );
    let srv = Running::start(&conf).await;
    let addr = srv.first_addr(Kind::Https);
    let cfg = site.ca.client_config(&[b"h2", b"http/1.1"]);

    let old = tls_connect(addr, cfg.clone()).await;
    assert_eq!(peer_leaf(&old), site.leaf_der);
    let mut old_send = h2(old).await.unwrap();

    // New chain and key on disk; nothing changes until the reload.
    let Leaf {
        chain_pem: chain,
        key_pem: key,
        der: new_der,
    } = site.ca.leaf("localhost");
    assert_ne!(new_der, site.leaf_der);
    replace_file(&site.key_file, &key);
    replace_file(&site.cert_file, &chain);
    let s = tls_connect(addr, cfg.clone()).await;
    assert_eq!(peer_leaf(&s), site.leaf_der, "served before any reload");
    drop(s);

    let report = srv.reloader.reload().expect("reload");
    assert!(report.added.is_empty() && report.removed.is_empty());
    let s = tls_connect(addr, cfg.clone()).await;
    assert_eq!(
        peer_leaf(&s),
        new_der,
        "new certificate on a new connection"
    );
    let g = h2_get(&mut h2(s).await.unwrap(), "https", SMALL, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    // The connection made before the reload still works.
    let g = h2_get(&mut old_send, "https", SMALL, &[]).await;
    assert_eq!(g.status, StatusCode::OK);

    // A key that does not match is rejected; the current one keeps serving.
    let other = stray_key_pem();
    replace_file(&site.key_file, &other);
    match srv.reloader.reload() {
        Err(ReloadError::Tls(TlsError::KeyMismatch)) => {}
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    // Garbage in the certificate file is rejected too.
    replace_file(&site.key_file, &key);
    replace_file(&site.cert_file, "not a certificate\n");
    assert!(matches!(
        srv.reloader.reload(),
        Err(ReloadError::Tls(TlsError::Empty(_)))
    ));
    let s = tls_connect(addr, site.ca.client_config(&[b"http/1.1"])).await;
    assert_eq!(peer_leaf(&s), new_der);
    assert_eq!(h1_get(s, SMALL).await.status, StatusCode::OK);
    srv.stop().await;
}

#[test]
fn check_config_validates_tls_files() {
    let site = Site::new("A");
    let conf = site.conf(
        "127.0.0.2",
        "proxy",
        &format!(
            "listen = 127.0.0.29:0\ntls_listen = 127.0.0.29:1\npeer_ca_file = {}\n",
            site.ca_file.display()
        ),
    );
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
            .arg("--config")
            .arg(&conf)
            .arg("--check-config")
            .output()
            .unwrap()
    };
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Key of another certificate.
    let good_key = std::fs::read_to_string(&site.key_file).unwrap();
    let good_chain = std::fs::read_to_string(&site.cert_file).unwrap();
    std::fs::write(&site.key_file, stray_key_pem()).unwrap();
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("does not match"), "{err}");

    // A certificate file with no certificate.
    std::fs::write(&site.key_file, &good_key).unwrap();
    std::fs::write(&site.cert_file, "junk\n").unwrap();
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("certificate chain"), "{err}");

    // A CA bundle without a certificate.
    std::fs::write(&site.cert_file, &good_chain).unwrap();
    assert!(check().status.success());
    std::fs::write(&site.ca_file, "junk\n").unwrap();
    let out = check();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("CA bundle"), "{err}");
}

/// A client that negotiates h2 and never sends the connection preface is
/// closed after `header_read_timeout` (hyper has no limit of its own).
#[tokio::test]
async fn h2_without_a_preface_is_closed_after_header_read_timeout() {
    use tokio::io::AsyncReadExt;
    let site = Site::new("A");
    let conf = site.conf(
        "127.0.0.2",
        "proxy",
        "listen = 127.0.0.23:0\ntls_listen = 127.0.0.24:0\nheader_read_timeout = 1s\n",
    );
    let srv = Running::start(&conf).await;
    let tls_addr = srv.first_addr(Kind::Https);
    let mut s = tls_connect(tls_addr, site.ca.client_config(&[b"h2"])).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let t0 = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed within 5 s");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A client that does send it is served.
    let s = tls_connect(tls_addr, site.ca.client_config(&[b"h2"])).await;
    let mut send = h2(s).await.expect("h2 handshake");
    let g = h2_get(&mut send, "https", SMALL, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    srv.stop().await;
}
