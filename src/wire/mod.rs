//! HTTP/1.1 on the wire, for both roles (like hyper's `proto/h1/role.rs`):
//! the server role ([`crate::h1`], plain client connections) and the
//! client role ([`crate::client`], plain-HTTP peers) share one framing
//! rule, one `Connection` token reader, one decimal writer and one socket
//! write helper.
//!
//! - [`request`]: request heads, parsed (server role) and encoded
//!   (client role), RFC 9112 §2–§3, §9.
//! - [`response`]: response heads, encoded as hyper writes them (server
//!   role) and parsed with their body framing (client role), RFC 9112 §4–§6.
//! - [`chunked`]: the chunked transfer coding, decoded (RFC 9112 §7.1).
//! - [`date`]: the `Date` field value, cached per second.
//! - [`io`]: the one piece of I/O here, writing a buffer to a socket.
//!
//! Everything but [`io`] is pure: bytes in, values out.

pub mod chunked;
pub mod date;
pub mod io;
pub mod request;
pub mod response;

use http::header::{HeaderValue, CONNECTION};
use http::HeaderMap;

/// How a message body is delimited (RFC 9112 §6.3), the same rule for a
/// response this server writes and one it reads from a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: the request was HEAD, or the status is 1xx, 204 or 304
    /// (§6.3 item 1).
    Empty,
    /// Exactly this many bytes (§6.3 item 6).
    Length(u64),
    /// Chunked transfer coding (§6.3 item 4, §7.1).
    Chunked,
    /// Everything until the connection closes (§6.3 item 8).
    Close,
}

/// The elements of a comma-separated list field value (RFC 9110 §5.6.1),
/// trimmed of optional whitespace; empty elements are kept (callers that
/// validate, like `Content-Length`, must see them).
pub fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// Folds one `Content-Length` field into the value seen so far (`prev`):
/// every element must be the same run of digits (RFC 9112 §6.3 item 5,
/// RFC 9110 §8.6); `None` when it is not, or does not fit in a `u64`.
/// The same rule for a request this server reads and a peer's response.
pub fn fold_content_length(v: &[u8], prev: Option<u64>) -> Option<u64> {
    let mut out = prev;
    for t in tokens(v) {
        if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = t.iter().try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })?;
        if out.is_some_and(|o| o != n) {
            return None;
        }
        out = Some(n);
    }
    out
}

/// Whether a `Connection` field value lists `token` (case-insensitive,
/// RFC 9110 §7.6.1).
pub fn lists(value: &HeaderValue, token: &str) -> bool {
    tokens(value.as_bytes()).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether the `Connection` fields of `headers` list `token`.
pub fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| lists(v, token))
}

/// Decimal digits of `n` without `fmt`.
pub fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_tokens() {
        let v = HeaderValue::from_static("TE, Close ,,keep-alive");
        assert!(lists(&v, "close") && lists(&v, "keep-alive") && lists(&v, "te"));
        assert!(!lists(&v, "upgrade"));
        let got: Vec<&[u8]> = tokens(b" a ,b,, c").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"", b"c"]);
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("x"));
        h.append(CONNECTION, HeaderValue::from_static("Close"));
        assert!(has_token(&h, "close") && !has_token(&h, "keep-alive"));
    }

    #[test]
    fn digits() {
        for n in [0u64, 7, 10, 4096, u64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
