//! The last few not-local requests that went to a peer (docs/operations.md
//! "Status page"): file ID, outcome, peer; a bounded ring, newest first.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// How many events are kept.
pub const CAPACITY: usize = 20;

/// One not-local request that was forwarded or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagEvent {
    /// When (unix s).
    pub at: i64,
    /// `group1/M00/…`.
    pub file_id: String,
    /// `redirect`, `proxy`, `not_found` or `failed`.
    pub outcome: &'static str,
    /// The peer redirected or proxied to (or the source, on failure).
    pub peer: Option<IpAddr>,
    /// The status answered.
    pub status: u16,
}

/// How often one peer was redirected to, proxied from, or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounts {
    /// 302s naming it.
    pub redirected: u64,
    /// Answers relayed from it.
    pub proxied: u64,
    /// Requests that failed at it (not found or error).
    pub failed: u64,
}

/// The ring of the last [`CAPACITY`] events, and counts per peer.
#[derive(Debug, Default)]
pub struct LagEvents {
    ring: Mutex<VecDeque<LagEvent>>,
    counts: Mutex<HashMap<IpAddr, PeerCounts>>,
}

impl LagEvents {
    /// Adds `e`, dropping the oldest when full.
    pub fn push(&self, e: LagEvent) {
        if let Some(ip) = e.peer {
            let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            let c = c.entry(ip).or_default();
            match e.outcome {
                "redirect" => c.redirected += 1,
                "proxy" => c.proxied += 1,
                _ => c.failed += 1,
            }
        }
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == CAPACITY {
            r.pop_back();
        }
        r.push_front(e);
    }

    /// The counts of `ip`.
    pub fn counts(&self, ip: IpAddr) -> PeerCounts {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.get(&ip).copied().unwrap_or_default()
    }

    /// The events, newest first.
    pub fn recent(&self) -> Vec<LagEvent> {
        let r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        r.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_newest_first() {
        let ev = LagEvents::default();
        for i in 0..(CAPACITY as i64 + 5) {
            ev.push(LagEvent {
                at: i,
                file_id: format!("group1/M00/00/00/{i}"),
                outcome: "proxy",
                peer: Some("10.0.0.2".parse().unwrap()),
                status: 200,
            });
        }
        let r = ev.recent();
        assert_eq!(r.len(), CAPACITY);
        assert_eq!(r[0].at, CAPACITY as i64 + 4);
        assert_eq!(r[CAPACITY - 1].at, 5);
        let c = ev.counts("10.0.0.2".parse().unwrap());
        assert_eq!(
            (c.proxied, c.redirected, c.failed),
            (CAPACITY as u64 + 5, 0, 0)
        );
    }
}
