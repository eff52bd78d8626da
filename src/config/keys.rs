//! The keys this project reads, by section, and the lint that warns about
//! unknown and repeated keys (docs/config-keys.md §1, §1.1, §2, §5, §7).

use super::build::Builder;
use super::ini::Entry;

/// `http.anti_steal.*` keys (also allowed in `[groupN]`).
pub(super) const ANTI_STEAL_KEYS: [&str; 6] = [
    "http.anti_steal.check_token",
    "http.anti_steal.token_ttl",
    "http.anti_steal.secret_key",
    "http.anti_steal.token_check_fail",
    "http.anti_steal.reject_ts_zero",
    "http.anti_steal.max_future_skew",
];

/// Keys of the global section (besides `store_path<i>[_readonly]` and [`ANTI_STEAL_KEYS`]).
pub(super) const GLOBAL_KEYS: [&str; 59] = [
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
pub(super) const GROUP_KEYS: [&str; 3] = ["group_name", "storage_server_port", "store_path_count"];

/// Keys whose repeated occurrences are all used.
pub(super) const MULTI_KEYS: [&str; 6] = [
    "tracker_server",
    "listen",
    "tls_listen",
    "trusted_proxies",
    "local_ip_addrs",
    "peer_ip_addrs",
];

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

impl Builder<'_> {
    /// Warns about unknown keys and repeated single-value keys, in file order.
    pub(super) fn lint(&mut self, entries: &[Entry], section: Option<&str>) {
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
}
