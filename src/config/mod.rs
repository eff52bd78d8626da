//! The module's own configuration: `mod_fastdfs.conf` with its `#include`d
//! `http.conf`, the MIME table, `storage_ids.conf` and the token-fail file,
//! read with libfastcommon's INI rules into a typed, validated [`Config`].
//!
//! Spec: docs/config-keys.md (all sections), docs/file-id.md §7.
//! Layout: `ini` syntax (pure), `values` typed values (pure), `model` the
//! [`Config`] types, `keys` the key table and its lint, `fs` the
//! file-system seam, `build` the builder with `module` (the module's keys)
//! and `ops` (operational keys), `mime`/`mime_builtin` the MIME tables,
//! `storage_ids` the ID table, `upload` the upload API's keys. [`Config::load`] does the I/O;
//! every problem found is reported, not only the first.

use std::fmt;
use std::path::{Path, PathBuf};

mod apps;
mod build;
mod directives;
mod fs;
mod ini;
mod keys;
mod mime;
mod mime_builtin;
mod model;
mod module;
mod ops;
mod read;
mod storage_ids;
mod upload;
mod values;

pub use apps::{AppKey, UploadApp, UploadConfig, DEFAULT_UPLOAD_PREFIX, MAX_EXT_LEN};
pub use mime::MimeTable;
pub use model::{
    AccessLog, AccessLogFormat, AccessRule, AntiSteal, Config, Directives, FailFile, GroupConfig,
    LogLevel, ProxyVia, RateLimit, ReadStrategy, ResponseMode, Scheme, TlsListen, TrackerAddr,
    DEFAULT_CONTENT_TYPE, DEFAULT_LISTEN, DEFAULT_TRACKER_PORT, MAX_HEADER_SIZE, MAX_STORE_PATHS,
    MAX_TRACKERS, MIN_HEADER_SIZE,
};
pub use storage_ids::{
    RwMode, StorageIdEntry, StorageIds, DEFAULT_STORAGE_PORT, MAX_GROUP_NAME_LEN, MAX_STORAGE_ID,
};
pub use values::{Cidr, CidrError, ValueError};

use fs::{Env, OfflineEnv, RealEnv};

/// A problem found in a configuration file, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File the problem is in.
    pub file: PathBuf,
    /// 1-based line, when the problem belongs to one.
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic for `file` (and `line`).
    pub fn new(file: &Path, line: Option<u32>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// A successfully loaded configuration and the warnings met on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Non-fatal problems (unknown keys, repeated keys, missing includes, ...).
    pub warnings: Vec<Diagnostic>,
}

/// Errors and warnings collected while loading.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Diags {
    pub(crate) fn err(&mut self, file: &Path, line: Option<u32>, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(file, line, msg));
    }

    pub(crate) fn warn(&mut self, file: &Path, line: Option<u32>, msg: impl Into<String>) {
        self.warnings.push(Diagnostic::new(file, line, msg));
    }

    /// Drops exact repeats (a key read from two places reports once).
    fn dedup(v: &mut Vec<Diagnostic>) {
        let mut seen: Vec<Diagnostic> = Vec::with_capacity(v.len());
        v.retain(|d| {
            if seen.contains(d) {
                false
            } else {
                seen.push(d.clone());
                true
            }
        });
    }

    fn finish(mut self, config: Config) -> Result<Loaded, Vec<Diagnostic>> {
        Self::dedup(&mut self.errors);
        Self::dedup(&mut self.warnings);
        if self.errors.is_empty() {
            Ok(Loaded {
                config,
                warnings: self.warnings,
            })
        } else {
            Err(self.errors)
        }
    }
}

/// Parses `text` as the main file `path`, resolving relative names against `base_dir`.
fn load_text(
    text: &str,
    path: &Path,
    base_dir: &Path,
    env: &dyn Env,
    read_main: bool,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut d = Diags::default();
    let mut fetch = |p: &Path| env.read(p);
    let doc = ini::parse_document(text, path, base_dir, &mut fetch, &mut d);
    let mut config = build::build(&doc, base_dir, env, &mut d);
    if read_main {
        config.files.insert(0, path.to_path_buf());
    }
    d.finish(config)
}

impl Config {
    /// Reads `path`, its `#include`s, the MIME types file, storage_ids.conf
    /// and the token-fail file, and checks that paths exist and are
    /// readable. `Err` holds every problem found.
    pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
        let env = RealEnv;
        let text = env
            .read(path)
            .map_err(|e| vec![Diagnostic::new(path, None, format!("cannot read: {e}"))])?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        load_text(&text, path, base_dir, &env, true)
    }

    /// Same as [`Config::load`] for an in-memory main file. `origin` names
    /// it (relative names resolve against its directory); if `origin` is an
    /// existing directory, relative names resolve against it and the text is
    /// reported as `origin/mod_fastdfs.conf`.
    pub fn from_str(text: &str, origin: &Path) -> Result<Loaded, Vec<Diagnostic>> {
        let env = RealEnv;
        if env.is_dir(origin) {
            let path = origin.join("mod_fastdfs.conf");
            return load_text(text, &path, origin, &env, false);
        }
        let base_dir = match origin.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        load_text(text, origin, base_dir, &env, false)
    }

    /// Same as [`Config::from_str`] without any I/O: `#include`d and
    /// referenced files are absent, every configured directory counts as
    /// present, no host name resolves. For checking untrusted text (the
    /// fuzz targets) without touching the filesystem or the resolver.
    pub fn from_str_offline(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
        let path = Path::new("/offline/mod_fastdfs.conf");
        load_text(text, path, Path::new("/offline"), &OfflineEnv, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_display() {
        let d = Diagnostic::new(Path::new("/etc/fdfs/mod_fastdfs.conf"), Some(7), "bad");
        assert_eq!(d.to_string(), "/etc/fdfs/mod_fastdfs.conf:7: bad");
        let d = Diagnostic::new(Path::new("a.conf"), None, "missing");
        assert_eq!(d.to_string(), "a.conf: missing");
    }

    #[test]
    fn offline_parse_reads_no_file() {
        // /etc/hostname exists on any test machine; offline it stays unread.
        let text = "#include /etc/hostname\ngroup_name=group1\nstore_path0=/data\ntracker_server=localhost:22122\n";
        let (warnings, errors) = match Config::from_str_offline(text) {
            Ok(l) => (l.warnings, Vec::new()),
            Err(e) => (Vec::new(), e),
        };
        let all: Vec<String> = warnings
            .iter()
            .chain(&errors)
            .map(|d| d.to_string())
            .collect();
        assert!(
            all.iter()
                .any(|m| m.contains("/etc/hostname") && m.contains("not found")),
            "{all:?}"
        );
    }

    #[test]
    fn dedup_keeps_order() {
        let a = Diagnostic::new(Path::new("f"), Some(1), "a");
        let b = Diagnostic::new(Path::new("f"), Some(2), "b");
        let mut v = vec![a.clone(), b.clone(), a.clone()];
        Diags::dedup(&mut v);
        assert_eq!(v, [a, b]);
    }
}
