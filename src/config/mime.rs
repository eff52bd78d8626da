//! MIME type table in FastDFS `mime.types` syntax (docs/config-keys.md §3).
//!
//! Differences from FastDFS: `\r` is stripped, lines whose first non-blank
//! character is `#` are comments, and [`MimeTable::lookup`] falls back to the
//! lowercased extension (FastDFS is case-sensitive; §3 recommends this).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::mime_builtin::BUILTIN_MIME_TYPES;

/// Extension → MIME type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MimeTable {
    map: HashMap<String, String>,
}

impl MimeTable {
    /// The built-in table (equal to nginx's `types {}`; `conf/mime.types`).
    pub fn builtin() -> Self {
        static BUILTIN: OnceLock<MimeTable> = OnceLock::new();
        BUILTIN
            .get_or_init(|| MimeTable::parse(BUILTIN_MIME_TYPES))
            .clone()
    }

    /// Parses FastDFS mime.types text: `type ext ext ...` per line; a later
    /// line wins for a repeated extension. Never fails; junk lines without
    /// extensions are ignored.
    pub fn parse(text: &str) -> Self {
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut tokens = line.split_ascii_whitespace();
            let Some(mime) = tokens.next() else { continue };
            for ext in tokens {
                map.insert(ext.to_owned(), mime.to_owned());
            }
        }
        Self { map }
    }

    /// Adds `other`'s entries, replacing this table's entries for the same extensions.
    pub fn extend(&mut self, other: MimeTable) {
        self.map.extend(other.map);
    }

    /// Type for an extension (without the dot): exact match, then the
    /// ASCII-lowercased extension.
    pub fn lookup(&self, ext: &str) -> Option<&str> {
        if let Some(t) = self.map.get(ext) {
            return Some(t);
        }
        if ext.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.map.get(&ext.to_ascii_lowercase()).map(String::as_str);
        }
        None
    }

    /// Number of extensions known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no extension is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All `(extension, type)` pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(e, t)| (e.as_str(), t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rules() {
        let t = MimeTable::parse(
            "# comment\n\napplication/x-empty\nimage/jpeg\tjpeg jpg jpe\r\n  # indented\ntext/a dup\ntext/b dup\n",
        );
        assert_eq!(t.lookup("jpg"), Some("image/jpeg"));
        assert_eq!(t.lookup("jpe"), Some("image/jpeg"), "CR stripped");
        assert_eq!(t.lookup("dup"), Some("text/b"), "later line wins");
        assert_eq!(t.lookup("x-empty"), None);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn lookup_exact_then_lowercase() {
        let t = MimeTable::parse("a/lower jpg\nb/upper JPG\n");
        assert_eq!(t.lookup("JPG"), Some("b/upper"));
        assert_eq!(t.lookup("jpg"), Some("a/lower"));
        assert_eq!(t.lookup("Jpg"), Some("a/lower"));
        let t = MimeTable::parse("a/lower jpg\n");
        assert_eq!(t.lookup("JPG"), Some("a/lower"));
        assert_eq!(t.lookup(""), None);
        assert_eq!(t.lookup("png"), None);
    }

    #[test]
    fn extend_overrides() {
        let mut base = MimeTable::parse("a/1 x y\n");
        base.extend(MimeTable::parse("b/2 y z\n"));
        assert_eq!(base.lookup("x"), Some("a/1"));
        assert_eq!(base.lookup("y"), Some("b/2"));
        assert_eq!(base.lookup("z"), Some("b/2"));
        assert_eq!(base.iter().count(), 3);
        assert!(!base.is_empty());
        assert!(MimeTable::default().is_empty());
    }

    #[test]
    fn builtin_matches_nginx() {
        let b = MimeTable::builtin();
        for (ext, ty) in [
            ("html", "text/html"),
            ("flv", "video/x-flv"),
            (
                "docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            ("jpg", "image/jpeg"),
            ("png", "image/png"),
            ("txt", "text/plain"),
            ("mp4", "video/mp4"),
            ("bin", "application/octet-stream"),
            ("js", "application/javascript"),
        ] {
            assert_eq!(b.lookup(ext), Some(ty), "{ext}");
        }
        assert_eq!(b.lookup("log"), None);
        assert_eq!(b.lookup("gz"), None);
        assert!(b.len() > 100);
    }
}
