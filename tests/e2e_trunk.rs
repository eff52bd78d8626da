//! End-to-end against a real FastDFS 6.16 with `use_trunk_file = true` and
//! `use_storage_id = true` (docs/e2e.md): small files land in trunk slots
//! and every ID carries a storage id; fdfs-httpd, given the same
//! `storage_ids.conf`, serves the slots on every node and resolves the
//! source for the lag path. Ignored by `cargo test`; run by `scripts/e2e`.

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
use fdfs_httpd::fileid::{FileKind, Source};
use fdfs_httpd::proto::tracker::StorageStatus;
use reads::{assert_decode_matches, bytes, check_reads, parse, req, url};
use support::sha256;

/// Waits (at most `secs`) until the trunk slot of `id` holds `want` on
/// every node in `idx` (a trunk file is shared, so its length says nothing).
async fn wait_slot(cl: &Cluster, id: &str, want: &[u8], idx: &[usize], secs: u64) {
    use std::os::unix::fs::FileExt;
    let f = parse(id);
    let FileKind::Trunk(slot) = *f.kind() else {
        panic!("{id} is not a trunk slot: {:?}", f.kind());
    };
    let (hi, lo) = f.subdirs();
    let rel = format!("data/{hi:02X}/{lo:02X}/{:06}", slot.trunk_id);
    let t0 = Instant::now();
    loop {
        let ok = idx.iter().all(|&i| {
            let Ok(file) = std::fs::File::open(cl.nodes[i].base.join(&rel)) else {
                return false;
            };
            let mut buf = vec![0u8; want.len()];
            file.read_exact_at(&mut buf, u64::from(slot.offset) + 24)
                .is_ok()
                && buf == want
        });
        if ok {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{id}: slot not in {rel} on nodes {idx:?} after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Trunk slots served everywhere; IDs carry storage ids; the lag path
/// resolves a source named by storage id (proxy and redirect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a FastDFS build: scripts/e2e"]
async fn trunk_slots_with_storage_ids() {
    let t0 = Instant::now();
    let mut cl = Cluster::start(
        3,
        Options {
            trunk: true,
            storage_ids: true,
            ..Options::default()
        },
    )
    .await;
    let trunk_server = cl.trunk_server(5).await;
    eprintln!(
        "cluster up in {:?} (trunk server {})",
        t0.elapsed(),
        cl.nodes[trunk_server].name
    );
    let ids_line = format!(
        "use_storage_id = true\nstorage_ids_filename = {}\n",
        cl.storage_ids_file().display()
    );
    for i in 0..3 {
        cl.start_httpd(i, &ids_line).await;
    }
    let all = [0, 1, 2];

    // Small files land in trunk slots, a large one is a plain file.
    let mut slots = Vec::new();
    for (len, ext, seed) in [(1usize, "txt", 1u8), (1024, "txt", 2), (300_000, "jpg", 3)] {
        let data = bytes(len, seed);
        let id = cl.upload(&data, ext, None);
        let f = parse(&id);
        assert!(
            matches!(f.kind(), FileKind::Trunk(_)),
            "{id} ({len} B): {:?}",
            f.kind()
        );
        assert!(
            matches!(f.encoded().source, Source::StorageId(100001..=100003)),
            "{id}: source {:?}",
            f.encoded().source
        );
        wait_slot(&cl, &id, &data, &all, 60).await;
        slots.push((id, data));
    }
    let big = bytes(2 << 20, 4);
    let big_id = cl.upload(&big, "mp4", None);
    assert_eq!(*parse(&big_id).kind(), FileKind::Normal, "{big_id}");
    assert!(matches!(
        parse(&big_id).encoded().source,
        Source::StorageId(_)
    ));
    cl.wait_replicated(&big_id, big.len() as u64, &all, 60)
        .await;
    slots.push((big_id, big));
    eprintln!("uploaded and replicated in {:?}", t0.elapsed());

    for (id, data) in &slots {
        let mut etags = Vec::new();
        for n in &cl.nodes {
            etags.push(Box::pin(check_reads(n.http(), id, data)).await);
        }
        assert!(etags.iter().all(|e| e == &etags[0]), "{id}: {etags:?}");
        assert_decode_matches(&cl, id, data.len() as u64);
    }
    eprintln!("trunk reads checked in {:?}", t0.elapsed());

    // Replication lag with storage ids: a node other than the trunk
    // server stops its storaged; a small file uploaded to another one is
    // proxied (source resolved through storage_ids.conf) and redirected.
    let lag = (trunk_server + 1) % 3;
    let src = (trunk_server + 2) % 3;
    cl.stop_storaged(lag);
    cl.wait_status(&[lag], StorageStatus::Offline, 30).await;
    let data = bytes(5000, 5);
    let id = cl.upload(&data, "png", Some(&format!("{}:23000", node_ip(src))));
    let f = parse(&id);
    assert_eq!(
        f.encoded().source,
        Source::StorageId(100001 + src as u32),
        "{id}"
    );
    assert!(matches!(f.kind(), FileKind::Trunk(_)), "{id}");
    wait_slot(&cl, &id, &data, &[src], 30).await;
    let lh = cl.nodes[lag].http();
    let r = req(lh, "GET", &url(&id), &[]).await;
    assert_eq!(r.status, 200, "lag proxy on {}", cl.nodes[lag].name);
    assert_eq!(sha256(&r.body), sha256(&data));
    let r = req(lh, "GET", &url(&id), &[("Range", "bytes=10-19")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[10..20]);
    cl.start_httpd(lag, &format!("{ids_line}response_mode = redirect\n"))
        .await;
    let r = req(lh, "GET", &url(&id), &[]).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some(format!(
            "http://{}:8888{}?redirect=1",
            node_ip(src),
            url(&id)
        ))
    );
    // Without the ID table the source cannot be resolved: 404, logged.
    cl.start_httpd(lag, "").await;
    let r = req(lh, "GET", &url(&id), &[]).await;
    assert_eq!(r.status, 404, "storage id without a table");
    assert!(
        cl.httpd_log(lag).contains("source storage id"),
        "{}",
        cl.httpd_log(lag)
    );
    eprintln!("storage-id lag checked in {:?}", t0.elapsed());

    // The fakes answer like these real daemons.
    let mut files: Vec<(String, Vec<u8>)> = slots
        .iter()
        .map(|(id, d)| (id[7..].to_string(), d.clone()))
        .collect();
    files.push((id[7..].to_string(), data.clone()));
    let facts = fakes_vs_real::Facts {
        tracker: cluster::tracker().parse().unwrap(),
        storage: format!("{}:23000", node_ip(src)).parse().unwrap(),
        files: &files,
    };
    let (diffs, seen) = fakes_vs_real::compare(&facts).await;
    for l in &seen {
        eprintln!("real: {l}");
    }
    assert!(
        diffs.is_empty(),
        "fakes differ from the real daemons:\n{}",
        diffs.join("\n")
    );
    eprintln!("fakes compared in {:?}", t0.elapsed());
    let t1 = Instant::now();
    drop(cl);
    eprintln!("cluster stopped in {:?}", t1.elapsed());
}
