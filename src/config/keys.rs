//! The key table: every key read, where it may appear, whether repeats are
//! all used, and its doc line in the annotated `conf/mod_fastdfs.conf`
//! (docs/config-keys.md §1, §1.1, §2, §5, §7). The lint that warns about
//! unknown and repeated keys (`build`) reads it, and a test holds `conf/`
//! to it.

use super::ini::Entry;
use super::model::{MAX_HEADER_SIZE, MAX_STORE_PATHS, MIN_HEADER_SIZE};

/// Where a key may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// The global section only.
    Global,
    /// The global section and `[groupN]` sections.
    Both,
}

/// How a key's value is read, with its default and bounds: the table's
/// parser column (`read` turns a row into a typed value; composite rules
/// that involve other keys stay with the code of their concern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    /// `true`/`false` and libfastcommon's other spellings.
    Bool(bool),
    /// A whole number within bounds.
    Int { default: i64, min: i64, max: i64 },
    /// Whole seconds; `<= 0` means the default (the module's timeouts).
    Secs { default: u64 },
    /// A positive count up to 2^32 - 1; unset = none (unlimited).
    Count,
    /// A TCP port; unset = none.
    Port,
    /// A duration (`30`, `30s`, `5m`, `1h`) up to a day, default in seconds.
    Duration { default: u64, zero: bool },
    /// A size in bytes (`16384`, `16K`, `1M`) within bounds.
    Size { default: u64, min: u64, max: u64 },
    /// One of these words, case-insensitive; the first is the default.
    Word(&'static [&'static str]),
    /// `IP:PORT`, `[IPv6]:PORT` or `PORT`; unset = none.
    SocketAddr,
    /// A list of socket addresses (repeatable or comma-separated).
    SocketAddrs,
    /// A list of IP addresses.
    Ips,
    /// A list of CIDR blocks or addresses.
    Cidrs,
    /// A readable file, relative to the main file's directory.
    File,
    /// Read by rules that involve other keys or the module's quirks, in
    /// `build`, `module` or `ops`.
    Rules,
}

/// One key: its name, where it may appear, whether repeats are all used,
/// how its value is read, and the first line of its comment in the
/// annotated `conf/` sample.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyDef {
    pub(super) key: &'static str,
    pub(super) scope: Scope,
    pub(super) repeatable: bool,
    pub(super) value: Value,
    /// Checked against `conf/` by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) doc: &'static str,
}

/// Every key read (besides `store_path<i>[_readonly]`): the one table the
/// unknown-key and repeated-key lint and the sample check use.
#[rustfmt::skip]
pub(super) const KEYS: &[KeyDef] = &[
    KeyDef { key: "connect_timeout", scope: Scope::Global, repeatable: false, value: Value::Secs { default: 10 }, doc: "Connect timeout to trackers and storages, seconds. Default 10; <= 0 means 10." },
    KeyDef { key: "network_timeout", scope: Scope::Global, repeatable: false, value: Value::Secs { default: 30 }, doc: "Send/receive timeout on tracker and storage sockets, seconds. Default 30; <= 0 means 30." },
    KeyDef { key: "base_path", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Fallback for store_path0 when it is not set. Not used in multi-group mode." },
    KeyDef { key: "load_fdfs_parameters_from_tracker", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "Ask a tracker at start for storage_sync_file_max_delay and use_storage_id (and the" },
    KeyDef { key: "storage_sync_file_max_delay", scope: Scope::Global, repeatable: false, value: Value::Int { default: 86_400, min: 0, max: i64::MAX }, doc: "Files older than this (seconds since their creation, from the file ID) that are" },
    KeyDef { key: "use_storage_id", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "File IDs carry numeric storage IDs instead of IP addresses. Default false." },
    KeyDef { key: "storage_ids_filename", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Storage ID table (docs/file-id.md §7); required when use_storage_id = true:" },
    KeyDef { key: "tracker_server", scope: Scope::Global, repeatable: true, value: Value::Rules, doc: "Tracker servers, repeatable (at most 16, duplicates dropped). Forms:" },
    KeyDef { key: "storage_server_port", scope: Scope::Both, repeatable: false, value: Value::Int { default: 23_000, min: 1, max: 65_535 }, doc: "FastDFS (not HTTP) port of the group's storages (used by proxy_via = storage)." },
    KeyDef { key: "group_name", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "The group this node serves (at most 16 characters). Required." },
    KeyDef { key: "url_have_group_name", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "URLs look like /group1/M00/00/00/xxx (true) or /M00/00/00/xxx (false)." },
    KeyDef { key: "store_path_count", scope: Scope::Both, repeatable: false, value: Value::Int { default: 1, min: 1, max: MAX_STORE_PATHS }, doc: "Number of store paths (M00, M01, ...). Default 1, at most 256." },
    KeyDef { key: "log_level", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "emerg alert crit error warn notice info debug (case-insensitive; prefixes such as" },
    KeyDef { key: "log_filename", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Log file; empty = standard error. Relative to the working directory." },
    KeyDef { key: "response_mode", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "What to answer for a file that is not here yet:" },
    KeyDef { key: "if_alias_prefix", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Comma list (at most 4) of interface-name prefixes used to find this host's" },
    KeyDef { key: "flv_support", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "FLV pseudo-streaming (?start=&end= byte offsets). Default false." },
    KeyDef { key: "flv_extension", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Extension FLV streaming applies to (case-sensitive). Default flv." },
    KeyDef { key: "group_count", scope: Scope::Global, repeatable: false, value: Value::Int { default: 0, min: 0, max: MAX_STORE_PATHS * 16 }, doc: "Number of [groupN] sections. 0 = single-group mode (the keys above). > 0:" },
    KeyDef { key: "anti_steal_bypass_header_name", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Requests carrying this header (name case-insensitive) with exactly this value" },
    KeyDef { key: "anti_steal_bypass_header_value", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Requests carrying this header (name case-insensitive) with exactly this value" },
    KeyDef { key: "http.disabled", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "true: all http.* keys are ignored: no anti-steal check, built-in MIME table only," },
    KeyDef { key: "http.need_find_content_type", scope: Scope::Global, repeatable: false, value: Value::Bool(true), doc: "Read by the module but without effect on answers; accepted. Default true." },
    KeyDef { key: "http.multi_range.enabled", scope: Scope::Global, repeatable: false, value: Value::Bool(true), doc: "Multipart answers for requests with several ranges; false answers them 416." },
    KeyDef { key: "http.server_port", scope: Scope::Global, repeatable: false, value: Value::Int { default: 80, min: 1, max: 65_535 }, doc: "HTTP port the module believed it served; no effect (the port comes from" },
    KeyDef { key: "http.mime_types_filename", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "MIME types file (FastDFS syntax: \"<type> <ext> <ext> ...\"), relative to the" },
    KeyDef { key: "http.default_content_type", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Content-Type for unknown or absent extensions. Default application/octet-stream." },
    KeyDef { key: "http.anti_steal.check_token", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "Anti-steal tokens: URLs need ?token=&ts= with" },
    KeyDef { key: "http.anti_steal.token_ttl", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "Maximum token age in seconds (now - ts). Default 600; must be >= 1." },
    KeyDef { key: "http.anti_steal.secret_key", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "Secret shared with the application; required when check_token = true." },
    KeyDef { key: "http.anti_steal.token_check_fail", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "File answered (200, Content-Type from the MIME table by its extension) when a" },
    KeyDef { key: "http.anti_steal.reject_ts_zero", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Refuse ts = 0 (never-expiring tokens). Default false." },
    KeyDef { key: "http.anti_steal.max_future_skew", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Refuse ts more than this many seconds in the future; unset = no limit." },
    KeyDef { key: "listen", scope: Scope::Global, repeatable: true, value: Value::SocketAddrs, doc: "HTTP listen addresses, repeatable or comma-separated: IP:PORT, [IPv6]:PORT or" },
    KeyDef { key: "local_ip_addrs", scope: Scope::Global, repeatable: true, value: Value::Ips, doc: "This host's addresses, comma-separated; unset = discovered from the interfaces" },
    KeyDef { key: "peer_ip_addrs", scope: Scope::Global, repeatable: true, value: Value::Ips, doc: "Extra addresses accepted as members of the group (besides storage_ids and the" },
    KeyDef { key: "peer_http_port", scope: Scope::Global, repeatable: false, value: Value::Port, doc: "HTTP port of the peers; unset = the port the request arrived on." },
    KeyDef { key: "peer_scheme", scope: Scope::Global, repeatable: false, value: Value::Word(&["http", "https"]), doc: "Scheme used to reach peers: http (default) or https." },
    KeyDef { key: "peer_ca_file", scope: Scope::Global, repeatable: false, value: Value::File, doc: "Scheme used to reach peers: http (default) or https." },
    KeyDef { key: "proxy_via", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "How proxy mode fetches from a peer, in order of preference (comma list):" },
    KeyDef { key: "tls_listen", scope: Scope::Global, repeatable: true, value: Value::SocketAddrs, doc: "HTTPS listen addresses (same forms). Needs tls_cert_file and tls_key_file." },
    KeyDef { key: "tls_cert_file", scope: Scope::Global, repeatable: false, value: Value::File, doc: "HTTPS listen addresses (same forms). Needs tls_cert_file and tls_key_file." },
    KeyDef { key: "tls_key_file", scope: Scope::Global, repeatable: false, value: Value::File, doc: "HTTPS listen addresses (same forms). Needs tls_cert_file and tls_key_file." },
    KeyDef { key: "http2_cleartext", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "Accept HTTP/2 with prior knowledge on the plain listeners. Default false." },
    KeyDef { key: "watch_config", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "Reload automatically when this file or a file it names changes. Default false." },
    KeyDef { key: "rate_limit_per_ip", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Requests per second per client IP (\"N/s\" or \"N\"); unset = unlimited. Over the" },
    KeyDef { key: "rate_limit_burst", scope: Scope::Global, repeatable: false, value: Value::Count, doc: "Requests per second per client IP (\"N/s\" or \"N\"); unset = unlimited. Over the" },
    KeyDef { key: "max_connections", scope: Scope::Global, repeatable: false, value: Value::Count, doc: "Concurrent client connections; unset = unlimited. Beyond it, new connections" },
    KeyDef { key: "max_proxy_per_peer", scope: Scope::Global, repeatable: false, value: Value::Count, doc: "Concurrent proxied requests per peer; unset = unlimited." },
    KeyDef { key: "peer_response_timeout", scope: Scope::Global, repeatable: false, value: Value::Duration { default: 5, zero: false }, doc: "Time a peer has to send its response head (HTTP) or file-info answer" },
    KeyDef { key: "peer_idle_timeout", scope: Scope::Global, repeatable: false, value: Value::Duration { default: 10, zero: false }, doc: "Longest stall inside a relayed peer body; then the client connection is" },
    KeyDef { key: "header_read_timeout", scope: Scope::Global, repeatable: false, value: Value::Duration { default: 30, zero: false }, doc: "Time to receive the request headers (also bounds the wait for the next request" },
    KeyDef { key: "max_header_size", scope: Scope::Global, repeatable: false, value: Value::Size { default: 16 * 1024, min: MIN_HEADER_SIZE, max: MAX_HEADER_SIZE }, doc: "Largest request head (sizes: 16384, 16K, 1M). Default 16K; 8K .. 64M. Larger: 431." },
    KeyDef { key: "keepalive_timeout", scope: Scope::Global, repeatable: false, value: Value::Duration { default: 65, zero: true }, doc: "A connection with no request in flight for this long is closed; 0 disables" },
    KeyDef { key: "trusted_proxies", scope: Scope::Global, repeatable: true, value: Value::Cidrs, doc: "Addresses whose X-Forwarded-For is trusted (comma list or repeated; CIDR or" },
    KeyDef { key: "access_log", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "NEW. Access log: off (default), stderr, or a file path. SIGUSR1 reopens it" },
    KeyDef { key: "access_log_format", scope: Scope::Global, repeatable: false, value: Value::Word(&["combined", "json"]), doc: "NEW. Access log format: combined (default): nginx's combined format followed by" },
    KeyDef { key: "admin_listen", scope: Scope::Global, repeatable: false, value: Value::SocketAddr, doc: "Admin endpoint (/live, /ready, /metrics in Prometheus format, /status page and JSON);" },
    KeyDef { key: "shutdown_grace", scope: Scope::Global, repeatable: false, value: Value::Duration { default: 30, zero: true }, doc: "On SIGTERM/SIGINT: stop accepting, let in-flight requests finish for up to this" },
    KeyDef { key: "read_strategy", scope: Scope::Global, repeatable: false, value: Value::Word(&["inline", "threads"]), doc: "How file bytes are read: inline (on the runtime threads, sendfile for ranges" },
    KeyDef { key: "worker_threads", scope: Scope::Global, repeatable: false, value: Value::Count, doc: "Worker threads (nginx worker_processes); unset = number of CPUs." },
    KeyDef { key: "cache_control", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Cache-Control of 200/206/304 answers for files that never change under their" },
    KeyDef { key: "expires", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. nginx's expires for the same answers: a time (30d, 12h, 1y; s m h d w M y)," },
    KeyDef { key: "cache_control_appender", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Cache-Control of appender files (they change): default no-cache once" },
    KeyDef { key: "cache_control_error", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Cache-Control of failed answers (4xx, 5xx, the token-fail file); unset = none." },
    KeyDef { key: "add_header", scope: Scope::Both, repeatable: true, value: Value::Rules, doc: "NEW. Extra response header \"Name: value\", repeatable, on 200/201/204/206/301/302/" },
    KeyDef { key: "cors_allow_origin", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. CORS: * or a list of origins (https://app.example.com, comma-separated)." },
    KeyDef { key: "cors_allow_headers", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Request headers a preflight may ask for (comma list, or *). Default" },
    KeyDef { key: "cors_expose_headers", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Access-Control-Expose-Headers value (response headers scripts may read)." },
    KeyDef { key: "cors_max_age", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Access-Control-Max-Age of preflight answers (seconds or 10m, 1h...). Default 600." },
    KeyDef { key: "valid_referers", scope: Scope::Both, repeatable: true, value: Value::Rules, doc: "NEW. nginx's valid_referers: requests whose Referer matches none of these get 403." },
    KeyDef { key: "allow", scope: Scope::Global, repeatable: true, value: Value::Rules, doc: "NEW. nginx's allow/deny: client address rules (CIDR, address or all), checked in" },
    KeyDef { key: "deny", scope: Scope::Global, repeatable: true, value: Value::Rules, doc: "NEW. nginx's allow/deny: client address rules (CIDR, address or all), checked in" },
    KeyDef { key: "limit_rate", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. nginx's limit_rate: bytes per second per answer (512k, 1M); 0 or unset = no" },
    KeyDef { key: "limit_rate_after", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. nginx's limit_rate_after: bytes sent at full speed before limit_rate applies." },
    KeyDef { key: "gzip", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. gzip answers of gzip_types to clients that accept it. Default false." },
    KeyDef { key: "gzip_types", scope: Scope::Both, repeatable: true, value: Value::Rules, doc: "NEW. Media types compressed besides text/html (space or comma list; * = any)." },
    KeyDef { key: "gzip_min_length", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. Smallest body compressed (size). Default 20. Bodies over 8M are never" },
    KeyDef { key: "gzip_comp_level", scope: Scope::Both, repeatable: false, value: Value::Rules, doc: "NEW. gzip level 1 (fastest, default) .. 9." },
    KeyDef { key: "upload.enabled", scope: Scope::Global, repeatable: false, value: Value::Bool(false), doc: "NEW. Upload API (docs/upload.md): POST/PUT uploads into FastDFS, download and" },
    KeyDef { key: "upload.prefix", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Path prefix of the API on the HTTP listeners. Default /api." },
    KeyDef { key: "upload.public_base_url", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Base of the url in upload answers (http:// or https://); unset = this node" },
    KeyDef { key: "upload.max_concurrent", scope: Scope::Global, repeatable: false, value: Value::Int { default: 32, min: 1, max: 4096 }, doc: "Uploads in progress at once (1-4096); more are answered 503 + Retry-After." },
    KeyDef { key: "upload.stall_timeout", scope: Scope::Global, repeatable: false, value: Value::Duration { default: 30, zero: false }, doc: "A request body that sends nothing for this long is dropped (temp file" },
    KeyDef { key: "upload.temp_dir", scope: Scope::Global, repeatable: false, value: Value::Rules, doc: "Directory for multipart parts spooled before they go to the storage;" },
    KeyDef { key: "upload.app", scope: Scope::Global, repeatable: true, value: Value::Rules, doc: "One application per line, repeatable:" },
];

/// The table entry of `key`.
pub(super) fn key_def(key: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.key == key)
}

/// `store_path<i>` → `Some((i, false))`, `store_path<i>_readonly` → `Some((i, true))`.
pub(super) fn store_path_key(key: &str) -> Option<(usize, bool)> {
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
pub(super) struct Keys<'a>(pub(super) &'a [Entry]);

impl<'a> Keys<'a> {
    pub(super) fn get(self, key: &str) -> Option<&'a Entry> {
        self.0.iter().rev().find(|e| e.key == key)
    }
    pub(super) fn all(self, key: &'a str) -> impl Iterator<Item = &'a Entry> {
        self.0.iter().filter(move |e| e.key == key)
    }
    pub(super) fn has_prefix(self, prefix: &str) -> bool {
        self.0.iter().any(|e| e.key.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The annotated sample and the table agree: every table key appears
    /// in `conf/` (set or commented) with its doc line, and every key set or
    /// commented there is in the table.
    #[test]
    fn sample_conf_matches_the_table() {
        let text = format!(
            "{}\n{}",
            include_str!("../../conf/mod_fastdfs.conf"),
            include_str!("../../conf/http.conf")
        );
        let lines: Vec<&str> = text.lines().collect();
        let set_keys: Vec<&str> = lines
            .iter()
            .filter_map(|l| {
                let l = l.strip_prefix('#').unwrap_or(l);
                let (k, _) = l.split_once('=')?;
                let k = k.trim_end();
                let ok = !k.is_empty()
                    && !k.starts_with(' ')
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
                ok.then_some(k)
            })
            .collect();
        for k in KEYS {
            assert!(set_keys.contains(&k.key), "{} is not in conf/", k.key);
            assert!(
                lines
                    .iter()
                    .any(|l| l.trim_start_matches('#').trim() == k.doc),
                "doc line of {} is not in conf/: {:?}",
                k.key,
                k.doc
            );
        }
        for k in &set_keys {
            assert!(
                key_def(k).is_some() || store_path_key(k).is_some(),
                "{k} is set in conf/ but not in the key table"
            );
        }
        for k in ["store_path0", "store_path0_readonly", "#include http.conf"] {
            assert!(text.contains(k), "{k}");
        }
    }

    #[test]
    fn table_has_no_repeats() {
        for (i, k) in KEYS.iter().enumerate() {
            assert!(KEYS[..i].iter().all(|x| x.key != k.key), "{}", k.key);
        }
    }
}
