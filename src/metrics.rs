//! Process metrics in the Prometheus text exposition format (version
//! 0.0.4), written by hand: request counts by outcome and status, body
//! bytes, request latency, upstream (proxy) latency and failures per peer,
//! open connections and open-file cache hits. Served on the admin listener
//! (`/metrics`, see [`crate::admin`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A cumulative histogram over [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative; +Inf is the last slot).
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Sum of observations in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .fold(0u64, u64::saturating_add)
    }

    /// Writes `name_bucket`, `name_sum` and `name_count` lines; `labels` is
    /// either empty or `k="v",...` without braces.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative = cumulative.saturating_add(c.load(Ordering::Relaxed));
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Per-peer upstream statistics.
#[derive(Debug, Default)]
struct Upstream {
    ok: u64,
    failed: u64,
    latency: Histogram,
}

/// Counters shared by every connection; survives reloads (lives in
/// [`crate::state::App`]).
#[derive(Debug)]
pub struct Metrics {
    /// Process start (for uptime).
    started: Instant,
    /// Requests by (outcome kind, status code).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Response body bytes handed to the connection.
    bytes: AtomicU64,
    /// Time from request head to the last body byte (or abort).
    latency: Histogram,
    /// Upstream results per peer.
    upstream: Mutex<BTreeMap<IpAddr, Upstream>>,
    /// Connections currently open on the public listeners.
    open_connections: AtomicU64,
    /// Connections accepted since start.
    connections_total: AtomicU64,
    /// Connections closed by the keep-alive idle timeout.
    idle_closed: AtomicU64,
}

/// Holds one open connection in [`Metrics`]; dropping it closes it.
#[derive(Debug)]
pub struct ConnectionGuard<'a>(&'a Metrics);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .open_connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, uptime counted from now.
    pub fn new() -> Self {
        Metrics {
            started: Instant::now(),
            requests: Mutex::default(),
            bytes: AtomicU64::default(),
            latency: Histogram::default(),
            upstream: Mutex::default(),
            open_connections: AtomicU64::default(),
            connections_total: AtomicU64::default(),
            idle_closed: AtomicU64::default(),
        }
    }

    /// Time since [`Metrics::new`].
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records a finished (or aborted) request.
    pub fn record_request(&self, outcome: &str, status: u16, bytes: u64, d: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            // A handful of keys: a scan avoids allocating a key per request.
            match m
                .iter_mut()
                .find(|((o, s), _)| *s == status && o == outcome)
            {
                Some((_, n)) => *n = n.saturating_add(1),
                None => {
                    m.insert((outcome.to_owned(), status), 1);
                }
            }
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.latency.observe(d);
    }

    /// Records one upstream fetch from `peer` (proxy code calls this):
    /// how long it took and whether it succeeded.
    pub fn record_upstream(&self, peer: IpAddr, d: Duration, ok: bool) {
        if let Ok(mut m) = self.upstream.lock() {
            let u = m.entry(peer).or_default();
            if ok {
                u.ok = u.ok.saturating_add(1);
            } else {
                u.failed = u.failed.saturating_add(1);
            }
            u.latency.observe(d);
        }
    }

    /// Upstream (successes, failures) for `peer`.
    pub fn upstream_counts(&self, peer: IpAddr) -> (u64, u64) {
        self.upstream
            .lock()
            .ok()
            .and_then(|m| m.get(&peer).map(|u| (u.ok, u.failed)))
            .unwrap_or((0, 0))
    }

    /// Counts a new connection until the guard is dropped.
    pub fn connection(&self) -> ConnectionGuard<'_> {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(self)
    }

    /// Counts a connection closed for idling past `keepalive_timeout`.
    pub fn idle_closed(&self) {
        self.idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    /// Requests recorded with this outcome kind and status.
    pub fn requests(&self, outcome: &str, status: u16) -> u64 {
        self.requests
            .lock()
            .ok()
            .map(|m| {
                m.iter()
                    .filter(|((o, s), _)| o == outcome && *s == status)
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The exposition text; `cache` is (hits, misses, entries) of the
    /// open-file cache.
    pub fn render(&self, cache: (u64, u64, usize)) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP fdfs_http_requests_total Requests answered, by how they were served and status.\n# TYPE fdfs_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((outcome, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "fdfs_http_requests_total{{served=\"{outcome}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP fdfs_http_response_bytes_total Response body bytes sent.\n# TYPE fdfs_http_response_bytes_total counter\nfdfs_http_response_bytes_total {}",
            self.bytes.load(Ordering::Relaxed)
        );
        out.push_str("# HELP fdfs_http_request_duration_seconds Time from request head to last body byte.\n# TYPE fdfs_http_request_duration_seconds histogram\n");
        self.latency
            .render(&mut out, "fdfs_http_request_duration_seconds", "");
        out.push_str("# HELP fdfs_upstream_requests_total Fetches from peers, by result.\n# TYPE fdfs_upstream_requests_total counter\n");
        let mut hist = String::new();
        if let Ok(m) = self.upstream.lock() {
            for (peer, u) in m.iter() {
                let _ = writeln!(
                    out,
                    "fdfs_upstream_requests_total{{peer=\"{peer}\",result=\"ok\"}} {}\nfdfs_upstream_requests_total{{peer=\"{peer}\",result=\"fail\"}} {}",
                    u.ok, u.failed
                );
                u.latency.render(
                    &mut hist,
                    "fdfs_upstream_duration_seconds",
                    &format!("peer=\"{peer}\""),
                );
            }
        }
        out.push_str("# HELP fdfs_upstream_duration_seconds Time of fetches from peers.\n# TYPE fdfs_upstream_duration_seconds histogram\n");
        out.push_str(&hist);
        let (hits, misses, entries) = cache;
        let _ = writeln!(
            out,
            "# HELP fdfs_open_connections Client connections open now.\n# TYPE fdfs_open_connections gauge\nfdfs_open_connections {}\n\
# HELP fdfs_connections_total Client connections accepted.\n# TYPE fdfs_connections_total counter\nfdfs_connections_total {}\n\
# HELP fdfs_connections_idle_closed_total Connections closed by keepalive_timeout.\n# TYPE fdfs_connections_idle_closed_total counter\nfdfs_connections_idle_closed_total {}\n\
# HELP fdfs_open_file_cache_hits_total Lookups answered from the open-file cache.\n# TYPE fdfs_open_file_cache_hits_total counter\nfdfs_open_file_cache_hits_total {hits}\n\
# HELP fdfs_open_file_cache_misses_total Lookups that opened the file.\n# TYPE fdfs_open_file_cache_misses_total counter\nfdfs_open_file_cache_misses_total {misses}\n\
# HELP fdfs_open_file_cache_entries Descriptors held by the open-file cache.\n# TYPE fdfs_open_file_cache_entries gauge\nfdfs_open_file_cache_entries {entries}",
            self.open_connections.load(Ordering::Relaxed),
            self.connections_total.load(Ordering::Relaxed),
            self.idle_closed.load(Ordering::Relaxed),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500)); // 0.001
        h.observe(Duration::from_millis(30)); // 0.05
        h.observe(Duration::from_secs(60)); // +Inf
        let mut s = String::new();
        h.render(&mut s, "x", "");
        assert!(s.contains("x_bucket{le=\"0.001\"} 1\n"));
        assert!(s.contains("x_bucket{le=\"0.025\"} 1\n"));
        assert!(s.contains("x_bucket{le=\"0.05\"} 2\n"));
        assert!(s.contains("x_bucket{le=\"10\"} 2\n"));
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"));
        assert!(s.contains("x_count 3\n"));
        assert!(s.contains("x_sum 60.0305\n"));
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn bucket_bounds_are_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(1));
        let mut s = String::new();
        h.render(&mut s, "x", "p=\"1\"");
        assert!(s.contains("x_bucket{p=\"1\",le=\"0.001\"} 1\n"));
        assert!(s.contains("x_count{p=\"1\"} 1\n"));
    }

    #[test]
    fn requests_upstream_connections_render() {
        let m = Metrics::new();
        m.record_request("local", 200, 10, Duration::from_millis(2));
        m.record_request("local", 200, 5, Duration::from_millis(2));
        m.record_request("not_found", 404, 0, Duration::from_millis(1));
        let peer: IpAddr = "10.0.0.7".parse().unwrap();
        m.record_upstream(peer, Duration::from_millis(20), true);
        m.record_upstream(peer, Duration::from_secs(3), false);
        let g = m.connection();
        let t = m.render((7, 3, 2));
        assert_eq!(
            line(&t, "fdfs_http_requests_total{served=\"local\""),
            Some("fdfs_http_requests_total{served=\"local\",status=\"200\"} 2")
        );
        assert!(t.contains("fdfs_http_requests_total{served=\"not_found\",status=\"404\"} 1\n"));
        assert!(t.contains("fdfs_http_response_bytes_total 15\n"));
        assert!(t.contains("fdfs_http_request_duration_seconds_count 3\n"));
        assert!(t.contains("fdfs_upstream_requests_total{peer=\"10.0.0.7\",result=\"ok\"} 1\n"));
        assert!(t.contains("fdfs_upstream_requests_total{peer=\"10.0.0.7\",result=\"fail\"} 1\n"));
        assert!(t.contains("fdfs_upstream_duration_seconds_count{peer=\"10.0.0.7\"} 2\n"));
        assert!(t.contains("fdfs_open_connections 1\n"));
        assert!(t.contains("fdfs_open_file_cache_hits_total 7\n"));
        assert!(t.contains("fdfs_open_file_cache_misses_total 3\n"));
        assert!(t.ends_with("fdfs_open_file_cache_entries 2\n"));
        assert_eq!(m.upstream_counts(peer), (1, 1));
        assert_eq!(m.requests("local", 200), 2);
        drop(g);
        assert_eq!(m.open_connections(), 0);
        // Every sample line is `name{labels} value` or `name value`.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
