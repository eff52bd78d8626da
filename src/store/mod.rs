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
pub use local::{lookup, LocalFile, Lookup, Miss, StoreError};
