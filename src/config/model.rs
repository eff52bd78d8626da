//! The typed configuration and its construction from a parsed INI document
//! (docs/config-keys.md §1, §1.1, §2; docs/file-id.md §7 for the ID table).
//!
//! Filesystem and resolver access goes through [`Env`], so the rules here
//! are testable without disk. Deliberate deviations from the module:
//! unparsable booleans/integers are errors; a missing include or mime types
//! file is a warning (built-in table used); `token_check_fail` is relative to
//! the main file's directory (the module: process CWD); every store path is
//! checked, `store_path0` included; `base_path` is only needed as the
//! fallback for a missing `store_path0`; a group name longer than 16
//! characters is an error (the module truncates it).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::ini::{Document, Entry, Section};
use super::mime::MimeTable;
use super::storage_ids::{StorageIds, MAX_GROUP_NAME_LEN};
use super::values::{
    parse_bool, parse_duration, parse_int_in, parse_ip, parse_rate, parse_server_addr, parse_size,
    parse_socket_addr, split_list, Cidr, ValueError,
};
use super::Diags;

/// Default HTTP listener.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8888);
/// Default tracker port.
pub const DEFAULT_TRACKER_PORT: u16 = 22122;
/// Most tracker servers the module accepts.
pub const MAX_TRACKERS: usize = 16;
/// Default `http.default_content_type`.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Most store paths (`M00`..`MFF`).
pub const MAX_STORE_PATHS: i64 = 256;

/// Answer for files that are not local (`response_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// Fetch from the source storage and relay (default; any value but `redirect`).
    #[default]
    Proxy,
    /// 302 to the source storage (`response_mode = redirect`, exact).
    Redirect,
}

/// Module log level (`log_level`), syslog names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// `emerg`.
    Emerg,
    /// `alert`.
    Alert,
    /// `crit`.
    Crit,
    /// `error` / `err`.
    Error,
    /// `warn` / `warning`.
    Warn,
    /// `notice`.
    Notice,
    /// `info` (default).
    #[default]
    Info,
    /// `debug`.
    Debug,
}

impl LogLevel {
    /// libfastcommon's rule: case-insensitive, optional `LOG_` prefix, matched
    /// by prefix (`warning` → Warn, `ERR` → Error).
    pub fn parse(s: &str) -> Option<Self> {
        let up = s.trim().to_ascii_uppercase();
        let up = up.strip_prefix("LOG_").unwrap_or(&up);
        const TABLE: [(&str, LogLevel); 8] = [
            ("DEBUG", LogLevel::Debug),
            ("INFO", LogLevel::Info),
            ("NOTICE", LogLevel::Notice),
            ("WARN", LogLevel::Warn),
            ("ERR", LogLevel::Error),
            ("CRIT", LogLevel::Crit),
            ("ALERT", LogLevel::Alert),
            ("EMERG", LogLevel::Emerg),
        ];
        TABLE
            .iter()
            .find(|(p, _)| up.starts_with(p))
            .map(|(_, l)| *l)
    }

    /// The closest `tracing` level.
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            Self::Emerg | Self::Alert | Self::Crit | Self::Error => tracing::Level::ERROR,
            Self::Warn => tracing::Level::WARN,
            Self::Notice | Self::Info => tracing::Level::INFO,
            Self::Debug => tracing::Level::DEBUG,
        }
    }
}

/// A `tracker_server` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackerAddr {
    /// Host as written (IP or name; IPv6 without brackets).
    pub host: String,
    /// Second address of the dual `ip1,ip2:port` form.
    pub alt_host: Option<String>,
    /// Tracker port (default 22122).
    pub port: u16,
}

impl fmt::Display for TrackerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = |f: &mut fmt::Formatter<'_>, h: &str| {
            if h.contains(':') {
                write!(f, "[{h}]")
            } else {
                f.write_str(h)
            }
        };
        w(f, &self.host)?;
        if let Some(a) = &self.alt_host {
            f.write_str(",")?;
            w(f, a)?;
        }
        write!(f, ":{}", self.port)
    }
}

/// File answered (200) when a token check fails (`http.anti_steal.token_check_fail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailFile {
    /// Absolute or main-conf-relative-resolved path; checked readable at load.
    pub path: PathBuf,
    /// Content type from the MIME table by the file's extension.
    pub content_type: String,
}

/// Anti-steal token settings (docs/module-behaviour.md §4).
#[derive(Clone, PartialEq, Eq)]
pub struct AntiSteal {
    /// Max age of `ts` in seconds (`http.anti_steal.token_ttl`, default 600).
    pub token_ttl: u64,
    /// MD5 secret (`http.anti_steal.secret_key`), non-empty.
    pub secret_key: String,
    /// Answer on failure; `None` = 400.
    pub token_check_fail: Option<FailFile>,
    /// Reject `ts=0` (the module accepts it forever); `http.anti_steal.reject_ts_zero`.
    pub reject_ts_zero: bool,
    /// Reject `ts` more than this many seconds in the future; `http.anti_steal.max_future_skew`.
    pub max_future_skew: Option<u64>,
}

impl fmt::Debug for AntiSteal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AntiSteal")
            .field("token_ttl", &self.token_ttl)
            .field("secret_key", &"<redacted>")
            .field("token_check_fail", &self.token_check_fail)
            .field("reject_ts_zero", &self.reject_ts_zero)
            .field("max_future_skew", &self.max_future_skew)
            .finish()
    }
}

/// One hosted group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Group name (≤ 16 characters).
    pub name: String,
    /// The group's storages' FastDFS (not HTTP) port.
    pub storage_server_port: u16,
    /// Store path roots, index = `Mxx`; each an existing directory at load.
    pub store_paths: Vec<PathBuf>,
    /// Effective anti-steal settings for this group: the `[groupN]`
    /// section's `http.anti_steal.*` keys over the global ones. Equals
    /// [`Config::anti_steal`] when the section has none; `None` = no check.
    pub anti_steal: Option<AntiSteal>,
}

/// URL scheme used to reach peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// `http` (default).
    #[default]
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// How to fetch a non-local file in proxy mode, tried in configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVia {
    /// HTTP to the peer's web server.
    Http,
    /// FastDFS storage protocol (download command) to the peer's storaged.
    Storage,
}

/// Access log destination.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccessLog {
    /// No access log (default).
    #[default]
    Off,
    /// Standard error.
    Stderr,
    /// Appended to this file.
    File(PathBuf),
}

/// Access log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// NCSA combined (default).
    #[default]
    Combined,
    /// One JSON object per line.
    Json,
}

/// How file bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadStrategy {
    /// On the runtime threads (best for page-cache hits; default).
    #[default]
    Inline,
    /// On blocking threads.
    Threads,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every file read (main, includes, mime types, storage ids, fail files,
    /// TLS files), for change watching.
    pub files: Vec<PathBuf>,
    /// HTTP listeners (`listen`, repeatable; default 0.0.0.0:8888).
    pub listen: Vec<SocketAddr>,
    /// URLs are `/group/Mxx/...` (true) or `/Mxx/...`.
    pub url_have_group_name: bool,
    /// Hosted groups (one in single-group mode).
    pub groups: Vec<GroupConfig>,
    /// `group_count > 0`.
    pub multi_group: bool,
    /// Proxy or redirect for non-local files.
    pub response_mode: ResponseMode,
    /// Seconds after creation during which a missing file is looked for elsewhere.
    pub storage_sync_file_max_delay: u64,
    /// File names may carry numeric storage IDs.
    pub use_storage_id: bool,
    /// ID table; empty unless `use_storage_id` (and not loading from the tracker).
    pub storage_ids: Arc<StorageIds>,
    /// Ask a tracker for `storage_sync_file_max_delay`, `use_storage_id` and IDs.
    pub load_fdfs_parameters_from_tracker: bool,
    /// Trackers, deduplicated, at most 16.
    pub tracker_servers: Vec<TrackerAddr>,
    /// Connect timeout to trackers/storages (default 10 s).
    pub connect_timeout: Duration,
    /// Send/receive timeout on tracker/storage sockets (default 30 s).
    pub network_timeout: Duration,
    /// FLV pseudo-streaming extension; `Some` iff `flv_support`.
    pub flv_extension: Option<String>,
    /// Interface-name prefixes for local IP discovery (≤ 4).
    pub if_alias_prefix: Vec<String>,
    /// Module log level.
    pub log_level: LogLevel,
    /// Module log file; `None` = stderr.
    pub log_filename: Option<PathBuf>,
    /// Global anti-steal settings; `Some` iff `http.anti_steal.check_token`.
    pub anti_steal: Option<AntiSteal>,
    /// Requests with this header (name case-insensitive) and exact value skip the token check.
    pub bypass_header: Option<(http::HeaderName, String)>,
    /// Built-in table overlaid with `http.mime_types_filename`.
    pub mime: Arc<MimeTable>,
    /// Type for unknown or absent extensions.
    pub default_content_type: String,
    /// Multi-range requests allowed (false when `http.disabled`).
    pub multi_range_enabled: bool,
    /// Explicit local addresses (replaces interface discovery).
    pub local_ip_addrs: Option<Vec<IpAddr>>,
    /// Extra addresses accepted as peers of the group.
    pub peer_ip_addrs: Vec<IpAddr>,
    /// HTTP port of peers; `None` = the port the request arrived on.
    pub peer_http_port: Option<u16>,
    /// Scheme to reach peers.
    pub peer_scheme: Scheme,
    /// PEM CA bundle trusted for HTTPS peers (`peer_scheme = https`).
    pub peer_ca_file: Option<PathBuf>,
    /// Proxy transports in order of preference (default `[Http]`).
    pub proxy_via: Vec<ProxyVia>,
    /// TLS listeners.
    pub tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain; required with `tls_listen`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key; required with `tls_listen`.
    pub tls_key_file: Option<PathBuf>,
    /// Accept HTTP/2 prior-knowledge on plain listeners.
    pub http2_cleartext: bool,
    /// Reload when one of [`Config::files`] changes.
    pub watch_config: bool,
    /// Requests per second per client IP; `None` = unlimited.
    pub rate_limit_per_ip: Option<u32>,
    /// Burst above the rate.
    pub rate_limit_burst: Option<u32>,
    /// Cap on concurrent client connections (accept waits beyond it).
    pub max_connections: Option<usize>,
    /// Cap on concurrent proxied requests per peer.
    pub max_proxy_per_peer: Option<usize>,
    /// Time allowed to receive request headers (default 30 s).
    pub header_read_timeout: Duration,
    /// Time a peer has to send its response head before the next candidate
    /// is tried (default 5 s, never above `network_timeout`).
    pub peer_response_timeout: Duration,
    /// Longest stall inside a relayed peer body before the client
    /// connection is aborted (default 10 s, never above `network_timeout`).
    pub peer_idle_timeout: Duration,
    /// Largest request head in bytes (default 16 KiB, at least 8 KiB).
    pub max_header_size: usize,
    /// Idle keep-alive connection lifetime (default 65 s).
    pub keepalive_timeout: Duration,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Access log destination.
    pub access_log: AccessLog,
    /// Access log format.
    pub access_log_format: AccessLogFormat,
    /// Listener for health/metrics; `None` = off.
    pub admin_listen: Option<SocketAddr>,
    /// Time to drain connections on shutdown (default 30 s).
    pub shutdown_grace: Duration,
    /// How file bytes are read.
    pub read_strategy: ReadStrategy,
    /// Runtime worker threads; `None` = number of CPUs.
    pub worker_threads: Option<usize>,
}

impl Config {
    /// The hosted group with that name.
    pub fn group(&self, name: &str) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Content type for an extension (without the dot): the MIME table, else
    /// `default_content_type`.
    pub fn content_type(&self, ext: Option<&str>) -> &str {
        ext.and_then(|e| self.mime.lookup(e))
            .unwrap_or(&self.default_content_type)
    }
}

/// Why a path check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathProblem {
    Missing,
    NotDir,
    NotFile,
    Unreadable(String),
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("does not exist"),
            Self::NotDir => f.write_str("is not a directory"),
            Self::NotFile => f.write_str("is not a regular file"),
            Self::Unreadable(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Filesystem and name resolution used while building a [`Config`].
pub(crate) trait Env {
    /// Reads a whole text file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Ok if `path` is a readable directory.
    fn check_dir(&self, path: &Path) -> Result<(), PathProblem>;
    /// Ok if `path` is a readable regular file.
    fn check_file(&self, path: &Path) -> Result<(), PathProblem>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// First address of a hostname.
    fn resolve(&self, host: &str) -> Option<IpAddr>;
}

/// The real filesystem and system resolver.
pub(crate) struct RealEnv;

fn io_problem(e: &io::Error) -> PathProblem {
    if e.kind() == io::ErrorKind::NotFound {
        PathProblem::Missing
    } else {
        PathProblem::Unreadable(e.to_string())
    }
}

impl Env for RealEnv {
    fn read(&self, path: &Path) -> io::Result<String> {
        let bytes = std::fs::read(path)?;
        String::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
    }

    fn check_dir(&self, path: &Path) -> Result<(), PathProblem> {
        let md = std::fs::metadata(path).map_err(|e| io_problem(&e))?;
        if !md.is_dir() {
            return Err(PathProblem::NotDir);
        }
        std::fs::read_dir(path).map_err(|e| io_problem(&e))?;
        Ok(())
    }

    fn check_file(&self, path: &Path) -> Result<(), PathProblem> {
        let md = std::fs::metadata(path).map_err(|e| io_problem(&e))?;
        if !md.is_file() {
            return Err(PathProblem::NotFile);
        }
        std::fs::File::open(path).map_err(|e| io_problem(&e))?;
        Ok(())
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn resolve(&self, host: &str) -> Option<IpAddr> {
        use std::net::ToSocketAddrs;
        (host, 0u16)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
    }
}

/// `http.anti_steal.*` keys (also allowed in `[groupN]`).
const ANTI_STEAL_KEYS: [&str; 6] = [
    "http.anti_steal.check_token",
    "http.anti_steal.token_ttl",
    "http.anti_steal.secret_key",
    "http.anti_steal.token_check_fail",
    "http.anti_steal.reject_ts_zero",
    "http.anti_steal.max_future_skew",
];

/// Keys of the global section (besides `store_path<i>[_readonly]` and [`ANTI_STEAL_KEYS`]).
pub(crate) const GLOBAL_KEYS: [&str; 61] = [
    "connect_timeout",
    "network_timeout",
    "base_path",
    "load_fdfs_parameters_from_tracker",
    "storage_sync_file_max_delay",
    "use_storage_id",
    "storage_ids_filename",
    "tracker_server",
    "storage_server_port",
    "group_name",
    "url_have_group_name",
    "store_path_count",
    "log_level",
    "log_filename",
    "response_mode",
    "if_alias_prefix",
    "flv_support",
    "flv_extension",
    "group_count",
    "anti_steal_bypass_header_name",
    "anti_steal_bypass_header_value",
    "http.disabled",
    "http.need_find_content_type",
    "http.multi_range.enabled",
    "http.server_port",
    "http.mime_types_filename",
    "http.default_content_type",
    "http.anti_steal.check_token",
    "http.anti_steal.token_ttl",
    "http.anti_steal.secret_key",
    "http.anti_steal.token_check_fail",
    "http.anti_steal.reject_ts_zero",
    "http.anti_steal.max_future_skew",
    "listen",
    "local_ip_addrs",
    "peer_ip_addrs",
    "peer_http_port",
    "peer_scheme",
    "peer_ca_file",
    "proxy_via",
    "tls_listen",
    "tls_cert_file",
    "tls_key_file",
    "http2_cleartext",
    "watch_config",
    "rate_limit_per_ip",
    "rate_limit_burst",
    "max_connections",
    "max_proxy_per_peer",
    "header_read_timeout",
    "peer_response_timeout",
    "peer_idle_timeout",
    "max_header_size",
    "keepalive_timeout",
    "trusted_proxies",
    "access_log",
    "access_log_format",
    "admin_listen",
    "shutdown_grace",
    "read_strategy",
    "worker_threads",
];

/// Keys of `[groupN]` sections (besides `store_path<i>[_readonly]` and [`ANTI_STEAL_KEYS`]).
const GROUP_KEYS: [&str; 3] = ["group_name", "storage_server_port", "store_path_count"];

/// Keys whose repeated occurrences are all used.
const MULTI_KEYS: [&str; 6] = [
    "tracker_server",
    "listen",
    "tls_listen",
    "trusted_proxies",
    "local_ip_addrs",
    "peer_ip_addrs",
];

/// `store_path<i>` → `Some((i, false))`, `store_path<i>_readonly` → `Some((i, true))`.
fn store_path_key(key: &str) -> Option<(usize, bool)> {
    let rest = key.strip_prefix("store_path")?;
    let (digits, ro) = match rest.strip_suffix("_readonly") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, ro))
}

/// Keys of one section, last occurrence wins.
#[derive(Clone, Copy)]
struct Keys<'a>(&'a [Entry]);

impl<'a> Keys<'a> {
    fn get(self, key: &str) -> Option<&'a Entry> {
        self.0.iter().rev().find(|e| e.key == key)
    }
    fn all(self, key: &'a str) -> impl Iterator<Item = &'a Entry> {
        self.0.iter().filter(move |e| e.key == key)
    }
    fn has_prefix(self, prefix: &str) -> bool {
        self.0.iter().any(|e| e.key.starts_with(prefix))
    }
}

/// Where a missing key would have been expected.
#[derive(Clone, Copy)]
struct At {
    file: usize,
    line: Option<u32>,
}

struct Builder<'a> {
    doc: &'a Document,
    base_dir: &'a Path,
    env: &'a dyn Env,
    d: &'a mut Diags,
    files: Vec<PathBuf>,
    mime: MimeTable,
    default_content_type: String,
}

/// Builds a [`Config`]; problems go to `d` (the config is meaningful only
/// when `d.errors` stays empty).
pub(crate) fn build(doc: &Document, base_dir: &Path, env: &dyn Env, d: &mut Diags) -> Config {
    let mut b = Builder {
        doc,
        base_dir,
        env,
        d,
        files: doc.read.clone(),
        mime: MimeTable::builtin(),
        default_content_type: DEFAULT_CONTENT_TYPE.to_owned(),
    };
    b.config()
}

impl Builder<'_> {
    fn file_of(&self, file: usize) -> PathBuf {
        self.doc.files.get(file).cloned().unwrap_or_default()
    }

    fn err(&mut self, e: &Entry, msg: impl Into<String>) {
        let f = self.file_of(e.file);
        self.d.err(&f, Some(e.line), msg);
    }

    fn warn(&mut self, e: &Entry, msg: impl Into<String>) {
        let f = self.file_of(e.file);
        self.d.warn(&f, Some(e.line), msg);
    }

    fn err_at(&mut self, at: At, msg: impl Into<String>) {
        let f = self.file_of(at.file);
        self.d.err(&f, at.line, msg);
    }

    /// Applies `parse` to an entry's value, reporting failure at its location.
    fn value<T>(
        &mut self,
        e: &Entry,
        parse: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        match parse(&e.value) {
            Ok(v) => Some(v),
            Err(err) => {
                self.err(e, format!("{} = {}: {err}", e.key, e.value));
                None
            }
        }
    }

    fn bool(&mut self, k: Keys<'_>, key: &str, default: bool) -> bool {
        match k.get(key) {
            Some(e) => self.value(e, parse_bool).unwrap_or(default),
            None => default,
        }
    }

    fn int(&mut self, k: Keys<'_>, key: &str, default: i64, min: i64, max: i64) -> i64 {
        match k.get(key) {
            Some(e) => self
                .value(e, |v| parse_int_in(v, min, max))
                .unwrap_or(default),
            None => default,
        }
    }

    fn opt<T>(
        &mut self,
        k: Keys<'_>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        k.get(key).and_then(|e| self.value(e, parse))
    }

    /// A non-empty string value.
    fn string<'k>(&self, k: Keys<'k>, key: &str) -> Option<&'k str> {
        k.get(key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A case-insensitive keyword.
    fn keyword<T: Copy>(
        &mut self,
        k: Keys<'_>,
        key: &str,
        table: &'static [(&'static str, T)],
        names: &'static [&'static str],
        default: T,
    ) -> T {
        let Some(e) = k.get(key) else { return default };
        self.value(e, |v| {
            table
                .iter()
                .find(|(n, _)| v.eq_ignore_ascii_case(n))
                .map(|(_, t)| *t)
                .ok_or(ValueError::NotOneOf(names))
        })
        .unwrap_or(default)
    }

    /// Warns about unknown keys and repeated single-value keys, in file order.
    fn lint(&mut self, entries: &[Entry], section: Option<&str>) {
        for (i, e) in entries.iter().enumerate() {
            let key = e.key.as_str();
            let known = match section {
                None => GLOBAL_KEYS.contains(&key) || store_path_key(key).is_some(),
                Some(_) => {
                    GROUP_KEYS.contains(&key)
                        || ANTI_STEAL_KEYS.contains(&key)
                        || store_path_key(key).is_some()
                }
            };
            if !known {
                let msg = match section {
                    Some(s) if GLOBAL_KEYS.contains(&key) => {
                        format!("key \"{key}\" is a global key; ignored in section [{s}]")
                    }
                    Some(s) => format!("unknown key \"{key}\" in section [{s}] (ignored)"),
                    None => format!("unknown key \"{key}\" (ignored)"),
                };
                self.warn(e, msg);
                continue;
            }
            // Repeated single-value keys: warn at the last occurrence.
            if MULTI_KEYS.contains(&key) {
                continue;
            }
            let later = entries.get(i + 1..).unwrap_or(&[]);
            let earlier = entries.get(..i).unwrap_or(&[]);
            if later.iter().any(|x| x.key == key) || !earlier.iter().any(|x| x.key == key) {
                continue;
            }
            let others: Vec<String> = earlier
                .iter()
                .filter(|x| x.key == key)
                .map(|x| format!("{}:{}", self.file_of(x.file).display(), x.line))
                .collect();
            self.warn(
                e,
                format!(
                    "key \"{key}\" repeated (also at {}); this last value is used",
                    others.join(", ")
                ),
            );
        }
    }

    fn resolve_path(&self, v: &str) -> PathBuf {
        self.base_dir.join(v)
    }

    fn config(&mut self) -> Config {
        let doc = self.doc;
        let g = Keys(&doc.global);
        self.lint(&doc.global, None);

        // http.conf keys (§2).
        let http_disabled = self.bool(g, "http.disabled", false);
        let mut multi_range_enabled = false;
        if !http_disabled {
            self.bool(g, "http.need_find_content_type", true);
            self.int(g, "http.server_port", 80, 1, 65535);
            multi_range_enabled = self.bool(g, "http.multi_range.enabled", true);
            self.mime_file(g);
            if let Some(e) = g.get("http.default_content_type") {
                match http::HeaderValue::from_str(&e.value) {
                    Ok(_) if !e.value.is_empty() => self.default_content_type = e.value.clone(),
                    _ => self.err(
                        e,
                        format!("{} = {}: not a valid Content-Type value", e.key, e.value),
                    ),
                }
            }
        }
        let anti_steal = if http_disabled {
            None
        } else {
            self.anti_steal(&[g])
        };

        let bypass_header = self.bypass_header(g);

        // Timeouts: ≤ 0 falls back to the default like the module.
        let connect_timeout = self.timeout(g, "connect_timeout", 10);
        let network_timeout = self.timeout(g, "network_timeout", 30);

        let load_from_tracker = self.bool(g, "load_fdfs_parameters_from_tracker", false);
        let mut storage_sync_file_max_delay = 86400;
        let mut use_storage_id = false;
        let mut storage_ids = StorageIds::default();
        if !load_from_tracker {
            storage_sync_file_max_delay = self
                .int(g, "storage_sync_file_max_delay", 86400, 0, i64::MAX)
                .unsigned_abs();
            use_storage_id = self.bool(g, "use_storage_id", false);
            if use_storage_id {
                storage_ids = self.storage_ids(g);
            }
        }

        let tracker_servers = self.trackers(g, load_from_tracker);
        let url_have_group_name = self.bool(g, "url_have_group_name", false);
        let group_count = self.int(g, "group_count", 0, 0, MAX_STORE_PATHS * 16);
        let multi_group = group_count > 0;
        let groups = if multi_group {
            if !url_have_group_name {
                if let Some(e) = g.get("group_count") {
                    self.err(e, "group_count > 0 requires url_have_group_name = true");
                }
            }
            self.multi_groups(g, group_count, anti_steal.as_ref())
        } else {
            for s in &doc.sections {
                let f = self.file_of(s.file);
                self.d.warn(
                    &f,
                    Some(s.line),
                    format!("section [{}] is not used (group_count = 0)", s.name),
                );
            }
            let at = At {
                file: 0,
                line: None,
            };
            vec![self.group(g, None, at, anti_steal.as_ref())]
        };

        let log_level = match g.get("log_level") {
            Some(e) => LogLevel::parse(&e.value).unwrap_or_else(|| {
                self.warn(
                    e,
                    format!("log_level = {}: unknown level, using info", e.value),
                );
                LogLevel::Info
            }),
            None => LogLevel::Info,
        };
        let log_filename = self.string(g, "log_filename").map(PathBuf::from);
        let response_mode = match g.get("response_mode") {
            Some(e) if e.value == "redirect" => ResponseMode::Redirect,
            Some(e) if e.value == "proxy" => ResponseMode::Proxy,
            Some(e) => {
                self.warn(
                    e,
                    format!("response_mode = {}: neither \"proxy\" nor \"redirect\" (exact); using proxy", e.value),
                );
                ResponseMode::Proxy
            }
            None => ResponseMode::Proxy,
        };
        let if_alias_prefix = self.alias_prefixes(g);
        let flv_extension = if self.bool(g, "flv_support", false) {
            Some(self.string(g, "flv_extension").unwrap_or("flv").to_owned())
        } else {
            None
        };

        let ops = self.operations(g);

        Config {
            files: std::mem::take(&mut self.files),
            listen: ops.listen,
            url_have_group_name,
            groups,
            multi_group,
            response_mode,
            storage_sync_file_max_delay,
            use_storage_id,
            storage_ids: Arc::new(storage_ids),
            load_fdfs_parameters_from_tracker: load_from_tracker,
            tracker_servers,
            connect_timeout,
            network_timeout,
            flv_extension,
            if_alias_prefix,
            log_level,
            log_filename,
            anti_steal,
            bypass_header,
            mime: Arc::new(std::mem::take(&mut self.mime)),
            default_content_type: std::mem::take(&mut self.default_content_type),
            multi_range_enabled,
            local_ip_addrs: ops.local_ip_addrs,
            peer_ip_addrs: ops.peer_ip_addrs,
            peer_http_port: ops.peer_http_port,
            peer_scheme: ops.peer_scheme,
            peer_ca_file: ops.peer_ca_file,
            proxy_via: ops.proxy_via,
            tls_listen: ops.tls_listen,
            tls_cert_file: ops.tls_cert_file,
            tls_key_file: ops.tls_key_file,
            http2_cleartext: ops.http2_cleartext,
            watch_config: ops.watch_config,
            rate_limit_per_ip: ops.rate_limit_per_ip,
            rate_limit_burst: ops.rate_limit_burst,
            max_connections: ops.max_connections,
            max_proxy_per_peer: ops.max_proxy_per_peer,
            header_read_timeout: ops.header_read_timeout,
            peer_response_timeout: ops.peer_response_timeout.min(network_timeout),
            peer_idle_timeout: ops.peer_idle_timeout.min(network_timeout),
            max_header_size: ops.max_header_size,
            keepalive_timeout: ops.keepalive_timeout,
            trusted_proxies: ops.trusted_proxies,
            access_log: ops.access_log,
            access_log_format: ops.access_log_format,
            admin_listen: ops.admin_listen,
            shutdown_grace: ops.shutdown_grace,
            read_strategy: ops.read_strategy,
            worker_threads: ops.worker_threads,
        }
    }

    fn timeout(&mut self, g: Keys<'_>, key: &str, default: u64) -> Duration {
        let Some(e) = g.get(key) else {
            return Duration::from_secs(default);
        };
        let max = MAX_DURATION.as_secs() as i64;
        let parsed = self.value(e, |v| {
            let n = super::values::parse_int(v)?;
            if n > max {
                return Err(ValueError::OutOfRange { min: 1, max });
            }
            Ok(n)
        });
        match parsed {
            Some(v) if v > 0 => Duration::from_secs(v.unsigned_abs()),
            Some(_) => {
                self.warn(
                    e,
                    format!("{key} = {}: not positive, using {default}", e.value),
                );
                Duration::from_secs(default)
            }
            None => Duration::from_secs(default),
        }
    }

    fn mime_file(&mut self, g: Keys<'_>) {
        let Some(e) = g.get("http.mime_types_filename") else {
            return;
        };
        if e.value.is_empty() {
            return;
        }
        let lower = e.value.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            self.warn(
                e,
                format!(
                    "{} = {}: URLs are not fetched; using the built-in table",
                    e.key, e.value
                ),
            );
            return;
        }
        let path = self.resolve_path(&e.value);
        match self.env.read(&path) {
            Ok(text) => {
                self.mime.extend(MimeTable::parse(&text));
                self.files.push(path);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => self.warn(
                e,
                format!(
                    "{} = {}: {} not found; using the built-in table",
                    e.key,
                    e.value,
                    path.display()
                ),
            ),
            Err(err) => self.err(
                e,
                format!("{} = {}: {}: {err}", e.key, e.value, path.display()),
            ),
        }
    }

    /// Anti-steal settings from `layers` (later layers win per key).
    fn anti_steal(&mut self, layers: &[Keys<'_>]) -> Option<AntiSteal> {
        let pick = |key: &str| layers.iter().rev().find_map(|k| k.get(key));
        let check = pick("http.anti_steal.check_token")?;
        if !self.value(check, parse_bool)? {
            return None;
        }
        let token_ttl = match pick("http.anti_steal.token_ttl") {
            Some(e) => self
                .value(e, |v| parse_int_in(v, 1, i64::MAX))
                .unwrap_or(600),
            None => 600,
        }
        .unsigned_abs();
        let secret_key = match pick("http.anti_steal.secret_key").filter(|e| !e.value.is_empty()) {
            Some(e) => e.value.clone(),
            None => {
                self.err(
                    check,
                    "http.anti_steal.check_token = true requires a non-empty http.anti_steal.secret_key",
                );
                String::new()
            }
        };
        let token_check_fail =
            match pick("http.anti_steal.token_check_fail").filter(|e| !e.value.is_empty()) {
                Some(e) => {
                    let path = self.resolve_path(&e.value);
                    match self.env.check_file(&path) {
                        Ok(()) => {
                            if !self.files.contains(&path) {
                                self.files.push(path.clone());
                            }
                        }
                        Err(p) => self.err(
                            e,
                            format!("{} = {}: {} {p}", e.key, e.value, path.display()),
                        ),
                    }
                    let ext = path.extension().and_then(|x| x.to_str());
                    let content_type = ext
                        .and_then(|x| self.mime.lookup(x))
                        .unwrap_or(&self.default_content_type)
                        .to_owned();
                    Some(FailFile { path, content_type })
                }
                None => None,
            };
        let reject_ts_zero = match pick("http.anti_steal.reject_ts_zero") {
            Some(e) => self.value(e, parse_bool).unwrap_or(false),
            None => false,
        };
        let max_future_skew = pick("http.anti_steal.max_future_skew")
            .and_then(|e| self.value(e, |v| parse_int_in(v, 0, i64::MAX)))
            .map(i64::unsigned_abs);
        Some(AntiSteal {
            token_ttl,
            secret_key,
            token_check_fail,
            reject_ts_zero,
            max_future_skew,
        })
    }

    fn bypass_header(&mut self, g: Keys<'_>) -> Option<(http::HeaderName, String)> {
        let value = g.get("anti_steal_bypass_header_value");
        let Some(name) = g
            .get("anti_steal_bypass_header_name")
            .filter(|e| !e.value.is_empty())
        else {
            if let Some(v) = value {
                self.warn(v, "anti_steal_bypass_header_value is ignored without anti_steal_bypass_header_name");
            }
            return None;
        };
        let parsed = match http::HeaderName::from_bytes(name.value.as_bytes()) {
            Ok(n) => n,
            Err(_) => {
                self.err(
                    name,
                    format!("{} = {}: not a valid header name", name.key, name.value),
                );
                return None;
            }
        };
        Some((parsed, value.map(|v| v.value.clone()).unwrap_or_default()))
    }

    fn storage_ids(&mut self, g: Keys<'_>) -> StorageIds {
        let Some(e) = g
            .get("storage_ids_filename")
            .filter(|e| !e.value.is_empty())
        else {
            if let Some(u) = g.get("use_storage_id") {
                self.err(u, "use_storage_id = true requires storage_ids_filename");
            }
            return StorageIds::default();
        };
        let path = self.resolve_path(&e.value);
        let text = match self.env.read(&path) {
            Ok(t) => t,
            Err(err) => {
                self.err(
                    e,
                    format!("{} = {}: {}: {err}", e.key, e.value, path.display()),
                );
                return StorageIds::default();
            }
        };
        self.files.push(path.clone());
        let env = self.env;
        match StorageIds::parse_with(&text, &path, &mut |h| env.resolve(h)) {
            Ok(ids) => {
                if ids.is_empty() {
                    self.warn(e, format!("{}: no storage IDs defined", path.display()));
                }
                ids
            }
            Err(diags) => {
                self.d.errors.extend(diags);
                StorageIds::default()
            }
        }
    }

    fn trackers(&mut self, g: Keys<'_>, required: bool) -> Vec<TrackerAddr> {
        let mut out: Vec<TrackerAddr> = Vec::new();
        for e in g.all("tracker_server") {
            let Some(sa) = self.value(e, parse_server_addr) else {
                continue;
            };
            let mut hosts = sa.hosts.into_iter();
            let Some(host) = hosts.next() else { continue };
            let t = TrackerAddr {
                host,
                alt_host: hosts.next(),
                port: sa.port.unwrap_or(DEFAULT_TRACKER_PORT),
            };
            if out.contains(&t) {
                self.warn(e, format!("tracker_server {t} is listed twice"));
                continue;
            }
            if out.len() == MAX_TRACKERS {
                self.err(e, format!("more than {MAX_TRACKERS} tracker servers"));
                continue;
            }
            out.push(t);
        }
        if required && out.is_empty() {
            if let Some(e) = g.get("load_fdfs_parameters_from_tracker") {
                self.err(
                    e,
                    "load_fdfs_parameters_from_tracker = true requires at least one tracker_server",
                );
            }
        }
        out
    }

    fn alias_prefixes(&mut self, g: Keys<'_>) -> Vec<String> {
        let Some(e) = g.get("if_alias_prefix") else {
            return Vec::new();
        };
        let items: Vec<String> = split_list(&e.value).map(str::to_owned).collect();
        if items.len() > 4 {
            self.err(e, "if_alias_prefix: at most 4 prefixes");
        }
        if items.iter().any(|p| p.len() > 31) {
            self.err(e, "if_alias_prefix: a prefix is longer than 31 characters");
        }
        items
    }

    fn multi_groups(
        &mut self,
        g: Keys<'_>,
        count: i64,
        global_as: Option<&AntiSteal>,
    ) -> Vec<GroupConfig> {
        let doc = self.doc;
        for key in ["group_name", "base_path"] {
            if let Some(e) = g.get(key) {
                self.warn(
                    e,
                    format!("{key} is not used in multi-group mode (group_count > 0)"),
                );
            }
        }
        if let Some(e) = doc
            .global
            .iter()
            .find(|e| store_path_key(&e.key).is_some() || e.key == "store_path_count")
        {
            self.warn(
                e,
                "global store paths are not used in multi-group mode (group_count > 0)",
            );
        }
        let count_at = g.get("group_count").map_or(
            At {
                file: 0,
                line: None,
            },
            |e| At {
                file: e.file,
                line: Some(e.line),
            },
        );
        let mut groups: Vec<GroupConfig> = Vec::new();
        for i in 1..=count {
            let name = format!("group{i}");
            let Some(s) = doc.sections.iter().find(|s| s.name == name) else {
                self.err_at(
                    count_at,
                    format!("section [{name}] is missing (group_count = {count})"),
                );
                continue;
            };
            self.lint(&s.entries, Some(&s.name));
            let at = At {
                file: s.file,
                line: Some(s.line),
            };
            let grp = self.group(Keys(&s.entries), Some(s), at, global_as);
            if !grp.name.is_empty() && groups.iter().any(|x| x.name == grp.name) {
                self.err_at(at, format!("group {} is configured twice", grp.name));
                continue;
            }
            groups.push(grp);
        }
        for s in &doc.sections {
            let used = s
                .name
                .strip_prefix("group")
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|n| (1..=count).contains(&n) && format!("group{n}") == s.name);
            if !used {
                let f = self.file_of(s.file);
                self.d.warn(
                    &f,
                    Some(s.line),
                    format!("section [{}] is not used (group_count = {count})", s.name),
                );
            }
        }
        groups
    }

    /// One group from the global keys (`section = None`) or a `[groupN]` section.
    fn group(
        &mut self,
        k: Keys<'_>,
        section: Option<&Section>,
        at: At,
        global_as: Option<&AntiSteal>,
    ) -> GroupConfig {
        let whose = section.map_or(String::new(), |s| format!(" in [{}]", s.name));
        let name = match k.get("group_name").filter(|e| !e.value.is_empty()) {
            Some(e) if e.value.len() > MAX_GROUP_NAME_LEN => {
                self.err(
                    e,
                    format!(
                        "group_name = {}: longer than {MAX_GROUP_NAME_LEN} characters",
                        e.value
                    ),
                );
                String::new()
            }
            Some(e) => e.value.clone(),
            None => {
                self.err_at(at, format!("group_name is missing{whose}"));
                String::new()
            }
        };
        let port = self.int(k, "storage_server_port", 23000, 1, 65535);
        let storage_server_port = u16::try_from(port).unwrap_or(23000);
        let count = self.int(k, "store_path_count", 1, 1, MAX_STORE_PATHS);
        let count = usize::try_from(count).unwrap_or(1);
        let mut store_paths = Vec::with_capacity(count);
        for i in 0..count {
            let key = format!("store_path{i}");
            let (path, e) = match k.get(&key).filter(|e| !e.value.is_empty()) {
                Some(e) => (Some(e.value.as_str()), Some(e)),
                None if i == 0 && section.is_none() => {
                    match k.get("base_path").filter(|e| !e.value.is_empty()) {
                        Some(b) => (Some(b.value.as_str()), Some(b)),
                        None => (None, None),
                    }
                }
                None => (None, None),
            };
            let (Some(path), Some(e)) = (path, e) else {
                let also = if i == 0 && section.is_none() {
                    " (and no base_path)"
                } else {
                    ""
                };
                self.err_at(at, format!("{key} is missing{whose}{also}"));
                continue;
            };
            let trimmed = path.trim_end_matches('/');
            let p = PathBuf::from(if trimmed.is_empty() { "/" } else { trimmed });
            if let Err(problem) = self.env.check_dir(&p) {
                self.err(e, format!("{} = {}: {problem}", e.key, e.value));
            }
            store_paths.push(p);
        }
        for e in k.0 {
            if let Some((i, ro)) = store_path_key(&e.key) {
                if i >= count {
                    self.warn(
                        e,
                        format!("{} is beyond store_path_count = {count}; ignored", e.key),
                    );
                } else if ro {
                    self.value(e, parse_bool);
                }
            }
        }
        let anti_steal = match section {
            Some(_) if k.has_prefix("http.anti_steal.") => {
                let doc = self.doc;
                let global = Keys(&doc.global);
                if self.bool(global, "http.disabled", false) {
                    let e = k.0.iter().find(|e| e.key.starts_with("http.anti_steal."));
                    if let Some(e) = e {
                        self.warn(
                            e,
                            "http.anti_steal.* keys are ignored because http.disabled = true",
                        );
                    }
                    None
                } else {
                    self.anti_steal(&[global, k])
                }
            }
            _ => global_as.cloned(),
        };
        GroupConfig {
            name,
            storage_server_port,
            store_paths,
            anti_steal,
        }
    }
}

/// Operational keys (not in the module).
struct Ops {
    listen: Vec<SocketAddr>,
    local_ip_addrs: Option<Vec<IpAddr>>,
    peer_ip_addrs: Vec<IpAddr>,
    peer_http_port: Option<u16>,
    peer_scheme: Scheme,
    peer_ca_file: Option<PathBuf>,
    proxy_via: Vec<ProxyVia>,
    tls_listen: Vec<SocketAddr>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    http2_cleartext: bool,
    watch_config: bool,
    rate_limit_per_ip: Option<u32>,
    rate_limit_burst: Option<u32>,
    max_connections: Option<usize>,
    max_proxy_per_peer: Option<usize>,
    header_read_timeout: Duration,
    peer_response_timeout: Duration,
    peer_idle_timeout: Duration,
    max_header_size: usize,
    keepalive_timeout: Duration,
    trusted_proxies: Vec<Cidr>,
    access_log: AccessLog,
    access_log_format: AccessLogFormat,
    admin_listen: Option<SocketAddr>,
    shutdown_grace: Duration,
    read_strategy: ReadStrategy,
    worker_threads: Option<usize>,
}

/// Longest accepted duration or timeout (one day): larger values are
/// configuration errors, never a deadline that overflows at run time.
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// Smallest accepted `max_header_size` (hyper's HTTP/1 buffer minimum).
pub const MIN_HEADER_SIZE: u64 = 8 * 1024;
/// Largest accepted `max_header_size`.
pub const MAX_HEADER_SIZE: u64 = 64 * 1024 * 1024;

impl Builder<'_> {
    /// Items of a repeatable, comma-separated key, each parsed; reports
    /// duplicates and empty values.
    fn list<T: PartialEq + fmt::Display>(
        &mut self,
        k: Keys<'_>,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Vec<T> {
        let mut out: Vec<T> = Vec::new();
        for e in k.all(key) {
            if e.value.is_empty() {
                self.err(e, format!("{key}: empty value"));
                continue;
            }
            for item in split_list(&e.value) {
                match parse(item) {
                    Ok(v) if out.contains(&v) => {
                        self.err(
                            e,
                            format!(
                                "{key} = {}: {}",
                                e.value,
                                ValueError::Duplicate(v.to_string())
                            ),
                        );
                    }
                    Ok(v) => out.push(v),
                    Err(err) => self.err(e, format!("{key} = {item}: {err}")),
                }
            }
        }
        out
    }

    fn usize_opt(&mut self, k: Keys<'_>, key: &str) -> Option<usize> {
        self.opt(k, key, |v| parse_int_in(v, 1, i64::from(u32::MAX)))
            .and_then(|v| usize::try_from(v).ok())
    }

    fn duration(&mut self, k: Keys<'_>, key: &str, default: u64, allow_zero: bool) -> Duration {
        self.opt(k, key, |v| {
            let d = parse_duration(v)?;
            if (d.is_zero() && !allow_zero) || d > MAX_DURATION {
                return Err(ValueError::OutOfRange {
                    min: i64::from(!allow_zero),
                    max: MAX_DURATION.as_secs() as i64,
                });
            }
            Ok(d)
        })
        .unwrap_or(Duration::from_secs(default))
    }

    /// A file path (relative to the main conf dir) that must be readable.
    fn checked_file(&mut self, k: Keys<'_>, key: &str) -> Option<PathBuf> {
        let e = k.get(key).filter(|e| !e.value.is_empty())?;
        let path = self.resolve_path(&e.value);
        match self.env.check_file(&path) {
            Ok(()) => self.files.push(path.clone()),
            Err(p) => self.err(e, format!("{key} = {}: {} {p}", e.value, path.display())),
        }
        Some(path)
    }

    fn operations(&mut self, g: Keys<'_>) -> Ops {
        let mut listen = self.list(g, "listen", parse_socket_addr);
        if listen.is_empty() {
            listen.push(DEFAULT_LISTEN);
        }
        let local_ip_addrs = g
            .get("local_ip_addrs")
            .is_some()
            .then(|| self.list(g, "local_ip_addrs", parse_ip));
        let peer_ip_addrs = self.list(g, "peer_ip_addrs", parse_ip);
        let peer_http_port = self
            .opt(g, "peer_http_port", |v| parse_int_in(v, 1, 65535))
            .and_then(|v| u16::try_from(v).ok());
        let peer_scheme = self.keyword(
            g,
            "peer_scheme",
            &[("http", Scheme::Http), ("https", Scheme::Https)],
            &["http", "https"],
            Scheme::Http,
        );
        let peer_ca_file = self.checked_file(g, "peer_ca_file");
        let proxy_via = self.proxy_via(g);

        let tls_listen = self.list(g, "tls_listen", parse_socket_addr);
        for e in g.all("tls_listen") {
            for a in split_list(&e.value).filter_map(|v| parse_socket_addr(v).ok()) {
                if listen.contains(&a) {
                    self.err(e, format!("tls_listen {a} is also a plain listen address"));
                }
            }
        }
        let tls_cert_file = self.checked_file(g, "tls_cert_file");
        let tls_key_file = self.checked_file(g, "tls_key_file");
        if let Some(e) = g.all("tls_listen").next() {
            if tls_cert_file.is_none() || tls_key_file.is_none() {
                self.err(e, "tls_listen requires both tls_cert_file and tls_key_file");
            }
        } else if let Some(e) = g.get("tls_cert_file").or_else(|| g.get("tls_key_file")) {
            self.warn(e, format!("{} is unused without tls_listen", e.key));
        }

        let http2_cleartext = self.bool(g, "http2_cleartext", false);
        let watch_config = self.bool(g, "watch_config", false);
        let rate_limit_per_ip = self.opt(g, "rate_limit_per_ip", parse_rate);
        let rate_limit_burst = self
            .opt(g, "rate_limit_burst", |v| {
                parse_int_in(v, 1, i64::from(u32::MAX))
            })
            .and_then(|v| u32::try_from(v).ok());
        if rate_limit_per_ip.is_none() {
            if let Some(e) = g.get("rate_limit_burst") {
                self.warn(e, "rate_limit_burst is unused without rate_limit_per_ip");
            }
        }
        let max_connections = self.usize_opt(g, "max_connections");
        let max_proxy_per_peer = self.usize_opt(g, "max_proxy_per_peer");
        let worker_threads = self.usize_opt(g, "worker_threads");
        let header_read_timeout = self.duration(g, "header_read_timeout", 30, false);
        let peer_response_timeout = self.duration(g, "peer_response_timeout", 5, false);
        let peer_idle_timeout = self.duration(g, "peer_idle_timeout", 10, false);
        let keepalive_timeout = self.duration(g, "keepalive_timeout", 65, true);
        let shutdown_grace = self.duration(g, "shutdown_grace", 30, true);
        let max_header_size = self
            .opt(g, "max_header_size", |v| {
                let n = parse_size(v)?;
                if !(MIN_HEADER_SIZE..=MAX_HEADER_SIZE).contains(&n) {
                    return Err(ValueError::OutOfRange {
                        min: MIN_HEADER_SIZE as i64,
                        max: MAX_HEADER_SIZE as i64,
                    });
                }
                Ok(n)
            })
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(16 * 1024);
        let trusted_proxies = self.list(g, "trusted_proxies", |v| {
            v.parse::<Cidr>().map_err(ValueError::Cidr)
        });
        let access_log = self.access_log(g);
        let access_log_format = self.keyword(
            g,
            "access_log_format",
            &[
                ("combined", AccessLogFormat::Combined),
                ("json", AccessLogFormat::Json),
            ],
            &["combined", "json"],
            AccessLogFormat::Combined,
        );
        let admin_listen = self.opt(g, "admin_listen", parse_socket_addr);
        if let (Some(a), Some(e)) = (admin_listen, g.get("admin_listen")) {
            if listen.contains(&a) || tls_listen.contains(&a) {
                self.err(
                    e,
                    format!("admin_listen {a} is also an HTTP listen address"),
                );
            }
        }
        let read_strategy = self.keyword(
            g,
            "read_strategy",
            &[
                ("inline", ReadStrategy::Inline),
                ("threads", ReadStrategy::Threads),
            ],
            &["inline", "threads"],
            ReadStrategy::Inline,
        );
        Ops {
            listen,
            local_ip_addrs,
            peer_ip_addrs,
            peer_http_port,
            peer_scheme,
            peer_ca_file,
            proxy_via,
            tls_listen,
            tls_cert_file,
            tls_key_file,
            http2_cleartext,
            watch_config,
            rate_limit_per_ip,
            rate_limit_burst,
            max_connections,
            max_proxy_per_peer,
            header_read_timeout,
            peer_response_timeout,
            peer_idle_timeout,
            max_header_size,
            keepalive_timeout,
            trusted_proxies,
            access_log,
            access_log_format,
            admin_listen,
            shutdown_grace,
            read_strategy,
            worker_threads,
        }
    }

    fn proxy_via(&mut self, g: Keys<'_>) -> Vec<ProxyVia> {
        const NAMES: &[&str] = &["http", "storage"];
        let Some(e) = g.get("proxy_via") else {
            return vec![ProxyVia::Http];
        };
        let parsed = self.value(e, |v| {
            let mut out = Vec::new();
            for item in split_list(v) {
                let via = match item.to_ascii_lowercase().as_str() {
                    "http" => ProxyVia::Http,
                    "storage" => ProxyVia::Storage,
                    _ => return Err(ValueError::NotOneOf(NAMES)),
                };
                if out.contains(&via) {
                    return Err(ValueError::Duplicate(item.to_owned()));
                }
                out.push(via);
            }
            if out.is_empty() {
                return Err(ValueError::Empty);
            }
            Ok(out)
        });
        parsed.unwrap_or_else(|| vec![ProxyVia::Http])
    }

    fn access_log(&mut self, g: Keys<'_>) -> AccessLog {
        let Some(e) = g.get("access_log") else {
            return AccessLog::Off;
        };
        let v = e.value.as_str();
        if v.is_empty() || v.eq_ignore_ascii_case("off") {
            return AccessLog::Off;
        }
        if v.eq_ignore_ascii_case("stderr") {
            return AccessLog::Stderr;
        }
        let path = self.resolve_path(v);
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = parent {
            if !self.env.is_dir(dir) {
                self.err(
                    e,
                    format!(
                        "access_log = {v}: directory {} does not exist",
                        dir.display()
                    ),
                );
            }
        }
        AccessLog::File(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ini::parse_document;
    use std::collections::{HashMap, HashSet};

    /// In-memory filesystem rooted at /etc/fdfs.
    #[derive(Default)]
    struct FakeEnv {
        files: HashMap<PathBuf, String>,
        dirs: HashSet<PathBuf>,
    }

    impl Env for FakeEnv {
        fn read(&self, path: &Path) -> io::Result<String> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
        fn check_dir(&self, path: &Path) -> Result<(), PathProblem> {
            if self.dirs.contains(path) {
                Ok(())
            } else if self.files.contains_key(path) {
                Err(PathProblem::NotDir)
            } else {
                Err(PathProblem::Missing)
            }
        }
        fn check_file(&self, path: &Path) -> Result<(), PathProblem> {
            if self.files.contains_key(path) {
                Ok(())
            } else if self.dirs.contains(path) {
                Err(PathProblem::NotFile)
            } else {
                Err(PathProblem::Missing)
            }
        }
        fn is_dir(&self, path: &Path) -> bool {
            self.dirs.contains(path)
        }
        fn resolve(&self, host: &str) -> Option<IpAddr> {
            (host == "tracker.local").then(|| "10.1.1.1".parse().unwrap())
        }
    }

    fn env() -> FakeEnv {
        let mut e = FakeEnv::default();
        for d in ["/etc/fdfs", "/data/s0", "/data/s1", "/data/g2", "/var/log"] {
            e.dirs.insert(PathBuf::from(d));
        }
        e.files.insert("/etc/fdfs/fail.jpg".into(), "x".into());
        e.files.insert(
            "/etc/fdfs/mime.types".into(),
            "text/plain log txt\nimage/jpeg jpeg jpg\n".into(),
        );
        e.files.insert(
            "/etc/fdfs/ids.conf".into(),
            "100001 group1 10.0.0.1\n".into(),
        );
        e.files.insert("/etc/fdfs/cert.pem".into(), "c".into());
        e.files.insert("/etc/fdfs/key.pem".into(), "k".into());
        e
    }

    fn run_env(text: &str, env: &FakeEnv) -> (Config, Diags) {
        let mut d = Diags::default();
        let mut fetch = |p: &Path| env.read(p);
        let doc = parse_document(
            text,
            Path::new("/etc/fdfs/mod_fastdfs.conf"),
            Path::new("/etc/fdfs"),
            &mut fetch,
            &mut d,
        );
        let c = build(&doc, Path::new("/etc/fdfs"), env, &mut d);
        (c, d)
    }

    const BASE: &str = "group_name=group1\nstore_path0=/data/s0\n";

    fn run(extra: &str) -> (Config, Diags) {
        run_env(&format!("{BASE}{extra}"), &env())
    }

    fn ok(extra: &str) -> Config {
        let (c, d) = run(extra);
        assert!(d.errors.is_empty(), "{extra:?}: {:?}", d.errors);
        c
    }

    /// The single error for `extra`, as "line: message".
    fn error(extra: &str) -> String {
        let (_, d) = run(extra);
        assert_eq!(d.errors.len(), 1, "{extra:?}: {:?}", d.errors);
        let e = &d.errors[0];
        format!("{}: {}", e.line.unwrap_or(0), e.message)
    }

    fn warnings(extra: &str) -> Vec<String> {
        let (_, d) = run(extra);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        d.warnings
            .iter()
            .map(|w| format!("{}: {}", w.line.unwrap_or(0), w.message))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = ok("");
        assert_eq!(c.listen, [DEFAULT_LISTEN]);
        assert!(!c.url_have_group_name && !c.multi_group);
        assert_eq!(c.groups.len(), 1);
        let g = &c.groups[0];
        assert_eq!((g.name.as_str(), g.storage_server_port), ("group1", 23000));
        assert_eq!(g.store_paths, [PathBuf::from("/data/s0")]);
        assert_eq!(c.response_mode, ResponseMode::Proxy);
        assert_eq!(c.storage_sync_file_max_delay, 86400);
        assert!(!c.use_storage_id && c.storage_ids.is_empty());
        assert!(!c.load_fdfs_parameters_from_tracker && c.tracker_servers.is_empty());
        assert_eq!(c.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.network_timeout, Duration::from_secs(30));
        assert_eq!(c.flv_extension, None);
        assert!(c.if_alias_prefix.is_empty());
        assert_eq!(
            (c.log_level, c.log_filename.clone()),
            (LogLevel::Info, None)
        );
        assert!(c.anti_steal.is_none() && c.bypass_header.is_none());
        assert_eq!(c.default_content_type, DEFAULT_CONTENT_TYPE);
        assert_eq!(*c.mime, MimeTable::builtin());
        assert!(c.multi_range_enabled);
        assert_eq!(c.local_ip_addrs, None);
        assert!(c.peer_ip_addrs.is_empty());
        assert_eq!((c.peer_http_port, c.peer_scheme), (None, Scheme::Http));
        assert_eq!(c.proxy_via, [ProxyVia::Http]);
        assert!(c.tls_listen.is_empty() && c.tls_cert_file.is_none() && c.tls_key_file.is_none());
        assert!(!c.http2_cleartext && !c.watch_config);
        assert_eq!((c.rate_limit_per_ip, c.rate_limit_burst), (None, None));
        assert_eq!(
            (c.max_connections, c.max_proxy_per_peer, c.worker_threads),
            (None, None, None)
        );
        assert_eq!(c.header_read_timeout, Duration::from_secs(30));
        assert_eq!(c.max_header_size, 16384);
        assert_eq!(c.keepalive_timeout, Duration::from_secs(65));
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(
            (c.access_log.clone(), c.access_log_format),
            (AccessLog::Off, AccessLogFormat::Combined)
        );
        assert_eq!(c.admin_listen, None);
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.read_strategy, ReadStrategy::Inline);
        assert!(c.files.is_empty());
        assert_eq!(c.content_type(Some("flv")), "video/x-flv");
        assert_eq!(c.content_type(None), DEFAULT_CONTENT_TYPE);
        assert!(c.group("group1").is_some() && c.group("group2").is_none());
    }

    #[test]
    fn base_path_fallback_and_store_paths() {
        let (c, d) = run_env("group_name=g\nbase_path=/data/s1/\n", &env());
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(c.groups[0].store_paths, [PathBuf::from("/data/s1")]);
        let (_, d) = run_env("group_name=g\n", &env());
        assert_eq!(
            d.errors[0].message,
            "store_path0 is missing (and no base_path)"
        );
        assert_eq!(d.errors[0].line, None);
        let c = ok("store_path_count=2\nstore_path1=/data/s1///\nstore_path1_readonly=yes\n");
        assert_eq!(
            c.groups[0].store_paths,
            [PathBuf::from("/data/s0"), PathBuf::from("/data/s1")]
        );
        assert_eq!(error("store_path_count=2\n"), "0: store_path1 is missing");
        assert_eq!(
            error("store_path_count=2\nstore_path1=/nope\n"),
            "4: store_path1 = /nope: does not exist"
        );
        assert_eq!(
            error("store_path_count=2\nstore_path1=/etc/fdfs/fail.jpg\n"),
            "4: store_path1 = /etc/fdfs/fail.jpg: is not a directory"
        );
        assert_eq!(
            error("store_path_count=0\n"),
            "3: store_path_count = 0: must be between 1 and 256"
        );
        assert_eq!(error("store_path0_readonly=ture\n"), "3: store_path0_readonly = ture: not a boolean (expected true/yes/on/1 or false/no/off/0)");
        assert_eq!(
            warnings("store_path3=/x\n"),
            ["3: store_path3 is beyond store_path_count = 1; ignored"]
        );
        let (_, d) = run_env("group_name=g\nstore_path0=/missing\n", &env());
        assert_eq!(
            d.errors[0].to_string(),
            "/etc/fdfs/mod_fastdfs.conf:2: store_path0 = /missing: does not exist"
        );
    }

    #[test]
    fn group_name_rules() {
        let (_, d) = run_env("store_path0=/data/s0\n", &env());
        assert_eq!(d.errors[0].message, "group_name is missing");
        assert_eq!(error("group_name=\n"), "0: group_name is missing");
        assert_eq!(
            error("group_name=abcdefghijklmnopq\n"),
            "3: group_name = abcdefghijklmnopq: longer than 16 characters"
        );
        assert_eq!(
            error("storage_server_port=0\n"),
            "3: storage_server_port = 0: must be between 1 and 65535"
        );
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(
            error("url_have_group_name = ture\n"),
            "3: url_have_group_name = ture: not a boolean (expected true/yes/on/1 or false/no/off/0)"
        );
        assert!(ok("url_have_group_name = YES\n").url_have_group_name);
        assert!(ok("url_have_group_name = On\n").url_have_group_name);
        assert!(ok("url_have_group_name = 1\n").url_have_group_name);
        assert!(!ok("url_have_group_name = off\n").url_have_group_name);
        for key in [
            "flv_support",
            "use_storage_id",
            "load_fdfs_parameters_from_tracker",
            "http.disabled",
            "http.multi_range.enabled",
            "http.need_find_content_type",
            "http.anti_steal.check_token",
            "http2_cleartext",
            "watch_config",
        ] {
            assert!(
                error(&format!("{key}=2\n")).starts_with(&format!("3: {key} = 2: not a boolean")),
                "{key}"
            );
        }
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(
            ok("connect_timeout = 2 \n").connect_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            error("connect_timeout = 2 # x\n"),
            "3: connect_timeout = 2 # x: not an integer"
        );
        assert_eq!(
            error("network_timeout = abc\n"),
            "3: network_timeout = abc: not an integer"
        );
        let (c, d) = run("connect_timeout=0\nnetwork_timeout=-5\n");
        assert!(d.errors.is_empty());
        assert_eq!(
            (c.connect_timeout, c.network_timeout),
            (Duration::from_secs(10), Duration::from_secs(30))
        );
        assert_eq!(d.warnings.len(), 2);
        assert_eq!(
            ok("storage_sync_file_max_delay=3600\n").storage_sync_file_max_delay,
            3600
        );
        assert_eq!(
            error("storage_sync_file_max_delay=-1\n"),
            "3: storage_sync_file_max_delay = -1: must be at least 0"
        );
        assert_eq!(
            error("group_count=-1\n"),
            "3: group_count = -1: must be between 0 and 4096"
        );
        assert_eq!(
            error("http.server_port=0\n"),
            "3: http.server_port = 0: must be between 1 and 65535"
        );
    }

    #[test]
    fn repeated_and_unknown_keys_warn() {
        let w = warnings("connect_timeout=1\nconnect_timeout=3\nhttp.anti_steal_token=x\nstorage_sync_file_max_time=1\n");
        assert_eq!(
            w,
            [
                "4: key \"connect_timeout\" repeated (also at /etc/fdfs/mod_fastdfs.conf:3); this last value is used",
                "5: unknown key \"http.anti_steal_token\" (ignored)",
                "6: unknown key \"storage_sync_file_max_time\" (ignored)",
            ]
        );
        assert_eq!(
            ok("connect_timeout=1\nconnect_timeout=3\n").connect_timeout,
            Duration::from_secs(3)
        );
        assert_eq!(
            warnings("Connect_Timeout=1\n"),
            ["3: unknown key \"Connect_Timeout\" (ignored)"]
        );
        // Multi-value keys do not warn.
        assert!(warnings("listen=1.2.3.4:80\nlisten=1.2.3.4:81\n").is_empty());
    }

    #[test]
    fn response_mode_and_log_level() {
        assert_eq!(
            ok("response_mode=redirect\n").response_mode,
            ResponseMode::Redirect
        );
        assert_eq!(
            ok("response_mode=proxy\n").response_mode,
            ResponseMode::Proxy
        );
        let (c, d) = run("response_mode=Redirect\n");
        assert_eq!(c.response_mode, ResponseMode::Proxy);
        assert!(d.warnings[0].message.contains("neither"));
        for (v, l) in [
            ("debug", LogLevel::Debug),
            ("INFO", LogLevel::Info),
            ("notice", LogLevel::Notice),
            ("warning", LogLevel::Warn),
            ("WARN", LogLevel::Warn),
            ("err", LogLevel::Error),
            ("error", LogLevel::Error),
            ("LOG_ERR", LogLevel::Error),
            ("crit", LogLevel::Crit),
            ("alert", LogLevel::Alert),
            ("emerg", LogLevel::Emerg),
        ] {
            assert_eq!(LogLevel::parse(v), Some(l), "{v}");
        }
        assert_eq!(LogLevel::parse("verbose"), None);
        let (c, d) = run("log_level=verbose\nlog_filename=/var/log/m.log\n");
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(c.log_filename, Some(PathBuf::from("/var/log/m.log")));
        assert_eq!(LogLevel::Crit.tracing_level(), tracing::Level::ERROR);
        assert_eq!(LogLevel::Notice.tracing_level(), tracing::Level::INFO);
    }

    #[test]
    fn flv_and_alias_prefix() {
        assert_eq!(
            ok("flv_support=true\n").flv_extension.as_deref(),
            Some("flv")
        );
        assert_eq!(
            ok("flv_support=true\nflv_extension=f4v\n")
                .flv_extension
                .as_deref(),
            Some("f4v")
        );
        assert_eq!(
            ok("flv_support=false\nflv_extension=f4v\n").flv_extension,
            None
        );
        assert_eq!(
            ok("if_alias_prefix=eth, bond\n").if_alias_prefix,
            ["eth", "bond"]
        );
        assert_eq!(
            error("if_alias_prefix=a,b,c,d,e\n"),
            "3: if_alias_prefix: at most 4 prefixes"
        );
        assert!(error(&format!("if_alias_prefix={}\n", "x".repeat(32))).contains("longer than 31"));
    }

    #[test]
    fn trackers() {
        let c = ok("tracker_server=10.0.0.1\ntracker_server=10.0.0.2:22000\ntracker_server=[::1]:1\ntracker_server=10.0.0.3,47.1.1.1:5\ntracker_server=tracker.local\n");
        let t: Vec<String> = c.tracker_servers.iter().map(ToString::to_string).collect();
        assert_eq!(
            t,
            [
                "10.0.0.1:22122",
                "10.0.0.2:22000",
                "[::1]:1",
                "10.0.0.3,47.1.1.1:5",
                "tracker.local:22122"
            ]
        );
        let w = warnings("tracker_server=10.0.0.1\ntracker_server=10.0.0.1:22122\n");
        assert_eq!(w, ["4: tracker_server 10.0.0.1:22122 is listed twice"]);
        let many: String = (0..17)
            .map(|i| format!("tracker_server=10.0.0.{i}\n"))
            .collect();
        assert_eq!(error(&many), "19: more than 16 tracker servers");
        assert_eq!(
            error("tracker_server=\n"),
            "3: tracker_server = : empty value"
        );
        assert_eq!(
            error("load_fdfs_parameters_from_tracker=true\n"),
            "3: load_fdfs_parameters_from_tracker = true requires at least one tracker_server"
        );
    }

    #[test]
    fn tracker_parameters_override_local_keys() {
        let c = ok("load_fdfs_parameters_from_tracker=true\ntracker_server=t:1\nuse_storage_id=true\nstorage_sync_file_max_delay=5\n");
        assert!(!c.use_storage_id);
        assert_eq!(c.storage_sync_file_max_delay, 86400);
    }

    #[test]
    fn storage_ids() {
        let c = ok("use_storage_id=true\nstorage_ids_filename=ids.conf\n");
        assert!(c.use_storage_id);
        assert_eq!(
            c.storage_ids.get(100001).map(|e| e.hosts.clone()),
            Some(vec!["10.0.0.1".parse().unwrap()])
        );
        assert_eq!(c.files, [PathBuf::from("/etc/fdfs/ids.conf")]);
        assert_eq!(
            error("use_storage_id=true\n"),
            "3: use_storage_id = true requires storage_ids_filename"
        );
        assert!(
            error("use_storage_id=true\nstorage_ids_filename=none.conf\n")
                .starts_with("4: storage_ids_filename = none.conf: /etc/fdfs/none.conf:")
        );
        let mut e = env();
        e.files.insert(
            "/etc/fdfs/ids.conf".into(),
            "1 g 1.1.1.1\n1 g 1.1.1.2\nx g 1.1.1.3\n".into(),
        );
        let (_, d) = run_env(
            &format!("{BASE}use_storage_id=true\nstorage_ids_filename=ids.conf\n"),
            &e,
        );
        let errs: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].starts_with("/etc/fdfs/ids.conf:2: "), "{errs:?}");
        assert!(errs[1].starts_with("/etc/fdfs/ids.conf:3: "));
    }

    #[test]
    fn mime_precedence() {
        let c = ok("http.mime_types_filename=mime.types\n");
        assert_eq!(c.content_type(Some("log")), "text/plain");
        assert_eq!(c.content_type(Some("flv")), "video/x-flv");
        assert_eq!(c.content_type(Some("JPG")), "image/jpeg");
        assert_eq!(c.content_type(Some("nope")), DEFAULT_CONTENT_TYPE);
        assert_eq!(c.files, [PathBuf::from("/etc/fdfs/mime.types")]);
        let w = warnings("http.mime_types_filename=missing.types\n");
        assert_eq!(w, ["3: http.mime_types_filename = missing.types: /etc/fdfs/missing.types not found; using the built-in table"]);
        assert_eq!(
            warnings("http.mime_types_filename=http://x/mime.types\n").len(),
            1
        );
        let c = ok("http.default_content_type = text/plain\n");
        assert_eq!(c.content_type(Some("zzz")), "text/plain");
        assert_eq!(
            error("http.default_content_type = bad\u{1}\n"),
            "3: http.default_content_type = bad\u{1}: not a valid Content-Type value"
        );
        // http.disabled: no MIME file, no anti-steal, no multi-range.
        let c = ok("http.disabled=true\nhttp.mime_types_filename=missing.types\nhttp.anti_steal.check_token=true\nhttp.multi_range.enabled=true\n");
        assert!(!c.multi_range_enabled && c.anti_steal.is_none());
        assert_eq!(*c.mime, MimeTable::builtin());
        assert!(!ok("http.multi_range.enabled=false\n").multi_range_enabled);
    }

    #[test]
    fn anti_steal() {
        let c = ok("http.mime_types_filename=mime.types\nhttp.anti_steal.check_token=true\nhttp.anti_steal.secret_key=K\nhttp.anti_steal.token_check_fail=fail.jpg\nhttp.anti_steal.reject_ts_zero=yes\nhttp.anti_steal.max_future_skew=60\n");
        let a = c.anti_steal.clone().unwrap();
        assert_eq!(
            (
                a.token_ttl,
                a.secret_key.as_str(),
                a.reject_ts_zero,
                a.max_future_skew
            ),
            (600, "K", true, Some(60))
        );
        assert_eq!(
            a.token_check_fail,
            Some(FailFile {
                path: "/etc/fdfs/fail.jpg".into(),
                content_type: "image/jpeg".into()
            })
        );
        assert_eq!(c.groups[0].anti_steal, Some(a.clone()));
        assert!(!format!("{a:?}").contains("\"K\""));
        assert!(c.files.contains(&PathBuf::from("/etc/fdfs/fail.jpg")));
        let c = ok("http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=K\nhttp.anti_steal.token_ttl=900\n");
        let a = c.anti_steal.unwrap();
        assert_eq!(
            (
                a.token_ttl,
                a.token_check_fail,
                a.reject_ts_zero,
                a.max_future_skew
            ),
            (900, None, false, None)
        );
        assert_eq!(
            error("http.anti_steal.check_token=true\n"),
            "3: http.anti_steal.check_token = true requires a non-empty http.anti_steal.secret_key"
        );
        assert_eq!(error("http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=K\nhttp.anti_steal.token_ttl=0\n"), "5: http.anti_steal.token_ttl = 0: must be at least 1");
        assert_eq!(error("http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=K\nhttp.anti_steal.token_check_fail=/no/such.jpg\n"), "5: http.anti_steal.token_check_fail = /no/such.jpg: /no/such.jpg does not exist");
        assert!(error("http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=K\nhttp.anti_steal.max_future_skew=-1\n").contains("must be at least 0"));
        // Unchecked when check_token is off (the recorded configs point at absent files).
        assert!(
            ok("http.anti_steal.token_check_fail=/no/such.jpg\nhttp.anti_steal.token_ttl=x\n")
                .anti_steal
                .is_none()
        );
        // Fail file without a known extension uses the default type.
        let mut e = env();
        e.files.insert("/etc/fdfs/fail".into(), "x".into());
        let (c, d) = run_env(&format!("{BASE}http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=K\nhttp.anti_steal.token_check_fail=fail\n"), &e);
        assert!(d.errors.is_empty());
        assert_eq!(
            c.anti_steal.unwrap().token_check_fail.unwrap().content_type,
            DEFAULT_CONTENT_TYPE
        );
    }

    #[test]
    fn bypass_header() {
        let c =
            ok("anti_steal_bypass_header_name=X-Internal\nanti_steal_bypass_header_value=MARK\n");
        let (n, v) = c.bypass_header.unwrap();
        assert_eq!((n.as_str(), v.as_str()), ("x-internal", "MARK"));
        let c = ok("anti_steal_bypass_header_name=X-Internal\n");
        assert_eq!(c.bypass_header.unwrap().1, "");
        assert_eq!(
            error("anti_steal_bypass_header_name=Bad Header\n"),
            "3: anti_steal_bypass_header_name = Bad Header: not a valid header name"
        );
        assert_eq!(warnings("anti_steal_bypass_header_value=M\n").len(), 1);
    }

    const MULTI: &str = "url_have_group_name=true\ngroup_count=2\n[group1]\ngroup_name=group1\nstore_path0=/data/s0\n[group2]\ngroup_name=group2\nstorage_server_port=23001\nstore_path_count=2\nstore_path0=/data/g2\nstore_path1=/data/s1\n";

    #[test]
    fn multi_group() {
        let (c, d) = run_env(MULTI, &env());
        assert!(
            d.errors.is_empty() && d.warnings.is_empty(),
            "{:?} {:?}",
            d.errors,
            d.warnings
        );
        assert!(c.multi_group);
        assert_eq!(c.groups.len(), 2);
        assert_eq!(c.group("group2").unwrap().storage_server_port, 23001);
        assert_eq!(c.group("group2").unwrap().store_paths.len(), 2);
        assert_eq!(c.group("group1").unwrap().storage_server_port, 23000);
        // Missing url_have_group_name.
        let (_, d) = run_env(&MULTI.replace("url_have_group_name=true\n", ""), &env());
        assert_eq!(
            d.errors[0].message,
            "group_count > 0 requires url_have_group_name = true"
        );
        // Section missing, no base_path fallback, duplicate group.
        let (_, d) = run_env("url_have_group_name=true\nbase_path=/data/s0\ngroup_count=3\n[group1]\ngroup_name=g\n[group2]\ngroup_name=g\nstore_path0=/data/s0\n", &env());
        let errs: Vec<String> = d
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.line.unwrap_or(0), e.message))
            .collect();
        assert_eq!(
            errs,
            [
                "4: store_path0 is missing in [group1]",
                "6: group g is configured twice",
                "3: section [group3] is missing (group_count = 3)"
            ]
        );
        assert!(d
            .warnings
            .iter()
            .any(|w| w.message.contains("base_path is not used")));
    }

    #[test]
    fn multi_group_warnings_and_overrides() {
        let text = format!("{MULTI}[group2]\nhttp.anti_steal.check_token=true\nhttp.anti_steal.secret_key=G2\nconnect_timeout=5\nbogus=1\n[group9]\nx=1\n[]\nhttp.anti_steal.secret_key=GLOBAL\n");
        let (c, d) = run_env(&text, &env());
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert!(c.anti_steal.is_none());
        assert!(c.group("group1").unwrap().anti_steal.is_none());
        assert_eq!(
            c.group("group2")
                .unwrap()
                .anti_steal
                .as_ref()
                .unwrap()
                .secret_key,
            "G2"
        );
        let w: Vec<String> = d
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.line.unwrap_or(0), w.message))
            .collect();
        assert_eq!(
            w,
            [
                "15: key \"connect_timeout\" is a global key; ignored in section [group2]",
                "16: unknown key \"bogus\" in section [group2] (ignored)",
                "17: section [group9] is not used (group_count = 2)",
            ]
        );
        // Group disables the global check; inherits the secret otherwise.
        let text = "url_have_group_name=true\ngroup_count=2\nhttp.anti_steal.check_token=true\nhttp.anti_steal.secret_key=S\n[group1]\ngroup_name=a\nstore_path0=/data/s0\nhttp.anti_steal.check_token=false\n[group2]\ngroup_name=b\nstore_path0=/data/s0\nhttp.anti_steal.token_ttl=5\n";
        let (c, d) = run_env(text, &env());
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert!(c.anti_steal.is_some());
        assert!(c.group("a").unwrap().anti_steal.is_none());
        let b = c.group("b").unwrap().anti_steal.clone().unwrap();
        assert_eq!((b.token_ttl, b.secret_key.as_str()), (5, "S"));
    }

    #[test]
    fn single_group_ignores_sections() {
        assert_eq!(
            warnings("[group1]\ngroup_name=x\n"),
            ["3: section [group1] is not used (group_count = 0)"]
        );
    }

    #[test]
    fn listen_and_peers() {
        let c = ok("listen=127.0.0.1:8080\nlisten=[::1]:8080, 9000\nlocal_ip_addrs=10.0.0.1, ::1\npeer_ip_addrs=10.0.0.2\npeer_ip_addrs=10.0.0.3\npeer_http_port=8888\npeer_scheme=HTTPS\nproxy_via=storage, http\n");
        assert_eq!(
            c.listen,
            [
                "127.0.0.1:8080".parse().unwrap(),
                "[::1]:8080".parse().unwrap(),
                "0.0.0.0:9000".parse().unwrap()
            ]
        );
        assert_eq!(
            c.local_ip_addrs,
            Some(vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()])
        );
        assert_eq!(c.peer_ip_addrs.len(), 2);
        assert_eq!(
            (c.peer_http_port, c.peer_scheme),
            (Some(8888), Scheme::Https)
        );
        assert_eq!(c.proxy_via, [ProxyVia::Storage, ProxyVia::Http]);
        assert_eq!(
            error("listen=nope\n"),
            "3: listen = nope: not an address (expected IP:PORT, [IPv6]:PORT or PORT)"
        );
        assert_eq!(
            error("listen=1.2.3.4:1\nlisten=1.2.3.4:1\n"),
            "4: listen = 1.2.3.4:1: 1.2.3.4:1 is listed twice"
        );
        assert_eq!(error("listen=\n"), "3: listen: empty value");
        assert_eq!(
            error("local_ip_addrs=10.0.0.x\n"),
            "3: local_ip_addrs = 10.0.0.x: not an IP address"
        );
        assert_eq!(
            error("peer_ip_addrs=host\n"),
            "3: peer_ip_addrs = host: not an IP address"
        );
        assert_eq!(
            error("peer_http_port=0\n"),
            "3: peer_http_port = 0: must be between 1 and 65535"
        );
        assert_eq!(
            error("peer_scheme=ftp\n"),
            "3: peer_scheme = ftp: expected one of: http, https"
        );
        assert_eq!(
            error("proxy_via=tcp\n"),
            "3: proxy_via = tcp: expected one of: http, storage"
        );
        assert_eq!(
            error("proxy_via=http,http\n"),
            "3: proxy_via = http,http: http is listed twice"
        );
        assert_eq!(error("proxy_via=\n"), "3: proxy_via = : empty value");
    }

    #[test]
    fn tls() {
        let c =
            ok("tls_listen=0.0.0.0:443\ntls_cert_file=cert.pem\ntls_key_file=/etc/fdfs/key.pem\n");
        assert_eq!(c.tls_listen, ["0.0.0.0:443".parse().unwrap()]);
        assert_eq!(c.tls_cert_file, Some(PathBuf::from("/etc/fdfs/cert.pem")));
        assert_eq!(c.files.len(), 2);
        assert_eq!(
            error("tls_listen=0.0.0.0:443\ntls_cert_file=cert.pem\n"),
            "3: tls_listen requires both tls_cert_file and tls_key_file"
        );
        assert_eq!(
            error("tls_listen=0.0.0.0:443\ntls_cert_file=c.pem\ntls_key_file=key.pem\n"),
            "4: tls_cert_file = c.pem: /etc/fdfs/c.pem does not exist"
        );
        assert_eq!(error("listen=0.0.0.0:443\ntls_listen=0.0.0.0:443\ntls_cert_file=cert.pem\ntls_key_file=key.pem\n"), "4: tls_listen 0.0.0.0:443 is also a plain listen address");
        assert_eq!(
            warnings("tls_cert_file=cert.pem\n"),
            ["3: tls_cert_file is unused without tls_listen"]
        );
    }

    #[test]
    fn limits_and_timeouts() {
        let c = ok("rate_limit_per_ip=100/s\nrate_limit_burst=20\nmax_connections=1000\nmax_proxy_per_peer=8\nworker_threads=4\nheader_read_timeout=10s\nkeepalive_timeout=0\nshutdown_grace=500ms\nmax_header_size=32K\nhttp2_cleartext=on\nwatch_config=yes\n");
        assert_eq!(
            (c.rate_limit_per_ip, c.rate_limit_burst),
            (Some(100), Some(20))
        );
        assert_eq!(
            (c.max_connections, c.max_proxy_per_peer, c.worker_threads),
            (Some(1000), Some(8), Some(4))
        );
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.keepalive_timeout, Duration::ZERO);
        assert_eq!(c.shutdown_grace, Duration::from_millis(500));
        assert_eq!(c.max_header_size, 32768);
        assert!(c.http2_cleartext && c.watch_config);
        assert_eq!(ok("rate_limit_per_ip=5\n").rate_limit_per_ip, Some(5));
        assert_eq!(
            error("rate_limit_per_ip=0\n"),
            "3: rate_limit_per_ip = 0: must be between 1 and 4294967295"
        );
        assert_eq!(
            error("rate_limit_per_ip=fast\n"),
            "3: rate_limit_per_ip = fast: not a rate (e.g. 100/s or 100)"
        );
        assert_eq!(
            error("rate_limit_burst=0\nrate_limit_per_ip=1\n"),
            "3: rate_limit_burst = 0: must be between 1 and 4294967295"
        );
        assert_eq!(
            warnings("rate_limit_burst=5\n"),
            ["3: rate_limit_burst is unused without rate_limit_per_ip"]
        );
        for key in ["max_connections", "max_proxy_per_peer", "worker_threads"] {
            assert_eq!(
                error(&format!("{key}=0\n")),
                format!("3: {key} = 0: must be between 1 and 4294967295")
            );
        }
        assert_eq!(
            error("header_read_timeout=0\n"),
            "3: header_read_timeout = 0: must be between 1 and 86400"
        );
        assert_eq!(
            error("keepalive_timeout=soon\n"),
            "3: keepalive_timeout = soon: not a duration (e.g. 30, 30s, 500ms, 2m, 1h)"
        );
        assert_eq!(
            error("shutdown_grace=-1\n"),
            "3: shutdown_grace = -1: not a duration (e.g. 30, 30s, 500ms, 2m, 1h)"
        );
        assert_eq!(
            error("max_header_size=1K\n"),
            "3: max_header_size = 1K: must be between 8192 and 67108864"
        );
        assert_eq!(
            error("max_header_size=lots\n"),
            "3: max_header_size = lots: not a size (e.g. 16384, 16K, 1M)"
        );
    }

    #[test]
    fn proxies_logs_admin() {
        let c = ok("trusted_proxies=10.0.0.0/8, ::1/128\ntrusted_proxies=192.168.1.1\naccess_log=/var/log/access.log\naccess_log_format=JSON\nadmin_listen=127.0.0.1:9100\nread_strategy=threads\n");
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[0].contains("10.9.9.9".parse().unwrap()));
        assert_eq!(c.access_log, AccessLog::File("/var/log/access.log".into()));
        assert_eq!(c.access_log_format, AccessLogFormat::Json);
        assert_eq!(c.admin_listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.read_strategy, ReadStrategy::Threads);
        assert_eq!(ok("access_log=stderr\n").access_log, AccessLog::Stderr);
        assert_eq!(ok("access_log=off\n").access_log, AccessLog::Off);
        assert_eq!(
            ok("access_log=access.log\n").access_log,
            AccessLog::File("/etc/fdfs/access.log".into())
        );
        assert_eq!(
            error("access_log=/nope/a.log\n"),
            "3: access_log = /nope/a.log: directory /nope does not exist"
        );
        assert_eq!(
            error("trusted_proxies=10.0.0.1/8\n"),
            "3: trusted_proxies = 10.0.0.1/8: address has bits set beyond the prefix length"
        );
        assert_eq!(
            error("trusted_proxies=x\n"),
            "3: trusted_proxies = x: not an IP address or CIDR range"
        );
        assert_eq!(
            error("access_log_format=xml\n"),
            "3: access_log_format = xml: expected one of: combined, json"
        );
        assert_eq!(
            error("admin_listen=x\n"),
            "3: admin_listen = x: not an address (expected IP:PORT, [IPv6]:PORT or PORT)"
        );
        assert_eq!(
            error("admin_listen=0.0.0.0:8888\n"),
            "3: admin_listen 0.0.0.0:8888 is also an HTTP listen address"
        );
        assert_eq!(
            error("read_strategy=mmap\n"),
            "3: read_strategy = mmap: expected one of: inline, threads"
        );
    }

    #[test]
    fn errors_are_all_reported() {
        let (_, d) = run("url_have_group_name=ture\nflv_support=maybe\nconnect_timeout=x\n");
        assert_eq!(d.errors.len(), 3);
    }

    #[test]
    fn store_path_keys() {
        assert_eq!(store_path_key("store_path0"), Some((0, false)));
        assert_eq!(store_path_key("store_path12_readonly"), Some((12, true)));
        assert_eq!(store_path_key("store_path"), None);
        assert_eq!(store_path_key("store_path_count"), None);
        assert_eq!(store_path_key("store_pathx"), None);
        assert_eq!(store_path_key("store_path_readonly"), None);
    }

    #[test]
    fn example_conf_documents_every_key() {
        let text = format!(
            "{}\n{}",
            include_str!("../../conf/mod_fastdfs.conf"),
            include_str!("../../conf/http.conf")
        );
        let documented: HashSet<&str> = text
            .lines()
            .filter_map(|l| {
                l.trim_start_matches('#')
                    .split_once('=')
                    .map(|(k, _)| k.trim())
            })
            .collect();
        for k in GLOBAL_KEYS
            .iter()
            .chain(&ANTI_STEAL_KEYS)
            .chain(&GROUP_KEYS)
        {
            assert!(documented.contains(k), "{k} is not documented in conf/");
        }
        for k in ["store_path0", "store_path0_readonly", "#include http.conf"] {
            assert!(text.contains(k), "{k}");
        }
    }
}
