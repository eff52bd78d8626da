//! End-to-end: the status page and `fdfs-httpd doctor` against a real
//! FastDFS 6.16 cluster (docs/e2e.md, docs/operations.md). One cluster of
//! three storages; node A is the observer. Healthy first: the JSON lists
//! every storage with the state the tracker reports, `doctor` exits 0, a
//! real headless Chromium renders one row per storage and no problem row.
//! Then B's storaged is stopped and C's fdfs-httpd: the page shows B
//! OFFLINE and its storage port unreachable, C's HTTP port failing while its
//! storage port answers; `doctor` exits 2 naming both ports; Chromium shows
//! the problem rows marked and saves a screenshot
//! (`$CARGO_TARGET_TMPDIR/status-page.png`, also copied to
//! `$FDFS_STATUS_PNG` when set). Ignored by `cargo test`; run with
//! `scripts/e2e` or `cargo test --test e2e_status -- --ignored`.

#[path = "e2e/cluster.rs"]
mod cluster;
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster::{node_ip, tracker, Cluster, Options};
use fdfs_httpd::fileid::{IdBuilder, Source};
use fdfs_httpd::proto::tracker::StorageStatus;

const ADMIN_PORT: u16 = 18888;

fn admin(i: usize) -> SocketAddr {
    format!("{}:{ADMIN_PORT}", node_ip(i)).parse().unwrap()
}

async fn status_json(addr: SocketAddr) -> serde_json::Value {
    let r = support::request(addr, "GET", "/status", &[("Accept", "application/json")]).await;
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

/// Polls A's JSON until `f` accepts it (at most `secs`).
async fn json_until(
    secs: u64,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let v = status_json(admin(0)).await;
        if f(&v) {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn storage<'a>(v: &'a serde_json::Value, ip: &str) -> &'a serde_json::Value {
    v["cluster"]["groups"][0]["storages"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["ip"] == ip))
        .unwrap_or(&serde_json::Value::Null)
}

fn peer<'a>(v: &'a serde_json::Value, ip: &str) -> &'a serde_json::Value {
    v["reach"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["ip"] == ip))
        .unwrap_or(&serde_json::Value::Null)
}

/// A child killed on drop.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `cmd` with stdout to a file, at most `secs`; (exit code, stdout).
fn run_bounded(mut cmd: Command, out: &Path, secs: u64) -> (i32, String) {
    let f = std::fs::File::create(out).unwrap();
    let mut child = Kill(
        cmd.stdout(f)
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    let code = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st.code().unwrap_or(-1);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{cmd:?} did not finish within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, std::fs::read_to_string(out).unwrap_or_default())
}

/// `fdfs-httpd doctor` on node A's config: (exit code, transcript).
async fn doctor(cl: &Cluster, label: &str) -> (i32, String) {
    let conf = cl.dir.path().join("httpdA.conf");
    let out = cl.dir.path().join(format!("doctor-{label}.txt"));
    let (code, text) = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"));
        cmd.arg("doctor").arg("--config").arg(&conf);
        run_bounded(cmd, &out, 60)
    })
    .await
    .unwrap();
    eprintln!("--- fdfs-httpd doctor ({label}), exit {code}\n{text}---");
    (code, text)
}

/// Headless Chromium on A's status page: the DOM after the script ran,
/// and optionally a screenshot.
async fn chromium(cl: &Cluster, label: &str, screenshot: Option<PathBuf>) -> String {
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium missing: apt-get install chromium"
    );
    let dir = tempfile::Builder::new()
        .prefix("chromium")
        .tempdir_in(cl.dir.path())
        .unwrap();
    let url = format!("http://{}/status", admin(0));
    let out = dir.path().join(format!("{label}.out"));
    let base = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=4000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ));
    };
    let mut dump = Command::new("/usr/bin/chromium");
    base(&mut dump);
    dump.arg("--dump-dom").arg(&url);
    let shot = screenshot.map(|png| {
        let mut c = Command::new("/usr/bin/chromium");
        base(&mut c);
        c.arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1280,900")
            .arg(&url);
        (c, png)
    });
    let shot_out = dir.path().join(format!("{label}.shot.out"));
    tokio::task::spawn_blocking(move || {
        let (code, dom) = run_bounded(dump, &out, 60);
        assert_eq!(code, 0, "chromium --dump-dom failed");
        if let Some((c, png)) = shot {
            let (code, _) = run_bounded(c, &shot_out, 60);
            assert_eq!(code, 0, "chromium --screenshot failed");
            let b = std::fs::read(&png).unwrap();
            assert!(
                b.len() > 10_000 && b.starts_with(b"\x89PNG\r\n\x1a\n"),
                "screenshot {} is not a PNG",
                png.display()
            );
        }
        dom
    })
    .await
    .unwrap()
}

fn rows(dom: &str, class: &str) -> usize {
    dom.matches(&format!("<tr class=\"{class}\" data-ip="))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the FastDFS daemons and chromium (scripts/e2e)"]
async fn status_page_and_doctor_see_a_stopped_storage_and_a_down_front() {
    let t0 = Instant::now();
    // 16 × 16 directories per store instead of 65536: the cluster starts
    // and is removed in seconds.
    let opts = Options {
        subdirs: Some(16),
        ..Options::default()
    };
    let mut cl = Cluster::start(3, opts).await;
    for i in 0..3 {
        let extra = format!(
            "tracker_server = {}\nadmin_listen = {}\n",
            tracker(),
            admin(i)
        );
        cl.start_httpd(i, &extra).await;
    }
    let (a, b, c) = (node_ip(0), node_ip(1), node_ip(2));

    // Healthy: every storage with the tracker's state, both ports of both
    // peers answering from A.
    let v = json_until(30, "all ACTIVE and probed", |v| {
        [&a, &b, &c]
            .iter()
            .all(|ip| storage(v, ip)["state"] == "ACTIVE")
            && [&b, &c]
                .iter()
                .all(|ip| peer(v, ip)["http"]["ok"] == true && peer(v, ip)["storage"]["ok"] == true)
    })
    .await;
    let listed = cl.tracker_client().list_storage("group1").await.unwrap();
    assert_eq!(listed.len(), 3);
    for s in &listed {
        assert_eq!(storage(&v, &s.ip)["state"], s.status.name(), "{v}");
        assert_eq!(storage(&v, &s.ip)["version"], s.version.as_str());
    }
    assert_eq!(storage(&v, &a)["self"], true);
    // A host disk more than 90 % full marks every storage for its free
    // space; nothing else may be wrong.
    for ip in [&a, &b, &c] {
        let other: Vec<_> = storage(&v, ip)["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p.as_str().unwrap().starts_with("little free space"))
            .collect();
        assert!(other.is_empty(), "{ip}: {other:?}");
    }
    assert!(
        v["cluster"]["groups"][0]["usable_free_mb"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert_eq!(
        v["reach"].as_array().unwrap().len(),
        2,
        "A never probes itself"
    );

    let (code, out) = doctor(&cl, "healthy").await;
    assert_eq!(code, 0, "{out}");
    for ip in [&b, &c] {
        assert!(
            out.contains(&format!("ok   peer {ip} storage port 23000: answers")),
            "{out}"
        );
        assert!(
            out.contains(&format!("ok   peer {ip} HTTP port 8888: answers")),
            "{out}"
        );
    }

    let dom = chromium(&cl, "healthy", None).await;
    assert!(
        dom.contains("data-refreshed=\""),
        "the script refreshed the tables"
    );
    assert_eq!(
        rows(&dom, "storage") + rows(&dom, "storage problem"),
        3,
        "{dom}"
    );
    assert!(!dom.contains("OFFLINE"));
    assert_eq!(rows(&dom, "peer"), 2, "no peer problem");

    // A lag event: a fresh ID decoded to B that nobody has; A asks B.
    let id = IdBuilder::new()
        .source(Source::Ip(b.parse::<Ipv4Addr>().unwrap()))
        .create_ts(support::now())
        .size(10)
        .extension("txt")
        .build();
    let r = support::get(cl.nodes[0].http(), &format!("/{id}")).await;
    assert_eq!(r.status, 404);

    // Broken: B's storaged stopped, C's HTTP front stopped.
    cl.stop_storaged(1);
    cl.stop_httpd(2);
    cl.wait_status(&[1], StorageStatus::Offline, 40).await;
    let v = json_until(
        30,
        "B OFFLINE, B's storage and C's HTTP port failing",
        |v| {
            storage(v, &b)["state"] == "OFFLINE"
                && peer(v, &b)["storage"]["ok"] == false
                && peer(v, &c)["http"]["ok"] == false
        },
    )
    .await;
    assert!(storage(&v, &b)["problems"][0]
        .as_str()
        .unwrap()
        .contains("OFFLINE"));
    assert_eq!(storage(&v, &c)["state"], "ACTIVE");
    assert_eq!(
        peer(&v, &b)["storage"]["error"],
        "Connection refused (os error 111)"
    );
    assert_eq!(peer(&v, &b)["http"]["ok"], true, "B's front still runs");
    assert_eq!(
        peer(&v, &c)["http"]["error"],
        "Connection refused (os error 111)"
    );
    assert_eq!(peer(&v, &c)["storage"]["ok"], true, "C's storaged runs");
    let ev = &v["lag_events"][0];
    assert_eq!(ev["file_id"], id.as_str());
    assert_eq!(
        (ev["peer"].as_str(), ev["status"].as_u64()),
        (Some(b.as_str()), Some(404))
    );

    let (code, out) = doctor(&cl, "broken").await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL peer {b} storage port 23000: Connection refused (os error 111) — nothing listens on 23000: is fdfs_storaged running there?"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("FAIL peer {b} state at the tracker: OFFLINE")),
        "{out}"
    );
    assert!(
        out.contains(&format!("ok   peer {b} HTTP port 8888: answers")),
        "{out}"
    );
    assert!(
        out.contains(&format!("ok   peer {c} storage port 23000: answers")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAIL peer {c} HTTP port 8888: Connection refused (os error 111) — nothing listens on 8888"
        )),
        "{out}"
    );

    let png = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let dom = chromium(&cl, "broken", Some(png.clone())).await;
    assert!(dom.contains("data-refreshed=\""));
    assert_eq!(
        rows(&dom, "storage") + rows(&dom, "storage problem"),
        3,
        "{dom}"
    );
    assert!(
        dom.contains(&format!("<tr class=\"storage problem\" data-ip=\"{b}\">")),
        "{dom}"
    );
    assert!(dom.contains(&format!("<tr class=\"peer problem\" data-ip=\"{b}\">")));
    assert!(dom.contains(&format!("<tr class=\"peer problem\" data-ip=\"{c}\">")));
    assert!(dom.contains("OFFLINE"));
    if let Some(dst) = std::env::var_os("FDFS_STATUS_PNG") {
        std::fs::copy(&png, &dst).unwrap();
    }
    eprintln!(
        "status page test: {:.1} s, screenshot {}",
        t0.elapsed().as_secs_f64(),
        png.display()
    );
    let t1 = Instant::now();
    drop(cl);
    eprintln!(
        "cluster stopped and removed in {:.1} s",
        t1.elapsed().as_secs_f64()
    );
}
