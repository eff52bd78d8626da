//! `multipart/byteranges` framing for 2..5 ranges, byte for byte as the
//! module sends it (docs/module-behaviour.md §11.4).
//!
//! Body layout, for each range in request order:
//! ```text
//! \r\n--B\r\n
//! Content-type: CT\r\n
//! Content-range: bytes S-E/T\r\n
//! \r\n
//! <bytes S..=E>
//! ```
//! then the trailer `\r\n--B--\r\n`. The header names are spelled exactly
//! `Content-type` / `Content-range`, and there is a CRLF before the first
//! boundary. The boundary is the current time in microseconds as decimal;
//! the caller chooses it.
//!
//! `part_type` and `boundary` are reduced to visible ASCII and spaces
//! (`boundary` to visible ASCII only) so that they can never break the
//! framing or a header.

use std::ops::RangeInclusive;

use ::http::HeaderValue;
use bytes::Bytes;

use super::range::ContentRange;

/// The framing of one multipart/byteranges response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// Sanitised boundary, without the leading `--`.
    boundary: String,
    /// Per part: its header (with the preceding CRLF and boundary) and range.
    parts: Vec<(Bytes, RangeInclusive<u64>)>,
    /// `\r\n--B--\r\n`.
    trailer: Bytes,
    /// Total body length, saturating.
    content_length: u64,
}

impl Multipart {
    /// Prepares the framing for `ranges` (already resolved, inclusive) of a
    /// file of `total` bytes whose parts have type `part_type`.
    pub fn new(
        ranges: &[RangeInclusive<u64>],
        total: u64,
        part_type: &str,
        boundary: &str,
    ) -> Self {
        let boundary: String = boundary.chars().filter(|c| c.is_ascii_graphic()).collect();
        let part_type: String = part_type
            .chars()
            .filter(|&c| c.is_ascii_graphic() || c == ' ')
            .collect();
        let mut content_length: u64 = 0;
        let parts: Vec<(Bytes, RangeInclusive<u64>)> = ranges
            .iter()
            .map(|r| {
                let header = format!(
                    "\r\n--{boundary}\r\nContent-type: {part_type}\r\nContent-range: {}\r\n\r\n",
                    ContentRange(*r.start(), *r.end(), total)
                );
                let data_len = r
                    .end()
                    .checked_sub(*r.start())
                    .map_or(0, |d| d.saturating_add(1));
                content_length = content_length
                    .saturating_add(header.len() as u64)
                    .saturating_add(data_len);
                (Bytes::from(header), r.clone())
            })
            .collect();
        let trailer = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        content_length = content_length.saturating_add(trailer.len() as u64);
        Multipart {
            boundary,
            parts,
            trailer,
            content_length,
        }
    }

    /// `Content-Type: multipart/byteranges; boundary=B`.
    pub fn content_type(&self) -> HeaderValue {
        let text = format!("multipart/byteranges; boundary={}", self.boundary);
        HeaderValue::from_maybe_shared(Bytes::from(text))
            .unwrap_or_else(|_| HeaderValue::from_static("multipart/byteranges"))
    }

    /// Length of the whole body: part headers, data and trailer.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// Each part's header (starting with the CRLF before its boundary) and
    /// the range of file bytes to send after it, in request order.
    pub fn parts(&self) -> impl Iterator<Item = (Bytes, RangeInclusive<u64>)> + '_ {
        self.parts.iter().map(|(h, r)| (h.clone(), r.clone()))
    }

    /// Number of parts (one per range).
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Part `i` as [`Multipart::parts`] yields it, `None` past the last.
    pub fn part(&self, i: usize) -> Option<(Bytes, RangeInclusive<u64>)> {
        self.parts.get(i).map(|(h, r)| (h.clone(), r.clone()))
    }

    /// The closing `\r\n--B--\r\n`, sent after the last part's data.
    pub fn trailer(&self) -> Bytes {
        self.trailer.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// Builds the body the way a server would, from file content.
    fn body(m: &Multipart, file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (header, r) in m.parts() {
            out.extend_from_slice(&header);
            let (s, e) = (*r.start() as usize, *r.end() as usize);
            out.extend_from_slice(file.get(s..=e).unwrap());
        }
        out.extend_from_slice(&m.trailer());
        out
    }

    /// The module's formula (§11.4).
    fn formula(ranges: &[RangeInclusive<u64>], total: u64, ct: &str, b: &str) -> u64 {
        let n = ranges.len() as u64;
        let data: u64 = ranges.iter().map(|r| r.end() - r.start() + 1).sum();
        let cr: u64 = ranges
            .iter()
            .map(|r| 19 + format!("bytes {}-{}/{}", r.start(), r.end(), total).len() as u64)
            .sum();
        data + (n + 1) * (6 + b.len() as u64) + n * (16 + ct.len() as u64) + cr + 2
    }

    struct Recorded {
        boundary: String,
        content_type: String,
        content_length: u64,
        body: Vec<u8>,
    }

    fn recorded(id: &str) -> Recorded {
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
        let header = |name: &str| {
            rec["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == name)
                .map(|h| h[1].as_str().unwrap().to_owned())
                .unwrap()
        };
        let content_type = header("Content-Type");
        let boundary = content_type
            .strip_prefix("multipart/byteranges; boundary=")
            .unwrap()
            .to_owned();
        let body = base64::engine::general_purpose::STANDARD
            .decode(rec["body_b64"].as_str().unwrap())
            .unwrap();
        Recorded {
            boundary,
            content_type,
            content_length: header("Content-Length").parse().unwrap(),
            body,
        }
    }

    /// The recorded 3300-byte text file (store snapshot of storage A).
    fn recorded_file() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/real/storageA/data/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt"
        ))
        .unwrap()
    }

    fn check_recorded(id: &str, ranges: &[RangeInclusive<u64>]) {
        let rec = recorded(id);
        let m = Multipart::new(ranges, 3300, "text/plain", &rec.boundary);
        let built = body(&m, &recorded_file());
        assert_eq!(
            String::from_utf8_lossy(&built),
            String::from_utf8_lossy(&rec.body),
            "{id}"
        );
        assert_eq!(built, rec.body, "{id}");
        assert_eq!(m.content_length(), rec.content_length, "{id}");
        assert_eq!(m.content_length(), built.len() as u64, "{id}");
        assert_eq!(m.content_type(), rec.content_type.as_str(), "{id}");
        assert_eq!(
            m.content_length(),
            formula(ranges, 3300, "text/plain", &rec.boundary)
        );
    }

    #[test]
    fn reproduces_range_a_09() {
        check_recorded("range_A_09_bytes=0-4,10-14", &[0..=4, 10..=14]);
    }

    #[test]
    fn reproduces_range_a_12() {
        check_recorded(
            "range_A_12_bytes=0-1,2-3,4-5,6-7,8-9",
            &[0..=1, 2..=3, 4..=5, 6..=7, 8..=9],
        );
    }

    #[test]
    fn reproduces_range_a_16() {
        check_recorded("range_A_16_bytes=0-9,_20-29", &[0..=9, 20..=29]);
    }

    #[test]
    fn formula_example_190_bytes() {
        let b = "1795602108534897";
        let m = Multipart::new(&[0..=1, 5..=6], 1000, "text/plain", b);
        assert_eq!(m.content_length(), 190);
        assert_eq!(formula(&[0..=1, 5..=6], 1000, "text/plain", b), 190);
        let file = vec![b'x'; 1000];
        assert_eq!(body(&m, &file).len(), 190);
    }

    #[test]
    fn exact_part_header_bytes() {
        let m = Multipart::new(&[0..=1, 998..=999], 1000, "image/png", "123");
        let parts: Vec<_> = m.parts().collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            &parts[0].0[..],
            b"\r\n--123\r\nContent-type: image/png\r\nContent-range: bytes 0-1/1000\r\n\r\n"
        );
        assert_eq!(parts[0].1, 0..=1);
        assert_eq!(
            &parts[1].0[..],
            b"\r\n--123\r\nContent-type: image/png\r\nContent-range: bytes 998-999/1000\r\n\r\n"
        );
        assert_eq!(&m.trailer()[..], b"\r\n--123--\r\n");
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=123");
    }

    #[test]
    fn request_order_and_overlaps_kept() {
        let m = Multipart::new(&[5..=9, 0..=9, 5..=9], 10, "text/plain", "b");
        let rs: Vec<_> = m.parts().map(|(_, r)| r).collect();
        assert_eq!(rs, vec![5..=9, 0..=9, 5..=9]);
        let file = b"0123456789";
        let built = body(&m, file);
        assert_eq!(built.len() as u64, m.content_length());
    }

    #[test]
    fn hostile_inputs_are_sanitised() {
        let m = Multipart::new(&[0..=0], 1, "text/plain\r\nX-Evil: 1", "12\r\n 3");
        let (h, _) = m.parts().next().unwrap();
        assert_eq!(
            &h[..],
            b"\r\n--123\r\nContent-type: text/plainX-Evil: 1\r\nContent-range: bytes 0-0/1\r\n\r\n"
        );
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=123");
        let m = Multipart::new(&[0..=0], 1, "t/\u{e9}", "\u{e9}");
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=");
    }

    #[test]
    fn huge_ranges_saturate() {
        let m = Multipart::new(&[0..=u64::MAX, 0..=u64::MAX], u64::MAX, "a/b", "1");
        assert_eq!(m.content_length(), u64::MAX);
        #[allow(clippy::reversed_empty_ranges)]
        let m = Multipart::new(&[5..=1], 10, "a/b", "1");
        assert!(m.content_length() > 0);
        let m = Multipart::new(&[], 10, "a/b", "1");
        assert_eq!(m.content_length(), 9);
    }
}
