//! Replays the recorded nginx + fastdfs-nginx-module exchanges of
//! `tests/fixtures/real/responses.jsonl` that a single node answers on its
//! own (local files, URL errors, local 404 decisions) against fdfs-httpd
//! over the same store trees, comparing status, entity headers and body
//! bytes (multipart part by part). Deliberate corrections are listed in
//! `DEVIATIONS` with the answer fdfs-httpd gives instead.

mod support;

use std::collections::HashMap;

use serde_json::Value;
use support::*;

/// Cases answered differently on purpose (README "Deviations").
const DEVIATIONS: &[(&str, u16, &str)] = &[
    (
        "get_metadata_file_A",
        404,
        "`-m` metadata sidecars are not served",
    ),
    (
        "very_long_url_A",
        200,
        "long query strings are accepted (docs/user-reports.md #34)",
    ),
    (
        "if_range_A",
        200,
        "a stale If-Range gets the full file (RFC 9110 §13.1.5)",
    ),
    (
        "ims_newer_A",
        304,
        "If-Modified-Since compares dates (RFC 9110 §13.1.3), not strings",
    ),
];

/// Cases that need another node (proxy/redirect); replayed by the lag tests.
fn needs_peer(id: &str) -> bool {
    ["p_", "r_", "sd_", "fake_upstream_"]
        .iter()
        .any(|p| id.starts_with(p))
        || id == "garbled_suffix_B"
}

#[tokio::test]
async fn recorded_local_cases_match_the_module() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = jsonl("real/responses.jsonl");
    let delay = real_recorded_delay();
    let mut servers = HashMap::new();
    for (node, ip) in [("A", "127.0.0.2"), ("B", "127.0.0.3")] {
        let store = real_store(node, tmp.path());
        let dir = tmp.path().join(format!("conf{node}"));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = real_conf(&store, ip, "127.0.0.2,127.0.0.3", "proxy", delay);
        servers.insert(node, Server::start(&conf, &dir, ip).await);
    }

    let mut replayed = 0;
    let mut matched = 0;
    let mut failures = Vec::new();
    for c in &cases {
        let id = c["id"].as_str().unwrap();
        if needs_peer(id) {
            continue;
        }
        let node = c["target"].as_str().unwrap();
        let addr = servers[node].addr;
        let method = c["method"].as_str().unwrap();
        let path = c["path"].as_str().unwrap();
        let hdrs: Vec<(String, String)> = c["request_headers"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let hdr_refs: Vec<(&str, &str)> =
            hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let got = request(addr, method, path, &hdr_refs).await;
        replayed += 1;

        let deviation = DEVIATIONS.iter().find(|d| d.0 == id);
        let want_status = deviation.map_or(c["status"].as_u64().unwrap() as u16, |d| d.1);
        let mut problems = Vec::new();
        if got.status != want_status {
            problems.push(format!("status {} != {}", got.status, want_status));
        }
        if deviation.is_none() && problems.is_empty() && (200..400).contains(&got.status) {
            compare_entity(c, &got, &mut problems);
        }
        if problems.is_empty() {
            matched += 1;
        } else {
            failures.push(format!("{id}: {}", problems.join("; ")));
        }
    }
    println!("replayed {replayed} recorded local cases, {matched} matched");
    assert!(
        replayed >= 55,
        "expected the local cases to be replayed, got {replayed}"
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

fn compare_entity(c: &Value, got: &Resp, problems: &mut Vec<String>) {
    let headers: Vec<(String, String)> = c["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_string(),
                h[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
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
        "Content-Disposition",
    ] {
        let Some(want) = rec(name) else { continue };
        // A 304 describes the selected representation; "Content-Length: 0"
        // on the module's 304 is not its length, so it is not repeated.
        if got.status == 304 && name == "Content-Length" {
            continue;
        }
        let Some(have) = got.header_bytes(name) else {
            problems.push(format!("missing {name}"));
            continue;
        };
        match name {
            "Content-Type" if multipart => {
                if !String::from_utf8_lossy(have).starts_with("multipart/byteranges; boundary=") {
                    problems.push(format!("{name}: {:?}", String::from_utf8_lossy(have)));
                }
            }
            "Content-Length" if multipart => {}
            // The recording shows the module's raw bytes as Latin-1. A plain
            // ASCII name is sent byte for byte; for any other name we send
            // an ASCII fallback and the exact name in an RFC 6266 filename*.
            "Content-Disposition" => {
                let want_bytes: Vec<u8> = want.chars().map(|ch| ch as u32 as u8).collect();
                let ok = if want_bytes.is_ascii() {
                    have == want_bytes.as_slice()
                } else {
                    let raw = want_bytes
                        .strip_prefix(b"attachment; filename=\"")
                        .and_then(|r| r.strip_suffix(b"\""))
                        .expect("recorded form");
                    let star: String = raw
                        .iter()
                        .map(|&b| match b {
                            b'.' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => char::from(b).into(),
                            _ => format!("%{b:02X}"),
                        })
                        .collect();
                    have.is_ascii()
                        && have.ends_with(format!("; filename*=UTF-8''{star}").as_bytes())
                };
                if !ok {
                    problems.push(format!(
                        "{name}: {:?} vs recorded {want:?}",
                        String::from_utf8_lossy(have)
                    ));
                }
            }
            _ => {
                if have != want.as_bytes() {
                    problems.push(format!(
                        "{name}: {:?} != {want:?}",
                        String::from_utf8_lossy(have)
                    ));
                }
            }
        }
    }
    if multipart {
        let want_body = b64(c["body_b64"].as_str().unwrap_or(""));
        let wb = boundary_of(&rec("content-type").unwrap());
        let hb = boundary_of(&got.header("content-type").unwrap());
        let w = multipart_parts(&want_body, &wb);
        let h = multipart_parts(&got.body, &hb);
        if w != h {
            problems.push("multipart parts differ".into());
        }
        if got
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            != Some(got.body.len())
        {
            problems.push("multipart Content-Length != body".into());
        }
    } else if got.status != 304 && sha256(&got.body) != c["body_sha256"].as_str().unwrap() {
        problems.push(format!(
            "body sha256 differs ({} bytes vs {})",
            got.body.len(),
            c["body_len"]
        ));
    }
}
