//! Builds the typed [`Config`] from a parsed INI document: shared value
//! helpers and the composition of the module's keys ([`super::module`]) and
//! this project's operational keys ([`super::ops`]).
//!
//! Filesystem and resolver access goes through [`Env`], so the rules here
//! are testable without disk. Deliberate deviations from the module:
//! unparsable booleans/integers are errors; a missing include or mime types
//! file is a warning (built-in table used); `token_check_fail` is relative to
//! the main file's directory (the module: process CWD); every store path is
//! checked, `store_path0` included; `base_path` is only needed as the
//! fallback for a missing `store_path0`; a group name longer than 16
//! characters is an error (the module truncates it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::Env;
use super::ini::{Document, Entry};
use super::keys::{key_def, store_path_key, Keys, Scope};
use super::mime::MimeTable;
use super::model::*;
use super::storage_ids::StorageIds;
use super::values::{parse_bool, parse_int_in, ValueError};
use super::Diags;

/// Where a missing key would have been expected.
#[derive(Clone, Copy)]
pub(crate) struct At {
    pub(super) file: usize,
    pub(super) line: Option<u32>,
}

pub(crate) struct Builder<'a> {
    pub(super) doc: &'a Document,
    pub(super) base_dir: &'a Path,
    pub(super) env: &'a dyn Env,
    pub(super) d: &'a mut Diags,
    pub(super) files: Vec<PathBuf>,
    pub(super) mime: MimeTable,
    pub(super) default_content_type: String,
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
    pub(super) fn file_of(&self, file: usize) -> PathBuf {
        self.doc.files.get(file).cloned().unwrap_or_default()
    }

    pub(super) fn err(&mut self, e: &Entry, msg: impl Into<String>) {
        let f = self.file_of(e.file);
        self.d.err(&f, Some(e.line), msg);
    }

    pub(super) fn warn(&mut self, e: &Entry, msg: impl Into<String>) {
        let f = self.file_of(e.file);
        self.d.warn(&f, Some(e.line), msg);
    }

    pub(super) fn err_at(&mut self, at: At, msg: impl Into<String>) {
        let f = self.file_of(at.file);
        self.d.err(&f, at.line, msg);
    }

    /// Applies `parse` to an entry's value, reporting failure at its location.
    pub(super) fn value<T>(
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

    pub(super) fn bool(&mut self, k: Keys<'_>, key: &str, default: bool) -> bool {
        match k.get(key) {
            Some(e) => self.value(e, parse_bool).unwrap_or(default),
            None => default,
        }
    }

    pub(super) fn int(&mut self, k: Keys<'_>, key: &str, default: i64, min: i64, max: i64) -> i64 {
        match k.get(key) {
            Some(e) => self
                .value(e, |v| parse_int_in(v, min, max))
                .unwrap_or(default),
            None => default,
        }
    }

    pub(super) fn opt<T>(
        &mut self,
        k: Keys<'_>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        k.get(key).and_then(|e| self.value(e, parse))
    }

    /// A non-empty string value.
    pub(super) fn string<'k>(&self, k: Keys<'k>, key: &str) -> Option<&'k str> {
        k.get(key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A case-insensitive keyword.
    pub(super) fn resolve_path(&self, v: &str) -> PathBuf {
        self.base_dir.join(v)
    }

    pub(super) fn config(&mut self) -> Config {
        let doc = self.doc;
        let g = Keys(&doc.global);
        self.lint(&doc.global, None);

        // http.conf keys (§2).
        let http_disabled = self.flag(g, "http.disabled");
        let mut multi_range_enabled = false;
        if !http_disabled {
            self.flag(g, "http.need_find_content_type");
            self.number(g, "http.server_port");
            multi_range_enabled = self.flag(g, "http.multi_range.enabled");
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
        let connect_timeout = self.seconds(g, "connect_timeout");
        let network_timeout = self.seconds(g, "network_timeout");

        let load_from_tracker = self.flag(g, "load_fdfs_parameters_from_tracker");
        let mut storage_sync_file_max_delay = 86400;
        let mut use_storage_id = false;
        let mut storage_ids = StorageIds::default();
        if !load_from_tracker {
            storage_sync_file_max_delay =
                self.number(g, "storage_sync_file_max_delay").unsigned_abs();
            use_storage_id = self.flag(g, "use_storage_id");
            if use_storage_id {
                storage_ids = self.storage_ids(g);
            }
        }

        let tracker_servers = self.trackers(g, load_from_tracker);
        let url_have_group_name = self.flag(g, "url_have_group_name");
        let group_count = self.number(g, "group_count");
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
        let flv_extension = if self.flag(g, "flv_support") {
            Some(self.string(g, "flv_extension").unwrap_or("flv").to_owned())
        } else {
            None
        };

        let ops = self.operations(g);
        let directives = Arc::new(self.directives(&[g]));
        let access_rules = self.access_rules(g);
        let upload = self.upload(g, &ops.listen);

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
            tls: ops.tls,
            http2_cleartext: ops.http2_cleartext,
            watch_config: ops.watch_config,
            rate_limit: ops.rate_limit,
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
            directives,
            access_rules,
            upload,
        }
    }
}

impl Builder<'_> {
    /// Warns about unknown keys and repeated single-value keys, in file order.
    pub(super) fn lint(&mut self, entries: &[Entry], section: Option<&str>) {
        for (i, e) in entries.iter().enumerate() {
            let key = e.key.as_str();
            let known = match section {
                None => key_def(key).is_some() || store_path_key(key).is_some(),
                Some(_) => {
                    key_def(key).is_some_and(|k| k.scope == Scope::Both)
                        || store_path_key(key).is_some()
                }
            };
            if !known {
                let msg = match section {
                    Some(s) if key_def(key).is_some() => {
                        format!("key \"{key}\" is a global key; ignored in section [{s}]")
                    }
                    Some(s) => format!("unknown key \"{key}\" in section [{s}] (ignored)"),
                    None => format!("unknown key \"{key}\" (ignored)"),
                };
                self.warn(e, msg);
                continue;
            }
            // Repeated single-value keys: warn at the last occurrence.
            if key_def(key).is_some_and(|k| k.repeatable) {
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

#[cfg(test)]
mod tests;
