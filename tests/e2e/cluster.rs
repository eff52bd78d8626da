#![allow(dead_code)]
//! A real FastDFS cluster on loopback for the end-to-end tests: a tracker on
//! 127.0.0.4:22122 (see [`net`]) and storages of `group1` on their own 127.0.0.x
//! addresses (storaged refuses a tracker on 127.0.0.1), each with its own
//! base path in a temp dir, started in the foreground (`-N`) as children;
//! one fdfs-httpd process per storage on the storage's IP. Every child is
//! killed and reaped when the [`Cluster`] drops, also on a panic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fdfs_httpd::proto::client::TrackerClient;
use fdfs_httpd::proto::tracker::StorageStatus;

/// The first three octets of every address of the cluster: `127.0.0` (the
/// fixtures' layout), or `$FDFS_E2E_NET` (e.g. `127.0.7`) so that two
/// clusters can run side by side on one machine.
pub fn net() -> String {
    std::env::var("FDFS_E2E_NET").unwrap_or_else(|_| "127.0.0".into())
}

/// The tracker's address: `<net>.4:22122`.
pub fn tracker() -> String {
    format!("{}.4:22122", net())
}

/// Storage `i`'s address (`<net>.2`, `.3`, `.5`; `.4` is the tracker).
pub fn node_ip(i: usize) -> String {
    format!("{}.{}", net(), [2, 3, 5][i])
}
/// fdfs-httpd's port on every node (the addresses differ).
pub const HTTP_PORT: u16 = 8888;
/// fdfs-httpd's admin port when a test opens it.
pub const ADMIN_PORT: u16 = 9888;

/// Where the FastDFS binaries are: `$FDFS_BIN_DIR`, else the first `PATH`
/// entry holding `fdfs_trackerd`. Panics with what to do when neither has.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FDFS_BIN_DIR") {
        let d = PathBuf::from(d);
        assert!(
            d.join("fdfs_trackerd").is_file(),
            "FDFS_BIN_DIR={} has no fdfs_trackerd",
            d.display()
        );
        return d;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        if d.join("fdfs_trackerd").is_file() {
            return d;
        }
    }
    panic!(
        "FastDFS binaries not found: put fdfs_trackerd, fdfs_storaged and the fdfs_* tools in PATH \
         or set FDFS_BIN_DIR (build them with ../shared/vendor/fastdfs/build.sh; see docs/e2e.md)"
    );
}

fn fixture_conf(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/configs")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Replaces the value of every `key = …` line (the first occurrence only
/// when the key repeats) or appends the key.
pub fn set_key(conf: &str, key: &str, value: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in conf.lines() {
        let k = line.split('=').next().unwrap_or("").trim();
        if !done && !line.trim_start().starts_with('#') && k == key && line.contains('=') {
            out.push_str(&format!("{key} = {value}\n"));
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        // Before the first section, so the key stays global.
        let at = out.find("\n[").map(|i| i + 1).unwrap_or(out.len());
        out.insert_str(at, &format!("{key} = {value}\n"));
    }
    out
}

/// How a cluster differs from the fixtures' configs.
#[derive(Clone, Default)]
pub struct Options {
    /// `use_trunk_file = true` on the tracker.
    pub trunk: bool,
    /// `use_storage_id = true` with a `storage_ids.conf` (ids 100001…).
    pub storage_ids: bool,
    /// The storages' `subdir_count_per_path` (16 when unset; the fixtures'
    /// 256 makes 65536 directories per store, slow to create and remove).
    pub subdirs: Option<u32>,
    /// More `key = value` lines for the tracker's config.
    pub tracker_keys: Vec<(&'static str, &'static str)>,
}

/// A child killed and reaped on drop.
pub struct Proc(Option<Child>);

impl Proc {
    fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn running(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One storage node: its storaged and its fdfs-httpd.
pub struct Node {
    /// "A", "B", …
    pub name: String,
    /// Its 127.0.0.x address.
    pub ip: String,
    /// storaged's base path = `store_path0`.
    pub base: PathBuf,
    conf: PathBuf,
    storaged: Proc,
    httpd: Proc,
}

impl Node {
    /// fdfs-httpd's address.
    pub fn http(&self) -> SocketAddr {
        format!("{}:{HTTP_PORT}", self.ip).parse().unwrap()
    }
    /// fdfs-httpd's admin address, when started with [`Node::admin_line`].
    pub fn admin(&self) -> SocketAddr {
        format!("{}:{ADMIN_PORT}", self.ip).parse().unwrap()
    }
    /// The config line that opens the admin listener on [`Node::admin`].
    pub fn admin_line(&self) -> String {
        format!("admin_listen = {}\n", self.admin())
    }
    /// The process ID of this node's fdfs-httpd, while it runs.
    pub fn httpd_pid(&self) -> Option<u32> {
        self.httpd.0.as_ref().map(Child::id)
    }
    /// Where a `M00/HH/HH/name` file lies in this node's store.
    pub fn file(&self, remote: &str) -> PathBuf {
        self.base.join("data").join(&remote[4..])
    }
}

/// The running cluster.
pub struct Cluster {
    bins: PathBuf,
    opts: Options,
    tracker: Proc,
    tracker_conf: PathBuf,
    /// The client config for the fdfs_* tools.
    pub client_conf: PathBuf,
    /// The storage nodes.
    pub nodes: Vec<Node>,
    /// Temp dir holding every base path, config and log; removed last.
    pub dir: tempfile::TempDir,
}

impl Drop for Cluster {
    /// Kills and reaps every child; after a failure prints the tail of each
    /// daemon's log so CI shows why.
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.httpd.stop();
            n.storaged.stop();
        }
        self.tracker.stop();
        if std::thread::panicking() {
            let root = self.dir.path();
            let mut logs = vec![root.join("tracker/logs/trackerd.log")];
            for n in &self.nodes {
                logs.push(n.base.join("logs/storaged.log"));
                logs.push(root.join(format!("httpd{}.out", n.name)));
            }
            logs.push(root.join("tracker.out"));
            for l in logs {
                let text = std::fs::read_to_string(&l).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("--- {} (last lines)", l.display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

const NODE_NAMES: [&str; 3] = ["A", "B", "C"];

impl Cluster {
    /// Lays out and starts a tracker and `n` storages (2 or 3), waits until
    /// the tracker lists all of them ACTIVE (bounded), then starts no
    /// fdfs-httpd yet (see [`Cluster::start_httpd`]).
    pub async fn start(n: usize, opts: Options) -> Cluster {
        let bins = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("fdfs-e2e")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        let tdir = root.join("tracker");
        std::fs::create_dir_all(&tdir).unwrap();
        let mut tconf = fixture_conf("tracker.conf");
        tconf = set_key(&tconf, "base_path", &tdir.display().to_string());
        tconf = set_key(&tconf, "bind_addr", &format!("{}.4", net()));
        // The host's disk may be more than 80% full: the fixtures' 20% would
        // refuse every upload.
        tconf = set_key(&tconf, "reserved_storage_space", "1%");
        // A storage that disappears turns OFFLINE within seconds.
        tconf = set_key(&tconf, "check_active_interval", "6");
        if opts.trunk {
            tconf = set_key(&tconf, "use_trunk_file", "true");
            tconf = set_key(&tconf, "trunk_file_size", "4MB");
        }
        if opts.storage_ids {
            let ids: String = (0..n)
                .map(|i| format!("{} group1 {}\n", 100001 + i, node_ip(i)))
                .collect();
            std::fs::write(tdir.join("storage_ids.conf"), ids).unwrap();
            tconf = set_key(&tconf, "use_storage_id", "true");
            tconf = set_key(
                &tconf,
                "storage_ids_filename",
                &tdir.join("storage_ids.conf").display().to_string(),
            );
        }
        for (k, v) in &opts.tracker_keys {
            tconf = set_key(&tconf, k, v);
        }
        let tracker_conf = root.join("tracker.conf");
        std::fs::write(&tracker_conf, tconf).unwrap();

        let cdir = root.join("client");
        std::fs::create_dir_all(&cdir).unwrap();
        let client_conf = root.join("client.conf");
        std::fs::write(
            &client_conf,
            set_key(
                &set_key(
                    &fixture_conf("client.conf"),
                    "base_path",
                    &cdir.display().to_string(),
                ),
                "tracker_server",
                &tracker(),
            ),
        )
        .unwrap();

        let mut nodes = Vec::new();
        for (i, name) in NODE_NAMES[..n].iter().enumerate() {
            let ip = node_ip(i);
            let base = root.join(format!("storage{name}"));
            std::fs::create_dir_all(&base).unwrap();
            let mut c = fixture_conf("storageA.conf");
            for (k, v) in [
                ("bind_addr", ip.clone()),
                ("tracker_server", tracker()),
                ("base_path", base.display().to_string()),
                ("store_path0", base.display().to_string()),
                ("if_alias_prefix", String::new()),
                ("heart_beat_interval", "2".into()),
                ("stat_report_interval", "5".into()),
                // 256 makes every storage create 65536 directories at its
                // first start: seconds on an idle disk, over a minute on a
                // busy one. File IDs still name two hex subdirectories.
                ("subdir_count_per_path", "16".into()),
            ] {
                c = set_key(&c, k, &v);
            }
            if let Some(n) = opts.subdirs {
                c = set_key(&c, "subdir_count_per_path", &n.to_string());
            }
            let conf = root.join(format!("storage{name}.conf"));
            std::fs::write(&conf, c).unwrap();
            nodes.push(Node {
                name: name.to_string(),
                ip,
                base,
                conf,
                storaged: Proc(None),
                httpd: Proc(None),
            });
        }
        let mut cl = Cluster {
            dir,
            bins,
            opts,
            tracker: Proc(None),
            tracker_conf,
            client_conf,
            nodes,
        };
        cl.start_tracker().await;
        // One after another: a storage that learns of a peer still joining
        // can record its port as 0 and not sync to it for minutes, leaving
        // the peer in WAIT_SYNC.
        for i in 0..n {
            cl.start_storaged(i);
            cl.wait_listed(i, 30).await;
        }
        cl.wait_status(&(0..n).collect::<Vec<_>>(), StorageStatus::Active, 60)
            .await;
        if cl.opts.trunk {
            cl.trunk_server(60).await;
        }
        cl
    }

    /// The index of the node the tracker elected trunk server (waits at
    /// most `secs`; small uploads need one).
    pub async fn trunk_server(&self, secs: u64) -> usize {
        let tc = self.tracker_client();
        let t0 = Instant::now();
        loop {
            if let Ok(list) = tc.list_storage("group1").await {
                if let Some(s) = list.iter().find(|s| s.is_trunk_server) {
                    if let Some(i) = self.nodes.iter().position(|n| n.ip == s.ip) {
                        return i;
                    }
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "no trunk server after {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The `storage_ids.conf` the tracker reads (with [`Options::storage_ids`]).
    pub fn storage_ids_file(&self) -> PathBuf {
        self.dir.path().join("tracker/storage_ids.conf")
    }

    /// Config lines pointing fdfs-httpd at the tracker.
    pub fn tracker_lines(&self) -> String {
        format!("tracker_server = {}\n", tracker())
    }

    /// Node `i`'s fdfs-httpd output (its error log) so far.
    pub fn httpd_log(&self, i: usize) -> String {
        let p = self
            .dir
            .path()
            .join(format!("httpd{}.out", self.nodes[i].name));
        std::fs::read_to_string(p).unwrap_or_default()
    }

    /// The options the cluster was started with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn spawn(&self, bin: &str, conf: &Path, log: &str) -> Child {
        let log = std::fs::File::create(self.dir.path().join(log)).unwrap();
        Command::new(self.bins.join(bin))
            .arg(conf)
            .arg("-N")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}"))
    }

    /// Starts the tracker and waits (bounded) until its port accepts. A
    /// lone tracker elects itself leader only once storages report to it,
    /// so there is no leader to wait for here.
    pub async fn start_tracker(&mut self) {
        if self.tracker.running() {
            return;
        }
        self.tracker = Proc(Some(self.spawn(
            "fdfs_trackerd",
            &self.tracker_conf,
            "tracker.out",
        )));
        let t0 = Instant::now();
        let addr = tracker();
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "tracker port {addr} not open within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the tracker.
    pub fn stop_tracker(&mut self) {
        self.tracker.stop();
    }

    /// Starts node `i`'s storaged (no wait).
    pub fn start_storaged(&mut self, i: usize) {
        if !self.nodes[i].storaged.running() {
            let c = self.spawn(
                "fdfs_storaged",
                &self.nodes[i].conf,
                &format!("storage{}.out", self.nodes[i].name),
            );
            self.nodes[i].storaged = Proc(Some(c));
        }
    }

    /// Kills node `i`'s storaged.
    pub fn stop_storaged(&mut self, i: usize) {
        self.nodes[i].storaged.stop();
    }

    /// Sends signal `sig` (`STOP`, `CONT`, …) to node `i`'s storaged: a
    /// stopped storaged still counts as ACTIVE at the tracker but answers
    /// nothing.
    pub fn signal_storaged(&self, i: usize, sig: &str) {
        if let Some(c) = &self.nodes[i].storaged.0 {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(c.id().to_string())
                .status();
        }
    }

    /// A client of the tracker (the crate's own).
    pub fn tracker_client(&self) -> TrackerClient {
        TrackerClient::new(
            vec![tracker().parse().unwrap()],
            Duration::from_secs(2),
            Duration::from_secs(5),
        )
    }

    /// Waits (at most `secs`) until the tracker lists storage `i` with its
    /// port, whatever its state.
    pub async fn wait_listed(&self, i: usize, secs: u64) {
        let tc = self.tracker_client();
        let t0 = Instant::now();
        loop {
            let list = tc.list_storage("group1").await;
            if let Ok(list) = &list {
                if list
                    .iter()
                    .any(|s| s.ip == self.nodes[i].ip && s.storage_port != 0)
                {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "storage {i} not listed after {secs} s: {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (at most `secs`) until the tracker lists the storages `idx`
    /// with `status`.
    pub async fn wait_status(&self, idx: &[usize], status: StorageStatus, secs: u64) {
        let tc = self.tracker_client();
        let t0 = Instant::now();
        loop {
            let list = tc.list_storage("group1").await;
            if let Ok(list) = &list {
                let ok = idx.iter().all(|&i| {
                    list.iter()
                        .any(|s| s.ip == self.nodes[i].ip && s.status == status)
                });
                if ok {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "storages {idx:?} not {status:?} after {secs} s: {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Starts (or restarts) node `i`'s fdfs-httpd with the common config
    /// plus `extra` lines, and waits until it listens.
    pub async fn start_httpd(&mut self, i: usize, extra: &str) {
        self.nodes[i].httpd.stop();
        let node = &self.nodes[i];
        let peers: Vec<&str> = self.nodes.iter().map(|n| n.ip.as_str()).collect();
        let mime = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/real/configs/mime.types.nginx");
        let conf = format!(
            "connect_timeout=2\nnetwork_timeout=10\nbase_path={base}\nload_fdfs_parameters_from_tracker=false\n\
storage_sync_file_max_delay = 86400\nuse_storage_id = false\ngroup_name=group1\nurl_have_group_name = true\n\
store_path_count=1\nstore_path0={base}\nlog_level=info\nresponse_mode=proxy\ngroup_count = 0\n\
storage_server_port = 23000\nlocal_ip_addrs = {ip}\npeer_ip_addrs = {peers}\n\
http.default_content_type = application/octet-stream\nhttp.mime_types_filename = {mime}\n\
http.anti_steal.check_token = false\nhttp.multi_range.enabled = true\nlisten = {ip}:{HTTP_PORT}\n",
            base = node.base.display(),
            ip = node.ip,
            peers = peers.join(","),
            mime = mime.display(),
        );
        // Later keys win in the module's INI.
        let conf = format!("{conf}{extra}");
        let path = self.dir.path().join(format!("httpd{}.conf", node.name));
        std::fs::write(&path, conf).unwrap();
        let log =
            std::fs::File::create(self.dir.path().join(format!("httpd{}.out", node.name))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
            .arg("--config")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn fdfs-httpd");
        self.nodes[i].httpd = Proc(Some(child));
        let addr = self.nodes[i].http();
        let t0 = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "fdfs-httpd on {addr} never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops node `i`'s fdfs-httpd.
    pub fn stop_httpd(&mut self, i: usize) {
        self.nodes[i].httpd.stop();
    }

    /// Runs an fdfs_* tool with the client config first; panics on failure.
    pub fn tool(&self, bin: &str, args: &[&str]) -> String {
        let out = self.tool_output(bin, args);
        assert!(
            out.status.success(),
            "{bin} {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs an fdfs_* tool with the client config first.
    pub fn tool_output(&self, bin: &str, args: &[&str]) -> Output {
        Command::new(self.bins.join(bin))
            .arg(&self.client_conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {bin}: {e}"))
    }

    /// Uploads `data` (written to a temp file named `*.{ext}`) with
    /// `fdfs_upload_file`, optionally to one storage (`ip:port`). Returns
    /// `group1/M00/…`.
    pub fn upload(&self, data: &[u8], ext: &str, to: Option<&str>) -> String {
        let f = self.local_file(data, ext);
        let f = f.to_str().unwrap();
        let mut args = vec![f];
        if let Some(t) = to {
            args.push(t);
        }
        let id = self.tool("fdfs_upload_file", &args).trim().to_string();
        assert!(id.starts_with("group1/M00/"), "upload printed {id:?}");
        id
    }

    /// Writes `data` to a fresh local file `upN.{ext}`.
    pub fn local_file(&self, data: &[u8], ext: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = self.dir.path().join(format!("up{n}.{ext}"));
        std::fs::write(&p, data).unwrap();
        p
    }

    /// Waits (at most `secs`) until every node in `idx` holds `id` on disk
    /// with `len` bytes.
    pub async fn wait_replicated(&self, id: &str, len: u64, idx: &[usize], secs: u64) {
        let remote = id.strip_prefix("group1/").unwrap();
        let t0 = Instant::now();
        loop {
            let ok = idx.iter().all(|&i| {
                std::fs::metadata(self.nodes[i].file(remote)).is_ok_and(|m| m.len() == len)
            });
            if ok {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{id} not on nodes {idx:?} after {secs} s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
