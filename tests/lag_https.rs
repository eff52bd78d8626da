//! The proxy to HTTPS peers (`peer_scheme = https`, issue 5 item 1,
//! docs/user-reports.md #16): two nodes on 127.0.0.2 (A) and 127.0.0.3 (B) with TLS
//! listeners on one port, certificates for their IP addresses from a CA made
//! at test time. B proxies a file only A has over HTTPS, verified against
//! `peer_ca_file`: GET, Range, multi-range and HEAD, to HTTP/1.1 and HTTP/2
//! clients. A wrong CA or a plain-HTTP peer give 502 (never a plaintext
//! fallback); a missing `peer_ca_file` is refused at load; a reload with the
//! right CA rebuilds the client. Redirect mode with `peer_scheme = https`
//! gives an https Location.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use fdfs_httpd::config::Config;
use fdfs_httpd::state::{App, State};
use fdfs_httpd::transport::{Kind, Listener};
use support::test_ca::TestCa;
use support::*;

const ONLY_A: &str = "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const ONLY_A_REL: &str = "data/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const ONLY_A_1M: &str = "/group1/M00/00/00/fwAAAmsGtwGAJuKsABAAAFrnhKU350.bin";
const ONLY_A_1M_REL: &str = "data/00/00/fwAAAmsGtwGAJuKsABAAAFrnhKU350.bin";
const T: Duration = Duration::from_secs(20);
const A: &str = "127.0.0.2";
const B: &str = "127.0.0.3";

/// The fixture stores and certificate files of both nodes.
struct Site {
    tmp: tempfile::TempDir,
    ca: TestCa,
    ca_file: PathBuf,
    other_ca_file: PathBuf,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        let ca_file = tmp.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let other_ca_file = tmp.path().join("other-ca.pem");
        std::fs::write(&other_ca_file, TestCa::new().pem()).unwrap();
        for ip in [A, B] {
            let leaf = ca.leaf(ip);
            std::fs::write(tmp.path().join(format!("{ip}.crt")), leaf.chain_pem).unwrap();
            std::fs::write(tmp.path().join(format!("{ip}.key")), leaf.key_pem).unwrap();
        }
        Site {
            tmp,
            ca,
            ca_file,
            other_ca_file,
        }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The configuration of node `ip` (store "A" or "B"), with its
    /// certificate, TLS on `port`, plus `extra`.
    fn config(&self, ip: &str, mode: &str, port: u16, extra: &str) -> Config {
        match self.load(ip, mode, port, extra) {
            Ok(c) => c,
            Err(e) => panic!("config rejected: {e:?}"),
        }
    }

    /// Writes and loads that configuration: the loader's diagnostics when
    /// it refuses it.
    fn load(
        &self,
        ip: &str,
        mode: &str,
        port: u16,
        extra: &str,
    ) -> Result<Config, Vec<fdfs_httpd::config::Diagnostic>> {
        let node = if ip == A { "A" } else { "B" };
        let dir = self.path().join(node);
        let store = if dir.exists() {
            dir.join(format!("storage{node}"))
        } else {
            std::fs::create_dir_all(&dir).unwrap();
            real_store(node, &dir)
        };
        let text = format!(
            "{}listen = {ip}:0\ntls_listen = {ip}:{port}\ntls_cert_file = {cert}\ntls_key_file = {key}\n{extra}",
            real_conf(
                &store,
                ip,
                "127.0.0.2,127.0.0.3",
                mode,
                recorded_max_delay(1_795_601_849)
            ),
            cert = self.path().join(format!("{ip}.crt")).display(),
            key = self.path().join(format!("{ip}.key")).display(),
        );
        let path = dir.join("mod_fastdfs.conf");
        std::fs::write(&path, text).unwrap();
        Config::load(&path).map(|l| l.config)
    }

    /// `peer_scheme = https` trusting `ca`.
    fn https_peers(ca: &Path) -> String {
        format!("peer_scheme = https\npeer_ca_file = {}\n", ca.display())
    }

    fn file(&self, rel: &str) -> Vec<u8> {
        std::fs::read(fixtures().join("real/storageA").join(rel)).unwrap()
    }
}

/// A node serving one already bound listener of `kind`.
struct Node {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    fn start(config: Config, kind: Kind, tcp: tokio::net::TcpListener) -> Node {
        let addr = tcp.local_addr().unwrap();
        let state = State::try_new(config).expect("TLS files usable");
        let app = App::with_state(state);
        let (_changes_tx, changes) = tokio::sync::mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(fdfs_httpd::transport::serve(
            vec![Listener { kind, addr, tcp }],
            app.clone(),
            changes,
            async move {
                let _ = rx.await;
                drop(_changes_tx);
            },
        ));
        Node {
            addr,
            app,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(T, &mut self.task).await;
    }
}

/// A (proxy mode) and B (`b_mode`, plus `b_extra`) serving HTTPS on one
/// common port: (port, A, B).
fn https_pair(site: &Site, b_mode: &str, b_extra: &str) -> (u16, Node, Node) {
    let (port, la, lb) = bind_pair(A, B);
    let a = Node::start(site.config(A, "proxy", port, ""), Kind::Https, la);
    let b = Node::start(site.config(B, b_mode, port, b_extra), Kind::Https, lb);
    (port, a, b)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS connection to `addr`, verifying its certificate for its IP.
async fn tls_connect(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Tls {
    let tcp = tokio::time::timeout(T, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    let ip: IpAddr = addr.ip();
    let name = ServerName::IpAddress(ip.into());
    tokio::time::timeout(T, tokio_rustls::TlsConnector::from(cfg).connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("handshake")
}

/// A response with its body collected.
struct Got {
    status: StatusCode,
    version: Version,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    }
}

async fn collect(r: http::Response<hyper::body::Incoming>) -> Got {
    let (parts, body) = r.into_parts();
    let body = tokio::time::timeout(T, body.collect())
        .await
        .unwrap()
        .expect("complete body")
        .to_bytes();
    Got {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Empty::new()).unwrap()
}

/// One HTTP/1.1 request over a fresh TLS connection to `addr`.
async fn h1(
    site: &Site,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Got {
    let s = tls_connect(addr, site.ca.client_config(&[b"http/1.1"])).await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut all = vec![("host", "fdfs.test")];
    all.extend_from_slice(headers);
    let r = tokio::time::timeout(T, send.send_request(request(method, path, &all)))
        .await
        .unwrap()
        .unwrap();
    collect(r).await
}

/// Checks a multipart/byteranges body of `file` holds `parts` (first, last).
fn assert_parts(g: &Got, file: &[u8], parts: &[(usize, usize)]) {
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    let ct = g.header("content-type");
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let body = &g.body[..];
    for &(first, last) in parts {
        let head = format!("Content-range: bytes {first}-{last}/{}\r\n\r\n", file.len());
        let at = body
            .windows(head.len())
            .position(|w| w == head.as_bytes())
            .unwrap_or_else(|| panic!("part {first}-{last}"));
        let data = at + head.len();
        assert_eq!(&body[data..data + (last - first + 1)], &file[first..=last]);
    }
    assert_eq!(g.header("content-length"), body.len().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_over_https_get_range_multirange_head() {
    let site = Site::new();
    let (_, a, b) = https_pair(&site, "proxy", &Site::https_peers(&site.ca_file));
    let big = site.file(ONLY_A_1M_REL);
    let small = site.file(ONLY_A_REL);

    let g = h1(&site, b.addr, Method::GET, ONLY_A_1M, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.version, Version::HTTP_11);
    assert_eq!(g.header("content-length"), "1048576");
    assert_eq!(sha256(&g.body), sha256(&big));
    assert!(g.header("server").starts_with("fdfs-httpd"));

    let g = h1(&site, b.addr, Method::GET, ONLY_A, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body, small);

    let g = h1(
        &site,
        b.addr,
        Method::GET,
        ONLY_A_1M,
        &[("range", "bytes=1000-1999")],
    )
    .await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(g.header("content-range"), "bytes 1000-1999/1048576");
    assert_eq!(&g.body[..], &big[1000..2000]);

    let g = h1(
        &site,
        b.addr,
        Method::GET,
        ONLY_A_1M,
        &[("range", "bytes=0-9,500000-500009,-5")],
    )
    .await;
    assert_parts(&g, &big, &[(0, 9), (500000, 500009), (1048571, 1048575)]);

    let g = h1(&site, b.addr, Method::HEAD, ONLY_A_1M, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.header("content-length"), "1048576");
    assert!(g.body.is_empty());

    // A file neither node has: A's 404 is relayed as B's 404.
    let g = h1(
        &site,
        b.addr,
        Method::GET,
        "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M075.txt",
        &[],
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_client_while_proxying_over_https() {
    let site = Site::new();
    let (_, a, b) = https_pair(&site, "proxy", &Site::https_peers(&site.ca_file));
    let big = site.file(ONLY_A_1M_REL);
    let s = tls_connect(b.addr, site.ca.client_config(&[b"h2", b"http/1.1"])).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    let uri = |p: &str| format!("https://{}{p}", b.addr);
    let ask = |method: Method, path: &str, headers: &[(&str, &str)]| {
        let mut send = send.clone();
        let req = request(method, &uri(path), headers);
        async move {
            let r = tokio::time::timeout(T, send.send_request(req))
                .await
                .unwrap()
                .expect("h2 response");
            collect(r).await
        }
    };

    let g = ask(Method::GET, ONLY_A_1M, &[]).await;
    assert_eq!(g.version, Version::HTTP_2);
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(sha256(&g.body), sha256(&big));

    let g = ask(Method::GET, ONLY_A_1M, &[("range", "bytes=1048570-")]).await;
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(g.header("content-range"), "bytes 1048570-1048575/1048576");
    assert_eq!(&g.body[..], &big[1048570..]);

    let g = ask(Method::GET, ONLY_A_1M, &[("range", "bytes=10-19,30-39")]).await;
    assert_eq!(g.version, Version::HTTP_2);
    assert_parts(&g, &big, &[(10, 19), (30, 39)]);

    let g = ask(Method::HEAD, ONLY_A_1M, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.header("content-length"), "1048576");
    assert!(g.body.is_empty());

    // Concurrent streams on the one client connection, each proxied.
    let mut tasks = Vec::new();
    for i in 0..6usize {
        let range = format!("bytes={}-{}", i * 100_000, i * 100_000 + 65_535);
        let fut = ask(Method::GET, ONLY_A_1M, &[("range", range.as_str())]);
        tasks.push(tokio::spawn(async move { (i, fut.await) }));
    }
    for t in tasks {
        let (i, g) = t.await.unwrap();
        assert_eq!(g.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&g.body[..], &big[i * 100_000..i * 100_000 + 65_536]);
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_is_502_and_a_reload_with_the_right_ca_serves() {
    let site = Site::new();
    let (port, a, b) = https_pair(&site, "proxy", &Site::https_peers(&site.other_ca_file));
    let g = h1(&site, b.addr, Method::GET, ONLY_A, &[]).await;
    assert_eq!(g.status, StatusCode::BAD_GATEWAY);

    // The reloaded state carries a new peer TLS configuration: the pooled
    // client is rebuilt with it.
    let config = site.config(B, "proxy", port, &Site::https_peers(&site.ca_file));
    b.app.replace_state(State::try_new(config).unwrap());
    let g = h1(&site, b.addr, Method::GET, ONLY_A, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body, site.file(ONLY_A_REL));

    // And back to the wrong CA: no connection made with the old one is reused.
    let config = site.config(B, "proxy", port, &Site::https_peers(&site.other_ca_file));
    b.app.replace_state(State::try_new(config).unwrap());
    let g = h1(&site, b.addr, Method::GET, ONLY_A, &[]).await;
    assert_eq!(g.status, StatusCode::BAD_GATEWAY);
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_peer_is_not_a_fallback() {
    let site = Site::new();
    let (port, la, lb) = bind_pair(A, B);
    // A speaks plain HTTP on the peer port.
    let a = Node::start(site.config(A, "proxy", port, ""), Kind::Http, la);
    let direct = get(a.addr, ONLY_A).await;
    assert_eq!(direct.status, 200, "A serves it over plain HTTP");
    let b = Node::start(
        site.config(B, "proxy", port, &Site::https_peers(&site.ca_file)),
        Kind::Https,
        lb,
    );
    let g = h1(&site, b.addr, Method::GET, ONLY_A, &[]).await;
    assert_eq!(g.status, StatusCode::BAD_GATEWAY);
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_without_peer_ca_file_is_refused_at_load() {
    // Proxying over HTTPS with no CA to verify peers could only ever fail:
    // the configuration is refused at the peer_scheme line, not answered
    // 502 request after request.
    let site = Site::new();
    let errs = site
        .load(B, "proxy", 18443, "peer_scheme = https\n")
        .expect_err("accepted");
    assert_eq!(errs.len(), 1, "{errs:?}");
    let e = &errs[0];
    assert!(e.line.is_some(), "{e:?}");
    assert!(
        e.message.contains("peer_scheme = https needs peer_ca_file"),
        "{e:?}"
    );
    // Redirect mode and the storage protocol need no CA.
    assert!(site
        .load(B, "redirect", 18443, "peer_scheme = https\n")
        .is_ok());
    let c = site
        .load(
            B,
            "proxy",
            18443,
            "peer_scheme = https\nproxy_via = storage\n",
        )
        .unwrap();
    assert!(matches!(
        State::try_new(c).unwrap().peer_http,
        fdfs_httpd::tls::PeerHttp::NoCa
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_with_https_scheme_gives_an_https_location() {
    let site = Site::new();
    // Redirects need no CA: the client verifies A itself.
    let (port, a, b) = https_pair(&site, "redirect", "peer_scheme = https\n");
    let g = h1(&site, b.addr, Method::GET, ONLY_A, &[]).await;
    assert_eq!(g.status, StatusCode::FOUND);
    let loc = g.header("location");
    assert_eq!(loc, format!("https://{A}:{port}{ONLY_A}?redirect=1"));
    assert_eq!(g.header("content-length"), "0");

    // Following it over TLS to A (certificate for 127.0.0.2) gets the file.
    let target = loc.split_once(&format!(":{port}")).unwrap().1;
    let g = h1(&site, a.addr, Method::GET, target, &[]).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body, site.file(ONLY_A_REL));
    b.stop().await;
    a.stop().await;
}
