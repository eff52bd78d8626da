//! Building file IDs the way a storage server names uploads, for tests and
//! the demo store (docs/file-id.md §2.3, §2.4, §4.2, §10).

use std::net::Ipv4Addr;

use super::name::{
    EncodedName, Source, TrunkSlot, SIZE_WORD_APPENDER, SIZE_WORD_SPLIT, SIZE_WORD_TRUNK,
};
use super::FORMATTED_EXT_LEN;

/// Longest extension a storage keeps (`FDFS_FILE_EXT_NAME_MAX_LEN`).
const EXT_MAX_LEN: usize = 6;

/// How the file was stored, which decides the size word and name layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuildKind {
    /// Plain file: `(0x80000000 | rand23) << 32 | size`, or `size` itself
    /// from 4 GiB on.
    Normal,
    /// Packed into a trunk file at this slot: 32-bit size with bit 59 set,
    /// and the 16 slot chars in the name.
    Trunk(TrunkSlot),
    /// Appender file: size 0 in the name, bit 58 set.
    Appender,
}

/// Encoder for complete file IDs `group/Mxx/HH/HH/<27>[<16>]<fext7>`.
///
/// Defaults: `group1`, `M00`, `00/00`, source `127.0.0.1`, timestamp 0,
/// size 0, crc32 0, normal, rand23 0, no extension, digits 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdBuilder {
    group: String,
    store_index: u8,
    subdirs: (u8, u8),
    source: Source,
    create_ts: i64,
    size: u64,
    crc32: u32,
    kind: BuildKind,
    rand23: u32,
    extension: Option<String>,
    ext_digits: u32,
}

impl Default for IdBuilder {
    fn default() -> Self {
        IdBuilder {
            group: "group1".to_owned(),
            store_index: 0,
            subdirs: (0, 0),
            source: Source::Ip(Ipv4Addr::LOCALHOST),
            create_ts: 0,
            size: 0,
            crc32: 0,
            kind: BuildKind::Normal,
            rand23: 0,
            extension: None,
            ext_digits: 0,
        }
    }
}

impl IdBuilder {
    /// The builder that rebuilds `id` (normal, trunk and appender IDs;
    /// `None` for slaves, whose names come from [`slave_name`]).
    pub fn from_file_id(id: &super::FileId) -> Option<Self> {
        use super::FileKind;
        let fext = id.formatted_ext();
        let n = fext.bytes().take_while(u8::is_ascii_digit).count();
        let (digits, ext) = fext.split_at(n);
        let kind = match *id.kind() {
            FileKind::Normal => BuildKind::Normal,
            FileKind::Trunk(slot) => BuildKind::Trunk(slot),
            FileKind::Appender => BuildKind::Appender,
            FileKind::Slave => return None,
        };
        let e = id.encoded();
        Some(
            IdBuilder::new()
                .group(id.group())
                .store_index(id.store_index())
                .subdirs(id.subdirs().0, id.subdirs().1)
                .source(e.source)
                .create_ts(e.create_ts)
                .size(e.stated_size())
                .crc32(e.crc32)
                .rand23(e.rand23())
                .kind(kind)
                .extension(ext.strip_prefix('.').unwrap_or(""))
                .ext_digits(digits.parse().unwrap_or(0)),
        )
    }

    /// A builder with the defaults listed on [`IdBuilder`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Group name (not validated).
    pub fn group(mut self, group: &str) -> Self {
        self.group = group.to_owned();
        self
    }

    /// Store path index, written as `M` + 2 uppercase hex digits.
    pub fn store_index(mut self, index: u8) -> Self {
        self.store_index = index;
        self
    }

    /// Subdirectories `HH/HH`.
    pub fn subdirs(mut self, high: u8, low: u8) -> Self {
        self.subdirs = (high, low);
        self
    }

    /// Source storage (IPv4 address or storage ID).
    pub fn source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// Create timestamp (Unix seconds, written as 32 bits).
    pub fn create_ts(mut self, ts: i64) -> Self {
        self.create_ts = ts;
        self
    }

    /// File size (ignored for appenders; truncated to 32 bits for trunk files).
    pub fn size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    /// CRC-32 of the content.
    pub fn crc32(mut self, crc32: u32) -> Self {
        self.crc32 = crc32;
        self
    }

    /// Normal, trunk slot or appender.
    pub fn kind(mut self, kind: BuildKind) -> Self {
        self.kind = kind;
        self
    }

    /// The 23 random bits of the size word (masked to 23 bits).
    pub fn rand23(mut self, rand23: u32) -> Self {
        self.rand23 = rand23 & 0x7F_FFFF;
        self
    }

    /// Extension without the dot; dropped if empty or longer than 6 chars,
    /// like `fdfs_upload_file` does (§2.3). Characters are not validated.
    pub fn extension(mut self, ext: &str) -> Self {
        self.extension = Some(ext.to_owned());
        self
    }

    /// The "random" digits of the formatted extension: this number modulo
    /// 10^n, zero-padded to the n digits needed (`3` with `conf` → `03.conf`,
    /// `123456` without extension → `0123456`).
    pub fn ext_digits(mut self, digits: u32) -> Self {
        self.ext_digits = digits;
        self
    }

    /// The size word `W` the storage would write (§4.2).
    pub fn size_word(&self) -> u64 {
        let split = SIZE_WORD_SPLIT | u64::from(self.rand23 & 0x7F_FFFF) << 32;
        match self.kind {
            BuildKind::Normal if self.size > 0xFFFF_FFFF => self.size,
            BuildKind::Normal => split | self.size,
            BuildKind::Trunk(_) => split | (self.size & 0xFFFF_FFFF) | SIZE_WORD_TRUNK,
            BuildKind::Appender => split | SIZE_WORD_APPENDER,
        }
    }

    /// The 20 encoded fields.
    pub fn encoded(&self) -> EncodedName {
        EncodedName {
            source: self.source,
            create_ts: self.create_ts,
            size_word: self.size_word(),
            crc32: self.crc32,
        }
    }

    /// The 7-char formatted extension (§2.3).
    pub fn formatted_ext(&self) -> String {
        let ext = self
            .extension
            .as_deref()
            .filter(|e| !e.is_empty() && e.len() <= EXT_MAX_LEN);
        let width = match ext {
            Some(e) => EXT_MAX_LEN - e.len(),
            None => FORMATTED_EXT_LEN,
        };
        let digits = if width == 0 {
            String::new()
        } else {
            let modulus = 10u64.pow(width as u32);
            format!("{:0width$}", u64::from(self.ext_digits) % modulus)
        };
        match ext {
            Some(e) => format!("{digits}.{e}"),
            None => digits,
        }
    }

    /// The remote filename `Mxx/HH/HH/<27>[<16>]<fext7>`.
    pub fn build_remote(&self) -> String {
        let trunk = match self.kind {
            BuildKind::Trunk(slot) => slot.encode(),
            BuildKind::Normal | BuildKind::Appender => String::new(),
        };
        format!(
            "M{:02X}/{:02X}/{:02X}/{}{}{}",
            self.store_index,
            self.subdirs.0,
            self.subdirs.1,
            self.encoded().encode(),
            trunk,
            self.formatted_ext()
        )
    }

    /// The full file ID `group/Mxx/HH/HH/<27>[<16>]<fext7>`.
    pub fn build(&self) -> String {
        format!("{}/{}", self.group, self.build_remote())
    }

    /// Name of a slave of `master_id`; see [`slave_name`].
    pub fn slave_name(master_id: &str, prefix: &str, ext: Option<&str>) -> String {
        slave_name(master_id, prefix, ext)
    }
}

/// Name of a slave file of `master_id` (a full ID or a remote filename), as
/// the storage builds it (§2.4): the master's name with its `.ext` cut off
/// (the `.` is searched in the last 7 chars of the part after the last `/`),
/// then `prefix`, then `.` + `ext`, or the master's `.ext` if `ext` is `None`
/// or empty. Inputs are not validated.
pub fn slave_name(master_id: &str, prefix: &str, ext: Option<&str>) -> String {
    let name_start = master_id.rfind('/').map_or(0, |i| i + 1);
    let dot = master_id
        .rfind('.')
        .filter(|&d| d >= name_start && d + FORMATTED_EXT_LEN >= master_id.len());
    let (base, master_ext) = match dot {
        Some(d) => master_id.split_at(d),
        None => (master_id, ""),
    };
    match ext.filter(|e| !e.is_empty()) {
        Some(e) => format!("{base}{prefix}.{e}"),
        None => format!("{base}{prefix}{master_ext}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_ext_rules() {
        let b = IdBuilder::new();
        assert_eq!(b.clone().formatted_ext(), "0000000");
        assert_eq!(b.clone().ext_digits(123456).formatted_ext(), "0123456");
        assert_eq!(
            b.clone().ext_digits(3).extension("conf").formatted_ext(),
            "03.conf"
        );
        assert_eq!(
            b.clone().ext_digits(42055).extension("h").formatted_ext(),
            "42055.h"
        );
        assert_eq!(
            b.clone().ext_digits(99).extension("tar.gz").formatted_ext(),
            ".tar.gz"
        );
        assert_eq!(
            b.clone().ext_digits(456).extension("png").formatted_ext(),
            "456.png"
        );
        assert_eq!(
            b.clone().ext_digits(1456).extension("png").formatted_ext(),
            "456.png"
        );
        assert_eq!(
            b.clone().ext_digits(u32::MAX).formatted_ext(),
            "4967295",
            "digits are taken modulo 10^7"
        );
        // Too long: dropped like fdfs_upload_file does.
        assert_eq!(
            b.clone()
                .ext_digits(6753952)
                .extension("jsonlines")
                .formatted_ext(),
            "6753952"
        );
        assert_eq!(
            b.clone().ext_digits(1).extension("").formatted_ext(),
            "0000001"
        );
        for ext in ["a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", ""] {
            assert_eq!(b.clone().extension(ext).formatted_ext().len(), 7, "{ext}");
        }
    }

    #[test]
    fn size_words() {
        let b = IdBuilder::new().rand23(0x50f33d).size(604);
        assert_eq!(b.size_word(), 0x8050_f33d_0000_025c);
        assert_eq!(
            b.clone().size(5_368_709_120).size_word(),
            0x0000_0001_4000_0000
        );
        assert_eq!(
            b.clone().size(0xFFFF_FFFF).size_word(),
            0x8050_f33d_ffff_ffff
        );
        assert_eq!(
            b.clone().kind(BuildKind::Appender).size_word(),
            0x8450_f33d_0000_0000
        );
        let slot = TrunkSlot {
            trunk_id: 1,
            offset: 0,
            alloc_size: 256,
        };
        assert_eq!(
            b.clone().kind(BuildKind::Trunk(slot)).size_word(),
            0x8850_f33d_0000_025c
        );
        assert_eq!(
            IdBuilder::new().rand23(u32::MAX).size_word(),
            0x807f_ffff_0000_0000
        );
    }

    #[test]
    fn builds_spec_example_1() {
        let id = IdBuilder::new()
            .source(Source::Ip(Ipv4Addr::new(172, 16, 2, 20)))
            .create_ts(1551927392)
            .rand23(0x50f33d)
            .size(604)
            .crc32(1650552427)
            .extension("conf")
            .ext_digits(3)
            .build();
        assert_eq!(id, "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf");
    }

    #[test]
    fn builds_spec_example_6_store_path_and_subdirs() {
        let id = IdBuilder::new()
            .group("group2")
            .store_index(1)
            .subdirs(0x0A, 0x1B)
            .source(Source::Ip(Ipv4Addr::new(10, 0, 3, 15)))
            .create_ts(1673785800)
            .rand23(0x123456)
            .kind(BuildKind::Appender)
            .extension("log")
            .ext_digits(777)
            .build();
        assert_eq!(id, "group2/M01/0A/1B/CgADD2PD8ciEEjRWAAAAAAAAAAA777.log");
    }

    #[test]
    fn slave_names() {
        let m = "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf";
        assert_eq!(
            slave_name(m, "_150x150", Some("jpg")),
            "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03_150x150.jpg"
        );
        assert_eq!(
            IdBuilder::slave_name(m, "_big", None),
            "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03_big.conf"
        );
        assert_eq!(
            slave_name(
                "M00/00/00/fwAAA2sGtf2Af44vAAAK-QVmom4870.jpg",
                "1024x1024",
                None
            ),
            "M00/00/00/fwAAA2sGtf2Af44vAAAK-QVmom48701024x1024.jpg"
        );
        // No extension: the whole name is kept.
        assert_eq!(
            slave_name(
                "g/M00/00/00/fwAAAmsGte2AaweAAAAAEmn0lJ80197521",
                "_t",
                Some("png")
            ),
            "g/M00/00/00/fwAAAmsGte2AaweAAAAAEmn0lJ80197521_t.png"
        );
        // A '.' further than 7 chars from the end, or in the directory part, is ignored.
        assert_eq!(slave_name("a.b/xxxxxxxxx", "_p", None), "a.b/xxxxxxxxx_p");
        assert_eq!(slave_name("x.abcdefg", "_p", None), "x.abcdefg_p");
        assert_eq!(slave_name("x.abcdef", "_p", None), "x_p.abcdef");
        assert_eq!(slave_name("", "", None), "");
        assert_eq!(slave_name("é.é", "_p", Some("")), "é_p.é");
    }
}
