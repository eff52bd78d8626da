//! `Content-Disposition: attachment` from the `filename` query parameter
//! (docs/module-behaviour.md §10, RFC 6266, RFC 8187).
//!
//! The module sends `attachment; filename="<decoded value>"` with the raw
//! bytes and no escaping. Kept: the raw bytes inside the quotes (UTF-8 passes
//! through; browsers rely on it). Fixed:
//! - `"` and `\` are escaped with a backslash (RFC 9110 quoted-string);
//! - control characters (C0, DEL and, in UTF-8 values, C1) are dropped, so
//!   CR/LF cannot inject headers;
//! - a valid UTF-8 value with non-ASCII characters also gets
//!   `; filename*=UTF-8''<percent-encoded>` (RFC 8187), which RFC 6266
//!   user agents prefer over `filename`;
//! - invalid UTF-8 is kept byte for byte in the quoted form only;
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
/// sanitising rules above make impossible in practice.
pub fn content_disposition(filename: &[u8]) -> Option<HeaderValue> {
    let (name, utf8) = sanitise(filename);
    let mut out = Vec::with_capacity(name.len() * 4 + 40);
    out.extend_from_slice(b"attachment; filename=\"");
    for &b in &name {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    if utf8 && !name.is_ascii() {
        out.extend_from_slice(b"; filename*=UTF-8''");
        for &b in &name {
            if is_attr_char(b) {
                out.push(b);
            } else {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            }
        }
    }
    HeaderValue::from_maybe_shared(Bytes::from(out)).ok()
}

/// Drops control characters and truncates; also tells whether the result is
/// valid UTF-8.
fn sanitise(filename: &[u8]) -> (Vec<u8>, bool) {
    match std::str::from_utf8(filename) {
        Ok(text) => {
            let mut out = String::with_capacity(text.len().min(MAX_FILENAME_LEN));
            for c in text.chars().filter(|c| !c.is_control()) {
                if out.len() + c.len_utf8() > MAX_FILENAME_LEN {
                    break;
                }
                out.push(c);
            }
            (out.into_bytes(), true)
        }
        Err(_) => {
            let mut out: Vec<u8> = filename
                .iter()
                .copied()
                .filter(|&b| b >= 0x20 && b != 0x7f)
                .collect();
            out.truncate(MAX_FILENAME_LEN);
            (out, false)
        }
    }
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

    fn cd(name: &[u8]) -> Vec<u8> {
        content_disposition(name).unwrap().as_bytes().to_vec()
    }

    fn cds(name: &str) -> String {
        String::from_utf8(cd(name.as_bytes())).unwrap()
    }

    #[test]
    fn recorded_plain_names() {
        assert_eq!(cds("report.txt"), r#"attachment; filename="report.txt""#);
        assert_eq!(cds("z.bin"), r#"attachment; filename="z.bin""#);
        assert_eq!(
            cds("my report.txt"),
            r#"attachment; filename="my report.txt""#
        );
    }

    #[test]
    fn recorded_utf8_name_keeps_raw_bytes_and_adds_filename_star() {
        // filename_param_utf8_A: the module sent the raw UTF-8 bytes.
        let v = cd("中文.txt".as_bytes());
        let plain = b"attachment; filename=\"\xe4\xb8\xad\xe6\x96\x87.txt\"";
        assert!(v.starts_with(plain));
        assert_eq!(
            &v[plain.len()..],
            b"; filename*=UTF-8''%E4%B8%AD%E6%96%87.txt"
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(cds(r#"a"b.txt"#), r#"attachment; filename="a\"b.txt""#);
        assert_eq!(cds(r"a\b.txt"), r#"attachment; filename="a\\b.txt""#);
        assert_eq!(cds(r#"\""#), r#"attachment; filename="\\\"""#);
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
        // Invalid UTF-8 path too.
        assert_eq!(
            cd(b"\xff\r\n\"x"),
            b"attachment; filename=\"\xff\\\"x\"".to_vec()
        );
    }

    #[test]
    fn invalid_utf8_kept_without_filename_star() {
        let v = cd(b"\xff\xfe.txt");
        assert_eq!(v, b"attachment; filename=\"\xff\xfe.txt\"".to_vec());
    }

    #[test]
    fn ascii_names_get_no_filename_star() {
        let v = cds("a b;c=d'e%f.txt");
        assert_eq!(v, r#"attachment; filename="a b;c=d'e%f.txt""#);
    }

    #[test]
    fn filename_star_encoding() {
        let v = cds("é a'b%;.txt");
        assert!(
            v.ends_with("; filename*=UTF-8''%C3%A9%20a%27b%25%3B.txt"),
            "{v}"
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
        let v = cds(&long);
        assert_eq!(
            v,
            format!("attachment; filename=\"{}\"", "a".repeat(MAX_FILENAME_LEN))
        );
        // 3-byte characters: 341 fit into 1024 bytes (1023), the 342nd does not.
        let v = cds(&"中".repeat(400));
        let plain = format!("attachment; filename=\"{}\"", "中".repeat(341));
        assert!(v.starts_with(&plain));
        assert_eq!(v.matches("%E4%B8%AD").count(), 341);
        // Invalid UTF-8 is cut bytewise.
        let mut raw = vec![0xffu8; 3000];
        raw.extend_from_slice(b"tail");
        let v = cd(&raw);
        assert_eq!(
            v.len(),
            "attachment; filename=\"\"".len() + MAX_FILENAME_LEN
        );
    }

    #[test]
    fn every_single_byte_is_handled() {
        for b in 0..=255u8 {
            let v = content_disposition(&[b, b'x']);
            assert!(v.is_some(), "{b}");
        }
    }
}
