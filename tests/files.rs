//! Appender, slave and FLV files and multi-group configs through real
//! sockets (docs/module-behaviour.md §6.2, §12; docs/config-keys.md §1.1).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};

use fdfs_httpd::http::conditional::{etag_for_meta, http_date};
use support::{copy_tree, fixtures, now, real_store, set_mtime, Resp, Server};

/// `get`/`request` with the future boxed: keeps each test's own future
/// small (many awaits in one test overflow the test thread's stack in debug
/// builds).
async fn get(a: std::net::SocketAddr, target: &str) -> Resp {
    Box::pin(support::get(a, target)).await
}

/// See [`get`].
async fn request(
    a: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    Box::pin(support::request(a, method, target, headers)).await
}

const APPENDER: &str = "group1/M00/00/00/fwAAAmsGtfqEWkUIAAAAAOO0a4Y074.log";
const APPENDER_MTIME: i64 = 1795601914;
const SLAVE: &str = "group1/M00/00/00/fwAAAmsGtf2ARhwwAAAAG6BySuY736_big.txt";
const SLAVE_MASTER: &str = "group1/M00/00/00/fwAAAmsGtf2ARhwwAAAAG6BySuY736.txt";
const FLV: &str = "group1/M00/00/00/fwAAAmsGte2Aa41ZAABwhQ9aX4c544.flv";
const TXT: &str = "group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
const FLV_HEADER: [u8; 13] = [
    0x46, 0x4C, 0x56, 0x01, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x09,
];

fn conf(store: &Path, ip: &str, extra: &str) -> String {
    let mime = fixtures().join("real/configs/mime.types");
    format!(
        "base_path={store}\nload_fdfs_parameters_from_tracker=false\nstorage_sync_file_max_delay=86400\n\
group_name=group1\nurl_have_group_name=true\nstore_path_count=1\nstore_path0={store}\n\
response_mode=proxy\ngroup_count=0\nlocal_ip_addrs={ip}\n\
http.default_content_type=application/octet-stream\nhttp.mime_types_filename={mime}\n\
http.multi_range.enabled=true\n{extra}",
        store = store.display(),
        mime = mime.display(),
    )
}

/// Node A of the real fixture; returns (tempdir, store root, server).
async fn node_a(extra: &str) -> (tempfile::TempDir, PathBuf, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let store = real_store("A", tmp.path());
    let c = conf(&store, "127.0.0.2", extra);
    let server = Server::start(&c, tmp.path(), "127.0.0.2").await;
    (tmp, store, server)
}

fn on_disk(store: &Path, id: &str) -> PathBuf {
    store
        .join("data")
        .join(id.trim_start_matches("group1/M00/"))
}

fn etag(len: u64, mtime: i64) -> String {
    etag_for_meta(len, mtime).to_str().unwrap().to_string()
}

fn date(t: i64) -> String {
    http_date(t).to_str().unwrap().to_string()
}

#[tokio::test]
async fn appender_is_revalidated_on_every_request() {
    let (_tmp, store, server) = node_a("").await;
    let a = server.addr;
    let u = format!("/{APPENDER}");
    let path = on_disk(&store, APPENDER);
    let mut content = std::fs::read(&path).unwrap();
    assert_eq!(content.len(), 56);

    let r = get(a, &u).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content);
    assert_eq!(r.header("last-modified"), Some(date(APPENDER_MTIME)));
    let etag1 = r.header("etag").unwrap();
    assert_eq!(etag1, etag(56, APPENDER_MTIME));
    let r = request(a, "GET", &u, &[("Range", "bytes=56-")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes */56"));

    // Append and re-request at once (well inside the open-file cache TTL).
    let extra = b"appended line 1\nappended line 2\n";
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(extra)
        .unwrap();
    let t2 = APPENDER_MTIME + 100;
    set_mtime(&path, t2);
    content.extend_from_slice(extra);
    let size2 = content.len() as u64;

    let r = get(a, &u).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content, "the grown file is served whole");
    assert_eq!(r.header("content-length"), Some(size2.to_string()));
    assert_eq!(r.header("last-modified"), Some(date(t2)));
    let etag2 = r.header("etag").unwrap();
    assert_eq!(etag2, etag(size2, t2));
    assert_ne!(etag1, etag2);

    let r = request(a, "HEAD", &u, &[]).await;
    assert_eq!(r.header("content-length"), Some(size2.to_string()));

    // A Range beyond the old end now works; beyond the new end is 416.
    let r = request(a, "GET", &u, &[("Range", "bytes=56-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, extra);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 56-{}/{size2}", size2 - 1))
    );
    let r = request(a, "GET", &u, &[("Range", &format!("bytes={size2}-"))]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{size2}")));

    // Validators: the old ETag no longer matches, the new one does.
    let r = request(a, "GET", &u, &[("If-None-Match", &etag1)]).await;
    assert_eq!(r.status, 200);
    let r = request(a, "GET", &u, &[("If-None-Match", &etag2)]).await;
    assert_eq!(r.status, 304);
    let r = request(
        a,
        "GET",
        &u,
        &[("If-Modified-Since", &date(APPENDER_MTIME))],
    )
    .await;
    assert_eq!(r.status, 200, "IMS uses the local mtime, not the ID's");
    let r = request(a, "GET", &u, &[("If-Modified-Since", &date(t2))]).await;
    assert_eq!(r.status, 304);

    // Appended within the same second: the mtime is unchanged but the size
    // (and so the ETag) is not.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"x")
        .unwrap();
    set_mtime(&path, t2);
    let r = get(a, &u).await;
    assert_eq!(r.body.len() as u64, size2 + 1);
    assert_eq!(r.header("last-modified"), Some(date(t2)));
    assert_eq!(r.header("etag"), Some(etag(size2 + 1, t2)));
    let r = request(a, "GET", &u, &[("If-None-Match", &etag2)]).await;
    assert_eq!(
        r.status, 200,
        "a stale ETag of the same second must not 304"
    );

    // Truncated (appender truncate): served at its new size.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10)
        .unwrap();
    let r = get(a, &u).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, content[..10]);
    let r = request(a, "GET", &u, &[("Range", "bytes=10-")]).await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes */10"));
}

#[tokio::test]
async fn replaced_file_is_seen_at_once() {
    let (_tmp, store, server) = node_a("").await;
    let u = format!("/{SLAVE}");
    let path = on_disk(&store, SLAVE);
    assert_eq!(
        get(server.addr, &u).await.body,
        std::fs::read(&path).unwrap()
    );
    // A new inode at the same path (rename over it) inside the cache TTL.
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, b"a brand new slave body").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let r = get(server.addr, &u).await;
    assert_eq!(r.body, b"a brand new slave body");
    // Deleted: not local (the source is this node) → 404.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(get(server.addr, &u).await.status, 404);
}

#[tokio::test]
async fn slave_files() {
    let (_tmp, store, server) = node_a("").await;
    let a = server.addr;
    let u = format!("/{SLAVE}");
    let path = on_disk(&store, SLAVE);
    // Last-Modified from the local mtime, not the master's timestamp.
    let t = 1_795_700_000;
    set_mtime(&path, t);
    let body = std::fs::read(&path).unwrap();
    let r = get(a, &u).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(r.header("last-modified"), Some(date(t)));
    assert_eq!(r.header("etag"), Some(etag(body.len() as u64, t)));
    let master = get(a, &format!("/{SLAVE_MASTER}")).await;
    assert_ne!(master.header("last-modified"), r.header("last-modified"));

    // The size is not in a slave's name: any size is served.
    let bigger: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &bigger).unwrap();
    set_mtime(&path, t + 5);
    let r = get(a, &u).await;
    assert_eq!(r.body, bigger);
    assert_eq!(r.header("last-modified"), Some(date(t + 5)));
    let r = request(a, "GET", &u, &[("Range", "bytes=990-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, bigger[990..]);
    let r = request(a, "GET", &u, &[("If-Modified-Since", &date(t + 5))]).await;
    assert_eq!(r.status, 304);

    // `store_slave_file_use_link`: the slave is a symlink to its master.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(on_disk(&store, SLAVE_MASTER), &path).unwrap();
    let r = get(a, &u).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        std::fs::read(on_disk(&store, SLAVE_MASTER)).unwrap()
    );

    // A symlink out of the store is never followed.
    let outside = store.parent().unwrap().join("outside.txt");
    std::fs::write(&outside, b"secret").unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    let r = get(a, &u).await;
    assert_eq!(r.status, 404);
    assert_ne!(r.body, b"secret");
}

#[tokio::test]
async fn flv_pseudo_streaming() {
    let (_tmp, store, server) = node_a("flv_support=true\nflv_extension=flv\n").await;
    let a = server.addr;
    let data = std::fs::read(on_disk(&store, FLV)).unwrap();
    let size = data.len();
    assert_eq!(size, 28805);
    let with_header = |slice: &[u8]| {
        let mut v = FLV_HEADER.to_vec();
        v.extend_from_slice(slice);
        v
    };
    let q = |s: &str| format!("/{FLV}?{s}");

    // (query, expected body) for 200 answers.
    let ok: Vec<(&str, Vec<u8>)> = vec![
        ("start=1000", with_header(&data[1000..])),
        ("start=1000&end=2000", with_header(&data[1000..2000])),
        ("start=0", data.clone()),
        ("start=0&end=100", data[..100].to_vec()),
        ("start=-100", data[size - 100..].to_vec()),
        ("start=abc", data.clone()),
        ("start=12abc", data.clone()),
        ("start=1000&end=abc", with_header(&data[1000..])),
        ("start=1000&end=99999999", with_header(&data[1000..])),
        ("start=28804", with_header(&data[28804..])),
        // Quirk kept: end=1 means "to the end".
        ("start=1000&end=1", with_header(&data[1000..])),
        ("filename=x.flv&start=1", with_header(&data[1..])),
    ];
    for (query, want) in &ok {
        let r = get(a, &q(query)).await;
        assert_eq!(r.status, 200, "{query}");
        assert_eq!(r.body.len(), want.len(), "{query}");
        assert!(r.body == *want, "{query}: body differs");
        assert_eq!(r.header("content-length"), Some(want.len().to_string()));
        assert!(r.header("content-range").is_none(), "{query}");
        assert_eq!(r.header("content-type").as_deref(), Some("video/x-flv"));
        let h = request(a, "HEAD", &q(query), &[]).await;
        assert_eq!(h.status, 200);
        assert_eq!(h.header("content-length"), Some(want.len().to_string()));
    }
    for query in [
        "start=28805",
        "start=99999",
        "start=1000&end=500",
        "start=1000&end=1000",
        "start=1000&end=0",
    ] {
        assert_eq!(get(a, &q(query)).await.status, 400, "{query}");
    }

    // A Range header wins over start.
    let r = request(a, "GET", &q("start=1000"), &[("Range", "bytes=0-9")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[..10]);
    let r = request(a, "GET", &q("start=99999"), &[("Range", "bytes=-5")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[size - 5..]);

    // Other extensions ignore start.
    let txt = std::fs::read(on_disk(&store, TXT)).unwrap();
    let r = get(a, &format!("/{TXT}?start=100")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, txt);
}

#[tokio::test]
async fn flv_off_or_other_extension() {
    let (_tmp, store, server) = node_a("flv_support=false\n").await;
    let data = std::fs::read(on_disk(&store, FLV)).unwrap();
    let r = get(server.addr, &format!("/{FLV}?start=1000")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    let (_tmp2, store2, server2) = node_a("flv_support=true\nflv_extension=txt\n").await;
    let r = get(server2.addr, &format!("/{FLV}?start=1000")).await;
    assert_eq!(r.body, data);
    let txt = std::fs::read(on_disk(&store2, TXT)).unwrap();
    let r = get(server2.addr, &format!("/{TXT}?start=100")).await;
    assert_eq!(r.body, [&FLV_HEADER[..], &txt[100..]].concat());
}

/// Two hosted groups; group2 has two store paths. Same file names under
/// each, with different bytes of the same size, so the answer shows which
/// store path served it.
#[tokio::test]
async fn multi_group_selects_the_section_by_url_group() {
    let tmp = tempfile::tempdir().unwrap();
    let g1 = real_store("A", tmp.path());
    let g2a = tmp.path().join("g2_path0");
    let g2b = tmp.path().join("g2_path1");
    copy_tree(&g1, &g2a).unwrap();
    copy_tree(&g1, &g2b).unwrap();
    let rel = "00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
    let orig = std::fs::read(g1.join("data").join(rel)).unwrap();
    let mark = |p: &Path, b: u8| {
        let v = vec![b; orig.len()];
        std::fs::write(p.join("data").join(rel), &v).unwrap();
        v
    };
    let in_g2a = mark(&g2a, b'a');
    let in_g2b = mark(&g2b, b'b');
    let mime = fixtures().join("real/configs/mime.types");
    let c = format!(
        "load_fdfs_parameters_from_tracker=false\nurl_have_group_name=true\nresponse_mode=redirect\n\
local_ip_addrs=127.0.0.3\npeer_ip_addrs=127.0.0.2,127.0.0.3\nhttp.mime_types_filename={mime}\n\
group_count=2\n\
[group1]\ngroup_name=group1\nstorage_server_port=23000\nstore_path0={g1}\n\
[group2]\ngroup_name=group2\nstorage_server_port=23001\nstore_path_count=2\nstore_path0={g2a}\nstore_path1={g2b}\n",
        mime = mime.display(),
        g1 = g1.display(),
        g2a = g2a.display(),
        g2b = g2b.display(),
    );
    let server = Server::start(&c, tmp.path(), "127.0.0.3").await;
    {
        let cfg = &server.app.state().config;
        assert!(cfg.multi_group);
        let names: Vec<_> = cfg
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.storage_server_port, g.store_paths.len()))
            .collect();
        assert_eq!(names, [("group1", 23000, 1), ("group2", 23001, 2)]);
    }
    let a = server.addr;
    let name = "fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";
    let r = get(a, &format!("/group1/M00/00/00/{name}")).await;
    assert_eq!((r.status, &r.body), (200, &orig));
    let r = get(a, &format!("/group2/M00/00/00/{name}")).await;
    assert_eq!((r.status, &r.body), (200, &in_g2a));
    let r = get(a, &format!("/group2/M01/00/00/{name}")).await;
    assert_eq!((r.status, &r.body), (200, &in_g2b));
    // group1 has one store path only.
    let r = get(a, &format!("/group1/M01/00/00/{name}")).await;
    assert_eq!(r.status, 400);

    // Missing in a hosted group, source 127.0.0.2 (a member), fresh enough:
    // the lag rules forward it.
    std::fs::remove_file(g2a.join("data").join(rel)).unwrap();
    // An immutable file's cached descriptor is trusted for the cache TTL.
    tokio::time::sleep(
        fdfs_httpd::store::OpenFileCache::TTL + std::time::Duration::from_millis(100),
    )
    .await;
    let r = get(a, &format!("/group2/M00/00/00/{name}")).await;
    let remote = format!("M00/00/00/{name}");
    let create_ts = fdfs_httpd::fileid::FileId::parse("group2", &remote)
        .unwrap()
        .encoded()
        .create_ts;
    let fresh = now() - create_ts <= 86400;
    if fresh {
        assert_eq!(r.status, 302);
        assert!(r
            .header("location")
            .unwrap()
            .starts_with("http://127.0.0.2:"));
    } else {
        assert_eq!(r.status, 404);
    }

    // A group this node does not host: never local, forwarded to the
    // decoded source (age does not matter for another group).
    let r = get(a, &format!("/group7/M00/00/00/{name}")).await;
    assert_eq!(r.status, 302);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(&format!(
            "http://127.0.0.2:{}/group7/M00/00/00/{name}",
            a.port()
        )),
        "{loc}"
    );
    // ...but not twice.
    let r = get(a, &format!("/group7/M00/00/00/{name}?redirect=1")).await;
    assert_eq!(r.status, 400);
}

/// The 304 answered from the ID's validators before the disk is looked at
/// (docs/module-behaviour.md §7) carries the same headers as the 304 of a file
/// served locally: Last-Modified, ETag and Accept-Ranges.
#[tokio::test]
async fn early_304_has_the_headers_of_every_304() {
    let (_tmp, store, server) = node_a("").await;
    let a = server.addr;
    let u = format!("/{TXT}");
    let full = get(a, &u).await;
    assert_eq!(full.status, 200);
    let etag = full.header("etag").unwrap();
    let lm = full.header("last-modified").unwrap();
    // Another normal file, not local: its validators come from its ID.
    let gone = FLV;
    std::fs::remove_file(on_disk(&store, gone)).unwrap();
    let id =
        fdfs_httpd::fileid::FileId::parse("group1", gone.trim_start_matches("group1/")).unwrap();
    let enc = id.encoded();
    let gone_etag =
        fdfs_httpd::http::conditional::etag_for_id(enc.crc32, id.size().unwrap(), enc.create_ts);
    let gone_etag = gone_etag.to_str().unwrap().to_owned();
    let gone_lm = http_date(enc.create_ts).to_str().unwrap().to_owned();
    let names = |r: &Resp| -> Vec<String> {
        r.headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .filter(|k| k != "date" && k != "server")
            .collect()
    };
    let check = |r: &Resp, why: &str| {
        assert_eq!(r.status, 304, "{why}");
        assert_eq!(r.header("etag").as_deref(), Some(etag.as_str()), "{why}");
        assert_eq!(
            r.header("last-modified").as_deref(),
            Some(lm.as_str()),
            "{why}"
        );
        assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"), "{why}");
        assert!(r.body.is_empty(), "{why}");
    };
    let by_tag = request(a, "GET", &u, &[("If-None-Match", &etag)]).await;
    check(&by_tag, "If-None-Match");
    let by_date = request(a, "HEAD", &u, &[("If-Modified-Since", &lm)]).await;
    check(&by_date, "If-Modified-Since, HEAD");

    // Missing here (the source is this node): still the early 304.
    let g = format!("/{gone}");
    assert_eq!(get(a, &g).await.status, 404);
    let missing = request(a, "GET", &g, &[("If-None-Match", &gone_etag)]).await;
    assert_eq!(missing.status, 304);
    assert_eq!(missing.header("etag"), Some(gone_etag));
    assert_eq!(missing.header("last-modified"), Some(gone_lm));
    assert_eq!(missing.header("accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(names(&missing), names(&by_tag));

    // `If-None-Match: *` is never answered early: the lookup decides.
    assert_eq!(
        request(a, "GET", &g, &[("If-None-Match", "*")])
            .await
            .status,
        404
    );

    // A 304 decided after the lookup (appender: validators from the disk)
    // sends the same header set.
    let app = format!("/{APPENDER}");
    let app_etag = get(a, &app).await.header("etag").unwrap();
    let late = request(a, "GET", &app, &[("If-None-Match", &app_etag)]).await;
    assert_eq!(late.status, 304);
    assert_eq!(late.header("accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(names(&late), names(&by_tag));
}
