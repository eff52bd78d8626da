//! Packet framing and fixed-width fields (docs/wire-protocol.md §1, §1.1, §2).
//!
//! Every message is a 10-byte [`Header`] (`pkg_len` i64 BE, `cmd`,
//! `status`) followed by `pkg_len` body bytes. Bodies use big-endian 8-byte
//! "long" and 4-byte "int" fields and NUL-padded fixed-width strings.

use super::ProtoError;

/// Length of the packet header.
pub const HEADER_LEN: usize = 10;
/// `FDFS_GROUP_NAME_MAX_LEN`: width of a group name in requests and replies.
pub const GROUP_NAME_LEN: usize = 16;
/// `FDFS_STORAGE_ID_MAX_SIZE`: width of a storage ID field.
pub const STORAGE_ID_LEN: usize = 16;
/// `FDFS_VERSION_SIZE`: width of a version string field.
pub const VERSION_LEN: usize = 8;
/// Longest remote file name accepted in requests (`< 128`, so a fetch query
/// body stays below the tracker's 144-byte limit, §6.1).
pub const REMOTE_NAME_MAX_LEN: usize = 127;
/// Largest body accepted in any non-download reply (64 MiB).
pub const MAX_REPLY_BODY: u64 = 64 * 1024 * 1024;

/// `TRACKER_PROTO_CMD_RESP`: the `cmd` of every reply.
pub const CMD_RESP: u8 = 100;
/// `TRACKER_PROTO_CMD_STORAGE_PARAMETER_REQ`.
pub const CMD_PARAMETERS: u8 = 75;
/// `TRACKER_PROTO_CMD_STORAGE_FETCH_STORAGE_IDS`.
pub const CMD_FETCH_STORAGE_IDS: u8 = 69;
/// `TRACKER_PROTO_CMD_SERVER_LIST_ONE_GROUP`.
pub const CMD_LIST_ONE_GROUP: u8 = 90;
/// `TRACKER_PROTO_CMD_SERVER_LIST_ALL_GROUPS`.
pub const CMD_LIST_ALL_GROUPS: u8 = 91;
/// `TRACKER_PROTO_CMD_SERVER_LIST_STORAGE`.
pub const CMD_LIST_STORAGE: u8 = 92;
/// `TRACKER_PROTO_CMD_SERVICE_QUERY_FETCH_ONE`.
pub const CMD_QUERY_FETCH_ONE: u8 = 102;
/// `TRACKER_PROTO_CMD_SERVICE_QUERY_UPDATE` (same layout as FETCH_ONE).
pub const CMD_QUERY_UPDATE: u8 = 103;
/// `TRACKER_PROTO_CMD_SERVICE_QUERY_FETCH_ALL`.
pub const CMD_QUERY_FETCH_ALL: u8 = 105;
/// `FDFS_PROTO_CMD_ACTIVE_TEST`: keep-alive probe, empty both ways.
pub const CMD_ACTIVE_TEST: u8 = 111;
/// `FDFS_PROTO_CMD_QUIT`: no reply, the server closes.
pub const CMD_QUIT: u8 = 82;
/// `STORAGE_PROTO_CMD_DOWNLOAD_FILE`.
pub const CMD_DOWNLOAD_FILE: u8 = 14;
/// `STORAGE_PROTO_CMD_QUERY_FILE_INFO`.
pub const CMD_QUERY_FILE_INFO: u8 = 22;

/// Errno values peers put in the status byte.
pub mod status {
    /// ENOENT: no such group, file or server.
    pub const ENOENT: u8 = 2;
    /// EINVAL: bad length or parameter (also DOWNLOAD offset ≥ size).
    pub const EINVAL: u8 = 22;
    /// ENOSPC: no room on the storage (or no storage with room).
    pub const ENOSPC: u8 = 28;
    /// EOPNOTSUPP: e.g. storage IDs requested from a tracker without them.
    pub const EOPNOTSUPP: u8 = 95;
}

/// A decoded packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Body length in bytes (header excluded); always ≤ `i64::MAX`.
    pub pkg_len: u64,
    /// Command code (100 in replies).
    pub cmd: u8,
    /// 0 in requests (flags for QUERY_FILE_INFO); errno in replies.
    pub status: u8,
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let len = self.pkg_len.min(i64::MAX as u64);
        out[..8].copy_from_slice(&len.to_be_bytes());
        out[8] = self.cmd;
        out[9] = self.status;
        out
    }

    /// Decodes a header, rejecting a negative `pkg_len` and one above
    /// `max_body`. `bytes` must hold at least [`HEADER_LEN`] bytes; extra
    /// bytes are ignored.
    pub fn decode(bytes: &[u8], max_body: u64) -> Result<Header, ProtoError> {
        let mut r = Reader::new(bytes);
        let len = r.i64().map_err(|_| ProtoError::BadHeader)?;
        let cmd = r.u8().map_err(|_| ProtoError::BadHeader)?;
        let status = r.u8().map_err(|_| ProtoError::BadHeader)?;
        let pkg_len = u64::try_from(len).map_err(|_| ProtoError::BadHeader)?;
        if pkg_len > max_body {
            return Err(ProtoError::BadHeader);
        }
        Ok(Header {
            pkg_len,
            cmd,
            status,
        })
    }

    /// Decodes a reply header: `cmd` must be 100 and a non-zero status is
    /// returned as [`ProtoError::Status`].
    pub fn decode_reply(bytes: &[u8], max_body: u64) -> Result<Header, ProtoError> {
        let h = Header::decode(bytes, max_body)?;
        if h.cmd != CMD_RESP {
            return Err(ProtoError::BadHeader);
        }
        if h.status != 0 {
            return Err(ProtoError::Status(h.status));
        }
        Ok(h)
    }
}

/// Width of IP address fields in tracker and storage replies (§1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpWidth {
    /// `IPV4_ADDRESS_SIZE` = 16.
    V4,
    /// `IPV6_ADDRESS_SIZE` = 46.
    V6,
}

impl IpWidth {
    /// Field width in bytes (16 or 46).
    pub const fn size(self) -> usize {
        match self {
            IpWidth::V4 => 16,
            IpWidth::V6 => 46,
        }
    }
}

/// Builds a complete message: header (with `pkg_len` = body length) + body.
pub fn message(cmd: u8, status: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    let header = Header {
        pkg_len: body.len() as u64,
        cmd,
        status,
    };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(body);
    out
}

/// A reply message: header with `cmd` 100 and the given status, then `body`.
pub fn reply(status: u8, body: &[u8]) -> Vec<u8> {
    message(CMD_RESP, status, body)
}

/// ACTIVE_TEST (111) request: header only.
pub fn active_test_request() -> Vec<u8> {
    message(CMD_ACTIVE_TEST, 0, &[])
}

/// QUIT (82) request: header only; the peer closes without replying.
pub fn quit_request() -> Vec<u8> {
    message(CMD_QUIT, 0, &[])
}

/// Encodes a group name into its 16-byte NUL-padded field. Rejects empty
/// names, names over 16 bytes and names containing NUL.
pub fn encode_group(group: &str) -> Result<[u8; GROUP_NAME_LEN], ProtoError> {
    let b = group.as_bytes();
    if b.is_empty() {
        return Err(ProtoError::BadRequest("empty group name"));
    }
    if b.len() > GROUP_NAME_LEN {
        return Err(ProtoError::BadRequest("group name longer than 16 bytes"));
    }
    if b.contains(&0) {
        return Err(ProtoError::BadRequest("NUL in group name"));
    }
    let mut out = [0u8; GROUP_NAME_LEN];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// Checks a remote file name (`M00/00/00/xxx.ext`) for use in a request.
pub fn check_remote(remote: &str) -> Result<&[u8], ProtoError> {
    let b = remote.as_bytes();
    if b.is_empty() {
        return Err(ProtoError::BadRequest("empty remote file name"));
    }
    if b.len() > REMOTE_NAME_MAX_LEN {
        return Err(ProtoError::BadRequest("remote file name too long"));
    }
    if b.contains(&0) {
        return Err(ProtoError::BadRequest("NUL in remote file name"));
    }
    Ok(b)
}

/// Appends `s` as a NUL-padded field of `width` bytes (cut if longer).
pub fn put_fixed_str(out: &mut Vec<u8>, s: &str, width: usize) {
    let b = s.as_bytes();
    let n = b.len().min(width);
    out.extend_from_slice(b.get(..n).unwrap_or_default());
    out.resize(out.len() + (width - n), 0);
}

/// A bounds-checked cursor over a body. Every accessor fails with
/// [`ProtoError::BadBody`] instead of panicking when bytes run out.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(ProtoError::BadBody("truncated"))?;
        self.rest = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, ProtoError> {
        let b = self.take(1)?;
        b.first().copied().ok_or(ProtoError::BadBody("truncated"))
    }

    /// A 4-byte big-endian int.
    pub fn i32(&mut self) -> Result<i32, ProtoError> {
        let b = self.take(4)?;
        let arr: [u8; 4] = b.try_into().map_err(|_| ProtoError::BadBody("truncated"))?;
        Ok(i32::from_be_bytes(arr))
    }

    /// An 8-byte big-endian long.
    pub fn i64(&mut self) -> Result<i64, ProtoError> {
        let b = self.take(8)?;
        let arr: [u8; 8] = b.try_into().map_err(|_| ProtoError::BadBody("truncated"))?;
        Ok(i64::from_be_bytes(arr))
    }

    /// A NUL-padded string field of `width` bytes (not necessarily
    /// NUL-terminated when full). Must be UTF-8; `what` names the field.
    pub fn fixed_str(&mut self, width: usize, what: &'static str) -> Result<String, ProtoError> {
        let b = self.take(width)?;
        fixed_str(b, what)
    }
}

/// Decodes a NUL-padded field: the bytes before the first NUL, as UTF-8.
pub fn fixed_str(field: &[u8], what: &'static str) -> Result<String, ProtoError> {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    let text = field.get(..end).unwrap_or_default();
    std::str::from_utf8(text)
        .map(str::to_owned)
        .map_err(|_| ProtoError::BadBody(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        for (len, cmd, st) in [
            (0u64, 75u8, 0u8),
            (974, 100, 0),
            (3300, 100, 2),
            (1 << 40, 14, 1),
        ] {
            let h = Header {
                pkg_len: len,
                cmd,
                status: st,
            };
            assert_eq!(Header::decode(&h.encode(), u64::MAX), Ok(h));
        }
    }

    #[test]
    fn header_bytes_match_capture() {
        // tracker_list_groups_and_storages__both_active: reply to cmd 92.
        let h = Header {
            pkg_len: 974,
            cmd: 100,
            status: 0,
        };
        assert_eq!(h.encode(), [0, 0, 0, 0, 0, 0, 0x03, 0xce, 0x64, 0x00]);
    }

    #[test]
    fn header_rejects_negative_and_oversized() {
        let mut neg = [0xffu8; 10];
        neg[8] = 100;
        neg[9] = 0;
        assert_eq!(Header::decode(&neg, u64::MAX), Err(ProtoError::BadHeader));
        let big = Header {
            pkg_len: MAX_REPLY_BODY + 1,
            cmd: 100,
            status: 0,
        }
        .encode();
        assert_eq!(
            Header::decode(&big, MAX_REPLY_BODY),
            Err(ProtoError::BadHeader)
        );
        let max = Header {
            pkg_len: MAX_REPLY_BODY,
            cmd: 100,
            status: 0,
        }
        .encode();
        assert!(Header::decode(&max, MAX_REPLY_BODY).is_ok());
        assert_eq!(
            Header::encode(&Header {
                pkg_len: u64::MAX,
                cmd: 1,
                status: 0
            })[0],
            0x7f
        );
    }

    #[test]
    fn header_rejects_short_input() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Header::decode(&[0u8; 10][..n], u64::MAX),
                Err(ProtoError::BadHeader)
            );
        }
    }

    #[test]
    fn reply_header_checks_cmd_and_status() {
        assert_eq!(
            Header::decode_reply(&reply(0, &[]), 0),
            Ok(Header {
                pkg_len: 0,
                cmd: 100,
                status: 0
            })
        );
        assert_eq!(
            Header::decode_reply(&reply(2, &[]), 0),
            Err(ProtoError::Status(2))
        );
        assert_eq!(
            Header::decode_reply(&reply(95, &[]), 0),
            Err(ProtoError::Status(95))
        );
        assert_eq!(
            Header::decode_reply(&message(75, 0, &[]), 0),
            Err(ProtoError::BadHeader)
        );
    }

    #[test]
    fn group_encoding() {
        let g = encode_group("group1").unwrap();
        assert_eq!(&g[..6], b"group1");
        assert!(g[6..].iter().all(|&b| b == 0));
        assert_eq!(
            encode_group("0123456789abcdef").unwrap(),
            *b"0123456789abcdef"
        );
        assert!(encode_group("").is_err());
        assert!(encode_group("0123456789abcdefg").is_err());
        assert!(encode_group("gr\0up").is_err());
    }

    #[test]
    fn remote_checks() {
        assert!(check_remote("M00/00/00/a.txt").is_ok());
        assert!(check_remote("").is_err());
        assert!(check_remote("a\0b").is_err());
        assert!(check_remote(&"a".repeat(127)).is_ok());
        assert!(check_remote(&"a".repeat(128)).is_err());
    }

    #[test]
    fn fixed_strings() {
        assert_eq!(fixed_str(b"6.16.1\0\0", "v").unwrap(), "6.16.1");
        assert_eq!(fixed_str(b"12345678", "v").unwrap(), "12345678");
        assert_eq!(fixed_str(b"\0abc", "v").unwrap(), "");
        assert_eq!(fixed_str(b"\xff\0", "v"), Err(ProtoError::BadBody("v")));
        let mut out = Vec::new();
        put_fixed_str(&mut out, "abc", 5);
        put_fixed_str(&mut out, "abcdef", 4);
        assert_eq!(out, b"abc\0\0abcd");
    }

    #[test]
    fn reader_is_bounded() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.i32(), Err(ProtoError::BadBody("truncated")));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.take(5), Err(ProtoError::BadBody("truncated")));
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.rest(), &[2, 3]);
        assert_eq!(r.u8(), Err(ProtoError::BadBody("truncated")));
        assert_eq!(r.i64(), Err(ProtoError::BadBody("truncated")));
    }
}
