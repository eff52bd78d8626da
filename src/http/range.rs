//! The `Range` request header (docs/module-behaviour.md §11, RFC 9110 §14.1–14.4).
//!
//! Parsing ([`parse_range`]) needs no file and happens before anything else,
//! as in the module; resolution ([`ByteRanges::resolve`]) normalises the
//! ranges against the file size.
//!
//! Kept from the module:
//! - a header value of 64 bytes or more → [`RangeError::TooLong`] (400);
//! - at most [`MAX_RANGES`] ranges; more → 416;
//! - whitespace: spaces or tabs are allowed *before* a range and before a
//!   number, never after (`0-10, 20-30` is fine, `0-10 ,20-30` is 416); no
//!   empty list elements. (The module also refused blanks before a suffix
//!   range, `0-1, -5`; accepted here as RFC 9110 list syntax allows it.)
//! - suffix `-N` larger than the file → the whole file;
//! - start ≥ size → 416, end ≥ size → clamped, start > end → 416, any range
//!   on an empty file → 416, several ranges with multi-range disabled → 416;
//! - every range must be satisfiable (no partial acceptance), request order
//!   kept, overlaps not merged.
//!
//! Deliberate corrections (docs/module-behaviour.md §16.2):
//! - `S-E` is always inclusive: `bytes=0-0` is one byte (the module read
//!   `S-0` as `S-`);
//! - the unit must be `bytes` (case-insensitive); any other unit makes the
//!   header ignored (`Ok(None)` → 200 full) instead of being skipped unread;
//! - `bytes=-0` is unsatisfiable (RFC 9110 §14.1.1) instead of the whole file;
//! - numbers are plain ASCII digits (no `+` sign); too large numbers
//!   saturate like C `strtoll`: a huge start is unsatisfiable, a huge end is
//!   clamped to the file;
//! - a 416 carries `Content-Range: bytes */SIZE` ([`unsatisfied_range`]).

use std::fmt;
use std::ops::RangeInclusive;

use ::http::{HeaderValue, StatusCode};

/// Header values this long or longer are refused with 400 (module §1.6).
pub const MAX_HEADER_LEN: usize = 64;

/// Most ranges one request may ask for (`FDFS_MAX_HTTP_RANGES`).
pub const MAX_RANGES: usize = 5;

/// Why a `Range` header cannot be honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// The header value is [`MAX_HEADER_LEN`] bytes or longer.
    TooLong,
    /// The value does not follow the grammar.
    Malformed,
    /// More than [`MAX_RANGES`] ranges.
    TooMany,
    /// A range lies outside the file, or start > end after clamping.
    Unsatisfiable,
    /// Several ranges while `http.multi_range.enabled` is false.
    MultiDisabled,
}

impl RangeError {
    /// The response status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            RangeError::TooLong => StatusCode::BAD_REQUEST,
            RangeError::Malformed
            | RangeError::TooMany
            | RangeError::Unsatisfiable
            | RangeError::MultiDisabled => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeError::TooLong => "range header too long",
            RangeError::Malformed => "malformed range header",
            RangeError::TooMany => "too many ranges",
            RangeError::Unsatisfiable => "range not satisfiable",
            RangeError::MultiDisabled => "multiple ranges are disabled",
        })
    }
}

impl std::error::Error for RangeError {}

/// One range as written in the request, not yet checked against a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `S-E`: bytes S through E inclusive.
    FromTo(u64, u64),
    /// `S-`: from S to the end.
    From(u64),
    /// `-N`: the last N bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// Normalises against `size` (module §11.2), `None` when unsatisfiable.
    fn resolve(self, size: u64) -> Option<RangeInclusive<u64>> {
        let last = size.checked_sub(1)?;
        let (start, end) = match self {
            RangeSpec::FromTo(s, e) => (s, e.min(last)),
            RangeSpec::From(s) => (s, last),
            RangeSpec::Suffix(0) => return None,
            RangeSpec::Suffix(n) => (size.saturating_sub(n), last),
        };
        (start <= last && start <= end).then_some(start..=end)
    }
}

impl fmt::Display for RangeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeSpec::FromTo(s, e) => write!(f, "{s}-{e}"),
            RangeSpec::From(s) => write!(f, "{s}-"),
            RangeSpec::Suffix(n) => write!(f, "-{n}"),
        }
    }
}

/// A syntactically valid `bytes=` range set: 1 to [`MAX_RANGES`] ranges in
/// request order. `Display` renders it back as `bytes=0-9,-5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteRanges(Vec<RangeSpec>);

impl ByteRanges {
    /// The ranges as parsed, in request order.
    pub fn specs(&self) -> &[RangeSpec] {
        &self.0
    }

    /// Resolves every range against a file of `size` bytes, in request order
    /// and without merging overlaps. Every range must be satisfiable.
    pub fn resolve(
        &self,
        size: u64,
        multi_enabled: bool,
    ) -> Result<Vec<RangeInclusive<u64>>, RangeError> {
        let resolved = self
            .0
            .iter()
            .map(|spec| spec.resolve(size).ok_or(RangeError::Unsatisfiable))
            .collect::<Result<Vec<_>, _>>()?;
        if resolved.len() > 1 && !multi_enabled {
            return Err(RangeError::MultiDisabled);
        }
        Ok(resolved)
    }
}

impl fmt::Display for ByteRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes=")?;
        for (i, spec) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{spec}")?;
        }
        Ok(())
    }
}

/// Parses a `Range` header value.
///
/// `Ok(None)`: the unit is not `bytes`, so the header is to be ignored.
pub fn parse_range(value: &[u8]) -> Result<Option<ByteRanges>, RangeError> {
    if value.len() >= MAX_HEADER_LEN {
        return Err(RangeError::TooLong);
    }
    let eq = value
        .iter()
        .position(|&b| b == b'=')
        .ok_or(RangeError::Malformed)?;
    let (unit, set) = value.split_at(eq);
    let set = set.get(1..).unwrap_or_default();
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Ok(None);
    }
    let parts: Vec<&[u8]> = set.split(|&b| b == b',').collect();
    if parts.len() > MAX_RANGES {
        return Err(RangeError::TooMany);
    }
    let specs = parts
        .into_iter()
        .map(parse_spec)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ByteRanges(specs)))
}

/// One range: `-N`, `S-` or `S-E`, leading blanks allowed before numbers.
fn parse_spec(part: &[u8]) -> Result<RangeSpec, RangeError> {
    let part = trim_start(part);
    if let Some(rest) = part.strip_prefix(b"-") {
        return parse_number(rest).map(RangeSpec::Suffix);
    }
    let dash = part
        .iter()
        .position(|&b| b == b'-')
        .ok_or(RangeError::Malformed)?;
    let (start, end) = part.split_at(dash);
    let start = parse_number(start)?;
    let end = end.get(1..).unwrap_or_default();
    if end.is_empty() {
        return Ok(RangeSpec::From(start));
    }
    Ok(RangeSpec::FromTo(start, parse_number(end)?))
}

/// Optional leading spaces/tabs, then one or more ASCII digits, nothing
/// after. Saturates at `u64::MAX`.
fn parse_number(text: &[u8]) -> Result<u64, RangeError> {
    let digits = trim_start(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RangeError::Malformed);
    }
    Ok(digits.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Drops leading spaces and tabs.
fn trim_start(text: &[u8]) -> &[u8] {
    let n = text
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    text.get(n..).unwrap_or_default()
}

/// `Content-Range: bytes S-E/T` for a 206 (and multipart part headers).
pub fn content_range(start: u64, end_inclusive: u64, total: u64) -> HeaderValue {
    HeaderValue::from(ContentRange(start, end_inclusive, total))
}

/// `Content-Range: bytes */T` for a 416 (RFC 9110 §15.5.17).
pub fn unsatisfied_range(total: u64) -> HeaderValue {
    let text = format!("bytes */{total}");
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

/// The text `bytes S-E/T`.
pub(crate) struct ContentRange(pub u64, pub u64, pub u64);

impl fmt::Display for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes {}-{}/{}", self.0, self.1, self.2)
    }
}

impl From<ContentRange> for HeaderValue {
    fn from(cr: ContentRange) -> HeaderValue {
        // Digits, spaces, '-' and '/' only: always a valid header value.
        HeaderValue::from_maybe_shared(bytes::Bytes::from(cr.to_string()))
            .unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<Option<ByteRanges>, RangeError> {
        parse_range(v.as_bytes())
    }

    fn specs(v: &str) -> Vec<RangeSpec> {
        parse(v).unwrap().unwrap().0
    }

    fn resolve(v: &str, size: u64) -> Result<Vec<RangeInclusive<u64>>, RangeError> {
        match parse(v)? {
            Some(r) => r.resolve(size, true),
            None => panic!("ignored: {v}"),
        }
    }

    use RangeSpec::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(specs("bytes=500-999"), vec![FromTo(500, 999)]);
        assert_eq!(specs("bytes=-500"), vec![Suffix(500)]);
        assert_eq!(specs("bytes=9500-"), vec![From(9500)]);
        assert_eq!(
            specs("bytes=0-0,-5,7-"),
            vec![FromTo(0, 0), Suffix(5), From(7)]
        );
    }

    #[test]
    fn unit_is_case_insensitive() {
        assert_eq!(specs("Bytes=0-9"), vec![FromTo(0, 9)]);
        assert_eq!(specs("BYTES=0-9"), vec![FromTo(0, 9)]);
    }

    #[test]
    fn other_units_are_ignored() {
        assert_eq!(parse("items=0-9"), Ok(None));
        assert_eq!(parse("bytesx=0-9"), Ok(None));
        assert_eq!(parse("byte=0-9"), Ok(None));
        assert_eq!(parse("=0-9"), Ok(None));
        assert_eq!(parse(" bytes=0-9"), Ok(None));
    }

    #[test]
    fn malformed_values() {
        for v in [
            "",
            "bytes",
            "bytes 0-9",
            "bytes=",
            "bytes=-",
            "bytes=5",
            "bytes=abc",
            "bytes=a-9",
            "bytes=0-b",
            "bytes=0-9,",
            "bytes=,0-9",
            "bytes=0-9,,5-6",
            "bytes=--5",
            "bytes=-+5",
            "bytes=+5-9",
            "bytes=5--3",
            "bytes=0-9-",
            "bytes=0x10-20",
            "bytes=-5-",
            "bytes=0 -9",
            "bytes=0- 9 ",
            "bytes=0-9 ",
            "bytes= ",
            "bytes=1.5-2",
        ] {
            assert_eq!(parse(v), Err(RangeError::Malformed), "{v:?}");
        }
    }

    #[test]
    fn leading_blanks_before_numbers_are_allowed() {
        assert_eq!(specs("bytes= 0-9"), vec![FromTo(0, 9)]);
        assert_eq!(specs("bytes=0- 9"), vec![FromTo(0, 9)]);
        assert_eq!(specs("bytes=\t0-\t9"), vec![FromTo(0, 9)]);
        assert_eq!(specs("bytes=- 5"), vec![Suffix(5)]);
        assert_eq!(specs("bytes= -5"), vec![Suffix(5)]);
        assert_eq!(specs("bytes=0-1,\t-5"), vec![FromTo(0, 1), Suffix(5)]);
        assert_eq!(
            specs("bytes=0-10, 20-30"),
            vec![FromTo(0, 10), FromTo(20, 30)]
        );
    }

    #[test]
    fn trailing_blanks_are_not() {
        assert_eq!(parse("bytes=0-10 ,20-30"), Err(RangeError::Malformed));
        assert_eq!(parse("bytes=0 -10"), Err(RangeError::Malformed));
    }

    #[test]
    fn five_ranges_ok_six_too_many() {
        assert_eq!(specs("bytes=0-1,2-3,4-5,6-7,8-9").len(), 5);
        assert_eq!(
            parse("bytes=0-1,2-3,4-5,6-7,8-9,10-11"),
            Err(RangeError::TooMany)
        );
    }

    #[test]
    fn length_limit() {
        let v63 = format!("bytes=0-{}", "0".repeat(63 - 8));
        assert_eq!(v63.len(), 63);
        assert!(parse(&v63).is_ok());
        let v64 = format!("bytes=0-{}", "0".repeat(64 - 8));
        assert_eq!(parse(&v64), Err(RangeError::TooLong));
        assert_eq!(RangeError::TooLong.status(), StatusCode::BAD_REQUEST);
        // Even a foreign unit is refused when too long.
        assert_eq!(parse(&"x".repeat(64)), Err(RangeError::TooLong));
    }

    #[test]
    fn recorded_long_header_is_400() {
        let v = "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30,32-32,34-34,36-36,38-38";
        assert_eq!(parse(v).unwrap_err().status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn thousand_ranges_and_huge_numbers_do_not_panic() {
        let many: Vec<String> = (0..1000).map(|i| format!("{i}-{i}")).collect();
        let v = format!("bytes={}", many.join(","));
        assert_eq!(parse(&v), Err(RangeError::TooLong));
        assert_eq!(
            parse_range(v.as_bytes().get(..63).unwrap()),
            Err(RangeError::TooMany)
        );
        assert_eq!(
            specs("bytes=99999999999999999999999999-"),
            vec![From(u64::MAX)]
        );
        assert_eq!(
            resolve("bytes=99999999999999999999999999-", 1000),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(
            resolve("bytes=0-99999999999999999999999999", 1000),
            Ok(vec![0..=999])
        );
        assert_eq!(
            resolve("bytes=-99999999999999999999999999", 1000),
            Ok(vec![0..=999])
        );
        assert_eq!(
            resolve("bytes=18446744073709551615-18446744073709551615", u64::MAX),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(
            resolve("bytes=18446744073709551614-", u64::MAX),
            Ok(vec![u64::MAX - 1..=u64::MAX - 1])
        );
        assert_eq!(
            resolve("bytes=-1", u64::MAX),
            Ok(vec![u64::MAX - 1..=u64::MAX - 1])
        );
    }

    #[test]
    fn arbitrary_bytes_do_not_panic() {
        for b in 0..=255u8 {
            for pos in 0..10 {
                let mut v = b"bytes=0-9,1-".to_vec();
                v.insert(pos, b);
                let _ = parse_range(&v).map(|r| r.map(|r| r.resolve(5, true)));
            }
        }
        assert_eq!(parse_range(b"bytes=\xff-1"), Err(RangeError::Malformed));
    }

    // docs/module-behaviour.md §11 examples on a 1000-byte file.
    #[test]
    fn section_11_examples() {
        assert_eq!(resolve("bytes=0-0", 1000), Ok(vec![0..=0]));
        assert_eq!(resolve("bytes=0-9", 1000), Ok(vec![0..=9]));
        assert_eq!(resolve("bytes=-2000", 1000), Ok(vec![0..=999]));
        assert_eq!(resolve("bytes=-0", 1000), Err(RangeError::Unsatisfiable));
        assert_eq!(resolve("bytes=-1", 1000), Ok(vec![999..=999]));
        assert_eq!(resolve("bytes=1000-", 1000), Err(RangeError::Unsatisfiable));
        assert_eq!(resolve("bytes=999-", 1000), Ok(vec![999..=999]));
        assert_eq!(
            resolve("bytes=1000-1000", 1000),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(resolve("bytes=500-5000", 1000), Ok(vec![500..=999]));
        assert_eq!(resolve("bytes=5-2", 1000), Err(RangeError::Unsatisfiable));
        assert_eq!(resolve("bytes=0-1,5-6", 1000), Ok(vec![0..=1, 5..=6]));
        assert_eq!(
            resolve("bytes=0-10, 20-30", 1000),
            Ok(vec![0..=10, 20..=30])
        );
        assert_eq!(parse("bytes=items"), Err(RangeError::Malformed));
    }

    #[test]
    fn recorded_range_cases_on_3300_bytes() {
        assert_eq!(resolve("bytes=0-9", 3300), Ok(vec![0..=9]));
        assert_eq!(resolve("bytes=10-", 3300), Ok(vec![10..=3299]));
        assert_eq!(resolve("bytes=1-1", 3300), Ok(vec![1..=1]));
        assert_eq!(resolve("bytes=5-2", 3300), Err(RangeError::Unsatisfiable));
        assert_eq!(resolve("bytes=3200-99999", 3300), Ok(vec![3200..=3299]));
        assert_eq!(resolve("bytes=0-4,10-14", 3300), Ok(vec![0..=4, 10..=14]));
        assert_eq!(
            resolve("bytes=0-1,2-3,4-5,6-7,8-9", 3300),
            Ok(vec![0..=1, 2..=3, 4..=5, 6..=7, 8..=9])
        );
        assert_eq!(parse("bytes=abc"), Err(RangeError::Malformed));
        assert_eq!(resolve("bytes=0-9, 20-29", 3300), Ok(vec![0..=9, 20..=29]));
        // range_appender_A: 56-byte file.
        assert_eq!(resolve("bytes=16-32", 56), Ok(vec![16..=32]));
        // range_empty_file_A.
        assert_eq!(resolve("bytes=0-9", 0), Err(RangeError::Unsatisfiable));
    }

    #[test]
    fn empty_file_rejects_every_range() {
        for v in ["bytes=0-", "bytes=-5", "bytes=-0", "bytes=0-0", "bytes=0-9"] {
            assert_eq!(resolve(v, 0), Err(RangeError::Unsatisfiable), "{v}");
        }
    }

    #[test]
    fn one_bad_range_fails_the_set() {
        assert_eq!(
            resolve("bytes=0-1,5000-", 1000),
            Err(RangeError::Unsatisfiable)
        );
        assert_eq!(
            resolve("bytes=0-1,5-2", 1000),
            Err(RangeError::Unsatisfiable)
        );
    }

    #[test]
    fn order_kept_and_overlaps_not_merged() {
        assert_eq!(
            resolve("bytes=500-600,0-10,5-20,5-20", 1000),
            Ok(vec![500..=600, 0..=10, 5..=20, 5..=20])
        );
    }

    #[test]
    fn multi_disabled() {
        let r = parse("bytes=0-1,5-6").unwrap().unwrap();
        assert_eq!(r.resolve(1000, false), Err(RangeError::MultiDisabled));
        let one = parse("bytes=0-1").unwrap().unwrap();
        assert_eq!(one.resolve(1000, false), Ok(vec![0..=1]));
    }

    #[test]
    fn statuses() {
        assert_eq!(RangeError::TooLong.status(), StatusCode::BAD_REQUEST);
        for e in [
            RangeError::Malformed,
            RangeError::TooMany,
            RangeError::Unsatisfiable,
            RangeError::MultiDisabled,
        ] {
            assert_eq!(e.status(), StatusCode::RANGE_NOT_SATISFIABLE);
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn display_round_trips() {
        let r = parse("bytes=0-0, -5,7-").unwrap().unwrap();
        assert_eq!(r.to_string(), "bytes=0-0,-5,7-");
        assert_eq!(parse(&r.to_string()), Ok(Some(r)));
    }

    #[test]
    fn header_builders() {
        assert_eq!(content_range(0, 9, 3300), "bytes 0-9/3300");
        assert_eq!(content_range(3200, 3299, 3300), "bytes 3200-3299/3300");
        assert_eq!(unsatisfied_range(1000), "bytes */1000");
        assert_eq!(unsatisfied_range(0), "bytes */0");
        assert_eq!(
            content_range(u64::MAX, u64::MAX, u64::MAX),
            "bytes 18446744073709551615-18446744073709551615/18446744073709551615"
        );
    }
}
