//! `fdfs-httpd doctor` (docs/operations.md "doctor"): what an operator runs
//! on a node after an install or an outage. One line per check, `ok` /
//! `warn` / `FAIL` and what to do; exit 0 when all are ok, 1 with warnings,
//! 2 with failures.
//!
//! Checks, in order: the configuration (as `--check-config`); each store
//! path; each tracker (reachable, knows the group, lists this node and in
//! which state); each peer of the group (its state at the tracker, its
//! storage port and its HTTP port from here, with the OS error text); the
//! clock against the tracker's. Every connect and every tracker exchange
//! is bounded by `connect_timeout`; peers are probed concurrently.
//! The verdicts are in [`checks`].

pub mod checks;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use checks::{Check, Level, PortKind};

use crate::config::Config;
use crate::proto::{GroupStat, StorageStat, TrackerClient};
use crate::resolve::cluster::{tracked, tracker_addrs, ClusterView};
use crate::resolve::reach;

/// Runs the doctor for the configuration at `path` and prints its report.
pub fn main(path: &Path) -> ExitCode {
    let mut out: Vec<Check> = Vec::new();
    let what = format!("config {}", path.display());
    let cfg = match Config::load(path) {
        Ok(l) => {
            for w in &l.warnings {
                out.push(Check::new(Level::Warn, &what, w.to_string()));
            }
            match crate::tls::check(&l.config) {
                Ok(()) => out.push(Check::new(Level::Ok, &what, "valid")),
                Err(e) => out.push(
                    Check::new(Level::Fail, &what, e.to_string())
                        .hint("fix the TLS files (fdfs-httpd --check-config)"),
                ),
            }
            Some(l.config)
        }
        Err(problems) => {
            for p in &problems {
                out.push(
                    Check::new(Level::Fail, &what, p.to_string())
                        .hint("fix it (fdfs-httpd --check-config lists every problem)"),
                );
            }
            None
        }
    };
    for c in &out {
        println!("{c}");
    }
    let Some(cfg) = cfg else {
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let more = rt.block_on(run(&cfg));
    for c in &more {
        println!("{c}");
    }
    out.extend(more);
    let count = |l: Level| out.iter().filter(|c| c.level == l).count();
    println!(
        "{} ok, {} warn, {} FAIL",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    );
    ExitCode::from(checks::exit_code(&out))
}

/// Every check after the configuration's.
pub async fn run(cfg: &Config) -> Vec<Check> {
    let ct = cfg.connect_timeout;
    let local = crate::net::local_addrs(
        cfg.local_ip_addrs.as_deref(),
        &cfg.if_alias_prefix,
        &cfg.listen,
    );
    let mut out = Vec::new();

    // Trackers first: the store-path check compares with their figures.
    let mut tracker_lines = Vec::new();
    let mut lists: HashMap<String, Vec<StorageStat>> = HashMap::new();
    let mut group_stats: Vec<GroupStat> = Vec::new();
    // Names are resolved within connect_timeout too.
    let addrs = tokio::time::timeout(ct, tracker_addrs(cfg))
        .await
        .unwrap_or_default();
    if cfg.tracker_servers.is_empty() {
        tracker_lines.push(
            Check::new(Level::Warn, "tracker_server", "none configured")
                .hint("set tracker_server so states, peers and the clock can be checked"),
        );
    } else if addrs.is_empty() {
        tracker_lines.push(
            Check::new(
                Level::Fail,
                "tracker_server",
                "no address resolves (within connect_timeout)",
            )
            .hint("check the names in tracker_server and DNS"),
        );
    }
    for addr in &addrs {
        // Reads bounded by connect_timeout too: a hung tracker costs that.
        let client = TrackerClient::new(vec![*addr], ct, ct);
        let what = format!("tracker {addr}");
        for g in &cfg.groups {
            let res = client.list_storage(&g.name).await;
            tracker_lines.extend(checks::tracker(&what, &g.name, &res, &local, addr.port()));
            if let Ok(list) = res {
                lists.entry(g.name.clone()).or_insert(list);
            }
        }
        if group_stats.is_empty() {
            group_stats = client.list_groups().await.unwrap_or_default();
        }
    }

    for g in &cfg.groups {
        let expected = group_stats
            .iter()
            .find(|s| s.name == g.name)
            .map(|s| s.subdir_count_per_path);
        for (i, sp) in g.store_paths.iter().enumerate() {
            out.push(checks::store_path(
                format!("{} store_path{i}", g.name),
                sp,
                count_subdirs(&sp.join("data")),
                expected,
            ));
        }
    }
    out.extend(tracker_lines);

    // Peers: the tracker's members of the hosted groups, peer_ip_addrs and
    // the ID table, never this node.
    let view = ClusterView {
        groups: lists.iter().map(|(g, l)| (g.clone(), tracked(l))).collect(),
        ..ClusterView::default()
    };
    let targets = reach::targets(cfg, &view, &local);
    let probes = futures_util::future::join_all(targets.iter().map(|t| async move {
        let (s, h) = tokio::join!(
            connect(SocketAddr::new(t.ip, t.storage_port), ct),
            connect(SocketAddr::new(t.ip, t.http_port), ct)
        );
        (*t, s, h)
    }))
    .await;
    for (t, s, h) in probes {
        let listed = lists
            .values()
            .flatten()
            .find(|st| st.ip.parse::<IpAddr>().is_ok_and(|ip| ip == t.ip));
        match listed {
            Some(st) => out.push(checks::peer_state(
                format!("peer {} state at the tracker", t.ip),
                st,
            )),
            None if !lists.is_empty() => out.push(
                Check::new(
                    Level::Warn,
                    format!("peer {} state at the tracker", t.ip),
                    "not listed",
                )
                .hint("peer_ip_addrs names an address the tracker does not know in this group"),
            ),
            None => {}
        }
        out.push(checks::port_verdict(
            format!("peer {} storage port {}", t.ip, t.storage_port),
            t.storage_port,
            PortKind::Storage,
            &s,
        ));
        out.push(checks::port_verdict(
            format!("peer {} HTTP port {}", t.ip, t.http_port),
            t.http_port,
            PortKind::Http,
            &h,
        ));
    }
    if targets.is_empty() {
        out.push(
            Check::new(Level::Warn, "peers", "none known").hint(
                "a single-storage group has no peers; else set tracker_server or peer_ip_addrs",
            ),
        );
    }

    if let Some(list) = lists.values().next() {
        out.push(checks::clock(crate::clock::unix_now(), list));
    }
    out
}

/// One TCP connect within `timeout`: the round trip in ms, or the error.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<f64, io::Error> {
    let t0 = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(t0.elapsed().as_secs_f64() * 1000.0),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no answer within connect_timeout ({} s)",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// The number of `00`..`FF` sub-directories of a store's `data/`.
fn count_subdirs(data: &Path) -> Result<usize, io::Error> {
    let mut n = 0;
    for e in std::fs::read_dir(data)? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.len() == 2
            && name.bytes().all(|b| b.is_ascii_hexdigit())
            && e.file_type().is_ok_and(|t| t.is_dir())
        {
            n += 1;
        }
    }
    Ok(n)
}
