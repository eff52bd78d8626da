//! Property tests (issue 7 item 1): encode/decode round trips of file IDs
//! and their parts, and Range normalisation against what is actually sent.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use fdfs_httpd::fileid::{BuildKind, EncodedName, FileId, FileKind, IdBuilder, Source, TrunkSlot};
use fdfs_httpd::http::multipart::Multipart;
use fdfs_httpd::http::query::Query;
use fdfs_httpd::http::range::{parse_range, RangeSpec};
use fdfs_httpd::serve::{self, Ask, Entity};
use fdfs_httpd::store::LocalFile;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;

fn group() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{1,16}"
}

fn slot() -> impl Strategy<Value = TrunkSlot> {
    (
        0..=i32::MAX as u32,
        0..=i32::MAX as u32,
        0..=i32::MAX as u32,
    )
        .prop_map(|(trunk_id, offset, alloc_size)| TrunkSlot {
            trunk_id,
            offset,
            alloc_size,
        })
}

fn kind() -> impl Strategy<Value = BuildKind> {
    prop_oneof![
        Just(BuildKind::Normal),
        Just(BuildKind::Appender),
        slot().prop_map(BuildKind::Trunk),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn built_ids_parse_back(
        group in group(),
        store_index in any::<u8>(),
        high in any::<u8>(),
        low in any::<u8>(),
        ip in any::<[u8; 4]>(),
        ts in any::<i32>(),
        size in 0u64..(1 << 40),
        crc32 in any::<u32>(),
        kind in kind(),
        rand23 in 0u32..(1 << 23),
        ext in "[a-z0-9]{0,6}",
    ) {
        let mut b = IdBuilder::new()
            .group(&group)
            .store_index(store_index)
            .subdirs(high, low)
            .source(Source::Ip(Ipv4Addr::from(ip)))
            .create_ts(i64::from(ts))
            .size(size)
            .crc32(crc32)
            .kind(kind)
            .rand23(rand23);
        if !ext.is_empty() {
            b = b.extension(&ext);
        }
        let remote = b.build_remote();
        let id = FileId::parse(&group, &remote).unwrap();
        prop_assert_eq!(id.group(), group.as_str());
        prop_assert_eq!(id.remote(), remote.as_str());
        prop_assert_eq!(id.store_index(), store_index);
        prop_assert_eq!(id.subdirs(), (high, low));
        // Equal as bytes: a source IP in the storage-ID range decodes as an
        // ID (docs/file-id.md §4.1), the same 4 bytes either way.
        prop_assert_eq!(id.encoded().encode(), b.encoded().encode());
        prop_assert_eq!(id.encoded().source.to_bytes(), Source::Ip(Ipv4Addr::from(ip)).to_bytes());
        prop_assert_eq!(id.encoded().create_ts, i64::from(ts));
        match kind {
            BuildKind::Normal => {
                prop_assert_eq!(id.kind(), &FileKind::Normal);
                prop_assert_eq!(id.size(), Some(size));
            }
            BuildKind::Appender => prop_assert_eq!(id.kind(), &FileKind::Appender),
            BuildKind::Trunk(s) => prop_assert_eq!(id.kind(), &FileKind::Trunk(s)),
        }
        if ext.is_empty() {
            prop_assert_eq!(id.extension(), None);
        } else {
            prop_assert_eq!(id.extension(), Some(ext.as_str()));
        }
        // The full ID goes through the URL path too.
        let raw = format!("/{}", b.build());
        let path = fdfs_httpd::fileid::normalize_path(&raw).unwrap();
        let (g, r) = fdfs_httpd::fileid::split_target(&path, true).unwrap();
        prop_assert_eq!(g, Some(group.as_str()));
        prop_assert_eq!(r, remote.as_str());
    }

    #[test]
    fn encoded_name_round_trips(
        src in any::<[u8; 4]>(),
        ts in any::<i32>(),
        size_word in any::<u64>(),
        crc32 in any::<u32>(),
    ) {
        let name = EncodedName {
            source: Source::from_bytes(src),
            create_ts: i64::from(ts),
            size_word,
            crc32,
        };
        prop_assert_eq!(name.source.to_bytes(), src);
        let text = name.encode();
        prop_assert_eq!(text.len(), 27);
        prop_assert_eq!(EncodedName::decode(&text), Ok(name));
    }

    #[test]
    fn encoded_name_decode_is_strict(text in "[A-Za-z0-9_\\-]{27}") {
        // Whatever decodes re-encodes to exactly the same text.
        if let Ok(name) = EncodedName::decode(&text) {
            prop_assert_eq!(name.encode(), text);
        }
    }

    #[test]
    fn trunk_slot_round_trips(s in slot()) {
        let text = s.encode();
        prop_assert_eq!(text.len(), 16);
        prop_assert_eq!(TrunkSlot::decode(&text), Ok(s));
    }

    #[test]
    fn trunk_slot_refuses_negative_fields(
        s in slot(),
        which in 0usize..3,
        high in (i32::MAX as u32 + 1)..=u32::MAX,
    ) {
        let mut s = s;
        match which {
            0 => s.trunk_id = high,
            1 => s.offset = high,
            _ => s.alloc_size = high,
        }
        prop_assert!(TrunkSlot::decode(&s.encode()).is_err());
    }

    #[test]
    fn accepted_ranges_lie_inside_the_file(
        specs in prop::collection::vec(spec(), 1..=5),
        size in 0u64..5000,
        multi in any::<bool>(),
    ) {
        let header = render(&specs);
        if header.len() >= fdfs_httpd::http::range::MAX_HEADER_LEN {
            prop_assert!(parse_range(header.as_bytes()).is_err());
            return Ok(());
        }
        let ranges = parse_range(header.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(ranges.specs(), specs.as_slice());
        prop_assert_eq!(ranges.to_string(), header);
        if let Ok(list) = ranges.resolve(size, multi) {
            prop_assert_eq!(list.len(), specs.len());
            prop_assert!(multi || list.len() == 1);
            for r in &list {
                prop_assert!(r.start() <= r.end());
                prop_assert!(*r.end() < size);
            }
        }
    }

    #[test]
    fn multipart_length_is_what_is_sent(
        ranges in prop::collection::vec((0u64..4000, 0u64..4000), 1..=8),
        total in 1u64..u64::MAX,
        part_type in "[ -~]{0,40}",
        boundary in "[ -~]{0,30}",
    ) {
        let ranges: Vec<_> = ranges
            .into_iter()
            .map(|(a, b)| a.min(b)..=a.max(b))
            .collect();
        let mp = Multipart::new(&ranges, total, &part_type, &boundary);
        let mut sent: u64 = 0;
        for (head, r) in mp.parts() {
            sent += head.len() as u64 + (r.end() - r.start() + 1);
        }
        sent += mp.trailer().len() as u64;
        prop_assert_eq!(sent, mp.content_length());
        prop_assert!(mp.content_type().to_str().is_ok());
    }
}

fn spec() -> impl Strategy<Value = RangeSpec> {
    prop_oneof![
        (0u64..6000, 0u64..6000).prop_map(|(a, b)| RangeSpec::FromTo(a, b)),
        (0u64..6000).prop_map(RangeSpec::From),
        (0u64..6000).prop_map(RangeSpec::Suffix),
        any::<u64>().prop_map(RangeSpec::From),
    ]
}

fn render(specs: &[RangeSpec]) -> String {
    let parts: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
    format!("bytes={}", parts.join(","))
}

/// Serves `content` (at `offset` inside a bigger file) for `range` and
/// returns status, Content-Length, Content-Range, Content-Type and body.
fn serve_range(
    content_offset: u64,
    content: &[u8],
    range: &str,
) -> (StatusCode, Option<u64>, Option<String>, String, Bytes) {
    let mut f = tempfile::tempfile().unwrap();
    use std::io::Write;
    f.write_all(&vec![b'#'; content_offset as usize]).unwrap();
    f.write_all(content).unwrap();
    f.write_all(b"AFTER-THE-END").unwrap();
    let file = LocalFile {
        file: Arc::new(f),
        offset: content_offset,
        len: content.len() as u64,
        mtime: 1_700_000_000,
        path: "prop".into(),
    };
    let ent = Entity {
        file,
        last_modified: 1_700_000_000,
        etag: HeaderValue::from_static("\"x\""),
        content_type: "text/plain",
        flv: false,
    };
    let ranges = parse_range(range.as_bytes()).unwrap();
    let headers = HeaderMap::new();
    let query = Query::parse("");
    let ask = Ask {
        headers: &headers,
        head: false,
        query: &query,
        range: ranges.as_ref(),
        range_header_present: true,
        multi_range: true,
        boundary: || "00000000000000000042".to_string(),
    };
    let (_, resp) = serve::serve(ent, &ask);
    let status = resp.status();
    let h = |n: http::header::HeaderName| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let len = h(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let cr = h(http::header::CONTENT_RANGE);
    let ct = h(http::header::CONTENT_TYPE).unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = rt
        .block_on(resp.into_body().collect())
        .map(|c| c.to_bytes())
        .unwrap();
    (status, len, cr, ct, body)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn served_ranges_match_their_headers(
        size in 0usize..3000,
        offset in prop_oneof![Just(0u64), 0u64..64],
        specs in prop::collection::vec(spec(), 1..=5),
    ) {
        let content: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let header = render(&specs);
        prop_assume!(header.len() < fdfs_httpd::http::range::MAX_HEADER_LEN);
        let (status, len, cr, ct, body) = serve_range(offset, &content, &header);
        // Content-Length always equals the bytes produced.
        prop_assert_eq!(len, Some(body.len() as u64));
        match status {
            StatusCode::PARTIAL_CONTENT if specs.len() == 1 => {
                let cr = cr.unwrap();
                let spec = cr.strip_prefix("bytes ").unwrap();
                let (r, total) = spec.split_once('/').unwrap();
                prop_assert_eq!(total, size.to_string());
                let (s, e) = r.split_once('-').unwrap();
                let (s, e): (usize, usize) = (s.parse().unwrap(), e.parse().unwrap());
                prop_assert!(s <= e && e < size);
                prop_assert_eq!(&body[..], &content[s..=e]);
            }
            StatusCode::PARTIAL_CONTENT => {
                prop_assert!(ct.starts_with("multipart/byteranges; boundary="));
                prop_assert!(body.ends_with(b"--\r\n"));
                // Every part's data is the file's bytes at its Content-range.
                let text = body.to_vec();
                let mut parts = 0;
                let mut at = 0;
                while let Some(p) = find(&text[at..], b"Content-range: bytes ") {
                    let start = at + p + 21;
                    let eol = start + find(&text[start..], b"\r\n").unwrap();
                    let line = std::str::from_utf8(&text[start..eol]).unwrap();
                    let (r, _) = line.split_once('/').unwrap();
                    let (s, e) = r.split_once('-').unwrap();
                    let (s, e): (usize, usize) = (s.parse().unwrap(), e.parse().unwrap());
                    let data = eol + 4;
                    prop_assert_eq!(&text[data..=data + e - s], &content[s..=e]);
                    at = data + e - s + 1;
                    parts += 1;
                }
                prop_assert_eq!(parts, specs.len());
            }
            StatusCode::OK => prop_assert_eq!(&body[..], &content[..]),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let want = format!("bytes */{size}");
                prop_assert_eq!(cr.as_deref(), Some(want.as_str()));
            }
            other => prop_assert!(false, "unexpected status {other}"),
        }
        prop_assert!(!body.windows(5).any(|w| w == b"AFTER"));
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}
