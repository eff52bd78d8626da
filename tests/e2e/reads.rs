#![allow(dead_code)]
//! Checks the end-to-end targets share: deterministic bytes, the reads a
//! served file must answer (GET, HEAD, Range, multi-range, If-None-Match,
//! `?filename=`), and fdfs-httpd's decode of an ID against `fdfs_file_info`.

use fdfs_httpd::fileid::FileId;

use super::cluster::{node_ip, Cluster};
use super::support::{self, sha256, Resp};

/// `support::request` on the heap: a request future holds 80 KiB of read
/// buffers, and a test awaiting many of them inline outgrows the test
/// thread's stack in debug builds.
pub async fn req(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    Box::pin(support::request(addr, method, target, headers)).await
}

/// Deterministic test bytes.
pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn url(id: &str) -> String {
    format!("/{id}")
}

pub fn parse(id: &str) -> FileId {
    let (g, r) = id.split_once('/').unwrap();
    FileId::parse(g, r).unwrap_or_else(|e| panic!("{id}: {e:?}"))
}

/// `fdfs_file_info`'s fields: (source ip or id, create "Y-m-d H:M:S", size, crc32).
pub fn file_info(cl: &Cluster, id: &str) -> std::collections::HashMap<String, String> {
    let out = cl.tool("fdfs_file_info", &[id]);
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

pub fn fmt_local(ts: i64) -> String {
    // fdfs_file_info prints local time; the test machine runs in UTC unless
    // TZ says otherwise, so compare through `date`.
    let out = std::process::Command::new("date")
        .arg("-d")
        .arg(format!("@{ts}"))
        .arg("+%Y-%m-%d %H:%M:%S")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Asserts that fdfs-httpd's decode of `id` equals `fdfs_file_info`.
pub fn assert_decode_matches(cl: &Cluster, id: &str, len: u64) {
    let f = parse(id);
    let info = file_info(cl, id);
    let enc = f.encoded();
    assert_eq!(
        info["source ip address"],
        enc.source
            .to_string()
            .replace("100001", &node_ip(0))
            .replace("100002", &node_ip(1))
            .replace("100003", &node_ip(2)),
        "{id}: source"
    );
    let ts = &info["file create timestamp"];
    if info["file type"] == "slave" {
        // A slave's name carries its master's create time; the storage
        // reports the slave file's own, written at or after the master.
        assert!(
            *ts >= fmt_local(enc.create_ts) && *ts <= fmt_local(enc.create_ts + 600),
            "{id}: slave timestamp {ts} vs master's {}",
            fmt_local(enc.create_ts)
        );
    } else {
        assert_eq!(*ts, fmt_local(enc.create_ts), "{id}: timestamp");
    }
    assert_eq!(info["file size"], len.to_string(), "{id}: size");
    if let Some(s) = f.size() {
        assert_eq!(s, len, "{id}: decoded size");
    }
    let crc = info["file crc32"]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let file_type = &info["file type"];
    if file_type == "normal" || file_type == "trunk" {
        assert_eq!(crc, (enc.crc32 as i32).to_string(), "{id}: crc32");
    }
}

/// GET, HEAD, Range, multi-range, If-None-Match and `?filename=` of `id`
/// on node `addr`; returns the ETag.
pub async fn check_reads(addr: std::net::SocketAddr, id: &str, want: &[u8]) -> String {
    let u = url(id);
    let r = req(addr, "GET", &u, &[]).await;
    assert_eq!(r.status, 200, "GET {u} on {addr}");
    assert_eq!(sha256(&r.body), sha256(want), "GET {u} on {addr}: bytes");
    let etag = r.header("etag").expect("etag");
    let r = req(addr, "HEAD", &u, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(want.len().to_string()));
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag").as_deref(), Some(etag.as_str()));
    let r = req(addr, "GET", &u, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304, "If-None-Match on {addr}");
    let r = req(addr, "GET", &format!("{u}?filename=report%20v1.bin"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("report v1.bin"),
        "{:?}",
        r.header("content-disposition")
    );
    if want.len() >= 20 {
        let r = req(addr, "GET", &u, &[("Range", "bytes=5-14")]).await;
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &want[5..15]);
        let n = want.len();
        assert_eq!(r.header("content-range"), Some(format!("bytes 5-14/{n}")));
        let r = req(addr, "GET", &u, &[("Range", "bytes=0-1,-3")]).await;
        assert_eq!(r.status, 206);
        let ct = r.header("content-type").unwrap();
        let all = support::multipart_parts(&r.body, &support::boundary_of(&ct));
        // Preamble, the two parts, the closing `--`.
        assert_eq!(all.len(), 4);
        let parts = &all[1..3];
        assert!(parts[0].ends_with(&want[..2]));
        assert!(parts[1].ends_with(&want[n - 3..]));
    } else if want.is_empty() {
        let r = req(addr, "GET", &u, &[("Range", "bytes=0-9")]).await;
        assert_eq!(r.status, 416);
    }
    etag
}
