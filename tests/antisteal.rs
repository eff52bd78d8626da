//! Anti-steal tokens through real sockets (docs/module-behaviour.md §4,
//! docs/config-keys.md §2): the recorded matrix (valid, expired, wrong
//! secret, upper-case hex, group-prefixed token, `ts=0`, future `ts`,
//! missing parameters, with and without a fail file), the bypass header,
//! the stricter opt-in keys, per-group settings, the `token` subcommand, and
//! the token surviving a redirect.

mod support;

use std::path::{Path, PathBuf};

use fdfs_httpd::antisteal::token::sign;
use support::{copy_tree, fixtures, jsonl, now, real_store, recorded_max_delay, Resp, Server};

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

const SECRET: &str = "FastDFS1234567890";
/// `A_jpg` of the real fixture (2809 bytes, on both nodes).
const JPG: &str = "group1/M00/00/00/fwAAAmsGte2AfD5bAAAK-QVmom4187.jpg";
const JPG_REMOTE: &str = "M00/00/00/fwAAAmsGte2AfD5bAAAK-QVmom4187.jpg";
/// `onlyA_txt`: stored on A (127.0.0.2) only.
const ONLY_A: &str = "group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt";
const FAIL_BYTES: &[u8] = b"\xff\xd8\xff\xe0 anti-steal placeholder \xff\xd9";

struct Node {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    fail: PathBuf,
    server: Server,
}

fn base_conf(store: &Path, ip: &str, extra: &str) -> String {
    let mime = fixtures().join("real/configs/mime.types");
    format!(
        "base_path={store}\nload_fdfs_parameters_from_tracker=false\nstorage_sync_file_max_delay=86400\n\
group_name=group1\nurl_have_group_name=true\nstore_path_count=1\nstore_path0={store}\n\
response_mode=proxy\nflv_support=true\nflv_extension=flv\ngroup_count=0\nlocal_ip_addrs={ip}\n\
http.default_content_type=application/octet-stream\nhttp.mime_types_filename={mime}\n\
http.multi_range.enabled=true\n{extra}",
        store = store.display(),
        mime = mime.display(),
    )
}

/// Node A of the real fixture with `check_token=true`, ttl 900, plus `extra`
/// keys (`FAIL` in `extra` is replaced by the fail file's path).
async fn node(extra: &str) -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let store = real_store("A", tmp.path());
    let fail = tmp.path().join("anti-steal.jpg");
    std::fs::write(&fail, FAIL_BYTES).unwrap();
    let extra = extra.replace("FAIL", &fail.display().to_string());
    let conf = base_conf(
        &store,
        "127.0.0.2",
        &format!(
            "http.anti_steal.check_token=true\nhttp.anti_steal.token_ttl=900\n\
http.anti_steal.secret_key={SECRET}\n{extra}"
        ),
    );
    let server = Server::start(&conf, tmp.path(), "127.0.0.2").await;
    Node {
        _tmp: tmp,
        store,
        fail,
        server,
    }
}

fn jpg_bytes(store: &Path) -> Vec<u8> {
    std::fs::read(store.join("data/00/00/fwAAAmsGte2AfD5bAAAK-QVmom4187.jpg")).unwrap()
}

fn url(token: &str, ts: i64) -> String {
    format!("/{JPG}?token={token}&ts={ts}")
}

/// Asserts the 200 answer with the fail file.
fn assert_fail_file(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(r.body, FAIL_BYTES, "{what}: fail file body");
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    assert_eq!(
        r.header("content-length"),
        Some(FAIL_BYTES.len().to_string())
    );
    assert_eq!(
        r.header("last-modified").as_deref(),
        Some("Thu, 01 Jan 1970 00:00:00 GMT")
    );
    assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"));
    assert!(
        r.header("etag").is_none(),
        "{what}: the fail file has no ETag"
    );
}

fn assert_file(r: &Resp, store: &Path, what: &str) {
    assert_eq!(r.status, 200, "{what}");
    assert_eq!(r.body, jpg_bytes(store), "{what}: real file body");
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
}

#[tokio::test]
async fn recorded_matrix_with_a_fail_file() {
    let n = node("http.anti_steal.token_check_fail=FAIL\n").await;
    let a = n.server.addr;
    let now = now();

    // Token over the ID without the group → the file.
    let r = get(a, &url(&sign(JPG_REMOTE, SECRET, now), now)).await;
    assert_file(&r, &n.store, "valid token");

    // Over `group1/M00/...` (what fdfs_test prints) → fail file.
    let r = get(a, &url(&sign(JPG, SECRET, now), now)).await;
    assert_fail_file(&r, "group-prefixed token");

    // ts = 0 with a matching token never expires.
    let r = get(a, &url(&sign(JPG_REMOTE, SECRET, 0), 0)).await;
    assert_file(&r, &n.store, "ts=0");

    // 1000 s old with ttl 900 → fail file; exactly ttl old still passes.
    let old = now - 1000;
    let r = get(a, &url(&sign(JPG_REMOTE, SECRET, old), old)).await;
    assert_fail_file(&r, "expired");
    let edge = now - 880;
    let r = get(a, &url(&sign(JPG_REMOTE, SECRET, edge), edge)).await;
    assert_file(&r, &n.store, "inside the ttl");

    // Far future → the file (module-compatible default).
    let fut = now + 10_000_000;
    let r = get(a, &url(&sign(JPG_REMOTE, SECRET, fut), fut)).await;
    assert_file(&r, &n.store, "future ts");

    // Upper-case hex → fail file.
    let up = sign(JPG_REMOTE, SECRET, now).to_uppercase();
    let r = get(a, &url(&up, now)).await;
    assert_fail_file(&r, "upper-case token");

    // Wrong secret → fail file.
    let r = get(a, &url(&sign(JPG_REMOTE, "not-the-secret", now), now)).await;
    assert_fail_file(&r, "wrong secret");

    // Token for another file → fail file.
    let other = "M00/00/00/fwAAAmsGte2AEAVPAAACQ2WpTGg729.png";
    let r = get(a, &url(&sign(other, SECRET, now), now)).await;
    assert_fail_file(&r, "token of another file");

    // Present but empty parameters are a failed check, not "missing".
    let r = get(a, &format!("/{JPG}?token=&ts=")).await;
    assert_fail_file(&r, "token=&ts=");

    // Malformed token (not 32 chars) → fail file.
    let r = get(a, &url("abc", now)).await;
    assert_fail_file(&r, "short token");

    // `ts` is read like C atoi: trailing junk is ignored, the parsed value
    // is what is signed.
    let r = get(
        a,
        &format!("/{JPG}?token={}&ts={now}xyz", sign(JPG_REMOTE, SECRET, now)),
    )
    .await;
    assert_file(&r, &n.store, "ts with trailing junk");

    // Missing parameters → 400 even with a fail file.
    for q in [
        String::new(),
        format!("?token={}", sign(JPG_REMOTE, SECRET, now)),
        format!("?ts={now}"),
        "?tokenx=1&tsx=2".to_string(),
    ] {
        let r = get(a, &format!("/{JPG}{q}")).await;
        assert_eq!(r.status, 400, "missing parameters: {q:?}");
    }

    // HEAD of a failed check: same headers, no body.
    let r = request(a, "HEAD", &url(&up, now), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("content-length"),
        Some(FAIL_BYTES.len().to_string())
    );
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    let _ = &n.fail;
}

#[tokio::test]
async fn recorded_matrix_without_a_fail_file() {
    let n = node("").await;
    let a = n.server.addr;
    let now = now();
    let good = sign(JPG_REMOTE, SECRET, now);
    assert_file(&get(a, &url(&good, now)).await, &n.store, "valid");
    let old = now - 1000;
    let cases = [
        ("expired", url(&sign(JPG_REMOTE, SECRET, old), old)),
        ("wrong secret", url(&sign(JPG_REMOTE, "x", now), now)),
        ("upper-case", url(&good.to_uppercase(), now)),
        ("group-prefixed", url(&sign(JPG, SECRET, now), now)),
        ("empty", format!("/{JPG}?token=&ts=")),
        ("missing", format!("/{JPG}")),
        ("missing ts", format!("/{JPG}?token={good}")),
    ];
    for (what, u) in &cases {
        let r = get(a, u).await;
        assert_eq!(r.status, 400, "{what}");
        assert_ne!(r.body, jpg_bytes(&n.store), "{what}");
    }
    assert_file(
        &get(a, &url(&sign(JPG_REMOTE, SECRET, 0), 0)).await,
        &n.store,
        "ts=0",
    );
    let fut = now + 86_400 * 365;
    assert_file(
        &get(a, &url(&sign(JPG_REMOTE, SECRET, fut), fut)).await,
        &n.store,
        "future",
    );
}

#[tokio::test]
async fn the_fail_file_is_not_served_for_a_valid_token_and_range_still_works() {
    let n = node("http.anti_steal.token_check_fail=FAIL\n").await;
    let now = now();
    let r = request(
        n.server.addr,
        "GET",
        &url(&sign(JPG_REMOTE, SECRET, now), now),
        &[("Range", "bytes=0-9")],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, jpg_bytes(&n.store)[..10]);
}

#[tokio::test]
async fn stricter_opt_in_keys() {
    let n = node(
        "http.anti_steal.token_check_fail=FAIL\nhttp.anti_steal.reject_ts_zero=true\n\
http.anti_steal.max_future_skew=60\n",
    )
    .await;
    let a = n.server.addr;
    let now = now();
    assert_fail_file(
        &get(a, &url(&sign(JPG_REMOTE, SECRET, 0), 0)).await,
        "ts=0 refused",
    );
    let far = now + 3600;
    assert_fail_file(
        &get(a, &url(&sign(JPG_REMOTE, SECRET, far), far)).await,
        "ts an hour ahead refused",
    );
    let near = now + 30;
    assert_file(
        &get(a, &url(&sign(JPG_REMOTE, SECRET, near), near)).await,
        &n.store,
        "ts within the skew",
    );
    assert_file(
        &get(a, &url(&sign(JPG_REMOTE, SECRET, now), now)).await,
        &n.store,
        "now",
    );
}

#[tokio::test]
async fn bypass_header() {
    let n = node(
        "http.anti_steal.token_check_fail=FAIL\nanti_steal_bypass_header_name=X-Internal-Fetch\n\
anti_steal_bypass_header_value=Secret-Value\n",
    )
    .await;
    let a = n.server.addr;
    // Name case-insensitive, value exact: no token needed.
    for name in ["X-Internal-Fetch", "x-internal-fetch", "X-INTERNAL-FETCH"] {
        let r = request(a, "GET", &format!("/{JPG}"), &[(name, "Secret-Value")]).await;
        assert_file(&r, &n.store, name);
    }
    // A bad token is not checked either.
    let r = request(
        a,
        "GET",
        &url("0123456789abcdef0123456789abcdef", 1),
        &[("X-Internal-Fetch", "Secret-Value")],
    )
    .await;
    assert_file(&r, &n.store, "bypass with a bad token");
    // Wrong value (case differs, extra text, empty) → the check runs.
    for v in ["secret-value", "Secret-Value2", ""] {
        let r = request(a, "GET", &format!("/{JPG}"), &[("X-Internal-Fetch", v)]).await;
        assert_eq!(r.status, 400, "value {v:?}");
        let now = now();
        let r = request(
            a,
            "GET",
            &url(&sign(JPG, SECRET, now), now),
            &[("X-Internal-Fetch", v)],
        )
        .await;
        assert_fail_file(&r, "wrong bypass value, bad token");
    }
}

#[tokio::test]
async fn the_check_runs_before_conditional_requests() {
    let n = node("http.anti_steal.token_check_fail=FAIL\n").await;
    let a = n.server.addr;
    let now = now();
    let good = url(&sign(JPG_REMOTE, SECRET, now), now);
    let first = get(a, &good).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("etag");
    let lm = first.header("last-modified").expect("last-modified");

    // Valid token + matching validators → 304.
    let r = request(a, "GET", &good, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304);
    let r = request(a, "GET", &good, &[("If-Modified-Since", &lm)]).await;
    assert_eq!(r.status, 304);

    // Bad or missing token + matching validators → the token answer, never 304.
    let bad = url(&sign(JPG, SECRET, now), now);
    let r = request(a, "GET", &bad, &[("If-None-Match", &etag)]).await;
    assert_fail_file(&r, "bad token with If-None-Match");
    let r = request(a, "GET", &bad, &[("If-Modified-Since", &lm)]).await;
    assert_fail_file(&r, "bad token with If-Modified-Since");
    let r = request(a, "GET", &format!("/{JPG}"), &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn per_group_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let s1 = real_store("A", tmp.path());
    let s2 = tmp.path().join("g2");
    copy_tree(&s1, &s2).unwrap();
    let s3 = tmp.path().join("g3");
    copy_tree(&s1, &s3).unwrap();
    let mime = fixtures().join("real/configs/mime.types");
    let conf = format!(
        "load_fdfs_parameters_from_tracker=false\nurl_have_group_name=true\nresponse_mode=proxy\n\
local_ip_addrs=127.0.0.2\nhttp.mime_types_filename={mime}\ngroup_count=3\n\
http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=GLOBAL\nhttp.anti_steal.token_ttl=900\n\
[group1]\ngroup_name=group1\nstore_path0={s1}\n\
[group2]\ngroup_name=group2\nstore_path0={s2}\nhttp.anti_steal.secret_key=G2\nhttp.anti_steal.token_ttl=10\n\
[group3]\ngroup_name=group3\nstore_path0={s3}\nhttp.anti_steal.check_token=false\n",
        mime = mime.display(),
        s1 = s1.display(),
        s2 = s2.display(),
        s3 = s3.display(),
    );
    let server = Server::start(&conf, tmp.path(), "127.0.0.2").await;
    let a = server.addr;
    let now = now();
    let u = |g: &str, secret: &str, ts: i64| {
        format!(
            "/{g}/{JPG_REMOTE}?token={}&ts={ts}",
            sign(JPG_REMOTE, secret, ts)
        )
    };
    assert_eq!(get(a, &u("group1", "GLOBAL", now)).await.status, 200);
    assert_eq!(get(a, &u("group1", "G2", now)).await.status, 400);
    assert_eq!(get(a, &u("group2", "G2", now)).await.status, 200);
    assert_eq!(get(a, &u("group2", "GLOBAL", now)).await.status, 400);
    // group2's own ttl (10 s) applies; group1 keeps 900 s.
    assert_eq!(get(a, &u("group2", "G2", now - 100)).await.status, 400);
    assert_eq!(get(a, &u("group1", "GLOBAL", now - 100)).await.status, 200);
    // group3 turned the check off.
    let r = get(a, &format!("/group3/{JPG_REMOTE}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, jpg_bytes(&s1));
    assert_eq!(get(a, &format!("/group1/{JPG_REMOTE}")).await.status, 400);
}

#[tokio::test]
async fn token_subcommand_prints_a_path_the_server_accepts() {
    let n = node("http.anti_steal.token_check_fail=FAIL\n").await;
    let conf = n._tmp.path().join("mod_fastdfs.conf");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fdfs-httpd"))
            .arg("--config")
            .arg(&conf)
            .arg("token")
            .args(args)
            .output()
            .expect("run fdfs-httpd token");
        assert!(
            out.status.success(),
            "token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let path = run(&[JPG]);
    assert!(
        path.starts_with(&format!("/{JPG}?token=")),
        "printed {path:?}"
    );
    assert_file(&get(n.server.addr, &path).await, &n.store, "printed path");

    // --ttl shorter than token_ttl moves ts back; still valid now.
    let path = run(&[JPG, "--ttl", "60"]);
    let ts: i64 = path.rsplit("ts=").next().unwrap().parse().unwrap();
    assert!((now() + 60 - 900 - ts).abs() <= 2, "ts {ts}");
    assert_file(&get(n.server.addr, &path).await, &n.store, "--ttl 60");

    // A leading slash is accepted too.
    let path = run(&[&format!("/{JPG}")]);
    assert_file(&get(n.server.addr, &path).await, &n.store, "leading slash");
}

#[tokio::test]
async fn redirect_keeps_token_and_ts() {
    let tmp = tempfile::tempdir().unwrap();
    let store = real_store("B", tmp.path());
    let cases = jsonl("real/responses.jsonl");
    let recorded_at = cases
        .iter()
        .filter_map(|c| c["recorded_at"].as_i64())
        .min()
        .unwrap();
    let conf = base_conf(
        &store,
        "127.0.0.3",
        &format!(
            "peer_ip_addrs=127.0.0.2,127.0.0.3\nhttp.anti_steal.check_token=true\n\
http.anti_steal.secret_key={SECRET}\nhttp.anti_steal.token_ttl=900\n"
        ),
    )
    .replace("response_mode=proxy", "response_mode=redirect")
    .replace(
        "storage_sync_file_max_delay=86400",
        &format!(
            "storage_sync_file_max_delay={}",
            recorded_max_delay(recorded_at)
        ),
    );
    let server = Server::start(&conf, tmp.path(), "127.0.0.3").await;
    let now = now();
    let remote = ONLY_A.trim_start_matches("group1/");
    let token = sign(remote, SECRET, now);
    let target = format!("/{ONLY_A}?token={token}&ts={now}");
    let r = get(server.addr, &target).await;
    assert_eq!(r.status, 302, "{:?}", r.header("location"));
    let loc = r.header("location").expect("Location");
    let want = format!(
        "http://127.0.0.2:{}/{ONLY_A}?token={token}&ts={now}",
        server.addr.port()
    );
    assert!(loc.starts_with(&want), "Location {loc:?} keeps the query");
    assert!(loc.contains("redirect=1"), "Location {loc:?}");
    // A bad token is refused here, before any redirect.
    let bad = format!("/{ONLY_A}?token={}&ts={now}", sign(ONLY_A, SECRET, now));
    assert_eq!(get(server.addr, &bad).await.status, 400);
}

#[test]
fn worked_example_of_the_docs() {
    let remote = "M00/00/00/wKgBZWVxYZqAJ8mXAAAK-QVmom4187.jpg";
    assert_eq!(
        sign(remote, SECRET, 1795602000),
        "45d3d3dfb95c022428b61bb975d22d0a"
    );
    assert_eq!(
        sign(&format!("group1/{remote}"), SECRET, 1795602000),
        "d45d3aad12f48afda56c4be6b56d5e2b"
    );
}

#[tokio::test]
async fn urls_without_group_sign_the_path_after_the_slash() {
    let n = node("").await;
    let conf = std::fs::read_to_string(n._tmp.path().join("mod_fastdfs.conf"))
        .unwrap()
        .replace("url_have_group_name=true", "url_have_group_name=false");
    let dir = n._tmp.path().join("nogroup");
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start(&conf, &dir, "127.0.0.2").await;
    let now = now();
    let ok = format!(
        "/{JPG_REMOTE}?token={}&ts={now}",
        sign(JPG_REMOTE, SECRET, now)
    );
    assert_file(&get(server.addr, &ok).await, &n.store, "no group in url");
    let bad = format!("/{JPG_REMOTE}?token={}&ts={now}", sign(JPG, SECRET, now));
    assert_eq!(get(server.addr, &bad).await.status, 400);
}
