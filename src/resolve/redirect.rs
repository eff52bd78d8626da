//! The 302 target (docs/module-behaviour.md §8.1), with the intended
//! corrections: a clean response (`Content-Length: 0`), IPv6 in brackets,
//! configurable scheme/port, no 256-byte truncation.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// Builds `scheme://HOST[:PORT]<path>?<query>&redirect=1`.
///
/// `path` is the normalised (decoded) path as the module used; `query` the
/// raw query; `has_params` whether the query had at least one `k=v` pair
/// (the module appends `&` only then, else `?` — its quirk kept for
/// drop-in Location strings). The port is omitted when it is the scheme's
/// default.
pub fn location(
    scheme: &str,
    host: IpAddr,
    port: u16,
    path: &str,
    query: Option<&str>,
    has_params: bool,
) -> String {
    let default_port = if scheme == "https" { 443 } else { 80 };
    let mut s = String::with_capacity(path.len() + query.map_or(0, str::len) + 64);
    s.push_str(scheme);
    s.push_str("://");
    match host {
        IpAddr::V4(v4) => push_ipv4(&mut s, v4),
        IpAddr::V6(v6) => {
            s.push('[');
            // Display for Ipv6Addr never fails writing into a String.
            let _ = write!(s, "{v6}");
            s.push(']');
        }
    }
    if port != default_port {
        s.push(':');
        push_decimal(&mut s, u32::from(port));
    }
    push_target(&mut s, path, query, has_params);
    s
}

/// The request target sent to a peer, `<path>?<query>&redirect=1`, with
/// the same rules as [`location`] (also used by the proxy).
pub fn target(path: &str, query: Option<&str>, has_params: bool) -> String {
    let mut s = String::with_capacity(path.len() + query.map_or(0, str::len) + 16);
    push_target(&mut s, path, query, has_params);
    s
}

fn push_target(s: &mut String, path: &str, query: Option<&str>, has_params: bool) {
    push_encoded_path(s, path);
    match query {
        Some(q) if !q.is_empty() => {
            s.push('?');
            s.push_str(q);
            s.push(if has_params { '&' } else { '?' });
        }
        _ => s.push('?'),
    }
    s.push_str("redirect=1");
}

/// Appends dotted-quad `ip` without going through `fmt`.
pub(crate) fn push_ipv4(s: &mut String, ip: Ipv4Addr) {
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        push_decimal(s, u32::from(o));
    }
}

/// Appends `n` in decimal without going through `fmt`.
pub(crate) fn push_decimal(s: &mut String, n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        s.push(char::from(d));
    }
}

/// Bytes that pass through [`push_encoded_path`] unescaped.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        i += 1;
    }
    t
};

/// Re-encodes bytes that may not appear raw in a URL path (the decoded
/// path can hold spaces or non-ASCII); FastDFS IDs pass through unchanged.
fn push_encoded_path(out: &mut String, path: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let plain = |b: u8| PLAIN[usize::from(b)];
    if path.bytes().all(plain) {
        out.push_str(path);
        return;
    }
    for b in path.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/group1/M00/00/00/X.txt";

    #[test]
    fn module_examples() {
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        assert_eq!(
            location("http", ip, 8080, P, None, false),
            "http://127.0.0.9:8080/group1/M00/00/00/X.txt?redirect=1"
        );
        assert_eq!(
            location("http", ip, 8080, P, Some("a=1&filename=x.txt"), true),
            "http://127.0.0.9:8080/group1/M00/00/00/X.txt?a=1&filename=x.txt&redirect=1"
        );
        assert_eq!(
            location("http", ip, 8080, P, Some("abc"), false),
            "http://127.0.0.9:8080/group1/M00/00/00/X.txt?abc?redirect=1"
        );
        assert_eq!(
            location("http", ip, 80, P, None, false),
            "http://127.0.0.9/group1/M00/00/00/X.txt?redirect=1"
        );
    }

    #[test]
    fn proxy_target() {
        assert_eq!(target(P, None, false), "/group1/M00/00/00/X.txt?redirect=1");
        assert_eq!(
            target(P, Some("filename=a.txt&x=%20y"), true),
            "/group1/M00/00/00/X.txt?filename=a.txt&x=%20y&redirect=1"
        );
        assert_eq!(
            target(P, Some(""), false),
            "/group1/M00/00/00/X.txt?redirect=1"
        );
    }

    #[test]
    fn ipv6_bracketed_and_https() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            location("https", ip, 443, P, None, false),
            "https://[2001:db8::1]/group1/M00/00/00/X.txt?redirect=1"
        );
        assert_eq!(
            location("http", ip, 8888, "/a b", None, false),
            "http://[2001:db8::1]:8888/a%20b?redirect=1"
        );
    }

    #[test]
    fn digits_and_escapes() {
        let ip: IpAddr = "255.0.10.1".parse().unwrap();
        assert_eq!(
            location("http", ip, 65535, "/a\u{e9}%", None, false),
            "http://255.0.10.1:65535/a%C3%A9%25?redirect=1"
        );
        assert_eq!(
            location(
                "https",
                "0.0.0.0".parse().unwrap(),
                80,
                "/",
                Some("x"),
                false
            ),
            "https://0.0.0.0:80/?x?redirect=1"
        );
        assert_eq!(
            location("http", ip, 0, "/\t", None, false),
            "http://255.0.10.1:0/%09?redirect=1"
        );
    }
}
