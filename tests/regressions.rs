//! Inputs found by the fuzz targets (fuzz/), replayed through the same
//! checks in the normal test suite so a fixed finding stays fixed. Each
//! `check_*` mirrors its target in `fuzz/fuzz_targets/`.

use std::path::Path;

use fdfs_httpd::config::{Config, MimeTable, StorageIds};
use fdfs_httpd::fileid::{normalize_path, split_target, EncodedName, FileId, TrunkSlot};
use fdfs_httpd::http::multipart::Multipart;
use fdfs_httpd::http::query::Query;
use fdfs_httpd::http::range::parse_range;
use fdfs_httpd::proto::{
    FetchReply, FileInfo, GroupStat, Header, StorageIdsPage, StorageStat, TrackerParams,
};

fn no_dot_segments(s: &str) -> bool {
    !s.split('/').any(|s| s == ".." || s == "." || s.is_empty())
}

/// `fuzz_targets/fileid_url.rs`.
fn check_fileid_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = EncodedName::decode(text) {
        assert_eq!(name.encode(), text);
    }
    if let Ok(slot) = TrunkSlot::decode(text) {
        assert_eq!(slot.encode(), text);
    }
    if let Some((group, remote)) = text.split_once('/') {
        if let Ok(id) = FileId::parse(group, remote) {
            assert!(id.remote().is_ascii());
            assert!(no_dot_segments(id.remote()));
        }
    }
    let Ok(path) = normalize_path(text) else {
        return;
    };
    assert!(path.starts_with('/'));
    assert!(!path.contains('\0'));
    assert!(!path.split('/').any(|s| s == ".." || s == "."));
    assert!(!path.contains("//"));
    // Normalising is idempotent once nothing is left to decode (a decoded
    // `%25` leaves a `%`: decoding is done exactly once, like nginx).
    if !path.contains('%') {
        assert_eq!(normalize_path(&path).as_deref(), Ok(&*path));
    }
    for with_group in [true, false] {
        let Ok((group, remote)) = split_target(&path, with_group) else {
            continue;
        };
        if let Ok(id) = FileId::parse(group.unwrap_or("group1"), remote) {
            assert!(no_dot_segments(id.remote()));
            assert!(id.remote().starts_with('M'));
            let enc = id.encoded().encode();
            assert_eq!(id.remote().get(10..37), Some(enc.as_str()));
        }
    }
}

/// `fuzz_targets/range.rs`.
fn check_range(data: &[u8]) {
    let (size, value) = match data.split_first_chunk::<8>() {
        Some((head, rest)) => {
            let raw = u64::from_le_bytes(*head);
            let size = if raw & 1 == 0 {
                raw >> 1
            } else {
                (raw >> 1) % 4096
            };
            (size, rest)
        }
        None => (100, data),
    };
    let Ok(Some(ranges)) = parse_range(value) else {
        return;
    };
    let shown = ranges.to_string();
    assert_eq!(parse_range(shown.as_bytes()), Ok(Some(ranges.clone())));
    for multi in [false, true] {
        let Ok(resolved) = ranges.resolve(size, multi) else {
            continue;
        };
        for r in &resolved {
            assert!(r.start() <= r.end() && *r.end() < size);
        }
        if resolved.len() > 1 {
            let mp = Multipart::new(&resolved, size, "text/plain", "00000000001");
            // The length saturates, like Multipart's own.
            let sent = mp
                .parts()
                .fold(0u64, |acc, (h, r)| {
                    acc.saturating_add(h.len() as u64)
                        .saturating_add(r.end() - r.start() + 1)
                })
                .saturating_add(mp.trailer().len() as u64);
            assert_eq!(sent, mp.content_length());
        }
    }
}

/// `fuzz_targets/query.rs`, `config_ini.rs`, `storage_ids.rs`.
fn check_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let q = Query::parse(text);
    assert!(q.len() <= text.len() / 2 + 1);
    let _ = Config::from_str_offline(text);
    let _ = MimeTable::parse(text);
    if let Ok(ids) = StorageIds::parse_with(text, Path::new("storage_ids.conf"), &mut |_| None) {
        for e in ids.iter() {
            assert!(ids.get(e.id).is_some());
        }
    }
}

/// `fuzz_targets/proto_replies.rs`, every decoder on the same bytes.
fn check_proto(body: &[u8]) {
    if let Ok(h) = Header::decode(body, 1 << 20) {
        assert!(h.pkg_len <= 1 << 20);
    }
    let _ = Header::decode_reply(body, u64::MAX);
    let _ = TrackerParams::parse(body);
    let _ = StorageStat::parse_list(body);
    let _ = GroupStat::parse_list(body);
    let _ = FetchReply::parse(body);
    let _ = FileInfo::parse(body);
    let _ = StorageIdsPage::parse(body);
}

/// fileid_url, first minutes: a name holding `..` inside it (not as a
/// segment) parses. It stays inside its directory: no `/` after `HH/HH/`.
/// (A finding against the target's own over-strict check.)
#[test]
fn dots_inside_a_name_are_not_a_segment() {
    let input = b"ggroup1/M00/00/00/oYYBAGsGvGOIGEGoAACAAAIQADgAg9AAK4A00..lo";
    check_fileid_url(input);
    let (g, r) = std::str::from_utf8(input).unwrap().split_once('/').unwrap();
    let id = FileId::parse(g, r).unwrap();
    assert_eq!(id.file_name(), "oYYBAGsGvGOIGEGoAACAAAIQADgAg9AAK4A00..lo");
    assert_eq!(
        id.true_filename(),
        "00/00/oYYBAGsGvGOIGEGoAACAAAIQADgAg9AAK4A00..lo"
    );
}

/// Hand-picked edges in the same shape, so every check runs at least once.
#[test]
fn seeds_pass_every_check() {
    for p in [
        &b"/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt"[..],
        b"/group1/M00/00/00/%2e%2e/%2e%2e/etc/passwd",
        b"/%2f%2F//./../",
        b"/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt/..",
    ] {
        check_fileid_url(p);
    }
    let mut r = 3300u64.to_le_bytes().to_vec();
    r.extend_from_slice(b"bytes=0-0,1-1,-1,5-,99999999999999999999-");
    check_range(&r);
    let mut r = (u64::MAX - 1).to_le_bytes().to_vec();
    r.extend_from_slice(b"bytes=0-,-18446744073709551615");
    check_range(&r);
    check_text(b"#include /etc/passwd\n[group1]\nstore_path0=/x\n");
    check_text(b"100001 group1 host.invalid\n100001 group1 127.0.0.1\n");
    check_proto(&[0xff; 10]);
    check_proto(&[0u8; 0]);
}

/// fileid_url: a path whose decoded form holds `%` (from `%25`) is not
/// decoded a second time, and such a name is never a file ID.
/// (A finding against the target's idempotence check; minimised.)
#[test]
fn percent_is_decoded_once() {
    for input in [
        &b"/%25zz"[..],
        b"/5/g!ou/p/51/u20Y_M074B%25/grou/p",
        b"/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522%252e%252e",
    ] {
        check_fileid_url(input);
    }
    assert_eq!(normalize_path("/%25zz").as_deref(), Ok("/%zz"));
    let path = normalize_path("/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522%252e").unwrap();
    assert!(path.ends_with("c522%2e"));
    let (g, r) = split_target(&path, true).unwrap();
    assert!(FileId::parse(g.unwrap(), r).is_err());
}
