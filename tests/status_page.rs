//! The status page and `fdfs-httpd doctor` against a fake tracker and real
//! sockets on 127.15.0.x: the page lists the tracker's storages with their
//! states and marks the problem rows, the JSON carries the same, the peer
//! probes keep the OS error text, and `doctor` names the refused port.

#[path = "support/fake_fdfs.rs"]
mod fake_fdfs;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fake_fdfs::TrackerSpec;
use fdfs_httpd::proto::{GroupStat, StorageStat, StorageStatus};

const ME: &str = "127.15.0.1";
const UP: &str = "127.15.0.2";
const DOWN: &str = "127.15.0.3";

fn stat(ip: &str, status: StorageStatus, port: u16) -> StorageStat {
    StorageStat {
        total_mb: 100_000,
        free_mb: 50_000,
        storage_port: port,
        last_heart_beat_time: support::now(),
        ..StorageStat::new(ip, status)
    }
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A store with `data/00/00`, a fake tracker listing this node and UP
/// ACTIVE and DOWN OFFLINE, listeners on UP's HTTP and storage ports
/// (nothing on DOWN's), and the config text.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    conf: String,
    admin: SocketAddr,
    http_port: u16,
    storage_port: u16,
    _tracker: fake_fdfs::FakeServer,
    _up: (std::net::TcpListener, std::net::TcpListener),
}

async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    std::fs::create_dir_all(root.join("data/00/00")).unwrap();
    let http_port = free_port(UP);
    let storage_port = free_port(UP);
    let up = (
        std::net::TcpListener::bind((UP, http_port)).unwrap(),
        std::net::TcpListener::bind((UP, storage_port)).unwrap(),
    );
    let tracker = fake_fdfs::start_tracker_on(
        "127.15.0.4".parse().unwrap(),
        TrackerSpec {
            groups: vec![(
                "group1".into(),
                vec![
                    stat(ME, StorageStatus::Active, storage_port),
                    stat(UP, StorageStatus::Active, storage_port),
                    stat(DOWN, StorageStatus::Offline, storage_port),
                ],
            )],
            group_stats: vec![GroupStat {
                name: "group1".into(),
                total_mb: 300_000,
                free_mb: 100_000,
                reserved_mb: 3_000,
                trunk_free_mb: 0,
                storage_count: 3,
                storage_port: i64::from(storage_port),
                readable_server_count: 2,
                writable_server_count: 2,
                current_write_server: 0,
                store_path_count: 1,
                subdir_count_per_path: 1,
                current_trunk_file_id: -1,
            }],
            ..TrackerSpec::default()
        },
    )
    .await;
    let admin: SocketAddr = format!("{ME}:{}", free_port(ME)).parse().unwrap();
    let conf = format!(
        "group_name = group1\nurl_have_group_name = true\nstore_path_count = 1\nstore_path0 = {s}\n\
base_path = {s}\nresponse_mode = redirect\nlocal_ip_addrs = {ME}\nconnect_timeout = 2\n\
tracker_server = {t}\npeer_http_port = {http_port}\nadmin_listen = {admin}\n\
storage_sync_file_max_delay = 86400\nlog_level = info\n",
        s = root.display(),
        t = tracker.addr,
    );
    Setup {
        dir: tmp.path().to_path_buf(),
        _tmp: tmp,
        conf,
        admin,
        http_port,
        storage_port,
        _tracker: tracker,
        _up: up,
    }
}

async fn get(addr: SocketAddr, accept: &str) -> support::Resp {
    support::request(addr, "GET", "/status", &[("Accept", accept)]).await
}

/// Polls the JSON until `f` accepts it (at most 15 s).
async fn json_until(addr: SocketAddr, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let r = get(addr, "application/json").await;
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        if f(&v) {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "never reached: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_lists_the_tracker_storages_and_this_nodes_reach() {
    let s = setup().await;
    let srv = support::Server::start(&s.conf, &s.dir, ME).await;
    let t0 = Instant::now();
    while tokio::net::TcpStream::connect(s.admin).await.is_err() {
        assert!(t0.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = json_until(s.admin, |v| {
        v["cluster"]["groups"][0]["storages"]
            .as_array()
            .is_some_and(|a| a.len() == 3)
            && v["reach"]
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(|p| !p["storage"].is_null()))
    })
    .await;
    // The group's figures (LIST_ALL_GROUPS): usable = free - reserved.
    assert_eq!(v["cluster"]["groups"][0]["usable_free_mb"], 97_000);
    assert_eq!(v["cluster"]["groups"][0]["readable_server_count"], 2);
    // Today's fields are still there.
    assert_eq!(v["config"]["groups"][0]["name"], "group1");
    let storages = v["cluster"]["groups"][0]["storages"].as_array().unwrap();
    let by_ip = |ip: &str| storages.iter().find(|s| s["ip"] == ip).unwrap().clone();
    assert_eq!(by_ip(ME)["state"], "ACTIVE");
    assert_eq!(by_ip(ME)["self"], true);
    assert_eq!(by_ip(UP)["problems"].as_array().unwrap().len(), 0);
    assert_eq!(by_ip(DOWN)["state"], "OFFLINE");
    assert!(by_ip(DOWN)["problems"][0]
        .as_str()
        .unwrap()
        .contains("OFFLINE"));
    let reach = v["reach"].as_array().unwrap();
    assert!(reach.iter().all(|p| p["ip"] != ME), "never probes itself");
    let up = reach.iter().find(|p| p["ip"] == UP).unwrap();
    assert_eq!(up["http"]["ok"], true, "{up}");
    assert_eq!(up["http"]["port"], s.http_port);
    assert_eq!(up["storage"]["ok"], true);
    let down = reach.iter().find(|p| p["ip"] == DOWN).unwrap();
    assert_eq!(down["http"]["ok"], false);
    assert_eq!(
        down["storage"]["error"],
        "Connection refused (os error 111)"
    );
    assert_eq!(down["storage"]["port"], s.storage_port);
    assert_eq!(
        v["cluster"]["problems"], 2,
        "DOWN's storage row and peer row"
    );

    let r = get(s.admin, "text/html,application/xhtml+xml,*/*;q=0.8").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(r.header("vary").as_deref(), Some("Accept"));
    let html = String::from_utf8(r.body).unwrap();
    assert_eq!(html.matches("<tr class=\"storage\" data-ip=").count(), 2);
    assert!(html.contains(&format!(
        "<tr class=\"storage problem\" data-ip=\"{DOWN}\">"
    )));
    assert!(html.contains(&format!("<tr class=\"peer problem\" data-ip=\"{DOWN}\">")));
    assert!(html.contains(&format!("<tr class=\"peer\" data-ip=\"{UP}\">")));
    assert!(html.contains("Connection refused (os error 111)"));
    // curl's */* keeps getting JSON.
    let r = get(s.admin, "*/*").await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    srv.stop().await;
}

fn doctor(conf: &Path) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
        .args(["doctor", "--config"])
        .arg(conf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("doctor did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_refused_port() {
    let s = setup().await;
    let path = s.dir.join("mod_fastdfs.conf");
    std::fs::write(&path, &s.conf).unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || doctor(&path))
        .await
        .unwrap();
    assert_eq!(code, 2, "{out}");
    let line = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{out}"))
    };
    assert!(line("ok   config ").ends_with(": valid"));
    // The tracker's subdir_count_per_path (1) matches data/00.
    assert!(line("ok   group1 store_path0: ").contains("1 sub-directories"));
    assert!(line("ok   tracker 127.15.0.4:").contains("knows group1: 3 storage(s), 2 ACTIVE"));
    assert!(
        out.contains(" lists this node: known as 127.15.0.1 (id 127.15.0.1), ACTIVE\n"),
        "{out}"
    );
    assert!(line(&format!("ok   peer {UP} storage port {}", s.storage_port)).contains("answers"));
    assert!(line(&format!("ok   peer {UP} HTTP port {}", s.http_port)).contains("answers"));
    assert_eq!(
        line(&format!("FAIL peer {DOWN} storage port")),
        format!(
            "FAIL peer {DOWN} storage port {p}: Connection refused (os error 111) — nothing listens on {p}: is fdfs_storaged running there?",
            p = s.storage_port
        )
    );
    assert!(line(&format!("FAIL peer {DOWN} HTTP port")).contains("Connection refused"));
    assert!(line(&format!("FAIL peer {DOWN} state at the tracker")).contains("OFFLINE"));
    assert!(line("ok   clock vs tracker").contains("within a heartbeat"));
    assert!(out.trim_end().ends_with("FAIL"), "summary line last: {out}");
}
