//! `storage_ids.conf` lines (host names never resolve).
#![no_main]

use std::path::Path;

use fdfs_httpd::config::StorageIds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ids) = StorageIds::parse_with(text, Path::new("storage_ids.conf"), &mut |_| None) {
        for e in ids.iter() {
            assert!(ids.get(e.id).is_some());
        }
    }
});
