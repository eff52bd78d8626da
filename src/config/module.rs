//! The module's own keys (docs/config-keys.md §1, §1.1, §2): timeouts,
//! MIME file, anti-steal, storage IDs, trackers, groups and store paths.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::ini::Section;
use super::keys::{store_path_key, Keys};
use super::mime::MimeTable;
use super::model::*;
use super::storage_ids::{StorageIds, MAX_GROUP_NAME_LEN};
use super::values::{parse_bool, parse_int_in, parse_server_addr, split_list};

use super::build::{At, Builder};

impl Builder<'_> {
    pub(super) fn timeout(&mut self, g: Keys<'_>, key: &str, default: u64) -> Duration {
        let Some(e) = g.get(key) else {
            return Duration::from_secs(default);
        };
        let max = super::model::MAX_DURATION.as_secs() as i64;
        let parsed = self.value(e, |v| {
            let n = super::values::parse_int(v)?;
            if n > max {
                return Err(super::values::ValueError::OutOfRange { min: 1, max });
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

    pub(super) fn mime_file(&mut self, g: Keys<'_>) {
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
    pub(super) fn anti_steal(&mut self, layers: &[Keys<'_>]) -> Option<AntiSteal> {
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

    pub(super) fn bypass_header(&mut self, g: Keys<'_>) -> Option<(http::HeaderName, String)> {
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

    pub(super) fn storage_ids(&mut self, g: Keys<'_>) -> StorageIds {
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

    pub(super) fn trackers(&mut self, g: Keys<'_>, required: bool) -> Vec<TrackerAddr> {
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

    pub(super) fn alias_prefixes(&mut self, g: Keys<'_>) -> Vec<String> {
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

    pub(super) fn multi_groups(
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
    pub(super) fn group(
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
        let port = self.number(k, "storage_server_port");
        let storage_server_port = u16::try_from(port).unwrap_or(23000);
        let count = self.number(k, "store_path_count");
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
                if self.flag(global, "http.disabled") {
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
        let directives = match section {
            Some(_) if Self::has_directives(k) => {
                let doc = self.doc;
                Some(std::sync::Arc::new(
                    self.directives(&[Keys(&doc.global), k]),
                ))
            }
            _ => None,
        };
        GroupConfig {
            name,
            storage_server_port,
            store_paths,
            anti_steal,
            directives,
        }
    }
}
