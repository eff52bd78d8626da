//! The binary fields hidden in a FastDFS file name: the 27-char encoded name
//! (20 bytes, docs/file-id.md §4) and the 16-char trunk slot (12 bytes,
//! §6).

use std::fmt;
use std::net::Ipv4Addr;

use super::base64;
use super::IdError;

/// Length of the encoded name (`FDFS_FILENAME_BASE64_LENGTH`).
pub const ENCODED_NAME_LEN: usize = 27;
/// Length of the encoded trunk slot (`FDFS_TRUNK_FILE_INFO_LEN`).
pub const TRUNK_INFO_LEN: usize = 16;

/// Largest value of the source field read as a storage server ID (2^24 − 1).
pub const MAX_STORAGE_ID: u32 = 0x00FF_FFFF;

/// Bit 63 of the size word: the low 32 bits hold the size, bits 32–54 are random.
pub const SIZE_WORD_SPLIT: u64 = 1 << 63;
/// Bit 59 of the size word: trunk file (`FDFS_TRUNK_FILE_MARK_SIZE`).
pub const SIZE_WORD_TRUNK: u64 = 1 << 59;
/// Bit 58 of the size word: appender file (`FDFS_APPENDER_FILE_SIZE`).
pub const SIZE_WORD_APPENDER: u64 = 1 << 58;
/// The 23 random bits of the size word (bits 32–54).
pub const SIZE_WORD_RANDOM: u64 = 0x007F_FFFF_0000_0000;

/// The storage server that first received a file (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The storage's IPv4 address, written in network order.
    Ip(Ipv4Addr),
    /// A storage server ID (`use_storage_id=true`), to be resolved through
    /// `storage_ids.conf` (§7).
    StorageId(u32),
}

impl Source {
    /// Interprets the 4 source bytes: read little-endian, a value in
    /// `1..=2^24−1` is a storage ID, anything else the IPv4 octets as written.
    pub fn from_bytes(bytes: [u8; 4]) -> Self {
        let v = u32::from_le_bytes(bytes);
        if (1..=MAX_STORAGE_ID).contains(&v) {
            Source::StorageId(v)
        } else {
            Source::Ip(Ipv4Addr::from(bytes))
        }
    }

    /// The 4 bytes a storage writes: IPv4 octets, or the ID little-endian
    /// (what `htonl` + a big-endian writer produce on little-endian hosts).
    pub fn to_bytes(self) -> [u8; 4] {
        match self {
            Source::Ip(ip) => ip.octets(),
            Source::StorageId(id) => id.to_le_bytes(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip(ip) => ip.fmt(f),
            Source::StorageId(id) => id.fmt(f),
        }
    }
}

/// The 20 bytes behind the 27 encoded characters of a file name (§4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodedName {
    /// Storage that first received the file (for slaves: the master's).
    pub source: Source,
    /// Create timestamp, Unix seconds (a big-endian `i32` on the wire).
    pub create_ts: i64,
    /// The 64-bit size word `W` with its flag bits (§4.2).
    pub size_word: u64,
    /// CRC-32/IEEE of the content (meaningful for normal and trunk files only).
    pub crc32: u32,
}

impl EncodedName {
    /// Strictly decodes the 27 characters (exact length, base64 alphabet,
    /// canonical last character).
    pub fn decode(enc27: &str) -> Result<Self, IdError> {
        let b: [u8; 20] = base64::decode(enc27).ok_or(IdError::BadEncoding)?;
        let [s0, s1, s2, s3, t0, t1, t2, t3, w0, w1, w2, w3, w4, w5, w6, w7, c0, c1, c2, c3] = b;
        Ok(EncodedName {
            source: Source::from_bytes([s0, s1, s2, s3]),
            create_ts: i64::from(i32::from_be_bytes([t0, t1, t2, t3])),
            size_word: u64::from_be_bytes([w0, w1, w2, w3, w4, w5, w6, w7]),
            crc32: u32::from_be_bytes([c0, c1, c2, c3]),
        })
    }

    /// Encodes to the 27 characters. `create_ts` is written as a 32-bit
    /// value (truncated, like upstream's `int`); a `StorageId` is written
    /// little-endian whatever its value.
    pub fn encode(&self) -> String {
        let mut b = [0u8; 20];
        let (src, rest) = b.split_at_mut(4);
        let (ts, rest) = rest.split_at_mut(4);
        let (w, crc) = rest.split_at_mut(8);
        src.copy_from_slice(&self.source.to_bytes());
        ts.copy_from_slice(&(self.create_ts as i32).to_be_bytes());
        w.copy_from_slice(&self.size_word.to_be_bytes());
        crc.copy_from_slice(&self.crc32.to_be_bytes());
        base64::encode(&b)
    }

    /// Appender flag (bit 58) set.
    pub fn is_appender(&self) -> bool {
        self.size_word & SIZE_WORD_APPENDER != 0
    }

    /// Trunk flag (bit 59) set.
    pub fn is_trunk(&self) -> bool {
        self.size_word & SIZE_WORD_TRUNK != 0
    }

    /// The size the name states for a normal or trunk file (§4.2 step 3):
    /// the low 32 bits if bit 63 or the trunk bit is set, else the whole word.
    pub fn stated_size(&self) -> u64 {
        if self.size_word & (SIZE_WORD_SPLIT | SIZE_WORD_TRUNK) != 0 {
            self.size_word & 0xFFFF_FFFF
        } else {
            self.size_word
        }
    }

    /// The 23 random bits of the size word (0 when bit 63 is clear).
    pub fn rand23(&self) -> u32 {
        if self.size_word & SIZE_WORD_SPLIT != 0 {
            ((self.size_word & SIZE_WORD_RANDOM) >> 32) as u32
        } else {
            0
        }
    }
}

/// Where a trunk-stored file lives inside its trunk file (§6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrunkSlot {
    /// Trunk file id: the file is `data/HH/HH/<id, at least 6 digits>`.
    pub trunk_id: u32,
    /// Offset of the 24-byte slot header inside the trunk file.
    pub offset: u32,
    /// Allocated slot size, header included.
    pub alloc_size: u32,
}

impl TrunkSlot {
    /// Size of the slot header that precedes the content (§6.1).
    pub const HEADER_LEN: u32 = 24;

    /// Strictly decodes the 16 characters into three big-endian signed
    /// 32-bit fields; negative values are refused.
    pub fn decode(enc16: &str) -> Result<Self, IdError> {
        let b: [u8; 12] = base64::decode(enc16).ok_or(IdError::BadTrunkInfo)?;
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = b;
        let field = |bytes: [u8; 4]| {
            let v = u32::from_be_bytes(bytes);
            if v > i32::MAX as u32 {
                Err(IdError::BadTrunkInfo)
            } else {
                Ok(v)
            }
        };
        Ok(TrunkSlot {
            trunk_id: field([a0, a1, a2, a3])?,
            offset: field([b0, b1, b2, b3])?,
            alloc_size: field([c0, c1, c2, c3])?,
        })
    }

    /// Encodes to the 16 characters.
    pub fn encode(&self) -> String {
        let mut b = [0u8; 12];
        let (id, rest) = b.split_at_mut(4);
        let (off, size) = rest.split_at_mut(4);
        id.copy_from_slice(&self.trunk_id.to_be_bytes());
        off.copy_from_slice(&self.offset.to_be_bytes());
        size.copy_from_slice(&self.alloc_size.to_be_bytes());
        base64::encode(&b)
    }

    /// File name of the trunk file inside `data/HH/HH/`: the id in decimal,
    /// zero-padded to at least 6 digits (`1` → `000001`).
    pub fn trunk_file_name(&self) -> String {
        format!("{:06}", self.trunk_id)
    }

    /// Offset of the file content: just after the slot header.
    pub fn content_offset(&self) -> u64 {
        u64::from(self.offset) + u64::from(Self::HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_rule_boundaries() {
        assert_eq!(
            Source::from_bytes([0, 0, 0, 0]),
            Source::Ip(Ipv4Addr::UNSPECIFIED)
        );
        assert_eq!(Source::from_bytes([1, 0, 0, 0]), Source::StorageId(1));
        assert_eq!(
            Source::from_bytes([0xff, 0xff, 0xff, 0]),
            Source::StorageId(MAX_STORAGE_ID)
        );
        assert_eq!(
            Source::from_bytes([0, 0, 0, 1]),
            Source::Ip(Ipv4Addr::new(0, 0, 0, 1))
        );
        assert_eq!(
            Source::from_bytes([0xa1, 0x86, 0x01, 0x00]),
            Source::StorageId(100001)
        );
        assert_eq!(Source::from_bytes([10, 1, 2, 0]), Source::StorageId(131338));
        assert_eq!(
            Source::from_bytes([172, 16, 2, 20]),
            Source::Ip(Ipv4Addr::new(172, 16, 2, 20))
        );
    }

    #[test]
    fn source_display_and_bytes() {
        assert_eq!(
            Source::Ip(Ipv4Addr::new(127, 0, 0, 2)).to_string(),
            "127.0.0.2"
        );
        assert_eq!(Source::StorageId(100001).to_string(), "100001");
        assert_eq!(
            Source::StorageId(100001).to_bytes(),
            [0xa1, 0x86, 0x01, 0x00]
        );
        assert_eq!(
            Source::Ip(Ipv4Addr::new(1, 2, 3, 4)).to_bytes(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn decode_example_1() {
        let n = EncodedName::decode("rBACFFyAiGCAUPM9AAACXGJhbms");
        assert_eq!(
            n,
            Ok(EncodedName {
                source: Source::Ip(Ipv4Addr::new(172, 16, 2, 20)),
                create_ts: 1551927392,
                size_word: 0x8050_f33d_0000_025c,
                crc32: 1650552427,
            })
        );
        let n = n.unwrap_or_else(|_| unreachable!());
        assert_eq!(n.stated_size(), 604);
        assert_eq!(n.rand23(), 0x50f33d);
        assert!(!n.is_trunk() && !n.is_appender());
        assert_eq!(n.encode(), "rBACFFyAiGCAUPM9AAACXGJhbms");
    }

    #[test]
    fn negative_timestamp_and_truncation() {
        let n = EncodedName {
            source: Source::Ip(Ipv4Addr::new(1, 2, 3, 4)),
            create_ts: -1,
            size_word: 0,
            crc32: 0,
        };
        assert_eq!(
            EncodedName::decode(&n.encode()).map(|d| d.create_ts),
            Ok(-1)
        );
        let big = EncodedName {
            create_ts: (1 << 32) + 5,
            ..n
        };
        assert_eq!(
            EncodedName::decode(&big.encode()).map(|d| d.create_ts),
            Ok(5)
        );
    }

    #[test]
    fn stated_size_rules() {
        let n = |w| EncodedName {
            source: Source::StorageId(1),
            create_ts: 0,
            size_word: w,
            crc32: 0,
        };
        assert_eq!(n(0x8000_0001_0000_0010).stated_size(), 16);
        assert_eq!(n(0x0800_0001_0000_0010).stated_size(), 16);
        assert_eq!(n(0x0000_0001_4000_0000).stated_size(), 5_368_709_120);
        assert_eq!(n(0x0000_0001_4000_0000).rand23(), 0);
        assert_eq!(n(0x887f_ffff_0000_0000).rand23(), 0x7f_ffff);
    }

    #[test]
    fn decode_rejects_bad_input() {
        for bad in [
            "",
            "rBACFFyAiGCAUPM9AAACXGJhbm",
            "rBACFFyAiGCAUPM9AAACXGJhbmsA",
            "rBACFFyAiGCAUPM9AAACXGJhbm!",
            "rBACFFyAiGCAUPM9AAACXGJhbmt",
            "rBACFFyAiGCAUPM9AAACXGJhbm=",
            "rBACFFyAiGCAUPM9AAACXGJhbé",
        ] {
            assert_eq!(
                EncodedName::decode(bad),
                Err(IdError::BadEncoding),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn trunk_slot_example_7() {
        let s = TrunkSlot::decode("AAAAAQAgAAAAADIA");
        assert_eq!(
            s,
            Ok(TrunkSlot {
                trunk_id: 1,
                offset: 2_097_152,
                alloc_size: 12_800
            })
        );
        let s = s.unwrap_or_else(|_| unreachable!());
        assert_eq!(s.encode(), "AAAAAQAgAAAAADIA");
        assert_eq!(s.trunk_file_name(), "000001");
        assert_eq!(s.content_offset(), 2_097_176);
    }

    #[test]
    fn trunk_slot_rejects_negative_and_malformed() {
        let neg = |i: usize| {
            let mut f = [0u32; 3];
            if let Some(x) = f.get_mut(i) {
                *x = 0x8000_0000;
            }
            TrunkSlot {
                trunk_id: f[0],
                offset: f[1],
                alloc_size: f[2],
            }
            .encode()
        };
        for i in 0..3 {
            assert_eq!(TrunkSlot::decode(&neg(i)), Err(IdError::BadTrunkInfo));
        }
        let max = TrunkSlot {
            trunk_id: i32::MAX as u32,
            offset: i32::MAX as u32,
            alloc_size: i32::MAX as u32,
        };
        assert_eq!(TrunkSlot::decode(&max.encode()), Ok(max));
        for bad in [
            "",
            "AAAAAQAgAAAAADI",
            "AAAAAQAgAAAAADIAA",
            "AAAAAQAgAAAAADI!",
        ] {
            assert_eq!(
                TrunkSlot::decode(bad),
                Err(IdError::BadTrunkInfo),
                "{bad:?}"
            );
        }
        assert_eq!(
            TrunkSlot {
                trunk_id: 1_234_567,
                offset: 0,
                alloc_size: 0
            }
            .trunk_file_name(),
            "1234567"
        );
    }
}
