//! Upload benchmark (docs/upload.md §8, bench/README-upload in
//! docs/benchmark.md): the same files stored through the upload API
//! (`PUT /api/upload/<name>`, raw body) and directly over the storage
//! protocol with the crate's own client doing the same work (query store,
//! upload, set the `name` metadata: what the HTTP layer costs), at
//! c=8 for 1 MiB and 64 MiB files, with fdfs-httpd's peak RSS per
//! concurrent upload and `fdfs_upload_file` for reference. Both clients
//! write the body in the same 256 KiB pieces; the HTTP client keeps its
//! connections alive, as HTTP clients do. After a warm-up round, both
//! sides run interleaved seven times and the medians are compared; before
//! the next run starts the storages finish replicating (counted with the
//! side that caused it) and the stored files are deleted. Not part of the
//! suite (minutes, needs FastDFS); run on a quiet machine with
//! `FDFS_E2E_NET=127.0.14 cargo test --release --test bench_upload -- --ignored --nocapture`
//! (with `TMPDIR=/dev/shm` the storages write to memory: what the HTTP
//! layer costs without the disk's noise).

#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/reads.rs"]
mod reads;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::{tracker, Cluster, Options};
use fdfs_httpd::proto::client::{StorageClient, TrackerClient};
use fdfs_httpd::proto::upload::upload_head;
use reads::bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const KEY: &str = "bench-upload-key-0123456789";
const CONC: usize = 8;
/// Repetitions per side (interleaved, order alternating).
const REPS: usize = 7;

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Stored file IDs (`group/remote`), deleted after each repetition.
type Ids = Arc<std::sync::Mutex<Vec<String>>>;

/// Idle keep-alive connections to the node, as an HTTP client keeps them.
type Conns = Arc<std::sync::Mutex<Vec<TcpStream>>>;

/// Bytes a client hands to the socket at once, on both sides.
const PIECE: usize = 256 * 1024;

/// One raw `PUT` on a pooled keep-alive connection (a new one when none
/// is idle), the body written in `PIECE`s; the stored file ID.
async fn put(addr: SocketAddr, conns: &Conns, data: &[u8]) -> String {
    let pooled = conns.lock().unwrap().pop();
    let mut s = match pooled {
        Some(s) => s,
        None => TcpStream::connect(addr).await.unwrap(),
    };
    let head = format!(
        "PUT /api/upload/b.bin HTTP/1.1\r\nHost: {addr}\r\nX-Fdfs-App-Id: bench\r\nX-Fdfs-App-Key: {KEY}\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for piece in data.chunks(PIECE) {
        s.write_all(piece).await.unwrap();
    }
    let r = support::read_response(&mut s, false).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    conns.lock().unwrap().push(s);
    let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    j["file_id"].as_str().unwrap().to_owned()
}

/// Deletes `ids` (not timed): every repetition starts on the same stores.
async fn delete_all(trackers: &TrackerClient, ids: &Ids) {
    let ids = std::mem::take(&mut *ids.lock().unwrap());
    for id in ids {
        let (group, remote) = id.split_once('/').unwrap();
        let (ip, port) = trackers.query_update(group, remote).await.unwrap();
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let t = Duration::from_secs(5);
        assert!(StorageClient::delete(addr, group, remote, t, t)
            .await
            .unwrap());
    }
}

async fn direct(trackers: &TrackerClient, data: &Bytes) -> String {
    let t = trackers.query_store(None).await.unwrap();
    let addr: SocketAddr = format!("{}:{}", t.ip, t.port).parse().unwrap();
    let head = upload_head(false, t.store_path_index, data.len() as u64, "bin").unwrap();
    // The same pieces the API side writes.
    let chunks: Vec<std::io::Result<Bytes>> = (0..data.len())
        .step_by(PIECE)
        .map(|i| Ok(data.slice(i..(i + PIECE).min(data.len()))))
        .collect();
    let mut src = futures_util::stream::iter(chunks);
    let (group, remote) = StorageClient::upload(
        addr,
        &head,
        data.len() as u64,
        &mut src,
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    // The metadata the API sets for a raw PUT: the original name.
    let meta = [("name".to_owned(), "b.bin".to_owned())];
    StorageClient::set_metadata(
        addr,
        &group,
        &remote,
        &meta,
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    format!("{group}/{remote}")
}

/// Runs `n` jobs at concurrency `CONC`; seconds taken.
async fn run<F, Fut>(n: usize, job: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONC {
        let (job, next) = (job.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
                job().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    t.elapsed().as_secs_f64()
}

/// CPU seconds (user + system) used so far by the processes named
/// `fdfs-httpd`, `fdfs_storaged` and `fdfs_trackerd`, and by this one.
fn cpu_by_name() -> [f64; 4] {
    let tick = 100.0; // USER_HZ on Linux
    let mut out = [0.0; 4];
    let me = std::process::id().to_string();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state … utime stime: fields 14 and 15.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |(_, c)| c);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let secs = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let used = (secs(11) + secs(12)) / tick;
        let slot = match comm {
            "fdfs-httpd" => 0,
            "fdfs_storaged" => 1,
            "fdfs_trackerd" => 2,
            _ if name == me => 3,
            _ => continue,
        };
        out[slot] += used;
    }
    out
}

/// Waits (at most 20 s) until the storages are idle, their replication
/// to each other done: not one CPU tick (10 ms) in 200 ms.
async fn quiesce() {
    for _ in 0..100 {
        let before = cpu_by_name()[1];
        tokio::time::sleep(Duration::from_millis(200)).await;
        if cpu_by_name()[1] - before < 0.005 {
            return;
        }
    }
    panic!("the storages did not go idle within 20 s");
}

fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: minutes, needs FastDFS; see the module doc"]
async fn upload_api_vs_storage_protocol() {
    let opts = Options {
        subdirs: Some(4),
        ..Options::default()
    };
    let mut cl = Cluster::start(2, opts).await;
    let extra = format!(
        "tracker_server = {}\nupload.enabled = true\nupload.max_concurrent = 64\n\
         upload.app = bench key={KEY} max_size=128M\nlog_level = warn\n",
        tracker()
    );
    cl.start_httpd(0, &extra).await;
    let a = cl.nodes[0].http();
    let pid = cl.nodes[0].httpd_pid().unwrap();
    let trackers = cl.tracker_client();
    println!(
        "| file | n | API MB/s | direct MB/s | ratio (medians) | ratio per repetition | fdfs_upload_file MB/s | peak RSS growth / upload |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    let mut cpus = Vec::new();
    for (size, n) in [(1usize << 20, 800usize), (64 << 20, 24)] {
        let data = Bytes::from(bytes(size, 7));
        let mb = (size * n) as f64 / 1e6;
        // Warm-up, then the baseline RSS and a reset of the peak.
        let conns: Conns = Arc::default();
        let first = put(a, &conns, &data[..1024]).await;
        let ids: Ids = Arc::new(std::sync::Mutex::new(vec![first]));
        delete_all(&trackers, &ids).await;
        let base = status_kb(pid, "VmRSS:");
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let mut hwm = 0;
        // A warm-up round of each side at full concurrency (not counted),
        // then both sides interleaved, the order alternating, REPS times;
        // the medians are compared (one run each is within the noise).
        let (mut apis, mut dirs) = (Vec::new(), Vec::new());
        // CPU seconds per GB stored, by process, per side.
        let mut cpu = [[0.0f64; 4]; 2];
        for rep in 0..=REPS {
            let warm = rep == 0;
            let count = if warm { 2 * CONC } else { n };
            for side in if rep % 2 == 0 { [0, 1] } else { [1, 0] } {
                let (d, kept, c) = (data.clone(), ids.clone(), conns.clone());
                let before = cpu_by_name();
                if side == 0 {
                    let secs = run(count, move || {
                        let (d, kept, c) = (d.clone(), kept.clone(), c.clone());
                        async move {
                            let id = put(a, &c, &d).await;
                            kept.lock().unwrap().push(id);
                        }
                    })
                    .await;
                    hwm = hwm.max(status_kb(pid, "VmHWM:"));
                    if !warm {
                        apis.push(mb / secs);
                    }
                } else {
                    let t2 = trackers.clone();
                    let secs = run(count, move || {
                        let (t, d, kept) = (t2.clone(), d.clone(), kept.clone());
                        async move {
                            let id = direct(&t, &d).await;
                            kept.lock().unwrap().push(id);
                        }
                    })
                    .await;
                    if !warm {
                        dirs.push(mb / secs);
                    }
                }
                // This side's replication, counted with it, then its
                // deletions, before the other side starts.
                quiesce().await;
                if !warm {
                    let after = cpu_by_name();
                    for k in 0..4 {
                        cpu[side][k] += (after[k] - before[k]) / (mb / 1000.0) / REPS as f64;
                    }
                }
                delete_all(&trackers, &ids).await;
                quiesce().await;
            }
        }
        let per_rep: Vec<String> = apis
            .iter()
            .zip(&dirs)
            .map(|(a, d)| format!("{:.2}", a / d))
            .collect();
        let (api, dir) = (median(&apis), median(&dirs));
        cpus.push(format!(
            "| {} MiB | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            size >> 20,
            cpu[0][0],
            cpu[0][1],
            cpu[1][1],
            cpu[0][3],
            cpu[1][3],
            cpu[0].iter().sum::<f64>() / cpu[1].iter().sum::<f64>(),
        ));
        let f = cl.local_file(&data, "bin");
        let conf = cl.client_conf.clone();
        let bins = cluster::bin_dir();
        let tool_n = n.min(CONC * 8);
        let t = Instant::now();
        let handles: Vec<_> = (0..CONC)
            .map(|i| {
                let (f, conf, bins) = (f.clone(), conf.clone(), bins.clone());
                std::thread::spawn(move || {
                    for _ in (i..tool_n).step_by(CONC) {
                        let ok = std::process::Command::new(bins.join("fdfs_upload_file"))
                            .arg(&conf)
                            .arg(&f)
                            .output()
                            .is_ok_and(|o| o.status.success());
                        assert!(ok);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let tool = t.elapsed().as_secs_f64();
        let tool_mb = (size * tool_n) as f64 / 1e6;
        let per_upload = hwm.saturating_sub(base) as f64 / 1024.0 / CONC as f64;
        println!(
            "| {} MiB | {n} × {REPS} | {api:.0} | {dir:.0} | {:.2} | {} | {:.0} | {per_upload:.2} MiB |",
            size >> 20,
            api / dir,
            per_rep.join(", "),
            tool_mb / tool,
        );
    }
    println!("\nCPU seconds per GB stored (user + system):\n");
    println!("| file | fdfs-httpd | storages (API) | storages (direct) | client (API) | client (direct) | all, API ÷ direct |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for l in cpus {
        println!("{l}");
    }
    cl.stop_httpd(0);
}
