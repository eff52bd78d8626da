//! Lays out the benchmark stores under real FastDFS file IDs (made with
//! [`fdfs_httpd::fileid::IdBuilder`]) and writes the URL paths to use.
//!
//! `cargo run --release --example bench_store -- ROOT [SMALL_COUNT]`
//!
//! - `ROOT/main`: one file per size (1 KiB … 64 MiB), source 127.0.0.1, plus
//!   a tree of `SMALL_COUNT` (default 100,000) 1 KiB files over 64×64 dirs;
//! - `ROOT/source`: 4 KiB and 1 MiB files whose source is 127.0.0.3 (the
//!   replication-lag node), created now so they are inside the lag window;
//! - `ROOT/front`: an empty store (the node that proxies or redirects);
//! - `ROOT/ids/<name>.txt`: one URL path per line (`size_4k.txt`, …,
//!   `tree.txt`, `lag_4k.txt`, `lag_1m.txt`).
//!
//! An existing tree of the same size is kept (`ROOT/.done`).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use fdfs_httpd::fileid::{BuildKind, IdBuilder, Source};

const SIZES: [(&str, usize); 6] = [
    ("1k", 1 << 10),
    ("4k", 4 << 10),
    ("16k", 16 << 10),
    ("256k", 256 << 10),
    ("1m", 1 << 20),
    ("64m", 64 << 20),
];

fn content(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes one file under `store` and returns its URL path.
fn put(store: &Path, src: Ipv4Addr, ts: i64, sub: (u8, u8), seq: u32, bytes: &[u8]) -> String {
    let id = IdBuilder::new()
        .source(Source::Ip(src))
        .create_ts(ts)
        .subdirs(sub.0, sub.1)
        .size(bytes.len() as u64)
        .crc32(crc32fast::hash(bytes))
        .rand23(seq & 0x7F_FFFF)
        .ext_digits(seq)
        .extension("bin")
        .kind(BuildKind::Normal)
        .build();
    let dir = store.join(format!("data/{:02X}/{:02X}", sub.0, sub.1));
    std::fs::create_dir_all(&dir).expect("create store dir");
    let name = id.rsplit('/').next().unwrap_or_default();
    std::fs::write(dir.join(name), bytes).expect("write store file");
    format!("/{id}")
}

fn write_list(ids: &Path, name: &str, paths: &[String]) {
    let mut f = std::fs::File::create(ids.join(format!("{name}.txt"))).expect("create id list");
    for p in paths {
        writeln!(f, "{p}").expect("write id list");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root =
        std::path::PathBuf::from(args.next().expect("usage: bench_store ROOT [SMALL_COUNT]"));
    let small: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let marker = root.join(".done");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(&small.to_string()) {
        // Lag files must be fresh: rewrite only the source store below.
    } else {
        let _ = std::fs::remove_dir_all(&root);
        let main = root.join("main");
        let ids = root.join("ids");
        std::fs::create_dir_all(&ids).expect("create ids dir");
        let ts = 1_700_000_000;
        for (i, (label, len)) in SIZES.iter().enumerate() {
            let p = put(
                &main,
                Ipv4Addr::LOCALHOST,
                ts,
                (0, 0),
                i as u32,
                &content(*len, i as u32),
            );
            write_list(&ids, &format!("size_{label}"), &[p]);
        }
        let one_k = content(1024, 7);
        let tree: Vec<String> = (0..small)
            .map(|i| {
                let sub = ((i % 64) as u8, ((i / 64) % 64) as u8);
                put(&main, Ipv4Addr::LOCALHOST, ts, sub, 1000 + i, &one_k)
            })
            .collect();
        write_list(&ids, "tree", &tree);
        std::fs::create_dir_all(root.join("front/data")).expect("create front store");
        std::fs::write(&marker, small.to_string()).expect("write marker");
    }
    let source = root.join("source");
    let _ = std::fs::remove_dir_all(&source);
    let ids = root.join("ids");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let lag = Ipv4Addr::new(127, 0, 0, 3);
    let p4 = put(&source, lag, now, (0, 0), 1, &content(4 << 10, 41));
    let p1m = put(&source, lag, now, (0, 0), 2, &content(1 << 20, 42));
    write_list(&ids, "lag_4k", &[p4]);
    write_list(&ids, "lag_1m", &[p1m]);
    println!("stores ready under {}", root.display());
}
