//! `--demo`: a temporary store with a handful of sample files under real
//! FastDFS file IDs (made with [`crate::fileid::IdBuilder`]), served on
//! 127.0.0.1:8888 (or `--listen`), with ready-to-run curl commands.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use crate::fileid::{BuildKind, IdBuilder, Source};

/// One sample file of the demo store.
struct Sample {
    ext: &'static str,
    bytes: Vec<u8>,
}

fn samples() -> Vec<Sample> {
    let text =
        b"Hello from fdfs-httpd.\nThis file is stored under a real FastDFS file ID.\n".to_vec();
    let html = b"<!doctype html><title>fdfs-httpd</title><h1>It works</h1>\n".to_vec();
    let mut flv = crate::http::flv::FLV_HEADER.to_vec();
    flv.extend((0..4096u32).map(|i| (i % 251) as u8));
    let big: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    vec![
        Sample {
            ext: "txt",
            bytes: text,
        },
        Sample {
            ext: "html",
            bytes: html,
        },
        Sample {
            ext: "flv",
            bytes: flv,
        },
        Sample {
            ext: "bin",
            bytes: big,
        },
    ]
}

/// Lays out the demo store under `root` and returns the file IDs written
/// plus one ID whose source is a peer and that is not stored here.
pub fn lay_out(root: &Path, now: i64) -> std::io::Result<(Vec<String>, String)> {
    let dir = root.join("data/00/00");
    std::fs::create_dir_all(&dir)?;
    let mut ids = Vec::new();
    for (i, s) in samples().iter().enumerate() {
        let id = IdBuilder::new()
            .source(Source::Ip(Ipv4Addr::LOCALHOST))
            .create_ts(now)
            .size(s.bytes.len() as u64)
            .crc32(crc32fast::hash(&s.bytes))
            .rand23(0x1234 + i as u32)
            .extension(s.ext)
            .ext_digits(i as u32)
            .kind(BuildKind::Normal)
            .build();
        let name = id.rsplit('/').next().unwrap_or_default();
        std::fs::write(dir.join(name), &s.bytes)?;
        ids.push(id);
    }
    let lag = IdBuilder::new()
        .source(Source::Ip(Ipv4Addr::new(127, 0, 0, 2)))
        .create_ts(now)
        .size(12)
        .crc32(0x0BAD_F00D)
        .extension("jpg")
        .build();
    Ok((ids, lag))
}

/// The demo configuration: redirect mode, this node is 127.0.0.1 and its
/// one peer 127.0.0.2.
pub fn config_text(store: &Path, listen: SocketAddr) -> String {
    format!(
        "# fdfs-httpd --demo\n\
         group_name = group1\nurl_have_group_name = true\nstore_path_count = 1\nstore_path0 = {store}\n\
         base_path = {store}\nresponse_mode = redirect\nflv_support = true\nflv_extension = flv\n\
         local_ip_addrs = 127.0.0.1\npeer_ip_addrs = 127.0.0.2\nlisten = {listen}\nlog_level = info\n\
         http.default_content_type = application/octet-stream\nhttp.multi_range.enabled = true\n",
        store = store.display()
    )
}

/// Runs the demo server until Ctrl-C.
pub fn main(listen: &[SocketAddr]) -> ExitCode {
    let listen = listen
        .first()
        .copied()
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8888)));
    let tmp = match tempfile::Builder::new()
        .prefix("fdfs-httpd-demo-")
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot create a temporary store: {e}");
            return ExitCode::from(1);
        }
    };
    let store = tmp.path().join("store");
    let now = crate::clock::unix_now();
    let (ids, lag) = match lay_out(&store, now) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot write the demo store: {e}");
            return ExitCode::from(1);
        }
    };
    let conf_path = tmp.path().join("mod_fastdfs.conf");
    let text = config_text(&store, listen);
    let loaded = match std::fs::write(&conf_path, &text)
        .map_err(|e| {
            vec![crate::config::Diagnostic {
                file: conf_path.clone(),
                line: None,
                message: e.to_string(),
            }]
        })
        .and_then(|_| Config::load(&conf_path))
    {
        Ok(l) => l,
        Err(problems) => {
            for p in problems {
                eprintln!("error: {p}");
            }
            return ExitCode::from(1);
        }
    };
    let mut config = loaded.config;
    config.listen = vec![listen];
    crate::logging::init(config.log_level, None);
    let base = format!("http://{listen}");
    println!(
        "fdfs-httpd demo: store {} (config {})",
        store.display(),
        conf_path.display()
    );
    println!("Try:");
    println!("  curl -i {base}/{}", ids[0]);
    println!("  curl -I {base}/{}", ids[1]);
    println!("  curl -i -H 'Range: bytes=0-4' {base}/{}", ids[0]);
    println!("  curl -i -H 'Range: bytes=0-4,10-14' {base}/{}", ids[0]);
    println!(
        "  curl -s '{base}/{}?start=100' | wc -c     # FLV pseudo-streaming",
        ids[2]
    );
    println!(
        "  curl -s -o /dev/null -w '%{{http_code}} %{{size_download}}\\n' {base}/{}",
        ids[3]
    );
    println!("  curl -i '{base}/{}?filename=report.txt'", ids[0]);
    println!("  curl -i {base}/{lag}     # not stored here yet: 302 to its source 127.0.0.2");
    println!("Ctrl-C stops the server and removes the store.");
    let code = crate::process::serve_until_signal(config);
    drop(tmp);
    code
}
