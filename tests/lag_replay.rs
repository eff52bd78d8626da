//! Replays the recorded replication-lag cases of
//! `tests/fixtures/real/responses.jsonl` (`p_*`, `r_*`, `sd_*`,
//! `fake_upstream_*`, `garbled_suffix_B`, `bad_group_name_A`) against two
//! fdfs-httpd nodes (A = 127.0.0.2, B = 127.0.0.3, same port) over the
//! recorded store trees, plus the recording's fake source on 127.0.0.9.
//! Each case runs in its recorded context (response modes, which HTTP
//! servers were up). Deliberate differences are listed in `DEVIATIONS`.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::*;

/// Cases answered differently on purpose, with our status (none today:
/// `garbled_suffix_B` is answered 404 like the module, without the proxy
/// attempt).
const DEVIATIONS: &[(&str, u16, &str)] = &[];

fn is_lag_case(id: &str) -> bool {
    ["p_", "r_", "sd_", "fake_upstream_"]
        .iter()
        .any(|p| id.starts_with(p))
        || id == "garbled_suffix_B"
        || id == "bad_group_name_A"
}

/// (mode A, mode B, A's HTTP up, B's HTTP up)
type Context = (String, String, bool, bool);

fn context(c: &Value) -> Context {
    let x = &c["context"];
    (
        x["response_mode_A"].as_str().unwrap().to_string(),
        x["response_mode_B"].as_str().unwrap().to_string(),
        x["A_nginx"] == "up",
        x["B_nginx"] == "up",
    )
}

fn rec_header(c: &Value, name: &str) -> Option<String> {
    c["headers"].as_array().unwrap().iter().find_map(|h| {
        h[0].as_str()
            .unwrap()
            .eq_ignore_ascii_case(name)
            .then(|| h[1].as_str().unwrap().to_string())
    })
}

fn parts(body: &[u8], boundary: &str) -> Vec<Vec<u8>> {
    let delim = format!("\r\n--{boundary}");
    let mut out = Vec::new();
    let mut rest: &[u8] = body;
    while let Some(p) = rest
        .windows(delim.len())
        .position(|w| w == delim.as_bytes())
    {
        out.push(rest[..p].to_vec());
        rest = &rest[p + delim.len()..];
    }
    out.push(rest.to_vec());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_lag_cases_match_the_module() {
    let cases: Vec<Value> = jsonl("real/responses.jsonl")
        .into_iter()
        .filter(|c| is_lag_case(c["id"].as_str().unwrap()))
        .collect();
    let recorded_at = cases
        .iter()
        .filter_map(|c| c["recorded_at"].as_i64())
        .min()
        .unwrap();
    let delay = recorded_max_delay(recorded_at);
    let mut by_ctx: BTreeMap<Context, Vec<&Value>> = BTreeMap::new();
    for c in &cases {
        by_ctx.entry(context(c)).or_default().push(c);
    }

    let mut replayed = 0;
    let mut matched = 0;
    let mut failures = Vec::new();
    for ((mode_a, mode_b, a_up, b_up), list) in by_ctx {
        let tmp = tempfile::tempdir().unwrap();
        let mut ls = bind_same_port(&["127.0.0.2", "127.0.0.3", "127.0.0.9"]).into_iter();
        let (la, lb, l9) = (ls.next().unwrap(), ls.next().unwrap(), ls.next().unwrap());
        let port = la.local_addr().unwrap().port();
        let _fake = fake_http::recording_source(l9);
        let mut servers = Vec::new();
        for (node, ip, mode, up, l) in [
            ("A", "127.0.0.2", &mode_a, a_up, la),
            ("B", "127.0.0.3", &mode_b, b_up, lb),
        ] {
            if !up {
                drop(l); // nothing listens: connection refused
                continue;
            }
            let store = real_store(node, tmp.path());
            let dir = tmp.path().join(format!("conf{node}"));
            std::fs::create_dir_all(&dir).unwrap();
            let conf = real_conf(&store, ip, "127.0.0.2,127.0.0.3,127.0.0.9", mode, delay);
            servers.push((node, Server::start_on(&conf, &dir, l).await));
        }
        for c in list {
            let id = c["id"].as_str().unwrap();
            let node = c["target"].as_str().unwrap();
            let Some((_, srv)) = servers.iter().find(|(n, _)| *n == node) else {
                failures.push(format!("{id}: target {node} not running in its context"));
                continue;
            };
            let hdrs: Vec<(String, String)> = c["request_headers"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let refs: Vec<(&str, &str)> =
                hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let got = request(
                srv.addr,
                c["method"].as_str().unwrap(),
                c["path"].as_str().unwrap(),
                &refs,
            )
            .await;
            replayed += 1;
            let dev = DEVIATIONS.iter().find(|d| d.0 == id);
            let want = dev.map_or(c["status"].as_u64().unwrap() as u16, |d| d.1);
            let mut problems = Vec::new();
            if got.status != want {
                problems.push(format!("status {} != {want}", got.status));
            }
            if dev.is_none() && problems.is_empty() {
                compare(c, &got, port, &mut problems);
            }
            if problems.is_empty() {
                matched += 1;
            } else {
                failures.push(format!("{id}: {}", problems.join("; ")));
            }
        }
        for (_, s) in servers {
            s.stop().await;
        }
    }
    println!("replayed {replayed} recorded lag cases, {matched} matched");
    assert!(replayed >= 35, "only {replayed} lag cases replayed");
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

fn compare(c: &Value, got: &Resp, port: u16, problems: &mut Vec<String>) {
    let status = got.status;
    let id = c["id"].as_str().unwrap();
    if status == 302 {
        // The module's 302 is chunked with no body; ours is clean.
        let want = rec_header(c, "location")
            .unwrap()
            .replace(":8888/group1", &format!(":{port}/group1"));
        if got.header("location").as_deref() != Some(want.as_str()) {
            problems.push(format!("Location {:?} != {want:?}", got.header("location")));
        }
        if got.header("content-length").as_deref() != Some("0") {
            problems.push("302 without Content-Length: 0".into());
        }
        return;
    }
    let proxied_fake = id.starts_with("fake_upstream_");
    if !(200..300).contains(&status) && status != 304 && !proxied_fake {
        return;
    }
    let multipart =
        rec_header(c, "content-type").is_some_and(|v| v.starts_with("multipart/byteranges"));
    let mut names = vec![
        "Content-Type",
        "Content-Length",
        "Last-Modified",
        "Content-Range",
        "ETag",
        "Set-Cookie",
        "X-Custom",
    ];
    if status == 304 {
        names.retain(|n| *n != "Content-Length" && *n != "Content-Type");
    }
    for name in names {
        let Some(want) = rec_header(c, name) else {
            continue;
        };
        let have = got.header(name);
        let ok = match name {
            "Content-Type" | "Content-Length" if multipart => have.is_some(),
            _ => have.as_deref() == Some(want.as_str()),
        };
        if !ok {
            problems.push(format!("{name}: {have:?} != {want:?}"));
        }
    }
    if !got.complete {
        problems.push("incomplete body".into());
    }
    if c["method"] == "HEAD" || status == 304 {
        return;
    }
    if multipart {
        let want_body = b64(c["body_b64"].as_str().unwrap_or(""));
        let bd = |ct: &str| ct.split("boundary=").nth(1).unwrap_or("").to_string();
        let w = parts(&want_body, &bd(&rec_header(c, "content-type").unwrap()));
        let h = parts(&got.body, &bd(&got.header("content-type").unwrap()));
        if w != h {
            problems.push("multipart parts differ".into());
        }
    } else if proxied_fake && rec_header(c, "transfer-encoding").is_some() {
        // Recorded raw chunked bytes; compare the de-chunked payload.
        if got.body != b"hello world" {
            problems.push(format!("body {:?}", String::from_utf8_lossy(&got.body)));
        }
    } else if sha256(&got.body) != c["body_sha256"].as_str().unwrap() {
        problems.push(format!(
            "body differs ({} bytes vs {})",
            got.body.len(),
            c["body_len"]
        ));
    }
}
