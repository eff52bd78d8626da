//! `?filename=` through a real socket (RFC 6266 §4.3, Appendix D): plain
//! ASCII names keep the module's header byte for byte; any other name gets
//! an ASCII-only fallback (no raw non-ASCII bytes, no backslash escapes)
//! and `filename*=UTF-8''` with the exact name.

mod support;

use support::*;

const SMALL: &str = "/group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt";

#[tokio::test]
async fn filename_parameter_headers_on_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let store = real_store("A", tmp.path());
    let dir = tmp.path().join("conf");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = real_conf(&store, "127.0.0.43", "127.0.0.43", "proxy", 86400);
    let server = Server::start(&conf, &dir, "127.0.0.43").await;
    let cases: [(&str, &[u8]); 5] = [
        ("report.txt", b"attachment; filename=\"report.txt\""),
        ("my%20report.txt", b"attachment; filename=\"my report.txt\""),
        (
            "%E4%B8%AD%E6%96%87.txt",
            b"attachment; filename=\"__.txt\"; filename*=UTF-8''%E4%B8%AD%E6%96%87.txt",
        ),
        (
            "a%22b.txt",
            b"attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt",
        ),
        (
            "a%5Cb%0D%0AX-Injected:%201.txt",
            b"attachment; filename=\"a_bX-Injected: 1.txt\"; filename*=UTF-8''a%5CbX-Injected%3A%201.txt",
        ),
    ];
    for (q, want) in cases {
        let r = get(server.addr, &format!("{SMALL}?filename={q}")).await;
        assert_eq!(r.status, 200, "{q}");
        let have = r.header_bytes("content-disposition").expect("header");
        assert_eq!(have, want, "{q}: {:?}", String::from_utf8_lossy(have));
        assert!(r.header("x-injected").is_none());
    }
    server.stop().await;
}
