//! The admin listener (issue 5 item 5): `/live`, `/ready`, `/metrics`
//! (Prometheus text) and `/status` (JSON) on `admin_listen`, separate from
//! the public listener.

mod ops_common;
mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ops_common::*;

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn admin_server(
    tmp: &std::path::Path,
    st: &Store,
    ip: &str,
) -> (support::Server, SocketAddr) {
    let admin: SocketAddr = format!("{ip}:{}", free_port(ip)).parse().unwrap();
    let c = conf(st, &format!("admin_listen = {admin}"));
    let srv = support::Server::start(&c, tmp, ip).await;
    // The admin listener is bound before run() serves anything.
    let t0 = std::time::Instant::now();
    while tokio::net::TcpStream::connect(admin).await.is_err() {
        assert!(t0.elapsed() < Duration::from_secs(5), "admin not listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (srv, admin)
}

#[tokio::test]
async fn live_metrics_and_status() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[1000]);
    let (srv, admin) = admin_server(tmp.path(), &st, "127.0.0.41").await;

    let r = support::get(admin, "/live").await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok\n"[..]));

    for _ in 0..3 {
        assert_eq!(support::get(srv.addr, &st.files[0].0).await.status, 200);
    }
    assert_eq!(support::get(srv.addr, &st.missing).await.status, 404);
    let peer: IpAddr = "127.0.0.2".parse().unwrap();
    srv.app
        .metrics
        .record_upstream(peer, Duration::from_millis(30), true);
    srv.app
        .metrics
        .record_upstream(peer, Duration::from_millis(5), false);

    let m = eventually(Duration::from_secs(5), || {
        let t = srv.app.metrics.render((0, 0, 0));
        (metric(
            &t,
            "fdfs_http_requests_total{served=\"not_found\",status=\"404\"}",
        ) == Some(1.0))
        .then_some(())
    })
    .await;
    assert!(m.is_some());
    let r = support::get(admin, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let t = String::from_utf8(r.body).unwrap();
    assert_eq!(
        metric(
            &t,
            "fdfs_http_requests_total{served=\"local\",status=\"200\"}"
        ),
        Some(3.0),
        "{t}"
    );
    assert_eq!(
        metric(
            &t,
            "fdfs_http_requests_total{served=\"not_found\",status=\"404\"}"
        ),
        Some(1.0)
    );
    assert!(metric(&t, "fdfs_http_response_bytes_total").unwrap() >= 3000.0);
    assert_eq!(
        metric(&t, "fdfs_http_request_duration_seconds_count"),
        Some(4.0)
    );
    assert_eq!(
        metric(
            &t,
            "fdfs_upstream_requests_total{peer=\"127.0.0.2\",result=\"ok\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &t,
            "fdfs_upstream_requests_total{peer=\"127.0.0.2\",result=\"fail\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &t,
            "fdfs_upstream_duration_seconds_count{peer=\"127.0.0.2\"}"
        ),
        Some(2.0)
    );
    // First request opened the file, the next two were cache hits.
    assert!(
        metric(&t, "fdfs_open_file_cache_hits_total").unwrap() >= 2.0,
        "{t}"
    );
    assert!(metric(&t, "fdfs_open_file_cache_misses_total").unwrap() >= 1.0);
    assert!(metric(&t, "fdfs_connections_total").unwrap() >= 4.0);
    assert!(metric(&t, "fdfs_open_connections").is_some());

    let r = support::get(admin, "/status").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["config"]["groups"][0]["name"], "group1");
    assert_eq!(
        v["config"]["groups"][0]["store_paths"][0],
        st.root.display().to_string()
    );
    assert_eq!(v["config"]["response_mode"], "redirect");
    assert_eq!(v["config"]["admin_listen"], admin.to_string());
    assert_eq!(v["config"]["limits"]["keepalive_timeout"], 65.0);
    assert_eq!(
        v["config"]["limits"]["rate_limit_per_ip"],
        serde_json::Value::Null
    );
    assert_eq!(v["peers"][0]["addr"], "127.0.0.2");
    assert_eq!(v["peers"][0]["state"], "up");
    assert_eq!(v["peers"][0]["upstream_ok"], 1);
    assert_eq!(v["peers"][0]["upstream_failed"], 1);
    // No tracker: nothing loaded, the configured values in force.
    assert_eq!(v["tracker"]["params"], serde_json::Value::Null);
    assert_eq!(
        v["tracker"]["effective"]["storage_sync_file_max_delay"],
        v["config"]["storage_sync_file_max_delay"]
    );
    assert_eq!(v["tracker"]["effective"]["storage_ids"], 0);
    assert_eq!(v["tracker"]["groups"], serde_json::json!({}));

    // Admin paths are not on the public listener, and vice versa.
    assert_ne!(support::get(srv.addr, "/metrics").await.status, 200);
    assert_eq!(support::get(admin, &st.files[0].0).await.status, 404);
    assert_eq!(
        support::request(admin, "POST", "/live", &[]).await.status,
        405
    );
    let h = support::request(admin, "HEAD", "/status", &[]).await;
    assert_eq!(h.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn ready_reports_unreadable_store_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let (srv, admin) = admin_server(tmp.path(), &st, "127.0.0.42").await;
    let r = support::get(admin, "/ready").await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ready\n"[..]));
    let data = st.root.join("data");
    let moved = st.root.join("data.away");
    std::fs::rename(&data, &moved).unwrap();
    let r = support::get(admin, "/ready").await;
    assert_eq!(r.status, 503);
    let why = String::from_utf8(r.body).unwrap();
    assert!(why.contains("group1 store_path0"), "{why}");
    assert!(why.contains(&data.display().to_string()), "{why}");
    std::fs::rename(&moved, &data).unwrap();
    assert_eq!(support::get(admin, "/ready").await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn admin_listen_already_in_use_fails_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let st = store(tmp.path(), &[10]);
    let taken = std::net::TcpListener::bind("127.0.0.43:0").unwrap();
    let admin = taken.local_addr().unwrap();
    let path = tmp.path().join("m.conf");
    std::fs::write(&path, conf(&st, &format!("admin_listen = {admin}"))).unwrap();
    let cfg = fdfs_httpd::config::Config::load(&path).unwrap().config;
    let l = fdfs_httpd::transport::bind("127.0.0.43:0".parse().unwrap()).unwrap();
    let app = fdfs_httpd::state::App::new(cfg);
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        fdfs_httpd::transport::run(vec![l], app, std::future::pending()),
    )
    .await
    .expect("run returns at once");
    assert!(r.is_err());
}
