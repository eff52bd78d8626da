//! From the request path to `(group, remote filename)`: nginx-style URI
//! normalisation (docs/module-behaviour.md §1 step 3) and the split of
//! docs/module-behaviour.md §2 step 2.5, with paths that are not FastDFS URLs
//! answered 404 as nginx's `location ~ /group[0-9]/M0[0-9]` did.

use std::borrow::Cow;
use std::fmt;

use super::GROUP_NAME_MAX_LEN;

/// Why a request path does not lead to a file ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UrlError {
    /// The path does not start with `/`.
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// A NUL byte after percent-decoding.
    NulByte,
    /// The decoded path is not UTF-8.
    InvalidUtf8,
    /// A `..` segment climbs above `/`.
    AboveRoot,
    /// Not a FastDFS URL (nginx's `location` would not have matched).
    NoRoute,
}

impl UrlError {
    /// HTTP status: 404 for [`UrlError::NoRoute`], 400 for malformed paths.
    pub fn status(&self) -> http::StatusCode {
        match self {
            UrlError::NoRoute => http::StatusCode::NOT_FOUND,
            UrlError::NotAbsolute
            | UrlError::BadEscape
            | UrlError::NulByte
            | UrlError::InvalidUtf8
            | UrlError::AboveRoot => http::StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::NotAbsolute => "path does not start with '/'",
            UrlError::BadEscape => "invalid percent escape in path",
            UrlError::NulByte => "NUL byte in path",
            UrlError::InvalidUtf8 => "decoded path is not UTF-8",
            UrlError::AboveRoot => "path climbs above the root",
            UrlError::NoRoute => "not a FastDFS file URL",
        })
    }
}

impl std::error::Error for UrlError {}

/// Normalises a raw request path (without the query) like nginx does for
/// `r->uri`: percent-decodes `%XX` (an invalid escape is an error), merges
/// repeated `/`, drops `.` segments and resolves `..` segments (climbing
/// above `/` is an error). A decoded `%2F` separates segments, as in nginx.
/// A trailing `/`, `/.` or `/..` leaves a trailing `/`. A NUL byte or invalid
/// UTF-8 after decoding is an error.
pub fn normalize_path(raw_path: &str) -> Result<Cow<'_, str>, UrlError> {
    if !raw_path.starts_with('/') {
        return Err(UrlError::NotAbsolute);
    }
    // Already normal (the common case): nothing to decode or collapse.
    if raw_path
        .as_bytes()
        .split(|&b| b == b'/')
        .skip(1)
        .all(|seg| !matches!(seg, b"" | b"." | b"..") && !seg.contains(&b'%') && !seg.contains(&0))
    {
        return Ok(Cow::Borrowed(raw_path));
    }
    let decoded = percent_decode(raw_path.as_bytes())?;
    if decoded.contains(&0) {
        return Err(UrlError::NulByte);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| UrlError::InvalidUtf8)?;

    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in decoded.split('/') {
        trailing_slash = true;
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(UrlError::AboveRoot)?;
            }
            _ => {
                segments.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// Splits a normalised path into `(group, remote filename)`.
///
/// With `url_have_group_name`: `/<group>/<remote>`, the group 1..16 ASCII
/// alphanumeric and the remote starting with `M`. Without: `/<remote>`, the
/// remote starting with `M`, no group. Anything else is
/// [`UrlError::NoRoute`] (404), e.g. `/etc/passwd`, `/group1/data/sync/x`,
/// a 40-char group. The remote is not validated further (see
/// [`super::FileId::parse`]).
pub fn split_target(
    path: &str,
    url_have_group_name: bool,
) -> Result<(Option<&str>, &str), UrlError> {
    let rest = path.strip_prefix('/').ok_or(UrlError::NoRoute)?;
    let (group, remote) = if url_have_group_name {
        let (group, remote) = rest.split_once('/').ok_or(UrlError::NoRoute)?;
        let valid = !group.is_empty()
            && group.len() <= GROUP_NAME_MAX_LEN
            && group.bytes().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(UrlError::NoRoute);
        }
        (Some(group), remote)
    } else {
        (None, rest)
    };
    if !remote.starts_with('M') {
        return Err(UrlError::NoRoute);
    }
    Ok((group, remote))
}

/// Whether a URL group that this node does not host is still routed as a
/// FastDFS URL: nginx's standard `location ~/group[0-9]/M0[0-9]` in front
/// of the module passed only `group<digits>` names on (recorded
/// `long_group_name_A`: 404 from nginx, the module never saw it). A hosted
/// group is routed whatever its name.
pub fn is_conventional_group(group: &str) -> bool {
    group
        .strip_prefix("group")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Decodes every `%XX`; other bytes are copied as they are.
pub fn percent_decode(input: &[u8]) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|&c| hex(c));
            let lo = bytes.next().and_then(|&c| hex(c));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(UrlError::BadEscape),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

fn hex(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let ok = [
            ("/", "/"),
            ("//", "/"),
            ("/a", "/a"),
            ("/a/", "/a/"),
            ("//a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/../", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/../b", "/b"),
            ("/a/b/../../c", "/c"),
            ("/..a/...", "/..a/..."),
            ("/a/.b", "/a/.b"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
        let more = [
            ("/group1/M00/00/00/x%2Etxt", "/group1/M00/00/00/x.txt"),
            ("/a%2Fb", "/a/b"),
            ("/a%2F%2E%2E%2Fb", "/b"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/.%2e/b", "/b"),
            ("/%25", "/%"),
            ("/%25%32%65", "/%2e"),
            ("/%E4%B8%AD", "/中"),
            ("/中文", "/中文"),
            ("/a?b", "/a?b"),
            ("/a%3Fb", "/a?b"),
            ("/a+b", "/a+b"),
        ];
        for (raw, want) in more {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn normalisation_errors() {
        let cases = [
            ("", UrlError::NotAbsolute),
            ("a/b", UrlError::NotAbsolute),
            ("*", UrlError::NotAbsolute),
            ("/..", UrlError::AboveRoot),
            ("/../", UrlError::AboveRoot),
            ("/a/../..", UrlError::AboveRoot),
            ("/%2e%2E/x", UrlError::AboveRoot),
            ("/a/..%2F..", UrlError::AboveRoot),
            ("/%", UrlError::BadEscape),
            ("/%4", UrlError::BadEscape),
            ("/%G0", UrlError::BadEscape),
            ("/%0G", UrlError::BadEscape),
            ("/%%41", UrlError::BadEscape),
            ("/a%é", UrlError::BadEscape),
            ("/%00", UrlError::NulByte),
            ("/a\0b", UrlError::NulByte),
            ("/%FF", UrlError::InvalidUtf8),
            ("/%E4%B8", UrlError::InvalidUtf8),
            ("/%C0%AF", UrlError::InvalidUtf8),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn conventional_groups() {
        for g in ["group1", "group2", "group10", "group007"] {
            assert!(is_conventional_group(g), "{g}");
        }
        for g in [
            "groupA", "images", "group", "GROUP1", "group1a", "mygroup1", "",
        ] {
            assert!(!is_conventional_group(g), "{g}");
        }
    }

    #[test]
    fn status_mapping() {
        assert_eq!(UrlError::NoRoute.status(), http::StatusCode::NOT_FOUND);
        for e in [
            UrlError::NotAbsolute,
            UrlError::BadEscape,
            UrlError::NulByte,
            UrlError::InvalidUtf8,
            UrlError::AboveRoot,
        ] {
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{e}");
        }
    }

    #[test]
    fn split_with_group() {
        assert_eq!(
            split_target("/group1/M00/00/00/x.txt", true),
            Ok((Some("group1"), "M00/00/00/x.txt"))
        );
        assert_eq!(
            split_target("/group1/M00", true),
            Ok((Some("group1"), "M00"))
        );
        assert_eq!(split_target("/g/M", true), Ok((Some("g"), "M")));
        assert_eq!(
            split_target("/abcdefghijklmnop/M00", true),
            Ok((Some("abcdefghijklmnop"), "M00"))
        );
        for path in [
            "",
            "/",
            "/group1",
            "/group1/",
            "//M00/00/00/x",
            "/etc/passwd",
            "/group1/etc/passwd",
            "/group1/data/sync/binlog.000",
            "/group1/m00/00/00/x",
            "/abcdefghijklmnopq/M00/00/00/x",
            "/group1abcdefghijklmnopqrstuvwxyz/M00/00/00/x",
            "/group-1/M00/00/00/x",
            "/gröup/M00/00/00/x",
            "/M00/00/00/x",
            "group1/M00/00/00/x",
        ] {
            assert_eq!(split_target(path, true), Err(UrlError::NoRoute), "{path:?}");
        }
    }

    #[test]
    fn split_without_group() {
        assert_eq!(
            split_target("/M00/00/00/x.txt", false),
            Ok((None, "M00/00/00/x.txt"))
        );
        for path in [
            "",
            "/",
            "/group1/M00/00/00/x.txt",
            "/etc/passwd",
            "/m00/x",
            "M00/x",
        ] {
            assert_eq!(
                split_target(path, false),
                Err(UrlError::NoRoute),
                "{path:?}"
            );
        }
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        let samples = [
            "/%",
            "/%é",
            "/é%",
            "/%%%",
            "/\u{10FFFF}/..",
            "/a/%C3",
            "/%C3%A9/..",
            "/./././",
        ];
        for s in samples {
            let _ = normalize_path(s).map(|p| split_target(&p, true).map(|_| ()));
        }
    }
}
