//! `storage_ids.conf`: numeric storage IDs → addresses (docs/file-id.md §7).
//!
//! Line format: `<id> <group> <host>[,<host2>][:<port>] [rw=<mode>]`.
//! With two addresses they must be of different types (10.x, 172.16–31.x,
//! 192.168.x, other) and the inner one is moved first, as upstream's
//! `fdfs_check_and_format_ips` does. Hostnames are resolved while parsing
//! (the only I/O here; [`StorageIds::parse_with`] takes the resolver).

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;

use super::values::{parse_server_addr, ValueError};
use super::Diagnostic;

/// Largest storage ID (fits the 24 bits the file name can carry).
pub const MAX_STORAGE_ID: u32 = 16_777_215;
/// Longest FastDFS group name.
pub const MAX_GROUP_NAME_LEN: usize = 16;
/// Storage FastDFS port when the line has none.
pub const DEFAULT_STORAGE_PORT: u16 = 23000;

/// A storage's read/write role (`rw=`; only informative for HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RwMode {
    /// `both` / `all` (default).
    #[default]
    Both,
    /// `read` / `readonly`.
    Read,
    /// `write` / `writeonly`.
    Write,
    /// `none`.
    None,
}

impl RwMode {
    /// Parses the text after `rw=` (case-insensitive).
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "both" | "all" => Some(Self::Both),
            "read" | "readonly" => Some(Self::Read),
            "write" | "writeonly" => Some(Self::Write),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// One line of storage_ids.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageIdEntry {
    /// Numeric storage ID, 1..=16777215.
    pub id: u32,
    /// Group the storage belongs to.
    pub group: String,
    /// One or two addresses, inner (private) first; the module uses the first.
    pub hosts: Vec<IpAddr>,
    /// The storage's FastDFS port (not HTTP).
    pub port: u16,
    /// Read/write role.
    pub rw: RwMode,
}

/// The ID table, sorted by ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageIds {
    entries: Vec<StorageIdEntry>,
}

/// Why a storage_ids.conf line is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LineError {
    Fields,
    BadId(String),
    DuplicateId(u32, u32),
    GroupName(String),
    Address(ValueError),
    Unresolved(String),
    SameType(IpAddr, IpAddr),
    BadRw(String),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fields => {
                f.write_str("expected \"<id> <group_name> <host>[,<host2>][:<port>] [rw=<mode>]\"")
            }
            Self::BadId(s) => write!(
                f,
                "storage id \"{s}\" is invalid (decimal 1..{MAX_STORAGE_ID} without leading zeros)"
            ),
            Self::DuplicateId(id, line) => {
                write!(f, "storage id {id} already defined on line {line}")
            }
            Self::GroupName(g) => write!(
                f,
                "group name \"{g}\" is invalid (1..{MAX_GROUP_NAME_LEN} characters)"
            ),
            Self::Address(e) => write!(f, "address: {e}"),
            Self::Unresolved(h) => write!(f, "host \"{h}\" does not resolve"),
            Self::SameType(a, b) => write!(
                f,
                "addresses {a} and {b}: one must be an inner IP and the other an outer IP, \
                 or two different kinds of inner IP"
            ),
            Self::BadRw(s) => write!(
                f,
                "\"{s}\": expected rw=both|all|read|readonly|write|writeonly|none"
            ),
        }
    }
}

/// Upstream's address classes (`fdfs_get_ip_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpType {
    Private10,
    Private172,
    Private192,
    Outer,
}

fn ip_type(ip: IpAddr) -> IpType {
    match ip {
        IpAddr::V4(v4) => match v4.octets() {
            [10, ..] => IpType::Private10,
            [172, b, ..] if (16..=31).contains(&b) => IpType::Private172,
            [192, 168, ..] => IpType::Private192,
            _ => IpType::Outer,
        },
        IpAddr::V6(_) => IpType::Outer,
    }
}

/// Resolves a hostname with the system resolver (first address).
fn system_resolve(host: &str) -> Option<IpAddr> {
    (host, 0u16)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip())
}

fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>()
        .ok()
        .filter(|id| (1..=MAX_STORAGE_ID).contains(id))
}

impl StorageIds {
    /// Parses storage_ids.conf text; `origin` names the file in diagnostics.
    /// Hostnames are resolved with the system resolver. Every bad line is reported.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, Vec<Diagnostic>> {
        Self::parse_with(text, origin, &mut system_resolve)
    }

    /// [`StorageIds::parse`] with a caller-supplied hostname resolver.
    pub fn parse_with(
        text: &str,
        origin: &Path,
        resolve: &mut dyn FnMut(&str) -> Option<IpAddr>,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut entries: Vec<(StorageIdEntry, u32)> = Vec::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line, resolve) {
                Ok(e) => {
                    if let Some((_, first)) = entries.iter().find(|(x, _)| x.id == e.id) {
                        errors.push(Diagnostic::new(
                            origin,
                            Some(line_no),
                            LineError::DuplicateId(e.id, *first).to_string(),
                        ));
                    } else {
                        entries.push((e, line_no));
                    }
                }
                Err(e) => errors.push(Diagnostic::new(origin, Some(line_no), e.to_string())),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut entries: Vec<StorageIdEntry> = entries.into_iter().map(|(e, _)| e).collect();
        entries.sort_by_key(|e| e.id);
        Ok(Self { entries })
    }

    /// The entry for an ID.
    pub fn get(&self, id: u32) -> Option<&StorageIdEntry> {
        self.entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// All entries, by ascending ID.
    pub fn iter(&self) -> impl Iterator<Item = &StorageIdEntry> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_line(
    line: &str,
    resolve: &mut dyn FnMut(&str) -> Option<IpAddr>,
) -> Result<StorageIdEntry, LineError> {
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let (id, group, addr, rw) = match fields.as_slice() {
        [id, group, addr] => (*id, *group, *addr, None),
        [id, group, addr, rw] => (*id, *group, *addr, Some(*rw)),
        _ => return Err(LineError::Fields),
    };
    let id = parse_id(id).ok_or_else(|| LineError::BadId(id.to_owned()))?;
    if group.is_empty() || group.len() > MAX_GROUP_NAME_LEN {
        return Err(LineError::GroupName(group.to_owned()));
    }
    let rw = match rw {
        None => RwMode::Both,
        Some(f) => {
            let v = f
                .get(..3)
                .filter(|p| p.eq_ignore_ascii_case("rw="))
                .and_then(|_| f.get(3..))
                .ok_or_else(|| LineError::BadRw(f.to_owned()))?;
            RwMode::parse(v).ok_or_else(|| LineError::BadRw(f.to_owned()))?
        }
    };
    let sa = parse_server_addr(addr).map_err(LineError::Address)?;
    let mut hosts = Vec::with_capacity(sa.hosts.len());
    for h in &sa.hosts {
        let ip = match h.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => resolve(h).ok_or_else(|| LineError::Unresolved(h.clone()))?,
        };
        hosts.push(ip);
    }
    if let [a, b] = hosts.as_mut_slice() {
        let (ta, tb) = (ip_type(*a), ip_type(*b));
        if ta == tb {
            return Err(LineError::SameType(*a, *b));
        }
        if ta == IpType::Outer {
            std::mem::swap(a, b);
        }
    }
    Ok(StorageIdEntry {
        id,
        group: group.to_owned(),
        hosts,
        port: sa.port.unwrap_or(DEFAULT_STORAGE_PORT),
        rw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolver(h: &str) -> Option<IpAddr> {
        (h == "storage1.local").then(|| ip("10.0.0.9"))
    }

    fn parse(text: &str) -> Result<StorageIds, Vec<Diagnostic>> {
        StorageIds::parse_with(text, Path::new("/etc/fdfs/storage_ids.conf"), &mut resolver)
    }

    #[test]
    fn spec_example() {
        let ids = parse(
            "# comment\n\n100001   group1  192.168.0.196\n\
             100002   group1  192.168.0.197,47.98.10.7:23000\n\
             100003   group1  [2409:8a20:42d:2f40::ad8e]:23001  rw=none\n",
        )
        .unwrap();
        assert_eq!(ids.len(), 3);
        let e = ids.get(100001).unwrap();
        assert_eq!(
            (e.hosts.as_slice(), e.port, e.rw),
            (&[ip("192.168.0.196")][..], 23000, RwMode::Both)
        );
        let e = ids.get(100002).unwrap();
        assert_eq!(e.hosts, [ip("192.168.0.197"), ip("47.98.10.7")]);
        let e = ids.get(100003).unwrap();
        assert_eq!(e.hosts, [ip("2409:8a20:42d:2f40::ad8e")]);
        assert_eq!(
            (e.port, e.rw, e.group.as_str()),
            (23001, RwMode::None, "group1")
        );
        assert!(ids.get(100004).is_none());
    }

    #[test]
    fn reorders_inner_first() {
        let ids = parse("1 g 47.98.10.7,10.0.0.5\n2 g 10.0.0.5,192.168.1.1\n3 g 192.168.1.1,10.0.0.5\n4 g 2001:db8::1,172.16.0.1\n5 g [2001:db8::1],172.31.255.1:1\n").unwrap();
        assert_eq!(
            ids.get(1).unwrap().hosts,
            [ip("10.0.0.5"), ip("47.98.10.7")]
        );
        assert_eq!(
            ids.get(2).unwrap().hosts,
            [ip("10.0.0.5"), ip("192.168.1.1")]
        );
        assert_eq!(
            ids.get(3).unwrap().hosts,
            [ip("192.168.1.1"), ip("10.0.0.5")]
        );
        assert_eq!(
            ids.get(4).unwrap().hosts,
            [ip("172.16.0.1"), ip("2001:db8::1")]
        );
        assert_eq!(
            ids.get(5).unwrap().hosts,
            [ip("172.31.255.1"), ip("2001:db8::1")]
        );
        assert_eq!(ids.get(5).unwrap().port, 1);
    }

    #[test]
    fn rw_modes() {
        for (txt, mode) in [
            ("both", RwMode::Both),
            ("ALL", RwMode::Both),
            ("read", RwMode::Read),
            ("ReadOnly", RwMode::Read),
            ("write", RwMode::Write),
            ("writeonly", RwMode::Write),
            ("none", RwMode::None),
        ] {
            let ids = parse(&format!("7 g 10.0.0.1 rw={txt}\n")).unwrap();
            assert_eq!(ids.get(7).unwrap().rw, mode, "{txt}");
        }
        let ids = parse("7 g 10.0.0.1 RW=read\n").unwrap();
        assert_eq!(ids.get(7).unwrap().rw, RwMode::Read);
        for bad in ["rw=x", "rw=", "mode=read", "r"] {
            assert!(parse(&format!("7 g 10.0.0.1 {bad}\n")).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames_resolve() {
        let ids = parse("8 g storage1.local:23001\n").unwrap();
        assert_eq!(ids.get(8).unwrap().hosts, [ip("10.0.0.9")]);
        let err = parse("8 g nowhere.invalid\n").unwrap_err();
        assert!(err[0].message.contains("does not resolve"));
    }

    #[test]
    fn errors_name_every_bad_line() {
        let err = parse(
            "100001 group1 10.0.0.1\n100001 group1 10.0.0.2\n0100 g 10.0.0.1\n0 g 1.2.3.4\n\
             16777216 g 1.2.3.4\nabc g 1.2.3.4\n9 g\n9 g 1.2.3.4 rw=read extra\n\
             10 g 10.0.0.1,10.0.0.2\n11 g 1.1.1.1,8.8.8.8\n12 g 1.2.3.4:99999\n\
             13 group_name_too_long_ 1.2.3.4\n14 g a,b,c\n",
        )
        .unwrap_err();
        let lines: Vec<_> = err.iter().map(|d| d.line.unwrap()).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        assert!(
            err[0].message.contains("already defined on line 1"),
            "{}",
            err[0]
        );
        assert!(err[1].message.contains("invalid"));
        assert!(err[8].message.contains("inner IP"));
        assert_eq!(
            err[0].to_string(),
            "/etc/fdfs/storage_ids.conf:2: storage id 100001 already defined on line 1"
        );
    }

    #[test]
    fn sorted_iteration_and_lookup() {
        let ids =
            parse("300 g 10.0.0.3\n100 g 10.0.0.1\n200 g 10.0.0.2\n16777215 g 10.0.0.4\n").unwrap();
        let order: Vec<u32> = ids.iter().map(|e| e.id).collect();
        assert_eq!(order, [100, 200, 300, MAX_STORAGE_ID]);
        assert!(ids.get(200).is_some());
        assert!(!ids.is_empty());
        assert!(parse("").unwrap().is_empty());
    }
}
