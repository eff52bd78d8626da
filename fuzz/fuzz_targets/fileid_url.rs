//! URL path → file ID: normalisation, split, strict parse and the name codecs.
#![no_main]

use fdfs_httpd::fileid::{normalize_path, split_target, EncodedName, FileId, TrunkSlot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The codecs on their own: a decoded name re-encodes to its input.
    if let Ok(name) = EncodedName::decode(text) {
        assert_eq!(name.encode(), text);
    }
    if let Ok(slot) = TrunkSlot::decode(text) {
        assert_eq!(slot.encode(), text);
    }
    // group/remote split of the raw text, as a parser input.
    if let Some((group, remote)) = text.split_once('/') {
        if let Ok(id) = FileId::parse(group, remote) {
            assert!(id.remote().is_ascii());
            assert!(!id.remote().split('/').any(|s| s == ".." || s == "." || s.is_empty()));
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
            // A parsed remote stays inside its store path: no climbing, no
            // absolute part, nothing outside the upload charset.
            assert!(!id.remote().split('/').any(|s| s == ".." || s == "." || s.is_empty()));
            assert!(id.remote().starts_with('M'));
            let enc = id.encoded().encode();
            assert_eq!(id.remote().get(10..37), Some(enc.as_str()));
        }
    }
});
