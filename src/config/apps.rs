//! The upload API's typed configuration: its applications, their keys
//! (never shown by `Debug`) and limits (docs/upload.md §1). Read from the
//! `upload.*` keys by [`super::upload`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::values::Cidr;

/// Default path prefix of the API.
pub const DEFAULT_UPLOAD_PREFIX: &str = "/api";
/// Shortest accepted application key (bytes).
pub const MIN_KEY_LEN: usize = 16;
/// Longest accepted application key (bytes).
pub const MAX_KEY_LEN: usize = 1024;
/// Longest accepted application id.
pub const MAX_APP_ID_LEN: usize = 64;
/// FastDFS's longest extension (`FDFS_FILE_EXT_NAME_MAX_LEN`).
pub const MAX_EXT_LEN: usize = 6;

/// A secret application key; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AppKey(Arc<[u8]>);

impl AppKey {
    /// A key from its bytes.
    pub fn new(bytes: &[u8]) -> Self {
        AppKey(Arc::from(bytes))
    }

    /// The key's bytes (for comparison and signing only).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppKey(<redacted>)")
    }
}

/// One application allowed to use the API.
#[derive(Debug, Clone)]
pub struct UploadApp {
    /// Its id (`app_id`), `[A-Za-z0-9_.-]`, at most 64 bytes.
    pub id: String,
    /// Its key.
    pub key: AppKey,
    /// May upload (and append).
    pub upload: bool,
    /// May delete.
    pub delete: bool,
    /// Largest accepted file, bytes.
    pub max_size: u64,
    /// Allowed extensions, lowercase; empty = any.
    pub extensions: Vec<String>,
    /// Target group; `None` = the tracker's choice.
    pub group: Option<String>,
    /// Allowed client networks; empty = any.
    pub networks: Vec<Cidr>,
    /// `app_key` may be sent as a field or header (else only signatures).
    pub key_auth: bool,
}

/// The upload API's configuration (present only with `upload.enabled`).
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// Path prefix, `/` + segments, no trailing `/`.
    pub prefix: String,
    /// Base of the `url` in answers; `None` = this node (`Host`).
    pub public_base_url: Option<String>,
    /// Uploads in progress at once; more get 503.
    pub max_concurrent: usize,
    /// A body that sends nothing this long is dropped.
    pub stall_timeout: Duration,
    /// Directory for spooled multipart parts; `None` = the system's.
    pub temp_dir: Option<PathBuf>,
    /// The applications.
    pub apps: Vec<UploadApp>,
}

impl UploadConfig {
    /// The application with this id.
    pub fn app(&self, id: &str) -> Option<&UploadApp> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// Largest `max_size` of any application.
    pub fn largest_max_size(&self) -> u64 {
        self.apps.iter().map(|a| a.max_size).max().unwrap_or(0)
    }
}
