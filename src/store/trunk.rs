//! Trunk slots: small files packed into `data/HH/HH/<trunk id, 6 digits>`
//! (docs/file-id.md §6). The 24-byte slot header is rebuilt from the ID
//! and compared byte for byte, as upstream `trunk_file_do_lstat_func_ex`
//! does; any difference means the slot was freed or reused.

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::cache::OpenFileCache;
use super::local::{classify, lookup_plain, open_inside, LocalFile, Lookup, Miss, StoreError};
use crate::fileid::{FileId, FileKind, TrunkSlot};

/// Size of a slot header.
pub const HEADER_LEN: usize = 24;
const TYPE_REGULAR: u8 = b'F';
const TYPE_LINK: u8 = b'L';

/// The header the ID implies, with `file_type` as read from disk.
pub fn expected_header(id: &FileId, slot: &TrunkSlot, file_type: u8) -> [u8; HEADER_LEN] {
    let enc = id.encoded();
    let mut h = [0u8; HEADER_LEN];
    h[0] = file_type;
    h[1..5].copy_from_slice(&slot.alloc_size.to_be_bytes());
    h[5..9].copy_from_slice(&((enc.size_word & 0xFFFF_FFFF) as u32).to_be_bytes());
    h[9..13].copy_from_slice(&enc.crc32.to_be_bytes());
    h[13..17].copy_from_slice(&(enc.create_ts as i32).to_be_bytes());
    let ext = id.formatted_ext().as_bytes();
    let n = ext.len().min(7);
    h[17..17 + n].copy_from_slice(&ext[..n]);
    h
}

pub(super) fn lookup(
    id: &FileId,
    slot: &TrunkSlot,
    data: &Path,
    cache: &OpenFileCache,
) -> Result<Lookup, StoreError> {
    lookup_depth(id, slot, data, cache, true)
}

fn lookup_depth(
    id: &FileId,
    slot: &TrunkSlot,
    data: &Path,
    cache: &OpenFileCache,
    follow: bool,
) -> Result<Lookup, StoreError> {
    let (hi, lo) = id.subdirs();
    let path = data.join(format!("{hi:02X}/{lo:02X}/{:06}", slot.trunk_id));
    // A trunk file changes as slots are allocated and freed: its length is
    // taken from a fresh `fstat`, and the slot header re-read, every time.
    let c = match open_inside(&path, data, cache, false) {
        Ok(Ok(c)) => c,
        Ok(Err(miss)) => return Ok(Lookup::Missing(miss)),
        Err(e) => return classify(e),
    };
    let mut header = [0u8; HEADER_LEN];
    let off = u64::from(slot.offset);
    if off + HEADER_LEN as u64 > c.len {
        return Ok(Lookup::Missing(Miss::TrunkShort));
    }
    if let Err(e) = c.file.read_exact_at(&mut header, off) {
        return if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Ok(Lookup::Missing(Miss::TrunkShort))
        } else {
            Err(StoreError::Io(e))
        };
    }
    let file_type = header[0];
    if file_type != TYPE_REGULAR && file_type != TYPE_LINK {
        return Ok(Lookup::Missing(Miss::TrunkSlotFree));
    }
    if header != expected_header(id, slot, file_type) {
        return Ok(Lookup::Missing(Miss::TrunkHeaderMismatch));
    }
    let size = u64::from(u32::from_be_bytes([
        header[5], header[6], header[7], header[8],
    ]));
    let mtime = i64::from(i32::from_be_bytes([
        header[13], header[14], header[15], header[16],
    ]));
    let start = off + HEADER_LEN as u64;
    if start + size > c.len || size + HEADER_LEN as u64 > u64::from(slot.alloc_size) {
        return Ok(Lookup::Missing(Miss::TrunkShort));
    }
    if file_type == TYPE_LINK {
        if !follow {
            return Ok(Lookup::Missing(Miss::TrunkHeaderMismatch));
        }
        return follow_link(id, &c.file, start, size, data, cache);
    }
    Ok(Lookup::Found(LocalFile {
        file: c.file,
        offset: start,
        len: size,
        mtime,
        path,
    }))
}

/// Type `L`: the slot holds the remote filename of the real file; follow
/// one level, never into another trunk link.
fn follow_link(
    id: &FileId,
    file: &std::fs::File,
    start: u64,
    size: u64,
    data: &Path,
    cache: &OpenFileCache,
) -> Result<Lookup, StoreError> {
    if size > 256 {
        return Ok(Lookup::Missing(Miss::TrunkHeaderMismatch));
    }
    let mut buf = vec![0u8; size as usize];
    file.read_exact_at(&mut buf, start)
        .map_err(StoreError::Io)?;
    let Ok(remote) = std::str::from_utf8(&buf) else {
        return Ok(Lookup::Missing(Miss::TrunkHeaderMismatch));
    };
    let Ok(target) = FileId::parse(id.group(), remote.trim_end_matches('\0')) else {
        return Ok(Lookup::Missing(Miss::TrunkHeaderMismatch));
    };
    if target.store_index() != id.store_index() {
        return Ok(Lookup::Missing(Miss::TrunkHeaderMismatch));
    }
    match target.kind() {
        FileKind::Trunk(slot) => lookup_depth(&target, slot, data, cache, false),
        _ => lookup_plain(&target, data, cache),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pubC_3k` of the trunk fixture (README "Slot header").
    #[test]
    fn header_rebuilt_from_the_id_matches_the_recorded_bytes() {
        let id = FileId::parse(
            "group1",
            "M00/00/00/oYYBAGsGvGKINmr9AAAMAOnzw3UAAAAAQAAAwAAAA0A807.txt",
        )
        .unwrap();
        let FileKind::Trunk(slot) = id.kind() else {
            panic!("not a trunk id");
        };
        assert_eq!(
            (slot.trunk_id, slot.offset, slot.alloc_size),
            (1, 768, 3328)
        );
        let mut want = vec![b'F'];
        for w in [0x0000_0d00u32, 0x0000_0c00, 0xe9f3_c375, 0x6b06_bc62] {
            want.extend_from_slice(&w.to_be_bytes());
        }
        want.extend_from_slice(b"807.txt");
        assert_eq!(expected_header(&id, slot, b'F').to_vec(), want);
        // The type byte is taken from disk; everything else from the ID.
        want[0] = b'L';
        assert_eq!(expected_header(&id, slot, b'L').to_vec(), want);
    }

    /// `pubC_zero`: size 0, crc 0, slot 0.
    #[test]
    fn header_of_the_empty_file() {
        let id = FileId::parse(
            "group1",
            "M00/00/00/oYYBAGsGvGGIb70rAAAAAAAAAAAAAAAAQAAAAAAAAEA053.css",
        )
        .unwrap();
        let FileKind::Trunk(slot) = id.kind() else {
            panic!("not a trunk id");
        };
        let h = expected_header(&id, slot, b'F');
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "460000010000000000000000006b06bc613035332e637373");
    }
}
