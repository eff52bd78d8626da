//! Storing files (docs/wire-protocol.md §8): the tracker's QUERY_STORE
//! (101 without group, 104 with group) and the storage's UPLOAD_FILE (11),
//! UPLOAD_APPENDER_FILE (23), UPLOAD_SLAVE_FILE (21), APPEND_FILE (24),
//! SET_METADATA (13) and DELETE_FILE (12), as pure builders and parsers.
//! Upload requests are built as a head (header + fixed fields) whose
//! `pkg_len` already counts the file bytes the caller streams after it.

use super::frame::{
    check_remote, encode_group, fixed_str, message, Header, Reader, GROUP_NAME_LEN, HEADER_LEN,
};
use super::ProtoError;

/// `TRACKER_PROTO_CMD_SERVICE_QUERY_STORE_WITHOUT_GROUP_ONE`.
pub const CMD_QUERY_STORE_WITHOUT_GROUP_ONE: u8 = 101;
/// `TRACKER_PROTO_CMD_SERVICE_QUERY_STORE_WITH_GROUP_ONE`.
pub const CMD_QUERY_STORE_WITH_GROUP_ONE: u8 = 104;
/// `STORAGE_PROTO_CMD_UPLOAD_FILE`.
pub const CMD_UPLOAD_FILE: u8 = 11;
/// `STORAGE_PROTO_CMD_DELETE_FILE`.
pub const CMD_DELETE_FILE: u8 = 12;
/// `STORAGE_PROTO_CMD_SET_METADATA`.
pub const CMD_SET_METADATA: u8 = 13;
/// `STORAGE_PROTO_CMD_GET_METADATA`.
pub const CMD_GET_METADATA: u8 = 15;
/// `STORAGE_PROTO_CMD_UPLOAD_SLAVE_FILE`.
pub const CMD_UPLOAD_SLAVE_FILE: u8 = 21;
/// `STORAGE_PROTO_CMD_UPLOAD_APPENDER_FILE`.
pub const CMD_UPLOAD_APPENDER_FILE: u8 = 23;
/// `STORAGE_PROTO_CMD_APPEND_FILE`.
pub const CMD_APPEND_FILE: u8 = 24;

/// `FDFS_FILE_EXT_NAME_MAX_LEN`.
pub const EXT_LEN: usize = 6;
/// `FDFS_FILE_PREFIX_MAX_LEN`: a slave file's prefix.
pub const PREFIX_LEN: usize = 16;
/// `FDFS_MAX_META_NAME_LEN`.
pub const META_NAME_MAX: usize = 64;
/// `FDFS_MAX_META_VALUE_LEN`.
pub const META_VALUE_MAX: usize = 256;
/// `FDFS_RECORD_SEPERATOR`: between metadata pairs.
const META_RECORD_SEP: u8 = 0x01;
/// `FDFS_FIELD_SEPERATOR`: between a name and its value.
const META_FIELD_SEP: u8 = 0x02;

/// QUERY_STORE without a group (101, empty body) or with one (104, the
/// 16-byte group).
pub fn query_store_request(group: Option<&str>) -> Result<Vec<u8>, ProtoError> {
    Ok(match group {
        None => message(CMD_QUERY_STORE_WITHOUT_GROUP_ONE, 0, &[]),
        Some(g) => message(CMD_QUERY_STORE_WITH_GROUP_ONE, 0, &encode_group(g)?),
    })
}

/// Where the tracker says to store a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreTarget {
    /// The group.
    pub group: String,
    /// The storage's IP.
    pub ip: String,
    /// Its FastDFS port.
    pub port: u16,
    /// The store path index to send with the upload.
    pub store_path_index: u8,
}

impl StoreTarget {
    /// Parses a QUERY_STORE_*_ONE reply: group (16) + IP (15, or 45 for
    /// IPv6) + port (8) + store path index (1): 40 or 70 bytes.
    pub fn parse(body: &[u8]) -> Result<StoreTarget, ProtoError> {
        let ip_len = match body.len() {
            40 => 15,
            70 => 45,
            _ => return Err(ProtoError::BadBody("store reply length")),
        };
        let mut r = Reader::new(body);
        let group = r.fixed_str(GROUP_NAME_LEN, "group name")?;
        let ip = r.fixed_str(ip_len, "storage ip")?;
        let port = u16::try_from(r.i64()?).map_err(|_| ProtoError::BadBody("storage port"))?;
        let store_path_index = r.u8()?;
        if group.is_empty() || ip.is_empty() {
            return Err(ProtoError::BadBody("empty group or ip"));
        }
        Ok(StoreTarget {
            group,
            ip,
            port,
            store_path_index,
        })
    }

    /// Encodes the reply body (for fakes and tests).
    pub fn encode(&self) -> Vec<u8> {
        let ip_len = if self.ip.len() > 15 { 45 } else { 15 };
        let mut out = Vec::with_capacity(GROUP_NAME_LEN + ip_len + 9);
        super::frame::put_fixed_str(&mut out, &self.group, GROUP_NAME_LEN);
        super::frame::put_fixed_str(&mut out, &self.ip, ip_len);
        out.extend_from_slice(&i64::from(self.port).to_be_bytes());
        out.push(self.store_path_index);
        out
    }
}

/// The file extension field: at most 6 ASCII letters or digits, NUL-padded.
fn ext_field(ext: &str) -> Result<[u8; EXT_LEN], ProtoError> {
    if ext.len() > EXT_LEN || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ProtoError::BadRequest("file extension"));
    }
    let mut f = [0u8; EXT_LEN];
    f[..ext.len()].copy_from_slice(ext.as_bytes());
    Ok(f)
}

fn size_field(n: u64) -> Result<[u8; 8], ProtoError> {
    i64::try_from(n)
        .map(i64::to_be_bytes)
        .map_err(|_| ProtoError::BadRequest("size too large"))
}

/// A head whose `pkg_len` = fields + `file_size`.
fn head(cmd: u8, fields: &[u8], file_size: u64) -> Result<Vec<u8>, ProtoError> {
    let total = (fields.len() as u64)
        .checked_add(file_size)
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or(ProtoError::BadRequest("size too large"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + fields.len());
    out.extend_from_slice(
        &Header {
            pkg_len: total,
            cmd,
            status: 0,
        }
        .encode(),
    );
    out.extend_from_slice(fields);
    Ok(out)
}

/// UPLOAD_FILE (11) or, with `appender`, UPLOAD_APPENDER_FILE (23): the
/// head before `file_size` content bytes: store path index (1), size (8),
/// extension (6).
pub fn upload_head(
    appender: bool,
    store_path_index: u8,
    file_size: u64,
    ext: &str,
) -> Result<Vec<u8>, ProtoError> {
    let mut f = Vec::with_capacity(15);
    f.push(store_path_index);
    f.extend_from_slice(&size_field(file_size)?);
    f.extend_from_slice(&ext_field(ext)?);
    let cmd = if appender {
        CMD_UPLOAD_APPENDER_FILE
    } else {
        CMD_UPLOAD_FILE
    };
    head(cmd, &f, file_size)
}

/// UPLOAD_SLAVE_FILE (21): master name length (8), size (8), prefix (16),
/// extension (6), master remote name, then the content. The prefix is 1–16
/// letters, digits, `_` or `-`.
pub fn slave_head(
    master: &str,
    prefix: &str,
    ext: &str,
    file_size: u64,
) -> Result<Vec<u8>, ProtoError> {
    let m = check_remote(master)?;
    if prefix.is_empty()
        || prefix.len() > PREFIX_LEN
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ProtoError::BadRequest("slave prefix"));
    }
    let mut f = Vec::with_capacity(38 + m.len());
    f.extend_from_slice(&size_field(m.len() as u64)?);
    f.extend_from_slice(&size_field(file_size)?);
    let mut p = [0u8; PREFIX_LEN];
    p[..prefix.len()].copy_from_slice(prefix.as_bytes());
    f.extend_from_slice(&p);
    f.extend_from_slice(&ext_field(ext)?);
    f.extend_from_slice(m);
    head(CMD_UPLOAD_SLAVE_FILE, &f, file_size)
}

/// APPEND_FILE (24): name length (8) + size (8) + appender remote name,
/// then the content. The reply has no body.
pub fn append_head(appender: &str, file_size: u64) -> Result<Vec<u8>, ProtoError> {
    let a = check_remote(appender)?;
    let mut f = Vec::with_capacity(16 + a.len());
    f.extend_from_slice(&size_field(a.len() as u64)?);
    f.extend_from_slice(&size_field(file_size)?);
    f.extend_from_slice(a);
    head(CMD_APPEND_FILE, &f, file_size)
}

/// The reply of an upload: group (16) + remote file name.
pub fn parse_upload_reply(body: &[u8]) -> Result<(String, String), ProtoError> {
    if body.len() <= GROUP_NAME_LEN || body.len() > GROUP_NAME_LEN + 256 {
        return Err(ProtoError::BadBody("upload reply length"));
    }
    let (g, name) = body.split_at(GROUP_NAME_LEN);
    let group = fixed_str(g, "group name")?;
    let remote = std::str::from_utf8(name)
        .ok()
        .filter(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'))
        })
        .ok_or(ProtoError::BadBody("remote file name"))?;
    if group.is_empty() {
        return Err(ProtoError::BadBody("group name"));
    }
    Ok((group, remote.to_owned()))
}

/// DELETE_FILE (12): group (16) + remote name; the reply has no body.
pub fn delete_request(group: &str, remote: &str) -> Result<Vec<u8>, ProtoError> {
    let mut body = encode_group(group)?.to_vec();
    body.extend_from_slice(check_remote(remote)?);
    Ok(message(CMD_DELETE_FILE, 0, &body))
}

/// SET_METADATA (13), overwriting (`O`): name length (8) + metadata length
/// (8) + flag (1) + group (16) + remote name + `name\x02value` pairs joined
/// by `\x01`. Names 1–64 bytes, values up to 256, neither containing the
/// separators.
pub fn set_metadata_request(
    group: &str,
    remote: &str,
    meta: &[(String, String)],
) -> Result<Vec<u8>, ProtoError> {
    let r = check_remote(remote)?;
    let mut m = Vec::new();
    for (i, (k, v)) in meta.iter().enumerate() {
        let sep = |b: u8| b == META_RECORD_SEP || b == META_FIELD_SEP || b == 0;
        if k.is_empty() || k.len() > META_NAME_MAX || k.bytes().any(sep) {
            return Err(ProtoError::BadRequest("metadata name"));
        }
        if v.len() > META_VALUE_MAX || v.bytes().any(sep) {
            return Err(ProtoError::BadRequest("metadata value"));
        }
        if i > 0 {
            m.push(META_RECORD_SEP);
        }
        m.extend_from_slice(k.as_bytes());
        m.push(META_FIELD_SEP);
        m.extend_from_slice(v.as_bytes());
    }
    let mut body = Vec::with_capacity(33 + r.len() + m.len());
    body.extend_from_slice(&size_field(r.len() as u64)?);
    body.extend_from_slice(&size_field(m.len() as u64)?);
    body.push(b'O');
    body.extend_from_slice(&encode_group(group)?);
    body.extend_from_slice(r);
    body.extend_from_slice(&m);
    Ok(message(CMD_SET_METADATA, 0, &body))
}

/// GET_METADATA (15): group (16) + remote name.
pub fn get_metadata_request(group: &str, remote: &str) -> Result<Vec<u8>, ProtoError> {
    let mut body = encode_group(group)?.to_vec();
    body.extend_from_slice(check_remote(remote)?);
    Ok(message(CMD_GET_METADATA, 0, &body))
}

/// A GET_METADATA reply: `name\x02value` records joined by `\x01` (empty:
/// none). Values that are not UTF-8 are replaced lossily.
pub fn parse_metadata(body: &[u8]) -> Result<Vec<(String, String)>, ProtoError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split(|b| *b == META_RECORD_SEP)
        .map(|rec| {
            let mut f = rec.splitn(2, |b| *b == META_FIELD_SEP);
            let name = f.next().unwrap_or_default();
            let value = f.next().ok_or(ProtoError::BadBody("metadata record"))?;
            Ok((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The recorded `fdfs_upload_file` exchange
    /// (tests/fixtures/fastdfs-wire/storage_upload_file.json).
    #[test]
    fn upload_matches_the_recording() {
        let content = b"hello from the fastdfs wire recorder\n";
        let mut sent = upload_head(false, 0, content.len() as u64, "txt").unwrap();
        sent.extend_from_slice(content);
        assert_eq!(sent, hex("00000000000000340b0000000000000000002574787400000068656c6c6f2066726f6d2074686520666173746466732077697265207265636f726465720a"));
        let reply = hex("67726f757031000000000000000000004d30302f30302f30302f667741414132734775673241425a716d414141414a555166722d593935362e747874");
        assert_eq!(
            parse_upload_reply(&reply).unwrap(),
            (
                "group1".to_owned(),
                "M00/00/00/fwAAA2sGug2ABZqmAAAAJUQfr-Y956.txt".to_owned()
            )
        );
        assert_eq!(upload_head(true, 1, 0, "").unwrap()[8..11], [23, 0, 1]);
    }

    /// tests/fixtures/fastdfs-wire/storage_delete_file.json and
    /// tracker_query_store_variants.json.
    #[test]
    fn delete_and_store_query_match_the_recordings() {
        assert_eq!(
            delete_request("group1", "M00/00/00/fwAAA2sGug2ABZqmAAAAJUQfr-Y956.txt").unwrap(),
            hex("000000000000003c0c0067726f757031000000000000000000004d30302f30302f30302f667741414132734775673241425a716d414141414a555166722d593935362e747874")
        );
        assert_eq!(
            query_store_request(Some("group1")).unwrap(),
            hex("0000000000000010680067726f75703100000000000000000000")
        );
        assert_eq!(
            query_store_request(None).unwrap(),
            hex("00000000000000006500")
        );
        let t = StoreTarget::parse(&hex(
            "67726f757031000000000000000000003132372e302e302e3200000000000000000000000059d800",
        ))
        .unwrap();
        assert_eq!(
            t,
            StoreTarget {
                group: "group1".into(),
                ip: "127.0.0.2".into(),
                port: 23000,
                store_path_index: 0
            }
        );
        assert_eq!(StoreTarget::parse(&t.encode()), Ok(t));
        for n in [0, 39, 41, 69, 71] {
            assert!(StoreTarget::parse(&vec![b'a'; n]).is_err());
        }
    }

    #[test]
    fn slave_append_metadata_layouts() {
        let s = slave_head("M00/00/00/a.jpg", "_150x150", "jpg", 5).unwrap();
        assert_eq!(s[8], CMD_UPLOAD_SLAVE_FILE);
        let fields = 8 + 8 + 16 + 6 + 15;
        assert_eq!(&s[..8], &((fields + 5) as u64).to_be_bytes());
        assert_eq!(&s[10..18], &15u64.to_be_bytes());
        assert_eq!(&s[18..26], &5u64.to_be_bytes());
        assert_eq!(&s[26..34], b"_150x150");
        assert_eq!(&s[42..45], b"jpg");
        assert_eq!(&s[48..], b"M00/00/00/a.jpg");
        assert!(slave_head("M00/x", "", "jpg", 1).is_err());
        assert!(slave_head("M00/x", "a/b", "jpg", 1).is_err());
        assert!(slave_head("M00/x", "p", "jpeg2000", 1).is_err());

        let a = append_head("M00/00/00/b", 7).unwrap();
        assert_eq!(&a[..10], &[0, 0, 0, 0, 0, 0, 0, 34, 24, 0]);
        assert_eq!(&a[10..18], &11u64.to_be_bytes());
        assert_eq!(&a[18..26], &7u64.to_be_bytes());

        let m = set_metadata_request(
            "group1",
            "M00/00/00/a.txt",
            &[("name".into(), "ä.txt".into()), ("w".into(), "1".into())],
        )
        .unwrap();
        assert_eq!(m[8], CMD_SET_METADATA);
        assert_eq!(m[26], b'O');
        assert!(m.ends_with("M00/00/00/a.txtname\x02ä.txt\x01w\x021".as_bytes()));
        assert!(set_metadata_request("g", "r", &[("a\x01".into(), "v".into())]).is_err());
        assert!(set_metadata_request("g", "r", &[("a".into(), "v\x02".into())]).is_err());
        assert!(set_metadata_request("g", "r", &[("a".into(), "v".repeat(257))]).is_err());
    }

    /// tests/fixtures/fastdfs-wire/storage_get_metadata_then_active_test.json.
    #[test]
    fn get_metadata_matches_the_recording() {
        assert_eq!(
            get_metadata_request("group1", "M00/00/00/fwAAAmsGtf2ARhwwAAAAG6BySuY736.txt").unwrap(),
            hex("000000000000003c0f0067726f757031000000000000000000004d30302f30302f30302f66774141416d7347746632415268777741414141473642795375593733362e747874")
        );
        let m = parse_metadata(&hex("6578745f6e616d65026a70670166696c655f73697a65023131353132300168656967687402383001776964746802313630")).unwrap();
        let want = [
            ("ext_name", "jpg"),
            ("file_size", "115120"),
            ("height", "80"),
            ("width", "160"),
        ];
        assert_eq!(m.len(), 4);
        for ((k, v), (wk, wv)) in m.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
        assert_eq!(parse_metadata(b""), Ok(Vec::new()));
        assert!(parse_metadata(b"novalue").is_err());
    }

    #[test]
    fn upload_reply_rejects_garbage() {
        for b in [
            &b""[..],
            &[0u8; 16][..],
            b"group1\0\0\0\0\0\0\0\0\0\0M00/../\x00x",
            b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0M00/a",
        ] {
            assert!(parse_upload_reply(b).is_err(), "{b:?}");
        }
        assert!(upload_head(false, 0, u64::MAX, "").is_err());
        assert!(upload_head(false, 0, 1, "a.b").is_err());
    }
}
