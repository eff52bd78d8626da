//! Trunk files (docs/file-id.md §6): replays the 69 recordings of
//! `tests/fixtures/trunk/responses.jsonl` against nodes C and D running
//! together on one port (as the recorded nginx nodes did), then checks
//! generated edge cases on a private copy of the trunk file: a tampered slot
//! header, a freed slot, a truncated trunk file, type `L` link slots, and the
//! trunk file staying open across requests.

mod support;

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use fdfs_httpd::fileid::{BuildKind, IdBuilder, Source, TrunkSlot};
use serde_json::Value;
use support::{
    b64, bind_same_port, boundary_of, fixtures, jsonl, multipart_parts, recorded_max_delay, sha256,
    trunk_store, Resp, Server,
};

/// `get`/`request` with the future boxed: keeps each test's own future
/// small (many awaits in one test overflow the test thread's stack in debug
/// builds).
async fn get(a: std::net::SocketAddr, target: &str) -> Resp {
    Box::pin(support::get(a, target)).await
}

/// See [`get`].
async fn request(
    a: std::net::SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    Box::pin(support::request(a, method, target, headers)).await
}

/// Crafted IDs requested from the node that is not their source: the
/// decision is "forward to the source" (recorded within
/// `storage_sync_file_max_delay`). The module proxied them to the source,
/// which answered 404, so the answer is 404 either way: today through
/// "proxy not available", with the proxy through the source's own 404 (both
/// nodes run, so the proxied request reaches it).
const FORWARDED_TO_SOURCE: &[&str] = &[
    "tp_tampered_slotsize_pubC_3k_on_D",
    "tp_tampered_slotsize_pubD_5k_on_C",
    "tp_offset_beyond_trunk_pubC_3k_on_D",
];

fn conf(store: &Path, ip: &str, peers: &str, max_delay: i64) -> String {
    let f = fixtures().join("trunk/configs");
    format!(
        "base_path={store}\nload_fdfs_parameters_from_tracker=false\n\
storage_sync_file_max_delay={max_delay}\nuse_storage_id=true\nstorage_ids_filename={ids}\n\
group_name=group1\nurl_have_group_name=true\nstore_path_count=1\nstore_path0={store}\n\
response_mode=proxy\nflv_support=true\nflv_extension=flv\ngroup_count=0\n\
local_ip_addrs={ip}\npeer_ip_addrs={peers}\n\
http.default_content_type=application/octet-stream\nhttp.mime_types_filename={mime}\n\
http.anti_steal.check_token=false\nhttp.multi_range.enabled=true\n",
        store = store.display(),
        ids = f.join("storage_ids.conf").display(),
        // Content-Type came from nginx's own table (real/README.md).
        mime = fixtures().join("real/configs/mime.types.nginx").display(),
    )
}

fn header_list(c: &Value) -> Vec<(String, String)> {
    c["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Compares entity headers and body of a 2xx answer with the recording.
fn compare_entity(c: &Value, got: &Resp, problems: &mut Vec<String>) {
    let headers = header_list(c);
    let rec = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let multipart = rec("content-type").is_some_and(|v| v.starts_with("multipart/byteranges"));
    for name in [
        "Content-Type",
        "Content-Length",
        "Last-Modified",
        "Accept-Ranges",
        "Content-Range",
    ] {
        let want = rec(name);
        let have = got.header(name);
        if multipart && (name == "Content-Type" || name == "Content-Length") {
            continue;
        }
        if want != have {
            problems.push(format!("{name}: {have:?} != {want:?}"));
        }
    }
    if multipart {
        let want = b64(c["body_b64"].as_str().unwrap_or(""));
        let wb = boundary_of(&rec("content-type").unwrap());
        let hb = boundary_of(&got.header("content-type").unwrap_or_default());
        if !got
            .header("content-type")
            .unwrap_or_default()
            .starts_with("multipart/byteranges; boundary=")
        {
            problems.push("multipart Content-Type".into());
        }
        if multipart_parts(&want, &wb) != multipart_parts(&got.body, &hb) {
            problems.push("multipart parts differ".into());
        }
        if got
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            != Some(got.body.len())
        {
            problems.push("multipart Content-Length != body".into());
        }
    } else if sha256(&got.body) != c["body_sha256"].as_str().unwrap() {
        problems.push(format!(
            "body differs ({} bytes vs {})",
            got.body.len(),
            c["body_len"]
        ));
    }
}

#[tokio::test]
async fn recorded_trunk_cases_match_the_module() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = jsonl("trunk/responses.jsonl");
    assert_eq!(cases.len(), 69);
    let recorded_at = cases
        .iter()
        .filter_map(|c| c["recorded_at"].as_i64())
        .min()
        .unwrap();
    let delay = recorded_max_delay(recorded_at);
    let ips = ["127.0.0.6", "127.0.0.7"];
    let listeners = bind_same_port(&ips);
    let mut servers = HashMap::new();
    for ((node, ip), l) in ["C", "D"].into_iter().zip(ips).zip(listeners) {
        let store = trunk_store(node, tmp.path());
        let dir = tmp.path().join(format!("conf{node}"));
        std::fs::create_dir_all(&dir).unwrap();
        let c = conf(&store, ip, "127.0.0.6,127.0.0.7", delay);
        servers.insert(node, Server::start_on(&c, &dir, l).await);
    }

    let mut replayed = 0;
    let mut matched = 0;
    let mut failures = Vec::new();
    for c in &cases {
        let id = c["id"].as_str().unwrap();
        let node = c["target"].as_str().unwrap();
        let hdrs: Vec<(String, String)> = c["request_headers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let refs: Vec<(&str, &str)> = hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let got = request(
            servers[node].addr,
            c["method"].as_str().unwrap(),
            c["path"].as_str().unwrap(),
            &refs,
        )
        .await;
        replayed += 1;
        let want = c["status"].as_u64().unwrap() as u16;
        let mut problems = Vec::new();
        if got.status != want {
            problems.push(format!("status {} != {want}", got.status));
        } else if (200..300).contains(&want) {
            compare_entity(c, &got, &mut problems);
        } else if want == 416 {
            // Correction: a 416 names the current size.
            if got.header("content-range").as_deref() != Some("bytes */3072") {
                problems.push(format!(
                    "416 Content-Range {:?}",
                    got.header("content-range")
                ));
            }
        }
        if FORWARDED_TO_SOURCE.contains(&id) {
            assert_eq!(want, 404, "{id}");
        }
        if problems.is_empty() {
            matched += 1;
        } else {
            failures.push(format!("{id}: {}", problems.join("; ")));
        }
    }
    println!("replayed {replayed} recorded trunk cases, {matched} matched");
    assert_eq!(replayed, 69);
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));

    // Both trunk files stay open: one cached descriptor per node serves
    // every trunk ID (plus the few plain files).
    for node in ["C", "D"] {
        let n = servers[node].app.files.len();
        assert!(n <= 4, "node {node}: {n} cached descriptors");
    }
}

const C_3K: &str = "group1/M00/00/00/oYYBAGsGvGKINmr9AAAMAOnzw3UAAAAAQAAAwAAAA0A807.txt";
const C_1B: &str = "group1/M00/00/00/oYYBAGsGvGKIVLhXAAAAAd0CFrkAAAAAQAAAQAAAAEA1727.js";
const C_100B: &str = "group1/M00/00/00/oYYBAGsGvGKIECHmAAAAZPwkWE4AAAAAQAAAgAAAAEA70.json";
const C_FLV: &str = "group1/M00/00/00/oYYBAGsGvGOIGEGoAACtHsS4sn4AAAAAQADggAAAK4A400.flv";
const C_EDGE_IN: &str = "group1/M00/00/00/oYYBAGsGvGOIcdmYAA__6GrmnqMAAAAAQAEMAAAEAAA439.bin";
const C_EDGE_OUT: &str = "M00/00/00/oYYBAGsGvGSAYVCGAA__6cAtlY4836.bin";
/// First byte after the slots in use; the rest of the 4 MiB is zeros.
const FREE_OFFSET: u32 = 1_328_896;

/// Node C alone, on a private copy of its store (only C-sourced IDs are
/// used, so "not local" is always the local 404: the source is this node).
async fn lone_c() -> (tempfile::TempDir, PathBuf, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let store = trunk_store("C", tmp.path());
    let c = conf(&store, "127.0.0.6", "127.0.0.6", 86400);
    let server = Server::start(&c, tmp.path(), "127.0.0.6").await;
    (tmp, store, server)
}

fn trunk_file(store: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(store.join("data/00/00/000001"))
        .unwrap()
}

#[tokio::test]
async fn damaged_slots_are_not_local() {
    let (_tmp, store, server) = lone_c().await;
    let a = server.addr;
    for id in [C_3K, C_1B, C_100B, C_EDGE_IN, C_FLV] {
        assert_eq!(get(a, &format!("/{id}")).await.status, 200, "{id}");
    }
    let f = trunk_file(&store);
    // Tampered header: one bit of the crc32 field of pubC_3k (slot at 768).
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 768 + 9).unwrap();
    f.write_all_at(&[b[0] ^ 1], 768 + 9).unwrap();
    // Freed slot: type byte 0 (pubC_100b at 512); unknown type 'X' (pubC_1b at 256).
    f.write_all_at(&[0], 512).unwrap();
    f.write_all_at(b"X", 256).unwrap();
    for id in [C_3K, C_100B, C_1B] {
        let r = get(a, &format!("/{id}")).await;
        assert_eq!(r.status, 404, "{id}");
        let r = request(a, "HEAD", &format!("/{id}"), &[]).await;
        assert_eq!(r.status, 404, "HEAD {id}");
        let r = request(a, "GET", &format!("/{id}"), &[("Range", "bytes=0-0")]).await;
        assert_eq!(r.status, 404, "Range {id}");
    }
    // Restored: served again at once.
    f.write_all_at(&b, 768 + 9).unwrap();
    assert_eq!(get(a, &format!("/{C_3K}")).await.status, 200);

    // Truncated inside pubC_edge_in's content (slot at 274432): the slots
    // before it are still whole.
    f.set_len(300_000).unwrap();
    assert_eq!(get(a, &format!("/{C_EDGE_IN}")).await.status, 404);
    let r = get(a, &format!("/{C_FLV}?start=100")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 44318 - 100 + 13);
    // Truncated inside a header.
    f.set_len(274_432 + 10).unwrap();
    assert_eq!(get(a, &format!("/{C_EDGE_IN}")).await.status, 404);
    // Missing trunk file.
    std::fs::remove_file(store.join("data/00/00/000001")).unwrap();
    assert_eq!(get(a, &format!("/{C_3K}")).await.status, 404);
}

/// Writes a type-`L` slot at `offset` holding `target` and returns its ID.
fn link_slot(f: &std::fs::File, offset: u32, target: &str, create_ts: i64) -> String {
    let slot = TrunkSlot {
        trunk_id: 1,
        offset,
        alloc_size: 256,
    };
    let b = IdBuilder::new()
        .source(Source::StorageId(100001))
        .create_ts(create_ts)
        .size(target.len() as u64)
        .crc32(0x1234_5678)
        .kind(BuildKind::Trunk(slot))
        .rand23(0x5a5a5)
        .extension("bin")
        .ext_digits(321);
    let ext = b.formatted_ext();
    let mut h = Vec::with_capacity(24 + target.len());
    h.push(b'L');
    h.extend_from_slice(&256u32.to_be_bytes());
    h.extend_from_slice(&(target.len() as u32).to_be_bytes());
    h.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    h.extend_from_slice(&(create_ts as i32).to_be_bytes());
    h.extend_from_slice(ext.as_bytes());
    assert_eq!(h.len(), 24);
    h.extend_from_slice(target.as_bytes());
    f.write_all_at(&h, u64::from(offset)).unwrap();
    b.build()
}

#[tokio::test]
async fn link_slots_follow_one_level() {
    let (_tmp, store, server) = lone_c().await;
    let a = server.addr;
    let f = trunk_file(&store);
    let ts = 1_795_603_600;
    let plain = std::fs::read(store.join("data/00/00/oYYBAGsGvGSAYVCGAA__6cAtlY4836.bin")).unwrap();

    // A link to a plain file: served with the plain file's bytes.
    let link = link_slot(&f, FREE_OFFSET, C_EDGE_OUT, ts);
    assert_eq!(link.len(), "group1/".len() + 60, "{link}");
    let r = get(a, &format!("/{link}")).await;
    assert_eq!(r.status, 200, "{link}");
    assert_eq!(r.body.len(), plain.len());
    assert!(r.body == plain);
    assert_eq!(r.header("content-length"), Some(plain.len().to_string()));
    let r = request(a, "GET", &format!("/{link}"), &[("Range", "bytes=-7")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, plain[plain.len() - 7..]);

    // A link to a trunk slot: followed too (pubC_3k).
    let to_trunk = link_slot(
        &f,
        FREE_OFFSET + 256,
        C_3K.trim_start_matches("group1/"),
        ts,
    );
    let r = get(a, &format!("/{to_trunk}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 3072);

    // A link to a link is not followed; a link to a missing file is not local.
    let to_link = link_slot(
        &f,
        FREE_OFFSET + 512,
        link.trim_start_matches("group1/"),
        ts,
    );
    assert_eq!(get(a, &format!("/{to_link}")).await.status, 404);
    let missing = link_slot(
        &f,
        FREE_OFFSET + 768,
        "M00/00/00/oYYBAGsGvGSAYVCGAA__6cAtlY4999.bin",
        ts,
    );
    assert_eq!(get(a, &format!("/{missing}")).await.status, 404);
    // A link out of the store path (`../`) does not parse as an ID.
    let escape = link_slot(
        &f,
        FREE_OFFSET + 1024,
        "M00/../../oYYBAGsGvGSAYVCGAA__6cAtlY4836.bin",
        ts,
    );
    assert_eq!(get(a, &format!("/{escape}")).await.status, 404);
}

#[tokio::test]
async fn trunk_file_stays_open() {
    let (_tmp, store, server) = lone_c().await;
    let a = server.addr;
    let ids = [C_3K, C_1B, C_100B, C_FLV, C_EDGE_IN];
    for _ in 0..3 {
        for id in ids {
            assert_eq!(get(a, &format!("/{id}")).await.status, 200);
        }
    }
    assert_eq!(
        server.app.files.len(),
        1,
        "one descriptor for the trunk file"
    );
    // Multi-range across the slot boundary stays inside the file's content.
    let r = request(
        a,
        "GET",
        &format!("/{C_3K}"),
        &[("Range", "bytes=0-1,3070-5000")],
    )
    .await;
    assert_eq!(r.status, 206);
    let data = {
        let mut v = vec![0u8; 3072];
        trunk_file(&store).read_exact_at(&mut v, 792).unwrap();
        v
    };
    let text = String::from_utf8_lossy(&r.body).to_ascii_lowercase();
    assert!(
        text.contains("content-range: bytes 3070-3071/3072"),
        "{text}"
    );
    assert!(r.body.windows(2).any(|w| w == &data[3070..]));
}
