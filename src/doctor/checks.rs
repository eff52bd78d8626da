//! The doctor's verdicts (docs/operations.md "doctor"): from what a probe
//! found to one line with `ok` / `warn` / `FAIL` and what to do. Pure.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use crate::net::canonical;
use crate::proto::{ProtoError, StorageStat, StorageStatus};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Fine.
    Ok,
    /// Works, but something needs a look.
    Warn,
    /// Broken.
    Fail,
}

impl Level {
    /// `ok`, `warn`, `FAIL`.
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The verdict.
    pub level: Level,
    /// What was checked (`tracker 10.0.0.4:22122`).
    pub what: String,
    /// What was found.
    pub found: String,
    /// What to do (warn and FAIL).
    pub hint: Option<String>,
}

impl Check {
    /// A check without a hint.
    pub fn new(level: Level, what: impl Into<String>, found: impl Into<String>) -> Check {
        Check {
            level,
            what: what.into(),
            found: found.into(),
            hint: None,
        }
    }

    /// The same check with what to do.
    pub fn hint(mut self, h: impl Into<String>) -> Check {
        self.hint = Some(h.into());
        self
    }
}

impl fmt::Display for Check {
    /// `FAIL storage port 10.0.0.3:23000: Connection refused (os error 111) — nothing listens …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4} {}: {}", self.level.label(), self.what, self.found)?;
        if let Some(h) = &self.hint {
            write!(f, " — {h}")?;
        }
        Ok(())
    }
}

/// The exit status: 0 all ok, 1 with warnings, 2 with failures.
pub fn exit_code(checks: &[Check]) -> u8 {
    match checks.iter().map(|c| c.level).max() {
        Some(Level::Fail) => 2,
        Some(Level::Warn) => 1,
        _ => 0,
    }
}

/// Which daemon a port belongs to, for the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// A tracker (`fdfs_trackerd`).
    Tracker,
    /// A storage's FastDFS port (`fdfs_storaged`).
    Storage,
    /// A peer's HTTP front (fdfs-httpd or nginx).
    Http,
}

impl PortKind {
    fn daemon(self) -> &'static str {
        match self {
            PortKind::Tracker => "fdfs_trackerd",
            PortKind::Storage => "fdfs_storaged",
            PortKind::Http => "its HTTP server (fdfs-httpd)",
        }
    }
}

/// What a failed connect means to an operator.
pub fn connect_advice(kind: io::ErrorKind, raw: Option<i32>, port: u16, pk: PortKind) -> String {
    const ECONNREFUSED: i32 = 111;
    const ENETUNREACH: i32 = 101;
    const EHOSTUNREACH: i32 = 113;
    const ETIMEDOUT: i32 = 110;
    match (kind, raw) {
        (io::ErrorKind::ConnectionRefused, _) | (_, Some(ECONNREFUSED)) => format!(
            "nothing listens on {port}: is {} running there?",
            pk.daemon()
        ),
        (_, Some(EHOSTUNREACH | ENETUNREACH)) => {
            format!("no route to host: a firewall between the nodes? open {port}/tcp, check routes")
        }
        (io::ErrorKind::TimedOut, _) | (_, Some(ETIMEDOUT)) => format!(
            "no answer within connect_timeout: a firewall dropping packets? open {port}/tcp"
        ),
        _ => format!("check that {} runs and {port}/tcp is open", pk.daemon()),
    }
}

/// The verdict on one TCP connect to `addr` (`Ok(rtt ms)` or the error).
pub fn port_verdict(what: String, port: u16, pk: PortKind, res: &Result<f64, io::Error>) -> Check {
    match res {
        Ok(ms) => Check::new(Level::Ok, what, format!("answers ({ms:.1} ms)")),
        Err(e) => Check::new(Level::Fail, what, e.to_string()).hint(connect_advice(
            e.kind(),
            e.raw_os_error(),
            port,
            pk,
        )),
    }
}

/// A store path: readable, `data/` present, how many sub-directories
/// (`expected`: the tracker's `subdir_count_per_path` when known).
pub fn store_path(
    what: String,
    path: &Path,
    listing: Result<usize, io::Error>,
    expected: Option<i64>,
) -> Check {
    let data = path.join("data");
    match listing {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Check::new(
            Level::Fail,
            what,
            format!("{} does not exist", data.display()),
        )
        .hint("store_pathN must be the storage's store path (the directory holding data/)"),
        Err(e) => Check::new(
            Level::Fail,
            what,
            format!("{} cannot be read: {e}", data.display()),
        )
        .hint("run fdfs-httpd as a user that can read the store (the storage's user or group)"),
        Ok(0) => Check::new(
            Level::Fail,
            what,
            format!("{} has no 00..FF sub-directories", data.display()),
        )
        .hint("has fdfs_storaged ever started on this store path?"),
        Ok(n) => match expected {
            Some(x) if i64::try_from(n).ok() != Some(x) => Check::new(
                Level::Warn,
                what,
                format!("{}: {n} sub-directories, the group has {x}", data.display()),
            )
            .hint("is this the store path of this group's storage?"),
            _ => Check::new(
                Level::Ok,
                what,
                format!("{}: readable, {n} sub-directories", data.display()),
            ),
        },
    }
}

/// The storage of `list` that is this node (by any of `local`).
pub fn find_self<'a>(list: &'a [StorageStat], local: &[IpAddr]) -> Option<&'a StorageStat> {
    list.iter().find(|s| {
        s.ip.parse::<IpAddr>()
            .is_ok_and(|ip| local.iter().any(|l| canonical(*l) == canonical(ip)))
    })
}

/// A tracker's answer for `group`: reachable, knows the group, lists this
/// node and in which state.
pub fn tracker(
    what: &str,
    group: &str,
    res: &Result<Vec<StorageStat>, ProtoError>,
    local: &[IpAddr],
    port: u16,
) -> Vec<Check> {
    let list = match res {
        Ok(l) => l,
        Err(ProtoError::Status(2)) => {
            return vec![Check::new(
                Level::Fail,
                what,
                format!("does not know {group}"),
            )
            .hint(format!(
                "no storage of {group} reports to this tracker: check group_name and tracker_server in storage.conf"
            ))]
        }
        Err(ProtoError::Io(e)) => {
            return vec![Check::new(Level::Fail, what, e.to_string()).hint(connect_advice(
                e.kind(),
                e.raw_os_error(),
                port,
                PortKind::Tracker,
            ))]
        }
        Err(ProtoError::Timeout) => {
            return vec![Check::new(Level::Fail, what, "timed out").hint(connect_advice(
                io::ErrorKind::TimedOut,
                None,
                port,
                PortKind::Tracker,
            ))]
        }
        Err(e) => {
            return vec![Check::new(Level::Fail, what, e.to_string())
                .hint("is this a FastDFS tracker (6.13 or later)?")]
        }
    };
    let active = list
        .iter()
        .filter(|s| s.status == StorageStatus::Active)
        .count();
    let mut out = vec![Check::new(
        Level::Ok,
        what,
        format!("knows {group}: {} storage(s), {active} ACTIVE", list.len()),
    )];
    let ips: Vec<String> = local.iter().map(ToString::to_string).collect();
    let me = format!("{what} lists this node");
    match find_self(list, local) {
        None => out.push(
            Check::new(
                Level::Fail,
                me,
                format!(
                    "none of this node's addresses ({}) is listed (the tracker lists {})",
                    ips.join(", "),
                    list.iter()
                        .map(|s| s.ip.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .hint("set local_ip_addrs to the address the storage registers with (bind_addr), or run on the storage node"),
        ),
        Some(s) if s.status == StorageStatus::Active => out.push(Check::new(
            Level::Ok,
            me,
            format!("known as {} (id {}), ACTIVE", s.ip, s.id),
        )),
        Some(s) => out.push(
            Check::new(
                Level::Fail,
                me,
                format!("known as {} (id {}), {}", s.ip, s.id, s.status.name()),
            )
            .hint(state_advice(s.status)),
        ),
    }
    out
}

/// What a storage state other than ACTIVE asks of the operator.
pub fn state_advice(s: StorageStatus) -> &'static str {
    match s {
        StorageStatus::Offline => {
            "its fdfs_storaged does not heartbeat: start it, or check the tracker port 22122/tcp from it"
        }
        StorageStatus::WaitSync | StorageStatus::Syncing | StorageStatus::Init => {
            "the first sync is not done: check storaged.log on it and that the storage ports (23000/tcp) are open between the storages"
        }
        StorageStatus::Deleted => "removed from the group (fdfs_monitor … delete): re-add it or drop it from the config",
        _ => "check storaged.log on it",
    }
}

/// A peer storage's state as the tracker lists it.
pub fn peer_state(what: String, s: &StorageStat) -> Check {
    if s.status == StorageStatus::Active {
        Check::new(Level::Ok, what, "ACTIVE")
    } else {
        Check::new(Level::Fail, what, s.status.name()).hint(state_advice(s.status))
    }
}

/// Clock offset against the tracker, estimated from the heartbeats it
/// stamps with its own clock: at `now` (this clock) the freshest ACTIVE
/// heartbeat should be between 0 and `heart_beat_interval` old.
pub fn clock(now: i64, list: &[StorageStat]) -> Check {
    let what = "clock vs tracker";
    let Some(age) = list
        .iter()
        .filter(|s| s.status == StorageStatus::Active && s.last_heart_beat_time > 0)
        .map(|s| now - s.last_heart_beat_time)
        .min()
    else {
        return Check::new(
            Level::Warn,
            what,
            "no ACTIVE storage heartbeat to compare with",
        )
        .hint("start the storages, then run doctor again");
    };
    if age < -2 {
        Check::new(
            Level::Warn,
            what,
            format!("this clock is about {} s behind the tracker's", -age),
        )
        .hint("sync clocks (chrony/NTP): anti-steal timestamps and the sync window depend on it")
    } else if age > 90 {
        Check::new(
            Level::Warn,
            what,
            format!("the freshest heartbeat is {age} s old by this clock: this clock may be ahead of the tracker's"),
        )
        .hint("sync clocks (chrony/NTP): anti-steal timestamps and the sync window depend on it")
    } else {
        Check::new(
            Level::Ok,
            what,
            format!("within a heartbeat (freshest heartbeat {age} s old)"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ip: &str, status: StorageStatus, hb: i64) -> StorageStat {
        StorageStat {
            last_heart_beat_time: hb,
            ..StorageStat::new(ip, status)
        }
    }

    #[test]
    fn exit_codes() {
        let ok = Check::new(Level::Ok, "a", "b");
        let warn = Check::new(Level::Warn, "a", "b");
        let fail = Check::new(Level::Fail, "a", "b").hint("do x");
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
        assert_eq!(exit_code(&[ok.clone(), warn.clone()]), 1);
        assert_eq!(exit_code(&[warn, fail.clone(), ok]), 2);
        assert_eq!(fail.to_string(), "FAIL a: b — do x");
    }

    #[test]
    fn connect_errors_in_operator_terms() {
        let refused = io::Error::from_raw_os_error(111);
        let c = port_verdict(
            "storage port 10.0.0.3:23000".into(),
            23000,
            PortKind::Storage,
            &Err(refused),
        );
        assert_eq!(c.level, Level::Fail);
        assert_eq!(
            c.to_string(),
            "FAIL storage port 10.0.0.3:23000: Connection refused (os error 111) — nothing listens on 23000: is fdfs_storaged running there?"
        );
        let unreach = io::Error::from_raw_os_error(113);
        let c = port_verdict("HTTP port".into(), 8888, PortKind::Http, &Err(unreach));
        assert!(c.found.contains("No route to host"), "{c}");
        assert!(c.hint.as_deref().unwrap().contains("open 8888/tcp"));
        assert!(
            connect_advice(io::ErrorKind::TimedOut, None, 23000, PortKind::Storage)
                .contains("open 23000/tcp")
        );
        assert_eq!(
            port_verdict("x".into(), 1, PortKind::Http, &Ok(0.31)).to_string(),
            "ok   x: answers (0.3 ms)"
        );
    }

    #[test]
    fn tracker_lists_this_node() {
        let me: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap()];
        let list = vec![
            stat("10.0.0.2", StorageStatus::Active, 100),
            stat("10.0.0.3", StorageStatus::Offline, 50),
        ];
        let c = tracker("tracker t", "group1", &Ok(list.clone()), &me, 22122);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].found, "knows group1: 2 storage(s), 1 ACTIVE");
        assert_eq!(c[1].level, Level::Ok);
        let other: Vec<IpAddr> = vec!["10.9.9.9".parse().unwrap()];
        let c = tracker("tracker t", "group1", &Ok(list.clone()), &other, 22122);
        assert_eq!(c[1].level, Level::Fail);
        assert!(c[1].found.contains("10.0.0.2, 10.0.0.3"));
        let me3: Vec<IpAddr> = vec!["10.0.0.3".parse().unwrap()];
        let c = tracker("tracker t", "group1", &Ok(list), &me3, 22122);
        assert_eq!(
            (c[1].level, c[1].found.ends_with("OFFLINE")),
            (Level::Fail, true)
        );
        let c = tracker(
            "tracker t",
            "group9",
            &Err(ProtoError::Status(2)),
            &me,
            22122,
        );
        assert!(c[0].found.contains("does not know group9"));
        let c = tracker(
            "tracker t",
            "group1",
            &Err(ProtoError::Io(io::Error::from_raw_os_error(111).into())),
            &me,
            22122,
        );
        assert!(c[0].hint.as_deref().unwrap().contains("fdfs_trackerd"));
    }

    #[test]
    fn clock_estimate() {
        let l = [
            stat("a", StorageStatus::Active, 990),
            stat("b", StorageStatus::Offline, 0),
        ];
        assert_eq!(clock(1000, &l).level, Level::Ok);
        assert_eq!(clock(980, &l).level, Level::Warn);
        assert!(clock(980, &l).found.contains("10 s behind"));
        assert_eq!(clock(1200, &l).level, Level::Warn);
        assert_eq!(clock(1000, &l[1..]).level, Level::Warn);
    }

    #[test]
    fn store_path_verdicts() {
        let p = Path::new("/s");
        let nf = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(store_path("sp".into(), p, Err(nf), None).level, Level::Fail);
        assert_eq!(store_path("sp".into(), p, Ok(0), None).level, Level::Fail);
        assert_eq!(
            store_path("sp".into(), p, Ok(256), Some(256)).level,
            Level::Ok
        );
        assert_eq!(
            store_path("sp".into(), p, Ok(16), Some(256)).level,
            Level::Warn
        );
        assert_eq!(store_path("sp".into(), p, Ok(256), None).level, Level::Ok);
    }
}
