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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::mime::MimeTable;
use super::storage_ids::StorageIds;
use super::values::Cidr;

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

/// Smallest accepted `max_header_size` (hyper's HTTP/1 buffer minimum).
pub const MIN_HEADER_SIZE: u64 = 8 * 1024;

/// Longest accepted duration or timeout (one day): larger values are
/// configuration errors, never a deadline that overflows at run time.
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);
/// Largest accepted `max_header_size`.
pub const MAX_HEADER_SIZE: u64 = 64 * 1024 * 1024;

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
    /// The section's own directives (its keys over the global ones);
    /// `None` = the global [`Config::directives`].
    pub directives: Option<Arc<Directives>>,
}

/// The nginx.conf directives operators put around the module
/// (docs/operations.md "Directives around the module"), global or a
/// `[groupN]` section's keys over the global ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `cache_control`, `expires`, `cache_control_appender`, `cache_control_error`.
    pub cache: crate::http::cache_policy::CachePolicy,
    /// `add_header`: set on successful answers.
    pub add_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// `cors_*`; `Some` iff `cors_allow_origin` is set.
    pub cors: Option<crate::http::cors::Cors>,
    /// `valid_referers`.
    pub valid_referers: Option<crate::http::referer::ValidReferers>,
    /// `limit_rate`, `limit_rate_after`; `None` = unlimited.
    pub limit_rate: Option<crate::pace::RateSpec>,
    /// `gzip`, `gzip_types`, `gzip_min_length`, `gzip_comp_level`; `Some` iff `gzip`.
    pub gzip: Option<crate::http::compress::Gzip>,
}

impl Directives {
    /// Whether no directive is set (answers are left as they are).
    pub fn is_empty(&self) -> bool {
        !self.cache.is_set()
            && self.add_headers.is_empty()
            && self.cors.is_none()
            && self.valid_referers.is_none()
            && self.limit_rate.is_none()
            && self.gzip.is_none()
    }
}

/// One `allow` or `deny` rule (docs/operations.md "Address rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRule {
    /// `allow` (true) or `deny`.
    pub allow: bool,
    /// The range; `None` = `all`.
    pub range: Option<Cidr>,
}

impl fmt::Display for AccessRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allow { "allow" } else { "deny" };
        match self.range {
            Some(c) => write!(f, "{verb} {}/{}", c.addr(), c.prefix_len()),
            None => write!(f, "{verb} all"),
        }
    }
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

/// HTTPS listeners (`tls_listen`) and the certificate and key they serve:
/// one is never configured without the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    /// Addresses (`tls_listen`, repeatable).
    pub listen: Vec<SocketAddr>,
    /// PEM certificate chain (`tls_cert_file`).
    pub cert_file: PathBuf,
    /// PEM private key (`tls_key_file`).
    pub key_file: PathBuf,
}

/// A per-client-IP request rate (`rate_limit_per_ip`) with its burst
/// (`rate_limit_burst`): a burst exists only with a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second.
    pub per_ip: u32,
    /// Burst above the rate; `None` = the limiter's default.
    pub burst: Option<u32>,
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
    /// TLS listeners with their certificate and key; `None` without `tls_listen`.
    pub tls: Option<TlsListen>,
    /// Accept HTTP/2 prior-knowledge on plain listeners.
    pub http2_cleartext: bool,
    /// Reload when one of [`Config::files`] changes.
    pub watch_config: bool,
    /// Per-client-IP request rate and its burst; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
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
    /// The directives around the module (global keys).
    pub directives: Arc<Directives>,
    /// `allow`/`deny` rules in file order; empty = everyone.
    pub access_rules: Vec<AccessRule>,
    /// The upload API (`upload.enabled`); `None` = off.
    pub upload: Option<Arc<super::apps::UploadConfig>>,
}

impl Config {
    /// The HTTPS listen addresses (empty without `tls_listen`).
    pub fn tls_listen(&self) -> &[SocketAddr] {
        self.tls.as_ref().map_or(&[], |t| &t.listen)
    }

    /// Requests per second per client IP; `None` = unlimited.
    pub fn rate_limit_per_ip(&self) -> Option<u32> {
        self.rate_limit.map(|r| r.per_ip)
    }

    /// Burst above the rate; `None` without a rate or without a burst.
    pub fn rate_limit_burst(&self) -> Option<u32> {
        self.rate_limit.and_then(|r| r.burst)
    }

    /// Whether any directive is set, globally or for a group.
    pub fn has_directives(&self) -> bool {
        !self.directives.is_empty() || self.groups.iter().any(|g| g.directives.is_some())
    }

    /// The directives for a group (its section's, else the global ones).
    pub fn directives_for<'a>(&'a self, group: Option<&'a GroupConfig>) -> &'a Arc<Directives> {
        group
            .and_then(|g| g.directives.as_ref())
            .unwrap_or(&self.directives)
    }

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
