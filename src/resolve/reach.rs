//! Whether this node reaches its group's peers (docs/operations.md "Status
//! page"): every [`PROBE_INTERVAL`] one TCP connect to each peer's HTTP port
//! and one to its FastDFS storage port, each within `connect_timeout`,
//! keeping the round trip or the error as the OS gave it ("Connection
//! refused (os error 111)").
//!
//! Only group members are probed ([`targets`]: the tracker's storages of the
//! hosted groups, `peer_ip_addrs`, the storage-ID table's addresses of the
//! hosted groups), never this node's own addresses.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, ClusterView};
use crate::config::Config;
use crate::net::canonical;

/// Time between two probe rounds (one probe per peer and port per round).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// The outcome of the last probe of one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortProbe {
    /// The port probed.
    pub port: u16,
    /// When (unix s).
    pub at: i64,
    /// Connect round trip when it answered.
    pub rtt: Option<Duration>,
    /// The error when it did not (the OS text, or the timeout).
    pub error: Option<String>,
}

impl PortProbe {
    /// The port accepted the connection.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// One peer to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Its address.
    pub ip: IpAddr,
    /// Its HTTP port.
    pub http_port: u16,
    /// Its FastDFS storage port.
    pub storage_port: u16,
}

/// What this node last saw of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReach {
    /// The peer.
    pub ip: IpAddr,
    /// Its HTTP port's last probe.
    pub http: Option<PortProbe>,
    /// Its storage port's last probe.
    pub storage: Option<PortProbe>,
}

/// The peers to probe for `cfg` and the tracker `view`, without `local`
/// addresses, sorted by address (pure). The HTTP port is `peer_http_port`,
/// else the first `listen` port; the storage port the tracker's, else the
/// ID table's, else the group's `storage_server_port`.
pub fn targets(cfg: &Config, view: &ClusterView, local: &[IpAddr]) -> Vec<Target> {
    let http_port = cfg
        .peer_http_port
        .or_else(|| cfg.listen.first().map(SocketAddr::port))
        .unwrap_or(8888);
    let ids = view.effective(cfg).storage_ids;
    let mut out: BTreeMap<IpAddr, Target> = BTreeMap::new();
    let add = |ip: IpAddr, storage_port: u16, out: &mut BTreeMap<IpAddr, Target>| {
        let ip = canonical(ip);
        if local.iter().any(|l| canonical(*l) == ip) {
            return;
        }
        out.entry(ip).or_insert(Target {
            ip,
            http_port,
            storage_port,
        });
    };
    for g in &cfg.groups {
        if let Some(peers) = view.groups.get(&g.name) {
            for p in peers {
                add(p.ip, p.storage_port, &mut out);
            }
        }
        for e in ids.iter().filter(|e| e.group == g.name) {
            for h in &e.hosts {
                add(*h, e.port, &mut out);
            }
        }
    }
    let default_port = cfg
        .groups
        .first()
        .map_or(crate::config::DEFAULT_STORAGE_PORT, |g| {
            g.storage_server_port
        });
    for ip in &cfg.peer_ip_addrs {
        add(*ip, default_port, &mut out);
    }
    out.into_values().collect()
}

/// The last probe results per peer, kept across reloads.
#[derive(Debug, Default)]
pub struct Reach {
    peers: Mutex<BTreeMap<IpAddr, PeerReach>>,
}

impl Reach {
    /// Every peer's last results, by address.
    pub fn snapshot(&self) -> Vec<PeerReach> {
        let m = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        m.values().cloned().collect()
    }

    /// The last results of `ip`.
    pub fn get(&self, ip: IpAddr) -> Option<PeerReach> {
        let m = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&canonical(ip)).cloned()
    }

    /// Adds `results`, keeping the earlier results of the other `current`
    /// peers and forgetting the rest.
    pub fn merge(&self, results: Vec<PeerReach>, current: &[IpAddr]) {
        let mut m = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|ip, _| current.contains(ip));
        for r in results {
            m.insert(r.ip, r);
        }
    }
}

/// One TCP connect to `addr` within `timeout`.
pub async fn probe_port(addr: SocketAddr, timeout: Duration) -> PortProbe {
    let t0 = Instant::now();
    let res = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await;
    let (rtt, error) = match res {
        Ok(Ok(_)) => (Some(t0.elapsed()), None),
        Ok(Err(e)) => (None, Some(e.to_string())),
        Err(_) => (
            None,
            Some(format!(
                "no answer within connect_timeout ({} s)",
                timeout.as_secs_f64()
            )),
        ),
    };
    PortProbe {
        port: addr.port(),
        at: crate::clock::unix_now(),
        rtt,
        error,
    }
}

/// Probes both ports of `t` at once.
pub async fn probe(t: Target, timeout: Duration) -> PeerReach {
    let (http, storage) = tokio::join!(
        probe_port(SocketAddr::new(t.ip, t.http_port), timeout),
        probe_port(SocketAddr::new(t.ip, t.storage_port), timeout)
    );
    PeerReach {
        ip: t.ip,
        http: Some(http),
        storage: Some(storage),
    }
}

/// What the prober reads from its owner each round.
pub trait Probed: Send + Sync + 'static {
    /// The current configuration.
    fn config(&self) -> Arc<Config>;
    /// This node's own addresses.
    fn local_ips(&self) -> Vec<IpAddr>;
    /// The tracker view.
    fn cluster(&self) -> &Cluster;
    /// Where results go.
    fn reach(&self) -> &Reach;
}

/// The targets due at `now`: never probed, or last probed at least
/// [`PROBE_INTERVAL`] ago (pure).
pub fn due(list: &[Target], last: &BTreeMap<IpAddr, Instant>, now: Instant) -> Vec<Target> {
    list.iter()
        .filter(|t| {
            last.get(&t.ip).map_or(true, |at| {
                now.saturating_duration_since(*at) >= PROBE_INTERVAL
            })
        })
        .copied()
        .collect()
}

/// Starts the probes for `app` when a tokio runtime is running; they end
/// when the app is dropped. Every second the targets are recomputed (the
/// tracker view may have changed) and those due are probed, so a new
/// member is probed at once and none more than once per interval.
pub fn spawn_prober<A: Probed>(app: &Arc<A>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<A> = Arc::downgrade(app);
    rt.spawn(async move {
        let mut last: BTreeMap<IpAddr, Instant> = BTreeMap::new();
        loop {
            let Some(app) = weak.upgrade() else { return };
            let cfg = app.config();
            let list = targets(&cfg, &app.cluster().view(), &app.local_ips());
            let timeout = cfg.connect_timeout;
            drop(app);
            let now = Instant::now();
            let todo = due(&list, &last, now);
            let current: Vec<IpAddr> = list.iter().map(|t| t.ip).collect();
            last.retain(|ip, _| current.contains(ip));
            for t in &todo {
                last.insert(t.ip, now);
            }
            let results =
                futures_util::future::join_all(todo.into_iter().map(|t| probe(t, timeout))).await;
            let Some(app) = weak.upgrade() else { return };
            app.reach().merge(results, &current);
            drop(app);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::members::TrackedPeer;
    use std::collections::HashMap;

    fn cfg(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let full = format!(
            "base_path=/tmp\ngroup_name=group1\nstore_path0={}\n{text}",
            dir.path().display()
        );
        Config::from_str(&full, dir.path()).unwrap().config
    }

    #[test]
    fn only_members_and_never_self() {
        let c = cfg("peer_ip_addrs=10.0.0.9,10.0.0.1\nlisten=10.0.0.1:8080\n");
        let peer = |ip: &str, port| TrackedPeer {
            ip: ip.parse().unwrap(),
            storage_port: port,
            readable: false,
        };
        let view = ClusterView {
            groups: HashMap::from([
                (
                    "group1".to_string(),
                    vec![peer("10.0.0.1", 23000), peer("10.0.0.2", 23001)],
                ),
                ("group2".to_string(), vec![peer("10.9.9.9", 23000)]),
            ]),
            ..ClusterView::default()
        };
        let local: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let t = targets(&c, &view, &local);
        let ips: Vec<String> = t.iter().map(|t| t.ip.to_string()).collect();
        assert_eq!(ips, ["10.0.0.2", "10.0.0.9"], "group2 is not hosted here");
        assert_eq!(t[0].storage_port, 23001);
        assert_eq!(t[0].http_port, 8080);
        assert_eq!(t[1].storage_port, 23000);
        let c = cfg("peer_ip_addrs=10.0.0.9\npeer_http_port=81\n");
        assert_eq!(targets(&c, &ClusterView::default(), &[])[0].http_port, 81);
    }

    #[test]
    fn one_probe_per_interval() {
        let t = |ip: &str| Target {
            ip: ip.parse().unwrap(),
            http_port: 1,
            storage_port: 2,
        };
        let list = [t("10.0.0.2"), t("10.0.0.3")];
        let now = Instant::now();
        let mut last = BTreeMap::new();
        assert_eq!(due(&list, &last, now).len(), 2);
        last.insert(list[0].ip, now);
        assert_eq!(due(&list, &last, now + Duration::from_secs(1)), [list[1]]);
        last.insert(list[1].ip, now);
        assert!(due(
            &list,
            &last,
            now + PROBE_INTERVAL - Duration::from_millis(1)
        )
        .is_empty());
        assert_eq!(due(&list, &last, now + PROBE_INTERVAL).len(), 2);
    }

    #[tokio::test]
    async fn probe_keeps_the_os_error() {
        let l = std::net::TcpListener::bind("127.15.0.1:0").unwrap();
        let open = l.local_addr().unwrap();
        let closed = {
            let c = std::net::TcpListener::bind("127.15.0.1:0").unwrap();
            c.local_addr().unwrap()
        };
        let p = probe_port(open, Duration::from_secs(2)).await;
        assert!(p.ok() && p.rtt.is_some(), "{p:?}");
        let p = probe_port(closed, Duration::from_secs(2)).await;
        assert!(
            p.error.as_deref().unwrap().contains("os error 111"),
            "{p:?}"
        );
        let r = Reach::default();
        r.merge(
            vec![PeerReach {
                ip: open.ip(),
                http: Some(p),
                storage: None,
            }],
            &[open.ip()],
        );
        assert!(!r.get(open.ip()).unwrap().http.unwrap().ok());
        r.merge(Vec::new(), &[open.ip()]);
        assert_eq!(r.snapshot().len(), 1, "kept while still a target");
        r.merge(Vec::new(), &[]);
        assert!(r.snapshot().is_empty());
    }
}
