//! Response heads, encoded without I/O, field for field as hyper's HTTP/1
//! server writes them (lower-case names in the map's order, then the
//! framing field, then `date`), so a client cannot tell the two paths
//! apart (RFC 9112 §4–§6).

use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::response::Parts;
use http::StatusCode;

use super::date;
use super::request::{has_token, lists};

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body follows (HEAD, 304, 204).
    None,
    /// Exactly this many bytes follow.
    Length(u64),
    /// Chunked transfer coding (HTTP/1.1, length unknown).
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0, length unknown).
    Close,
}

/// What the head depends on besides the response itself.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// The request was `HEAD`.
    pub head: bool,
    /// The request was HTTP/1.0 (answered as HTTP/1.0, like hyper).
    pub http10: bool,
    /// The connection stays open after this response.
    pub keep_alive: bool,
}

/// Writes the head of `parts` to `out`; `body_len` is the body's exact
/// length when known. Returns the framing and whether the connection must
/// close after the body (a `Connection: close` field of the response).
pub fn encode(
    out: &mut Vec<u8>,
    parts: &mut Parts,
    body_len: Option<u64>,
    x: Exchange,
) -> (Framing, bool) {
    let status = parts.status;
    // Responses rarely carry `Connection` (a relayed one is filtered):
    // one lookup decides whether any token needs reading.
    let connection = parts.headers.contains_key(CONNECTION);
    persistence_fields(parts, x, connection);
    let headers = &parts.headers;
    let mut close = false;
    let mut dated = false;
    if x.http10 {
        out.extend_from_slice(b"HTTP/1.0 ");
    } else if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
    }
    if x.http10 || status != StatusCode::OK {
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let no_body = x.head || matches!(status.as_u16(), 100..=199 | 204 | 304);
    let may_have_length = !matches!(status.as_u16(), 100..=199 | 204 | 304);
    let empty = body_len == Some(0);
    let mut framing = None;
    for (name, value) in headers {
        match *name {
            TRANSFER_ENCODING => continue,
            CONNECTION => close |= lists(value, "close"),
            DATE => dated = true,
            CONTENT_LENGTH => {
                // An empty body's length is written below (0), a HEAD
                // answer keeps the length of what GET would send.
                if framing.is_some() || (empty && !x.head) {
                    continue;
                }
                let declared = std::str::from_utf8(value.as_bytes())
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok());
                match (body_len, declared) {
                    (Some(n), _) => framing = Some(Framing::Length(n)),
                    (None, Some(n)) => framing = Some(Framing::Length(n)),
                    (None, None) => continue,
                }
            }
            _ => {}
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let framing = match framing {
        Some(f) => f,
        None => match body_len {
            None if x.http10 || no_body => {
                close |= !no_body;
                Framing::Close
            }
            None => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked
            }
            Some(n) => {
                if may_have_length && !(x.head && n == 0) {
                    out.extend_from_slice(b"content-length: ");
                    out.extend_from_slice(itoa(n, &mut [0; 20]));
                    out.extend_from_slice(b"\r\n");
                }
                Framing::Length(n)
            }
        },
    };
    if !dated {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let framing = if no_body { Framing::None } else { framing };
    (framing, close || framing == Framing::Close)
}

/// hyper's persistence fields: an HTTP/1.0 client that asked to keep the
/// connection is told `keep-alive`; an HTTP/1.1 connection about to close
/// says `close`.
fn persistence_fields(parts: &mut Parts, x: Exchange, connection: bool) {
    let h = &mut parts.headers;
    let says = |h: &http::HeaderMap, token| connection && has_token(h, token);
    if x.http10 {
        if x.keep_alive && !says(h, "keep-alive") {
            h.append(CONNECTION, HeaderValue::from_static("keep-alive"));
        }
    } else if !x.keep_alive && !says(h, "close") {
        h.append(CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Decimal digits of `n` without `fmt`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
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
    use http::Response;

    const KEEP: Exchange = Exchange {
        head: false,
        http10: false,
        keep_alive: true,
    };

    fn enc(r: Response<()>, len: Option<u64>, x: Exchange) -> (String, Framing, bool) {
        let (mut parts, ()) = r.into_parts();
        let mut out = Vec::new();
        let (f, close) = encode(&mut out, &mut parts, len, x);
        let s = String::from_utf8(out).unwrap();
        let date_at = s.find("date: ").expect("date field");
        let s = format!("{}date: D\r\n\r\n", &s[..date_at]);
        (s, f, close)
    }

    fn resp(status: u16, fields: &[(&'static str, &'static str)]) -> Response<()> {
        let mut r = Response::new(());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        for (n, v) in fields {
            r.headers_mut().append(*n, HeaderValue::from_static(v));
        }
        r
    }

    #[test]
    fn ok_with_known_length_adds_content_length_then_date() {
        let r = resp(200, &[("server", "s"), ("content-type", "image/jpeg")]);
        let (s, f, close) = enc(r, Some(5), KEEP);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nserver: s\r\ncontent-type: image/jpeg\r\ncontent-length: 5\r\ndate: D\r\n\r\n"
        );
        assert_eq!((f, close), (Framing::Length(5), false));
    }

    #[test]
    fn declared_length_stays_in_place() {
        let r = resp(206, &[("content-length", "3"), ("server", "s")]);
        let (s, f, _) = enc(r, Some(3), KEEP);
        assert_eq!(
            s,
            "HTTP/1.1 206 Partial Content\r\ncontent-length: 3\r\nserver: s\r\ndate: D\r\n\r\n"
        );
        assert_eq!(f, Framing::Length(3));
    }

    #[test]
    fn head_keeps_length_and_sends_no_body() {
        let x = Exchange { head: true, ..KEEP };
        let r = resp(200, &[("content-length", "1234")]);
        let (s, f, _) = enc(r, Some(0), x);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-length: 1234\r\ndate: D\r\n\r\n"
        );
        assert_eq!(f, Framing::None);
        // Without a declared length, none is invented.
        let (s, _, _) = enc(resp(200, &[]), Some(0), x);
        assert_eq!(s, "HTTP/1.1 200 OK\r\ndate: D\r\n\r\n");
    }

    #[test]
    fn empty_bodies() {
        let (s, f, _) = enc(resp(302, &[("location", "http://h/")]), Some(0), KEEP);
        assert_eq!(
            s,
            "HTTP/1.1 302 Found\r\nlocation: http://h/\r\ncontent-length: 0\r\ndate: D\r\n\r\n"
        );
        assert_eq!(f, Framing::Length(0));
        let (s, f, _) = enc(resp(304, &[("etag", "\"x\"")]), Some(0), KEEP);
        assert_eq!(
            s,
            "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\ndate: D\r\n\r\n"
        );
        assert_eq!(f, Framing::None);
        // A stray length on an empty GET answer becomes 0, at the end.
        let (s, _, _) = enc(resp(404, &[("content-length", "9")]), Some(0), KEEP);
        assert_eq!(
            s,
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: D\r\n\r\n"
        );
    }

    #[test]
    fn unknown_length_is_chunked_or_close_delimited() {
        let (s, f, close) = enc(resp(200, &[]), None, KEEP);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ndate: D\r\n\r\n"
        );
        assert_eq!((f, close), (Framing::Chunked, false));
        let x = Exchange {
            http10: true,
            keep_alive: false,
            ..KEEP
        };
        let (s, f, close) = enc(resp(200, &[]), None, x);
        assert_eq!(s, "HTTP/1.0 200 OK\r\ndate: D\r\n\r\n");
        assert_eq!((f, close), (Framing::Close, true));
        // A relayed length is used when the body does not know its own.
        let (s, f, _) = enc(resp(200, &[("content-length", "7")]), None, KEEP);
        assert_eq!(s, "HTTP/1.1 200 OK\r\ncontent-length: 7\r\ndate: D\r\n\r\n");
        assert_eq!(f, Framing::Length(7));
    }

    #[test]
    fn persistence_fields_like_hyper() {
        let close = Exchange {
            keep_alive: false,
            ..KEEP
        };
        let (s, _, c) = enc(resp(200, &[]), Some(1), close);
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\ndate: D\r\n\r\n"
        );
        assert!(c);
        let ka10 = Exchange {
            http10: true,
            ..KEEP
        };
        let (s, _, c) = enc(resp(404, &[]), Some(2), ka10);
        assert_eq!(
            s,
            "HTTP/1.0 404 Not Found\r\nconnection: keep-alive\r\ncontent-length: 2\r\ndate: D\r\n\r\n"
        );
        assert!(!c);
    }

    #[test]
    fn given_date_and_transfer_encoding() {
        let r = resp(
            200,
            &[
                ("date", "Thu, 01 Jan 1970 00:00:00 GMT"),
                ("transfer-encoding", "gzip"),
            ],
        );
        let (mut parts, ()) = r.into_parts();
        let mut out = Vec::new();
        encode(&mut out, &mut parts, Some(1), KEEP);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ndate: Thu, 01 Jan 1970 00:00:00 GMT\r\ncontent-length: 1\r\n\r\n"
        );
    }

    #[test]
    fn digits() {
        for n in [0u64, 7, 10, 4096, u64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
