//! FastDFS file IDs: strict, pure parsing of `group` + remote filename into a
//! [`FileId`], the codecs of the encoded name and trunk slot, an encoder for
//! tests and the demo ([`IdBuilder`]) and the URL-path front end ([`url`]).
//!
//! Implements docs/file-id.md (grammar §2, base64 §3, encoded name §4,
//! trunk slot §6, decoding §8) and docs/module-behaviour.md §2 steps 2.8–2.11 and
//! §5. Deliberate deviations from the C module, answering 404 (its answer)
//! without decoding garbage or contacting a peer: strict base64
//! (exact length, alphabet only, canonical last character), file names limited
//! to upstream's upload charset, legacy (pre-V1.12) names refused; metadata
//! sidecars (`…-m`) are refused with 404 instead of being served.

mod base64;
mod builder;
mod name;
pub mod url;

use std::fmt;

pub use builder::{slave_name, BuildKind, IdBuilder};
pub use name::{
    EncodedName, Source, TrunkSlot, ENCODED_NAME_LEN, MAX_STORAGE_ID, SIZE_WORD_APPENDER,
    SIZE_WORD_RANDOM, SIZE_WORD_SPLIT, SIZE_WORD_TRUNK, TRUNK_INFO_LEN,
};
pub use url::{is_conventional_group, normalize_path, split_target, UrlError};

/// Longest group name (`FDFS_GROUP_NAME_MAX_LEN`).
pub const GROUP_NAME_MAX_LEN: usize = 16;
/// Length of `Mxx/HH/HH/` (`FDFS_LOGIC_FILE_PATH_LEN`).
pub const LOGIC_PATH_LEN: usize = 10;
/// Length of the formatted extension at the end of normal/trunk names.
pub const FORMATTED_EXT_LEN: usize = 7;
/// Remote filename length of a normal file (10 + 27 + 7).
pub const NORMAL_REMOTE_LEN: usize = LOGIC_PATH_LEN + ENCODED_NAME_LEN + FORMATTED_EXT_LEN;
/// Remote filename length of a trunk file (10 + 27 + 16 + 7).
pub const TRUNK_REMOTE_LEN: usize = NORMAL_REMOTE_LEN + TRUNK_INFO_LEN;

/// File type as upstream derives it from the name (docs/file-id.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A plain file at `data/HH/HH/<name>`; size and crc32 come from the name.
    Normal,
    /// A file packed into a trunk file at the given slot.
    Trunk(TrunkSlot),
    /// An appender file (size bit 58): size and mtime must come from disk.
    Appender,
    /// A slave file: the encoded fields are the master's, size unknown.
    Slave,
}

/// Why a group + remote filename is not a FastDFS file ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdError {
    /// Group name empty, longer than 16 bytes or not ASCII alphanumeric.
    BadGroup,
    /// Remote filename shorter than 44 bytes.
    RemoteTooShort,
    /// First character is not `M`: a pre-V1.12 name, which cannot be decoded.
    LegacyName,
    /// Not `M` + 2 hex digits + `/`.
    BadStorePath,
    /// Not `HH/HH/` with uppercase hex digits.
    BadSubdir,
    /// A `/` after `Mxx/HH/HH/`.
    ExtraSlash,
    /// A file-name byte outside `A-Z a-z 0-9 - _ .` (or `:`, see
    /// [`FileId::parse`]), including any non-ASCII byte.
    BadNameChar,
    /// The 27 encoded characters are not canonical base64.
    BadEncoding,
    /// The 16 trunk characters are not canonical base64 or hold a negative field.
    BadTrunkInfo,
    /// A metadata sidecar (`<name>-m`): refused instead of served.
    MetadataSidecar,
}

impl IdError {
    /// HTTP status for this error, the module's (docs/module-behaviour.md
    /// §2): 400 where its own checks refuse the name (too short, store path,
    /// subdirectories, an extra `/`); 404 where it would decode the name into
    /// garbage and then find nothing (group, legacy name, characters,
    /// encoding, trunk slot), and for metadata sidecars.
    pub fn status(&self) -> http::StatusCode {
        match self {
            IdError::RemoteTooShort
            | IdError::BadStorePath
            | IdError::BadSubdir
            | IdError::ExtraSlash => http::StatusCode::BAD_REQUEST,
            IdError::BadGroup
            | IdError::LegacyName
            | IdError::BadNameChar
            | IdError::BadEncoding
            | IdError::BadTrunkInfo
            | IdError::MetadataSidecar => http::StatusCode::NOT_FOUND,
        }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::BadGroup => "invalid group name",
            IdError::RemoteTooShort => "remote filename shorter than 44 chars",
            IdError::LegacyName => "remote filename does not start with M (legacy name)",
            IdError::BadStorePath => "invalid store path (expected Mxx/)",
            IdError::BadSubdir => "invalid subdirectories (expected HH/HH/, uppercase hex)",
            IdError::ExtraSlash => "extra '/' in file name",
            IdError::BadNameChar => "invalid character in file name",
            IdError::BadEncoding => "encoded name is not valid base64",
            IdError::BadTrunkInfo => "invalid trunk slot in file name",
            IdError::MetadataSidecar => "metadata file names are not served",
        })
    }
}

impl std::error::Error for IdError {}

/// A validated FastDFS file ID. Only [`FileId::parse`] builds one, so every
/// accessor is infallible and the remote filename is pure ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Group name followed by the remote filename, in one allocation.
    text: String,
    /// Length of the group name (1..=16) at the start of `text`.
    group_len: u8,
    store_index: u8,
    subdirs: (u8, u8),
    kind: FileKind,
    encoded: EncodedName,
}

impl FileId {
    /// Strictly parses a group (`group1`) and a remote filename
    /// (`M00/00/00/<name>`). No I/O.
    ///
    /// Checks, in order: group 1..16 ASCII alphanumeric; first char `M`
    /// (else legacy); length ≥ 44; `M` + 2 hex digits (either case) + `/`;
    /// `HH/HH/` uppercase hex; no further `/`; file-name bytes in upstream's
    /// upload charset `A-Z a-z 0-9 - _ .` plus `:` (upstream's digit generator
    /// `'0' + (int)(10.0 * rand() / RAND_MAX)` yields `:` when
    /// `rand() == RAND_MAX`); the 27 chars after `Mxx/HH/HH/` as canonical
    /// base64; classification (§2.5) and, for trunk files, the 16 slot
    /// chars; finally names ending in `-m` longer than 44 chars that are not
    /// trunk files are refused as metadata sidecars.
    pub fn parse(group: &str, remote: &str) -> Result<FileId, IdError> {
        let g = group.as_bytes();
        if g.is_empty() || g.len() > GROUP_NAME_MAX_LEN || !g.iter().all(u8::is_ascii_alphanumeric)
        {
            return Err(IdError::BadGroup);
        }

        let r = remote.as_bytes();
        match r.first() {
            None => return Err(IdError::RemoteTooShort),
            Some(b'M') => {}
            Some(_) => return Err(IdError::LegacyName),
        }
        if r.len() < NORMAL_REMOTE_LEN {
            return Err(IdError::RemoteTooShort);
        }
        let (prefix, name) = r.split_at(LOGIC_PATH_LEN);
        let &[_m, s1, s2, slash0, h1, h2, slash1, l1, l2, slash2] = prefix else {
            return Err(IdError::RemoteTooShort);
        };
        let store_index = match (hex_any(s1), hex_any(s2), slash0) {
            (Some(hi), Some(lo), b'/') => hi << 4 | lo,
            _ => return Err(IdError::BadStorePath),
        };
        let subdirs = match (hex_upper(h1), hex_upper(h2), hex_upper(l1), hex_upper(l2)) {
            (Some(a), Some(b), Some(c), Some(d)) if slash1 == b'/' && slash2 == b'/' => {
                (a << 4 | b, c << 4 | d)
            }
            _ => return Err(IdError::BadSubdir),
        };
        if name.contains(&b'/') {
            return Err(IdError::ExtraSlash);
        }
        if !name.iter().all(|&c| is_name_char(c)) {
            return Err(IdError::BadNameChar);
        }

        // Everything from here on is ASCII, so byte offsets are char boundaries.
        let enc_end = LOGIC_PATH_LEN + ENCODED_NAME_LEN;
        let enc27 = remote
            .get(LOGIC_PATH_LEN..enc_end)
            .ok_or(IdError::BadEncoding)?;
        let encoded = EncodedName::decode(enc27)?;

        let len = r.len();
        let kind = if encoded.is_appender() {
            FileKind::Appender
        } else if len > TRUNK_REMOTE_LEN || (len > NORMAL_REMOTE_LEN && !encoded.is_trunk()) {
            FileKind::Slave
        } else if len == TRUNK_REMOTE_LEN && encoded.is_trunk() {
            let enc16 = remote
                .get(enc_end..enc_end + TRUNK_INFO_LEN)
                .ok_or(IdError::BadTrunkInfo)?;
            FileKind::Trunk(TrunkSlot::decode(enc16)?)
        } else {
            FileKind::Normal
        };

        if len > NORMAL_REMOTE_LEN && name.ends_with(b"-m") && !matches!(kind, FileKind::Trunk(_)) {
            return Err(IdError::MetadataSidecar);
        }

        let mut text = String::with_capacity(group.len() + remote.len());
        text.push_str(group);
        text.push_str(remote);
        Ok(FileId {
            text,
            group_len: u8::try_from(g.len()).map_err(|_| IdError::BadGroup)?,
            store_index,
            subdirs,
            kind,
            encoded,
        })
    }

    /// The group name (`group1`).
    pub fn group(&self) -> &str {
        self.text
            .get(..usize::from(self.group_len))
            .unwrap_or_default()
    }

    /// The remote filename, `M00/00/00/<name>`; what anti-steal tokens sign.
    pub fn remote(&self) -> &str {
        self.text
            .get(usize::from(self.group_len)..)
            .unwrap_or_default()
    }

    /// Store path index from `Mxx` (0..=255); the caller range-checks it
    /// against the configured `store_path_count`.
    pub fn store_index(&self) -> u8 {
        self.store_index
    }

    /// The two subdirectory levels `HH/HH` as numbers.
    pub fn subdirs(&self) -> (u8, u8) {
        self.subdirs
    }

    /// The path relative to `<store_path>/data/`: `HH/HH/<name>`.
    pub fn true_filename(&self) -> &str {
        self.remote().get(4..).unwrap_or_default()
    }

    /// The file name alone, after `Mxx/HH/HH/`.
    pub fn file_name(&self) -> &str {
        self.remote().get(LOGIC_PATH_LEN..).unwrap_or_default()
    }

    /// File type derived from the name (§2.5).
    pub fn kind(&self) -> &FileKind {
        &self.kind
    }

    /// The decoded 20-byte fields (the master's for slave files).
    pub fn encoded(&self) -> &EncodedName {
        &self.encoded
    }

    /// File size stated by the name; known only for normal and trunk files
    /// (appender and slave sizes come from disk, §4.2).
    pub fn size(&self) -> Option<u64> {
        match self.kind {
            FileKind::Normal | FileKind::Trunk(_) => Some(self.encoded.stated_size()),
            FileKind::Appender | FileKind::Slave => None,
        }
    }

    /// The extension: text after the last `.` of the file name, if that `.`
    /// is within the name's last 7 chars and something follows it
    /// (`…03.conf` → `conf`, `….tar.gz` → `gz`, `…_big.txt` → `txt`).
    pub fn extension(&self) -> Option<&str> {
        let name = self.file_name();
        let dot = name.rfind('.')?;
        if dot + FORMATTED_EXT_LEN < name.len() {
            return None;
        }
        name.get(dot + 1..).filter(|ext| !ext.is_empty())
    }

    /// The last 7 chars of the file name: the formatted extension of a
    /// normal/trunk name, as stored in the trunk slot header (§6.1).
    pub fn formatted_ext(&self) -> &str {
        let name = self.file_name();
        name.get(name.len().saturating_sub(FORMATTED_EXT_LEN)..)
            .unwrap_or_default()
    }
}

impl fmt::Display for FileId {
    /// The full file ID, `group/remote`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.group(), self.remote())
    }
}

/// Value of a hex digit, either case (the module parses `Mxx` with `strtol`).
fn hex_any(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Value of an uppercase hex digit (subdirectories are `[0-9A-F]{2}`).
fn hex_upper(c: u8) -> Option<u8> {
    match c {
        b'a'..=b'f' => None,
        _ => hex_any(c),
    }
}

/// Bytes a file name may contain: upstream's `fdfs_validate_filename` set
/// plus `:` (see [`FileId::parse`]).
fn is_name_char(c: u8) -> bool {
    NAME_CHARS[usize::from(c)]
}

/// [`is_name_char`] as a table: the check runs over every byte of every name.
const NAME_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':');
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(a: u8, b: u8, c: u8, d: u8) -> Source {
        Source::Ip(Ipv4Addr::new(a, b, c, d))
    }

    /// Parses a full `group/remote` ID.
    fn parse_id(id: &str) -> Result<FileId, IdError> {
        let (group, remote) = id.split_once('/').unwrap_or(("", id));
        FileId::parse(group, remote)
    }

    fn ok(id: &str) -> FileId {
        match parse_id(id) {
            Ok(f) => f,
            Err(e) => panic!("{id}: {e:?}"),
        }
    }

    /// Rebuilds a normal/trunk/appender ID from its parsed fields.
    fn rebuild(f: &FileId) -> String {
        IdBuilder::from_file_id(f).expect("not a slave").build()
    }

    struct Example {
        id: &'static str,
        source: Source,
        ts: i64,
        size: Option<u64>,
        crc32: Option<u32>,
        kind: FileKind,
        ext: Option<&'static str>,
        store_index: u8,
        subdirs: (u8, u8),
    }

    fn spec_examples() -> Vec<Example> {
        vec![
            Example {
                id: "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf",
                source: ip(172, 16, 2, 20),
                ts: 1551927392,
                size: Some(604),
                crc32: Some(1650552427),
                kind: FileKind::Normal,
                ext: Some("conf"),
                store_index: 0,
                subdirs: (0, 0),
            },
            Example {
                id: "group1/M00/00/00/rBACFVyIpkyAW-GPAACDlqtGkq042055.h",
                source: ip(172, 16, 2, 21),
                ts: 1552459340,
                size: Some(33686),
                crc32: Some(2873529005),
                kind: FileKind::Normal,
                ext: Some("h"),
                store_index: 0,
                subdirs: (0, 0),
            },
            Example {
                id: "group1/M00/00/00/wKgI9WDcOKGAcrgMAACh3ifiUA4312.jpg",
                source: ip(192, 168, 8, 245),
                ts: 1625045153,
                size: Some(41438),
                crc32: Some(669143054),
                kind: FileKind::Normal,
                ext: Some("jpg"),
                store_index: 0,
                subdirs: (0, 0),
            },
            Example {
                id: "group1/M00/03/AF/oYYBAF9lZoWAC27DAAQGrgWEEPw449.jpg",
                source: Source::StorageId(100001),
                ts: 1600480901,
                size: Some(263854),
                crc32: Some(92541180),
                kind: FileKind::Normal,
                ext: Some("jpg"),
                store_index: 0,
                subdirs: (0x03, 0xAF),
            },
            Example {
                id: "group1/M00/3A/7F/oYYBAGYx9oCAKls8ABAAABI0q80123.jpg",
                source: Source::StorageId(100001),
                ts: 1714550400,
                size: Some(1048576),
                crc32: Some(0x1234_ABCD),
                kind: FileKind::Normal,
                ext: Some("jpg"),
                store_index: 0,
                subdirs: (0x3A, 0x7F),
            },
            Example {
                id: "group2/M01/0A/1B/CgADD2PD8ciEEjRWAAAAAAAAAAA777.log",
                source: ip(10, 0, 3, 15),
                ts: 1673785800,
                size: None,
                crc32: None,
                kind: FileKind::Appender,
                ext: Some("log"),
                store_index: 1,
                subdirs: (0x0A, 0x1B),
            },
            Example {
                id: "group1/M00/00/02/wKgBCmKWrACIDw8PAAAwOd6tvu8AAAAAQAgAAAAADIA456.png",
                source: ip(192, 168, 1, 10),
                ts: 1654041600,
                size: Some(12345),
                crc32: Some(0xDEAD_BEEF),
                kind: FileKind::Trunk(TrunkSlot {
                    trunk_id: 1,
                    offset: 2_097_152,
                    alloc_size: 12_800,
                }),
                ext: Some("png"),
                store_index: 0,
                subdirs: (0, 2),
            },
            Example {
                id: "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03_150x150.jpg",
                source: ip(172, 16, 2, 20),
                ts: 1551927392,
                size: None,
                crc32: None,
                kind: FileKind::Slave,
                ext: Some("jpg"),
                store_index: 0,
                subdirs: (0, 0),
            },
            Example {
                id: "group3/M02/FF/00/wKgKBWHPmX8AAAABQAAAAMr-ur4999.mp4",
                source: ip(192, 168, 10, 5),
                ts: 1640995199,
                size: Some(5_368_709_120),
                crc32: Some(0xCAFE_BABE),
                kind: FileKind::Normal,
                ext: Some("mp4"),
                store_index: 2,
                subdirs: (0xFF, 0),
            },
            Example {
                id: "group1/M00/01/A0/rBQAyF5aUkCAf___AAAAAAAAAAA0123456",
                source: ip(172, 20, 0, 200),
                ts: 1582977600,
                size: Some(0),
                crc32: Some(0),
                kind: FileKind::Normal,
                ext: None,
                store_index: 0,
                subdirs: (0x01, 0xA0),
            },
            Example {
                id: "group1/M00/00/00/CgECAGd0hYCAAAABAAAAZBERERE042.txt",
                source: Source::StorageId(131338),
                ts: 1735689600,
                size: Some(100),
                crc32: Some(0x1111_1111),
                kind: FileKind::Normal,
                ext: Some("txt"),
                store_index: 0,
                subdirs: (0, 0),
            },
        ]
    }

    #[test]
    fn spec_section_9_examples() {
        for ex in spec_examples() {
            let f = ok(ex.id);
            assert_eq!(f.encoded().source, ex.source, "{}", ex.id);
            assert_eq!(f.encoded().create_ts, ex.ts, "{}", ex.id);
            assert_eq!(f.size(), ex.size, "{}", ex.id);
            if let Some(crc) = ex.crc32 {
                assert_eq!(f.encoded().crc32, crc, "{}", ex.id);
            }
            assert_eq!(*f.kind(), ex.kind, "{}", ex.id);
            assert_eq!(f.extension(), ex.ext, "{}", ex.id);
            assert_eq!(f.store_index(), ex.store_index, "{}", ex.id);
            assert_eq!(f.subdirs(), ex.subdirs, "{}", ex.id);
            assert_eq!(f.to_string(), ex.id);
            assert_eq!(format!("{}/{}", f.group(), f.remote()), ex.id);
            assert_eq!(f.remote().get(4..), Some(f.true_filename()));
            assert_eq!(f.true_filename().get(6..), Some(f.file_name()));
            if ex.kind != FileKind::Slave {
                assert_eq!(rebuild(&f), ex.id, "round trip");
            }
        }
    }

    #[test]
    fn spec_examples_details() {
        let f = ok("group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf");
        assert_eq!(f.encoded().size_word, 0x8050_f33d_0000_025c);
        assert_eq!(
            f.true_filename(),
            "00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf"
        );
        assert_eq!(f.file_name(), "rBACFFyAiGCAUPM9AAACXGJhbms03.conf");
        assert_eq!(f.formatted_ext(), "03.conf");
        assert_eq!(f.encoded().source.to_string(), "172.16.2.20");

        let f = ok("group1/M00/3A/7F/oYYBAGYx9oCAKls8ABAAABI0q80123.jpg");
        assert_eq!(f.encoded().rand23(), 0x2A5B3C);
        assert_eq!(f.encoded().source.to_string(), "100001");

        let f = ok("group2/M01/0A/1B/CgADD2PD8ciEEjRWAAAAAAAAAAA777.log");
        assert_eq!(f.encoded().size_word, 0x8412_3456_0000_0000);

        let f = ok("group1/M00/00/02/wKgBCmKWrACIDw8PAAAwOd6tvu8AAAAAQAgAAAAADIA456.png");
        assert_eq!(f.encoded().size_word, 0x880f_0f0f_0000_3039);
        assert_eq!(f.formatted_ext(), "456.png");
        assert_eq!(f.remote().len(), TRUNK_REMOTE_LEN);

        let f = ok("group3/M02/FF/00/wKgKBWHPmX8AAAABQAAAAMr-ur4999.mp4");
        assert_eq!(f.encoded().size_word, 0x0000_0001_4000_0000);

        let f = ok("group1/M00/01/A0/rBQAyF5aUkCAf___AAAAAAAAAAA0123456");
        assert_eq!(f.encoded().rand23(), 0x7F_FFFF);
        assert_eq!(f.formatted_ext(), "0123456");

        let f = ok("group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03_150x150.jpg");
        assert_eq!(f.remote().len(), 51);
        assert_eq!(
            slave_name(
                "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf",
                "_150x150",
                Some("jpg")
            ),
            f.to_string()
        );

        // Example 11: 10.1.2.0 is read back as storage ID 131338.
        let f = ok("group1/M00/00/00/CgECAGd0hYCAAAABAAAAZBERERE042.txt");
        assert_eq!(f.encoded().source.to_bytes(), [10, 1, 2, 0]);
    }

    #[test]
    fn classification_table() {
        let slot = TrunkSlot {
            trunk_id: 7,
            offset: 256,
            alloc_size: 512,
        };
        let base = IdBuilder::new().size(10).extension("txt").ext_digits(123);
        let normal = base.clone().build();
        let trunk = base.clone().kind(BuildKind::Trunk(slot)).build();
        let appender = base.clone().kind(BuildKind::Appender).build();
        assert_eq!(*ok(&normal).kind(), FileKind::Normal);
        assert_eq!(*ok(&trunk).kind(), FileKind::Trunk(slot));
        assert_eq!(ok(&trunk).size(), Some(10));
        assert_eq!(*ok(&appender).kind(), FileKind::Appender);
        assert_eq!(ok(&appender).size(), None);

        // Appender bit wins over any length.
        let appender_slave = slave_name(&appender, "_s", None);
        assert_eq!(*ok(&appender_slave).kind(), FileKind::Appender);
        // L > 44 without trunk bit: slave.
        assert_eq!(*ok(&format!("{normal}x")).kind(), FileKind::Slave);
        // L > 60: slave even with the trunk bit.
        assert_eq!(*ok(&format!("{trunk}x")).kind(), FileKind::Slave);
        // 44 < L < 60 with the trunk bit: upstream calls it normal.
        let trunk_bit_normal_44 = base.clone().kind(BuildKind::Trunk(slot)).build_remote();
        let short = format!(
            "group1/{}",
            trunk_bit_normal_44
                .get(..NORMAL_REMOTE_LEN + 5)
                .unwrap_or_default()
        );
        assert_eq!(*ok(&short).kind(), FileKind::Normal);
        assert_eq!(ok(&short).size(), Some(10));
        // L = 44 with the trunk bit: normal.
        let mut enc = ok(&trunk).encoded().encode();
        enc.push_str("123.txt");
        assert_eq!(
            *ok(&format!("group1/M00/00/00/{enc}")).kind(),
            FileKind::Normal
        );
        // L = 60 without the trunk bit: slave.
        let sixty = format!("{normal}AAAAAAAAAAAAAAAA");
        assert_eq!(*ok(&sixty).kind(), FileKind::Slave);
    }

    #[test]
    fn size_rules_per_kind() {
        let big = IdBuilder::new().size(5_368_709_120).build();
        assert_eq!(ok(&big).size(), Some(5_368_709_120));
        let max32 = IdBuilder::new().size(0xFFFF_FFFF).build();
        assert_eq!(ok(&max32).size(), Some(0xFFFF_FFFF));
        let slave = slave_name(&max32, "_x", Some("png"));
        assert_eq!(ok(&slave).size(), None);
    }

    #[test]
    fn store_path_hex_either_case() {
        let remote = "rBACFFyAiGCAUPM9AAACXGJhbms03.conf";
        for (dir, want) in [
            ("M00", 0),
            ("M01", 1),
            ("M0a", 10),
            ("M0A", 10),
            ("MfF", 255),
            ("MFF", 255),
        ] {
            let f = FileId::parse("group1", &format!("{dir}/00/00/{remote}"));
            assert_eq!(f.map(|f| f.store_index()), Ok(want), "{dir}");
        }
        for dir in ["M0G", "Mx0", "M-1", "M 1", "M+1", "M0/", "MM0"] {
            let f = FileId::parse("group1", &format!("{dir}/00/00/{remote}"));
            assert_eq!(f.map(|_| ()), Err(IdError::BadStorePath), "{dir}");
        }
        let f = FileId::parse("group1", &format!("M000/00/00{remote}"));
        assert_eq!(f.map(|_| ()), Err(IdError::BadStorePath));
    }

    #[test]
    fn subdirs_uppercase_hex_only() {
        let name = "rBACFFyAiGCAUPM9AAACXGJhbms03.conf";
        for (sub, want) in [
            ("00/00", (0, 0)),
            ("FF/FF", (255, 255)),
            ("0A/B9", (10, 0xB9)),
        ] {
            let f = FileId::parse("group1", &format!("M00/{sub}/{name}"));
            assert_eq!(f.map(|f| f.subdirs()), Ok(want), "{sub}");
        }
        for sub in [
            "ZZ/00", "0a/00", "00/0a", "ff/FF", "0G/00", "00-00", "000/0", " 0/00",
        ] {
            let f = FileId::parse("group1", &format!("M00/{sub}/{name}"));
            assert_eq!(f.map(|_| ()), Err(IdError::BadSubdir), "{sub}");
        }
        let f = FileId::parse("group1", &format!("M00/00/00x{name}"));
        assert_eq!(f.map(|_| ()), Err(IdError::BadSubdir));
    }

    #[test]
    fn malformed_classes() {
        let good = "rBACFFyAiGCAUPM9AAACXGJhbms03.conf";
        let cases: Vec<(String, String, IdError)> = vec![
            ("".into(), format!("M00/00/00/{good}"), IdError::BadGroup),
            (
                "group_1".into(),
                format!("M00/00/00/{good}"),
                IdError::BadGroup,
            ),
            (
                "group 1".into(),
                format!("M00/00/00/{good}"),
                IdError::BadGroup,
            ),
            (
                "a".repeat(17),
                format!("M00/00/00/{good}"),
                IdError::BadGroup,
            ),
            (
                "gröup".into(),
                format!("M00/00/00/{good}"),
                IdError::BadGroup,
            ),
            ("group1".into(), String::new(), IdError::RemoteTooShort),
            ("group1".into(), "M00".into(), IdError::RemoteTooShort),
            (
                "group1".into(),
                "M00/00/00/fwAAAmsGtb".into(),
                IdError::RemoteTooShort,
            ),
            (
                "group1".into(),
                "M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522".into(),
                IdError::RemoteTooShort,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{}", &good[1..]),
                IdError::RemoteTooShort,
            ),
            (
                "group1".into(),
                format!("00/00/{good}"),
                IdError::LegacyName,
            ),
            (
                "group1".into(),
                format!("m00/00/00/{good}"),
                IdError::LegacyName,
            ),
            (
                "group1".into(),
                format!("/M00/00/00/{good}"),
                IdError::LegacyName,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{good}/extra"),
                IdError::ExtraSlash,
            ),
            (
                "group1".into(),
                format!("M00/00/00//{good}"),
                IdError::ExtraSlash,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{}!!!.txt", &good[..27]),
                IdError::BadNameChar,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{good} "),
                IdError::BadNameChar,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{good}?a=1"),
                IdError::BadNameChar,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{good}%20"),
                IdError::BadNameChar,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{good}é"),
                IdError::BadNameChar,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{}t03.conf", &good[..26]),
                IdError::BadEncoding,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{}.03.conf", &good[..26]),
                IdError::BadEncoding,
            ),
            (
                "group1".into(),
                "M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_.522.txt".into(),
                IdError::BadEncoding,
            ),
            (
                "group1".into(),
                format!("M00/00/00/{}-m", good),
                IdError::MetadataSidecar,
            ),
        ];
        for (group, remote, want) in cases {
            assert_eq!(
                FileId::parse(&group, &remote).map(|_| ()),
                Err(want),
                "{group:?} {remote:?}"
            );
        }
    }

    #[test]
    fn trunk_info_errors() {
        let slot = TrunkSlot {
            trunk_id: 1,
            offset: 0,
            alloc_size: 256,
        };
        let id = IdBuilder::new()
            .kind(BuildKind::Trunk(slot))
            .extension("css")
            .build();
        assert_eq!(*ok(&id).kind(), FileKind::Trunk(slot));
        let (head, tail) = id.split_at(id.len() - 7 - 16);
        let tail = tail.get(16..).unwrap_or_default();
        // Negative id, '.' (a name char, not base64), negative offset, negative size.
        for bad16 in [
            "gAAAAQAAAAAAAAEA",
            "AAAAAQAAAAAAAAE.",
            "AAAAAYAAAAAAAAEA",
            "AAAAAQAAAAD_AAEA",
        ] {
            let bad = format!("{head}{bad16}{tail}");
            assert_eq!(bad.len(), id.len());
            assert_eq!(
                parse_id(&bad).map(|_| ()),
                Err(IdError::BadTrunkInfo),
                "{bad16}"
            );
        }
    }

    #[test]
    fn metadata_sidecars() {
        let master = "group1/M00/00/00/fwAAAmsGtf2ARhwwAAAAG6BySuY736.txt";
        assert_eq!(
            parse_id(&format!("{master}-m")).map(|_| ()),
            Err(IdError::MetadataSidecar)
        );
        let slave = "group1/M00/00/00/fwAAAmsGtf2ARhwwAAAAG6BySuY736_big.txt";
        assert_eq!(
            parse_id(&format!("{slave}-m")).map(|_| ()),
            Err(IdError::MetadataSidecar)
        );
        let appender = IdBuilder::new()
            .kind(BuildKind::Appender)
            .extension("log")
            .build();
        assert_eq!(
            parse_id(&format!("{appender}-m")).map(|_| ()),
            Err(IdError::MetadataSidecar)
        );
        assert_eq!(
            IdError::MetadataSidecar.status(),
            http::StatusCode::NOT_FOUND
        );
        // A 44-char name whose extension ends in "-m" is a real file.
        let dash_m = IdBuilder::new().extension("ab-m").build();
        assert!(dash_m.ends_with("-m"));
        assert_eq!(*ok(&dash_m).kind(), FileKind::Normal);
        assert_eq!(ok(&dash_m).extension(), Some("ab-m"));
        // So is a trunk name (its slot header is checked against the name).
        let slot = TrunkSlot {
            trunk_id: 1,
            offset: 0,
            alloc_size: 256,
        };
        let trunk = IdBuilder::new()
            .kind(BuildKind::Trunk(slot))
            .extension("x-m")
            .build();
        assert_eq!(*ok(&trunk).kind(), FileKind::Trunk(slot));
        // "-m" inside a name is fine.
        let inner = slave_name(&dash_m, "-m_", Some("txt"));
        assert!(parse_id(&inner).is_ok(), "{inner}");
    }

    #[test]
    fn extension_rules() {
        let name = |n: &str| ok(&format!("group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms{n}"));
        assert_eq!(name("03.conf").extension(), Some("conf"));
        assert_eq!(name("42055.h").extension(), Some("h"));
        assert_eq!(name(".tar.gz").extension(), Some("gz"));
        assert_eq!(name(".tar.gz").formatted_ext(), ".tar.gz");
        assert_eq!(name("0123456").extension(), None);
        assert_eq!(name("03_big.txt").extension(), Some("txt"));
        assert_eq!(name("03.conf.").extension(), None);
        assert_eq!(name("03.confxyz").extension(), None);
        assert_eq!(name("03.conxyz").extension(), Some("conxyz"));
        assert_eq!(name("03.conf_150x150").extension(), None);
        assert_eq!(name("03_150x150.jpg").formatted_ext(), "150.jpg");
        let f = ok("group1/M00/00/00/fwAAAmsGtbmANiJ3AAAM5PBPH_c522.txtxyz");
        assert_eq!(f.extension(), Some("txtxyz"));
        assert_eq!(*f.kind(), FileKind::Slave);
    }

    #[test]
    fn colon_from_rand_max_is_accepted() {
        let f = ok("group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms0:.conf");
        assert_eq!(f.extension(), Some("conf"));
    }

    #[test]
    fn status_mapping() {
        for e in [
            IdError::RemoteTooShort,
            IdError::BadStorePath,
            IdError::BadSubdir,
            IdError::ExtraSlash,
        ] {
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST, "{e}");
        }
        for e in [
            IdError::BadGroup,
            IdError::LegacyName,
            IdError::BadNameChar,
            IdError::BadEncoding,
            IdError::BadTrunkInfo,
            IdError::MetadataSidecar,
        ] {
            assert_eq!(e.status(), http::StatusCode::NOT_FOUND, "{e}");
        }
    }

    #[test]
    fn multibyte_utf8_at_every_offset() {
        let ids = [
            "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03.conf",
            "group1/M00/00/02/wKgBCmKWrACIDw8PAAAwOd6tvu8AAAAAQAgAAAAADIA456.png",
            "group1/M00/00/00/rBACFFyAiGCAUPM9AAACXGJhbms03_150x150.jpg",
        ];
        for id in ids {
            let (group, remote) = id.split_once('/').unwrap_or_default();
            for mb in ["é", "中", "😀", "\u{80}"] {
                for i in 0..=remote.len() {
                    let (a, b) = remote.split_at(i);
                    // Inserted.
                    let r = FileId::parse(group, &format!("{a}{mb}{b}"));
                    assert!(r.is_err(), "insert {mb} at {i}");
                    // Replacing as many bytes as the char has (same byte length).
                    if let Some(rest) = b.get(mb.len()..) {
                        let s = format!("{a}{mb}{rest}");
                        assert_eq!(s.len(), remote.len());
                        assert!(FileId::parse(group, &s).is_err(), "replace at {i}: {s}");
                    }
                }
                for i in 0..=group.len() {
                    let (a, b) = group.split_at(i);
                    let g = format!("{a}{mb}{b}");
                    assert_eq!(
                        FileId::parse(&g, remote).map(|_| ()),
                        Err(IdError::BadGroup)
                    );
                }
            }
        }
    }

    #[test]
    fn every_truncation_and_byte_substitution_is_handled() {
        let id = "group1/M00/00/02/wKgBCmKWrACIDw8PAAAwOd6tvu8AAAAAQAgAAAAADIA456.png";
        let (group, remote) = id.split_once('/').unwrap_or_default();
        for end in 0..remote.len() {
            let r = remote.get(..end).unwrap_or_default();
            let res = FileId::parse(group, r);
            if end < NORMAL_REMOTE_LEN {
                assert!(res.is_err(), "{r}");
            }
        }
        let mut bytes = remote.as_bytes().to_vec();
        for i in 0..bytes.len() {
            let orig = bytes.get(i).copied().unwrap_or(0);
            for c in 0u8..0x80 {
                if let Some(b) = bytes.get_mut(i) {
                    *b = c;
                }
                if let Ok(s) = std::str::from_utf8(&bytes) {
                    if let Ok(f) = FileId::parse(group, s) {
                        // Accessors never panic and stay consistent.
                        assert_eq!(f.remote(), s);
                        let _ = (
                            f.extension(),
                            f.formatted_ext(),
                            f.size(),
                            f.true_filename(),
                        );
                    }
                }
            }
            if let Some(b) = bytes.get_mut(i) {
                *b = orig;
            }
        }
    }

    #[test]
    fn builder_round_trips() {
        let sources = [
            ip(127, 0, 0, 2),
            ip(0, 0, 0, 0),
            ip(255, 255, 255, 255),
            Source::StorageId(1),
            Source::StorageId(100001),
            Source::StorageId(MAX_STORAGE_ID),
        ];
        let slot = TrunkSlot {
            trunk_id: 123_456_789,
            offset: 0x7FFF_FFFF,
            alloc_size: 24,
        };
        let kinds = [
            BuildKind::Normal,
            BuildKind::Trunk(slot),
            BuildKind::Appender,
        ];
        let sizes = [0u64, 1, 0xFFFF_FFFF, 0x1_0000_0000, 5_368_709_120];
        let exts = ["", "a", "txt", "tar.gz", "abcdef", "toolong"];
        let mut n = 0;
        for source in sources {
            for kind in kinds {
                for size in sizes {
                    for ext in exts {
                        let b = IdBuilder::new()
                            .group("G9")
                            .store_index(0xAB)
                            .subdirs(0xC, 0xFE)
                            .source(source)
                            .create_ts(-5)
                            .size(size)
                            .crc32(0xFFFF_FFFF)
                            .kind(kind)
                            .rand23(n)
                            .extension(ext)
                            .ext_digits(n);
                        let id = b.build();
                        let f = ok(&id);
                        assert_eq!(f.encoded(), &b.encoded(), "{id}");
                        assert_eq!(f.store_index(), 0xAB);
                        assert_eq!(f.subdirs(), (0xC, 0xFE));
                        assert_eq!(f.encoded().source, source);
                        let want_size = match kind {
                            BuildKind::Normal => Some(size),
                            BuildKind::Trunk(_) => Some(size & 0xFFFF_FFFF),
                            BuildKind::Appender => None,
                        };
                        assert_eq!(f.size(), want_size, "{id}");
                        match kind {
                            BuildKind::Trunk(s) => assert_eq!(*f.kind(), FileKind::Trunk(s)),
                            BuildKind::Normal => assert_eq!(*f.kind(), FileKind::Normal),
                            BuildKind::Appender => assert_eq!(*f.kind(), FileKind::Appender),
                        }
                        assert_eq!(f.formatted_ext(), b.formatted_ext());
                        assert_eq!(rebuild(&f), id);
                        let slave = slave_name(&id, "_t", None);
                        let s = ok(&slave);
                        assert_eq!(s.encoded(), f.encoded());
                        n = n.wrapping_mul(31).wrapping_add(7);
                    }
                }
            }
        }
    }
}
