//! What the status page shows, as plain data, with the rules that mark a
//! problem (docs/operations.md "Status page"; the sync delay as
//! `fdfs_monitor` computes it, docs/wire-protocol.md §5.3), and its JSON
//! form. Pure.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::proto::{GroupStat, StorageStat, StorageStatus};

/// Below this share of its disk free, a storage is marked (percent).
pub const LOW_FREE_PERCENT: i64 = 10;

/// How far a storage lags behind the group's sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDelay {
    /// No other storage has had an upload: nothing to sync.
    NothingToSync,
    /// Others have had uploads but it never synced.
    NeverSynced,
    /// Seconds between the others' last upload and its synced timestamp.
    Seconds(i64),
}

/// `fdfs_monitor`'s delay of `me` within `group`: the latest
/// `last_source_update` of the other storages minus its
/// `last_synced_timestamp` (never negative).
pub fn sync_delay(me: &StorageStat, group: &[StorageStat]) -> SyncDelay {
    let max_src = group
        .iter()
        .filter(|s| s.id != me.id)
        .map(|s| s.last_source_update)
        .max()
        .unwrap_or(0);
    if max_src == 0 {
        SyncDelay::NothingToSync
    } else if me.last_synced_timestamp == 0 {
        SyncDelay::NeverSynced
    } else {
        SyncDelay::Seconds((max_src - me.last_synced_timestamp).max(0))
    }
}

/// One storage as the tracker lists it, with what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRow {
    /// Storage ID (the IP without storage IDs).
    pub id: String,
    /// Address.
    pub ip: String,
    /// FastDFS storage port.
    pub storage_port: u16,
    /// State name (`ACTIVE`, `OFFLINE`, …).
    pub state: &'static str,
    /// Version text.
    pub version: String,
    /// Seconds since the last heartbeat (`None`: never).
    pub heartbeat_age: Option<i64>,
    /// Disk total (MB).
    pub total_mb: i64,
    /// Disk free (MB).
    pub free_mb: i64,
    /// Uploads (success, total).
    pub uploads: (i64, i64),
    /// Downloads (success, total).
    pub downloads: (i64, i64),
    /// Source time up to which it has synced (unix s, 0 = never).
    pub last_synced: i64,
    /// Its sync delay.
    pub sync_delay: SyncDelay,
    /// The storage it syncs from (empty: none).
    pub sync_source: String,
    /// This node.
    pub is_self: bool,
    /// What is wrong, for the operator; empty = fine.
    pub problems: Vec<String>,
}

impl StorageRow {
    /// The row of `s` within `group` at `now`; `max_delay` is
    /// `storage_sync_file_max_delay`.
    pub fn new(
        s: &StorageStat,
        group: &[StorageStat],
        now: i64,
        max_delay: u64,
        is_self: bool,
    ) -> StorageRow {
        let delay = sync_delay(s, group);
        let mut problems = Vec::new();
        if s.status != StorageStatus::Active {
            problems.push(format!("state {} (not ACTIVE)", s.status.name()));
        }
        if let SyncDelay::Seconds(d) = delay {
            if d > i64::try_from(max_delay).unwrap_or(i64::MAX) {
                problems.push(format!(
                    "sync delay {} above storage_sync_file_max_delay ({})",
                    human_secs(d),
                    human_secs(i64::try_from(max_delay).unwrap_or(i64::MAX))
                ));
            }
        }
        if s.total_mb > 0 && s.free_mb * 100 < s.total_mb * LOW_FREE_PERCENT {
            problems.push(format!(
                "little free space: {} of {}",
                human_mb(s.free_mb),
                human_mb(s.total_mb)
            ));
        }
        StorageRow {
            id: s.id.clone(),
            ip: s.ip.clone(),
            storage_port: s.storage_port,
            state: s.status.name(),
            version: s.version.clone(),
            heartbeat_age: (s.last_heart_beat_time > 0).then(|| now - s.last_heart_beat_time),
            total_mb: s.total_mb,
            free_mb: s.free_mb,
            uploads: (s.counts.success_upload, s.counts.total_upload),
            downloads: (s.counts.success_download, s.counts.total_download),
            last_synced: s.last_synced_timestamp,
            sync_delay: delay,
            sync_source: s.src_id.clone(),
            is_self,
            problems,
        }
    }
}

/// One group: the tracker's figures and its storages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReport {
    /// Group name.
    pub name: String,
    /// The tracker's group figures, when it answered them.
    pub stat: Option<GroupStat>,
    /// Its storages.
    pub storages: Vec<StorageRow>,
}

impl GroupReport {
    /// Free space uploads can still use (the group's free minus the
    /// reserve), when known.
    pub fn usable_free_mb(&self) -> Option<i64> {
        self.stat
            .as_ref()
            .map(|g| (g.free_mb - g.reserved_mb).max(0))
    }
}

/// The last probe of one port of a peer, from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    /// The port.
    pub port: u16,
    /// When (unix s).
    pub at: i64,
    /// Connect round trip when it answered.
    pub rtt: Option<Duration>,
    /// The OS error text when it did not.
    pub error: Option<String>,
}

/// What this node sees of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRow {
    /// The peer.
    pub ip: IpAddr,
    /// Its HTTP port's last probe (`None`: not probed yet).
    pub http: Option<PortView>,
    /// Its storage port's last probe.
    pub storage: Option<PortView>,
    /// `closed` or `open` (circuit breaker).
    pub breaker: &'static str,
    /// Answers relayed from it.
    pub proxied: u64,
    /// 302s naming it.
    pub redirected: u64,
    /// Requests that failed at it.
    pub failed: u64,
}

impl PeerRow {
    /// What is wrong with reaching it.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, p) in [("HTTP", &self.http), ("storage", &self.storage)] {
            if let Some(PortView {
                port,
                error: Some(e),
                ..
            }) = p
            {
                out.push(format!("{what} port {port} unreachable from here: {e}"));
            }
        }
        if self.breaker == "open" {
            out.push("circuit open (recent failures)".into());
        }
        out
    }
}

/// One forwarded or failed not-local request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// When (unix s).
    pub at: i64,
    /// The file.
    pub file_id: String,
    /// `redirect`, `proxy`, `not_found`, `failed`.
    pub outcome: &'static str,
    /// The peer.
    pub peer: Option<IpAddr>,
    /// The status answered.
    pub status: u16,
}

/// The tracker side of the report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrackerInfo {
    /// `tracker_server` entries.
    pub servers: Vec<String>,
    /// When a tracker last answered (unix s).
    pub refreshed_at: Option<i64>,
    /// The last refresh's error.
    pub last_error: Option<String>,
}

/// Everything the status page shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Now (unix s).
    pub now: i64,
    /// fdfs-httpd's version.
    pub version: String,
    /// This node's addresses.
    pub node: Vec<IpAddr>,
    /// `storage_sync_file_max_delay` in force.
    pub max_delay: u64,
    /// The tracker.
    pub tracker: TrackerInfo,
    /// The hosted groups.
    pub groups: Vec<GroupReport>,
    /// This node's view of its peers.
    pub peers: Vec<PeerRow>,
    /// The last lag events, newest first.
    pub events: Vec<EventRow>,
}

impl Report {
    /// Number of storage rows and peer rows with a problem.
    pub fn problem_count(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.storages)
            .filter(|s| !s.problems.is_empty())
            .count()
            + self
                .peers
                .iter()
                .filter(|p| !p.problems().is_empty())
                .count()
    }

    /// Every problem as (storage or peer address, what is wrong).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in self.groups.iter().flat_map(|g| &g.storages) {
            for p in &s.problems {
                out.push((s.ip.clone(), p.clone()));
            }
        }
        for p in &self.peers {
            for x in p.problems() {
                out.push((p.ip.to_string(), x));
            }
        }
        out
    }

    /// The report's fields as JSON members (no braces):
    /// `"cluster":{…},"reach":[…],"lag_events":[…]`.
    pub fn json_members(&self, o: &mut String) {
        o.push_str("\"cluster\":{\"now\":");
        let _ = write!(
            o,
            "{},\"storage_sync_file_max_delay\":{}",
            self.now, self.max_delay
        );
        o.push_str(",\"tracker\":{\"servers\":");
        str_list(o, self.tracker.servers.iter());
        o.push_str(",\"refreshed_at\":");
        opt_num(o, self.tracker.refreshed_at);
        o.push_str(",\"last_error\":");
        opt_str(o, self.tracker.last_error.as_deref());
        o.push_str("},\"problems\":");
        let _ = write!(o, "{}", self.problem_count());
        o.push_str(",\"groups\":[");
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("{\"name\":");
            str_lit(o, &g.name);
            match &g.stat {
                Some(s) => {
                    let _ = write!(
                        o,
                        ",\"total_mb\":{},\"free_mb\":{},\"reserved_mb\":{},\"storage_count\":{},\"readable_server_count\":{},\"writable_server_count\":{}",
                        s.total_mb,
                        s.free_mb,
                        s.reserved_mb,
                        s.storage_count,
                        s.readable_server_count,
                        s.writable_server_count
                    );
                }
                None => o.push_str(",\"total_mb\":null,\"free_mb\":null,\"reserved_mb\":null"),
            }
            o.push_str(",\"usable_free_mb\":");
            opt_num(o, g.usable_free_mb());
            o.push_str(",\"storages\":[");
            for (j, s) in g.storages.iter().enumerate() {
                if j > 0 {
                    o.push(',');
                }
                storage_json(o, s);
            }
            o.push_str("]}");
        }
        o.push_str("]},\"reach\":[");
        for (i, p) in self.peers.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{{\"ip\":\"{}\",\"http\":", p.ip);
            port_json(o, p.http.as_ref());
            o.push_str(",\"storage\":");
            port_json(o, p.storage.as_ref());
            let _ = write!(
                o,
                ",\"breaker\":\"{}\",\"proxied\":{},\"redirected\":{},\"failed\":{},\"problems\":",
                p.breaker, p.proxied, p.redirected, p.failed
            );
            str_list(o, p.problems().iter());
            o.push('}');
        }
        o.push_str("],\"lag_events\":[");
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{{\"at\":{},\"file_id\":", e.at);
            str_lit(o, &e.file_id);
            let _ = write!(o, ",\"outcome\":\"{}\",\"peer\":", e.outcome);
            opt_str(o, e.peer.map(|p| p.to_string()).as_deref());
            let _ = write!(o, ",\"status\":{}}}", e.status);
        }
        o.push(']');
    }
}

fn storage_json(o: &mut String, s: &StorageRow) {
    o.push_str("{\"id\":");
    str_lit(o, &s.id);
    o.push_str(",\"ip\":");
    str_lit(o, &s.ip);
    let _ = write!(
        o,
        ",\"storage_port\":{},\"state\":\"{}\",\"version\":",
        s.storage_port, s.state
    );
    str_lit(o, &s.version);
    o.push_str(",\"heartbeat_age\":");
    opt_num(o, s.heartbeat_age);
    let _ = write!(
        o,
        ",\"total_mb\":{},\"free_mb\":{},\"uploads\":{},\"uploads_total\":{},\"downloads\":{},\"downloads_total\":{},\"last_synced_timestamp\":{},\"sync_delay\":",
        s.total_mb, s.free_mb, s.uploads.0, s.uploads.1, s.downloads.0, s.downloads.1, s.last_synced
    );
    match s.sync_delay {
        SyncDelay::NothingToSync => o.push_str("null"),
        SyncDelay::NeverSynced => o.push_str("\"never\""),
        SyncDelay::Seconds(d) => {
            let _ = write!(o, "{d}");
        }
    }
    o.push_str(",\"sync_source\":");
    str_lit(o, &s.sync_source);
    let _ = write!(o, ",\"self\":{},\"problems\":", s.is_self);
    str_list(o, s.problems.iter());
    o.push('}');
}

fn port_json(o: &mut String, p: Option<&PortView>) {
    let Some(p) = p else {
        o.push_str("null");
        return;
    };
    let _ = write!(
        o,
        "{{\"port\":{},\"at\":{},\"ok\":{},\"rtt_ms\":",
        p.port,
        p.at,
        p.error.is_none()
    );
    match p.rtt {
        Some(d) => {
            let _ = write!(o, "{:.3}", d.as_secs_f64() * 1000.0);
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"error\":");
    opt_str(o, p.error.as_deref());
    o.push('}');
}

/// A JSON string literal; `<`, `>` and `&` escaped too so the text is safe
/// inside HTML.
pub fn str_lit(o: &mut String, s: &str) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if u32::from(c) < 0x20 || matches!(c, '<' | '>' | '&') => {
                let _ = write!(o, "\\u{:04x}", u32::from(c));
            }
            c => o.push(c),
        }
    }
    o.push('"');
}

fn str_list<'a>(o: &mut String, items: impl Iterator<Item = &'a String>) {
    o.push('[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            o.push(',');
        }
        str_lit(o, s);
    }
    o.push(']');
}

fn opt_num(o: &mut String, v: Option<i64>) {
    match v {
        Some(v) => {
            let _ = write!(o, "{v}");
        }
        None => o.push_str("null"),
    }
}

fn opt_str(o: &mut String, v: Option<&str>) {
    match v {
        Some(v) => str_lit(o, v),
        None => o.push_str("null"),
    }
}

/// `45 s`, `12 min`, `3.5 h`, `2.0 d`.
pub fn human_secs(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{:.1} h", s as f64 / 3600.0),
        s => format!("{:.1} d", s as f64 / 86400.0),
    }
}

/// `900 MB`, `79.7 GB`.
pub fn human_mb(mb: i64) -> String {
    if mb < 10_240 {
        format!("{mb} MB")
    } else {
        format!("{:.1} GB", mb as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn stat(ip: &str, status: StorageStatus) -> StorageStat {
        StorageStat {
            total_mb: 1000,
            free_mb: 500,
            ..StorageStat::new(ip, status)
        }
    }

    #[test]
    fn delay_as_fdfs_monitor() {
        let mut a = stat("10.0.0.1", StorageStatus::Active);
        let mut b = stat("10.0.0.2", StorageStatus::Active);
        let g = [a.clone(), b.clone()];
        assert_eq!(sync_delay(&g[0], &g), SyncDelay::NothingToSync);
        a.last_source_update = 1000;
        let g = [a.clone(), b.clone()];
        assert_eq!(sync_delay(&g[1], &g), SyncDelay::NeverSynced);
        assert_eq!(sync_delay(&g[0], &g), SyncDelay::NothingToSync);
        b.last_synced_timestamp = 400;
        let g = [a.clone(), b.clone()];
        assert_eq!(sync_delay(&g[1], &g), SyncDelay::Seconds(600));
        b.last_synced_timestamp = 1200;
        let g = [a, b];
        assert_eq!(sync_delay(&g[1], &g), SyncDelay::Seconds(0));
    }

    #[test]
    fn problems_marked() {
        let mut a = stat("10.0.0.1", StorageStatus::Active);
        a.last_source_update = 100_000;
        a.last_heart_beat_time = 990;
        let mut b = stat("10.0.0.2", StorageStatus::Offline);
        b.last_synced_timestamp = 1_000;
        b.free_mb = 50;
        let g = [a, b];
        let ra = StorageRow::new(&g[0], &g, 1000, 86400, true);
        assert!(ra.problems.is_empty(), "{:?}", ra.problems);
        assert_eq!(ra.heartbeat_age, Some(10));
        let rb = StorageRow::new(&g[1], &g, 1000, 600, false);
        assert_eq!(rb.problems.len(), 3, "{:?}", rb.problems);
        assert!(rb.problems[0].contains("OFFLINE"));
        assert!(rb.problems[1].contains("storage_sync_file_max_delay"));
        assert!(rb.problems[2].contains("free space"));
        assert_eq!(rb.heartbeat_age, None);
        let peer = PeerRow {
            ip: "10.0.0.2".parse().unwrap(),
            http: Some(PortView {
                port: 8888,
                at: 1,
                rtt: None,
                error: Some("Connection refused (os error 111)".into()),
            }),
            storage: Some(PortView {
                port: 23000,
                at: 1,
                rtt: Some(Duration::from_micros(250)),
                error: None,
            }),
            breaker: "closed",
            proxied: 0,
            redirected: 0,
            failed: 0,
        };
        assert_eq!(
            peer.problems(),
            ["HTTP port 8888 unreachable from here: Connection refused (os error 111)"]
        );
        let rep = Report {
            groups: vec![GroupReport {
                name: "group1".into(),
                stat: None,
                storages: vec![ra, rb],
            }],
            peers: vec![peer],
            ..Report::default()
        };
        assert_eq!(rep.problem_count(), 2);
        let mut j = String::from("{");
        rep.json_members(&mut j);
        j.push('}');
        assert!(j.contains("\"state\":\"OFFLINE\""), "{j}");
        assert!(j.contains("\"rtt_ms\":0.250"), "{j}");
        assert!(j.contains("\"usable_free_mb\":null"), "{j}");
    }

    #[test]
    fn json_strings_escaped() {
        let mut o = String::new();
        str_lit(&mut o, "a\"b\\c\n</script>&");
        assert_eq!(o, r#""a\"b\\c\u000a\u003c/script\u003e\u0026""#);
        assert_eq!(human_secs(59), "59 s");
        assert_eq!(human_secs(600), "10 min");
        assert_eq!(human_secs(7200), "2.0 h");
        assert_eq!(human_mb(79721), "77.9 GB");
    }
}
