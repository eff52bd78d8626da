//! Graceful shutdown and systemd notification (issue 5 items 6 and 7), on
//! the real binary: SIGTERM stops accepting, a slow large download in
//! flight completes in full, the process exits 0; `NOTIFY_SOCKET` receives
//! `READY=1` after binding (never when the admin listener cannot bind),
//! `RELOADING=1` with `MONOTONIC_USEC` on SIGHUP and `STOPPING=1` on SIGTERM.

mod ops_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use ops_common::*;

const BIG: usize = 32 * 1024 * 1024;

#[test]
fn sigterm_finishes_inflight_download_then_exits_0() {
    // One event loop, and worker threads (the download on a worker).
    for workers in [1, 2] {
        sigterm_drains_with(workers);
    }
}

fn sigterm_drains_with(workers: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[BIG]);
    let c = conf(
        &st,
        &format!("shutdown_grace = 30s\nworker_threads = {workers}"),
    );
    let mut b = Binary::start(tmp.path(), &c, "127.0.0.51", &[]);
    let (url, want) = &st.files[0];

    let mut s = TcpStream::connect(b.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::with_capacity(BIG + 1024);
    let mut buf = vec![0u8; 256 * 1024];
    let n = s.read(&mut buf).unwrap();
    got.extend_from_slice(&buf[..n]);

    b.signal("TERM");
    let t0 = Instant::now();
    // New connections are refused soon after the signal.
    let mut refused = false;
    while t0.elapsed() < Duration::from_secs(5) {
        if TcpStream::connect(b.addr).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(refused, "listener still accepting after SIGTERM");

    // Keep reading slowly: the download outlives the signal by seconds.
    let mut slept = Duration::ZERO;
    loop {
        let n = s.read(&mut buf).expect("download continues");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if slept < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
            slept += Duration::from_millis(20);
        }
        assert!(t0.elapsed() < Duration::from_secs(60));
    }
    let head = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head_text = String::from_utf8_lossy(&got[..head]).to_string();
    assert!(head_text.starts_with("HTTP/1.1 200"), "{head_text}");
    assert_eq!(got.len() - head, want.len(), "download complete");
    assert!(got[head..] == want[..], "download intact");
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "the download did not outlive the signal"
    );
    let status = b
        .wait(Duration::from_secs(10))
        .expect("exits after the drain");
    assert!(status.success(), "{status}");
}

#[test]
fn shutdown_grace_bounds_the_drain() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[BIG]);
    let c = conf(&st, "shutdown_grace = 1s");
    let mut b = Binary::start(tmp.path(), &c, "127.0.0.52", &[]);
    let mut s = TcpStream::connect(b.addr).unwrap();
    write!(s, "GET {} HTTP/1.1\r\nHost: x\r\n\r\n", st.files[0].0).unwrap();
    let mut buf = [0u8; 1024];
    let _ = s.read(&mut buf).unwrap();
    // A client that stops reading cannot hold the process past the grace.
    let t0 = Instant::now();
    b.signal("INT");
    let status = b
        .wait(Duration::from_secs(10))
        .expect("exits after the grace");
    assert!(status.success(), "{status}");
    assert!(t0.elapsed() >= Duration::from_millis(900));
}

#[test]
fn sd_notify_ready_and_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let c = conf(&st, "");
    let mut b = Binary::start(
        tmp.path(),
        &c,
        "127.0.0.53",
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("READY=1 within 20 s");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    assert!(
        msg.lines()
            .any(|l| l == format!("MAINPID={}", b.child.id())),
        "{msg}"
    );
    // READY came after binding: the listener accepts.
    assert!(TcpStream::connect(b.addr).is_ok());

    // SIGHUP: RELOADING=1 with MONOTONIC_USEC (Type=notify-reload needs
    // both), then READY=1 again.
    let now_usec = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
    };
    let before = now_usec();
    b.signal("HUP");
    let n = sock.recv(&mut buf).expect("RELOADING=1");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    let mut lines = msg.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{msg}");
    let usec: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {msg}"));
    assert!((before..=now_usec()).contains(&usec), "{usec} {msg}");
    let n = sock.recv(&mut buf).expect("READY=1 after the reload");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg}");
    b.signal("TERM");
    let n = sock.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(b.wait(Duration::from_secs(10)).unwrap().success());
}

#[test]
fn no_ready_when_the_admin_listener_cannot_bind() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let sock_path = tmp.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    // The admin port is taken: the process must exit non-zero without
    // ever telling systemd it is ready.
    let taken = std::net::TcpListener::bind("127.0.0.54:0").unwrap();
    let port = free_port("127.0.0.54");
    let path = tmp.path().join("mod_fastdfs.conf");
    std::fs::write(
        &path,
        format!(
            "{}\nlisten = 127.0.0.54:{port}\nadmin_listen = {}\n",
            conf(&st, ""),
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &sock_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("still running with its admin port taken");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{status}");
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    match sock.recv(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!(
            "systemd was told something: {:?}",
            other.map(|n| String::from_utf8_lossy(&buf[..n]).to_string())
        ),
    }
}
