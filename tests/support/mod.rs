//! Shared test support: fixture stores laid out in temp dirs (mtimes set
//! from the recorded manifests), servers started on 127.0.0.x ports, and a
//! small raw HTTP/1.1 client so tests compare bytes on the wire.
#![allow(dead_code)]

pub mod fake_http;
pub mod test_ca;

use std::collections::HashMap;
use std::fs::{self, File, FileTimes};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use fdfs_httpd::config::Config;
use fdfs_httpd::process::reload::{Prepared, Reloader, Source};
use fdfs_httpd::state::App;
use fdfs_httpd::transport::Kind;

/// `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Reads a JSON fixture.
pub fn json(rel: &str) -> serde_json::Value {
    let text = fs::read_to_string(fixtures().join(rel)).expect("fixture");
    serde_json::from_str(&text).expect("json")
}

/// Reads a JSON-lines fixture.
pub fn jsonl(rel: &str) -> Vec<serde_json::Value> {
    fs::read_to_string(fixtures().join(rel))
        .expect("fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect()
}

/// Copies a directory tree (files only, sparse-unaware).
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&e.path(), &to)?;
        } else if ft.is_file() {
            fs::copy(e.path(), &to)?;
            let mut p = fs::metadata(&to)?.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            p.set_readonly(false);
            fs::set_permissions(&to, p)?;
        }
    }
    Ok(())
}

/// Sets a file's mtime (Unix seconds).
pub fn set_mtime(path: &Path, unix: i64) {
    let t = UNIX_EPOCH + Duration::from_secs(unix as u64);
    let f = File::options()
        .write(true)
        .open(path)
        .expect("open for mtime");
    f.set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .expect("set mtime");
}

/// Lays out storage `node` ("A" or "B") of the real two-node fixture in a
/// fresh temp dir, with the recorded mtimes. Returns the store path root.
pub fn real_store(node: &str, tmp: &Path) -> PathBuf {
    let root = tmp.join(format!("storage{node}"));
    copy_tree(&fixtures().join(format!("real/storage{node}")), &root).expect("copy store");
    let manifest = json("real/manifest.json");
    let mut mtimes: HashMap<String, i64> = HashMap::new();
    for f in manifest["files"].as_array().expect("files") {
        if let (Some(rel), Some(t)) = (f["rel_path"].as_str(), f["mtime"][node].as_i64()) {
            mtimes.insert(rel.to_string(), t);
        }
    }
    for (rel, t) in &mtimes {
        let p = root.join(rel);
        if p.exists() {
            set_mtime(&p, *t);
        }
        // Slave and metadata sidecars share their master's recorded time
        // unless listed themselves.
    }
    root
}

/// Lays out trunk-fixture storage `node` ("C" or "D").
pub fn trunk_store(node: &str, tmp: &Path) -> PathBuf {
    let root = tmp.join(format!("storage{node}"));
    copy_tree(&fixtures().join(format!("trunk/storage{node}")), &root).expect("copy store");
    let manifest = json("trunk/manifest.json");
    for f in manifest["files"].as_array().expect("files") {
        let (Some(rel), Some(t)) = (
            f["rel_path"].as_str(),
            f["mtime"][node].as_i64().or_else(|| f["mtime"].as_i64()),
        ) else {
            continue;
        };
        let p = root.join(rel);
        if p.exists() && !f["in_trunk"].as_bool().unwrap_or(false) {
            set_mtime(&p, t);
        }
    }
    root
}

/// Unix time now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A server running in this process on its own listener.
pub struct Server {
    /// Address it listens on.
    pub addr: SocketAddr,
    /// The shared state (for reload tests).
    pub app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Starts a server for `conf` (mod_fastdfs.conf text; relative names
    /// resolve against `dir`) on `ip:0`.
    pub async fn start(conf: &str, dir: &Path, ip: &str) -> Server {
        Self::start_config(write_conf(conf, dir), ip).await
    }

    /// Starts a server for an already loaded config on `ip:0`.
    pub async fn start_config(config: Config, ip: &str) -> Server {
        let listener =
            fdfs_httpd::transport::bind(format!("{ip}:0").parse().unwrap()).expect("bind");
        Self::serve(config, listener)
    }

    /// Serves `config` on `listener` in a spawned task.
    fn serve(config: Config, listener: tokio::net::TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let app = App::new(config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(fdfs_httpd::transport::run(
            vec![listener],
            app.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            addr,
            app,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers in wire order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body bytes (de-chunked).
    pub body: Vec<u8>,
    /// Whether the body was complete per its framing.
    pub complete: bool,
}

impl Resp {
    /// First header with that name (case-insensitive), as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
    /// Raw header bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// Sends raw request bytes on a fresh connection and reads one response
/// (`head` = it answers a HEAD request: no body expected).
pub async fn raw(addr: SocketAddr, request: &[u8], head: bool) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    read_response(&mut s, head).await
}

/// `GET` from the chosen source address `src` (a 127.0.0.x the client
/// binds) with extra headers, `Connection: close`.
pub async fn get_from(src: &str, addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Resp {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{src}:0").parse().expect("source address"))
        .expect("bind");
    let mut s = sock.connect(addr).await.expect("connect");
    let mut req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    read_response(&mut s, false).await
}

/// `GET`/`HEAD` with extra headers, `Connection: close`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    raw(addr, req.as_bytes(), method == "HEAD").await
}

/// `GET target`.
pub async fn get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target, &[]).await
}

/// A fake peer's side: the next request head on `s` (text up to the blank
/// line), bytes after it kept in `buf` for the next call; `None` once the
/// client closed.
pub async fn read_request_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end + 4);
    Some(head)
}

/// Reads one response from a stream; bounded by a 20 s timeout.
pub async fn read_response(s: &mut TcpStream, head: bool) -> Resp {
    tokio::time::timeout(Duration::from_secs(20), read_response_inner(s, head))
        .await
        .expect("response within 20 s")
}

async fn read_response_inner(s: &mut TcpStream, head: bool) -> Resp {
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            panic!(
                "connection closed before headers: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut headers = Vec::new();
    // keep raw header bytes (they may hold non-UTF-8)
    let raw_head = &buf[..header_end];
    for line in raw_head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let k = String::from_utf8_lossy(&line[..colon]).into_owned();
            let mut v = &line[colon + 1..];
            while v.first() == Some(&b' ') {
                v = &v[1..];
            }
            headers.push((k, v.to_vec()));
        }
    }
    let _ = lines;
    let mut rest = buf[header_end + 4..].to_vec();
    let hdr = |n: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, Vec<u8>)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    if head || status == 304 || status == 204 || (100..200).contains(&status) {
        return Resp {
            status,
            headers,
            body: Vec::new(),
            complete: true,
        };
    }
    if hdr("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let (body, complete) = read_chunked(s, rest).await;
        return Resp {
            status,
            headers,
            body,
            complete,
        };
    }
    if let Some(len) = hdr("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while rest.len() < len {
            let mut chunk = vec![0u8; 65536];
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return Resp {
                    status,
                    headers,
                    body: rest,
                    complete: false,
                };
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        return Resp {
            status,
            headers,
            body: rest,
            complete: true,
        };
    }
    // read to EOF
    let _ = s.read_to_end(&mut rest).await;
    Resp {
        status,
        headers,
        body: rest,
        complete: true,
    }
}

async fn read_chunked(s: &mut TcpStream, mut buf: Vec<u8>) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        while find(&buf, b"\r\n").is_none() {
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return (body, false);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let p = find(&buf, b"\r\n").unwrap();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&buf[..p])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        buf.drain(..p + 2);
        if size == 0 {
            return (body, true);
        }
        while buf.len() < size + 2 {
            let mut chunk = [0u8; 65536];
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return (body, false);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Lowercase hex sha256.
pub fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

/// The mod_fastdfs.conf used for the real fixture nodes: the recorded
/// settings with store path, listen and this node's addresses filled in.
/// `max_delay` keeps the recorded timestamps fresh or old as they were
/// when recorded.
pub fn real_conf(store: &Path, local_ip: &str, peers: &str, mode: &str, max_delay: i64) -> String {
    let mime = fixtures().join("real/configs/mime.types.nginx");
    format!(
        "connect_timeout=2\nnetwork_timeout=30\nbase_path={store}\nload_fdfs_parameters_from_tracker=false\n\
storage_sync_file_max_delay = {max_delay}\nuse_storage_id = false\ngroup_name=group1\nurl_have_group_name = true\n\
store_path_count=1\nstore_path0={store}\nlog_level=info\nresponse_mode={mode}\nflv_support = true\nflv_extension = flv\n\
group_count = 0\nlocal_ip_addrs = {local_ip}\npeer_ip_addrs = {peers}\n\
http.default_content_type = application/octet-stream\nhttp.mime_types_filename = {mime}\n\
http.anti_steal.check_token = false\nhttp.multi_range.enabled = true\n",
        store = store.display(),
        mime = mime.display(),
    )
}

/// The `storage_sync_file_max_delay` that keeps recorded cases as they were:
/// 86400 s plus the time since the recordings were made.
pub fn recorded_max_delay(recorded_at: i64) -> i64 {
    86400 + (now() - recorded_at).max(0)
}

/// Binds every IP in `ips` on one common free port (peers of a FastDFS
/// group share the HTTP port: redirects and proxies reuse it).
pub fn bind_same_port(ips: &[&str]) -> Vec<tokio::net::TcpListener> {
    for attempt in 0..200u16 {
        let port = 20000
            + ((std::process::id() as u16)
                .wrapping_mul(7)
                .wrapping_add(attempt * 131))
                % 40000;
        let mut out = Vec::new();
        for ip in ips {
            match fdfs_httpd::transport::bind(format!("{ip}:{port}").parse().unwrap()) {
                Ok(l) => out.push(l),
                Err(_) => break,
            }
        }
        if out.len() == ips.len() {
            return out;
        }
    }
    panic!("no common free port for {ips:?}");
}

/// Binds `a` and `b` on one common free port (see [`bind_same_port`]):
/// (port, listener of `a`, listener of `b`).
pub fn bind_pair(a: &str, b: &str) -> (u16, tokio::net::TcpListener, tokio::net::TcpListener) {
    let mut ls = bind_same_port(&[a, b]);
    let lb = ls.pop().expect("listener b");
    let la = ls.pop().expect("listener a");
    (la.local_addr().expect("port").port(), la, lb)
}

impl Server {
    /// Starts a server for `conf` on an already bound listener.
    pub async fn start_on(conf: &str, dir: &Path, listener: tokio::net::TcpListener) -> Server {
        Self::serve(write_conf(conf, dir), listener)
    }
}

/// Writes `conf` as `dir/mod_fastdfs.conf` and loads it.
fn write_conf(conf: &str, dir: &Path) -> Config {
    let path = dir.join("mod_fastdfs.conf");
    fs::write(&path, conf).expect("write conf");
    match Config::load(&path) {
        Ok(l) => l.config,
        Err(e) => panic!("config rejected: {e:?}"),
    }
}

/// Splits a `multipart/byteranges` body at its boundary lines.
pub fn multipart_parts(body: &[u8], boundary: &str) -> Vec<Vec<u8>> {
    let delim = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest: &[u8] = body;
    while let Some(p) = rest
        .windows(delim.len())
        .position(|w| w == delim.as_bytes())
    {
        parts.push(rest[..p].to_vec());
        rest = &rest[p + delim.len()..];
    }
    parts.push(rest.to_vec());
    parts
}

/// The `boundary=` parameter of a Content-Type.
pub fn boundary_of(ct: &str) -> String {
    ct.split("boundary=").nth(1).unwrap_or("").to_string()
}

/// Standard base64 (the recordings' `body_b64`).
pub fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

/// [`recorded_max_delay`] for the real two-node recordings: the delay that
/// keeps every recorded ID as fresh (or as old) as it was when recorded.
pub fn real_recorded_delay() -> i64 {
    let recorded_at = jsonl("real/responses.jsonl")
        .iter()
        .filter_map(|c| c["recorded_at"].as_i64())
        .min()
        .expect("recorded_at");
    recorded_max_delay(recorded_at)
}

/// A node of the real fixture: store snapshot `store` ("A" or "B") laid
/// out under `tmp/name`, served on `listener` with [`real_conf`] + `extra`.
#[allow(clippy::too_many_arguments)]
pub async fn real_node(
    tmp: &Path,
    name: &str,
    store: &str,
    ip: &str,
    listener: tokio::net::TcpListener,
    mode: &str,
    peers: &str,
    extra: &str,
    max_delay: i64,
) -> Server {
    let root = tmp.join(name);
    fs::create_dir_all(&root).expect("node dir");
    let store = real_store(store, &root);
    let conf = format!("{}{extra}", real_conf(&store, ip, peers, mode, max_delay));
    Server::start_on(&conf, &root, listener).await
}

/// Two [`real_node`]s with `peers` and [`real_recorded_delay`]: store "A"
/// under `tmp/a` in proxy mode on `la`, then store "B" under `tmp/b` in
/// `b_mode` with `b_extra` on `lb`; each node's local IP is its listener's.
pub async fn real_pair(
    tmp: &Path,
    la: tokio::net::TcpListener,
    lb: tokio::net::TcpListener,
    peers: &str,
    b_mode: &str,
    b_extra: &str,
) -> (Server, Server) {
    let ip = |l: &tokio::net::TcpListener| l.local_addr().expect("bound").ip().to_string();
    let (ip_a, ip_b) = (ip(&la), ip(&lb));
    let delay = real_recorded_delay();
    let a = real_node(tmp, "a", "A", &ip_a, la, "proxy", peers, "", delay).await;
    let b = real_node(tmp, "b", "B", &ip_b, lb, b_mode, peers, b_extra, delay).await;
    (a, b)
}

/// A server run as `main` runs it ([`Prepared::run`]) from a configuration
/// file, so that reloads re-read that file.
pub struct Running {
    /// The reload entry point (what SIGHUP calls).
    pub reloader: Arc<Reloader>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl Running {
    /// Loads `path` and starts serving it.
    pub async fn start(path: &Path) -> Running {
        let loaded = match Config::load(path) {
            Ok(l) => l,
            Err(e) => panic!("config rejected: {e:?}"),
        };
        let prepared = Prepared::new(loaded.config, Source::new(path)).expect("prepare");
        let reloader = prepared.reloader.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(prepared.run(async move {
            let _ = rx.await;
        }));
        Running {
            reloader,
            stop: Some(tx),
            task,
        }
    }

    /// Bound address of the listener configured as `configured`.
    pub fn addr(&self, configured: &str) -> SocketAddr {
        let want: SocketAddr = configured.parse().unwrap();
        self.reloader
            .listeners()
            .into_iter()
            .find(|l| l.1 == want)
            .and_then(|l| l.2)
            .unwrap_or_else(|| panic!("no listener {configured}"))
    }

    /// Bound address of the first listener of `kind`.
    pub fn first_addr(&self, kind: Kind) -> SocketAddr {
        self.reloader
            .listeners()
            .into_iter()
            .find(|l| l.0 == kind)
            .and_then(|l| l.2)
            .expect("listener")
    }

    /// Stops serving and waits (up to 10 s) for the drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}
