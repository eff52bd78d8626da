//! The upload API's own parsing of untrusted input: original names and
//! extensions, credentials and signatures, and the upload/store replies.
#![no_main]

use std::time::Duration;

use fdfs_httpd::config::{AppKey, UploadApp, UploadConfig};
use fdfs_httpd::proto::upload::{parse_upload_reply, StoreTarget};
use fdfs_httpd::upload::{auth, name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(body);
    match which % 4 {
        0 => {
            let n = name::sanitize(&text);
            assert!(n.len() <= name::MAX_NAME_LEN);
            assert!(!n.contains(['/', '\\', '\0']));
            let e = name::extension(&n);
            assert!(e.len() <= 6 && e.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        1 => {
            let mut parts = text.splitn(4, '\n');
            let p = auth::Presented {
                app_id: parts.next().map(str::to_owned),
                app_key: parts.next().map(str::to_owned),
                timestamp: parts.next().map(str::to_owned),
                signature: parts.next().map(str::to_owned),
            };
            let cfg = UploadConfig {
                prefix: "/api".into(),
                public_base_url: None,
                max_concurrent: 1,
                stall_timeout: Duration::from_secs(1),
                temp_dir: None,
                apps: vec![UploadApp {
                    id: "shop".into(),
                    key: AppKey::new(b"0123456789abcdef"),
                    upload: true,
                    delete: true,
                    max_size: 1,
                    extensions: vec![],
                    group: None,
                    networks: vec![],
                    key_auth: true,
                }],
            };
            let req = auth::Request {
                method: "PUT",
                path: "/api/upload/x",
                len: Some(1),
                now: 1_800_000_000,
                client: "127.0.0.1".parse().unwrap(),
            };
            if auth::check(&cfg, &p, req).is_ok() {
                assert_eq!(p.app_id.as_deref(), Some("shop"));
            }
        }
        2 => {
            let _ = parse_upload_reply(body);
        }
        _ => {
            if let Ok(t) = StoreTarget::parse(body) {
                assert_eq!(StoreTarget::parse(&t.encode()), Ok(t));
            }
        }
    }
});
