//! Response heads, both roles, without I/O (RFC 9112 §4–§6).
//!
//! Server role ([`encode`]): field for field as hyper's HTTP/1 server
//! writes them (lower-case names in the map's order, then the framing
//! field, then `date`), so a client cannot tell the two paths apart.
//!
//! Client role ([`parse`]): a peer's head read with httparse, interim
//! (1xx) heads skipped, the body's [`Framing`] decided as §6.3 says and
//! whether the connection may carry another request (§9.3).

use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::response::Parts;
use http::{HeaderMap, StatusCode};

/// Largest response head accepted (interim heads included).
pub const MAX_HEAD: usize = 64 * 1024;

/// Most header fields in one response head.
pub const MAX_FIELDS: usize = 100;

use super::{date, fold_content_length, has_token, itoa, lists, tokens, Framing};

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
    let framing = if no_body { Framing::Empty } else { framing };
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

/// A parsed final response head.
#[derive(Debug)]
pub struct Head {
    /// The status code.
    pub status: StatusCode,
    /// The header fields as received.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: Framing,
    /// The connection may carry another request after this body (§9.3):
    /// HTTP/1.1, no `Connection: close`, framing not `Close`, not both
    /// `Transfer-Encoding` and `Content-Length` (§6.3 item 3).
    pub reusable: bool,
    /// Bytes of the buffer taken by this head and any interim heads.
    pub len: usize,
}

/// Why a response head is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// Not an HTTP/1.x response head (status line or field syntax).
    Syntax(httparse::Error),
    /// Larger than [`MAX_HEAD`].
    TooLarge,
    /// `101 Switching Protocols`, never asked for.
    Upgrade,
    /// A header field name or value not representable.
    Field,
    /// `Content-Length` not a number, or several different ones (§6.3 item 5).
    ContentLength,
    /// A transfer coding other than one `chunked` (§6.3 item 4, §7).
    TransferCoding,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Syntax(e) => write!(f, "malformed response head: {e}"),
            HeadError::TooLarge => f.write_str("response head too large"),
            HeadError::Upgrade => f.write_str("unexpected 101 Switching Protocols"),
            HeadError::Field => f.write_str("invalid header field"),
            HeadError::ContentLength => f.write_str("invalid Content-Length"),
            HeadError::TransferCoding => f.write_str("unsupported Transfer-Encoding"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Parses the response head at the start of `buf`, skipping interim (1xx)
/// heads; `head_request` = the request was HEAD. `Ok(None)`: incomplete.
pub fn parse(buf: &[u8], head_request: bool) -> Result<Option<Head>, HeadError> {
    let mut at = 0;
    loop {
        let rest = buf.get(at..).unwrap_or_default();
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut r = httparse::Response::new(&mut fields);
        let n = match r.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(HeadError::Syntax(e)),
        };
        at += n;
        if at > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let code = r.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| HeadError::Syntax(httparse::Error::Status))?;
        if code == 101 {
            return Err(HeadError::Upgrade);
        }
        if status.is_informational() {
            continue;
        }
        let mut headers = HeaderMap::with_capacity(r.headers.len());
        let mut length: Result<Option<u64>, HeadError> = Ok(None);
        let mut codings: Option<Codings> = None;
        let mut close = r.version != Some(1);
        for f in r.headers.iter() {
            let name = HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| HeadError::Field)?;
            let value = HeaderValue::from_bytes(f.value).map_err(|_| HeadError::Field)?;
            if name == CONTENT_LENGTH {
                length = length.and_then(|prev| {
                    fold_content_length(f.value, prev)
                        .map(Some)
                        .ok_or(HeadError::ContentLength)
                });
            } else if name == TRANSFER_ENCODING {
                codings.get_or_insert_with(Codings::default).add(f.value);
            } else if name == CONNECTION {
                close |= tokens(f.value).any(|t| t.eq_ignore_ascii_case(b"close"));
            }
            headers.append(name, value);
        }
        let length = length?;
        let no_body = head_request || matches!(code, 204 | 304);
        let framing = match (no_body, codings) {
            (true, _) => Framing::Empty,
            (false, Some(c)) if c.is_chunked() => Framing::Chunked,
            (false, Some(_)) => return Err(HeadError::TransferCoding),
            (false, None) => length.map_or(Framing::Close, Framing::Length),
        };
        let reusable = !close
            && framing != Framing::Close
            && !(framing == Framing::Chunked && length.is_some());
        return Ok(Some(Head {
            status,
            headers,
            framing,
            reusable,
            len: at,
        }));
    }
}

/// The transfer codings named across all `Transfer-Encoding` fields.
#[derive(Debug, Default, Clone, Copy)]
struct Codings {
    count: usize,
    chunked: usize,
}

impl Codings {
    fn add(&mut self, v: &[u8]) {
        for t in tokens(v) {
            self.count += 1;
            if t.eq_ignore_ascii_case(b"chunked") {
                self.chunked += 1;
            }
        }
    }

    /// Exactly `chunked`: other codings cannot be relayed undecoded.
    fn is_chunked(&self) -> bool {
        self.count == 1 && self.chunked == 1
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
        assert_eq!(f, Framing::Empty);
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
        assert_eq!(f, Framing::Empty);
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

    fn parse_get(s: &[u8]) -> Result<Option<Head>, HeadError> {
        parse(s, false)
    }

    fn framing(s: &str) -> (Framing, bool) {
        let h = parse_get(s.as_bytes()).unwrap().unwrap();
        assert_eq!(h.len, s.len());
        (h.framing, h.reusable)
    }

    #[test]
    fn head_fields_status_and_length() {
        let raw = b"HTTP/1.1 206 Partial Content\r\nServer: nginx\r\nContent-Length: 5\r\n\
Content-Range: bytes 0-4/10\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\nhello";
        let h = parse_get(raw).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(h.len, raw.len() - 5);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.reusable);
        assert_eq!(h.headers.get("server").unwrap(), "nginx");
        assert_eq!(h.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(h.headers.len(), 5);
    }

    #[test]
    fn split_heads_are_incomplete_at_every_byte() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nETag: \"x\"\r\n\r\n";
        for i in 0..raw.len() {
            assert!(parse_get(&raw[..i]).unwrap().is_none(), "prefix {i}");
        }
        assert_eq!(parse_get(raw).unwrap().unwrap().len, raw.len());
    }

    #[test]
    fn framing_follows_rfc9112_6_3() {
        let t = |s: &str| framing(s);
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (Framing::Length(0), true)
        );
        assert_eq!(t("HTTP/1.1 200 OK\r\n\r\n"), (Framing::Close, false));
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n"),
            (Framing::Chunked, true)
        );
        // TE overrides CL; the connection is not reused (item 3).
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Framing::Chunked, false)
        );
        assert_eq!(
            t("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            t("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            t("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            t("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, Close\r\n\r\n"),
            (Framing::Length(3), false)
        );
        assert_eq!(
            t("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n"),
            (Framing::Length(3), false)
        );
        assert_eq!(
            t("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n"),
            (Framing::Length(3), false)
        );
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.reusable), (Framing::Empty, true));
        let h = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Empty);
    }

    #[test]
    fn content_length_duplicates_and_invalid_values() {
        let t = |cl: &str| {
            parse_get(format!("HTTP/1.1 200 OK\r\n{cl}\r\n").as_bytes()).map(|h| h.unwrap().framing)
        };
        assert_eq!(t("Content-Length: 7\r\n"), Ok(Framing::Length(7)));
        assert_eq!(t("Content-Length: 007\r\n"), Ok(Framing::Length(7)));
        assert_eq!(t("Content-Length: 7, 7\r\n"), Ok(Framing::Length(7)));
        assert_eq!(
            t("Content-Length: 7\r\nContent-Length: 7\r\n"),
            Ok(Framing::Length(7))
        );
        assert_eq!(
            t("Content-Length: 18446744073709551615\r\n"),
            Ok(Framing::Length(u64::MAX))
        );
        for bad in [
            "Content-Length: 7\r\nContent-Length: 8\r\n",
            "Content-Length: 7, 8\r\n",
            "Content-Length: 7,\r\n",
            "Content-Length: \r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +7\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: 1 2\r\n",
            "Content-Length: 18446744073709551616\r\n",
            "Content-Length: 99999999999999999999999\r\n",
        ] {
            assert_eq!(t(bad), Err(HeadError::ContentLength), "{bad:?}");
        }
        // Invalid even where there is no body: the field would be relayed.
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true).unwrap_err(),
            HeadError::ContentLength
        );
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_refused() {
        for te in [
            "gzip",
            "gzip, chunked",
            "chunked, gzip",
            "chunked, chunked",
            "",
            "identity",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(
                parse_get(raw.as_bytes()).unwrap_err(),
                HeadError::TransferCoding,
                "{te:?}"
            );
        }
        let raw =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            parse_get(raw.as_bytes()).unwrap_err(),
            HeadError::TransferCoding
        );
    }

    #[test]
    fn interim_heads_are_skipped_and_upgrades_refused() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n";
        let h = parse_get(raw).unwrap().unwrap();
        assert_eq!((h.status, h.len), (StatusCode::OK, raw.len()));
        assert!(!h.headers.contains_key("link"));
        assert!(parse_get(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
            .unwrap()
            .is_none());
        assert_eq!(
            parse_get(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            HeadError::Upgrade
        );
    }

    #[test]
    fn bad_status_lines_are_syntax_errors() {
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"hello world\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
            b"\x00\x01\x02",
        ] {
            assert!(
                matches!(parse_get(bad), Err(HeadError::Syntax(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            parse_get(b"HTTP/1.1 099 Odd\r\n\r\n"),
            Err(HeadError::Syntax(_))
        ));
        let many: String = (0..=MAX_FIELDS).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(matches!(
            parse_get(raw.as_bytes()),
            Err(HeadError::Syntax(httparse::Error::TooManyHeaders))
        ));
        // A reason phrase may be empty or missing.
        assert!(parse_get(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .is_some());
    }

    #[test]
    fn oversize_heads_are_refused() {
        let big = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse_get(big.as_bytes()).unwrap_err(), HeadError::TooLarge);
        let big = format!("{big}\r\n");
        assert_eq!(parse_get(big.as_bytes()).unwrap_err(), HeadError::TooLarge);
        let fits = format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
            "a".repeat(MAX_HEAD - 100)
        );
        assert!(parse_get(fits.as_bytes()).unwrap().is_some());
    }
}
