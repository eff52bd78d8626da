//! A real cache in front (issue 17 item 1): Varnish (Debian's `varnishd`)
//! started on loopback with a VCL pointing at fdfs-httpd. The cache keeps a
//! normal file for the configured `Cache-Control` (not its default TTL):
//! the second request, a Range request and a revalidation are cache hits
//! and reach fdfs-httpd no more; an appender file (`no-cache`) is stored
//! but revalidated with a conditional request each time (304 from
//! fdfs-httpd), and an append is seen at once.
//!
//! Needs `varnishd` (`apt-get install varnish`): `#[ignore]`, run by
//! `scripts/e2e`.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fdfs_httpd::fileid::{BuildKind, IdBuilder, Source};

const VARNISHD: &str = "/usr/sbin/varnishd";
const BACKEND_IP: &str = "127.0.17.20";
const CACHE_IP: &str = "127.0.17.21";

/// `varnishd -F` as a child, stopped (SIGTERM, then SIGKILL) on drop.
struct Varnish {
    child: Child,
    addr: SocketAddr,
}

impl Varnish {
    fn start(dir: &Path, backend: SocketAddr) -> Varnish {
        let vcl = dir.join("fdfs.vcl");
        std::fs::write(
            &vcl,
            format!(
                r#"vcl 4.1;
backend fdfs {{ .host = "{}"; .port = "{}"; }}
sub vcl_backend_response {{
    set beresp.http.X-Seen-CC = beresp.http.Cache-Control;
    set beresp.http.X-TTL = beresp.ttl;
    set beresp.http.X-Was-304 = beresp.was_304;
    set beresp.http.X-Bereq-INM = bereq.http.If-None-Match;
    if (beresp.http.Cache-Control ~ "no-cache") {{
        # RFC 9111 5.2.2.4: store, but revalidate before each reuse
        # (Varnish never looks up objects whose TTL is 0: 1 ms instead).
        set beresp.ttl = 0.001s;
        set beresp.grace = 0s;
        set beresp.keep = 1h;
        return (deliver);
    }}
}}
sub vcl_deliver {{
    if (obj.hits > 0) {{ set resp.http.X-Cache = "HIT"; }} else {{ set resp.http.X-Cache = "MISS"; }}
}}
"#,
                backend.ip(),
                backend.port()
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind((CACHE_IP, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("{CACHE_IP}:{port}").parse().unwrap();
        assert!(
            Path::new(VARNISHD).exists(),
            "{VARNISHD} missing: apt-get install varnish"
        );
        let child = Command::new(VARNISHD)
            .arg("-F")
            .args(["-j", "none"])
            .arg("-n")
            .arg(dir.join("varnish"))
            .arg("-a")
            .arg(addr.to_string())
            .arg("-f")
            .arg(&vcl)
            .args(["-s", "malloc,32m"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn varnishd");
        let mut v = Varnish { child, addr };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(st)) = v.child.try_wait() {
                panic!("varnishd exited: {st}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "varnishd not listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        v
    }
}

impl Drop for Varnish {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn put(root: &Path, kind: BuildKind, ext: &str, bytes: &[u8], seed: u32) -> String {
    let dir = root.join("data/00/00");
    std::fs::create_dir_all(&dir).unwrap();
    let size = if kind == BuildKind::Appender {
        0
    } else {
        bytes.len() as u64
    };
    let id = IdBuilder::new()
        .source(Source::Ip(Ipv4Addr::new(127, 0, 17, 20)))
        .create_ts(support::now() - 60)
        .size(size)
        .crc32(crc32fast::hash(bytes))
        .rand23(0x300 + seed)
        .extension(ext)
        .kind(kind)
        .build();
    std::fs::write(dir.join(id.rsplit('/').next().unwrap()), bytes).unwrap();
    format!("/{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs varnishd (apt-get install varnish); run by scripts/e2e"]
async fn varnish_keeps_files_for_the_configured_cache_control() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let body: Vec<u8> = (0..50_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let normal = put(&root, BuildKind::Normal, "jpg", &body, 1);
    let appender_path = |url: &str| {
        root.join("data/00/00")
            .join(url.rsplit('/').next().unwrap())
    };
    let appender = put(&root, BuildKind::Appender, "log", b"line 1\n", 2);
    let cc = "public, max-age=31536000, immutable";
    let conf = format!(
        "group_name = group1\nurl_have_group_name = true\nstore_path_count = 1\nstore_path0 = {r}\n\
base_path = {r}\nlocal_ip_addrs = {BACKEND_IP}\nlog_level = warn\ncache_control = {cc}\n",
        r = root.display()
    );
    let srv = support::Server::start(&conf, tmp.path(), BACKEND_IP).await;
    let v = tokio::task::spawn_blocking({
        let dir = tmp.path().to_owned();
        let backend = srv.addr;
        move || Varnish::start(&dir, backend)
    })
    .await
    .unwrap();
    let served = |status| srv.app.metrics.requests("local", status);
    let get = |url: String, headers: Vec<(&'static str, String)>| async move {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        support::request(v.addr, "GET", &url, &h).await
    };

    // First request: a miss, fetched from fdfs-httpd with the configured header.
    let first = get(normal.clone(), vec![]).await;
    assert_eq!(first.status, 200, "{:?}", first.headers);
    assert_eq!(first.body, body);
    assert_eq!(first.header("x-cache").as_deref(), Some("MISS"));
    assert_eq!(first.header("x-seen-cc").as_deref(), Some(cc));
    assert_eq!(
        first.header("x-ttl").as_deref(),
        Some("31536000.000"),
        "TTL from Cache-Control, not Varnish's default"
    );
    assert_eq!(first.header("cache-control").as_deref(), Some(cc));
    assert_eq!(served(200), 1);

    // Then hits: whole, Range, revalidation; fdfs-httpd sees none of them.
    let hit = get(normal.clone(), vec![]).await;
    assert_eq!(
        (hit.status, hit.header("x-cache").as_deref()),
        (200, Some("HIT"))
    );
    assert_eq!(hit.body, body);
    assert_eq!(hit.header("cache-control").as_deref(), Some(cc));
    let range = get(normal.clone(), vec![("Range", "bytes=100-199".into())]).await;
    assert_eq!(
        (range.status, range.header("x-cache").as_deref()),
        (206, Some("HIT"))
    );
    assert_eq!(range.body, &body[100..200]);
    let etag = first.header("etag").unwrap();
    let nm = get(normal.clone(), vec![("If-None-Match", etag)]).await;
    assert_eq!(
        (nm.status, nm.header("x-cache").as_deref()),
        (304, Some("HIT"))
    );
    assert_eq!(nm.header("cache-control").as_deref(), Some(cc));
    assert_eq!(
        served(200) + served(206) + served(304),
        1,
        "one backend fetch in all"
    );

    // Appender (no-cache): stored, revalidated with a conditional request.
    let a1 = get(appender.clone(), vec![]).await;
    assert_eq!((a1.status, a1.body.as_slice()), (200, &b"line 1\n"[..]));
    assert_eq!(a1.header("x-seen-cc").as_deref(), Some("no-cache"));
    assert_eq!(a1.header("x-was-304").as_deref(), Some("false"));
    tokio::time::sleep(Duration::from_millis(20)).await; // past the 1 ms TTL
    let a2 = get(appender.clone(), vec![]).await;
    assert_eq!((a2.status, a2.body.as_slice()), (200, &b"line 1\n"[..]));
    assert_eq!(
        a2.header("x-was-304").as_deref(),
        Some("true"),
        "{:?}",
        a2.headers
    );
    assert_eq!(
        a2.header("x-bereq-inm"),
        a1.header("etag"),
        "conditional on the ETag"
    );
    assert_eq!(
        served(304),
        1,
        "the revalidation reached fdfs-httpd and got 304"
    );
    // An append is seen on the next request.
    std::fs::write(appender_path(&appender), b"line 1\nline 2\n").unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let a3 = get(appender.clone(), vec![]).await;
    assert_eq!(a3.body, b"line 1\nline 2\n");
    assert_eq!(a3.header("x-was-304").as_deref(), Some("false"));
    drop(v);
}
