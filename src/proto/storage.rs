//! Storage commands (docs/wire-protocol.md §6.2): DOWNLOAD_FILE (14) and
//! QUERY_FILE_INFO (22), pure builders and parsers.

use super::frame::{
    check_remote, encode_group, message, put_fixed_str, IpWidth, Reader, CMD_DOWNLOAD_FILE,
    CMD_QUERY_FILE_INFO,
};
use super::ProtoError;

/// DOWNLOAD_FILE (14): `offset` (8) + `bytes` (8; 0 = to end of file) +
/// 16-byte group + remote file name. Offsets and lengths above `i64::MAX`
/// are rejected.
pub fn download_request(
    offset: u64,
    len: u64,
    group: &str,
    remote: &str,
) -> Result<Vec<u8>, ProtoError> {
    let offset = i64::try_from(offset).map_err(|_| ProtoError::BadRequest("offset too large"))?;
    let len = i64::try_from(len).map_err(|_| ProtoError::BadRequest("length too large"))?;
    let mut body = Vec::with_capacity(32 + remote.len());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&len.to_be_bytes());
    body.extend_from_slice(&encode_group(group)?);
    body.extend_from_slice(check_remote(remote)?);
    Ok(message(CMD_DOWNLOAD_FILE, 0, &body))
}

/// Flags of QUERY_FILE_INFO, sent in the request header's status byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileInfoFlags {
    /// 1 = `FDFS_QUERY_FINFO_FLAGS_NOT_CALC_CRC32`: do not compute crc32 of
    /// appender/slave files (the reply carries 0). The module sets it.
    pub no_crc32: bool,
    /// 2 = `FDFS_QUERY_FINFO_FLAGS_KEEP_SILENCE`: do not log "not found".
    pub keep_silence: bool,
}

impl FileInfoFlags {
    /// The status byte value.
    pub fn bits(self) -> u8 {
        u8::from(self.no_crc32) | (u8::from(self.keep_silence) << 1)
    }
}

/// QUERY_FILE_INFO (22): 16-byte group + remote file name; flags in the
/// header status byte.
pub fn query_file_info_request(
    group: &str,
    remote: &str,
    flags: FileInfoFlags,
) -> Result<Vec<u8>, ProtoError> {
    let mut body = encode_group(group)?.to_vec();
    body.extend_from_slice(check_remote(remote)?);
    Ok(message(CMD_QUERY_FILE_INFO, flags.bits(), &body))
}

/// A QUERY_FILE_INFO reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Real file size (appender/slave files included).
    pub size: u64,
    /// `st_mtime` of the stored file (unix s).
    pub create_timestamp: i64,
    /// CRC32 (the low 32 bits of the 8-byte field; the storage sign-extends
    /// it). 0 when not computed.
    pub crc32: u32,
    /// Source storage IP.
    pub source_ip: String,
}

impl FileInfo {
    /// Parses a 40-byte (IPv4) or 70-byte (IPv6) reply body.
    pub fn parse(body: &[u8]) -> Result<FileInfo, ProtoError> {
        let width = match body.len() {
            40 => IpWidth::V4,
            70 => IpWidth::V6,
            _ => return Err(ProtoError::BadBody("file info length")),
        };
        let mut r = Reader::new(body);
        let size =
            u64::try_from(r.i64()?).map_err(|_| ProtoError::BadBody("negative file size"))?;
        let create_timestamp = r.i64()?;
        let crc32 = (r.i64()? & 0xffff_ffff) as u32;
        let source_ip = r.fixed_str(width.size(), "source ip")?;
        Ok(FileInfo {
            size,
            create_timestamp,
            crc32,
            source_ip,
        })
    }

    /// Encodes the reply body as a storage does (crc32 sign-extended).
    pub fn encode(&self, width: IpWidth) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + width.size());
        out.extend_from_slice(&i64::try_from(self.size).unwrap_or(i64::MAX).to_be_bytes());
        out.extend_from_slice(&self.create_timestamp.to_be_bytes());
        out.extend_from_slice(&i64::from(self.crc32 as i32).to_be_bytes());
        put_fixed_str(&mut out, &self.source_ip, width.size());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_request_layout() {
        let r = download_request(100, 50, "group1", "M00/00/00/a.txt").unwrap();
        assert_eq!(&r[..10], &[0, 0, 0, 0, 0, 0, 0, 47, 14, 0]);
        assert_eq!(&r[10..18], &100u64.to_be_bytes());
        assert_eq!(&r[18..26], &50u64.to_be_bytes());
        assert_eq!(&r[26..32], b"group1");
        assert_eq!(&r[42..], b"M00/00/00/a.txt");
        assert!(download_request(u64::MAX, 0, "g", "r").is_err());
        assert!(download_request(0, u64::MAX, "g", "r").is_err());
        assert!(download_request(0, 0, "g", "").is_err());
    }

    #[test]
    fn file_info_request_flags() {
        let none = FileInfoFlags::default();
        let crc = FileInfoFlags {
            no_crc32: true,
            keep_silence: false,
        };
        let both = FileInfoFlags {
            no_crc32: true,
            keep_silence: true,
        };
        assert_eq!((none.bits(), crc.bits(), both.bits()), (0, 1, 3));
        let r = query_file_info_request("group1", "M00/x", crc).unwrap();
        assert_eq!(&r[..10], &[0, 0, 0, 0, 0, 0, 0, 21, 22, 1]);
    }

    #[test]
    fn file_info_round_trip() {
        let fi = FileInfo {
            size: 3300,
            create_timestamp: 1795601849,
            crc32: 0xf04f_1ff7,
            source_ip: "127.0.0.2".into(),
        };
        let v4 = fi.encode(IpWidth::V4);
        assert_eq!(
            &v4[16..24],
            &[0xff, 0xff, 0xff, 0xff, 0xf0, 0x4f, 0x1f, 0xf7]
        );
        assert_eq!(FileInfo::parse(&v4).as_ref(), Ok(&fi));
        assert_eq!(FileInfo::parse(&fi.encode(IpWidth::V6)).as_ref(), Ok(&fi));
        for n in 0..80 {
            if n != 40 && n != 70 {
                assert_eq!(
                    FileInfo::parse(&vec![0; n]),
                    Err(ProtoError::BadBody("file info length"))
                );
            }
        }
        let mut neg = v4.clone();
        neg[0] = 0x80;
        assert_eq!(
            FileInfo::parse(&neg),
            Err(ProtoError::BadBody("negative file size"))
        );
        let mut bad_ip = v4;
        bad_ip[24] = 0xfe;
        assert_eq!(
            FileInfo::parse(&bad_ip),
            Err(ProtoError::BadBody("source ip"))
        );
    }

    #[test]
    fn parse_is_total() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200usize {
            for _ in 0..20 {
                let body: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                let _ = FileInfo::parse(&body);
            }
        }
    }
}
