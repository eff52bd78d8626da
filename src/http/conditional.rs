//! Validators and conditional requests (docs/module-behaviour.md §7, RFC 9110
//! §13).
//!
//! The module produced no ETag and honoured only a byte-identical
//! `If-Modified-Since`. Here:
//!
//! **ETag** (strong, lowercase hex, derived so that every replica agrees):
//! - normal and trunk files, from the file ID: `"<crc32 8 hex>-<size hex>-<create ts hex>"`
//!   ([`etag_for_id`]), e.g. `"62616e6b-25c-5c808860"`;
//! - appender and slave files (mutable, or size/crc unknown from the ID),
//!   from the local file like nginx: `"<mtime hex>-<size hex>"`
//!   ([`etag_for_meta`]). A change within the same second that keeps the
//!   size is not seen (as with nginx).
//!
//! A negative timestamp is written as its 64-bit two's complement.
//!
//! **Evaluation** ([`evaluate`], RFC 9110 §13.2.2 order, for GET/HEAD — the
//! only methods served):
//! 1. `If-Match` present: no member matches (strong comparison, `*` matches)
//!    → 412;
//! 2. else `If-Unmodified-Since` with a valid date earlier than
//!    Last-Modified → 412 (invalid date: ignored);
//! 3. `If-None-Match` present: a member matches (weak comparison, `*`
//!    matches — the recorded `inm_star_A` answer) → 304;
//! 4. else `If-Modified-Since` → 304 when the value is byte-identical to the
//!    Last-Modified string (the module's rule, so unparsable-but-identical
//!    strings keep working) or when it is a valid date and Last-Modified ≤
//!    it (RFC; the module answered 200 to a later date — recorded
//!    `ims_newer_A`);
//! 5. `If-Range` decides whether a `Range` applies: an entity-tag must match
//!    strongly; a date must equal Last-Modified exactly; anything else → the
//!    Range is ignored and the full 200 is sent. The module ignored
//!    `If-Range` (recorded `if_range_A`: 206 for a stale date); the
//!    correction here answers 200.
//!
//! **Dates** ([`http_date`]): IMF-fixdate, clamped to 1970-01-01 ..=
//! 9999-12-31T23:59:59 so that no timestamp can fail.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use ::http::{HeaderMap, HeaderValue};
use bytes::Bytes;

/// Latest second an IMF-fixdate can express (9999-12-31T23:59:59Z).
const MAX_HTTP_DATE: i64 = 253_402_300_799;

/// What to do with a request after its preconditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the representation; honour a `Range` header only if
    /// `apply_range` (false when `If-Range` does not match; true without
    /// `If-Range`).
    Proceed {
        /// Whether a `Range` header may be applied.
        apply_range: bool,
    },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// (crc32, size, create time) of an ID's ETag.
type EtagKey = (u32, u64, i64);

/// Strong ETag of a normal or trunk file, from its ID:
/// `"<crc32 8 hex>-<size hex>-<create ts hex>"`.
pub fn etag_for_id(crc32: u32, size: u64, create_ts: i64) -> HeaderValue {
    // Per-thread copy of the last one (a popular file is asked for again).
    thread_local! {
        static LAST: std::cell::RefCell<Option<(EtagKey, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    let key = (crc32, size, create_ts);
    let make = || header(format!("\"{crc32:08x}-{size:x}-{create_ts:x}\""));
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return make();
        };
        match &*last {
            Some((k, v)) if *k == key => v.clone(),
            _ => {
                let v = make();
                *last = Some((key, v.clone()));
                v
            }
        }
    })
}

/// Strong ETag of an appender or slave file, from the local file:
/// `"<mtime hex>-<size hex>"`.
pub fn etag_for_meta(size: u64, mtime: i64) -> HeaderValue {
    header(format!("\"{mtime:x}-{size:x}\""))
}

/// IMF-fixdate (`Wed, 25 Nov 2026 10:17:29 GMT`) of a unix time, clamped
/// to the years 1970..=9999.
pub fn http_date(unix: i64) -> HeaderValue {
    // Most answers repeat the previous date (one file, or the clock's
    // second): a per-thread copy of the last one saves the formatting.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return header(http_date_string(unix));
        };
        match &*last {
            Some((t, v)) if *t == unix => v.clone(),
            _ => {
                let v = header(http_date_string(unix));
                *last = Some((unix, v.clone()));
                v
            }
        }
    })
}

/// An IMF-fixdate for `unix`, clamped to the years HTTP dates can name.
pub(crate) fn http_date_string(unix: i64) -> String {
    let secs = u64::try_from(unix.clamp(0, MAX_HTTP_DATE)).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// A header value from text built here (ASCII only).
fn header(text: String) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Evaluates the request's preconditions against the representation's
/// `etag` and `last_modified` (unix seconds). Meant for GET and HEAD.
pub fn evaluate(headers: &HeaderMap, etag: &HeaderValue, last_modified: i64) -> Precondition {
    // Most requests carry no conditional header: nothing is parsed or
    // formatted for them.
    // One pass over the few names (standard names compare as integers)
    // instead of five hash lookups.
    let conditional = |n: &http::HeaderName| {
        [
            IF_MATCH,
            IF_UNMODIFIED_SINCE,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_RANGE,
        ]
        .contains(n)
    };
    if !headers.keys().any(conditional) {
        return Precondition::Proceed { apply_range: true };
    }
    let ours = parse_tags(etag.as_bytes()).tags.into_iter().next();
    let last_modified_text = http_date_string(last_modified);

    if let Some(list) = tag_list(headers, &IF_MATCH) {
        if !list.matches(ours, true) {
            return Precondition::Failed;
        }
    } else if let Some(date) = headers.get(IF_UNMODIFIED_SINCE).and_then(parse_date) {
        if i128::from(last_modified) > date {
            return Precondition::Failed;
        }
    }

    if let Some(list) = tag_list(headers, &IF_NONE_MATCH) {
        if list.matches(ours, false) {
            return Precondition::NotModified;
        }
    } else if let Some(ims) = headers.get(IF_MODIFIED_SINCE) {
        let identical = ims.as_bytes() == last_modified_text.as_bytes();
        let not_newer = parse_date(ims).is_some_and(|d| i128::from(last_modified) <= d);
        if identical || not_newer {
            return Precondition::NotModified;
        }
    }

    let apply_range = match headers.get(IF_RANGE) {
        None => true,
        Some(v) => if_range_matches(v, ours, last_modified, &last_modified_text),
    };
    Precondition::Proceed { apply_range }
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110
/// §13.1.2); used for a variant's own tag (the gzip one).
pub fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = parse_tags(etag.as_bytes()).tags.into_iter().next();
    tag_list(headers, &IF_NONE_MATCH).is_some_and(|l| l.matches(ours, false))
}

fn if_range_matches(
    value: &HeaderValue,
    ours: Option<Tag<'_>>,
    last_modified: i64,
    last_modified_text: &str,
) -> bool {
    let raw = trim(value.as_bytes());
    if raw.starts_with(b"\"") || raw.starts_with(b"W/") {
        let list = parse_tags(raw);
        return list.tags.len() == 1 && !list.any && list.matches(ours, true);
    }
    raw == last_modified_text.as_bytes()
        || parse_date(value).is_some_and(|d| d == i128::from(last_modified))
}

/// A valid HTTP-date as unix seconds.
fn parse_date(value: &HeaderValue) -> Option<i128> {
    let text = value.to_str().ok()?;
    let time = httpdate::parse_http_date(text).ok()?;
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    Some(i128::from(secs))
}

/// One entity-tag: weak flag and opaque text (between the quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

/// The members of an `If-Match`/`If-None-Match` list.
#[derive(Debug, Default)]
struct TagList<'a> {
    any: bool,
    tags: Vec<Tag<'a>>,
}

impl TagList<'_> {
    /// Whether any member matches `ours` (strong or weak comparison,
    /// RFC 9110 §8.8.3.2). `*` matches any existing representation.
    fn matches(&self, ours: Option<Tag<'_>>, strong: bool) -> bool {
        if self.any {
            return true;
        }
        let Some(ours) = ours else {
            return false;
        };
        self.tags
            .iter()
            .any(|t| t.opaque == ours.opaque && (!strong || (!t.weak && !ours.weak)))
    }
}

/// All values of a list header merged, or `None` when absent.
fn tag_list<'a>(headers: &'a HeaderMap, name: &::http::HeaderName) -> Option<TagList<'a>> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut list = TagList::default();
    for v in values {
        let part = parse_tags(v.as_bytes());
        list.any |= part.any;
        list.tags.extend(part.tags);
    }
    Some(list)
}

/// Parses `*` or `1#entity-tag`; members that are not entity-tags are
/// skipped up to the next comma.
fn parse_tags(mut s: &[u8]) -> TagList<'_> {
    let mut list = TagList::default();
    loop {
        s = skip_separators(s);
        if s.is_empty() {
            return list;
        }
        let (weak, rest) = match s.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if let Some(body) = rest.strip_prefix(b"\"") {
            if let Some(close) = body.iter().position(|&b| b == b'"') {
                let (opaque, after) = body.split_at(close);
                list.tags.push(Tag { weak, opaque });
                s = after.get(1..).unwrap_or_default();
                continue;
            }
            return list;
        }
        let end = s.iter().position(|&b| b == b',').unwrap_or(s.len());
        let (member, after) = s.split_at(end);
        if trim(member) == b"*" {
            list.any = true;
        }
        s = after;
    }
}

fn skip_separators(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t' || b == b',')
        .count();
    s.get(n..).unwrap_or_default()
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Last-Modified of the recorded 3300-byte file.
    const LM_TEXT: &str = "Wed, 25 Nov 2026 10:17:29 GMT";
    const LM: i64 = 1_795_601_849;
    const ETAG: &str = "\"0c1b2a39-ce4-6b06b5b9\"";

    fn etag() -> HeaderValue {
        HeaderValue::from_static(ETAG)
    }

    fn eval(pairs: &[(&str, &str)]) -> Precondition {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                ::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        evaluate(&h, &etag(), LM)
    }

    const GO: Precondition = Precondition::Proceed { apply_range: true };
    const FULL: Precondition = Precondition::Proceed { apply_range: false };
    const NM: Precondition = Precondition::NotModified;
    const FAIL: Precondition = Precondition::Failed;

    #[test]
    fn last_modified_constant_is_consistent() {
        assert_eq!(http_date(LM), LM_TEXT);
    }

    #[test]
    fn etag_formats() {
        // docs/file-id.md §9 example 1: crc 0x62616E6B, size 604, ts 1551927392.
        assert_eq!(
            etag_for_id(0x6261_6E6B, 604, 1_551_927_392),
            "\"62616e6b-25c-5c808860\""
        );
        assert_eq!(etag_for_id(0, 0, 0), "\"00000000-0-0\"");
        assert_eq!(
            etag_for_id(0xDEAD_BEEF, 5_368_709_120, 1),
            "\"deadbeef-140000000-1\""
        );
        assert_eq!(etag_for_id(1, 1, -1), "\"00000001-1-ffffffffffffffff\"");
        assert_eq!(etag_for_meta(56, 1_795_602_314), "\"6b06b78a-38\"");
        assert_eq!(etag_for_meta(0, 0), "\"0-0\"");
        assert_eq!(
            etag_for_meta(u64::MAX, i64::MIN),
            "\"8000000000000000-ffffffffffffffff\""
        );
    }

    #[test]
    fn http_date_format_and_clamp() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_551_927_392), "Thu, 07 Mar 2019 02:56:32 GMT");
        assert_eq!(http_date(-1), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(i64::MIN), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(MAX_HTTP_DATE), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            http_date(MAX_HTTP_DATE + 1),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn no_conditional_headers() {
        assert_eq!(eval(&[]), GO);
    }

    // Recorded cases (responses.jsonl).
    #[test]
    fn recorded_ims_equal_is_304() {
        assert_eq!(eval(&[("if-modified-since", LM_TEXT)]), NM);
    }

    #[test]
    fn recorded_ims_newer_is_304_by_rfc() {
        // The module answered 200 (exact match only); RFC date comparison → 304.
        assert_eq!(
            eval(&[("if-modified-since", "Wed, 25 Nov 2026 11:17:29 GMT")]),
            NM
        );
    }

    #[test]
    fn recorded_inm_star_is_304() {
        assert_eq!(eval(&[("if-none-match", "*")]), NM);
    }

    #[test]
    fn recorded_if_range_stale_date_ignores_range() {
        // The module sent 206; a stale If-Range date means 200 full.
        assert_eq!(
            eval(&[
                ("if-range", "Wed, 01 Jan 2020 00:00:00 GMT"),
                ("range", "bytes=0-9")
            ]),
            FULL
        );
    }

    #[test]
    fn if_modified_since_alone() {
        assert_eq!(
            eval(&[("if-modified-since", "Wed, 25 Nov 2026 10:17:28 GMT")]),
            GO
        );
        assert_eq!(
            eval(&[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")]),
            GO
        );
        assert_eq!(
            eval(&[("if-modified-since", "Thu, 01 Jan 2037 00:00:00 GMT")]),
            NM
        );
        // Other HTTP-date forms (RFC 850, asctime).
        assert_eq!(
            eval(&[("if-modified-since", "Wednesday, 25-Nov-26 10:17:29 GMT")]),
            NM
        );
        assert_eq!(
            eval(&[("if-modified-since", "Wed Nov 25 10:17:29 2026")]),
            NM
        );
        // Bad dates are ignored.
        for bad in [
            "yesterday",
            "",
            "Wed, 32 Nov 2026 10:17:29 GMT",
            "0",
            "Wed, 25 Nov 2026 10:17:29 GMT; length=3300",
        ] {
            assert_eq!(eval(&[("if-modified-since", bad)]), GO, "{bad}");
        }
    }

    #[test]
    fn ims_byte_identical_unparsable_string_still_304() {
        // Last-Modified of a negative timestamp is clamped to the epoch text;
        // only byte identity is checked for such odd strings.
        let h = {
            let mut h = HeaderMap::new();
            h.insert(
                IF_MODIFIED_SINCE,
                HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
            );
            h
        };
        assert_eq!(evaluate(&h, &etag(), -5), NM);
        assert_eq!(evaluate(&h, &etag(), 5), GO);
    }

    #[test]
    fn if_none_match_alone() {
        assert_eq!(eval(&[("if-none-match", ETAG)]), NM);
        assert_eq!(eval(&[("if-none-match", &format!("W/{ETAG}"))]), NM);
        assert_eq!(eval(&[("if-none-match", "\"other\"")]), GO);
        assert_eq!(eval(&[("if-none-match", &format!("\"a\", {ETAG}"))]), NM);
        assert_eq!(
            eval(&[("if-none-match", &format!("\"a\",W/\"b\" ,  {ETAG} ,"))]),
            NM
        );
        assert_eq!(
            eval(&[("if-none-match", "\"a\""), ("if-none-match", ETAG)]),
            NM
        );
        assert_eq!(eval(&[("if-none-match", "0c1b2a39-ce4-6b06b5b9")]), GO);
        assert_eq!(eval(&[("if-none-match", "")]), GO);
        assert_eq!(eval(&[("if-none-match", "\"unterminated")]), GO);
        assert_eq!(eval(&[("if-none-match", "junk, *")]), NM);
    }

    #[test]
    fn if_none_match_disables_if_modified_since() {
        assert_eq!(
            eval(&[
                ("if-none-match", "\"other\""),
                ("if-modified-since", LM_TEXT)
            ]),
            GO
        );
        assert_eq!(
            eval(&[
                ("if-none-match", ETAG),
                ("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")
            ]),
            NM
        );
    }

    #[test]
    fn if_match_alone() {
        assert_eq!(eval(&[("if-match", ETAG)]), GO);
        assert_eq!(eval(&[("if-match", "*")]), GO);
        assert_eq!(eval(&[("if-match", &format!("\"x\", {ETAG}"))]), GO);
        // Weak tags never match strongly.
        assert_eq!(eval(&[("if-match", &format!("W/{ETAG}"))]), FAIL);
        assert_eq!(eval(&[("if-match", "\"other\"")]), FAIL);
        assert_eq!(eval(&[("if-match", "garbage")]), FAIL);
        assert_eq!(eval(&[("if-match", "")]), FAIL);
    }

    #[test]
    fn if_unmodified_since_alone() {
        assert_eq!(eval(&[("if-unmodified-since", LM_TEXT)]), GO);
        assert_eq!(
            eval(&[("if-unmodified-since", "Thu, 01 Jan 2037 00:00:00 GMT")]),
            GO
        );
        assert_eq!(
            eval(&[("if-unmodified-since", "Wed, 25 Nov 2026 10:17:28 GMT")]),
            FAIL
        );
        assert_eq!(eval(&[("if-unmodified-since", "not a date")]), GO);
    }

    #[test]
    fn if_match_overrides_if_unmodified_since() {
        assert_eq!(
            eval(&[
                ("if-match", ETAG),
                ("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT")
            ]),
            GO
        );
        assert_eq!(
            eval(&[("if-match", "\"x\""), ("if-unmodified-since", LM_TEXT)]),
            FAIL
        );
    }

    #[test]
    fn precondition_failure_beats_not_modified() {
        assert_eq!(
            eval(&[("if-match", "\"x\""), ("if-none-match", ETAG)]),
            FAIL
        );
        assert_eq!(
            eval(&[
                ("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT"),
                ("if-modified-since", LM_TEXT)
            ]),
            FAIL
        );
        assert_eq!(eval(&[("if-match", ETAG), ("if-none-match", ETAG)]), NM);
        assert_eq!(eval(&[("if-match", "*"), ("if-none-match", "*")]), NM);
    }

    #[test]
    fn if_range() {
        assert_eq!(eval(&[("if-range", ETAG)]), GO);
        assert_eq!(eval(&[("if-range", &format!(" {ETAG} "))]), GO);
        assert_eq!(eval(&[("if-range", &format!("W/{ETAG}"))]), FULL);
        assert_eq!(eval(&[("if-range", "\"other\"")]), FULL);
        assert_eq!(eval(&[("if-range", &format!("{ETAG}, {ETAG}"))]), FULL);
        assert_eq!(eval(&[("if-range", "*")]), FULL);
        assert_eq!(eval(&[("if-range", LM_TEXT)]), GO);
        assert_eq!(
            eval(&[("if-range", "Wednesday, 25-Nov-26 10:17:29 GMT")]),
            GO
        );
        assert_eq!(eval(&[("if-range", "Wed, 25 Nov 2026 10:17:30 GMT")]), FULL);
        assert_eq!(eval(&[("if-range", "Wed, 25 Nov 2026 10:17:28 GMT")]), FULL);
        assert_eq!(eval(&[("if-range", "garbage")]), FULL);
        assert_eq!(eval(&[("if-range", "")]), FULL);
    }

    #[test]
    fn if_range_combined_with_others() {
        assert_eq!(eval(&[("if-range", "\"other\""), ("if-match", ETAG)]), FULL);
        assert_eq!(
            eval(&[("if-range", "\"other\""), ("if-none-match", ETAG)]),
            NM
        );
        assert_eq!(
            eval(&[
                ("if-range", ETAG),
                ("if-modified-since", "Wed, 25 Nov 2026 10:00:00 GMT")
            ]),
            GO
        );
    }

    #[test]
    fn weak_or_unparsable_own_etag() {
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"a\""));
        assert_eq!(evaluate(&h, &HeaderValue::from_static("W/\"a\""), LM), NM);
        let mut h = HeaderMap::new();
        h.insert(IF_MATCH, HeaderValue::from_static("\"a\""));
        assert_eq!(evaluate(&h, &HeaderValue::from_static("W/\"a\""), LM), FAIL);
        assert_eq!(
            evaluate(&h, &HeaderValue::from_static("nonsense"), LM),
            FAIL
        );
        let mut h = HeaderMap::new();
        h.insert(IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(evaluate(&h, &HeaderValue::from_static("nonsense"), LM), GO);
    }

    #[test]
    fn tag_parser() {
        let l = parse_tags(b" \"a\" , W/\"b,c\",,\"\"");
        assert!(!l.any);
        assert_eq!(
            l.tags,
            vec![
                Tag {
                    weak: false,
                    opaque: b"a"
                },
                Tag {
                    weak: true,
                    opaque: b"b,c"
                },
                Tag {
                    weak: false,
                    opaque: b""
                },
            ]
        );
        assert!(parse_tags(b"*").any);
        assert!(parse_tags(b" * ").any);
        assert!(!parse_tags(b"**").any);
        assert!(parse_tags(b"W/").tags.is_empty());
        assert!(parse_tags(b"\xff\xfe").tags.is_empty());
    }

    #[test]
    fn non_utf8_header_values_do_not_panic() {
        let mut h = HeaderMap::new();
        for name in [
            IF_MATCH,
            IF_NONE_MATCH,
            IF_MODIFIED_SINCE,
            IF_UNMODIFIED_SINCE,
            IF_RANGE,
        ] {
            h.insert(name, HeaderValue::from_bytes(b"\xff\"\xfe").unwrap());
        }
        assert_eq!(evaluate(&h, &etag(), LM), FAIL);
    }
}
