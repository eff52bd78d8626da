//! The upload API against a real FastDFS 6.16 (docs/upload.md): one
//! cluster (tracker + 2 storages, fdfs-httpd with the API on node A)
//! shared by every check, in order: sizes 0 B to 64 MiB read back with
//! `fdfs_download_file`, metadata, download/preview, hostile names,
//! appender and append, slave, 32 concurrent uploads, auth failures,
//! the limit crossed mid-stream with nothing stored, delete, a storage
//! killed mid-upload, the tracker down. Ignored by `cargo test`; run with
//! `FDFS_E2E_NET=127.0.14 cargo test --test e2e_upload -- --ignored`
//! or `scripts/e2e`.

#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/reads.rs"]
mod reads;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cluster::{tracker, Cluster, Options};
use fdfs_httpd::upload::auth::{sign, string_to_sign};
use reads::bytes;
use support::{read_response, sha256, Resp};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const KEY: &str = "e2e-upload-key-0123456789";
const SMALL_KEY: &str = "e2e-small-key-0123456789";

/// Sends head + body (in 256 KiB writes) and reads the answer.
async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Resp {
    Box::pin(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        s.write_all(head.as_bytes()).await.unwrap();
        for c in body.chunks(256 * 1024) {
            if s.write_all(c).await.is_err() {
                break; // answered early (413): read what came
            }
        }
        read_response(&mut s, method == "HEAD").await
    })
    .await
}

fn keyed(app: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("X-Fdfs-App-Id", app.into()),
        ("X-Fdfs-App-Key", key.into()),
    ]
}

fn form(boundary: &str, fields: &[(&str, &[u8])], file: (&str, &[u8])) -> Vec<u8> {
    let mut b = Vec::with_capacity(file.1.len() + 1024);
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n")
                .as_bytes(),
        );
        b.extend_from_slice(v);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"fastdfs\"; filename=\"{}\"\r\nContent-Type: image/png\r\n\r\n", file.0).as_bytes());
    b.extend_from_slice(file.1);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

fn json(r: &Resp) -> serde_json::Value {
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json"),
        "{r:?}"
    );
    serde_json::from_slice(&r.body).unwrap()
}

fn ok_id(r: &Resp) -> (String, serde_json::Value) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let j = json(r);
    let id = j["file_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("group1/M00/"), "{j}");
    (id, j)
}

fn err_code(r: &Resp) -> String {
    json(r)["error"].as_str().unwrap_or("").to_owned()
}

/// `fdfs_download_file` into a local file; its sha256.
fn download_sha(cl: &Cluster, id: &str) -> String {
    let out = cl.dir.path().join("dl.bin");
    let _ = std::fs::remove_file(&out);
    cl.tool("fdfs_download_file", &[id, out.to_str().unwrap()]);
    sha256(&std::fs::read(&out).unwrap())
}

/// Stored files on every node: regular files in `data/HH/HH/` (the
/// storage's own binlogs and flags live elsewhere under `data/`).
fn stored_files(cl: &Cluster) -> usize {
    let hex2 = |p: &std::path::Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let dirs = |p: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(p).map_or(Vec::new(), |rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && hex2(p))
                .collect()
        })
    };
    let mut n = 0;
    for node in &cl.nodes {
        for d1 in dirs(&node.base.join("data")) {
            for d2 in dirs(&d1) {
                n += std::fs::read_dir(&d2)
                    .map_or(0, |rd| rd.flatten().filter(|e| e.path().is_file()).count());
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a FastDFS build: scripts/e2e"]
async fn upload_api_against_a_real_cluster() {
    let t0 = Instant::now();
    let opts = Options {
        subdirs: Some(4),
        ..Options::default()
    };
    let mut cl = Cluster::start(2, opts).await;
    let extra = format!(
        "tracker_server = {}\nnetwork_timeout = 3\nupload.enabled = true\nupload.max_concurrent = 64\nupload.stall_timeout = 5s\n\
         upload.app = shop key={KEY} rights=upload,delete max_size=100M\n\
         upload.app = small key={SMALL_KEY} max_size=1M\n",
        tracker()
    );
    cl.start_httpd(0, &extra).await;
    let a = cl.nodes[0].http();
    eprintln!("cluster up in {:?}", t0.elapsed());

    // 0. The limit crossed mid-stream (credentials before the file): 413,
    // nothing stored (the cluster holds no file yet). The announced length
    // passes the head check and all but its last 16 bytes are sent (more
    // than 1 MiB of file either way): 413 can only come from the cut as
    // the limit is crossed (waiting for the rest would end in a 408 after
    // the stall timeout).
    let big = bytes(3 << 20, 12);
    let b = form(
        "L",
        &[("app_id", b"small"), ("app_key", SMALL_KEY.as_bytes())],
        ("big.bin", &big),
    );
    let r = {
        let mut s = TcpStream::connect(a).await.unwrap();
        let announced = (1 << 20) + (32 << 10);
        let head = format!("POST /api/upload HTTP/1.1\r\nHost: {a}\r\nContent-Type: multipart/form-data; boundary=L\r\nContent-Length: {announced}\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        // Written until the server stops reading (it answers and closes).
        for c in b[..announced - 16].chunks(64 * 1024) {
            if s.write_all(c).await.is_err() {
                break;
            }
        }
        support::read_response(&mut s, false).await
    };
    assert_eq!((r.status, err_code(&r)), (413, "too_large".into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored_files(&cl), 0, "a file was stored");

    // 1. Sizes, raw PUT (streamed) and multipart (spooled); read back with
    // fdfs_download_file (0 B: fdfs_file_info, the storage cannot
    // DOWNLOAD an empty file).
    for (len, seed) in [(0usize, 1u8), (1024, 2), (1 << 20, 3), (64 << 20, 4)] {
        let data = bytes(len, seed);
        let r = send(
            a,
            "PUT",
            &format!("/api/upload/f{len}.bin"),
            &keyed("shop", KEY),
            &data,
        )
        .await;
        let (put_id, j) = ok_id(&r);
        assert_eq!(j["size"], len as u64);
        assert_eq!(j["crc32"], crc32fast::hash(&data));
        assert_eq!(j["name"], format!("f{len}.bin"));
        assert!(put_id.ends_with(".bin"), "{put_id}");
        assert_eq!(j["url"], format!("http://{a}/{put_id}"));
        let b = form(
            "E2eBoundary",
            &[("app_id", b"shop"), ("app_key", KEY.as_bytes())],
            (&format!("m{len}.png"), &data),
        );
        let r = send(
            a,
            "POST",
            "/api/upload",
            &[(
                "Content-Type",
                "multipart/form-data; boundary=E2eBoundary".into(),
            )],
            &b,
        )
        .await;
        let (mp_id, j) = ok_id(&r);
        assert_eq!(
            (j["size"].as_u64(), j["crc32"].as_u64()),
            (Some(len as u64), Some(u64::from(crc32fast::hash(&data))))
        );
        assert!(mp_id.ends_with(".png"), "{mp_id}");
        for id in [&put_id, &mp_id] {
            if len == 0 {
                let info = cl.tool("fdfs_file_info", &[id]);
                assert!(info.contains("file size: 0"), "{info}");
            } else {
                assert_eq!(download_sha(&cl, id), sha256(&data), "{id}");
            }
        }
        eprintln!("{len} B checked at {:?}", t0.elapsed());
    }

    // 2. Metadata, download and preview.
    let data = bytes(3000, 9);
    let b = form(
        "M",
        &[
            ("meta.width", b"640"),
            ("app_id", b"shop"),
            ("app_key", KEY.as_bytes()),
        ],
        ("photo.png", &data),
    );
    let (id, _) = ok_id(
        &send(
            a,
            "POST",
            "/api/upload",
            &[("Content-Type", "multipart/form-data; boundary=M".into())],
            &b,
        )
        .await,
    );
    let remote = id.strip_prefix("group1/").unwrap();
    let meta = cl.tool("fdfs_test", &["getmeta", "group1", remote]);
    for want in ["name=photo.png", "content_type=image/png", "width=640"] {
        assert!(meta.contains(want), "{want} not in {meta}");
    }
    let r = support::get(a, &format!("/api/download/{id}")).await;
    assert_eq!((r.status, sha256(&r.body)), (200, sha256(&data)));
    let cd = r.header("content-disposition").unwrap();
    assert!(cd.starts_with("attachment; filename=\"photo.png\""), "{cd}");
    let r = support::get(a, &format!("/api/download/{id}?filename=other.png")).await;
    let cd = r.header("content-disposition").unwrap();
    assert!(cd.starts_with("attachment; filename=\"other.png\""), "{cd}");
    let r = support::get(a, &format!("/api/preview/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-disposition").as_deref(), Some("inline"));
    assert_eq!(r.header("content-type").as_deref(), Some("image/png"));
    let r = support::request(
        a,
        "GET",
        &format!("/api/preview/{id}"),
        &[("Range", "bytes=10-19")],
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (206, &data[10..20]));

    // 3. Hostile names.
    for (raw, name, ext) in [
        ("..%2F..%2Fetc%2Fpasswd", "passwd", ""),
        ("a%00b.txt", "ab.txt", ".txt"),
        ("%E6%97%A5%E6%9C%AC.txt", "日本.txt", ".txt"),
        ("x.jpeg2000", "x.jpeg2000", ""),
    ] {
        let r = send(
            a,
            "PUT",
            &format!("/api/upload/{raw}"),
            &keyed("shop", KEY),
            b"hostile",
        )
        .await;
        let (id, j) = ok_id(&r);
        assert_eq!(j["name"], name, "{raw}");
        let stem = id.rsplit('/').next().unwrap();
        if ext.is_empty() {
            assert!(!stem.contains('.'), "{raw}: {id}");
        } else {
            assert!(stem.ends_with(ext), "{raw}: {id}");
        }
        assert_eq!(download_sha(&cl, &id), sha256(b"hostile"));
    }

    // A raw body without Content-Length (chunked): spooled, then stored.
    let chunked = bytes(300_000, 14);
    let mut c = TcpStream::connect(a).await.unwrap();
    let head = format!("PUT /api/upload/chunked.bin HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: shop\r\nX-Fdfs-App-Key: {KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    c.write_all(head.as_bytes()).await.unwrap();
    for part in chunked.chunks(70_000) {
        c.write_all(format!("{:x}\r\n", part.len()).as_bytes())
            .await
            .unwrap();
        c.write_all(part).await.unwrap();
        c.write_all(b"\r\n").await.unwrap();
    }
    c.write_all(b"0\r\n\r\n").await.unwrap();
    let (id, j) = ok_id(&read_response(&mut c, false).await);
    assert_eq!(
        (j["size"].as_u64(), j["crc32"].as_u64()),
        (Some(300_000), Some(u64::from(crc32fast::hash(&chunked))))
    );
    assert_eq!(download_sha(&cl, &id), sha256(&chunked));

    // 4. Appender + append; slave.
    let (app_id, _) = ok_id(
        &send(
            a,
            "PUT",
            "/api/upload/log.txt?appender=1",
            &keyed("shop", KEY),
            b"first,",
        )
        .await,
    );
    let r = send(
        a,
        "PUT",
        &format!("/api/append/{app_id}"),
        &keyed("shop", KEY),
        b"second",
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(download_sha(&cl, &app_id), sha256(b"first,second"));
    let (master, _) =
        ok_id(&send(a, "PUT", "/api/upload/big.jpg", &keyed("shop", KEY), &data).await);
    let thumb = bytes(500, 11);
    let r = send(
        a,
        "PUT",
        &format!("/api/upload/t.jpg?master={master}&prefix=_150x150"),
        &keyed("shop", KEY),
        &thumb,
    )
    .await;
    let (slave, _) = ok_id(&r);
    let stem = master.trim_end_matches(".jpg");
    assert_eq!(slave, format!("{stem}_150x150.jpg"));
    assert_eq!(download_sha(&cl, &slave), sha256(&thumb));
    eprintln!("flows checked at {:?}", t0.elapsed());

    // 5. 32 concurrent uploads.
    let mut tasks = Vec::new();
    for i in 0..32u8 {
        tasks.push(tokio::spawn(async move {
            let data = bytes(4096 + usize::from(i) * 1000, 100 + i);
            let r = send(
                a,
                "PUT",
                &format!("/api/upload/c{i}.dat"),
                &keyed("shop", KEY),
                &data,
            )
            .await;
            (r, data)
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (r, data) = t.await.unwrap();
        let (id, j) = ok_id(&r);
        assert_eq!(j["crc32"], crc32fast::hash(&data));
        assert_eq!(download_sha(&cl, &id), sha256(&data), "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 32);
    eprintln!("32 concurrent at {:?}", t0.elapsed());

    // 6. Auth: wrong key, wrong signature, expired timestamp, missing right.
    let r = send(
        a,
        "PUT",
        "/api/upload/x.txt",
        &keyed("shop", "e2e-upload-key-0123456788"),
        b"x",
    )
    .await;
    assert_eq!((r.status, err_code(&r)), (401, "unauthorized".into()));
    let now = support::now();
    for (ts, key, want) in [
        (now, "wrong-key-wrong-key-wrong", 401),
        (now - 600, KEY, 401),
        (now, KEY, 200),
    ] {
        let msg = string_to_sign("PUT", "/api/upload/s.txt", &ts.to_string(), Some(6));
        let h = vec![
            ("X-Fdfs-App-Id", "shop".to_owned()),
            ("X-Fdfs-Timestamp", ts.to_string()),
            ("X-Fdfs-Signature", sign(key.as_bytes(), &msg)),
        ];
        let r = send(a, "PUT", "/api/upload/s.txt", &h, b"signed").await;
        assert_eq!(r.status, want, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = send(
        a,
        "DELETE",
        &format!("/api/files/{master}"),
        &keyed("small", SMALL_KEY),
        b"",
    )
    .await;
    assert_eq!((r.status, err_code(&r)), (403, "forbidden".into()));

    // 7. Delete: 204, then 404; the storage no longer has it.
    let r = send(
        a,
        "DELETE",
        &format!("/api/files/{master}"),
        &keyed("shop", KEY),
        b"",
    )
    .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    let r = send(
        a,
        "DELETE",
        &format!("/api/files/{master}"),
        &keyed("shop", KEY),
        b"",
    )
    .await;
    assert_eq!((r.status, err_code(&r)), (404, "not_found".into()));
    let remote = master.strip_prefix("group1/").unwrap();
    let t = Instant::now();
    while cl.nodes.iter().any(|n| n.file(remote).exists()) {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{master} still stored"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 7b. Storage B frozen (still ACTIVE at the tracker, answering
    // nothing): spooled uploads still succeed; those the tracker sends to B
    // time out and are retried once on the storage it names next.
    cl.signal_storaged(1, "STOP");
    for i in 0..4u8 {
        let data = bytes(2000, 200 + i);
        let b = form(
            "R",
            &[("app_id", b"shop"), ("app_key", KEY.as_bytes())],
            ("r.bin", &data),
        );
        let r = send(
            a,
            "POST",
            "/api/upload",
            &[("Content-Type", "multipart/form-data; boundary=R".into())],
            &b,
        )
        .await;
        let (id, _) = ok_id(&r);
        assert_eq!(download_sha(&cl, &id), sha256(&data), "{id}");
    }
    cl.signal_storaged(1, "CONT");
    let log = std::fs::read_to_string(cl.dir.path().join("httpdA.out")).unwrap();
    assert!(
        log.contains("asking the tracker for another"),
        "no retry: {log}"
    );
    eprintln!("retry checked at {:?}", t0.elapsed());

    // 8. Every storage killed mid-upload: an error answer, never success.
    let huge = bytes(32 << 20, 13);
    let mut s = TcpStream::connect(a).await.unwrap();
    let head = format!("PUT /api/upload/k.bin HTTP/1.1\r\nHost: x\r\nX-Fdfs-App-Id: shop\r\nX-Fdfs-App-Key: {KEY}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", huge.len());
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&huge[..4 << 20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cl.stop_storaged(0);
    cl.stop_storaged(1);
    for c in huge[4 << 20..].chunks(1 << 20) {
        if s.write_all(c).await.is_err() {
            break;
        }
    }
    let r = read_response(&mut s, false).await;
    assert!(
        r.status >= 500,
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(json(&r)["error"].is_string());

    // 9. Tracker down: 503.
    cl.stop_tracker();
    let r = send(a, "PUT", "/api/upload/t.txt", &keyed("shop", KEY), b"x").await;
    assert_eq!(
        (r.status, err_code(&r)),
        (503, "tracker_unavailable".into())
    );
    let st = support::get(a, "/api/nothing").await;
    assert_eq!(st.status, 404);
    eprintln!("done in {:?}", t0.elapsed());
    cl.stop_httpd(0);
    drop(cl);
    eprintln!("cluster dropped at {:?}", t0.elapsed());
}
