//! Hot reload (issue 5 item 2): the reload SIGHUP calls, run in-process;
//! SIGHUP sent to the real binary; `watch_config` noticing an edited file;
//! an invalid configuration rejected while the old one keeps serving;
//! listeners added and removed; ten reloads under a client load with no
//! unexpected answer.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fdfs_httpd::process::reload::ReloadError;
use fdfs_httpd::transport::Kind;
use support::*;

/// A 3300-byte text file of storage A.
const SMALL: &str = "/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
/// An 18-byte file without extension: its type is `http.default_content_type`.
const NOEXT: &str = "/group1/M00/00/00/fwAAAmsGte2AaweAAAAAEmn0lJ80197521";

struct Site {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: PathBuf,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let store = real_store("A", tmp.path());
        let dir = tmp.path().join("conf");
        std::fs::create_dir_all(&dir).unwrap();
        Site {
            dir,
            store,
            _tmp: tmp,
        }
    }

    fn main(&self) -> PathBuf {
        self.dir.join("mod_fastdfs.conf")
    }

    /// The real node settings (and `#include http.conf`) followed by `extra`.
    fn text(&self, extra: &str) -> String {
        let base = real_conf(
            &self.store,
            "127.0.0.2",
            "127.0.0.2,127.0.0.3",
            "proxy",
            recorded_max_delay(1_795_601_849),
        );
        format!("{base}#include http.conf\n{extra}")
    }

    /// Writes the main file (through a rename, so readers never see half).
    fn write(&self, extra: &str) -> PathBuf {
        let tmp = self.dir.join("mod_fastdfs.conf.new");
        std::fs::write(&tmp, self.text(extra)).unwrap();
        std::fs::rename(&tmp, self.main()).unwrap();
        self.main()
    }

    /// Writes the included http.conf in place.
    fn write_http_conf(&self, text: &str) {
        std::fs::write(self.dir.join("http.conf"), text).unwrap();
    }
}

fn content_type(r: &Resp) -> String {
    r.header("content-type").unwrap_or_default()
}

/// Polls `probe` every 50 ms for up to `limit`; true once it holds.
async fn eventually<F, Fut>(limit: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn reload_applies_a_valid_config_and_rejects_an_invalid_one() {
    let site = Site::new();
    site.write_http_conf("http.default_content_type = application/x-first\n");
    let main = site.write("listen = 127.0.0.41:0\n");
    let srv = Running::start(&main).await;
    let addr = srv.addr("127.0.0.41:0");
    let r = get(addr, NOEXT).await;
    assert_eq!(
        (r.status, content_type(&r).as_str()),
        (200, "application/x-first")
    );

    // An edit to an included file, then the reload SIGHUP calls.
    site.write_http_conf("http.default_content_type = application/x-second\n");
    let mut generation = srv.reloader.generation();
    srv.reloader.reload().expect("valid reload");
    assert!(generation.has_changed().unwrap());
    generation.borrow_and_update();
    let r = get(addr, NOEXT).await;
    assert_eq!(content_type(&r), "application/x-second");

    // Invalid: a store path that does not exist. Rejected, old one serves.
    site.write("listen = 127.0.0.41:0\nstore_path0 = /nonexistent/fdfs-store\n");
    match srv.reloader.reload() {
        Err(ReloadError::Config(problems)) => {
            assert!(
                problems
                    .iter()
                    .any(|p| p.to_string().contains("/nonexistent/fdfs-store")),
                "{problems:?}"
            );
        }
        other => panic!("expected config errors, got {other:?}"),
    }
    assert!(!generation.has_changed().unwrap());
    let r = get(addr, NOEXT).await;
    assert_eq!(
        (r.status, content_type(&r).as_str()),
        (200, "application/x-second")
    );
    assert_eq!(get(addr, SMALL).await.status, 200);

    // A syntax error in an include is rejected the same way.
    site.write("listen = 127.0.0.41:0\n");
    site.write_http_conf("listen = not-an-address\n");
    assert!(matches!(srv.reloader.reload(), Err(ReloadError::Config(_))));
    assert_eq!(get(addr, NOEXT).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn reload_adds_and_removes_listeners() {
    let site = Site::new();
    site.write_http_conf("");
    let main = site.write("listen = 127.0.0.42:0\n");
    let srv = Running::start(&main).await;
    let first = srv.addr("127.0.0.42:0");
    assert_eq!(get(first, SMALL).await.status, 200);

    site.write("listen = 127.0.0.42:0\nlisten = 127.0.0.43:0\n");
    let report = srv.reloader.reload().expect("reload");
    assert_eq!(
        report.added,
        [(Kind::Http, "127.0.0.43:0".parse().unwrap())]
    );
    assert!(report.removed.is_empty());
    let second = srv.addr("127.0.0.43:0");
    assert_eq!(
        srv.addr("127.0.0.42:0"),
        first,
        "kept listener keeps its socket"
    );
    assert_eq!(get(second, SMALL).await.status, 200);

    // Remove the first: it stops accepting; the second keeps serving.
    site.write("listen = 127.0.0.43:0\n");
    let report = srv.reloader.reload().expect("reload");
    assert_eq!(
        report.removed,
        [(Kind::Http, "127.0.0.42:0".parse().unwrap())]
    );
    let closed = eventually(Duration::from_secs(5), || async move {
        tokio::net::TcpStream::connect(first).await.is_err()
    })
    .await;
    assert!(closed, "removed listener {first} still accepts");
    assert_eq!(get(second, SMALL).await.status, 200);
    assert_eq!(srv.reloader.listeners().len(), 1);

    // A new listener that cannot be bound rejects the whole reload.
    let busy = fdfs_httpd::transport::bind("127.0.0.44:0".parse().unwrap()).unwrap();
    let busy_addr = busy.local_addr().unwrap();
    site.write(&format!("listen = 127.0.0.43:0\nlisten = {busy_addr}\n"));
    site.write_http_conf("http.default_content_type = application/x-never\n");
    assert!(matches!(srv.reloader.reload(), Err(ReloadError::Bind(_))));
    let r = get(second, NOEXT).await;
    assert_ne!(
        content_type(&r),
        "application/x-never",
        "rejected config not applied"
    );
    drop(busy);
    srv.stop().await;
}

#[tokio::test]
async fn watch_config_reloads_when_a_loaded_file_changes() {
    let site = Site::new();
    site.write_http_conf("http.default_content_type = application/x-before\n");
    let main = site.write("listen = 127.0.0.45:0\nwatch_config = true\n");
    let srv = Running::start(&main).await;
    let addr = srv.addr("127.0.0.45:0");
    assert_eq!(
        content_type(&get(addr, NOEXT).await),
        "application/x-before"
    );
    // Give the watcher a moment to register.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Edit the included file in place: no SIGHUP, no reload call.
    site.write_http_conf("http.default_content_type = application/x-after\n");
    let seen = eventually(Duration::from_secs(10), || async move {
        content_type(&get(addr, NOEXT).await) == "application/x-after"
    })
    .await;
    assert!(seen, "change to http.conf not picked up within 10 s");

    // Replace the main file through a rename: a new listener appears.
    let gen_before = *srv.reloader.generation().borrow();
    site.write("listen = 127.0.0.45:0\nlisten = 127.0.0.46:0\nwatch_config = true\n");
    let added = eventually(Duration::from_secs(10), || async {
        srv.reloader.listeners().len() == 2
    })
    .await;
    assert!(added, "rename of the main file not picked up within 10 s");
    assert_eq!(get(srv.addr("127.0.0.46:0"), SMALL).await.status, 200);

    // An invalid edit is rejected; the old configuration keeps serving.
    let gen_after = *srv.reloader.generation().borrow();
    assert!(gen_after > gen_before);
    site.write_http_conf("listen = not-an-address\n");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(*srv.reloader.generation().borrow(), gen_after);
    let r = get(addr, NOEXT).await;
    assert_eq!(
        (r.status, content_type(&r).as_str()),
        (200, "application/x-after")
    );

    // Turning watch_config off stops watching.
    site.write_http_conf("");
    site.write("listen = 127.0.0.45:0\nlisten = 127.0.0.46:0\n");
    let off = eventually(Duration::from_secs(10), || async {
        !srv.reloader.app().state().config.watch_config
    })
    .await;
    assert!(off);
    let g = *srv.reloader.generation().borrow();
    site.write_http_conf("http.default_content_type = application/x-unwatched\n");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(*srv.reloader.generation().borrow(), g);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_reloads_under_load_fail_no_request() {
    const TYPES: [&str; 2] = ["application/x-even", "application/x-odd"];
    let site = Site::new();
    site.write_http_conf(&format!("http.default_content_type = {}\n", TYPES[0]));
    let main = site.write("listen = 127.0.0.47:0\n");
    let srv = Running::start(&main).await;
    let addr = srv.addr("127.0.0.47:0");
    let file = std::fs::read(
        site.store
            .join("data/00/00/fwAAAmsGte2AaweAAAAAEmn0lJ80197521"),
    )
    .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    // Fresh connections.
    for _ in 0..3 {
        let (done, served, file) = (done.clone(), served.clone(), file.clone());
        clients.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            for _ in 0..100_000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let r = get(addr, NOEXT).await;
                let ct = content_type(&r);
                if r.status != 200 || !r.complete || r.body != file || !TYPES.contains(&ct.as_str())
                {
                    bad.push(format!("{} {ct} {} bytes", r.status, r.body.len()));
                }
                served.fetch_add(1, Ordering::SeqCst);
            }
            bad
        }));
    }
    // One keep-alive connection across all reloads.
    {
        let (done, served) = (done.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut bad = Vec::new();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            for _ in 0..100_000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let req =
                    format!("GET {SMALL} HTTP/1.1\r\nHost: {addr}\r\nRange: bytes=0-99\r\n\r\n");
                s.write_all(req.as_bytes()).await.unwrap();
                let r = read_response(&mut s, false).await;
                if r.status != 206 || r.body.len() != 100 {
                    bad.push(format!("keep-alive {} {} bytes", r.status, r.body.len()));
                }
                served.fetch_add(1, Ordering::SeqCst);
            }
            bad
        }));
    }

    let mut reloads = 0;
    for i in 1..=10 {
        let before = served.load(Ordering::SeqCst);
        // Let some requests through between reloads.
        let moved = eventually(Duration::from_secs(10), || {
            let served = served.clone();
            async move { served.load(Ordering::SeqCst) >= before + 20 }
        })
        .await;
        assert!(moved, "clients stalled before reload {i}");
        site.write_http_conf(&format!("http.default_content_type = {}\n", TYPES[i % 2]));
        srv.reloader.reload().expect("reload under load");
        reloads += 1;
    }
    let before = served.load(Ordering::SeqCst);
    let _ = eventually(Duration::from_secs(10), || {
        let served = served.clone();
        async move { served.load(Ordering::SeqCst) >= before + 20 }
    })
    .await;
    done.store(true, Ordering::SeqCst);
    let mut bad = Vec::new();
    for c in clients {
        bad.extend(c.await.unwrap());
    }
    let total = served.load(Ordering::SeqCst);
    println!("{total} requests across {reloads} reloads");
    assert_eq!(reloads, 10);
    assert!(total >= 220, "only {total} requests");
    assert!(
        bad.is_empty(),
        "{} unexpected answers: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    // The last reload's type is served.
    assert_eq!(content_type(&get(addr, NOEXT).await), TYPES[0]);
    srv.stop().await;
}

/// A free port on `ip` (bound, then released for the child to take).
fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind(format!("{ip}:0")).unwrap();
    l.local_addr().unwrap().port()
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn sighup_reloads_the_running_binary() {
    let site = Site::new();
    site.write_http_conf("http.default_content_type = application/x-before\n");
    let a: SocketAddr = format!("127.0.0.48:{}", free_port("127.0.0.48"))
        .parse()
        .unwrap();
    let b: SocketAddr = format!("127.0.0.49:{}", free_port("127.0.0.49"))
        .parse()
        .unwrap();
    let main = site.write(&format!("listen = {a}\n"));
    let child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
            .arg("--config")
            .arg(&main)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id().to_string();
    // Ready once it answers (the SIGHUP handler is installed by then).
    let up = eventually(Duration::from_secs(15), || async move {
        match tokio::net::TcpStream::connect(a).await {
            Ok(_) => get(a, NOEXT).await.status == 200,
            Err(_) => false,
        }
    })
    .await;
    assert!(up, "binary did not start serving on {a}");

    site.write_http_conf("http.default_content_type = application/x-after\n");
    site.write(&format!("listen = {a}\nlisten = {b}\n"));
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let reloaded = eventually(Duration::from_secs(10), || async move {
        tokio::net::TcpStream::connect(b).await.is_ok()
    })
    .await;
    assert!(reloaded, "new listener {b} not bound after SIGHUP");
    assert_eq!(content_type(&get(b, NOEXT).await), "application/x-after");
    assert_eq!(content_type(&get(a, NOEXT).await), "application/x-after");

    // An invalid config on SIGHUP: the process lives on with the old one.
    site.write(&format!(
        "listen = {a}\nstore_path0 = /nonexistent/fdfs-store\n"
    ));
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(a, SMALL).await.status, 200);
    assert_eq!(
        get(b, SMALL).await.status,
        200,
        "listener kept on rejected reload"
    );

    // SIGTERM still ends it cleanly.
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = child;
    let start = Instant::now();
    let code = loop {
        if let Some(code) = child.0.try_wait().unwrap() {
            break Some(code);
        }
        if start.elapsed() > Duration::from_secs(15) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(code.is_some_and(|c| c.success()), "exit: {code:?}");
}
