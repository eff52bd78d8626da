//! What to do with a well-formed file ID that is not on local disk
//! (docs/module-behaviour.md §8, table "Decision"), as a pure function.

use std::net::IpAddr;

/// Facts the decision needs, gathered by the handler.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// The URL's group is hosted here.
    pub same_group: bool,
    /// The decoded source, resolved to an address (None: storage ID unknown).
    pub source: Option<IpAddr>,
    /// The source is one of this node's addresses.
    pub source_is_local: bool,
    /// Create timestamp from the ID.
    pub create_ts: i64,
    /// Now, Unix seconds (this node's clock).
    pub now: i64,
    /// `storage_sync_file_max_delay`.
    pub max_delay: u64,
    /// The query already has a `redirect` parameter (loop guard).
    pub redirected: bool,
}

/// The outcome for a file that is not local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 404: the file should be here but is not (source is us).
    NotFoundSourceIsLocal,
    /// 404: older than `storage_sync_file_max_delay`, replication is not lagging.
    NotFoundTooOld,
    /// 400: the request was already redirected/proxied once.
    LoopGuard,
    /// The source storage ID is not in the ID table.
    UnknownSource,
    /// Send the client (redirect) or the request (proxy) to this address.
    Forward(IpAddr),
}

/// Decides in the module's order: (a) 404, (b) loop guard, (c) unknown
/// source, (d/e) forward.
pub fn decide(f: &Facts) -> Decision {
    if f.same_group {
        if f.source_is_local {
            return Decision::NotFoundSourceIsLocal;
        }
        let age = f.now.saturating_sub(f.create_ts);
        if f.create_ts > 0 && age > 0 && age as u64 > f.max_delay {
            return Decision::NotFoundTooOld;
        }
    }
    if f.redirected {
        return Decision::LoopGuard;
    }
    match f.source {
        None => Decision::UnknownSource,
        Some(ip) => Decision::Forward(ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            same_group: true,
            source: Some("127.0.0.2".parse().unwrap()),
            source_is_local: false,
            create_ts: 1_000_000,
            now: 1_000_100,
            max_delay: 86400,
            redirected: false,
        }
    }

    #[test]
    fn table() {
        let ip = "127.0.0.2".parse().unwrap();
        assert_eq!(decide(&facts()), Decision::Forward(ip));
        assert_eq!(
            decide(&Facts {
                source_is_local: true,
                ..facts()
            }),
            Decision::NotFoundSourceIsLocal
        );
        assert_eq!(
            decide(&Facts {
                now: 1_000_000 + 86401,
                ..facts()
            }),
            Decision::NotFoundTooOld
        );
        // strictly greater than
        assert_eq!(
            decide(&Facts {
                now: 1_000_000 + 86400,
                ..facts()
            }),
            Decision::Forward(ip)
        );
        assert_eq!(
            decide(&Facts {
                redirected: true,
                ..facts()
            }),
            Decision::LoopGuard
        );
        assert_eq!(
            decide(&Facts {
                source: None,
                ..facts()
            }),
            Decision::UnknownSource
        );
        // other group: age and locality do not apply
        let other = Facts {
            same_group: false,
            source_is_local: true,
            now: i64::MAX,
            ..facts()
        };
        assert_eq!(decide(&other), Decision::Forward(ip));
        // create_ts 0 never counts as old
        assert_eq!(
            decide(&Facts {
                create_ts: 0,
                ..facts()
            }),
            Decision::Forward(ip)
        );
    }
}
