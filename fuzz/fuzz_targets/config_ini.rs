//! `mod_fastdfs.conf` text through the INI reader and the config model,
//! offline: includes and referenced files are never read, no name resolves.
#![no_main]

use fdfs_httpd::config::{Config, MimeTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::from_str_offline(text);
    let _ = MimeTable::parse(text);
});
