//! `Content-Disposition: attachment` from the `filename` query parameter
//! (docs/module-behaviour.md §10, RFC 6266, RFC 8187).
//!
//! The module sends `attachment; filename="<decoded value>"` with the raw
//! bytes and no escaping. Kept: a name of plain, safe ASCII (printable, no
//! `"` or `\`) gets exactly that header, byte for byte. Fixed:
//! - control characters (C0, DEL and, in UTF-8 values, C1) are dropped, so
//!   CR/LF cannot inject headers;
//! - any other name gets an ASCII-only `filename=` fallback in which `"`,
//!   `\` and every non-ASCII character are replaced by `_` (RFC 6266 §4.3,
//!   Appendix D: several user agents neither decode raw UTF-8 there nor
//!   unescape backslashes), followed by
//!   `; filename*=UTF-8''<percent-encoded name>` (RFC 8187 §3.2), which RFC
//!   6266 user agents prefer; invalid UTF-8 is read with U+FFFD for the
//!   bytes that are not UTF-8;
//! - the value is cut to [`MAX_FILENAME_LEN`] bytes (on a character boundary
//!   for UTF-8) instead of the module's 232.
//!
//! An empty value still yields `attachment; filename=""`, as in the module.

use ::http::HeaderValue;
use bytes::Bytes;

/// Longest filename kept, in bytes after dropping control characters.
pub const MAX_FILENAME_LEN: usize = 1024;

/// Builds the header for a decoded `filename` value.
///
/// Returns `None` only if the result is not a valid header value, which the
/// rules above make impossible (the header is ASCII without controls).
pub fn content_disposition(filename: &[u8]) -> Option<HeaderValue> {
    let name = sanitise(filename);
    let mut out = Vec::with_capacity(name.len() * 4 + 40);
    out.extend_from_slice(b"attachment; filename=\"");
    if name.bytes().all(is_plain) {
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
    } else {
        for c in name.chars() {
            match c {
                '"' | '\\' => out.push(b'_'),
                c if c.is_ascii() => out.push(c as u8),
                _ => out.push(b'_'),
            }
        }
        out.extend_from_slice(b"\"; filename*=UTF-8''");
        for &b in name.as_bytes() {
            if is_attr_char(b) {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
        }
    }
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Printable ASCII other than `"` and `\`: sent as the module sends it.
fn is_plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// The name as text (invalid UTF-8 read lossily), control characters
/// dropped, cut to [`MAX_FILENAME_LEN`] bytes on a character boundary.
fn sanitise(filename: &[u8]) -> String {
    let text = String::from_utf8_lossy(filename);
    let mut out = String::with_capacity(text.len().min(MAX_FILENAME_LEN));
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_FILENAME_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// RFC 8187 `attr-char`: sent unencoded in `filename*`.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cd(name: &[u8]) -> String {
        let v = content_disposition(name).unwrap();
        assert!(v.as_bytes().is_ascii(), "{v:?}");
        v.to_str().unwrap().to_string()
    }

    fn cds(name: &str) -> String {
        cd(name.as_bytes())
    }

    #[test]
    fn recorded_plain_names_byte_for_byte() {
        assert_eq!(cds("report.txt"), r#"attachment; filename="report.txt""#);
        assert_eq!(cds("z.bin"), r#"attachment; filename="z.bin""#);
        assert_eq!(
            cds("my report.txt"),
            r#"attachment; filename="my report.txt""#
        );
        // Plain ASCII punctuation stays as the module sends it.
        assert_eq!(
            cds("a b;c=d'e%f.txt"),
            r#"attachment; filename="a b;c=d'e%f.txt""#
        );
    }

    #[test]
    fn recorded_utf8_name_gets_an_ascii_fallback_and_filename_star() {
        // filename_param_utf8_A: the module sent the raw UTF-8 bytes.
        assert_eq!(
            cds("中文.txt"),
            "attachment; filename=\"__.txt\"; filename*=UTF-8''%E4%B8%AD%E6%96%87.txt"
        );
    }

    #[test]
    fn quotes_and_backslashes_are_replaced_never_escaped() {
        assert_eq!(
            cds(r#"a"b.txt"#),
            r#"attachment; filename="a_b.txt"; filename*=UTF-8''a%22b.txt"#
        );
        assert_eq!(
            cds(r"a\b.txt"),
            r#"attachment; filename="a_b.txt"; filename*=UTF-8''a%5Cb.txt"#
        );
        assert!(!cds(r#"\""#).contains('\\'));
    }

    #[test]
    fn crlf_injection_is_dropped() {
        assert_eq!(
            cds("a.txt\r\nSet-Cookie: x=1"),
            r#"attachment; filename="a.txtSet-Cookie: x=1""#
        );
        assert_eq!(cds("a\0b\tc\x7fd\x1be"), r#"attachment; filename="abcde""#);
        // C1 controls in UTF-8.
        assert_eq!(cds("a\u{85}b"), r#"attachment; filename="ab""#);
        // Invalid UTF-8 too.
        assert_eq!(
            cd(b"\xff\r\n\"x"),
            "attachment; filename=\"__x\"; filename*=UTF-8''%EF%BF%BD%22x"
        );
    }

    #[test]
    fn invalid_utf8_is_read_lossily() {
        assert_eq!(
            cd(b"\xff\xfe.txt"),
            "attachment; filename=\"__.txt\"; filename*=UTF-8''%EF%BF%BD%EF%BF%BD.txt"
        );
    }

    #[test]
    fn filename_star_encoding() {
        let v = cds("é a'b%;.txt");
        assert_eq!(
            v,
            "attachment; filename=\"_ a'b%;.txt\"; filename*=UTF-8''%C3%A9%20a%27b%25%3B.txt"
        );
        let v = cds("ü!#$&+-.^_`|~");
        assert!(v.ends_with("filename*=UTF-8''%C3%BC!#$&+-.^_`|~"), "{v}");
    }

    #[test]
    fn empty_value() {
        assert_eq!(cds(""), r#"attachment; filename="""#);
        assert_eq!(cds("\r\n"), r#"attachment; filename="""#);
    }

    #[test]
    fn length_is_capped_on_char_boundaries() {
        let long = "a".repeat(5000);
        assert_eq!(
            cds(&long),
            format!("attachment; filename=\"{}\"", "a".repeat(MAX_FILENAME_LEN))
        );
        // 3-byte characters: 341 fit into 1024 bytes (1023), the 342nd does not.
        let v = cds(&"中".repeat(400));
        assert!(v.starts_with(&format!("attachment; filename=\"{}\"", "_".repeat(341))));
        assert_eq!(v.matches("%E4%B8%AD").count(), 341);
    }

    #[test]
    fn every_single_byte_gives_an_ascii_header() {
        for b in 0..=255u8 {
            let v = content_disposition(&[b, b'x']).expect("a header");
            assert!(v.as_bytes().is_ascii(), "{b}");
            let plain = is_plain(b);
            assert_eq!(
                !v.as_bytes().windows(9).any(|w| w == b"filename*"),
                plain || b < 0x20 || b == 0x7f,
                "{b}"
            );
        }
    }
}
