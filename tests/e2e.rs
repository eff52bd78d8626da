//! End-to-end against a real FastDFS 6.16 (tracker + storages built from
//! source, on loopback): files uploaded with the real tools are read
//! through fdfs-httpd on every node. Ignored by `cargo test`; run with
//! `cargo test --test e2e -- --ignored --test-threads=1` or `scripts/e2e`
//! (docs/e2e.md). Each test starts its own cluster and stops it on drop.

#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "support/fake_fdfs.rs"]
mod fake_fdfs;
#[path = "e2e/fakes_vs_real.rs"]
mod fakes_vs_real;
#[path = "e2e/reads.rs"]
mod reads;
mod support;

use std::time::{Duration, Instant};

use cluster::{node_ip, Cluster, Options};
use fdfs_httpd::proto::tracker::StorageStatus;
use reads::{assert_decode_matches, bytes, check_reads, url};
use support::{request, sha256};

async fn wait_404(cl: &Cluster, id: &str, secs: u64) {
    for n in &cl.nodes {
        let t0 = Instant::now();
        loop {
            let r = request(n.http(), "GET", &url(id), &[]).await;
            if r.status == 404 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{id} still {} on {} after {secs} s",
                r.status,
                n.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Real tools upload; every node serves every file with the same bytes
/// and ETag; the decode equals fdfs_file_info; a delete turns into 404s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a FastDFS build: scripts/e2e"]
async fn uploads_read_everywhere_decode_and_delete() {
    let t0 = Instant::now();
    let mut cl = Cluster::start(3, Options::default()).await;
    eprintln!("cluster up in {:?}", t0.elapsed());
    for i in 0..3 {
        cl.start_httpd(i, "").await;
    }
    let all = [0, 1, 2];
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (len, ext, seed) in [
        (0usize, "bin", 1u8),
        (1024, "txt", 2),
        (1 << 20, "jpg", 3),
        (64 << 20, "mp4", 4),
    ] {
        let data = bytes(len, seed);
        let id = cl.upload(&data, ext, None);
        files.push((id, data));
    }
    // Appender + append.
    let a1 = bytes(3000, 5);
    let a2 = bytes(1500, 6);
    let f = cl.local_file(&a1, "log");
    let app = cl
        .tool("fdfs_upload_appender", &[f.to_str().unwrap()])
        .trim()
        .to_string();
    let f2 = cl.local_file(&a2, "log");
    cl.tool("fdfs_append_file", &[&app, f2.to_str().unwrap()]);
    let mut whole = a1.clone();
    whole.extend_from_slice(&a2);
    files.push((app.clone(), whole));
    // Metadata + a slave with prefix `_big` (fdfs_test does both).
    let m = bytes(5000, 7);
    let mf = cl.local_file(&m, "png");
    let out = cl.tool("fdfs_test", &["upload", mf.to_str().unwrap()]);
    let remotes: Vec<String> = out
        .lines()
        .filter_map(|l| {
            l.split_once("remote_filename=")
                .map(|(_, r)| format!("group1/{}", r.trim()))
        })
        .collect();
    assert!(remotes.len() >= 2, "fdfs_test upload printed {out}");
    let master = remotes[0].clone();
    let slave = remotes.iter().find(|r| r.contains("_big")).unwrap().clone();
    let meta = cl.tool(
        "fdfs_test",
        &["getmeta", "group1", master.strip_prefix("group1/").unwrap()],
    );
    assert!(meta.contains("width"), "metadata: {meta}");
    files.push((master, m.clone()));
    files.push((slave.clone(), m.clone()));
    eprintln!("uploaded in {:?}", t0.elapsed());

    for (id, data) in &files {
        cl.wait_replicated(id, data.len() as u64, &all, 60).await;
    }
    eprintln!("replicated in {:?}", t0.elapsed());
    for (id, data) in &files {
        let mut etags = Vec::new();
        for n in &cl.nodes {
            etags.push(check_reads(n.http(), id, data).await);
        }
        let (group, remote) = id.split_once('/').unwrap();
        let normal = matches!(
            fdfs_httpd::fileid::FileId::parse(group, remote)
                .unwrap()
                .kind(),
            fdfs_httpd::fileid::FileKind::Normal
        );
        if normal {
            // Validators from the ID: one ETag on every node.
            assert!(
                etags.iter().all(|e| e == &etags[0]),
                "{id}: ETags differ between nodes: {etags:?}"
            );
        } else {
            // Appender and slave files: each node's own mtime and size
            // (docs/module-behaviour.md §6.2); a replica's mtime is when
            // the sync wrote it, so nodes may differ by a second.
            for (n, etag) in cl.nodes.iter().zip(&etags) {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(n.file(remote)).unwrap();
                let want = format!("\"{:x}-{:x}\"", m.mtime(), m.len());
                assert_eq!(etag, &want, "{id} on {}", n.http());
            }
        }
        assert_decode_matches(&cl, id, data.len() as u64);
    }
    eprintln!("reads checked in {:?}", t0.elapsed());

    // The fakes answer like these daemons (storage IDs off; empty,
    // appender and slave files).
    let remote: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(_, d)| d.len() < 8 << 20)
        .map(|(id, d)| (id[7..].to_string(), d.clone()))
        .collect();
    let facts = fakes_vs_real::Facts {
        tracker: cluster::tracker().parse().unwrap(),
        storage: format!("{}:23000", node_ip(0)).parse().unwrap(),
        files: &remote,
    };
    let (diffs, seen) = Box::pin(fakes_vs_real::compare(&facts)).await;
    for l in &seen {
        eprintln!("real: {l}");
    }
    assert!(
        diffs.is_empty(),
        "fakes differ from the real daemons:\n{}",
        diffs.join("\n")
    );
    eprintln!("fakes compared in {:?}", t0.elapsed());

    // Delete: 404 on every node once the open-file cache lets go.
    let (del, _) = files[1].clone();
    cl.tool("fdfs_delete_file", &[&del]);
    wait_404(&cl, &del, 10).await;
    eprintln!("delete checked in {:?}", t0.elapsed());
    cl.stop_httpd(0);
}

/// Replication lag and the seed's outage: B's storaged stopped, a file
/// uploaded to A is served on B by HTTP proxy, by the storage protocol
/// (A's HTTP front down) and by redirect; with A fully down a third node
/// that has the file serves it; nobody has it → a fast 502; A back →
/// served. The tracker's list shows a stopped storage OFFLINE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a FastDFS build: scripts/e2e"]
async fn replication_lag_and_source_outage() {
    let t0 = Instant::now();
    let mut cl = Cluster::start(3, Options::default()).await;
    for i in 0..3 {
        cl.start_httpd(i, "").await;
    }
    let (a, b, c) = (0, 1, 2);
    cl.stop_storaged(b);
    cl.wait_status(&[b], StorageStatus::Offline, 30).await;
    let data = bytes(200_000, 9);
    let id = cl.upload(&data, "jpg", Some(&format!("{}:23000", node_ip(0))));
    cl.wait_replicated(&id, data.len() as u64, &[a, c], 30)
        .await;
    assert!(
        !cl.nodes[b].file(&id[7..]).exists(),
        "B has it while stopped"
    );
    let u = url(&id);
    let bh = cl.nodes[b].http();

    // proxy_via = http (the default).
    let r = request(bh, "GET", &u, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256(&r.body), sha256(&data));
    let r = request(bh, "GET", &u, &[("Range", "bytes=100-199")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[100..200]);

    // proxy_via = storage with A's and C's HTTP fronts down.
    cl.stop_httpd(a);
    cl.stop_httpd(c);
    cl.start_httpd(b, "proxy_via = storage\n").await;
    let r = request(bh, "GET", &u, &[]).await;
    assert_eq!(r.status, 200, "proxy_via = storage");
    assert_eq!(sha256(&r.body), sha256(&data));
    let r = request(bh, "HEAD", &u, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(data.len().to_string()));
    cl.start_httpd(a, "").await;
    cl.start_httpd(c, "").await;

    // response_mode = redirect.
    cl.start_httpd(b, "response_mode = redirect\n").await;
    let r = request(bh, "GET", &u, &[]).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{}:8888{u}?redirect=1", node_ip(a)))
    );
    cl.start_httpd(b, "").await;

    // The source down (storaged and HTTP): C, which has it, serves it.
    cl.stop_storaged(a);
    cl.stop_httpd(a);
    let r = request(bh, "GET", &u, &[]).await;
    assert_eq!(r.status, 200, "failover to C");
    assert_eq!(sha256(&r.body), sha256(&data));
    // The tracker sees A OFFLINE.
    cl.wait_status(&[a], StorageStatus::Offline, 30).await;

    // A file only A has, then A down: nobody has it → a fast 502.
    cl.start_storaged(a);
    cl.wait_status(&[a], StorageStatus::Active, 60).await;
    cl.stop_storaged(c);
    cl.wait_status(&[c], StorageStatus::Offline, 30).await;
    let only = bytes(10_000, 10);
    let oid = cl.upload(&only, "txt", Some(&format!("{}:23000", node_ip(0))));
    cl.stop_storaged(a);
    let ou = url(&oid);
    let t1 = Instant::now();
    let r = request(bh, "GET", &ou, &[]).await;
    assert_eq!(r.status, 502, "nobody has it");
    assert!(
        t1.elapsed() < Duration::from_secs(3),
        "502 took {:?}",
        t1.elapsed()
    );
    // The source back → served.
    cl.start_httpd(a, "").await;
    let r = request(bh, "GET", &ou, &[]).await;
    assert_eq!(r.status, 200, "source back");
    assert_eq!(sha256(&r.body), sha256(&only));
    eprintln!("lag + outage in {:?}", t0.elapsed());
}
