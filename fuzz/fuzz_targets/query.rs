//! Query-string parsing.
#![no_main]

use fdfs_httpd::http::query::Query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let q = Query::parse(text);
    assert!(q.len() <= text.len() / 2 + 1);
    for key in ["token", "ts", "filename", "start", "download", ""] {
        let _ = q.get(key);
        let _ = q.get_bytes(key);
        let _ = q.has(key);
    }
});
