//! Original file names and the extension FastDFS stores (docs/upload.md
//! §4): the last path component, control characters dropped, at most 255
//! bytes; the extension is what follows the last `.` when it is 1–6 ASCII
//! letters or digits (FastDFS's `FDFS_FILE_EXT_NAME_MAX_LEN`), else none.

use crate::config::MAX_EXT_LEN;

/// Longest original name kept.
pub const MAX_NAME_LEN: usize = 255;

/// The sanitised original name (may be empty).
pub fn sanitize(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::with_capacity(last.len().min(MAX_NAME_LEN));
    for c in last.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_NAME_LEN {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim();
    if trimmed == "." || trimmed == ".." {
        return String::new();
    }
    trimmed.to_owned()
}

/// A valid extension as written (without the dot), or `None`.
pub fn valid_ext(ext: &str) -> Option<&str> {
    let ext = ext.strip_prefix('.').unwrap_or(ext);
    (!ext.is_empty() && ext.len() <= MAX_EXT_LEN && ext.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(ext)
}

/// The extension of a sanitised name: after the last `.` of a name that
/// has something before it; `""` when none or not valid.
pub fn extension(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => valid_ext(ext).unwrap_or(""),
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("C:\\Users\\x\\photo.JPG"), "photo.JPG");
        assert_eq!(sanitize("a\0b\r\n.txt"), "ab.txt");
        assert_eq!(sanitize("dir/.."), "");
        assert_eq!(sanitize("Grüße 日本.txt"), "Grüße 日本.txt");
        let long = "é".repeat(200);
        let s = sanitize(&long);
        assert!(s.len() <= MAX_NAME_LEN && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("photo.JPG"), "JPG");
        assert_eq!(extension("a.tar.gz"), "gz");
        assert_eq!(extension("x.jpeg2000"), "");
        assert_eq!(extension(".bashrc"), "");
        assert_eq!(extension("noext"), "");
        assert_eq!(extension("a.日本"), "");
        assert_eq!(extension("a."), "");
        assert_eq!(valid_ext(".png"), Some("png"));
        assert_eq!(valid_ext("p/g"), None);
    }
}
