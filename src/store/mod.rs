//! Finding a file on local disk: a plain file under
//! `<store_path>/data/HH/HH/`, or a slot inside a trunk file
//! (docs/file-id.md §5, §6; docs/module-behaviour.md §6.1).
//!
//! Lookups never serve something that is not the file the ID names: a local
//! copy whose size differs from the size in the ID (a partial sync), a
//! non-regular file, a symlink leading out of the store, or a trunk slot whose
//! header does not match the ID count as "not local".

mod cache;
mod local;
mod trunk;

pub use cache::OpenFileCache;
pub use local::{LocalFile, Lookup, Miss, StoreError};

use std::path::Path;

use crate::fileid::{FileId, FileKind};

/// Looks `id` up under `store_path` (the `store_pathN` its `Mxx` names).
pub fn lookup(id: &FileId, store_path: &Path, cache: &OpenFileCache) -> Result<Lookup, StoreError> {
    let data = local::under(store_path, "data", 64);
    match id.kind() {
        FileKind::Trunk(slot) => trunk::lookup(id, slot, &data, cache),
        _ => local::lookup_plain(id, &data, cache),
    }
}
