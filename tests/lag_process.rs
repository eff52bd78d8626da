//! Replication lag between separate fdfs-httpd processes: the real binary
//! is started twice (`--config`), A on 127.0.0.2 and B on 127.0.0.3 on one
//! port, and B serves A's not-yet-replicated file by proxy; with A stopped
//! B answers 502, and a redirect-mode B sends a clean 302.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const ONLY_A: &str = "/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, conf: &str, listen: SocketAddr) -> Proc {
    let path = dir.join("mod_fastdfs.conf");
    std::fs::write(&path, format!("{conf}listen = {listen}\n")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fdfs-httpd");
    Proc(child)
}

async fn wait_listening(addr: SocketAddr) {
    let t0 = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{addr} never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_proxy_redirect_and_source_down() {
    let tmp = tempfile::tempdir().unwrap();
    let delay = real_recorded_delay();
    let ls = bind_same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let a_addr = ls[0].local_addr().unwrap();
    let b_addr = ls[1].local_addr().unwrap();
    let r_addr = ls[2].local_addr().unwrap();
    drop(ls); // the processes bind these themselves
    let peers = "127.0.0.2,127.0.0.3";
    let mut procs = Vec::new();
    for (node, ip, addr, mode) in [
        ("A", "127.0.0.2", a_addr, "proxy"),
        ("B", "127.0.0.3", b_addr, "proxy"),
    ] {
        let dir = tmp.path().join(node);
        std::fs::create_dir_all(&dir).unwrap();
        let store = real_store(node, &dir);
        procs.push(spawn(
            &dir,
            &real_conf(&store, ip, peers, mode, delay),
            addr,
        ));
    }
    wait_listening(a_addr).await;
    wait_listening(b_addr).await;
    let want = std::fs::read(
        fixtures().join("real/storageA/data/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt"),
    )
    .unwrap();

    let r = get(b_addr, ONLY_A).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, want);
    let r = request(b_addr, "GET", ONLY_A, &[("Range", "bytes=0-9")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &want[..10]);

    // A redirect-mode B (third process) on another address of the group.
    let dir = tmp.path().join("R");
    std::fs::create_dir_all(&dir).unwrap();
    let store = real_store("B", &dir);
    let _r = spawn(
        &dir,
        &real_conf(&store, "127.0.0.4", peers, "redirect", delay),
        r_addr,
    );
    wait_listening(r_addr).await;
    let r = get(r_addr, ONLY_A).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").unwrap(),
        format!("http://127.0.0.2:{}{ONLY_A}?redirect=1", a_addr.port())
    );
    assert_eq!(r.header("content-length").as_deref(), Some("0"));

    // Stop A: B has no other peer with the file → 502, quickly.
    drop(procs.remove(0));
    let t0 = Instant::now();
    assert_eq!(get(b_addr, ONLY_A).await.status, 502);
    assert!(t0.elapsed() < Duration::from_secs(2));
}
