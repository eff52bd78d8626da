//! fileid (work in progress).
