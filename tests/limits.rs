//! Limits (issue 5 item 3): per-IP rate limit with 429 + Retry-After,
//! trusted proxies and X-Forwarded-For, max_connections, header read
//! timeout against 500 half-open connections, max header size, and the
//! keep-alive idle timeout; `--check-config` on the new keys.

mod ops_common;
mod support;

use std::time::{Duration, Instant};

use ops_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF or error; returns when the peer closed, or `None` on timeout.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((t0 + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn rate_limit_buckets_survive_a_reload_with_the_same_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[100]);
    let limited = "rate_limit_per_ip = 1/s\nrate_limit_burst = 2";
    let srv = support::Server::start(&conf(&st, limited), tmp.path(), "127.0.0.22").await;
    let url = &st.files[0].0;
    for i in 0..3 {
        assert_eq!(support::get(srv.addr, url).await.status, 200, "request {i}");
    }
    assert_eq!(support::get(srv.addr, url).await.status, 429);
    let reload = |extra: &str| {
        let dir = tmp.path().join("reloaded");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mod_fastdfs.conf");
        std::fs::write(&path, conf(&st, extra)).unwrap();
        match fdfs_httpd::config::Config::load(&path) {
            Ok(l) => srv.app.replace(l.config),
            Err(e) => panic!("{e:?}"),
        }
    };
    // Another key changes, the rate does not: the client's bucket is kept.
    reload(&format!("{limited}\nlog_level = debug"));
    assert_eq!(support::get(srv.addr, url).await.status, 429, "bucket kept");
    // A new rate: new buckets.
    reload("rate_limit_per_ip = 1000/s\nrate_limit_burst = 2");
    assert_eq!(support::get(srv.addr, url).await.status, 200, "new quota");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[100]);
    let c = conf(&st, "rate_limit_per_ip = 1/s\nrate_limit_burst = 2");
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.21").await;
    let url = &st.files[0].0;
    for i in 0..3 {
        let r = support::get(srv.addr, url).await;
        assert_eq!(r.status, 200, "request {i} is within rate + burst");
    }
    let r = support::get(srv.addr, url).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(srv.app.metrics.requests("rate_limited", 429), 1);
    // The bucket refills at the configured rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(support::get(srv.addr, url).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn trusted_proxies_decide_whose_forwarded_for_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let c = conf(
        &st,
        "rate_limit_per_ip = 1/s\ntrusted_proxies = 127.0.0.29, 10.0.0.0/8",
    );
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.22").await;
    let url = &st.files[0].0;
    // Behind the trusted proxy each forwarded client has its own bucket.
    let xff = |v| [("X-Forwarded-For", v)];
    assert_eq!(
        support::get_from("127.0.0.29", srv.addr, url, &xff("192.0.2.1"))
            .await
            .status,
        200
    );
    assert_eq!(
        support::get_from("127.0.0.29", srv.addr, url, &xff("192.0.2.1"))
            .await
            .status,
        429
    );
    assert_eq!(
        support::get_from("127.0.0.29", srv.addr, url, &xff("192.0.2.2"))
            .await
            .status,
        200
    );
    // A forged left-most entry does not give a fresh bucket.
    assert_eq!(
        support::get_from(
            "127.0.0.29",
            srv.addr,
            url,
            &xff("198.51.100.9, 192.0.2.2, 10.1.1.1")
        )
        .await
        .status,
        429
    );
    // An untrusted peer's header is ignored: it is limited as itself.
    assert_eq!(
        support::get_from("127.0.0.30", srv.addr, url, &xff("192.0.2.3"))
            .await
            .status,
        200
    );
    assert_eq!(
        support::get_from("127.0.0.30", srv.addr, url, &xff("192.0.2.4"))
            .await
            .status,
        429
    );
    srv.stop().await;
}

#[tokio::test]
async fn max_connections_caps_open_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let c = conf(&st, "max_connections = 2\nheader_read_timeout = 30s");
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.23").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = srv.addr;
    let url = st.files[0].0.clone();
    let third = tokio::spawn(async move { support::get(addr, &url).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !third.is_finished(),
        "a third connection must wait for a slot"
    );
    drop(held.pop());
    let r = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a slot frees")
        .unwrap();
    assert_eq!(r.status, 200);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_500_half_open_connections_do_not_hold_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[1000]);
    let c = conf(&st, "header_read_timeout = 1s\nkeepalive_timeout = 60s");
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.24").await;
    let t0 = Instant::now();
    let mut slow = Vec::new();
    for i in 0..500 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        // Half a request head, never finished (some send nothing at all).
        if i % 5 != 0 {
            s.write_all(b"GET /group1/M00/00/00/x HTTP/1.1\r\nHost: x\r\nX-A: ")
                .await
                .unwrap();
        }
        slow.push(s);
    }
    // Normal requests are served meanwhile.
    for _ in 0..20 {
        let r = support::get(srv.addr, &st.files[0].0).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, st.files[0].1);
    }
    // And the server drops every half-open connection after the header
    // read timeout (not waiting for the 60 s keep-alive timeout).
    for (i, s) in slow.iter_mut().enumerate() {
        let left = Duration::from_secs(10).saturating_sub(t0.elapsed());
        assert!(
            closed_within(s, left.max(Duration::from_millis(1)))
                .await
                .is_some(),
            "slow connection {i} still open after 10 s"
        );
    }
    assert!(t0.elapsed() >= Duration::from_millis(900));
    assert_eq!(support::get(srv.addr, &st.files[0].0).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn oversized_request_head_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let c = conf(&st, "max_header_size = 8K");
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.25").await;
    let big = "a".repeat(20 * 1024);
    let r = support::request(srv.addr, "GET", &st.files[0].0, &[("X-Big", &big)]).await;
    assert_eq!(r.status, 431);
    let fits = "a".repeat(4 * 1024);
    let r = support::request(srv.addr, "GET", &st.files[0].0, &[("X-Big", &fits)]).await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn keepalive_timeout_closes_idle_connections_only() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[100, 8 * 1024 * 1024]);
    let c = conf(&st, "keepalive_timeout = 1s\nheader_read_timeout = 30s");
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.26").await;
    let req = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", st.files[0].0);

    // Reused within the timeout, then closed after ~1 s idle.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(support::read_response(&mut s, false).await.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.write_all(req.as_bytes()).await.unwrap();
    assert_eq!(support::read_response(&mut s, false).await.status, 200);
    let idle = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("idle connection closed by keepalive_timeout");
    assert!(
        idle >= Duration::from_millis(800),
        "closed too early: {idle:?}"
    );

    // A connection that never sends a request is idle too.
    let mut quiet = TcpStream::connect(srv.addr).await.unwrap();
    assert!(closed_within(&mut quiet, Duration::from_secs(5))
        .await
        .is_some());

    // A download slower than the timeout is not cut.
    let mut d = TcpStream::connect(srv.addr).await.unwrap();
    d.write_all(format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", st.files[1].0).as_bytes())
        .await
        .unwrap();
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let want = st.files[1].1.len();
    while t0.elapsed() < Duration::from_secs(30) {
        let n = d.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() >= want && got.windows(4).any(|w| w == b"\r\n\r\n") {
            let head = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            if got.len() - head >= want {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let head = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        t0.elapsed() > Duration::from_millis(1200),
        "download was not slow"
    );
    assert_eq!(&got[head..], &st.files[1].1[..], "slow download complete");
    let metrics = srv.app.metrics.render((0, 0, 0));
    let closed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fdfs_connections_idle_closed_total "))
        .unwrap();
    assert!(closed == "2" || closed == "3", "{closed}");
    srv.stop().await;
}

#[test]
fn check_config_validates_the_ops_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let run = |extra: &str| {
        let p = tmp.path().join("check.conf");
        std::fs::write(&p, conf(&st, extra)).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
            .arg("--config")
            .arg(&p)
            .arg("--check-config")
            .output()
            .unwrap()
    };
    let ok = run("rate_limit_per_ip = 100/s\nrate_limit_burst = 50\nmax_connections = 100\n\
trusted_proxies = 127.0.0.1, 10.0.0.0/8\nheader_read_timeout = 10s\nmax_header_size = 16K\n\
keepalive_timeout = 30s\naccess_log = stderr\naccess_log_format = json\nadmin_listen = 127.0.0.1:8889\nshutdown_grace = 5s");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for bad in [
        "rate_limit_per_ip = fast",
        "rate_limit_per_ip = 0",
        "max_connections = -1",
        "trusted_proxies = 10.0.0.1/8",
        "header_read_timeout = 0",
        "max_header_size = 1K",
        "access_log_format = common",
        "access_log = /nonexistent-dir/access.log",
        "admin_listen = nowhere",
        "listen = 127.0.0.1:8889\nadmin_listen = 127.0.0.1:8889",
        "shutdown_grace = soon",
    ] {
        let out = run(bad);
        assert!(!out.status.success(), "{bad} must be rejected");
    }
}
