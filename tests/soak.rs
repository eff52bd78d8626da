//! Soak (issue 7 item 4): two real fdfs-httpd processes (A proxy mode on
//! 127.0.0.72, B redirect mode on 127.0.0.73, one port, anti-steal tokens
//! on) take mixed traffic for `SOAK_SECS` (default 300) seconds: local
//! hits, ranges, lag proxying (A fetches B's new files), redirects (B
//! points at A's new files), 404s and token failures; both are reloaded
//! periodically (valid and invalid configs) and B is restarted halfway.
//! Every body is checked against its sha256; at the end: no mismatch, no
//! unexpected status, and RSS / descriptor counts of both processes flat.
//!
//! Not run in CI:
//! `cargo test --release --test soak -- --ignored --nocapture`
//! (docs/soak.md).

mod ops_common;
mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fdfs_httpd::antisteal::token::sign;
use fdfs_httpd::fileid::{BuildKind, IdBuilder, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "SoakSecret123";
const A_IP: &str = "127.0.0.72";
const B_IP: &str = "127.0.0.73";

/// A file: URL path, sha256 and bytes.
#[derive(Clone)]
struct File {
    url: String,
    bytes: Arc<Vec<u8>>,
}

fn make(root: &Path, src: Ipv4Addr, ts: i64, len: usize, seed: u32) -> File {
    let bytes = ops_common::content(len, seed);
    let id = IdBuilder::new()
        .source(Source::Ip(src))
        .create_ts(ts)
        .size(len as u64)
        .crc32(crc32fast::hash(&bytes))
        .rand23(0x200 + seed)
        .extension("bin")
        .kind(BuildKind::Normal)
        .build();
    let name = id.rsplit('/').next().unwrap().to_owned();
    let dir = root.join("data/00/00");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), &bytes).unwrap();
    File {
        url: format!("/{id}"),
        bytes: Arc::new(bytes),
    }
}

struct Layout {
    shared: Vec<File>,
    only_a: Vec<File>,
    only_b: Vec<File>,
    old_missing: String,
}

fn layout(tmp: &Path) -> Layout {
    let (ra, rb) = (tmp.join("A/store"), tmp.join("B/store"));
    let a: Ipv4Addr = A_IP.parse().unwrap();
    let b: Ipv4Addr = B_IP.parse().unwrap();
    let now = fdfs_httpd::clock::unix_now();
    let mut shared = Vec::new();
    for (i, len) in [1usize, 1000, 65_536, 300_000, 1 << 20, 3 << 20]
        .into_iter()
        .enumerate()
    {
        let f = make(&ra, a, now - 7200, len, i as u32);
        make(&rb, a, now - 7200, len, i as u32);
        shared.push(f);
    }
    let only_a = vec![make(&ra, a, now, 4096, 20), make(&ra, a, now, 500_000, 21)];
    let only_b = vec![
        make(&rb, b, now, 5000, 30),
        make(&rb, b, now, 700_000, 31),
        make(&rb, b, now, 2 << 20, 32),
    ];
    let old = IdBuilder::new()
        .source(Source::Ip(a))
        .create_ts(now - 3 * 86400)
        .size(12)
        .crc32(1)
        .extension("bin")
        .build();
    Layout {
        shared,
        only_a,
        only_b,
        old_missing: format!("/{old}"),
    }
}

fn conf(store: &Path, ip: &str, mode: &str, port: u16, extra: &str) -> String {
    format!(
        "group_name = group1\nurl_have_group_name = true\nstore_path_count = 1\nstore_path0 = {s}\n\
base_path = {s}\nresponse_mode = {mode}\nlocal_ip_addrs = {ip}\npeer_ip_addrs = {A_IP},{B_IP}\n\
storage_sync_file_max_delay = 86400\nlog_level = warn\nconnect_timeout = 2\nnetwork_timeout = 10\n\
http.anti_steal.check_token = true\nhttp.anti_steal.secret_key = {SECRET}\nhttp.anti_steal.token_ttl = 900\n\
shutdown_grace = 3s\nlisten = {ip}:{port}\n{extra}",
        s = store.display()
    )
}

struct Node {
    dir: PathBuf,
    child: Child,
}

impl Node {
    fn spawn(dir: &Path) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
            .arg("--config")
            .arg(dir.join("mod_fastdfs.conf"))
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fdfs-httpd");
        Node {
            dir: dir.to_path_buf(),
            child,
        }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

async fn wait_listening(addr: SocketAddr) {
    let t0 = Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{addr} not listening"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a request must produce.
enum Expect {
    /// Status and exact body.
    Body(u16, Arc<Vec<u8>>, std::ops::Range<usize>),
    /// 302 with a Location starting with this.
    Redirect(String),
    /// Status only (error bodies).
    Status(u16),
}

/// A response read off a keep-alive connection.
struct Got {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

async fn read_one(s: &mut TcpStream) -> std::io::Result<Got> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut buf = Vec::new();
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let (mut len, mut location) = (None, None);
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("location") {
                location = Some(v.to_string());
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("unexpected chunked body"));
            }
        }
    }
    let len = len.ok_or_else(|| bad("no content-length"))?;
    let mut body = buf[end + 4..].to_vec();
    while body.len() < len {
        let mut chunk = vec![0u8; 262_144];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("body cut short"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if body.len() > len {
        return Err(bad("more bytes than content-length"));
    }
    Ok(Got {
        status,
        location,
        body,
    })
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    bytes: AtomicU64,
    mismatches: AtomicU64,
    unexpected: AtomicU64,
    transport_errors: AtomicU64,
    restart_window_errors: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
    problems: Mutex<Vec<String>>,
}

impl Tally {
    fn problem(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut p = self.problems.lock().unwrap();
        if p.len() < 20 {
            p.push(what);
        }
    }
}

struct Shared {
    layout: Layout,
    a: SocketAddr,
    b: SocketAddr,
    b_down: AtomicBool,
    /// Until this instant, proxy errors from A (B restarting, breaker
    /// cool-down) are counted apart.
    window_until: Mutex<Option<Instant>>,
    paused: AtomicBool,
    stop: AtomicBool,
    tally: Tally,
}

fn signed(url: &str) -> String {
    let ts = fdfs_httpd::clock::unix_now();
    let remote = url.trim_start_matches("/group1/");
    format!("{url}?token={}&ts={ts}", sign(remote, SECRET, ts))
}

/// Picks a request: (node, target, Range header, expectation, goes to B
/// directly, proxied through A to B).
fn pick(sh: &Shared, r: u64) -> (SocketAddr, String, Option<String>, Expect, bool, bool) {
    let l = &sh.layout;
    let pickf = |v: &Vec<File>| v[(r >> 8) as usize % v.len()].clone();
    let on_b = (r >> 4) & 1 == 1;
    let node = if on_b { sh.b } else { sh.a };
    let full = |f: &File| Expect::Body(200, f.bytes.clone(), 0..f.bytes.len());
    match r % 16 {
        0..=5 => {
            let f = pickf(&l.shared);
            (node, signed(&f.url), None, full(&f), on_b, false)
        }
        6..=7 => {
            let f = pickf(&l.shared);
            let n = f.bytes.len();
            let start = (r >> 16) as usize % n;
            let end = (start + 1 + (r >> 32) as usize % 200_000).min(n);
            let range = format!("bytes={start}-{}", end - 1);
            let e = Expect::Body(206, f.bytes.clone(), start..end);
            (node, signed(&f.url), Some(range), e, on_b, false)
        }
        8..=10 => {
            let f = pickf(&l.only_b);
            let n = f.bytes.len();
            if r & 0x100000 != 0 {
                let start = (r >> 21) as usize % n;
                let range = format!("bytes={start}-");
                let e = Expect::Body(206, f.bytes.clone(), start..n);
                (sh.a, signed(&f.url), Some(range), e, false, true)
            } else {
                (sh.a, signed(&f.url), None, full(&f), false, true)
            }
        }
        11..=12 => {
            let f = pickf(&l.only_a);
            let want = format!("http://{}{}?token=", sh.a, f.url);
            (
                sh.b,
                signed(&f.url),
                None,
                Expect::Redirect(want),
                true,
                false,
            )
        }
        13 => {
            let f = pickf(&l.only_a);
            (sh.a, signed(&f.url), None, full(&f), false, false)
        }
        14 => (
            node,
            signed(&l.old_missing),
            None,
            Expect::Status(404),
            on_b,
            false,
        ),
        _ => {
            let f = pickf(&l.shared);
            let ts = fdfs_httpd::clock::unix_now();
            let bad = format!("{}?token={}&ts={ts}", f.url, "0".repeat(32));
            (node, bad, None, Expect::Status(400), on_b, false)
        }
    }
}

async fn worker(sh: Arc<Shared>, seed: u64) {
    let mut rng = seed | 1;
    let mut conns: [Option<TcpStream>; 2] = [None, None];
    while !sh.stop.load(Ordering::Relaxed) {
        if sh.paused.load(Ordering::Relaxed) {
            conns = [None, None];
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (node, target, range, expect, to_b, via_b) = pick(&sh, rng);
        if to_b && sh.b_down.load(Ordering::Relaxed) {
            continue;
        }
        let idx = usize::from(node == sh.b);
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: {node}\r\n");
        if let Some(r) = &range {
            req.push_str(&format!("Range: {r}\r\n"));
        }
        req.push_str("\r\n");
        let mut got = None;
        for attempt in 0..2 {
            let reused = conns[idx].is_some();
            if conns[idx].is_none() {
                match TcpStream::connect(node).await {
                    Ok(s) => conns[idx] = Some(s),
                    Err(_) => break,
                }
            }
            let s = conns[idx].as_mut().unwrap();
            let res = match s.write_all(req.as_bytes()).await {
                Ok(()) => tokio::time::timeout(Duration::from_secs(30), read_one(s))
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
                Err(e) => Err(e),
            };
            match res {
                Ok(g) => {
                    got = Some(Ok(g));
                    break;
                }
                Err(e) => {
                    conns[idx] = None;
                    // A keep-alive connection closed by the server
                    // (restart, drain) is retried once on a new one.
                    if reused && attempt == 0 && e.kind() != std::io::ErrorKind::InvalidData {
                        continue;
                    }
                    got = Some(Err(e));
                    break;
                }
            }
        }
        let t = &sh.tally;
        t.requests.fetch_add(1, Ordering::Relaxed);
        let in_window = || {
            sh.window_until
                .lock()
                .unwrap()
                .is_some_and(|u| Instant::now() < u)
        };
        let g = match got {
            Some(Ok(g)) => g,
            other => {
                let e = other.map_or("connect failed".to_string(), |r| format!("{:?}", r.err()));
                if (to_b || via_b) && in_window() {
                    t.restart_window_errors.fetch_add(1, Ordering::Relaxed);
                } else {
                    t.problem(&t.transport_errors, format!("{target}: {e}"));
                }
                continue;
            }
        };
        *t.statuses.lock().unwrap().entry(g.status).or_insert(0) += 1;
        t.bytes.fetch_add(g.body.len() as u64, Ordering::Relaxed);
        match expect {
            Expect::Body(status, bytes, range) => {
                if g.status != status {
                    if via_b && in_window() && matches!(g.status, 502..=504) {
                        t.restart_window_errors.fetch_add(1, Ordering::Relaxed);
                    } else {
                        t.problem(
                            &t.unexpected,
                            format!("{node}{target}: {} want {status}", g.status),
                        );
                    }
                } else if support::sha256(&g.body) != support::sha256(&bytes[range]) {
                    t.problem(
                        &t.mismatches,
                        format!("{node}{target}: body sha256 differs"),
                    );
                }
            }
            Expect::Redirect(prefix) => {
                let ok = g.status == 302
                    && g.body.is_empty()
                    && g.location
                        .as_deref()
                        .is_some_and(|l| l.starts_with(&prefix) && l.ends_with("&redirect=1"));
                if !ok {
                    t.problem(
                        &t.unexpected,
                        format!("{node}{target}: {} {:?}", g.status, g.location),
                    );
                }
            }
            Expect::Status(s) => {
                if g.status != s {
                    t.problem(
                        &t.unexpected,
                        format!("{node}{target}: {} want {s}", g.status),
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Pauses traffic, lets client connections close, and measures
/// (RSS KiB, open descriptors) of each pid.
async fn quiet_measure(sh: &Shared, pids: &[u32]) -> Vec<(u64, usize)> {
    sh.paused.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let m = pids.iter().map(|&p| (rss_kib(p), fds(p))).collect();
    sh.paused.store(false, Ordering::SeqCst);
    m
}

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: minutes long; cargo test --release --test soak -- --ignored --nocapture"]
async fn soak_two_nodes_mixed_traffic() {
    let secs = env_secs("SOAK_SECS", 300);
    let workers = env_secs("SOAK_WORKERS", 4);
    let tmp = tempfile::tempdir().unwrap();
    let layout = layout(tmp.path());
    let ls = support::bind_same_port(&[A_IP, B_IP]);
    let port = ls[0].local_addr().unwrap().port();
    drop(ls);
    let a_addr: SocketAddr = format!("{A_IP}:{port}").parse().unwrap();
    let b_addr: SocketAddr = format!("{B_IP}:{port}").parse().unwrap();
    let write_conf = |n: &str, extra: &str| {
        let (ip, mode) = if n == "A" {
            (A_IP, "proxy")
        } else {
            (B_IP, "redirect")
        };
        let dir = tmp.path().join(n);
        let text = conf(&dir.join("store"), ip, mode, port, extra);
        std::fs::write(dir.join("mod_fastdfs.conf"), text).unwrap();
    };
    write_conf("A", "");
    write_conf("B", "");
    let a = Node::spawn(&tmp.path().join("A"));
    let mut b = Node::spawn(&tmp.path().join("B"));
    wait_listening(a_addr).await;
    wait_listening(b_addr).await;

    let sh = Arc::new(Shared {
        layout,
        a: a_addr,
        b: b_addr,
        b_down: AtomicBool::new(false),
        window_until: Mutex::new(None),
        paused: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        tally: Tally::default(),
    });
    let start_state = [
        (rss_kib(a.pid()), fds(a.pid())),
        (rss_kib(b.pid()), fds(b.pid())),
    ];
    let tasks: Vec<_> = (0..workers)
        .map(|i| {
            tokio::spawn(worker(
                sh.clone(),
                0x9E37_79B9_7F4A_7C15 ^ (i + 1).wrapping_mul(0x1234_5678_9ABC),
            ))
        })
        .collect();
    let t0 = Instant::now();
    let warm = Duration::from_secs((secs / 10).clamp(3, 20));
    tokio::time::sleep(warm).await;
    let warm_m = quiet_measure(&sh, &[a.pid(), b.pid()]).await;
    eprintln!(
        "soak: {secs} s, {workers} workers; warm after {warm:?}: A {:?} B {:?}",
        warm_m[0], warm_m[1]
    );

    let total = Duration::from_secs(secs);
    let reload_every = Duration::from_secs(env_secs("SOAK_RELOAD_SECS", 15));
    let mut next_reload = t0 + reload_every;
    let mut reloads = (0u32, 0u32); // (valid, invalid)
    let mut restarted = false;
    let mut b_pid_before = b.pid();
    let mut step = 0u32;
    while t0.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !restarted && t0.elapsed() >= total / 2 {
            // Peer restart: B stops (SIGTERM, graceful) and comes back.
            restarted = true;
            b_pid_before = b.pid();
            sh.b_down.store(true, Ordering::SeqCst);
            *sh.window_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3600));
            b.signal("TERM");
            let t = Instant::now();
            while b.child.try_wait().unwrap().is_none() {
                assert!(t.elapsed() < Duration::from_secs(10), "B did not stop");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let dir = b.dir.clone();
            b = Node::spawn(&dir);
            wait_listening(b_addr).await;
            sh.b_down.store(false, Ordering::SeqCst);
            // A's breaker may keep B closed for its cool-down.
            *sh.window_until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(12));
            eprintln!(
                "soak: B restarted at {:?} (pid {b_pid_before} -> {})",
                t0.elapsed(),
                b.pid()
            );
        }
        if Instant::now() >= next_reload {
            next_reload += reload_every;
            let (name, node) = if step % 2 == 0 { ("A", &a) } else { ("B", &b) };
            if step % 4 < 2 {
                let extra = if step % 8 < 4 {
                    "log_level = error\n"
                } else {
                    ""
                };
                write_conf(name, extra);
                node.signal("HUP");
                reloads.0 += 1;
            } else {
                write_conf(name, "store_path0 = /nonexistent/soak-store\n");
                node.signal("HUP");
                tokio::time::sleep(Duration::from_millis(500)).await;
                write_conf(name, "");
                reloads.1 += 1;
            }
            step += 1;
        }
        assert!(a.child.id() > 0);
    }
    let end_loaded = [
        (rss_kib(a.pid()), fds(a.pid())),
        (rss_kib(b.pid()), fds(b.pid())),
    ];
    let end_m = quiet_measure(&sh, &[a.pid(), b.pid()]).await;
    sh.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let mut a = a;
    assert!(a.child.try_wait().unwrap().is_none(), "A died");
    assert!(b.child.try_wait().unwrap().is_none(), "B died");

    let t = &sh.tally;
    let n = t.requests.load(Ordering::Relaxed);
    let summary = format!(
        "duration {:?}, requests {n} ({:.0}/s), bytes {}, mismatches {}, unexpected statuses {}, \
transport errors {}, restart-window proxy errors {}, reloads valid {} invalid {}, B restarted {restarted}\n\
statuses {:?}\n\
A (pid {}): start {:?}, warm {:?}, end under load {:?}, end quiet {:?}  (RSS KiB, fds)\n\
B (pid {b_pid_before} then {}): start {:?}, warm {:?}, end under load {:?}, end quiet {:?}\n\
problems: {:?}",
        t0.elapsed(),
        n as f64 / t0.elapsed().as_secs_f64(),
        t.bytes.load(Ordering::Relaxed),
        t.mismatches.load(Ordering::Relaxed),
        t.unexpected.load(Ordering::Relaxed),
        t.transport_errors.load(Ordering::Relaxed),
        t.restart_window_errors.load(Ordering::Relaxed),
        reloads.0,
        reloads.1,
        t.statuses.lock().unwrap(),
        a.pid(),
        start_state[0],
        warm_m[0],
        end_loaded[0],
        end_m[0],
        b.pid(),
        start_state[1],
        warm_m[1],
        end_loaded[1],
        end_m[1],
        t.problems.lock().unwrap(),
    );
    eprintln!("soak summary:\n{summary}");
    assert!(n > 0);
    assert_eq!(t.mismatches.load(Ordering::Relaxed), 0, "{summary}");
    assert_eq!(t.unexpected.load(Ordering::Relaxed), 0, "{summary}");
    assert_eq!(t.transport_errors.load(Ordering::Relaxed), 0, "{summary}");
    // Flat: descriptors back to the warm count (small slack for pooled
    // peer connections), RSS within 25% + 4 MiB of the warm value.
    for (who, w, e) in [("A", warm_m[0], end_m[0]), ("B", warm_m[1], end_m[1])] {
        assert!(e.1 <= w.1 + 6, "{who}: fds {} -> {}\n{summary}", w.1, e.1);
        assert!(
            e.0 <= w.0 + w.0 / 4 + 4096,
            "{who}: RSS {} -> {} KiB\n{summary}",
            w.0,
            e.0
        );
    }
}
