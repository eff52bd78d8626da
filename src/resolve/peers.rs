//! Peer health for failover (issue "Failover"; docs/user-reports.md #1, #9): a
//! circuit breaker per peer so a dead peer is skipped for a while instead
//! of costing a timeout per request, a smoothed response time to try the
//! fastest peers first, and the `max_proxy_per_peer` cap.
//!
//! The breaker opens after [`THRESHOLD`] consecutive transport failures for
//! a cool-down that starts at [`BASE_COOLDOWN`] and doubles on every failed
//! trial up to [`MAX_COOLDOWN`]; after the cool-down one request may try
//! the peer again (half-open). Any answer closes it, and so does the
//! tracker listing the peer ACTIVE again ([`PeerTable::reset`]).
//!
//! An open breaker only orders and spares: when every candidate of a
//! request is cooling down, the request still probes one of them
//! ([`PeerTable::probe`], at most one probe in flight per peer), so a peer
//! that is back is used again by the next request, not after its cool-down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Consecutive failures that open the breaker.
pub const THRESHOLD: u32 = 2;
/// First cool-down.
pub const BASE_COOLDOWN: Duration = Duration::from_secs(5);
/// Longest cool-down.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(60);

/// One peer's circuit breaker. Pure: the caller passes the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failures: 0,
            open_until: None,
            cooldown: BASE_COOLDOWN,
        }
    }
}

impl Breaker {
    /// Whether the peer may be tried at `now` (closed, or half-open after
    /// the cool-down).
    pub fn allows(&self, now: Instant) -> bool {
        match self.open_until {
            None => true,
            Some(t) => now >= t,
        }
    }

    /// The peer answered: close the breaker.
    pub fn on_success(&mut self) {
        *self = Breaker::default();
    }

    /// The peer could not be reached or timed out at `now`.
    pub fn on_failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.failures < THRESHOLD {
            return;
        }
        if self.open_until.is_some() {
            // A failed half-open trial: wait longer next time.
            self.cooldown = (self.cooldown * 2).min(MAX_COOLDOWN);
        }
        self.open_until = now.checked_add(self.cooldown);
    }
}

/// Exponentially weighted moving average of response times (α = 1/4).
fn smooth(old: Option<Duration>, sample: Duration) -> Duration {
    match old {
        None => sample,
        Some(o) => (o * 3 + sample) / 4,
    }
}

#[derive(Debug, Default)]
struct Peer {
    breaker: Breaker,
    /// A request is probing this peer while its breaker is open.
    probing: bool,
    latency: Option<Duration>,
    /// (limit, semaphore) for `max_proxy_per_peer`.
    slots: Option<(usize, Arc<Semaphore>)>,
}

/// The peer is saturated (`max_proxy_per_peer` requests in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saturated;

/// Health of every peer contacted so far.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: Mutex<HashMap<IpAddr, Peer>>,
}

impl PeerTable {
    fn with<T>(&self, ip: IpAddr, f: impl FnOnce(&mut Peer) -> T) -> T {
        let mut map = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(ip).or_default())
    }

    /// Whether `ip` may be tried now.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.with(ip, |p| p.breaker.allows(Instant::now()))
    }

    /// `ip` answered after `elapsed`.
    pub fn success(&self, ip: IpAddr, elapsed: Duration) {
        self.with(ip, |p| {
            p.breaker.on_success();
            p.latency = Some(smooth(p.latency, elapsed));
        });
    }

    /// `ip` could not be reached or timed out.
    pub fn failure(&self, ip: IpAddr) {
        let opened = self.with(ip, |p| {
            let was = p.breaker.allows(Instant::now());
            p.breaker.on_failure(Instant::now());
            was && !p.breaker.allows(Instant::now())
        });
        if opened {
            tracing::warn!("peer {ip}: unreachable, skipped for a while (circuit open)");
        }
    }

    /// A probe of `ip` while its breaker is open: `None` when another
    /// request is already probing it. Its outcome is recorded with
    /// [`PeerTable::success`] / [`PeerTable::failure`] as usual.
    pub fn probe(&self, ip: IpAddr) -> Option<Probe<'_>> {
        self.with(ip, |p| !std::mem::replace(&mut p.probing, true))
            .then_some(Probe { table: self, ip })
    }

    /// Closes the breaker of `ip` (the tracker lists it ACTIVE again).
    pub fn reset(&self, ip: IpAddr) {
        let was_open = self.with(ip, |p| {
            let open = p.breaker.open_until.is_some();
            p.breaker.on_success();
            open
        });
        if was_open {
            tracing::info!("peer {ip}: ACTIVE at the tracker again, circuit closed");
        }
    }

    /// Recent response time of `ip`, if any.
    pub fn latency(&self, ip: IpAddr) -> Option<Duration> {
        self.with(ip, |p| p.latency)
    }

    /// A slot for one proxied request to `ip` (`limit` = `max_proxy_per_peer`;
    /// `None` = unlimited, no permit). The permit is held until the response
    /// body is finished.
    pub fn permit(
        &self,
        ip: IpAddr,
        limit: Option<usize>,
    ) -> Result<Option<OwnedSemaphorePermit>, Saturated> {
        let Some(limit) = limit else {
            return Ok(None);
        };
        let sem = self.with(ip, |p| match &p.slots {
            Some((l, s)) if *l == limit => s.clone(),
            _ => {
                let s = Arc::new(Semaphore::new(limit));
                p.slots = Some((limit, s.clone()));
                s
            }
        });
        sem.try_acquire_owned().map(Some).map_err(|_| Saturated)
    }
}

/// The one probe in flight of a peer whose breaker is open; dropping it
/// lets the next request probe.
#[derive(Debug)]
pub struct Probe<'a> {
    table: &'a PeerTable,
    ip: IpAddr,
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.table.with(self.ip, |p| p.probing = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_threshold_and_backs_off() {
        let t0 = Instant::now();
        let mut b = Breaker::default();
        assert!(b.allows(t0));
        b.on_failure(t0);
        assert!(b.allows(t0), "one failure keeps it closed");
        b.on_failure(t0);
        assert!(!b.allows(t0));
        assert!(!b.allows(t0 + BASE_COOLDOWN - Duration::from_millis(1)));
        let t1 = t0 + BASE_COOLDOWN;
        assert!(b.allows(t1), "half-open after the cool-down");
        b.on_failure(t1);
        assert!(!b.allows(t1 + BASE_COOLDOWN), "doubled cool-down");
        assert!(b.allows(t1 + BASE_COOLDOWN * 2));
        // Cool-down is capped.
        let mut t = t1;
        for _ in 0..10 {
            t += MAX_COOLDOWN;
            b.on_failure(t);
        }
        assert!(b.allows(t + MAX_COOLDOWN));
        b.on_success();
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn latency_is_smoothed() {
        assert_eq!(
            smooth(None, Duration::from_millis(8)),
            Duration::from_millis(8)
        );
        assert_eq!(
            smooth(Some(Duration::from_millis(8)), Duration::from_millis(4)),
            Duration::from_millis(7)
        );
        let t = PeerTable::default();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(t.latency(ip), None);
        t.success(ip, Duration::from_millis(4));
        assert_eq!(t.latency(ip), Some(Duration::from_millis(4)));
        t.failure(ip);
        t.failure(ip);
        assert!(!t.allows(ip));
        t.success(ip, Duration::from_millis(4));
        assert!(t.allows(ip));
    }

    #[test]
    fn one_probe_in_flight_and_reset() {
        let t = PeerTable::default();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        t.failure(ip);
        t.failure(ip);
        assert!(!t.allows(ip));
        let p = t.probe(ip).expect("first probe");
        assert!(
            t.probe(ip).is_none(),
            "a second probe while one is in flight"
        );
        let other: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(t.probe(other).is_some(), "probes are per peer");
        drop(p);
        let p = t.probe(ip).expect("probe again once the first ended");
        t.success(ip, Duration::from_millis(1));
        drop(p);
        assert!(t.allows(ip), "an answer closes the breaker");
        t.failure(ip);
        t.failure(ip);
        assert!(!t.allows(ip));
        t.reset(ip);
        assert!(t.allows(ip), "ACTIVE at the tracker closes it");
    }

    #[test]
    fn permits_cap_concurrency() {
        let t = PeerTable::default();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(matches!(t.permit(ip, None), Ok(None)));
        let a = t.permit(ip, Some(2)).unwrap();
        let b = t.permit(ip, Some(2)).unwrap();
        assert_eq!(t.permit(ip, Some(2)).unwrap_err(), Saturated);
        drop(a);
        assert!(t.permit(ip, Some(2)).is_ok());
        drop(b);
        // A new limit replaces the semaphore.
        assert!(t.permit(ip, Some(1)).is_ok());
    }
}
