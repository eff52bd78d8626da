//! The 302 target (module-behaviour.md §8.1), with the intended
//! corrections: a clean response (`Content-Length: 0`), IPv6 in brackets,
//! configurable scheme/port, no 256-byte truncation.

use std::net::IpAddr;

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
    let mut s = String::with_capacity(path.len() + query.map_or(0, str::len) + 48);
    s.push_str(scheme);
    s.push_str("://");
    match host {
        IpAddr::V4(v4) => s.push_str(&v4.to_string()),
        IpAddr::V6(v6) => {
            s.push('[');
            s.push_str(&v6.to_string());
            s.push(']');
        }
    }
    if port != default_port {
        s.push(':');
        s.push_str(&port.to_string());
    }
    s.push_str(&target(path, query, has_params));
    s
}

/// The request target sent to a peer, `<path>?<query>&redirect=1`, with
/// the same rules as [`location`] (also used by the proxy).
pub fn target(path: &str, query: Option<&str>, has_params: bool) -> String {
    let mut s = percent_encode_path(path);
    match query {
        Some(q) if !q.is_empty() => {
            s.push('?');
            s.push_str(q);
            s.push(if has_params { '&' } else { '?' });
        }
        _ => s.push('?'),
    }
    s.push_str("redirect=1");
    s
}

/// Re-encodes bytes that may not appear raw in a URL path (the decoded
/// path can hold spaces or non-ASCII); FastDFS IDs pass through unchanged.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
}
