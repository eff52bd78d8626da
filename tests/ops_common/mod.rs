//! Helpers shared by the operations tests (limits, logs, admin, shutdown):
//! a one-group store with generated files under real file IDs, its config,
//! free ports, and the real binary started with `--config`.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fdfs_httpd::fileid::{BuildKind, IdBuilder, Source};

/// A generated store.
pub struct Store {
    /// Store path root (has `data/00/00`).
    pub root: PathBuf,
    /// Files written: (URL path, content).
    pub files: Vec<(String, Vec<u8>)>,
    /// URL of a fresh file whose source is the peer 127.0.0.2 (not local:
    /// answered with a redirect).
    pub remote: String,
    /// URL of a file whose source is this node but that is missing.
    pub missing: String,
}

/// Deterministic pseudo-random bytes.
pub fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// Writes files of the given sizes under `tmp/store`.
pub fn store(tmp: &Path, sizes: &[usize]) -> Store {
    let root = tmp.join("store");
    let dir = root.join("data/00/00");
    std::fs::create_dir_all(&dir).unwrap();
    let now = fdfs_httpd::clock::unix_now();
    let mut files = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let bytes = content(len, i as u32);
        let id = IdBuilder::new()
            .source(Source::Ip(Ipv4Addr::LOCALHOST))
            .create_ts(now - 3600)
            .size(len as u64)
            .crc32(crc32fast::hash(&bytes))
            .rand23(0x100 + i as u32)
            .extension("bin")
            .kind(BuildKind::Normal)
            .build();
        let name = id.rsplit('/').next().unwrap().to_owned();
        std::fs::write(dir.join(&name), &bytes).unwrap();
        files.push((format!("/{id}"), bytes));
    }
    let remote = IdBuilder::new()
        .source(Source::Ip(Ipv4Addr::new(127, 0, 0, 2)))
        .create_ts(now)
        .size(12)
        .crc32(0x0BAD_F00D)
        .extension("jpg")
        .build();
    let missing = IdBuilder::new()
        .source(Source::Ip(Ipv4Addr::LOCALHOST))
        .create_ts(now)
        .size(12)
        .crc32(0x0BAD_BEEF)
        .extension("jpg")
        .build();
    Store {
        root,
        files,
        remote: format!("/{remote}"),
        missing: format!("/{missing}"),
    }
}

/// Config for `store` (redirect mode, this node 127.0.0.1, peer 127.0.0.2)
/// followed by `extra` lines.
pub fn conf(store: &Store, extra: &str) -> String {
    format!(
        "group_name = group1\nurl_have_group_name = true\nstore_path_count = 1\nstore_path0 = {s}\n\
base_path = {s}\nresponse_mode = redirect\nlocal_ip_addrs = 127.0.0.1\npeer_ip_addrs = 127.0.0.2\n\
storage_sync_file_max_delay = 86400\nlog_level = info\n{extra}\n",
        s = store.root.display()
    )
}

/// A port free on `ip` right now.
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary, running with a config file.
pub struct Binary {
    /// The child process.
    pub child: Child,
    /// Its public listener.
    pub addr: SocketAddr,
}

impl Binary {
    /// Writes `conf` (plus `listen = ip:<free port>`) to `dir` and starts
    /// the binary with `envs`; waits until the listener accepts.
    pub fn start(dir: &Path, conf: &str, ip: &str, envs: &[(&str, &str)]) -> Binary {
        let port = free_port(ip);
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        Binary::start_on(dir, conf, addr, envs)
    }

    /// [`Binary::start`] listening on `addr`.
    pub fn start_on(dir: &Path, conf: &str, addr: SocketAddr, envs: &[(&str, &str)]) -> Binary {
        let path = dir.join("mod_fastdfs.conf");
        std::fs::write(&path, format!("{conf}\nlisten = {addr}\n")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"));
        cmd.arg("--config")
            .arg(&path)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn fdfs-httpd");
        let mut b = Binary { child, addr };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(st)) = b.child.try_wait() {
                panic!("fdfs-httpd exited early: {st}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "binary not listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        b
    }

    /// Sends a signal by name (`TERM`, `USR1`, ...) with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Waits up to `limit` for the exit status.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            if t0.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
