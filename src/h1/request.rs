//! Request heads, parsed without I/O: the bytes read so far either hold a
//! complete head this path serves, need more bytes, or hold something it
//! leaves to hyper (RFC 9112 §2–§9).
//!
//! Only what a FastDFS download is made of is accepted: a request line and
//! header fields, with no body. Anything else — malformed input, a request
//! body, `CONNECT`, an HTTP/2 preface — is handed to hyper unchanged, so
//! its answer to odd input stays the one the rest of the server gives.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Uri, Version};

/// Most header fields read by this path (hyper's own limit is 100; a
/// request with more is handed to it).
pub const MAX_HEADERS: usize = 64;

/// Why a request is left to hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Not a valid HTTP/1.x head (or an HTTP/2 preface).
    Malformed,
    /// More header fields than [`MAX_HEADERS`].
    TooManyHeaders,
    /// The request has a body (`Content-Length` other than 0, or
    /// `Transfer-Encoding`).
    Body,
    /// `CONNECT`, which hyper frames differently.
    Connect,
}

/// A complete request head.
#[derive(Debug)]
pub struct Head {
    /// The request (method, target, version, header fields).
    pub request: Request<()>,
    /// Whether the connection stays open after the response (RFC 9112
    /// §9.3: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with
    /// `Connection: keep-alive`).
    pub keep_alive: bool,
}

/// Where each piece of a head lies in the buffer, so it can be cut out
/// without copying once the head is complete.
struct Layout {
    len: usize,
    method: (usize, usize),
    target: (usize, usize),
    version: u8,
    count: usize,
    fields: [((usize, usize), (usize, usize)); MAX_HEADERS],
}

/// Offset and length of `part` inside `base`.
fn span(base: &[u8], part: &[u8]) -> (usize, usize) {
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    (start, part.len())
}

fn layout(buf: &[u8]) -> Result<Option<Layout>, Handoff> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Handoff::TooManyHeaders),
        Err(_) => return Err(Handoff::Malformed),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Handoff::Malformed);
    };
    let mut out = Layout {
        len,
        method: span(buf, method.as_bytes()),
        target: span(buf, target.as_bytes()),
        version,
        count: req.headers.len(),
        fields: [((0, 0), (0, 0)); MAX_HEADERS],
    };
    for (slot, h) in out.fields.iter_mut().zip(req.headers.iter()) {
        *slot = (span(buf, h.name.as_bytes()), span(buf, h.value));
    }
    Ok(Some(out))
}

fn cut(head: &Bytes, (start, len): (usize, usize)) -> Bytes {
    head.slice(start..start + len)
}

/// Takes one complete request head off the front of `buf`. `Ok(None)`:
/// more bytes are needed (and `buf` is untouched). On a [`Handoff`],
/// `buf` is untouched too, so hyper can read it from the start.
pub fn take(buf: &mut BytesMut) -> Result<Option<Head>, Handoff> {
    let Some(l) = layout(buf)? else {
        return Ok(None);
    };
    let head = {
        let bytes = Bytes::copy_from_slice(&buf[..l.len]);
        build(&bytes, &l)?
    };
    // Dropped in place: no shared-buffer bookkeeping for the consumed bytes.
    buf.advance(l.len);
    Ok(Some(head))
}

fn build(bytes: &Bytes, l: &Layout) -> Result<Head, Handoff> {
    let method = Method::from_bytes(&bytes[l.method.0..l.method.0 + l.method.1])
        .map_err(|_| Handoff::Malformed)?;
    if method == Method::CONNECT {
        return Err(Handoff::Connect);
    }
    let uri = Uri::from_maybe_shared(cut(bytes, l.target)).map_err(|_| Handoff::Malformed)?;
    let version = if l.version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut headers = HeaderMap::with_capacity(l.count);
    for (name, value) in &l.fields[..l.count] {
        let name = HeaderName::from_bytes(&bytes[name.0..name.0 + name.1])
            .map_err(|_| Handoff::Malformed)?;
        let value =
            HeaderValue::from_maybe_shared(cut(bytes, *value)).map_err(|_| Handoff::Malformed)?;
        headers.append(name, value);
    }
    if headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0")
    {
        return Err(Handoff::Body);
    }
    let keep_alive = keep_alive(version, &headers);
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Head {
        request,
        keep_alive,
    })
}

/// Whether a comma-separated `Connection` field lists `token`.
pub fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// RFC 9112 §9.3 persistence: HTTP/1.1 persists unless `close`; HTTP/1.0
/// only with `keep-alive` (and never with `close`).
fn keep_alive(version: Version, headers: &HeaderMap) -> bool {
    if has_token(headers, "close") {
        return false;
    }
    version == Version::HTTP_11 || has_token(headers, "keep-alive")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Option<Head>, Handoff> {
        take(&mut BytesMut::from(s))
    }

    fn head(s: &[u8]) -> Head {
        parse(s).unwrap().unwrap()
    }

    #[test]
    fn complete_head_is_taken_and_the_rest_kept() {
        let mut b = BytesMut::from(
            &b"GET /group1/M00/00/00/a.jpg?x=1 HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\nGET /"[..],
        );
        let h = take(&mut b).unwrap().unwrap();
        assert_eq!(h.request.method(), Method::GET);
        assert_eq!(h.request.uri().path(), "/group1/M00/00/00/a.jpg");
        assert_eq!(h.request.uri().query(), Some("x=1"));
        assert_eq!(h.request.version(), Version::HTTP_11);
        assert_eq!(h.request.headers()["range"], "bytes=0-1");
        assert_eq!(h.request.headers()["host"], "h");
        assert!(h.keep_alive);
        assert_eq!(&b[..], b"GET /");
    }

    #[test]
    fn partial_head_needs_more_and_leaves_the_buffer() {
        for s in [
            &b""[..],
            b"GE",
            b"GET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
        ] {
            let mut b = BytesMut::from(s);
            assert!(take(&mut b).unwrap().is_none(), "{s:?}");
            assert_eq!(&b[..], s);
        }
    }

    #[test]
    fn persistence_by_version_and_connection() {
        let cases: [(&[u8], bool); 7] = [
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n",
                false,
            ),
            (
                b"HEAD / HTTP/1.0\r\nConnection: x, keep-alive\r\n\r\n",
                true,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(head(s).keep_alive, want, "{}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn bodies_connect_and_bad_input_go_to_hyper() {
        let cases: [(&[u8], Handoff); 9] = [
            (
                b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                Handoff::Body,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                Handoff::Body,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                Handoff::Body,
            ),
            (b"CONNECT h:1 HTTP/1.1\r\n\r\n", Handoff::Connect),
            (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Handoff::Malformed),
            (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", Handoff::Malformed),
            (b"GET /\x01 HTTP/1.1\r\n\r\n", Handoff::Malformed),
            (b"G\x00T / HTTP/1.1\r\n\r\n", Handoff::Malformed),
            (b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", Handoff::Malformed),
        ];
        for (s, want) in cases {
            let mut b = BytesMut::from(s);
            assert_eq!(
                take(&mut b).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(s)
            );
            assert_eq!(&b[..], s, "buffer kept for hyper");
        }
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let s = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse(s.as_bytes()).unwrap_err(), Handoff::TooManyHeaders);
    }

    #[test]
    fn zero_content_length_and_repeated_fields_are_served_here() {
        let h = head(b"GET / HTTP/1.1\r\nContent-Length: 0\r\nX-A: 1\r\nX-A: 2\r\n\r\n");
        let all: Vec<_> = h.request.headers().get_all("x-a").iter().collect();
        assert_eq!(all, ["1", "2"]);
    }

    #[test]
    fn absolute_form_and_asterisk_targets() {
        let h = head(b"GET http://h:8888/group1/M00/00/00/a.jpg HTTP/1.1\r\n\r\n");
        assert_eq!(h.request.uri().path(), "/group1/M00/00/00/a.jpg");
        let h = head(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!(h.request.method(), Method::OPTIONS);
    }
}
