//! The built-in MIME table: nginx 1.26.3's `types {}` block in FastDFS
//! mime.types syntax (the table that chose `Content-Type` for every response
//! of nginx + fastdfs-nginx-module; tests/fixtures/real/README.md). The same
//! text ships as `conf/mime.types`.

/// Text of the built-in table (FastDFS mime.types syntax).
pub(crate) const BUILTIN_MIME_TYPES: &str = include_str!("../../conf/mime.types");
