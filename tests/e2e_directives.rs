//! The nginx.conf directives around the module on files written by a real
//! FastDFS 6.16 (tracker + 2 storages on loopback, `tests/e2e/cluster.rs`):
//! a normal upload gets the configured `Cache-Control` and `Expires` on
//! every node (200, 206, 304), its gzip variant its own ETag; an appender
//! file written with `fdfs_upload_appender` gets `no-cache`, and after
//! `fdfs_append_file` its old ETag no longer revalidates. Ignored by
//! `cargo test`; run by `scripts/e2e`.

#[path = "e2e/cluster.rs"]
mod cluster;
mod support;

use std::io::Read;
use std::time::Instant;

use cluster::{node_ip, Cluster, Options};
use support::request;

const CC: &str = "public, max-age=31536000, immutable";
const EXTRA: &str = "cache_control = public, max-age=31536000, immutable\nexpires = 30d\n\
gzip = true\ngzip_types = text/plain\n";

fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0u32;
    while out.len() < len {
        out.extend_from_slice(format!("line {i}: group1 replica sync\n").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a FastDFS build: scripts/e2e"]
async fn caching_headers_and_gzip_on_real_uploads() {
    let t0 = Instant::now();
    let mut cl = Cluster::start(2, Options::default()).await;
    for i in 0..2 {
        cl.start_httpd(i, EXTRA).await;
    }
    eprintln!("cluster up in {:?}", t0.elapsed());
    let data = text(30_000);
    let id = cl.upload(&data, "txt", Some(&format!("{}:23000", node_ip(0))));
    let a1 = text(2000);
    let f = cl.local_file(&a1, "log");
    let app = cl
        .tool("fdfs_upload_appender", &[f.to_str().unwrap()])
        .trim()
        .to_string();
    cl.wait_replicated(&id, data.len() as u64, &[0, 1], 60)
        .await;
    cl.wait_replicated(&app, a1.len() as u64, &[0, 1], 60).await;
    let u = format!("/{id}");

    for n in &cl.nodes {
        let h = n.http();
        let r = request(h, "GET", &u, &[]).await;
        assert_eq!(r.status, 200, "node {}", n.name);
        assert_eq!(r.body, data);
        assert_eq!(r.header("cache-control").as_deref(), Some(CC));
        assert!(r.header("expires").is_some());
        let etag = r.header("etag").unwrap();
        let r = request(h, "GET", &u, &[("Range", "bytes=0-99")]).await;
        assert_eq!(
            (r.status, r.header("cache-control").as_deref()),
            (206, Some(CC))
        );
        let r = request(h, "GET", &u, &[("If-None-Match", &etag)]).await;
        assert_eq!(
            (r.status, r.header("cache-control").as_deref()),
            (304, Some(CC))
        );
        let r = request(h, "GET", &u, &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
        assert_eq!(
            r.header("etag"),
            Some(format!("{}-gzip\"", etag.trim_end_matches('"')))
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, data, "node {}: gzip round trip", n.name);
    }

    // The appender file: no-cache, and an append changes its validator.
    let au = format!("/{app}");
    let h = cl.nodes[0].http();
    let r = request(h, "GET", &au, &[]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, a1.as_slice()));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(r.header("expires"), None);
    let old = r.header("etag").unwrap();
    assert_eq!(
        request(h, "GET", &au, &[("If-None-Match", &old)])
            .await
            .status,
        304
    );
    let a2 = text(500);
    let f2 = cl.local_file(&a2, "log");
    cl.tool("fdfs_append_file", &[&app, f2.to_str().unwrap()]);
    let whole = [a1.clone(), a2].concat();
    cl.wait_replicated(&app, whole.len() as u64, &[0], 30).await;
    let r = request(h, "GET", &au, &[("If-None-Match", &old)]).await;
    assert_eq!(r.status, 200, "the old ETag no longer matches");
    assert_eq!(r.body, whole);
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    eprintln!("checked in {:?}", t0.elapsed());
    drop(cl);
    eprintln!("stopped in {:?}", t0.elapsed());
}
