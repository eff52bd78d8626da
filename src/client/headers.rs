//! What a proxied request forwards each way (docs/module-behaviour.md §8.2,
//! with its replacement notes), for both peer clients: only the request
//! headers that matter (Range, If-*, the anti-steal bypass header; `Host`
//! set to the peer), and the peer's response headers without hop-by-hop
//! ones (RFC 9110 §7.6.1), ours (`Date`, `Server`) or nginx internals.

use std::fmt::Write as _;
use std::net::SocketAddr;

use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, SERVER};
use http::HeaderMap;

use crate::wire;

/// What to ask a peer.
#[derive(Debug)]
pub struct Ask<'a> {
    /// HEAD instead of GET.
    pub head: bool,
    /// `<path>?<query>&redirect=1`.
    pub target: &'a str,
    /// The client's request headers.
    pub headers: &'a HeaderMap,
    /// The anti-steal bypass header's name, if configured.
    pub bypass: Option<&'a HeaderName>,
}

/// Request headers passed to the peer (besides `Host` and the bypass header).
const FORWARDED: [HeaderName; 6] = [
    http::header::RANGE,
    http::header::IF_MATCH,
    http::header::IF_NONE_MATCH,
    http::header::IF_MODIFIED_SINCE,
    http::header::IF_UNMODIFIED_SINCE,
    http::header::IF_RANGE,
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) and `Proxy-Connection`.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Standard headers never passed back: hop-by-hop ones and ours (`Date`,
/// `Server`); compared as known names before any string comparison.
const DROPPED: [HeaderName; 9] = [
    CONNECTION,
    http::header::DATE,
    SERVER,
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// The headers sent to the peer: the forwarded ones, the bypass header
/// (name only matters; every value is passed), and `Host`.
pub fn request_headers(
    client: &HeaderMap,
    bypass: Option<&HeaderName>,
    host: HeaderValue,
) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in FORWARDED.iter().chain(bypass) {
        for v in client.get_all(name) {
            out.append(name.clone(), v.clone());
        }
    }
    out.insert(HOST, host);
    out
}

/// The peer's response headers to relay: everything except hop-by-hop
/// headers (including those named in `Connection`), `Date` and `Server`
/// (ours are sent) and nginx internals (`X-Accel-*`, `X-Pad`), as the
/// module drops them.
pub fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    // Field names listed in `Connection` (RFC 9110 §7.6.1), compared
    // case-insensitively with the (lower-case) names of the map.
    let connection = upstream.get_all(CONNECTION);
    let named = |n: &str| {
        connection
            .iter()
            .any(|v| wire::tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(n.as_bytes())))
    };
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, v) in upstream {
        if DROPPED.contains(name) {
            continue;
        }
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || named(n) || n == "x-pad" || n.starts_with("x-accel-") {
            continue;
        }
        out.append(name.clone(), v.clone());
    }
    out
}

/// `ip:port` as a URI authority (IPv6 in brackets).
pub fn authority(addr: SocketAddr) -> String {
    let mut s = String::with_capacity(48);
    match addr {
        // Display never fails writing into a String.
        SocketAddr::V4(a) => {
            let _ = write!(s, "{}", a.ip());
        }
        SocketAddr::V6(a) => {
            let _ = write!(s, "[{}]", a.ip());
        }
    }
    let _ = write!(s, ":{}", addr.port());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwards_only_what_matters() {
        let client = map(&[
            ("Host", "client.example"),
            ("Connection", "keep-alive"),
            ("Range", "bytes=0-9"),
            ("If-None-Match", "\"a\""),
            ("If-None-Match", "\"b\""),
            ("If-Modified-Since", "Wed, 25 Nov 2026 10:22:57 GMT"),
            ("If-Unmodified-Since", "x"),
            ("If-Match", "*"),
            ("If-Range", "\"a\""),
            ("Cookie", "s=1"),
            ("X-Test", "fwd"),
            ("X-Bypass", "yes"),
            ("Authorization", "Basic x"),
        ]);
        let bypass = HeaderName::from_static("x-bypass");
        let h = request_headers(
            &client,
            Some(&bypass),
            HeaderValue::from_static("127.0.0.2:8888"),
        );
        assert_eq!(h.get(HOST).unwrap(), "127.0.0.2:8888");
        assert_eq!(h.get_all("if-none-match").iter().count(), 2);
        for n in [
            "range",
            "if-modified-since",
            "if-unmodified-since",
            "if-match",
            "if-range",
            "x-bypass",
        ] {
            assert!(h.contains_key(n), "{n}");
        }
        for n in ["connection", "cookie", "x-test", "authorization"] {
            assert!(!h.contains_key(n), "{n}");
        }
        assert_eq!(h.len(), 9);
        let h = request_headers(&client, None, HeaderValue::from_static("h"));
        assert!(!h.contains_key("x-bypass"));
    }

    #[test]
    fn strips_hop_by_hop_from_responses() {
        let up = map(&[
            ("Server", "nginx/1.26.3"),
            ("Date", "Wed, 25 Nov 2026 10:23:23 GMT"),
            ("Content-Type", "text/x-fake"),
            ("Content-Length", "11"),
            ("Content-Range", "bytes 0-10/11"),
            ("Connection", "keep-alive, X-Private"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("X-Private", "1"),
            ("X-Accel-Redirect", "/x"),
            ("X-Pad", "avoid browser bug"),
            ("Upgrade", "h2c"),
            ("Trailer", "x"),
            ("TE", "trailers"),
            ("Proxy-Authenticate", "x"),
            ("Set-Cookie", "a=b"),
            ("Set-Cookie", "c=d"),
            ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("ETag", "\"fake-etag\""),
            ("X-Custom", "hello"),
            ("Location", "http://127.0.0.9:8888/elsewhere"),
        ]);
        let h = response_headers(&up);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "content-length",
                "content-range",
                "set-cookie",
                "last-modified",
                "etag",
                "x-custom",
                "location"
            ]
        );
        assert_eq!(h.get_all("set-cookie").iter().count(), 2);
    }

    #[test]
    fn authorities() {
        assert_eq!(
            authority("127.0.0.2:8888".parse().unwrap()),
            "127.0.0.2:8888"
        );
        assert_eq!(
            authority("[2001:db8::1]:80".parse().unwrap()),
            "[2001:db8::1]:80"
        );
    }
}
