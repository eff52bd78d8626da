//! Request heads, both roles, without I/O (RFC 9112 §2–§3, §9).
//!
//! Server role ([`take`]): the bytes read so far either hold a complete
//! head the plain path serves, need more bytes, or hold something it
//! leaves to hyper. Client role ([`encode`]): the head sent to a peer.
//!
//! Only what a FastDFS download is made of is accepted: a request line and
//! header fields, with no body. Anything else — malformed input, a request
//! body, `CONNECT`, an HTTP/2 preface — is handed to hyper unchanged, so
//! its answer to odd input stays the one the rest of the server gives.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Uri, Version};

use super::lists;

/// Most header fields read by this path (hyper's own limit is 100; a
/// request with more is handed to it).
pub const MAX_HEADERS: usize = 64;

/// Bytes copied for a first parse: more than almost any request head.
const COPY: usize = 2048;

/// Why a request is left to hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Not a valid HTTP/1.x head (or an HTTP/2 preface).
    Malformed,
    /// More header fields than [`MAX_HEADERS`].
    TooManyHeaders,
    /// No complete head within `max_header_size` (hyper answers 431).
    TooLarge,
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
    /// The body's `Content-Length` (RFC 9112 §6.2), 0 without one; only
    /// ever more than 0 from [`take_if`].
    pub body: u64,
}

/// Takes one complete request head off the front of `buf`. `Ok(None)`:
/// more bytes are needed (and `buf` is untouched). On a [`Handoff`],
/// `buf` is untouched too, so hyper can read it from the start.
pub fn take(buf: &mut BytesMut) -> Result<Option<Head>, Handoff> {
    take_if(buf, |_| false)
}

/// [`take`], also taking a head whose body has a single valid
/// `Content-Length` when `keep_body` says so (the body stays in `buf`);
/// other bodies are [`Handoff::Body`].
pub fn take_if(
    buf: &mut BytesMut,
    keep_body: impl FnOnce(&Head) -> bool,
) -> Result<Option<Head>, Handoff> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Parsed from a copy, so the request's fields are slices of one shared
    // buffer. The copy is bounded (pipelined requests behind the head are
    // not copied again and again); a longer head is parsed from a copy of
    // everything read.
    let first = Bytes::copy_from_slice(&buf[..buf.len().min(COPY)]);
    let head = match parse(&first)? {
        Some(h) => h,
        None if buf.len() > COPY => match parse(&Bytes::copy_from_slice(buf))? {
            Some(h) => h,
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    if head.0.body > 0 && !keep_body(&head.0) {
        return Err(Handoff::Body);
    }
    // Dropped in place: no shared-buffer bookkeeping for the consumed bytes.
    buf.advance(head.1);
    Ok(Some(head.0))
}

/// A complete head at the start of `bytes` and its length.
fn parse(bytes: &Bytes) -> Result<Option<(Head, usize)>, Handoff> {
    let mut fields = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(bytes, &mut fields) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Handoff::TooManyHeaders),
        Err(_) => return Err(Handoff::Malformed),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Handoff::Malformed);
    };
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| Handoff::Malformed)?;
    if method == Method::CONNECT {
        return Err(Handoff::Connect);
    }
    let uri = Uri::from_maybe_shared(bytes.slice_ref(target.as_bytes()))
        .map_err(|_| Handoff::Malformed)?;
    let version = if version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    // Framing and persistence are read while the fields are built (no
    // lookups afterwards).
    let (mut close, mut keep) = (false, false);
    let mut body: Option<u64> = None;
    for field in req.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| Handoff::Malformed)?;
        let value = HeaderValue::from_maybe_shared(bytes.slice_ref(field.value))
            .map_err(|_| Handoff::Malformed)?;
        match name {
            TRANSFER_ENCODING => return Err(Handoff::Body),
            // The shared length rule; differing or malformed lengths are
            // hyper's to refuse.
            CONTENT_LENGTH => match super::fold_content_length(value.as_bytes(), body) {
                Some(n) => body = Some(n),
                None => return Err(Handoff::Body),
            },
            CONNECTION => {
                close |= lists(&value, "close");
                keep |= lists(&value, "keep-alive");
            }
            _ => {}
        }
        headers.append(name, value);
    }
    // RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with
    // `keep-alive` (and never with `close`).
    let keep_alive = !close && (version == Version::HTTP_11 || keep);
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some((
        Head {
            request,
            keep_alive,
            body: body.unwrap_or(0),
        },
        len,
    )))
}

/// Why a request head cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The target is empty or holds bytes a request-target cannot carry
    /// (RFC 9112 §3.2: visible ASCII only).
    Target,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::Target => f.write_str("request target not sendable"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Client role: the request head sent to a peer, `GET`/`HEAD`,
/// origin-form `target` (RFC 9112 §3.2.1), then `fields` (which carry
/// `Host`), in one buffer.
pub fn encode(head: bool, target: &str, fields: &HeaderMap) -> Result<Vec<u8>, EncodeError> {
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EncodeError::Target);
    }
    let mut out = Vec::with_capacity(64 + target.len() + fields.len() * 48);
    out.extend_from_slice(if head { b"HEAD " } else { b"GET " });
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
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
    fn take_if_keeps_a_body_of_one_valid_length_in_the_buffer() {
        let s = b"PUT /u HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhelloGET";
        let mut b = BytesMut::from(&s[..]);
        let h = take_if(&mut b, |h| h.request.method() == Method::PUT)
            .unwrap()
            .unwrap();
        assert_eq!(h.body, 5);
        assert_eq!(&b[..], b"helloGET");
        // Refused by the caller: hyper gets the whole request.
        let mut b = BytesMut::from(&s[..]);
        assert_eq!(take_if(&mut b, |_| false).unwrap_err(), Handoff::Body);
        assert_eq!(&b[..], s);
        // Lengths hyper must judge never reach the caller.
        for bad in [
            &b"PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"PUT / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let mut b = BytesMut::from(bad);
            let r = take_if(&mut b, |_| panic!("asked about {bad:?}"));
            assert_eq!(r.unwrap_err(), Handoff::Body);
            assert_eq!(&b[..], bad);
        }
        // A list of one length is that length (RFC 9112 §6.3 item 5, as
        // for a peer's response).
        let mut b = BytesMut::from(&b"PUT / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello"[..]);
        assert_eq!(take_if(&mut b, |_| true).unwrap().unwrap().body, 5);
        assert_eq!(&b[..], b"hello");
        // Content-Length: 0 is no body, whatever the caller says.
        let h = head(b"PUT / HTTP/1.1\r\nContent-Length: 00\r\n\r\n");
        assert_eq!(h.body, 0);
    }

    #[test]
    fn heads_longer_than_the_first_copy() {
        let big = "a".repeat(3 * COPY);
        let full = format!("GET / HTTP/1.1\r\nX-Big: {big}\r\n\r\nGET /next");
        let mut b = BytesMut::from(full.as_bytes());
        let h = take(&mut b).unwrap().unwrap();
        assert_eq!(h.request.headers()["x-big"].len(), big.len());
        assert_eq!(&b[..], b"GET /next");
        // Not complete yet, beyond the first copy: more bytes needed.
        let cut = &full.as_bytes()[..2 * COPY];
        let mut b = BytesMut::from(cut);
        assert!(take(&mut b).unwrap().is_none());
        assert_eq!(&b[..], cut);
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

    #[test]
    fn client_heads_are_origin_form_in_one_buffer() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RANGE, HeaderValue::from_static("bytes=0-1"));
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("127.0.0.2:8080"),
        );
        let r = encode(false, "/g/M00/x.txt?redirect=1", &h).unwrap();
        assert_eq!(
            r,
            b"GET /g/M00/x.txt?redirect=1 HTTP/1.1\r\nrange: bytes=0-1\r\nhost: 127.0.0.2:8080\r\n\r\n"
        );
        assert!(encode(true, "/x", &HeaderMap::new())
            .unwrap()
            .starts_with(b"HEAD /x HTTP/1.1\r\n"));
        for bad in ["", "/a b", "/a\r\nX: y", "/\u{e9}", "/a\x7f"] {
            assert!(
                matches!(encode(false, bad, &h), Err(EncodeError::Target)),
                "{bad:?}"
            );
        }
    }
}
