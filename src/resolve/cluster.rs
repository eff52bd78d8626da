//! What the tracker says about the cluster (docs/module-behaviour.md §9,
//! docs/wire-protocol.md §3–§5.3), refreshed in the background.
//!
//! With `load_fdfs_parameters_from_tracker = true`, `storage_sync_file_max_delay`,
//! `use_storage_id` and the storage-ID table (commands 75 and 69) come from
//! the tracker and are refreshed every [`REFRESH`] (the module reads them
//! once). Whenever `tracker_server` is set, the storages of each hosted
//! group (and of each group of the ID table) with their states
//! (LIST_STORAGE, command 92) are refreshed too; they feed the member check
//! and failover ([`super::members`]). A tracker that cannot be reached is
//! retried with back-off from [`MIN_BACKOFF`] to [`MAX_BACKOFF`]; until a
//! first answer the configured values apply. Every `tracker_server` entry
//! is tried in order.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::members::TrackedPeer;
use crate::config::{Config, StorageIds};
use crate::proto::{ProtoError, StorageStat, TrackerClient};

/// Time between two refreshes after a success.
pub const REFRESH: Duration = Duration::from_secs(30);
/// First retry delay after a failure.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Parameters taken from the tracker (command 75).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerParameters {
    /// `storage_sync_file_max_delay` (86400 when absent).
    pub max_delay: u64,
    /// `use_storage_id`.
    pub use_storage_id: bool,
}

/// The last known state of the cluster. Empty until a tracker answered.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Parameters, when loaded from a tracker.
    pub params: Option<TrackerParameters>,
    /// The storage-ID table from the tracker (when `use_storage_id`).
    pub storage_ids: Option<Arc<StorageIds>>,
    /// Storages per group, as last listed.
    pub groups: HashMap<String, Vec<TrackedPeer>>,
}

/// The values the not-local rules use: the tracker's when loaded from it,
/// else the configuration's.
#[derive(Debug, Clone)]
pub struct Effective {
    /// `storage_sync_file_max_delay`.
    pub max_delay: u64,
    /// The storage-ID table in force (empty when IDs are off).
    pub storage_ids: Arc<StorageIds>,
}

impl ClusterView {
    /// Effective parameters for `cfg` (pure).
    pub fn effective(&self, cfg: &Config) -> Effective {
        match (cfg.load_fdfs_parameters_from_tracker, self.params) {
            (true, Some(p)) => Effective {
                max_delay: p.max_delay,
                storage_ids: match (&self.storage_ids, p.use_storage_id) {
                    (Some(ids), true) => ids.clone(),
                    _ => Arc::new(StorageIds::default()),
                },
            },
            _ => Effective {
                max_delay: cfg.storage_sync_file_max_delay,
                storage_ids: cfg.storage_ids.clone(),
            },
        }
    }
}

/// Converts a LIST_STORAGE reply; entries whose address does not parse are
/// dropped.
pub fn tracked(list: &[StorageStat]) -> Vec<TrackedPeer> {
    list.iter()
        .filter_map(|s| {
            Some(TrackedPeer {
                ip: s.ip.parse::<IpAddr>().ok()?,
                storage_port: s.storage_port,
                readable: s.readable(),
            })
        })
        .collect()
}

/// Storages listed readable (ACTIVE) in `new` that were listed but not
/// readable in `old`: their circuit breakers close at once.
pub fn newly_active(old: &ClusterView, new: &ClusterView) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (group, peers) in &new.groups {
        let Some(before) = old.groups.get(group) else {
            continue;
        };
        for p in peers.iter().filter(|p| p.readable) {
            if before.iter().any(|b| b.ip == p.ip && !b.readable) && !out.contains(&p.ip) {
                out.push(p.ip);
            }
        }
    }
    out
}

/// The shared, atomically replaced view.
#[derive(Debug, Default)]
pub struct Cluster {
    view: ArcSwap<ClusterView>,
}

impl Cluster {
    /// The current view.
    pub fn view(&self) -> Arc<ClusterView> {
        self.view.load_full()
    }

    /// Effective parameters for `cfg`.
    pub fn effective(&self, cfg: &Config) -> Effective {
        self.view.load().effective(cfg)
    }

    /// Asks the trackers once and stores what they answered. Parts that
    /// fail keep their previous value; the first error is returned.
    pub async fn refresh(&self, cfg: &Config) -> Result<(), ProtoError> {
        let addrs = tracker_addrs(cfg).await;
        if addrs.is_empty() {
            return Err(ProtoError::NoTracker);
        }
        let client = TrackerClient::new(addrs, cfg.connect_timeout, cfg.network_timeout);
        let mut view = ClusterView::clone(&self.view());
        let mut first_err: Option<ProtoError> = None;
        if cfg.load_fdfs_parameters_from_tracker {
            match client.parameters().await {
                Ok(p) => {
                    let params = TrackerParameters {
                        max_delay: p.sync_file_max_delay(),
                        use_storage_id: p.use_storage_id,
                    };
                    if view.params != Some(params) {
                        tracing::info!(
                            "tracker parameters: storage_sync_file_max_delay={}s, use_storage_id={}",
                            params.max_delay,
                            params.use_storage_id
                        );
                    }
                    view.params = Some(params);
                    if params.use_storage_id {
                        match client.storage_ids().await {
                            Ok(text) => match parse_ids(&text) {
                                Ok(ids) => view.storage_ids = Some(Arc::new(ids)),
                                Err(e) => {
                                    tracing::error!("storage ids from the tracker rejected: {e}");
                                    first_err.get_or_insert(ProtoError::BadBody("storage ids"));
                                }
                            },
                            Err(e) => {
                                first_err.get_or_insert(e);
                            }
                        }
                    } else {
                        view.storage_ids = None;
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let ids = view.effective(cfg).storage_ids;
        let mut groups: Vec<String> = cfg.groups.iter().map(|g| g.name.clone()).collect();
        for e in ids.iter() {
            if !groups.contains(&e.group) {
                groups.push(e.group.clone());
            }
        }
        for g in groups {
            match client.list_storage(&g).await {
                Ok(list) => {
                    view.groups.insert(g, tracked(&list));
                }
                // Unknown group: the tracker knows no storage of it.
                Err(ProtoError::Status(2)) => {
                    view.groups.insert(g, Vec::new());
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        self.view.store(Arc::new(view));
        match first_err {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

fn parse_ids(text: &str) -> Result<StorageIds, String> {
    // Addresses only: no name resolution inside the runtime.
    StorageIds::parse_with(text, Path::new("tracker storage ids"), &mut |h: &str| {
        h.parse().ok()
    })
    .map_err(|d| {
        d.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Every address of every `tracker_server` entry, in order.
pub async fn tracker_addrs(cfg: &Config) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for t in &cfg.tracker_servers {
        for host in std::iter::once(&t.host).chain(t.alt_host.as_ref()) {
            match host.parse::<IpAddr>() {
                Ok(ip) => out.push(SocketAddr::new(ip, t.port)),
                Err(_) => match tokio::net::lookup_host((host.as_str(), t.port)).await {
                    Ok(addrs) => out.extend(addrs),
                    Err(e) => tracing::warn!("tracker_server {host}: {e}"),
                },
            }
        }
    }
    out
}

/// Next delay after a failure (doubling, bounded).
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).clamp(MIN_BACKOFF, MAX_BACKOFF)
}

/// What the background refresh reads from its owner each round.
pub trait Tracked: Send + Sync + 'static {
    /// The current configuration (a reload may change the trackers).
    fn config(&self) -> Arc<Config>;
    /// The view to refresh.
    fn cluster(&self) -> &Cluster;
    /// The peers whose breakers close when the tracker lists them ACTIVE.
    fn peers(&self) -> &super::peers::PeerTable;
}

/// Starts the background refresh for `app` when a tokio runtime is running.
/// It ends when the app is dropped. Does nothing while no `tracker_server`
/// is configured (a reload may add one).
pub fn spawn_refresher<A: Tracked>(app: &Arc<A>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<A> = Arc::downgrade(app);
    rt.spawn(async move {
        let mut backoff = MIN_BACKOFF;
        let mut failing = false;
        loop {
            let Some(app) = weak.upgrade() else { return };
            let cfg = app.config();
            let wait = if cfg.tracker_servers.is_empty() {
                REFRESH
            } else {
                let before = app.cluster().view();
                match app.cluster().refresh(&cfg).await {
                    Ok(()) => {
                        for ip in newly_active(&before, &app.cluster().view()) {
                            app.peers().reset(ip);
                        }
                        if failing {
                            tracing::info!("tracker reachable again");
                        }
                        failing = false;
                        backoff = MIN_BACKOFF;
                        REFRESH
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(
                                "tracker query failed ({e}); using the last known values, retrying with back-off"
                            );
                        }
                        failing = true;
                        let w = backoff;
                        backoff = next_backoff(backoff);
                        w
                    }
                }
            };
            drop(app);
            tokio::time::sleep(wait).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::StorageStatus;

    fn cfg(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let full = format!(
            "base_path=/tmp\ngroup_name=group1\nstore_path0={}\n{text}",
            dir.path().display()
        );
        Config::from_str(&full, dir.path()).unwrap().config
    }

    #[test]
    fn storages_turning_active() {
        let peer = |ip: &str, readable| TrackedPeer {
            ip: ip.parse().unwrap(),
            storage_port: 23000,
            readable,
        };
        let view = |peers: Vec<TrackedPeer>| ClusterView {
            groups: HashMap::from([("group1".to_string(), peers)]),
            ..ClusterView::default()
        };
        let old = view(vec![peer("10.0.0.1", false), peer("10.0.0.2", true)]);
        let new = view(vec![
            peer("10.0.0.1", true),
            peer("10.0.0.2", true),
            peer("10.0.0.3", true),
        ]);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(newly_active(&old, &new), vec![ip]);
        assert!(newly_active(&new, &new).is_empty());
        assert!(newly_active(&ClusterView::default(), &new).is_empty());
    }

    #[test]
    fn effective_values() {
        let c = cfg("storage_sync_file_max_delay=600\n");
        let v = ClusterView::default();
        assert_eq!(v.effective(&c).max_delay, 600);
        // Tracker parameters are ignored unless loading from the tracker.
        let v = ClusterView {
            params: Some(TrackerParameters {
                max_delay: 7,
                use_storage_id: true,
            }),
            storage_ids: Some(Arc::new(
                StorageIds::parse("100001 group1 10.0.0.1\n", Path::new("x")).unwrap(),
            )),
            groups: HashMap::new(),
        };
        assert_eq!(v.effective(&c).max_delay, 600);
        let t = cfg("load_fdfs_parameters_from_tracker=true\ntracker_server=127.0.0.4:22122\n");
        assert_eq!(
            ClusterView::default().effective(&t).max_delay,
            t.storage_sync_file_max_delay
        );
        let e = v.effective(&t);
        assert_eq!(e.max_delay, 7);
        assert_eq!(e.storage_ids.len(), 1);
        let off = ClusterView {
            params: Some(TrackerParameters {
                max_delay: 7,
                use_storage_id: false,
            }),
            ..v
        };
        assert!(off.effective(&t).storage_ids.is_empty());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(next_backoff(MIN_BACKOFF), Duration::from_secs(2));
        assert_eq!(next_backoff(Duration::from_secs(40)), MAX_BACKOFF);
        assert_eq!(next_backoff(Duration::ZERO), MIN_BACKOFF);
    }

    #[test]
    fn tracked_peers() {
        let mk = |ip: &str, status, rw| StorageStat {
            status,
            rw_mode: rw,
            id: ip.into(),
            ip: ip.into(),
            src_id: String::new(),
            version: "6.16.1".into(),
            join_time: 0,
            up_time: 0,
            total_mb: 0,
            free_mb: 0,
            storage_port: 23000,
            last_source_update: 0,
            last_sync_update: 0,
            last_synced_timestamp: 0,
            last_heart_beat_time: 0,
            is_trunk_server: false,
        };
        let list = [
            mk("127.0.0.2", StorageStatus::Active, 6),
            mk("127.0.0.3", StorageStatus::Offline, 6),
            mk("127.0.0.4", StorageStatus::Active, 2),
            mk("not-an-ip", StorageStatus::Active, 6),
        ];
        let t = tracked(&list);
        assert_eq!(t.len(), 3);
        assert!(t[0].readable);
        assert!(!t[1].readable);
        assert!(!t[2].readable, "write-only");
        assert_eq!(t[0].storage_port, 23000);
    }

    #[test]
    fn ids_from_tracker_text() {
        assert_eq!(
            parse_ids("100001 group1 10.0.0.1\n100002 group1 10.0.0.2:23001\n")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_ids("100001 group1 some-host\n").is_err());
    }
}
