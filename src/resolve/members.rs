//! Who may be contacted for a file that is not local, and in which order
//! (docs/module-behaviour.md §16 item 1 and 4; docs/user-reports.md #1, #7, #9).
//!
//! The module proxies to whatever address a file name decodes to, which
//! makes it an open proxy. Here a decoded source is contacted only when it
//! is a known member of the URL's group: an address of `peer_ip_addrs`, an
//! address of the group in the storage-ID table, or a storage the tracker
//! lists for the group. Failover peers come from the same sources. Pure.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::StorageIds;
use crate::net::canonical;

/// A storage of a group as the tracker reported it (LIST_STORAGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedPeer {
    /// Its address.
    pub ip: IpAddr,
    /// Its FastDFS (not HTTP) port.
    pub storage_port: u16,
    /// ACTIVE and readable: may serve reads.
    pub readable: bool,
}

/// The known members of one group.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// The group.
    pub group: &'a str,
    /// `peer_ip_addrs` (group-agnostic allow-list).
    pub peer_ip_addrs: &'a [IpAddr],
    /// The effective storage-ID table (config or tracker).
    pub storage_ids: &'a StorageIds,
    /// The group's storages from the tracker; `None` when no tracker view exists.
    pub tracker: Option<&'a [TrackedPeer]>,
}

/// Why a candidate is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The storage the file name decodes to.
    Source,
    /// Another member of the group (failover).
    Peer,
}

/// One storage to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its address.
    pub ip: IpAddr,
    /// Its FastDFS port when known (tracker or storage-ID table).
    pub storage_port: Option<u16>,
    /// Source or failover peer.
    pub role: Role,
}

impl Known<'_> {
    /// Whether `ip` belongs to the group (any of the three sources).
    pub fn is_member(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.peer_ip_addrs.iter().any(|p| canonical(*p) == ip)
            || self
                .storage_ids
                .iter()
                .any(|e| e.group == self.group && e.hosts.iter().any(|h| canonical(*h) == ip))
            || self
                .tracker
                .is_some_and(|t| t.iter().any(|p| canonical(p.ip) == ip))
    }

    /// The FastDFS port of `ip` when the tracker or the ID table knows it.
    pub fn storage_port(&self, ip: IpAddr) -> Option<u16> {
        let ip = canonical(ip);
        self.tracker
            .and_then(|t| t.iter().find(|p| canonical(p.ip) == ip))
            .map(|p| p.storage_port)
            .or_else(|| {
                self.storage_ids
                    .iter()
                    .find(|e| e.group == self.group && e.hosts.iter().any(|h| canonical(*h) == ip))
                    .map(|e| e.port)
            })
    }

    /// Whether the tracker lists `ip` in the group as not readable.
    fn listed_unreadable(&self, ip: IpAddr) -> bool {
        self.tracker
            .is_some_and(|t| t.iter().any(|p| canonical(p.ip) == ip && !p.readable))
    }

    /// The tracker's storages of the group not listed readable (none
    /// without a tracker view), in listed order.
    fn unreadable(&self) -> Vec<IpAddr> {
        self.tracker
            .map(|t| t.iter().filter(|p| !p.readable).map(|p| p.ip).collect())
            .unwrap_or_default()
    }

    /// Failover peers before ordering: the tracker's readable storages when
    /// a tracker view exists, else the static members (`peer_ip_addrs` and
    /// the group's ID-table addresses).
    fn peers(&self) -> Vec<IpAddr> {
        match self.tracker {
            Some(t) => t.iter().filter(|p| p.readable).map(|p| p.ip).collect(),
            None => {
                let mut v: Vec<IpAddr> = self.peer_ip_addrs.to_vec();
                v.extend(
                    self.storage_ids
                        .iter()
                        .filter(|e| e.group == self.group)
                        .filter_map(|e| e.hosts.first().copied()),
                );
                v
            }
        }
    }
}

/// The storages to try for a file whose decoded source is `source`: the
/// source first (when it is a member), then the other peers, fastest first
/// (`latency` = the peer's recent response time; unknown ones after known
/// ones, in listed order). A source the tracker lists but not readable
/// (OFFLINE, WAIT_SYNC, write-only) comes after the peers instead, and
/// the group's other unreadable storages last: their HTTP front may
/// outlive their storage daemon, and a tracker restarted while a storage
/// is down lists the others WAIT_SYNC for minutes though they hold every
/// file they held before. Local addresses and duplicates are left out.
pub fn candidates(
    known: &Known<'_>,
    source: IpAddr,
    is_local: impl Fn(IpAddr) -> bool,
    latency: impl Fn(IpAddr) -> Option<Duration>,
) -> Vec<Candidate> {
    let source = canonical(source);
    let mut out = Vec::new();
    let mut source_last = None;
    if known.is_member(source) && !is_local(source) {
        let c = Candidate {
            ip: source,
            storage_port: known.storage_port(source),
            role: Role::Source,
        };
        if known.listed_unreadable(source) {
            source_last = Some(c);
        } else {
            out.push(c);
        }
    }
    let mut peers: Vec<IpAddr> = Vec::new();
    for ip in known.peers().into_iter().map(canonical) {
        if ip != source && !is_local(ip) && !peers.contains(&ip) {
            peers.push(ip);
        }
    }
    // Stable: equal keys keep the listed order.
    peers.sort_by_key(|ip| match latency(*ip) {
        Some(d) => (0u8, d),
        None => (1u8, Duration::ZERO),
    });
    out.extend(peers.into_iter().map(|ip| Candidate {
        ip,
        storage_port: known.storage_port(ip),
        role: Role::Peer,
    }));
    out.extend(source_last);
    let mut last: Vec<IpAddr> = Vec::new();
    for ip in known.unreadable().into_iter().map(canonical) {
        if ip != source && !is_local(ip) && !last.contains(&ip) {
            last.push(ip);
        }
    }
    out.extend(last.into_iter().map(|ip| Candidate {
        ip,
        storage_port: known.storage_port(ip),
        role: Role::Peer,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ids() -> StorageIds {
        StorageIds::parse(
            "100001 group1 10.0.0.1:23001\n100002 group1 10.0.0.2\n100003 group2 10.0.0.3\n",
            Path::new("ids"),
        )
        .unwrap()
    }

    #[test]
    fn membership_sources() {
        let ids = ids();
        let peers = [ip("127.0.0.9")];
        let tracked = [TrackedPeer {
            ip: ip("192.168.1.5"),
            storage_port: 23000,
            readable: false,
        }];
        let k = Known {
            group: "group1",
            peer_ip_addrs: &peers,
            storage_ids: &ids,
            tracker: Some(&tracked),
        };
        assert!(k.is_member(ip("127.0.0.9")));
        assert!(k.is_member(ip("::ffff:127.0.0.9")));
        assert!(k.is_member(ip("10.0.0.1")));
        assert!(
            k.is_member(ip("192.168.1.5")),
            "tracked, even if not readable"
        );
        assert!(!k.is_member(ip("10.0.0.3")), "other group in the ID table");
        assert!(!k.is_member(ip("114.122.168.191")));
        assert_eq!(k.storage_port(ip("10.0.0.1")), Some(23001));
        assert_eq!(k.storage_port(ip("10.0.0.2")), Some(23000));
        assert_eq!(k.storage_port(ip("192.168.1.5")), Some(23000));
        assert_eq!(k.storage_port(ip("127.0.0.9")), None);
        let empty = StorageIds::default();
        let none = Known {
            group: "group1",
            peer_ip_addrs: &[],
            storage_ids: &empty,
            tracker: None,
        };
        assert!(!none.is_member(ip("127.0.0.2")));
        assert!(candidates(&none, ip("127.0.0.2"), |_| false, |_| None).is_empty());
    }

    #[test]
    fn order_source_first_then_fastest() {
        let empty = StorageIds::default();
        let tracked = [
            TrackedPeer {
                ip: ip("127.0.0.2"),
                storage_port: 23000,
                readable: true,
            },
            TrackedPeer {
                ip: ip("127.0.0.3"),
                storage_port: 23000,
                readable: true,
            },
            TrackedPeer {
                ip: ip("127.0.0.4"),
                storage_port: 23000,
                readable: true,
            },
            TrackedPeer {
                ip: ip("127.0.0.5"),
                storage_port: 23000,
                readable: true,
            },
            TrackedPeer {
                ip: ip("127.0.0.6"),
                storage_port: 23000,
                readable: false,
            },
        ];
        let k = Known {
            group: "group1",
            peer_ip_addrs: &[],
            storage_ids: &empty,
            tracker: Some(&tracked),
        };
        let lat = |i: IpAddr| match i.to_string().as_str() {
            "127.0.0.5" => Some(Duration::from_millis(1)),
            "127.0.0.4" => Some(Duration::from_millis(9)),
            _ => None,
        };
        let c = candidates(&k, ip("127.0.0.2"), |i| i == ip("127.0.0.3"), lat);
        let got: Vec<(String, Role)> = c.iter().map(|c| (c.ip.to_string(), c.role)).collect();
        assert_eq!(
            got,
            vec![
                ("127.0.0.2".into(), Role::Source),
                ("127.0.0.5".into(), Role::Peer),
                ("127.0.0.4".into(), Role::Peer),
                ("127.0.0.6".into(), Role::Peer),
            ]
        );
        assert_eq!(c[0].storage_port, Some(23000));
        // A non-member source is never a candidate, peers still are.
        let c = candidates(&k, ip("8.8.8.8"), |_| false, |_| None);
        assert!(c
            .iter()
            .all(|c| c.role == Role::Peer && c.ip != ip("8.8.8.8")));
        assert_eq!(c.len(), 5);
        assert_eq!(c[4].ip, ip("127.0.0.6"), "unreadable last");
        // A source the tracker lists unreadable is tried after the peers.
        let c = candidates(&k, ip("127.0.0.6"), |i| i == ip("127.0.0.3"), lat);
        let got: Vec<(String, Role)> = c.iter().map(|c| (c.ip.to_string(), c.role)).collect();
        assert_eq!(
            got,
            vec![
                ("127.0.0.5".into(), Role::Peer),
                ("127.0.0.4".into(), Role::Peer),
                ("127.0.0.2".into(), Role::Peer),
                ("127.0.0.6".into(), Role::Source),
            ]
        );
    }

    #[test]
    fn static_peers_without_tracker() {
        let ids = ids();
        let peers = [ip("127.0.0.3"), ip("127.0.0.3"), ip("127.0.0.2")];
        let k = Known {
            group: "group1",
            peer_ip_addrs: &peers,
            storage_ids: &ids,
            tracker: None,
        };
        let c = candidates(&k, ip("127.0.0.2"), |_| false, |_| None);
        let got: Vec<String> = c.iter().map(|c| c.ip.to_string()).collect();
        assert_eq!(got, ["127.0.0.2", "127.0.0.3", "10.0.0.1", "10.0.0.2"]);
        // The source being this node: only peers.
        let c = candidates(&k, ip("127.0.0.2"), |i| i == ip("127.0.0.2"), |_| None);
        assert_eq!(c[0].ip, ip("127.0.0.3"));
        // An empty tracker view means no failover peers at all.
        let k = Known {
            tracker: Some(&[]),
            ..k
        };
        let c = candidates(&k, ip("127.0.0.2"), |_| false, |_| None);
        assert_eq!(c.len(), 1);
    }
}
