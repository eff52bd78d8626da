//! The nginx.conf directives around the module (issue 17), each through
//! real sockets: caching headers on local, early-304, proxied, token-fail
//! and 404 answers; add_header and a CORS preflight sent by curl;
//! allow/deny with trusted proxies; valid_referers before the token;
//! limit_rate on the sendfile path; gzip; a per-group override.
//! (A real cache in front: tests/varnish.rs.)

#[path = "support/fake_fdfs.rs"]
mod fake_fdfs;
mod support;

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fdfs_httpd::fileid::{BuildKind, IdBuilder, Source};

/// Writes `bytes` under a new file ID of `group` whose source is `src`;
/// returns the URL path.
fn put(
    root: &Path,
    group: &str,
    src: Ipv4Addr,
    kind: BuildKind,
    ext: &str,
    bytes: &[u8],
    seed: u32,
) -> String {
    let dir = root.join("data/00/00");
    std::fs::create_dir_all(&dir).unwrap();
    let size = if kind == BuildKind::Appender {
        0
    } else {
        bytes.len() as u64
    };
    let id = IdBuilder::new()
        .group(group)
        .source(Source::Ip(src))
        .create_ts(support::now() - 60)
        .size(size)
        .crc32(crc32fast::hash(bytes))
        .rand23(0x200 + seed)
        .extension(ext)
        .kind(kind)
        .build();
    let name = id.rsplit('/').next().unwrap().to_owned();
    std::fs::write(dir.join(&name), bytes).unwrap();
    format!("/{id}")
}

/// Single-group config for `root`, this node `ip`, followed by `extra`.
fn conf(root: &Path, ip: &str, extra: &str) -> String {
    format!(
        "group_name = group1\nurl_have_group_name = true\nstore_path_count = 1\nstore_path0 = {r}\n\
base_path = {r}\nresponse_mode = redirect\nlocal_ip_addrs = {ip}\nlog_level = warn\n{extra}\n",
        r = root.display()
    )
}

fn text(len: usize) -> Vec<u8> {
    let words = [
        "storage ",
        "tracker ",
        "group1 ",
        "replica ",
        "{\"id\": 17} ",
    ];
    let mut out = Vec::new();
    let mut i = 0usize;
    while out.len() < len {
        out.extend_from_slice(words[i % words.len()].as_bytes());
        i = i.wrapping_mul(7).wrapping_add(3);
    }
    out.truncate(len);
    out
}

fn store(tmp: &Path, name: &str) -> PathBuf {
    let root = tmp.join(name);
    std::fs::create_dir_all(root.join("data/00/00")).unwrap();
    root
}

#[tokio::test]
async fn caching_headers_on_every_kind_of_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let a_root = store(tmp.path(), "a");
    let b_root = store(tmp.path(), "b");
    let a_ip = Ipv4Addr::new(127, 0, 17, 1);
    let b_ip = Ipv4Addr::new(127, 0, 17, 2);
    let body = text(5000);
    let local = put(&a_root, "group1", a_ip, BuildKind::Normal, "bin", &body, 1);
    let appender = put(
        &a_root,
        "group1",
        a_ip,
        BuildKind::Appender,
        "log",
        b"appended so far",
        2,
    );
    let missing = {
        let u = put(
            &a_root,
            "group1",
            a_ip,
            BuildKind::Normal,
            "bin",
            b"gone",
            3,
        );
        std::fs::remove_file(
            a_root
                .join("data/00/00")
                .join(u.rsplit('/').next().unwrap()),
        )
        .unwrap();
        u
    };
    // On B only: A proxies it.
    let remote = put(&b_root, "group1", b_ip, BuildKind::Normal, "bin", &body, 4);

    let bdir = tmp.path().join("bconf");
    std::fs::create_dir_all(&bdir).unwrap();
    // B marks its answers private: A's configured value must replace it.
    let b = support::Server::start(
        &conf(&b_root, "127.0.17.2", "cache_control = private, max-age=1"),
        &bdir,
        "127.0.17.2",
    )
    .await;
    let extra = format!(
        "cache_control = public, max-age=31536000, immutable\nexpires = 30d\n\
cache_control_error = no-store\nresponse_mode = proxy\npeer_ip_addrs = 127.0.17.2\n\
peer_http_port = {}\nhttp.anti_steal.check_token = true\nhttp.anti_steal.secret_key = s3cret\n\
anti_steal_bypass_header_name = X-Internal\nanti_steal_bypass_header_value = yes",
        b.addr.port()
    );
    let a = support::Server::start(
        &conf(&a_root, "127.0.17.1", &extra),
        tmp.path(),
        "127.0.17.1",
    )
    .await;
    let internal = [("X-Internal", "yes")];
    let cc = "public, max-age=31536000, immutable";

    let r = support::request(a.addr, "GET", &local, &internal).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(r.header("cache-control").as_deref(), Some(cc));
    let expires = r.header("expires").expect("Expires");
    let at = httpdate::parse_http_date(&expires).unwrap();
    let ahead = at
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((30 * 86400 - 60..=30 * 86400).contains(&ahead), "{expires}");
    let etag = r.header("etag").unwrap();

    let r = support::request(
        a.addr,
        "GET",
        &local,
        &[internal[0], ("Range", "bytes=0-9")],
    )
    .await;
    assert_eq!(
        (r.status, r.header("cache-control").as_deref()),
        (206, Some(cc))
    );

    // Early 304 (validators from the ID): the headers a 200 would carry.
    let r = support::request(
        a.addr,
        "GET",
        &local,
        &[internal[0], ("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("cache-control").as_deref(), Some(cc));
    assert!(r.header("expires").is_some());

    let r = support::request(a.addr, "GET", &appender, &internal).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(r.header("expires"), None);

    let r = support::request(a.addr, "GET", &missing, &internal).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

    // Token failure: never the file's caching headers.
    let r = support::get(a.addr, &local).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(r.header("expires"), None);

    // Proxied from B: B's value replaced.
    let r = support::request(a.addr, "GET", &remote, &internal).await;
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body, body);
    assert_eq!(r.header("cache-control").as_deref(), Some(cc));
    assert!(r.header("expires").is_some());
    // B itself answers with its own value.
    let r = support::request(b.addr, "GET", &remote, &[]).await;
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("private, max-age=1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_headers_on_a_storage_fetch() {
    let tmp = tempfile::tempdir().unwrap();
    let a_root = store(tmp.path(), "a");
    let peer = Ipv4Addr::new(127, 0, 17, 15);
    let body = text(3000);
    // Written elsewhere, then moved away: only the fake peer storage has it.
    let elsewhere = store(tmp.path(), "elsewhere");
    let url = put(
        &elsewhere,
        "group1",
        peer,
        BuildKind::Normal,
        "bin",
        &body,
        7,
    );
    let remote = url.trim_start_matches("/group1/").to_owned();
    let created = support::now() - 60;
    let spec = fake_fdfs::StorageSpec {
        files: [(remote, body.clone())].into_iter().collect(),
        source_ip: peer.to_string(),
        create_timestamp: created,
        ..Default::default()
    };
    let st = fake_fdfs::start_storage_on(peer.into(), spec).await;
    let extra = format!(
        "response_mode = proxy\nproxy_via = storage\nstorage_server_port = {}\npeer_ip_addrs = {peer}\n\
cache_control = public, max-age=600\nexpires = 10m",
        st.addr.port()
    );
    let a = support::Server::start(
        &conf(&a_root, "127.0.17.14", &extra),
        tmp.path(),
        "127.0.17.14",
    )
    .await;
    let r = support::get(a.addr, &url).await;
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body, body);
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("public, max-age=600")
    );
    assert!(r.header("expires").is_some());
    assert!(st.request_count() > 0, "fetched over the storage protocol");
}

/// curl's view of an answer: status line and headers, lowercased names.
fn curl(args: &[&str]) -> (u16, Vec<(String, String)>) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers)
}

fn hdr<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_header_and_a_cors_preflight_from_curl() {
    let tmp = tempfile::tempdir().unwrap();
    let root = store(tmp.path(), "s");
    let url = put(
        &root,
        "group1",
        Ipv4Addr::new(127, 0, 17, 3),
        BuildKind::Normal,
        "jpg",
        b"jpeg bytes",
        1,
    );
    let extra = "add_header = X-Frame-Options: DENY\nadd_header = X-Served-By: fdfs\n\
cors_allow_origin = https://app.example.com\ncors_expose_headers = Content-Range, ETag\ncors_max_age = 1h";
    let s =
        support::Server::start(&conf(&root, "127.0.17.3", extra), tmp.path(), "127.0.17.3").await;
    let base = format!("http://{}{url}", s.addr);

    let b = base.clone();
    let (status, h) = tokio::task::spawn_blocking(move || {
        curl(&[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://app.example.com",
            "-H",
            "Access-Control-Request-Method: GET",
            "-H",
            "Access-Control-Request-Headers: range",
            &b,
        ])
    })
    .await
    .unwrap();
    assert_eq!(status, 204, "{h:?}");
    assert_eq!(
        hdr(&h, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(hdr(&h, "access-control-allow-methods"), Some("GET, HEAD"));
    assert_eq!(hdr(&h, "access-control-allow-headers"), Some("range"));
    assert_eq!(hdr(&h, "access-control-max-age"), Some("3600"));
    assert_eq!(hdr(&h, "x-frame-options"), Some("DENY"));

    // A disallowed origin, or a method other than GET/HEAD: 403.
    let b = base.clone();
    let (status, h) = tokio::task::spawn_blocking(move || {
        curl(&[
            "-X",
            "OPTIONS",
            "-H",
            "Origin: https://evil.example",
            "-H",
            "Access-Control-Request-Method: GET",
            &b,
        ])
    })
    .await
    .unwrap();
    assert_eq!(status, 403);
    assert_eq!(hdr(&h, "access-control-allow-origin"), None);
    let r = support::request(
        s.addr,
        "OPTIONS",
        &url,
        &[
            ("Origin", "https://app.example.com"),
            ("Access-Control-Request-Method", "DELETE"),
        ],
    )
    .await;
    assert_eq!(r.status, 403);
    // OPTIONS that is not a preflight: 405 as before.
    assert_eq!(
        support::request(s.addr, "OPTIONS", &url, &[]).await.status,
        405
    );

    // The actual request.
    let r = support::request(
        s.addr,
        "GET",
        &url,
        &[("Origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"jpeg bytes");
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-expose-headers").as_deref(),
        Some("Content-Range, ETag")
    );
    assert_eq!(r.header("vary").as_deref(), Some("Origin"));
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(r.header("x-served-by").as_deref(), Some("fdfs"));
    // add_header: not on failures (nginx without `always`).
    let r = support::get(s.addr, "/group1/M00/00/00/nothing.jpg").await;
    assert!(r.status >= 400);
    assert_eq!(r.header("x-frame-options"), None);
}

#[tokio::test]
async fn allow_deny_first_match_wins_behind_trusted_proxies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = store(tmp.path(), "s");
    let url = put(
        &root,
        "group1",
        Ipv4Addr::new(127, 0, 17, 4),
        BuildKind::Normal,
        "bin",
        b"x",
        1,
    );
    let extra = "deny = 127.0.17.9\nallow = 127.0.17.0/24, 127.17.5.0/24\ndeny = all\ntrusted_proxies = 127.0.17.5\ncache_control_error = no-store";
    let s =
        support::Server::start(&conf(&root, "127.0.17.4", extra), tmp.path(), "127.0.17.4").await;
    assert_eq!(
        support::get_from("127.0.17.8", s.addr, &url, &[])
            .await
            .status,
        200
    );
    let r = support::get_from("127.0.17.9", s.addr, &url, &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, b"403 Forbidden\n");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        support::get_from("127.17.0.1", s.addr, &url, &[])
            .await
            .status,
        403,
        "deny all"
    );
    // Through the trusted proxy, its X-Forwarded-For decides.
    let xff = |ip| [("X-Forwarded-For", ip)];
    assert_eq!(
        support::get_from("127.0.17.5", s.addr, &url, &xff("127.0.17.9"))
            .await
            .status,
        403
    );
    assert_eq!(
        support::get_from("127.0.17.5", s.addr, &url, &xff("127.17.5.7"))
            .await
            .status,
        200
    );
    assert_eq!(
        support::get_from("127.0.17.5", s.addr, &url, &xff("10.1.1.1"))
            .await
            .status,
        403
    );
    // An untrusted peer's X-Forwarded-For is ignored.
    assert_eq!(
        support::get_from("127.17.0.2", s.addr, &url, &xff("127.0.17.8"))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn valid_referers_come_before_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let root = store(tmp.path(), "s");
    let url = put(
        &root,
        "group1",
        Ipv4Addr::new(127, 0, 17, 6),
        BuildKind::Normal,
        "bin",
        b"pic",
        1,
    );
    let extra = r"valid_referers = none *.example.com
valid_referers = ~\.good\.
http.anti_steal.check_token = true
http.anti_steal.secret_key = k";
    let s =
        support::Server::start(&conf(&root, "127.0.17.6", extra), tmp.path(), "127.0.17.6").await;
    let remote = url.splitn(3, '/').nth(2).unwrap();
    let now = support::now();
    let ts = now.to_string();
    let token = fdfs_httpd::antisteal::token::sign(remote, "k", now);
    let signed = format!("{url}?token={token}&ts={ts}");
    let with = |r: &'static str| [("Referer", r)];
    assert_eq!(support::get(s.addr, &signed).await.status, 200, "none");
    assert_eq!(
        support::request(s.addr, "GET", &signed, &with("https://img.example.com/a"))
            .await
            .status,
        200
    );
    assert_eq!(
        support::request(s.addr, "GET", &signed, &with("http://www.good.org/"))
            .await
            .status,
        200
    );
    let r = support::request(s.addr, "GET", &signed, &with("http://thief.net/")).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        support::request(s.addr, "GET", &signed, &with("blocked-by-proxy"))
            .await
            .status,
        403
    );
    // Bad referer and no token: the referer decides first (403, not 400).
    assert_eq!(
        support::request(s.addr, "GET", &url, &with("http://thief.net/"))
            .await
            .status,
        403
    );
    // A host that merely starts like an allowed one is refused, token or not.
    assert_eq!(
        support::request(s.addr, "GET", &signed, &with("http://example.com.evil/"))
            .await
            .status,
        403
    );
    // Good referer, no token: the token check still applies.
    assert_eq!(
        support::request(s.addr, "GET", &url, &with("http://a.example.com/"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn limit_rate_holds_a_4mib_download_to_1mib_per_second() {
    let tmp = tempfile::tempdir().unwrap();
    let root = store(tmp.path(), "s");
    let big: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i * 31 + i / 4099) as u8)
        .collect();
    let url = put(
        &root,
        "group1",
        Ipv4Addr::new(127, 0, 17, 7),
        BuildKind::Normal,
        "bin",
        &big,
        1,
    );
    let small = put(
        &root,
        "group1",
        Ipv4Addr::new(127, 0, 17, 7),
        BuildKind::Normal,
        "bin",
        b"tiny",
        2,
    );
    let s = support::Server::start(
        &conf(&root, "127.0.17.7", "limit_rate = 1M"),
        tmp.path(),
        "127.0.17.7",
    )
    .await;
    let t0 = Instant::now();
    let r = support::get(s.addr, &url).await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200);
    assert!(r.complete && r.body == big, "body intact");
    eprintln!("4 MiB at limit_rate = 1M: {took:?}");
    assert!(
        took >= Duration::from_secs(3),
        "4 MiB at 1 MiB/s took only {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Small answers are not held back.
    let t0 = Instant::now();
    assert_eq!(support::get(s.addr, &small).await.body, b"tiny");
    assert!(t0.elapsed() < Duration::from_millis(500));

    // limit_rate_after: the first 3 MiB at full speed.
    let tmp2 = tempfile::tempdir().unwrap();
    let s2 = support::Server::start(
        &conf(
            &root,
            "127.0.17.7",
            "limit_rate = 1M\nlimit_rate_after = 3M",
        ),
        tmp2.path(),
        "127.0.17.7",
    )
    .await;
    let t0 = Instant::now();
    let r = support::get(s2.addr, &url).await;
    let took = t0.elapsed();
    assert!(r.complete && r.body == big);
    eprintln!("4 MiB at limit_rate = 1M, limit_rate_after = 3M: {took:?}");
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(2900),
        "{took:?}"
    );

    // read_strategy = threads: reads on the blocking pool, paced the same.
    let tmp3 = tempfile::tempdir().unwrap();
    let s3 = support::Server::start(
        &conf(
            &root,
            "127.0.17.7",
            "limit_rate = 2M\nread_strategy = threads",
        ),
        tmp3.path(),
        "127.0.17.7",
    )
    .await;
    let t0 = Instant::now();
    let r = support::get(s3.addr, &url).await;
    let took = t0.elapsed();
    eprintln!("4 MiB at limit_rate = 2M, read_strategy = threads: {took:?}");
    assert!(r.complete && r.body == big);
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn gzip_for_text_types_only_whole_answers_with_their_own_etag() {
    let tmp = tempfile::tempdir().unwrap();
    let root = store(tmp.path(), "s");
    let ip = Ipv4Addr::new(127, 0, 17, 10);
    let body = text(20_000);
    let txt = put(&root, "group1", ip, BuildKind::Normal, "txt", &body, 1);
    let png = put(&root, "group1", ip, BuildKind::Normal, "png", &body, 2);
    let tiny = put(&root, "group1", ip, BuildKind::Normal, "txt", b"short", 3);
    let extra = "gzip = on\ngzip_types = text/plain application/json\ngzip_min_length = 100\ncache_control = max-age=60";
    let s = support::Server::start(
        &conf(&root, "127.0.17.10", extra),
        tmp.path(),
        "127.0.17.10",
    )
    .await;
    let gz = [("Accept-Encoding", "gzip, deflate, br")];

    let plain = support::get(s.addr, &txt).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, body);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary").as_deref(), Some("Accept-Encoding"));
    let etag = plain.header("etag").unwrap();

    let r = support::request(s.addr, "GET", &txt, &gz).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    assert!(r.body.len() < body.len() / 2, "{} bytes", r.body.len());
    assert_eq!(gunzip(&r.body), body);
    let gz_tag = r.header("etag").unwrap();
    assert_eq!(gz_tag, format!("{}-gzip\"", etag.trim_end_matches('"')));
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(r.header("accept-ranges"), None);
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=60"));

    // Revalidation of each variant with its own tag.
    let r = support::request(s.addr, "GET", &txt, &[gz[0], ("If-None-Match", &gz_tag)]).await;
    assert_eq!((r.status, r.header("etag")), (304, Some(gz_tag.clone())));
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
    let r = support::request(s.addr, "GET", &txt, &[gz[0], ("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));

    // Never for Range, HEAD, refusals, small bodies or compressed types.
    let r = support::request(s.addr, "GET", &txt, &[gz[0], ("Range", "bytes=0-99")]).await;
    assert_eq!((r.status, r.header("content-encoding")), (206, None));
    assert_eq!(r.body, &body[..100]);
    let r = support::request(s.addr, "HEAD", &txt, &gz).await;
    assert_eq!((r.status, r.header("content-encoding")), (200, None));
    assert_eq!(r.header("content-length").unwrap(), body.len().to_string());
    let r = support::request(s.addr, "GET", &tiny, &gz).await;
    assert_eq!(
        (r.body.as_slice(), r.header("content-encoding")),
        (&b"short"[..], None)
    );
    let r = support::request(s.addr, "GET", &png, &gz).await;
    assert_eq!(r.body, body);
    assert_eq!(
        (r.header("content-encoding"), r.header("vary")),
        (None, None)
    );
    let r = support::request(
        s.addr,
        "GET",
        &txt,
        &[("Accept-Encoding", "gzip;q=0, identity")],
    )
    .await;
    assert_eq!(r.header("content-encoding"), None);
}

#[tokio::test]
async fn a_group_section_overrides_the_global_directives() {
    let tmp = tempfile::tempdir().unwrap();
    let r1 = store(tmp.path(), "g1");
    let r2 = store(tmp.path(), "g2");
    let ip = Ipv4Addr::new(127, 0, 17, 11);
    let u1 = put(&r1, "group1", ip, BuildKind::Normal, "bin", b"one", 1);
    let u2 = put(&r2, "group2", ip, BuildKind::Normal, "bin", b"two", 2);
    let conf = format!(
        "url_have_group_name = true\ngroup_count = 2\nlocal_ip_addrs = 127.0.17.11\nlog_level = warn\n\
cache_control = max-age=10\nadd_header = X-Level: global\n\
[group1]\ngroup_name = group1\nstore_path_count = 1\nstore_path0 = {}\n\
[group2]\ngroup_name = group2\nstore_path_count = 1\nstore_path0 = {}\n\
cors_allow_origin = *\nadd_header = X-Level: group2\n",
        r1.display(),
        r2.display()
    );
    let s = support::Server::start(&conf, tmp.path(), "127.0.17.11").await;
    let origin = [("Origin", "https://x.example")];
    let a = support::request(s.addr, "GET", &u1, &origin).await;
    assert_eq!(a.body, b"one");
    assert_eq!(a.header("access-control-allow-origin"), None);
    assert_eq!(a.header("x-level").as_deref(), Some("global"));
    assert_eq!(a.header("cache-control").as_deref(), Some("max-age=10"));
    let b = support::request(s.addr, "GET", &u2, &origin).await;
    assert_eq!(b.body, b"two");
    assert_eq!(
        b.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        b.header("x-level").as_deref(),
        Some("group2"),
        "the section's list replaces the global one"
    );
    assert_eq!(
        b.header("cache-control").as_deref(),
        Some("max-age=10"),
        "inherited"
    );
    let pre = [
        ("Origin", "https://x.example"),
        ("Access-Control-Request-Method", "GET"),
    ];
    assert_eq!(
        support::request(s.addr, "OPTIONS", &u2, &pre).await.status,
        204
    );
    assert_eq!(
        support::request(s.addr, "OPTIONS", &u1, &pre).await.status,
        405
    );
}

#[test]
fn check_config_reports_bad_directive_values_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = store(tmp.path(), "s");
    let bad =
        "expires = soon\nadd_header = Content-Length: 5\nvalid_referers = ~(\nallow = 10.0.0.1/8\n\
limit_rate = fast\ngzip_comp_level = 10\ncors_allow_origin = app.example.com\ngzip_types = text";
    let path = tmp.path().join("mod_fastdfs.conf");
    let text = conf(&root, "127.0.17.12", bad);
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let first = text.lines().position(|l| l.starts_with("expires")).unwrap() + 1;
    for (i, key) in [
        "expires",
        "add_header",
        "valid_referers",
        "allow",
        "limit_rate",
        "gzip_comp_level",
        "cors_allow_origin",
        "gzip_types",
    ]
    .iter()
    .enumerate()
    {
        let at = format!("mod_fastdfs.conf:{}", first + i);
        assert!(
            err.lines().any(|l| l.contains(&at) && l.contains(key)),
            "{key} not reported at {at}:\n{err}"
        );
    }
}

#[tokio::test]
async fn limit_rate_over_h2c_too() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tmp = tempfile::tempdir().unwrap();
    let root = store(tmp.path(), "s");
    let big: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| (i * 13 + i / 511) as u8)
        .collect();
    let url = put(
        &root,
        "group1",
        Ipv4Addr::new(127, 0, 17, 13),
        BuildKind::Normal,
        "bin",
        &big,
        1,
    );
    let extra = "http2_cleartext = true\nlimit_rate = 1M";
    let s = support::Server::start(
        &conf(&root, "127.0.17.13", extra),
        tmp.path(),
        "127.0.17.13",
    )
    .await;
    let tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://localhost{url}"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let t0 = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        let r = send.send_request(req).await.unwrap();
        assert_eq!(r.version(), http::Version::HTTP_2);
        r.into_body().collect().await.unwrap().to_bytes()
    })
    .await
    .expect("within 20 s");
    let took = t0.elapsed();
    eprintln!("2 MiB over h2c at limit_rate = 1M: {took:?}");
    assert_eq!(&got[..], &big[..]);
    assert!(took >= Duration::from_millis(1500), "{took:?}");
}
