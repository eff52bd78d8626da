//! The module's status for every URL it rejects (docs/module-behaviour.md
//! §2, §8): malformed IDs that the module would decode into garbage and
//! then fail to find answer 404, IDs the module's own checks refuse answer
//! 400, and neither ever makes a peer be contacted. File names the file
//! system refuses (`ENAMETOOLONG`) are "not here" (404), never a 503.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fdfs_httpd::fileid::{IdBuilder, Source};
use support::*;

const NODE: &str = "127.0.0.41";
const PEER: &str = "127.0.0.42";

/// A node in proxy mode whose only peer is a listener that counts the
/// connections it is offered (and answers none).
struct Env {
    _tmp: tempfile::TempDir,
    server: Server,
    contacted: Arc<AtomicUsize>,
}

async fn start() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let store = real_store("A", tmp.path());
    let dir = tmp.path().join("conf");
    std::fs::create_dir_all(&dir).unwrap();
    let (_, node, peer) = bind_pair(NODE, PEER);
    let contacted = Arc::new(AtomicUsize::new(0));
    let seen = contacted.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = peer.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    let conf = real_conf(&store, NODE, &format!("{NODE},{PEER}"), "proxy", 86400);
    let server = Server::start_on(&conf, &dir, node).await;
    Env {
        _tmp: tmp,
        server,
        contacted,
    }
}

/// A fresh ID whose source is the peer: valid, not local, so a request
/// for it is proxied (the control case).
fn peer_remote() -> String {
    remote_from(PEER)
}

/// A fresh ID whose source is `ip`.
fn remote_from(ip: &str) -> String {
    IdBuilder::new()
        .source(Source::Ip(ip.parse().unwrap()))
        .create_ts(now())
        .size(10)
        .rand23(77)
        .extension("txt")
        .build_remote()
}

async fn status(env: &Env, target: &str) -> u16 {
    let r = tokio::time::timeout(Duration::from_secs(10), get(env.server.addr, target))
        .await
        .unwrap_or_else(|_| panic!("{target}: no answer within 10 s"));
    r.status
}

#[tokio::test]
async fn malformed_ids_answer_the_modules_status_without_contacting_a_peer() {
    let env = start().await;
    let remote = peer_remote();
    let (dir, name) = remote.split_at(10);
    let enc = &name[..27];
    let ext = &name[27..];
    let own = remote_from(NODE);
    let cases: Vec<(String, u16, &str)> = vec![
        // The module decodes these into garbage, finds nothing: 404.
        (
            format!("/group1/{dir}{}!!!{ext}", &enc[..24]),
            404,
            "garbled suffix (recorded garbled_suffix_B)",
        ),
        (
            format!("/group1/{dir}{}~{ext}", &enc[..26]),
            404,
            "a byte outside the upload charset",
        ),
        (
            format!("/group1/{dir}{}{ext}", "_".repeat(27)),
            404,
            "27 characters that are not a canonical encoding",
        ),
        (
            format!("/groupA/{remote}"),
            404,
            "a group name without digits (nginx's location does not route it)",
        ),
        (
            format!("/images/{remote}"),
            404,
            "another group name without digits",
        ),
        (
            format!("/group1/{}_{}{ext}", &own[..37], "x".repeat(300)),
            404,
            "a slave of a file of this node, name too long for the file system (ENAMETOOLONG)",
        ),
        // The module's own checks: 400 (docs/module-behaviour.md §2.6–2.11).
        (
            format!("/group1/{}", &remote[..30]),
            400,
            "remote filename shorter than 44",
        ),
        (
            format!("/group1/M00/ZZ/00/{name}"),
            400,
            "subdirectory not uppercase hex",
        ),
        (
            format!("/group1/{remote}/extra"),
            400,
            "a '/' after the name",
        ),
        (
            format!("/group1/M01/00/00/{name}"),
            400,
            "store path index out of range",
        ),
    ];
    let mut wrong = Vec::new();
    for (target, want, what) in &cases {
        let got = status(&env, target).await;
        if got != *want {
            wrong.push(format!("{what}: {target} → {got}, want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        env.contacted.load(Ordering::SeqCst),
        0,
        "an invalid ID made the peer be contacted"
    );

    // Control: the valid ID is proxied, so the counting peer does see it
    // (it closes at once: a 502).
    assert_eq!(status(&env, &format!("/group1/{remote}")).await, 502);
    assert!(env.contacted.load(Ordering::SeqCst) >= 1);
    env.server.stop().await;
}
