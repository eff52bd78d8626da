//! `Range` header parsing, normalisation against a size, multipart framing.
#![no_main]

use fdfs_httpd::http::multipart::Multipart;
use fdfs_httpd::http::range::parse_range;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First 8 bytes: the file size (small sizes more often); rest: the header.
    let (size, value) = match data.split_first_chunk::<8>() {
        Some((head, rest)) => {
            let raw = u64::from_le_bytes(*head);
            let size = if raw & 1 == 0 { raw >> 1 } else { (raw >> 1) % 4096 };
            (size, rest)
        }
        None => (100, data),
    };
    let Ok(Some(ranges)) = parse_range(value) else {
        return;
    };
    // Display renders something that parses back to the same ranges.
    let shown = ranges.to_string();
    assert_eq!(parse_range(shown.as_bytes()), Ok(Some(ranges.clone())));
    for multi in [false, true] {
        let Ok(resolved) = ranges.resolve(size, multi) else {
            continue;
        };
        assert!(!resolved.is_empty());
        assert!(multi || resolved.len() == 1);
        for r in &resolved {
            assert!(r.start() <= r.end());
            assert!(*r.end() < size);
        }
        if resolved.len() > 1 {
            let mp = Multipart::new(&resolved, size, "text/plain", "00000000001");
            let mut total: u64 = 0;
            for (head, r) in mp.parts() {
                total = total
                    .saturating_add(head.len() as u64)
                    .saturating_add(r.end() - r.start() + 1);
            }
            total = total.saturating_add(mp.trailer().len() as u64);
            assert_eq!(total, mp.content_length());
        }
    }
});
