//! File-ID layer against recorded data: every ID of the real and trunk
//! fixture manifests decodes to what FastDFS's own tools printed, and the
//! recorded URL edge cases get the status nginx + the module gave (or the
//! documented deliberate deviation).

use std::fs;
use std::net::Ipv4Addr;

use fdfs_httpd::fileid::{
    normalize_path, slave_name, split_target, FileId, FileKind, IdBuilder, IdError, Source,
    UrlError,
};
use serde_json::Value;

fn load(path: &str) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn files(manifest: &Value) -> &Vec<Value> {
    manifest["files"].as_array().expect("files array")
}

fn parse_id(id: &str) -> FileId {
    let (group, remote) = id.split_once('/').expect("group/remote");
    FileId::parse(group, remote).unwrap_or_else(|e| panic!("{id}: {e:?}"))
}

fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex string"), 16).expect("hex")
}

/// Rebuilds a normal/trunk/appender ID from its parsed fields.
fn rebuild(f: &FileId) -> String {
    IdBuilder::from_file_id(f).expect("not a slave").build()
}

/// Checks one manifest entry; returns the parsed ID.
fn check_entry(entry: &Value) -> FileId {
    let id = entry["file_id"].as_str().expect("file_id");
    let f = parse_id(id);
    let dec = &entry["decoded_from_name"];
    let info = &entry["fdfs_file_info"];

    assert_eq!(f.to_string(), id);
    assert_eq!(
        f.encoded().create_ts,
        dec["create_timestamp"].as_i64().expect("ts"),
        "{id}"
    );
    assert_eq!(
        f.encoded().size_word,
        hex_u64(&dec["size_field_hex"]),
        "{id}"
    );
    assert_eq!(
        u64::from(f.encoded().crc32),
        hex_u64(&dec["crc32_hex"]),
        "{id}"
    );

    // Source: storage ID if the tool printed a non-zero one, else the IP.
    let sid: u32 = info["source_storage_id"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .expect("id");
    let want_source = if sid != 0 {
        assert_eq!(
            dec["source_storage_id"].as_u64(),
            Some(u64::from(sid)),
            "{id}"
        );
        Source::StorageId(sid)
    } else {
        let ip: Ipv4Addr = dec["source_ip"]
            .as_str()
            .expect("ip")
            .parse()
            .expect("ipv4");
        Source::Ip(ip)
    };
    assert_eq!(f.encoded().source, want_source, "{id}");
    if sid == 0 {
        assert_eq!(
            f.encoded().source.to_string(),
            info["source_ip"].as_str().unwrap_or("")
        );
    } else {
        assert_eq!(f.encoded().source.to_string(), sid.to_string());
    }

    let file_type = info["file_type"].as_str().expect("file_type");
    let file_size = info["file_size"].as_u64().expect("file_size");
    match (file_type, f.kind()) {
        ("normal", FileKind::Normal) => {
            assert!(matches!(dec.get("trunk"), None | Some(Value::Null)), "{id}");
            assert_eq!(f.size(), Some(file_size), "{id}");
        }
        ("normal", FileKind::Trunk(slot)) => {
            let t = &dec["trunk"];
            assert_eq!(
                u64::from(slot.trunk_id),
                t["trunk_file_id"].as_u64().expect("id")
            );
            assert_eq!(
                u64::from(slot.offset),
                t["slot_offset"].as_u64().expect("off")
            );
            assert_eq!(
                u64::from(slot.alloc_size),
                t["slot_size"].as_u64().expect("size")
            );
            assert_eq!(slot.encode(), t["trunk_info_b64"].as_str().expect("b64"));
            assert_eq!(f.size(), Some(file_size), "{id}");
            assert_eq!(
                format!("data/{}", f.true_filename().get(..6).unwrap_or_default())
                    + &slot.trunk_file_name(),
                entry["trunk_location"]["trunk_file_rel_path"]
                    .as_str()
                    .expect("path")
            );
            assert_eq!(
                slot.content_offset(),
                entry["trunk_location"]["file_data_offset"]
                    .as_u64()
                    .expect("offset")
            );
        }
        ("appender", FileKind::Appender) | ("slave", FileKind::Slave) => {
            assert_eq!(f.size(), None, "{id}");
        }
        (t, k) => panic!("{id}: recorded {t}, decoded {k:?}"),
    }
    if let Some(fext) = dec.get("formatted_ext_name").and_then(Value::as_str) {
        assert_eq!(f.formatted_ext(), fext, "{id}");
    }
    if let Some(rel) = entry["rel_path"].as_str() {
        if matches!(
            f.kind(),
            FileKind::Normal | FileKind::Appender | FileKind::Slave
        ) {
            assert_eq!(format!("data/{}", f.true_filename()), rel, "{id}");
        }
    }
    if !matches!(f.kind(), FileKind::Slave) {
        assert_eq!(rebuild(&f), id, "round trip");
    }
    f
}

#[test]
fn real_manifest_decodes_like_fdfs_file_info() {
    let m = load("tests/fixtures/real/manifest.json");
    let entries = files(&m);
    assert_eq!(entries.len(), 38);
    let mut kinds = [0usize; 3];
    for entry in entries {
        let f = check_entry(entry);
        match f.kind() {
            FileKind::Normal => kinds[0] += 1,
            FileKind::Appender => kinds[1] += 1,
            FileKind::Slave => kinds[2] += 1,
            FileKind::Trunk(_) => panic!("no trunk files in the real fixture"),
        }
    }
    assert_eq!(kinds, [31, 3, 4]);
}

#[test]
fn trunk_manifest_decodes_like_fdfs_file_info() {
    let m = load("tests/fixtures/trunk/manifest.json");
    let entries = files(&m);
    assert_eq!(entries.len(), 13);
    let trunks = entries
        .iter()
        .map(check_entry)
        .filter(|f| matches!(f.kind(), FileKind::Trunk(_)))
        .count();
    let recorded = entries
        .iter()
        .filter(|e| e["in_trunk"] == Value::Bool(true))
        .count();
    assert_eq!(trunks, recorded);
    assert_eq!(trunks, 10);
}

#[test]
fn recorded_slaves_match_slave_name() {
    let m = load("tests/fixtures/real/manifest.json");
    let ids: Vec<&str> = files(&m)
        .iter()
        .filter_map(|e| e["file_id"].as_str())
        .collect();
    let has = |id: &str| ids.contains(&id);
    let cases = [
        (
            "fwAAAmsGtf2ARhwwAAAAG6BySuY736.txt",
            "_big",
            Some("txt"),
            "fwAAAmsGtf2ARhwwAAAAG6BySuY736_big.txt",
        ),
        (
            "fwAAA2sGtf2Af44vAAAK-QVmom4870.jpg",
            "1024x1024",
            None,
            "fwAAA2sGtf2Af44vAAAK-QVmom48701024x1024.jpg",
        ),
        (
            "fwAAAmsGtf2ACRvWAAACQ2WpTGg105.png",
            "_small",
            None,
            "fwAAAmsGtf2ACRvWAAACQ2WpTGg105_small.png",
        ),
        (
            "fwAAAmsGtwKADke7AAABXg99Y_M213.txt",
            "_big",
            None,
            "fwAAAmsGtwKADke7AAABXg99Y_M213_big.txt",
        ),
    ];
    for (master, prefix, ext, slave) in cases {
        let master = format!("group1/M00/00/00/{master}");
        let slave = format!("group1/M00/00/00/{slave}");
        assert!(has(&master) && has(&slave), "{slave}");
        assert_eq!(slave_name(&master, prefix, ext), slave);
        assert_eq!(IdBuilder::slave_name(&master, prefix, ext), slave);
        assert_eq!(parse_id(&slave).encoded(), parse_id(&master).encoded());
    }
    let t = load("tests/fixtures/trunk/manifest.json");
    let master = "group1/M00/00/00/oYYBAGsGvGOIQHxXAABQAD17uvEAAAAAQAAEAAAAFEA616.pdf";
    assert_eq!(
        slave_name(master, "_t150", None),
        "group1/M00/00/00/oYYBAGsGvGOIQHxXAABQAD17uvEAAAAAQAAEAAAAFEA616_t150.pdf"
    );
    assert!(files(&t)
        .iter()
        .any(|e| e["file_id"] == slave_name(master, "_t150", None)));
}

/// Outcome of the path pipeline the server runs.
#[derive(Debug, PartialEq)]
enum Outcome {
    Url(UrlError),
    Id(IdError),
    Parsed(FileId),
}

fn pipeline(raw_path: &str) -> Outcome {
    let path = raw_path.split('?').next().unwrap_or_default();
    let normalized = match normalize_path(path) {
        Ok(p) => p,
        Err(e) => return Outcome::Url(e),
    };
    let (group, remote) = match split_target(&normalized, true) {
        Ok(t) => t,
        Err(e) => return Outcome::Url(e),
    };
    match FileId::parse(group.unwrap_or("group1"), remote) {
        Ok(f) => Outcome::Parsed(f),
        Err(e) => Outcome::Id(e),
    }
}

fn recorded(id: &str) -> (String, u16) {
    for file in [
        "tests/fixtures/real/responses.jsonl",
        "tests/fixtures/trunk/responses.jsonl",
    ] {
        let text = fs::read_to_string(file).expect("responses");
        for line in text.lines() {
            let r: Value = serde_json::from_str(line).expect("json line");
            if r["id"] == id {
                let path = r["path"].as_str().expect("path").to_owned();
                let status = r["status"].as_u64().expect("status") as u16;
                return (path, status);
            }
        }
    }
    panic!("no recorded case {id}");
}

#[test]
fn recorded_url_edge_cases() {
    use Outcome::*;
    let status = |o: &Outcome| match o {
        Url(e) => e.status().as_u16(),
        Id(e) => e.status().as_u16(),
        Parsed(_) => 200,
    };
    // (recorded id, expected outcome, whether our status equals the recorded one)
    type Check = fn(&Outcome) -> bool;
    let cases: [(&str, Check, bool); 14] = [
        (
            "traversal_etc_passwd_A",
            |o| *o == Url(UrlError::NoRoute),
            true,
        ),
        (
            "traversal_encoded_A",
            |o| *o == Url(UrlError::NoRoute),
            true,
        ),
        (
            "traversal_data_escape_B",
            |o| *o == Url(UrlError::NoRoute),
            true,
        ),
        (
            "traversal_in_name_A",
            |o| *o == Url(UrlError::AboveRoot),
            true,
        ),
        ("long_group_name_A", |o| *o == Url(UrlError::NoRoute), true),
        ("group_only_A", |o| *o == Id(IdError::RemoteTooShort), true),
        (
            "truncated_id_A",
            |o| *o == Id(IdError::RemoteTooShort),
            true,
        ),
        (
            "truncated_id_40_A",
            |o| *o == Id(IdError::RemoteTooShort),
            true,
        ),
        ("garbled_subdir_A", |o| *o == Id(IdError::BadSubdir), true),
        (
            "extra_path_segment_A",
            |o| *o == Id(IdError::ExtraSlash),
            true,
        ),
        (
            "percent_encoded_valid_A",
            |o| matches!(o, Parsed(f) if f.file_name() == "fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txt"),
            true,
        ),
        // Recorded 400 comes from the store_path_count range check, done by the caller.
        (
            "store_path_M01_A",
            |o| matches!(o, Parsed(f) if f.store_index() == 1),
            false,
        ),
        // Recorded 404: parses as a slave that does not exist on disk.
        (
            "trailing_garbage_A",
            |o| matches!(o, Parsed(f) if *f.kind() == FileKind::Slave),
            false,
        ),
        // Deliberate deviation: upstream proxied and got 404; '!' is refused with 400.
        (
            "garbled_suffix_B",
            |o| *o == Id(IdError::BadNameChar),
            false,
        ),
    ];
    for (id, check, same_status) in cases {
        let (path, rec_status) = recorded(id);
        let o = pipeline(&path);
        assert!(check(&o), "{id}: {path} -> {o:?}");
        if same_status {
            assert_eq!(status(&o), rec_status, "{id}");
        }
    }

    // Double slash: normalised before the split, Location built from it.
    let (path, _) = recorded("r_double_slash_onlyA_B");
    assert!(path.starts_with("//"));
    assert_eq!(
        normalize_path(&path).as_deref(),
        Ok("/group1/M00/00/00/fwAAAmsGtwGAG8RbAAABXg99Y_M074.txt")
    );
    assert!(matches!(pipeline(&path), Parsed(_)));

    // Metadata sidecar: upstream served it (200); refused with 404 here.
    let (path, rec) = recorded("get_metadata_file_A");
    assert_eq!(rec, 200);
    let o = pipeline(&path);
    assert_eq!(o, Id(IdError::MetadataSidecar));
    assert_eq!(status(&o), 404);
}

#[test]
fn every_recorded_path_goes_through_without_panic() {
    let mut n = 0;
    for file in [
        "tests/fixtures/real/responses.jsonl",
        "tests/fixtures/trunk/responses.jsonl",
    ] {
        let text = fs::read_to_string(file).expect("responses");
        for line in text.lines() {
            let r: Value = serde_json::from_str(line).expect("json line");
            if let Some(path) = r["path"].as_str() {
                let o = pipeline(path);
                // Every recorded 200/206 is a well-formed ID, except the metadata sidecar.
                let st = r["status"].as_u64().unwrap_or(0);
                if (st == 200 || st == 206) && r["id"] != "get_metadata_file_A" {
                    assert!(matches!(o, Outcome::Parsed(_)), "{}: {o:?}", r["id"]);
                }
                n += 1;
            }
        }
    }
    assert!(n > 100, "{n}");
}
