//! libfastcommon INI syntax (docs/config-keys.md §5): line classification
//! and document assembly with `#include`, sections and locations.
//!
//! Pure: included files are fetched through a caller-supplied function.
//! Differences from libfastcommon: a missing include is a warning (the
//! module treats it as fatal; docs/user-reports.md #27), `#@` pre-processor
//! directives are rejected, `http://` includes are rejected, lines without
//! `=` and inline ` #` comments produce warnings.

use std::io;
use std::path::{Path, PathBuf};

use super::Diags;

/// Longest key libfastcommon keeps (longer keys are truncated).
pub(crate) const MAX_KEY_LEN: usize = 63;
/// Longest value libfastcommon keeps (longer values are truncated).
pub(crate) const MAX_VALUE_LEN: usize = 255;
/// Nesting limit for `#include`.
const MAX_INCLUDE_DEPTH: usize = 8;
/// libfastcommon pre-processor keywords (after `#@`).
const PREPROCESSOR: [&str; 8] = [
    "set",
    "if",
    "else",
    "endif",
    "for",
    "endfor",
    "function",
    "add_annotation",
];

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    /// Index into [`Document::files`].
    pub file: usize,
    /// 1-based line number.
    pub line: u32,
}

/// A named section (repeated headers merge into the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    pub name: String,
    pub file: usize,
    pub line: u32,
    pub entries: Vec<Entry>,
}

/// A parsed configuration: global entries, sections and the files read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Document {
    /// Every file that contributed lines (index 0 = the main file).
    pub files: Vec<PathBuf>,
    /// Files actually read from disk (includes), excluding the main text.
    pub read: Vec<PathBuf>,
    pub global: Vec<Entry>,
    pub sections: Vec<Section>,
}

/// What one trimmed line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Empty or a `#` comment.
    Skip,
    /// `#include <path>` (path trimmed, may be empty).
    Include(&'a str),
    /// `#@keyword ...`.
    Preprocessor(&'a str),
    /// `[name]` (name trimmed; empty = back to global).
    Section(&'a str),
    /// `key = value` (both trimmed).
    KeyValue(&'a str, &'a str),
    /// A non-comment line without `=`.
    NoEquals(&'a str),
}

/// Trims the characters libfastcommon trims: space, tab, CR, LF.
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// Classifies one raw line.
pub(crate) fn classify(raw: &str) -> Line<'_> {
    let line = trim(raw);
    if line.is_empty() {
        return Line::Skip;
    }
    if let Some(rest) = line.strip_prefix('#') {
        let head = rest.get(..7);
        if head.is_some_and(|h| h.eq_ignore_ascii_case("include")) {
            let after = rest.get(7..).unwrap_or("");
            if after.starts_with([' ', '\t']) {
                return Line::Include(trim(after));
            }
        }
        if let Some(pp) = rest.strip_prefix('@') {
            let word_end = pp
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(pp.len());
            let word = pp.get(..word_end).unwrap_or("");
            if PREPROCESSOR.contains(&word) {
                return Line::Preprocessor(line);
            }
        }
        return Line::Skip;
    }
    if line.len() >= 2 && line.starts_with('[') && line.ends_with(']') {
        return Line::Section(trim(line.get(1..line.len() - 1).unwrap_or("")));
    }
    match line.split_once('=') {
        Some((k, v)) => Line::KeyValue(trim(k), trim(v)),
        None => Line::NoEquals(line),
    }
}

/// Truncates to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// Assembly state shared across included files.
struct Builder<'f> {
    doc: Document,
    /// Index into `doc.sections`, `None` = global.
    current: Option<usize>,
    base_dir: PathBuf,
    fetch: &'f mut dyn FnMut(&Path) -> io::Result<String>,
    /// Include chain for cycle detection.
    stack: Vec<PathBuf>,
}

/// Parses the main file `text` (attributed to `path`); `#include`s resolve
/// against `base_dir` and are read with `fetch`.
pub(crate) fn parse_document(
    text: &str,
    path: &Path,
    base_dir: &Path,
    fetch: &mut dyn FnMut(&Path) -> io::Result<String>,
    d: &mut Diags,
) -> Document {
    let mut b = Builder {
        doc: Document::default(),
        current: None,
        base_dir: base_dir.to_path_buf(),
        fetch,
        stack: vec![path.to_path_buf()],
    };
    b.doc.files.push(path.to_path_buf());
    b.file(text, 0, d);
    b.doc
}

impl Builder<'_> {
    fn file(&mut self, text: &str, file: usize, d: &mut Diags) {
        let path = self.doc.files.get(file).cloned().unwrap_or_default();
        for (i, raw) in text.split('\n').enumerate() {
            let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
            match classify(raw) {
                Line::Skip => {}
                Line::NoEquals(t) => d.warn(
                    &path,
                    Some(line),
                    format!("line \"{t}\" has no '=' and is ignored"),
                ),
                Line::Preprocessor(t) => d.err(
                    &path,
                    Some(line),
                    format!("pre-processor directive \"{t}\" is not supported; expand it by hand"),
                ),
                Line::Section(name) => self.section(name, file, line),
                Line::Include(target) => {
                    self.include(target, &path, line, d);
                    self.current = None;
                }
                Line::KeyValue(k, v) => self.key_value(k, v, file, line, &path, d),
            }
        }
    }

    fn section(&mut self, name: &str, file: usize, line: u32) {
        if name.is_empty() {
            self.current = None;
            return;
        }
        if let Some(i) = self.doc.sections.iter().position(|s| s.name == name) {
            self.current = Some(i);
            return;
        }
        self.doc.sections.push(Section {
            name: name.to_owned(),
            file,
            line,
            entries: Vec::new(),
        });
        self.current = Some(self.doc.sections.len() - 1);
    }

    fn key_value(&mut self, k: &str, v: &str, file: usize, line: u32, path: &Path, d: &mut Diags) {
        if k.is_empty() {
            d.warn(path, Some(line), "line with an empty key is ignored");
            return;
        }
        let key = truncate(k, MAX_KEY_LEN);
        if key.len() < k.len() {
            d.warn(
                path,
                Some(line),
                format!("key \"{k}\" is longer than {MAX_KEY_LEN} bytes; truncated to \"{key}\""),
            );
        }
        let value = truncate(v, MAX_VALUE_LEN);
        if value.len() < v.len() {
            d.warn(
                path,
                Some(line),
                format!("{key}: value is longer than {MAX_VALUE_LEN} bytes; truncated"),
            );
        }
        if value.contains(" #") || value.contains("\t#") {
            d.warn(
                path,
                Some(line),
                format!(
                    "{key}: value \"{value}\" contains '#': inline comments are not supported, \
                     the whole text is the value"
                ),
            );
        }
        let entry = Entry {
            key: key.to_owned(),
            value: value.to_owned(),
            file,
            line,
        };
        match self.current.and_then(|i| self.doc.sections.get_mut(i)) {
            Some(s) => s.entries.push(entry),
            None => self.doc.global.push(entry),
        }
    }

    fn include(&mut self, target: &str, from: &Path, line: u32, d: &mut Diags) {
        if target.is_empty() {
            d.err(from, Some(line), "#include without a file name");
            return;
        }
        let lower = target.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            d.err(
                from,
                Some(line),
                format!("#include {target}: URL includes are not supported; use a local file"),
            );
            return;
        }
        let path = self.base_dir.join(target);
        if self.stack.contains(&path) {
            d.err(
                from,
                Some(line),
                format!("#include {}: include cycle", path.display()),
            );
            return;
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            d.err(
                from,
                Some(line),
                format!("#include {}: nested too deeply", path.display()),
            );
            return;
        }
        let text = match (self.fetch)(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                d.warn(
                    from,
                    Some(line),
                    format!(
                        "#include {}: file not found; skipped (built-in defaults apply)",
                        path.display()
                    ),
                );
                return;
            }
            Err(e) => {
                d.err(
                    from,
                    Some(line),
                    format!("#include {}: {e}", path.display()),
                );
                return;
            }
        };
        self.doc.files.push(path.clone());
        self.doc.read.push(path.clone());
        let idx = self.doc.files.len() - 1;
        // Included keys land in the global section.
        self.current = None;
        self.stack.push(path);
        self.file(&text, idx, d);
        self.stack.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn classify_rows() {
        assert_eq!(classify(""), Line::Skip);
        assert_eq!(classify(" \t\r"), Line::Skip);
        assert_eq!(classify("# comment"), Line::Skip);
        assert_eq!(classify("   # indented = comment"), Line::Skip);
        assert_eq!(classify("#include http.conf"), Line::Include("http.conf"));
        assert_eq!(
            classify("#INCLUDE\thttp.conf \r"),
            Line::Include("http.conf")
        );
        assert_eq!(classify("  #include  a b "), Line::Include("a b"));
        assert_eq!(classify("#include"), Line::Skip);
        assert_eq!(classify("#includehttp.conf"), Line::Skip);
        assert_eq!(classify("#@set X = 1"), Line::Preprocessor("#@set X = 1"));
        assert_eq!(
            classify("#@if %{LOCAL_IP} in [10.0.0.1]"),
            Line::Preprocessor("#@if %{LOCAL_IP} in [10.0.0.1]")
        );
        assert_eq!(classify("#@endif"), Line::Preprocessor("#@endif"));
        assert_eq!(classify("#@@@@ banner"), Line::Skip);
        assert_eq!(classify("#@settings are below"), Line::Skip);
        assert_eq!(classify("[group1]"), Line::Section("group1"));
        assert_eq!(classify(" [ group1 ] "), Line::Section("group1"));
        assert_eq!(classify("[]"), Line::Section(""));
        assert_eq!(classify("["), Line::NoEquals("["));
        assert_eq!(classify("a = b"), Line::KeyValue("a", "b"));
        assert_eq!(classify("\ta=b=c\r"), Line::KeyValue("a", "b=c"));
        assert_eq!(classify("a ="), Line::KeyValue("a", ""));
        assert_eq!(classify("= v"), Line::KeyValue("", "v"));
        assert_eq!(
            classify("connect_timeout = 2   # x"),
            Line::KeyValue("connect_timeout", "2   # x")
        );
        assert_eq!(classify("no equals here"), Line::NoEquals("no equals here"));
        assert_eq!(classify("Key = Value"), Line::KeyValue("Key", "Value"));
    }

    fn parse(main: &str, files: &[(&str, &str)]) -> (Document, Diags) {
        let map: HashMap<PathBuf, String> = files
            .iter()
            .map(|(p, t)| (Path::new("/etc/fdfs").join(p), t.to_string()))
            .collect();
        let mut fetch = |p: &Path| {
            map.get(p)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        };
        let mut d = Diags::default();
        let doc = parse_document(
            main,
            Path::new("/etc/fdfs/mod_fastdfs.conf"),
            Path::new("/etc/fdfs"),
            &mut fetch,
            &mut d,
        );
        (doc, d)
    }

    fn kv(e: &Entry) -> (&str, &str, usize, u32) {
        (e.key.as_str(), e.value.as_str(), e.file, e.line)
    }

    #[test]
    fn sections_and_globals() {
        let (doc, d) = parse("a=1\n[s1]\nb=2\n[]\nc=3\n[s2]\nd=4\n[s1]\ne=5\n", &[]);
        assert!(d.errors.is_empty() && d.warnings.is_empty());
        let g: Vec<_> = doc.global.iter().map(kv).collect();
        assert_eq!(g, [("a", "1", 0, 1), ("c", "3", 0, 5)]);
        assert_eq!(doc.sections.len(), 2);
        let s1: Vec<_> = doc.sections[0].entries.iter().map(kv).collect();
        assert_eq!(s1, [("b", "2", 0, 3), ("e", "5", 0, 9)]);
        assert_eq!(doc.sections[1].name, "s2");
    }

    #[test]
    fn include_resets_section_and_keeps_locations() {
        let (doc, d) = parse(
            "[g]\nx=1\n#include inc.conf\ny=2\n",
            &[("inc.conf", "i=1\n[h]\nj=2\n")],
        );
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(doc.files.len(), 2);
        assert_eq!(doc.read, [PathBuf::from("/etc/fdfs/inc.conf")]);
        let g: Vec<_> = doc.global.iter().map(kv).collect();
        // `i` lands in global, `y` after the include is global again.
        assert_eq!(g, [("i", "1", 1, 1), ("y", "2", 0, 4)]);
        assert_eq!(doc.sections[1].name, "h");
        assert_eq!(kv(&doc.sections[1].entries[0]), ("j", "2", 1, 3));
    }

    #[test]
    fn nested_include_relative_to_top_level_dir() {
        let (doc, d) = parse(
            "#include sub/a.conf\n",
            &[("sub/a.conf", "#include b.conf\n"), ("b.conf", "k=v\n")],
        );
        assert!(d.errors.is_empty() && d.warnings.is_empty());
        assert_eq!(kv(&doc.global[0]), ("k", "v", 2, 1));
    }

    #[test]
    fn missing_include_is_a_warning() {
        let (doc, d) = parse("#include http.conf\na=1\n", &[]);
        assert!(d.errors.is_empty());
        assert_eq!(d.warnings.len(), 1);
        let w = d.warnings[0].to_string();
        assert!(
            w.starts_with("/etc/fdfs/mod_fastdfs.conf:1: #include /etc/fdfs/http.conf"),
            "{w}"
        );
        assert_eq!(doc.global.len(), 1);
    }

    #[test]
    fn include_errors() {
        let (_, d) = parse("#include http://x/http.conf\n", &[]);
        assert!(d.errors[0].message.contains("URL includes"));
        let (_, d) = parse("#include a.conf\n", &[("a.conf", "#include a.conf\n")]);
        assert!(d.errors[0].message.contains("cycle"), "{:?}", d.errors);
        let (_, d) = parse("#include mod_fastdfs.conf\n", &[]);
        assert!(d.errors[0].message.contains("cycle"));
    }

    #[test]
    fn preprocessor_is_an_error_with_location() {
        let (_, d) = parse("a=1\n#@set X = 1\n", &[]);
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.errors[0].line, Some(2));
        assert!(d.errors[0].message.contains("not supported"));
    }

    #[test]
    fn warnings_for_junk_lines() {
        let (doc, d) = parse("connect_timeout = 2 # two\njunk\n= x\n", &[]);
        assert_eq!(doc.global[0].value, "2 # two");
        let msgs: Vec<_> = d
            .warnings
            .iter()
            .map(|w| (w.line, w.message.clone()))
            .collect();
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].1.contains("inline comments"));
        assert_eq!(msgs[1].0, Some(2));
        assert!(msgs[1].1.contains("no '='"));
        assert!(msgs[2].1.contains("empty key"));
    }

    #[test]
    fn long_keys_and_values_are_truncated() {
        let long_key = "k".repeat(70);
        let long_val = "é".repeat(200); // 400 bytes
        let (doc, d) = parse(&format!("{long_key}={long_val}\n"), &[]);
        assert_eq!(doc.global[0].key.len(), MAX_KEY_LEN);
        assert!(doc.global[0].value.len() <= MAX_VALUE_LEN);
        assert_eq!(doc.global[0].value.len(), 254);
        assert_eq!(d.warnings.len(), 2);
    }

    #[test]
    fn crlf_lines() {
        let (doc, _) = parse("a = 1\r\nb=2\r\n", &[]);
        assert_eq!(doc.global[0].value, "1");
        assert_eq!(doc.global[1].value, "2");
    }
}
