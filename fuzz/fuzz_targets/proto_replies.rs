//! Wire-protocol decoders for what a tracker or storage server sends back.
#![no_main]

use fdfs_httpd::proto::{
    FetchReply, FileInfo, GroupStat, Header, StorageIdsPage, StorageStat, TrackerParams,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => {
            if let Ok(h) = Header::decode(body, 1 << 20) {
                assert!(h.pkg_len <= 1 << 20);
            }
        }
        1 => {
            let _ = Header::decode_reply(body, u64::MAX);
        }
        2 => {
            let _ = TrackerParams::parse(body);
        }
        3 => {
            let _ = StorageStat::parse_list(body);
        }
        4 => {
            let _ = GroupStat::parse_list(body);
        }
        5 => {
            let _ = FetchReply::parse(body);
        }
        6 => {
            let _ = FileInfo::parse(body);
        }
        _ => {
            let _ = StorageIdsPage::parse(body);
        }
    }
});
