//! FLV pseudo-streaming with `?start=&end=` (docs/module-behaviour.md §12),
//! kept exactly as the module behaves, quirks included.
//!
//! Applies only when `flv_support` is on, the request has **no** `Range`
//! header and the extension equals `flv_extension` case-sensitively (see
//! [`applies`]). Then:
//! - `start` must parse entirely as a C `strtoll` integer (leading C
//!   whitespace, optional sign, digits, nothing after; the empty string
//!   parses as 0; overflow saturates), else it is ignored and the whole file
//!   is sent ([`flv_slice`] returns `Ok(None)`);
//! - `end` is an exclusive byte offset; if it does not parse, the slice runs
//!   to the end of the file;
//! - normalisation as for a range: negative start = suffix (clamped to 0),
//!   start ≥ size → error, end clamped to the file, start > end → error;
//!   errors are 400 ([`FlvError::status`]);
//! - quirk kept: the module stores `end − 1` and reads 0 as "to EOF", so
//!   `end=1` means "to EOF" and `end=0` is an error;
//! - the 13-byte [`FLV_HEADER`] is sent before the data iff the parsed start
//!   is > 0 (not for `start=0`, not for a negative start);
//! - the status stays 200 with no `Content-Range`.

use std::fmt;
use std::ops::RangeInclusive;

use ::http::StatusCode;

/// The FLV file header sent before a slice that starts after byte 0:
/// "FLV", version 1, flags 0x01, header size 9, PreviousTagSize0 = 9.
pub const FLV_HEADER: [u8; 13] = [
    0x46, 0x4C, 0x56, 0x01, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x09,
];

/// Why `start`/`end` cannot be served (the module answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlvError {
    /// A non-negative `start` at or beyond the end of the file.
    StartBeyondEnd,
    /// After normalisation the slice is empty (start > end), including
    /// `end=0`, an `end` before `start` and any slice of an empty file.
    EmptySlice,
}

impl FlvError {
    /// The response status for this error.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl fmt::Display for FlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlvError::StartBeyondEnd => "flv start beyond the end of the file",
            FlvError::EmptySlice => "flv end before start",
        })
    }
}

impl std::error::Error for FlvError {}

/// The part of an FLV file to send with status 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvSlice {
    /// File bytes to send (inclusive, within the file).
    pub range: RangeInclusive<u64>,
    /// Whether [`FLV_HEADER`] goes before the data.
    pub with_header: bool,
}

impl FlvSlice {
    /// `Content-Length`: the slice length, plus 13 with the header.
    pub fn content_length(&self) -> u64 {
        let data = self
            .range
            .end()
            .checked_sub(*self.range.start())
            .map_or(0, |d| d.saturating_add(1));
        if self.with_header {
            data.saturating_add(FLV_HEADER.len() as u64)
        } else {
            data
        }
    }
}

/// Whether FLV handling applies: support on, no `Range` header and
/// `extension` equal to `flv_extension` (case-sensitive).
pub fn applies(flv_support: bool, has_range: bool, extension: &str, flv_extension: &str) -> bool {
    flv_support && !has_range && extension == flv_extension
}

/// Computes the slice for the decoded `start`/`end` parameters of a file of
/// `size` bytes. `Ok(None)`: no (parsable) `start`, send the whole file.
pub fn flv_slice(
    start: Option<&str>,
    end: Option<&str>,
    size: u64,
) -> Result<Option<FlvSlice>, FlvError> {
    let Some(start) = start.and_then(strtoll) else {
        return Ok(None);
    };
    // The module keeps `end - 1`, where 0 means "to EOF".
    let end_marker = end.and_then(strtoll).map_or(0, |e| e.saturating_sub(1));

    let size = i128::from(size);
    let first = if start < 0 {
        (size + i128::from(start)).max(0)
    } else if i128::from(start) >= size {
        return Err(FlvError::StartBeyondEnd);
    } else {
        i128::from(start)
    };
    let last = if end_marker == 0 || i128::from(end_marker) >= size {
        size - 1
    } else {
        i128::from(end_marker)
    };
    if first > last {
        return Err(FlvError::EmptySlice);
    }
    let (Ok(first), Ok(last)) = (u64::try_from(first), u64::try_from(last)) else {
        return Err(FlvError::EmptySlice);
    };
    Ok(Some(FlvSlice {
        range: first..=last,
        with_header: start > 0,
    }))
}

/// C `strtoll(s, &end, 10)` followed by the module's "`*end` must be NUL"
/// check: leading C whitespace, optional sign, decimal digits, nothing
/// after; no digits is accepted only for the empty string (value 0).
/// Saturates at the `i64` bounds like `strtoll`.
fn strtoll(s: &str) -> Option<i64> {
    let p = super::cnum::strtoll_prefix(s);
    if !p.has_digits {
        // Without digits strtoll consumes nothing: only "" passes the check.
        return s.is_empty().then_some(0);
    }
    (p.consumed == s.len()).then_some(p.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn slice(start: &str, end: Option<&str>, size: u64) -> Result<Option<FlvSlice>, FlvError> {
        flv_slice(Some(start), end, size)
    }

    fn len(start: &str, end: Option<&str>, size: u64) -> u64 {
        slice(start, end, size).unwrap().unwrap().content_length()
    }

    #[test]
    fn header_bytes() {
        assert_eq!(
            &FLV_HEADER[..],
            b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x09"
        );
    }

    // docs/module-behaviour.md §12 [observed] on a 1037-byte file.
    #[test]
    fn observed_1037_byte_examples() {
        let s = slice("0", None, 1037).unwrap().unwrap();
        assert_eq!(
            s,
            FlvSlice {
                range: 0..=1036,
                with_header: false
            }
        );
        assert_eq!(s.content_length(), 1037);

        let s = slice("100", None, 1037).unwrap().unwrap();
        assert_eq!(
            s,
            FlvSlice {
                range: 100..=1036,
                with_header: true
            }
        );
        assert_eq!(s.content_length(), 950);

        let s = slice("100", Some("200"), 1037).unwrap().unwrap();
        assert_eq!(s.range, 100..=199);
        assert_eq!(s.content_length(), 113);

        let s = slice("-100", None, 1037).unwrap().unwrap();
        assert_eq!(
            s,
            FlvSlice {
                range: 937..=1036,
                with_header: false
            }
        );
        assert_eq!(s.content_length(), 100);

        assert_eq!(slice("5000", None, 1037), Err(FlvError::StartBeyondEnd));
        assert_eq!(slice("abc", None, 1037), Ok(None));
        assert_eq!(FlvError::StartBeyondEnd.status(), StatusCode::BAD_REQUEST);
        assert_eq!(FlvError::EmptySlice.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn end_quirks() {
        // end=1 reads as "to EOF".
        assert_eq!(
            slice("100", Some("1"), 1037).unwrap().unwrap().range,
            100..=1036
        );
        // end=0 → 400.
        assert_eq!(slice("0", Some("0"), 1037), Err(FlvError::EmptySlice));
        assert_eq!(slice("100", Some("0"), 1037), Err(FlvError::EmptySlice));
        assert_eq!(slice("100", Some("-5"), 1037), Err(FlvError::EmptySlice));
        // end == start → empty → 400; end == start + 1 → one byte.
        assert_eq!(slice("100", Some("100"), 1037), Err(FlvError::EmptySlice));
        assert_eq!(
            slice("100", Some("101"), 1037).unwrap().unwrap().range,
            100..=100
        );
        // end beyond the file is clamped.
        assert_eq!(
            slice("100", Some("99999"), 1037).unwrap().unwrap().range,
            100..=1036
        );
        assert_eq!(
            slice("0", Some("1038"), 1037).unwrap().unwrap().range,
            0..=1036
        );
        // unparsable end → to EOF.
        assert_eq!(
            slice("100", Some("x"), 1037).unwrap().unwrap().range,
            100..=1036
        );
        assert_eq!(
            slice("100", Some("20 "), 1037).unwrap().unwrap().range,
            100..=1036
        );
        // end applies to a suffix start too.
        assert_eq!(
            slice("-100", Some("1000"), 1037).unwrap().unwrap().range,
            937..=999
        );
        assert_eq!(slice("-100", Some("900"), 1037), Err(FlvError::EmptySlice));
    }

    #[test]
    fn start_parsing_like_strtoll() {
        assert_eq!(slice("", None, 1037).unwrap().unwrap().range, 0..=1036);
        assert_eq!(
            slice(" 100", None, 1037).unwrap().unwrap().content_length(),
            950
        );
        assert_eq!(
            slice("+100", None, 1037).unwrap().unwrap().content_length(),
            950
        );
        assert_eq!(
            slice("\t\n100", None, 1037)
                .unwrap()
                .unwrap()
                .content_length(),
            950
        );
        for bad in ["100 ", "1e3", "0x10", "-", "+", " ", "--1", "12abc", "½"] {
            assert_eq!(slice(bad, None, 1037), Ok(None), "{bad:?}");
        }
        assert_eq!(flv_slice(None, Some("100"), 1037), Ok(None));
        assert_eq!(strtoll("-0"), Some(0));
        assert_eq!(strtoll("99999999999999999999"), Some(i64::MAX));
        assert_eq!(strtoll("-99999999999999999999"), Some(i64::MIN));
        assert_eq!(strtoll("-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn start_edge_cases() {
        // start=0 and -0: whole file, no header.
        assert_eq!(len("0", None, 1037), 1037);
        assert_eq!(len("-0", None, 1037), 1037);
        // last byte.
        assert_eq!(
            slice("1036", None, 1037).unwrap().unwrap().range,
            1036..=1036
        );
        assert_eq!(len("1036", None, 1037), 14);
        assert_eq!(slice("1037", None, 1037), Err(FlvError::StartBeyondEnd));
        // suffix larger than the file: clamped to 0, no header.
        assert_eq!(slice("-5000", None, 1037).unwrap().unwrap().range, 0..=1036);
        // huge values.
        assert_eq!(
            slice("99999999999999999999", None, 1037),
            Err(FlvError::StartBeyondEnd)
        );
        assert_eq!(
            slice("-99999999999999999999", None, 1037)
                .unwrap()
                .unwrap()
                .range,
            0..=1036
        );
        assert_eq!(
            slice("1", Some("-99999999999999999999"), 1037),
            Err(FlvError::EmptySlice)
        );
        assert_eq!(
            slice("0", Some("99999999999999999999"), u64::MAX)
                .unwrap()
                .unwrap()
                .range,
            0..=(i64::MAX as u64 - 1)
        );
        assert_eq!(
            slice("1", None, u64::MAX)
                .unwrap()
                .unwrap()
                .content_length(),
            u64::MAX
        );
    }

    #[test]
    fn empty_file_is_always_400() {
        assert_eq!(slice("0", None, 0), Err(FlvError::StartBeyondEnd));
        assert_eq!(slice("-10", None, 0), Err(FlvError::EmptySlice));
        assert_eq!(slice("abc", None, 0), Ok(None));
    }

    #[test]
    fn applies_only_without_range_and_exact_extension() {
        assert!(applies(true, false, "flv", "flv"));
        assert!(!applies(false, false, "flv", "flv"));
        assert!(!applies(true, true, "flv", "flv"));
        assert!(!applies(true, false, "FLV", "flv"));
        assert!(!applies(true, false, "mp4", "flv"));
    }

    fn recorded_body(id: &str) -> (u64, Option<Vec<u8>>) {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/real/responses.jsonl"
        ))
        .unwrap();
        let rec: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["id"] == id)
            .unwrap();
        let status = rec["status"].as_u64().unwrap();
        let body = rec["body_b64"]
            .as_str()
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap());
        let cl = rec["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == "Content-Length")
            .map(|h| h[1].as_str().unwrap().parse::<u64>().unwrap());
        (if status == 200 { cl.unwrap() } else { status }, body)
    }

    // Recorded flv_* cases on the 28805-byte file.
    #[test]
    fn recorded_28805_byte_cases() {
        const SIZE: u64 = 28805;
        assert_eq!(recorded_body("flv_start0_A").0, len("0", None, SIZE));
        assert_eq!(recorded_body("flv_start1000_A").0, len("1000", None, SIZE));
        assert_eq!(recorded_body("flv_head_start_A").0, len("1000", None, SIZE));
        assert_eq!(slice("abc", None, SIZE), Ok(None));
        assert_eq!(recorded_body("flv_start_bad_A").0, SIZE);
        assert_eq!(
            slice("1000", Some("500"), SIZE)
                .unwrap_err()
                .status()
                .as_u16() as u64,
            recorded_body("flv_start_end_before_A").0
        );

        let (cl, body) = recorded_body("flv_start_neg_A");
        let s = slice("-100", None, SIZE).unwrap().unwrap();
        assert_eq!(s.content_length(), cl);
        let file = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/real/storageA/data/00/00/fwAAAmsGte2Aa41ZAABwhQ9aX4c544.flv"
        ))
        .unwrap();
        assert_eq!(file.len() as u64, SIZE);
        let sent = file
            .get(*s.range.start() as usize..=*s.range.end() as usize)
            .unwrap();
        assert_eq!(Some(sent.to_vec()), body);
    }
}
