//! Logs (issue 5 item 4): the access log in `combined` (+ request time and
//! how the request was served) and `json` formats, the error log honouring
//! `log_level` and `log_filename`, and SIGUSR1 reopening both files.

mod ops_common;
mod support;

use std::path::Path;
use std::time::Duration;

use ops_common::*;

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn wait_lines(p: &Path, n: usize) -> Vec<String> {
    eventually(Duration::from_secs(5), || {
        let l = lines(p);
        (l.len() >= n).then_some(l)
    })
    .await
    .unwrap_or_else(|| panic!("{} has fewer than {n} lines: {:?}", p.display(), lines(p)))
}

#[tokio::test]
async fn access_log_combined_with_request_time_and_served() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[2326]);
    let log = tmp.path().join("access.log");
    let c = conf(&st, &format!("access_log = {}", log.display()));
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.31").await;
    let url = &st.files[0].0;
    let r = support::request(
        srv.addr,
        "GET",
        url,
        &[("Referer", "http://example.com/p?q=\"x\"")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(support::get(srv.addr, &st.remote).await.status, 302);
    assert_eq!(support::get(srv.addr, &st.missing).await.status, 404);
    assert_eq!(support::get(srv.addr, "/group1/M00/bad").await.status, 400);
    let l = wait_lines(&log, 4).await;
    // client - - [time] "request" status bytes "referer" "ua" rt served
    let first = &l[0];
    assert!(first.starts_with("127.0.0.1 - - ["), "{first}");
    assert!(first.contains(" +0000] "), "{first}");
    assert!(
        first.contains(&format!(
            "] \"GET {url} HTTP/1.1\" 200 2326 \"http://example.com/p?q=\\x22x\\x22\" \"curl/7.88.1\" "
        )),
        "{first}"
    );
    let mut tail = first.rsplit(' ');
    assert_eq!(tail.next(), Some("local"));
    let rt: f64 = tail.next().unwrap().parse().unwrap();
    assert!((0.0..5.0).contains(&rt));
    let served: Vec<&str> = l.iter().map(|x| x.rsplit(' ').next().unwrap()).collect();
    assert_eq!(served, ["local", "redirect", "not_found", "refused"]);
    assert!(l[1].contains("\" 302 0 \"-\" "), "{}", l[1]);
    srv.stop().await;
}

#[tokio::test]
async fn access_log_json_with_forwarded_client() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[100]);
    let log = tmp.path().join("access.json");
    let c = conf(
        &st,
        &format!(
            "access_log = {}\naccess_log_format = json\ntrusted_proxies = 127.0.0.1",
            log.display()
        ),
    );
    let srv = support::Server::start(&c, tmp.path(), "127.0.0.32").await;
    let r = support::request(
        srv.addr,
        "HEAD",
        &st.files[0].0,
        &[("X-Forwarded-For", "203.0.113.9")],
    )
    .await;
    assert_eq!(r.status, 200);
    let l = wait_lines(&log, 1).await;
    let v: serde_json::Value = serde_json::from_str(&l[0]).unwrap();
    assert_eq!(v["remote_addr"], "203.0.113.9");
    assert_eq!(v["method"], "HEAD");
    assert_eq!(v["uri"], st.files[0].0);
    assert_eq!(v["status"], 200);
    assert_eq!(v["body_bytes_sent"], 0);
    assert_eq!(v["served"], "local");
    assert_eq!(v["user_agent"], "curl/7.88.1");
    assert!(v["request_time"].as_f64().unwrap() >= 0.0);
    assert!(v["time"].as_str().unwrap().ends_with("+00:00"));
    srv.stop().await;
}

#[tokio::test]
async fn error_log_honours_level_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    for (level, expect_info) in [("warn", false), ("info", true)] {
        let elog = tmp.path().join(format!("error-{level}.log"));
        let c = conf(&st, &format!("log_filename = {}", elog.display()))
            .replace("log_level = info", &format!("log_level = {level}"));
        let mut b = Binary::start(tmp.path(), &c, "127.0.0.33", &[]);
        assert_eq!(support::get(b.addr, "/group1/M00/bad").await.status, 400);
        let text = eventually(Duration::from_secs(5), || {
            let t = std::fs::read_to_string(&elog).unwrap_or_default();
            t.contains("/group1/M00/bad").then_some(t)
        })
        .await
        .unwrap_or_else(|| panic!("warning not in {}", elog.display()));
        assert!(text.contains("WARN"), "{text}");
        assert_eq!(
            text.contains("listening (http) on"),
            expect_info,
            "{level}: {text}"
        );
        b.signal("TERM");
        assert!(b.wait(Duration::from_secs(10)).unwrap().success());
    }
}

#[tokio::test]
async fn sigusr1_reopens_log_files() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let alog = tmp.path().join("access.log");
    let elog = tmp.path().join("error.log");
    let c = conf(
        &st,
        &format!(
            "access_log = {}\nlog_filename = {}",
            alog.display(),
            elog.display()
        ),
    );
    let mut b = Binary::start(tmp.path(), &c, "127.0.0.34", &[]);
    assert_eq!(support::get(b.addr, &st.files[0].0).await.status, 200);
    wait_lines(&alog, 1).await;
    // logrotate: move the files away, then USR1.
    std::fs::rename(&alog, tmp.path().join("access.log.1")).unwrap();
    std::fs::rename(&elog, tmp.path().join("error.log.1")).unwrap();
    b.signal("USR1");
    let reopened = eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&elog)
            .ok()
            .filter(|t| t.contains("reopened"))
    })
    .await;
    assert!(reopened.is_some(), "error log not reopened");
    assert_eq!(support::get(b.addr, &st.missing).await.status, 404);
    let fresh = wait_lines(&alog, 1).await;
    assert!(fresh[0].ends_with(" not_found"), "{fresh:?}");
    assert_eq!(lines(&tmp.path().join("access.log.1")).len(), 1);
    b.signal("TERM");
    assert!(b.wait(Duration::from_secs(10)).unwrap().success());
}
