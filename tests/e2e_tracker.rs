//! End-to-end against a real FastDFS 6.16 tracker (docs/e2e.md): fdfs-httpd
//! started while the tracker is down serves local files, then takes
//! `storage_sync_file_max_delay`, `use_storage_id` and the storage-ID table
//! from the tracker once it is back (`load_fdfs_parameters_from_tracker`);
//! a storage the tracker lists OFFLINE is no longer tried first, and one
//! listed WAIT_SYNC after a tracker restart is still tried last. Ignored
//! by `cargo test`; run by `scripts/e2e`.

#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/reads.rs"]
mod reads;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{node_ip, Cluster, Options};
use fdfs_httpd::fileid::Source;
use fdfs_httpd::proto::tracker::StorageStatus;
use reads::{bytes, parse, req, url};
use serde_json::Value;
use support::sha256;

/// The tracker's `storage_sync_file_max_delay` (as set in [`Options`];
/// fdfs-httpd's own config says 86400).
const TRACKER_MAX_DELAY: u64 = 43200;

async fn status(admin: SocketAddr) -> Value {
    let r = req(admin, "GET", "/status", &[]).await;
    assert_eq!(r.status, 200, "/status");
    serde_json::from_slice(&r.body).expect("/status is JSON")
}

/// Polls `/status` (at most `secs`) until `pred` holds; returns it.
async fn wait_status_json(
    admin: SocketAddr,
    secs: u64,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let t0 = Instant::now();
    loop {
        let v = status(admin).await;
        if pred(&v) {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s; /status tracker = {}",
            v["tracker"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `/status` entry of `ip` in `peers` (upstream counters).
fn peer<'a>(v: &'a Value, ip: &str) -> &'a Value {
    v["peers"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["addr"] == ip))
        .unwrap_or_else(|| panic!("{ip} not in /status peers: {}", v["peers"]))
}

/// Whether the tracker view in `/status` lists `ip` in group1 with `readable`.
fn listed(v: &Value, ip: &str, readable: bool) -> bool {
    v["tracker"]["groups"]["group1"]
        .as_array()
        .is_some_and(|a| {
            a.iter()
                .any(|p| p["addr"] == ip && p["readable"] == readable)
        })
}

/// A tracker down at fdfs-httpd's start and back later; parameters and
/// storage IDs loaded from it; a storage turning OFFLINE at the tracker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a FastDFS build: scripts/e2e"]
async fn tracker_down_at_start_then_parameters_ids_and_states() {
    let t0 = Instant::now();
    let mut cl = Cluster::start(
        3,
        Options {
            storage_ids: true,
            tracker_keys: vec![("storage_sync_file_max_delay", "43200")],
            ..Options::default()
        },
    )
    .await;
    eprintln!("cluster up in {:?}", t0.elapsed());
    let (a, b, c) = (0, 1, 2);
    let (a_ip, c_ip) = (node_ip(a), node_ip(c));
    cl.start_httpd(a, "").await;
    cl.start_httpd(c, "").await;

    // One file everywhere; one only on A and C (B's storaged stopped).
    let f1 = bytes(4096, 1);
    let id1 = cl.upload(&f1, "txt", None);
    cl.wait_replicated(&id1, f1.len() as u64, &[a, b, c], 30)
        .await;
    cl.stop_storaged(b);
    cl.wait_status(&[b], StorageStatus::Offline, 30).await;
    let f2 = bytes(70_000, 2);
    let id2 = cl.upload(&f2, "jpg", Some(&format!("{a_ip}:23000")));
    assert_eq!(
        parse(&id2).encoded().source,
        Source::StorageId(100001),
        "{id2}"
    );
    cl.wait_replicated(&id2, f2.len() as u64, &[a, c], 30).await;
    eprintln!("files in place in {:?}", t0.elapsed());

    // A stopped storage turns OFFLINE at the tracker; fdfs-httpd then tries
    // the live peer C before the source A.
    cl.stop_httpd(a);
    cl.stop_storaged(a);
    cl.wait_status(&[a], StorageStatus::Offline, 30).await;
    // Without a tracker view the source is tried first and fails.
    let ids_line = format!(
        "use_storage_id = true\nstorage_ids_filename = {}\n{}",
        cl.storage_ids_file().display(),
        cl.nodes[b].admin_line()
    );
    cl.start_httpd(b, &ids_line).await;
    let r = req(cl.nodes[b].http(), "GET", &url(&id2), &[]).await;
    assert_eq!(r.status, 200, "failover to C");
    assert_eq!(sha256(&r.body), sha256(&f2));
    let v = status(cl.nodes[b].admin()).await;
    assert_eq!(
        peer(&v, &a_ip)["upstream_failed"],
        1,
        "A tried first: {}",
        v["peers"]
    );
    assert_eq!(peer(&v, &c_ip)["upstream_ok"], 1, "{}", v["peers"]);
    // With the tracker's view: A is listed OFFLINE and tried last.
    cl.start_httpd(b, &format!("{ids_line}{}", cl.tracker_lines()))
        .await;
    wait_status_json(cl.nodes[b].admin(), 10, "A listed unreadable", |v| {
        listed(v, &a_ip, false) && listed(v, &c_ip, true)
    })
    .await;
    let r = req(cl.nodes[b].http(), "GET", &url(&id2), &[]).await;
    assert_eq!(r.status, 200, "served by C");
    assert_eq!(sha256(&r.body), sha256(&f2));
    let v = status(cl.nodes[b].admin()).await;
    assert_eq!(
        peer(&v, &a_ip)["upstream_failed"],
        0,
        "A (OFFLINE) must not be tried before C: {}",
        v["peers"]
    );
    assert_eq!(peer(&v, &c_ip)["upstream_ok"], 1, "{}", v["peers"]);
    assert!(
        cl.httpd_log(b)
            .contains(&format!("served by failover peer {c_ip}")),
        "{}",
        cl.httpd_log(b)
    );
    eprintln!("OFFLINE storage tried last in {:?}", t0.elapsed());

    // A back (storaged and HTTP front) for the tracker part.
    cl.start_storaged(a);
    cl.wait_status(&[a], StorageStatus::Active, 60).await;
    cl.start_httpd(a, "").await;

    // The tracker down; B's fdfs-httpd starts with no ID table of its own.
    cl.stop_tracker();
    let from_tracker = format!(
        "{}load_fdfs_parameters_from_tracker = true\n{}",
        cl.tracker_lines(),
        cl.nodes[b].admin_line()
    );
    cl.start_httpd(b, &from_tracker).await;
    let (bh, badmin) = (cl.nodes[b].http(), cl.nodes[b].admin());
    let r = req(bh, "GET", &url(&id1), &[]).await;
    assert_eq!(r.status, 200, "local file while the tracker is down");
    assert_eq!(sha256(&r.body), sha256(&f1));
    let r = req(bh, "GET", &url(&id2), &[]).await;
    assert_eq!(
        r.status, 404,
        "source storage id unknown without the tracker"
    );
    let v = status(badmin).await;
    assert_eq!(v["tracker"]["params"], Value::Null, "{}", v["tracker"]);
    assert_eq!(v["tracker"]["effective"]["storage_ids"], 0);
    assert_eq!(
        v["tracker"]["effective"]["storage_sync_file_max_delay"],
        86400
    );
    assert!(
        cl.httpd_log(b).contains("tracker query failed"),
        "{}",
        cl.httpd_log(b)
    );

    // The tracker back: parameters and IDs arrive (bounded by the back-off).
    let t1 = Instant::now();
    cl.start_tracker().await;
    let v = wait_status_json(badmin, 30, "tracker parameters", |v| {
        v["tracker"]["effective"]["storage_ids"] == 3
    })
    .await;
    eprintln!(
        "tracker view picked up {:?} after the tracker came back",
        t1.elapsed()
    );
    assert_eq!(
        v["tracker"]["params"]["storage_sync_file_max_delay"],
        TRACKER_MAX_DELAY
    );
    assert_eq!(v["tracker"]["params"]["use_storage_id"], true);
    assert_eq!(
        v["tracker"]["effective"]["storage_sync_file_max_delay"],
        TRACKER_MAX_DELAY
    );
    let log = cl.httpd_log(b);
    assert!(
        log.contains(&format!(
            "tracker parameters: storage_sync_file_max_delay={TRACKER_MAX_DELAY}s, use_storage_id=true"
        )),
        "{log}"
    );
    assert!(log.contains("tracker reachable again"), "{log}");
    // The source named only by storage id 100001 is now resolved: proxied.
    let r = req(bh, "GET", &url(&id2), &[]).await;
    assert_eq!(r.status, 200, "lag proxy through the tracker's ID table");
    assert_eq!(sha256(&r.body), sha256(&f2));
    let r = req(bh, "GET", &url(&id2), &[("Range", "bytes=1000-1999")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &f2[1000..2000]);
    eprintln!("parameters and ids from the tracker in {:?}", t0.elapsed());

    // The tracker, restarted while B's storaged is down, lists A and C
    // WAIT_SYNC (B is their sync source): no storage is readable. With
    // A's front down too, C, listed but unreadable, is the last resort.
    let tc = cl.tracker_client();
    let list = tc.list_storage("group1").await.expect("list");
    eprintln!(
        "after the tracker restart: {:?}",
        list.iter()
            .map(|s| format!("{} {:?}", s.ip, s.status))
            .collect::<Vec<_>>()
    );
    cl.stop_httpd(a);
    cl.start_httpd(b, &from_tracker).await;
    wait_status_json(badmin, 15, "C listed unreadable", |v| {
        v["tracker"]["effective"]["storage_ids"] == 3 && listed(v, &c_ip, false)
    })
    .await;
    let r = req(bh, "GET", &url(&id2), &[]).await;
    assert_eq!(r.status, 200, "C (WAIT_SYNC) as the last resort");
    assert_eq!(sha256(&r.body), sha256(&f2));
    assert!(
        cl.httpd_log(b)
            .contains(&format!("served by failover peer {c_ip}")),
        "{}",
        cl.httpd_log(b)
    );
    eprintln!(
        "unreadable storages as the last resort in {:?}",
        t0.elapsed()
    );
}
