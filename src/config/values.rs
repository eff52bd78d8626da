//! Typed configuration values: pure parsers for booleans, integers, sizes,
//! durations, addresses and address ranges (docs/config-keys.md §5, rows
//! "Booleans", "Integers", "Sizes"; the `tracker_server` row of §1).
//!
//! Deliberate deviations from libfastcommon: a boolean that is not one of
//! `true/yes/on/1/false/no/off/0` and an integer with trailing junk are
//! errors instead of silently reading `false` / the leading digits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// Why a configuration value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// The value is empty where one is required.
    Empty,
    /// Not one of the accepted boolean spellings.
    NotBoolean,
    /// Not a decimal integer.
    NotInteger,
    /// An integer too large to represent.
    TooLarge,
    /// An integer outside the accepted range.
    OutOfRange {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Not a size (`16384`, `16K`, `1MB`).
    NotSize,
    /// Not a duration (`30`, `30s`, `500ms`, `2m`, `1h`).
    NotDuration,
    /// Not a rate (`100/s` or `100`).
    NotRate,
    /// Not an `IP:PORT` socket address (or a bare port).
    NotSocketAddr,
    /// Not an IPv4 or IPv6 address.
    NotIpAddr,
    /// Not a `host[,host2][:port]` server address.
    NotServerAddr,
    /// More than two comma-separated hosts in a server address.
    TooManyHosts,
    /// A CIDR range that does not parse.
    Cidr(CidrError),
    /// A keyword outside the accepted set.
    NotOneOf(&'static [&'static str]),
    /// A list mentions the same item twice.
    Duplicate(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty value"),
            Self::NotBoolean => {
                f.write_str("not a boolean (expected true/yes/on/1 or false/no/off/0)")
            }
            Self::NotInteger => f.write_str("not an integer"),
            Self::TooLarge => f.write_str("integer too large"),
            Self::OutOfRange { min, max } => {
                if *max == i64::MAX {
                    write!(f, "must be at least {min}")
                } else {
                    write!(f, "must be between {min} and {max}")
                }
            }
            Self::NotSize => f.write_str("not a size (e.g. 16384, 16K, 1M)"),
            Self::NotDuration => f.write_str("not a duration (e.g. 30, 30s, 500ms, 2m, 1h)"),
            Self::NotRate => f.write_str("not a rate (e.g. 100/s or 100)"),
            Self::NotSocketAddr => {
                f.write_str("not an address (expected IP:PORT, [IPv6]:PORT or PORT)")
            }
            Self::NotIpAddr => f.write_str("not an IP address"),
            Self::NotServerAddr => f.write_str(
                "not a server address (expected host[:port], [IPv6]:port or ip1,ip2:port)",
            ),
            Self::TooManyHosts => f.write_str("at most two comma-separated hosts"),
            Self::Cidr(e) => e.fmt(f),
            Self::NotOneOf(allowed) => write!(f, "expected one of: {}", allowed.join(", ")),
            Self::Duplicate(item) => write!(f, "{item} is listed twice"),
        }
    }
}

/// Boolean per §5, but strict: anything outside the two spelling sets is an error.
pub(crate) fn parse_bool(s: &str) -> Result<bool, ValueError> {
    let s = s.trim();
    const TRUE: [&str; 4] = ["true", "yes", "on", "1"];
    const FALSE: [&str; 4] = ["false", "no", "off", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Ok(true)
    } else if FALSE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Ok(false)
    } else {
        Err(ValueError::NotBoolean)
    }
}

/// Decimal integer, optional sign, surrounding spaces tolerated, nothing else.
pub(crate) fn parse_int(s: &str) -> Result<i64, ValueError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotInteger);
    }
    s.parse::<i64>().map_err(|_| ValueError::TooLarge)
}

/// Integer within `min..=max`.
pub(crate) fn parse_int_in(s: &str, min: i64, max: i64) -> Result<i64, ValueError> {
    let v = parse_int(s)?;
    if v < min || v > max {
        return Err(ValueError::OutOfRange { min, max });
    }
    Ok(v)
}

/// Splits leading ASCII digits from the rest (which is trimmed).
fn split_number(s: &str) -> Option<(u64, &str)> {
    let s = s.trim();
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, rest) = s.split_at(end);
    if num.is_empty() {
        return None;
    }
    Some((num.parse().ok()?, rest.trim()))
}

/// Size per §5: integer, optional spaces, optional `K/M/G/T` (powers of
/// 1024, any case), optional `B`; no unit means bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, ValueError> {
    let (n, unit) = split_number(s).ok_or(ValueError::NotSize)?;
    let unit = unit.to_ascii_uppercase();
    let unit = unit.strip_suffix('B').unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(ValueError::NotSize),
    };
    n.checked_mul(1u64 << shift).ok_or(ValueError::NotSize)
}

/// Duration: integer with optional unit `ms`, `s`, `m`, `h` (no unit: seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let (n, unit) = split_number(s).ok_or(ValueError::NotDuration)?;
    let secs = |mul: u64| {
        n.checked_mul(mul)
            .map(Duration::from_secs)
            .ok_or(ValueError::NotDuration)
    };
    match unit.to_ascii_lowercase().as_str() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        _ => Err(ValueError::NotDuration),
    }
}

/// Rate `N/s` or `N`, N ≥ 1.
pub(crate) fn parse_rate(s: &str) -> Result<u32, ValueError> {
    let s = s.trim();
    let n = s.strip_suffix("/s").unwrap_or(s).trim();
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotRate);
    }
    let v = parse_int_in(n, 1, i64::from(u32::MAX))?;
    u32::try_from(v).map_err(|_| ValueError::NotRate)
}

/// Listener address `IP:PORT`, `[IPv6]:PORT`, or a bare `PORT` (all IPv4 interfaces).
pub(crate) fn parse_socket_addr(s: &str) -> Result<SocketAddr, ValueError> {
    let s = s.trim();
    if let Ok(a) = SocketAddr::from_str(s) {
        return Ok(a);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port = parse_int_in(s, 0, 65535)?;
        let port = u16::try_from(port).map_err(|_| ValueError::NotSocketAddr)?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    Err(ValueError::NotSocketAddr)
}

/// IP address, IPv6 optionally in brackets.
pub(crate) fn parse_ip(s: &str) -> Result<IpAddr, ValueError> {
    let s = s.trim();
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    IpAddr::from_str(inner).map_err(|_| ValueError::NotIpAddr)
}

/// Splits a comma list, trimming items and dropping empty ones.
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

/// A server address as written in `tracker_server` / storage_ids.conf:
/// one or two hosts (comma-separated) and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddr {
    /// Hosts as written, IPv6 without brackets; one or two.
    pub hosts: Vec<String>,
    /// Port if written.
    pub port: Option<u16>,
}

/// Parses `host[,host2][:port]`, with `[IPv6]` hosts; a bare IPv6 address
/// (more than one `:` and no brackets) is accepted without a port.
pub(crate) fn parse_server_addr(s: &str) -> Result<ServerAddr, ValueError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ValueError::Empty);
    }
    let (hosts_part, port) = split_port(s)?;
    let mut hosts = Vec::new();
    for h in hosts_part.split(',') {
        let h = h.trim();
        let h = match h.strip_prefix('[') {
            Some(r) => {
                let inner = r.strip_suffix(']').ok_or(ValueError::NotServerAddr)?;
                if inner.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(ValueError::NotServerAddr);
                }
                inner
            }
            None => h,
        };
        if h.is_empty() || h.contains(['[', ']', ' ', '\t', '/']) {
            return Err(ValueError::NotServerAddr);
        }
        if h.contains(':') && h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ValueError::NotServerAddr);
        }
        hosts.push(h.to_owned());
    }
    if hosts.len() > 2 {
        return Err(ValueError::TooManyHosts);
    }
    Ok(ServerAddr { hosts, port })
}

/// Splits an optional trailing `:port` off a host list.
fn split_port(s: &str) -> Result<(&str, Option<u16>), ValueError> {
    let port_of = |p: &str| -> Result<u16, ValueError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::NotServerAddr);
        }
        let v = parse_int_in(p, 1, 65535)?;
        u16::try_from(v).map_err(|_| ValueError::NotServerAddr)
    };
    // The port, if any, follows the last host.
    let last = s.rsplit(',').next().unwrap_or(s);
    let base = s.len() - last.len();
    let at = |i: usize| -> Result<(&str, Option<u16>), ValueError> {
        let (h, p) = s.split_at(base + i);
        Ok((h, Some(port_of(p.get(1..).unwrap_or(""))?)))
    };
    if last.starts_with('[') {
        if last.ends_with(']') {
            return Ok((s, None));
        }
        return match last.rfind("]:") {
            Some(i) => at(i + 1),
            None => Err(ValueError::NotServerAddr),
        };
    }
    // Without brackets a single `:` separates the port; more mean bare IPv6.
    match last.matches(':').count() {
        1 => at(last.rfind(':').ok_or(ValueError::NotServerAddr)?),
        _ => Ok((s, None)),
    }
}

/// An IP address range `ADDR/PREFIX` (a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR range does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// The address part is not an IP address.
    BadAddress,
    /// The prefix length is not a number or too long for the address family.
    BadPrefix,
    /// Bits beyond the prefix are set (`10.0.0.1/8`).
    HostBitsSet,
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadAddress => "not an IP address or CIDR range",
            Self::BadPrefix => "bad prefix length",
            Self::HostBitsSet => "address has bits set beyond the prefix length",
        })
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// A range from a network address and prefix length.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, CidrError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(CidrError::BadPrefix);
        }
        let c = Self { addr, prefix };
        if c.mask(addr) != addr {
            return Err(CidrError::HostBitsSet);
        }
        Ok(c)
    }

    /// Network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Clears the bits of `ip` beyond the prefix (same family assumed).
    fn mask(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((bits & m).into())
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let m = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                IpAddr::V6((bits & m).into())
            }
        }
    }

    /// Whether `ip` is in the range; IPv4-mapped IPv6 addresses match IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.mask(ip) == self.addr
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = parse_ip(a).map_err(|_| CidrError::BadAddress)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| CidrError::BadPrefix)?
            }
            Some(_) => return Err(CidrError::BadPrefix),
        };
        Self::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "Yes", "on", "ON", "1", " true "] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "No", "off", "OFF", "0"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["ture", "2", "enable", "", "true # x", "01", "y"] {
            assert_eq!(parse_bool(bad), Err(ValueError::NotBoolean), "{bad}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int(" 42 "), Ok(42));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("-3"), Ok(-3));
        assert_eq!(parse_int(""), Err(ValueError::Empty));
        for bad in ["2 # x", "12abc", "abc", "-", "1.5", "0x10", "1 2"] {
            assert_eq!(parse_int(bad), Err(ValueError::NotInteger), "{bad}");
        }
        assert_eq!(parse_int("99999999999999999999"), Err(ValueError::TooLarge));
        assert_eq!(parse_int_in("5", 1, 10), Ok(5));
        assert_eq!(
            parse_int_in("0", 1, 10),
            Err(ValueError::OutOfRange { min: 1, max: 10 })
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Ok(16384));
        assert_eq!(parse_size("16K"), Ok(16384));
        assert_eq!(parse_size("16 kb"), Ok(16384));
        assert_eq!(parse_size("256KB"), Ok(256 * 1024));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("100B"), Ok(100));
        for bad in [
            "",
            "K",
            "16X",
            "16KK",
            "-1",
            "99999999999999999999T",
            "1.5K",
        ] {
            assert_eq!(parse_size(bad), Err(ValueError::NotSize), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1 h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "10x", "-1", "1.5s", "18446744073709551615h"] {
            assert_eq!(parse_duration(bad), Err(ValueError::NotDuration), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("100/s"), Ok(100));
        assert_eq!(parse_rate("100"), Ok(100));
        assert_eq!(parse_rate(" 5 /s"), Ok(5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("10/m").is_err());
        assert!(parse_rate("abc").is_err());
        assert!(parse_rate("").is_err());
        assert!(parse_rate("99999999999").is_err());
    }

    #[test]
    fn socket_addrs() {
        assert_eq!(
            parse_socket_addr("127.0.0.1:8888"),
            Ok("127.0.0.1:8888".parse().unwrap())
        );
        assert_eq!(
            parse_socket_addr("[::1]:80"),
            Ok("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            parse_socket_addr("8080"),
            Ok("0.0.0.0:8080".parse().unwrap())
        );
        for bad in ["", "127.0.0.1", "host:80", "1.2.3.4:99999", "::1:80"] {
            assert_eq!(
                parse_socket_addr(bad),
                Err(ValueError::NotSocketAddr),
                "{bad}"
            );
        }
        assert_eq!(
            parse_socket_addr("70000"),
            Err(ValueError::OutOfRange { min: 0, max: 65535 })
        );
    }

    #[test]
    fn ips() {
        assert_eq!(parse_ip("10.0.0.1"), Ok("10.0.0.1".parse().unwrap()));
        assert_eq!(parse_ip("[::1]"), Ok("::1".parse().unwrap()));
        assert_eq!(parse_ip("fe80::1"), Ok("fe80::1".parse().unwrap()));
        assert_eq!(parse_ip("host"), Err(ValueError::NotIpAddr));
        assert_eq!(split_list(" a, ,b ,").collect::<Vec<_>>(), ["a", "b"]);
    }

    fn sa(hosts: &[&str], port: Option<u16>) -> ServerAddr {
        ServerAddr {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            port,
        }
    }

    #[test]
    fn server_addrs() {
        let p = parse_server_addr;
        assert_eq!(p("127.0.0.4:22122"), Ok(sa(&["127.0.0.4"], Some(22122))));
        assert_eq!(p("tracker"), Ok(sa(&["tracker"], None)));
        assert_eq!(
            p("tracker.example:1"),
            Ok(sa(&["tracker.example"], Some(1)))
        );
        assert_eq!(
            p("10.0.0.1,47.98.10.7:23000"),
            Ok(sa(&["10.0.0.1", "47.98.10.7"], Some(23000)))
        );
        assert_eq!(p("[::1]:22122"), Ok(sa(&["::1"], Some(22122))));
        assert_eq!(p("[::1]"), Ok(sa(&["::1"], None)));
        assert_eq!(p("2409:8a20::ad8e"), Ok(sa(&["2409:8a20::ad8e"], None)));
        assert_eq!(
            p("[fd00::1],[2409::2]:23001"),
            Ok(sa(&["fd00::1", "2409::2"], Some(23001)))
        );
        assert_eq!(
            p("10.0.0.1,[2409::2]"),
            Ok(sa(&["10.0.0.1", "2409::2"], None))
        );
        assert_eq!(p(""), Err(ValueError::Empty));
        assert_eq!(p("a,b,c"), Err(ValueError::TooManyHosts));
        for bad in [
            "h:",
            "h:x",
            "h:0",
            "h:70000",
            "[::1",
            "[host]:1",
            "a,,b",
            "[::1]x",
            "a b",
            "[::1]:1,h",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let h: Cidr = "::1/128".parse().unwrap();
        assert!(h.contains("::1".parse().unwrap()));
        assert!(!h.contains("::2".parse().unwrap()));
        let bare: Cidr = "192.168.1.5".parse().unwrap();
        assert_eq!(bare.prefix_len(), 32);
        assert_eq!(bare.to_string(), "192.168.1.5/32");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains("2001:db8::1".parse().unwrap()));
        assert_eq!("[fd00::]/8".parse::<Cidr>().map(|c| c.prefix_len()), Ok(8));
        assert_eq!("10.0.0.1/8".parse::<Cidr>(), Err(CidrError::HostBitsSet));
        assert_eq!("10.0.0.0/33".parse::<Cidr>(), Err(CidrError::BadPrefix));
        assert_eq!("::/129".parse::<Cidr>(), Err(CidrError::BadPrefix));
        assert_eq!("10.0.0.0/".parse::<Cidr>(), Err(CidrError::BadPrefix));
        assert_eq!("10.0.0.0/x".parse::<Cidr>(), Err(CidrError::BadPrefix));
        assert_eq!("10.0.0.0/999".parse::<Cidr>(), Err(CidrError::BadPrefix));
        assert_eq!("nope/8".parse::<Cidr>(), Err(CidrError::BadAddress));
    }
}
