//! The keys of the nginx.conf directives around the module
//! (docs/operations.md "Directives around the module"): caching headers,
//! `add_header`, CORS, `valid_referers`, `limit_rate`, gzip (global or per
//! `[groupN]`), and `allow`/`deny` (global). A group section that sets any
//! of the first kind gets its own set: each key from the section, else the
//! global one; a repeatable key (`add_header`, `valid_referers`,
//! `gzip_types`) set in the section replaces the global list, as nginx
//! inherits `add_header` only into locations that have none.

use http::{HeaderName, HeaderValue};

use super::build::Builder;
use super::ini::Entry;
use super::keys::Keys;
use super::model::{AccessRule, Directives};
use super::values::{parse_bool, parse_int_in, parse_size, Cidr};
use crate::http::cache_policy::{CachePolicy, Expires};
use crate::http::compress::Gzip;
use crate::http::cors::{AllowHeaders, Cors, Origins, DEFAULT_ALLOW_HEADERS};
use crate::http::referer::ValidReferers;
use crate::pace::RateSpec;

/// The keys a `[groupN]` section may override.
pub(super) const GROUP_KEYS: &[&str] = &[
    "cache_control",
    "cache_control_appender",
    "cache_control_error",
    "expires",
    "add_header",
    "cors_allow_origin",
    "cors_allow_headers",
    "cors_expose_headers",
    "cors_max_age",
    "valid_referers",
    "limit_rate",
    "limit_rate_after",
    "gzip",
    "gzip_types",
    "gzip_min_length",
    "gzip_comp_level",
];

/// Headers the server frames or negotiates itself: `add_header` may not set them.
const RESERVED: &[&str] = &[
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "content-range",
    "content-encoding",
    "server",
    "date",
];

/// Default `cors_max_age`, seconds.
const CORS_MAX_AGE: u64 = 600;

/// Longest `expires` and `cors_max_age` (10 years, nginx's `max`).
const MAX_SECONDS: u64 = 315_360_000;

impl Builder<'_> {
    /// Whether a section sets any key [`GROUP_KEYS`] names.
    pub(super) fn has_directives(k: Keys<'_>) -> bool {
        k.0.iter().any(|e| GROUP_KEYS.contains(&e.key.as_str()))
    }

    /// The directives, each key from the last layer that sets it.
    pub(super) fn directives(&mut self, layers: &[Keys<'_>]) -> Directives {
        let pick = |key: &str| layers.iter().rev().find_map(|k| k.get(key));
        let all = |key: &'static str| -> Vec<&Entry> {
            layers
                .iter()
                .rev()
                .map(|k| k.all(key).collect::<Vec<_>>())
                .find(|v| !v.is_empty())
                .unwrap_or_default()
        };

        let mut cache = CachePolicy::default();
        for (key, slot) in [
            ("cache_control", &mut cache.file),
            ("cache_control_appender", &mut cache.appender),
            ("cache_control_error", &mut cache.error),
        ] {
            if let Some(e) = pick(key) {
                *slot = self.header_value(e);
            }
        }
        if let Some(e) = pick("expires") {
            cache.expires = self.value(e, parse_expires).flatten();
        }

        let mut add_headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for e in all("add_header") {
            if let Some(h) = self.add_header(e) {
                add_headers.push(h);
            }
        }

        let cors = pick("cors_allow_origin").and_then(|e| self.cors(e, &pick));

        let valid_referers = {
            let entries = all("valid_referers");
            if entries.is_empty() {
                None
            } else {
                let mut v = ValidReferers::default();
                for e in entries {
                    for item in e.value.split_whitespace() {
                        if item == "server_names" {
                            self.err(e, "valid_referers: server_names is not supported (no virtual hosts); list the names");
                        } else if let Err(why) = v.push(item) {
                            self.err(e, format!("valid_referers = {item}: {why}"));
                        }
                    }
                    if e.value.trim().is_empty() {
                        self.err(e, "valid_referers: empty value");
                    }
                }
                Some(v)
            }
        };

        let rate = pick("limit_rate").and_then(|e| self.value(e, parse_size));
        let after = pick("limit_rate_after")
            .and_then(|e| self.value(e, parse_size))
            .unwrap_or(0);
        let limit_rate = rate.filter(|&r| r > 0).map(|bytes_per_sec| RateSpec {
            bytes_per_sec,
            after,
        });

        let gzip_on = pick("gzip")
            .and_then(|e| self.value(e, parse_bool))
            .unwrap_or(false);
        let mut types: Vec<String> = Vec::new();
        for e in all("gzip_types") {
            for t in e.value.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
                let t = t.to_ascii_lowercase();
                if t != "*" && (t.matches('/').count() != 1 || t.contains('*')) {
                    self.err(
                        e,
                        format!("gzip_types = {t}: not a media type (type/subtype) or *"),
                    );
                } else if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
        let min_length = pick("gzip_min_length")
            .and_then(|e| self.value(e, parse_size))
            .unwrap_or(20);
        let level = pick("gzip_comp_level")
            .and_then(|e| self.value(e, |v| parse_int_in(v, 1, 9)))
            .unwrap_or(1) as u32;
        let gzip = gzip_on.then_some(Gzip {
            types,
            min_length,
            level,
        });

        Directives {
            cache,
            add_headers,
            cors,
            valid_referers,
            limit_rate,
            gzip,
        }
    }

    fn header_value(&mut self, e: &Entry) -> Option<HeaderValue> {
        match HeaderValue::from_str(e.value.trim()) {
            Ok(v) if !e.value.trim().is_empty() => Some(v),
            _ => {
                self.err(
                    e,
                    format!("{} = {}: not a valid header value", e.key, e.value),
                );
                None
            }
        }
    }

    /// `add_header = Name: value`.
    fn add_header(&mut self, e: &Entry) -> Option<(HeaderName, HeaderValue)> {
        let Some((name, value)) = e.value.split_once(':') else {
            self.err(
                e,
                format!("add_header = {}: expected \"Name: value\"", e.value),
            );
            return None;
        };
        let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            self.err(e, format!("add_header = {}: not a header name", e.value));
            return None;
        };
        if RESERVED.contains(&name.as_str()) {
            self.err(
                e,
                format!(
                    "add_header = {}: {name} is set by the server itself",
                    e.value
                ),
            );
            return None;
        }
        match HeaderValue::from_str(value.trim()) {
            Ok(v) => Some((name, v)),
            Err(_) => {
                self.err(
                    e,
                    format!("add_header = {}: not a valid header value", e.value),
                );
                None
            }
        }
    }

    fn cors<'k>(
        &mut self,
        origin: &Entry,
        pick: &dyn Fn(&str) -> Option<&'k Entry>,
    ) -> Option<Cors> {
        let v = origin.value.trim();
        let origins = if v == "*" {
            Origins::Any
        } else {
            let mut list = Vec::new();
            for o in v.split([',', ' ']).filter(|o| !o.is_empty()) {
                let rest = o
                    .strip_prefix("https://")
                    .or_else(|| o.strip_prefix("http://"));
                if rest.map_or(true, |r| r.is_empty() || r.contains('/')) {
                    self.err(
                        origin,
                        format!(
                            "cors_allow_origin = {o}: not * nor an origin (scheme://host[:port])"
                        ),
                    );
                    continue;
                }
                list.push(o.to_owned());
            }
            if list.is_empty() {
                if v.is_empty() {
                    self.err(origin, "cors_allow_origin: empty value");
                }
                return None;
            }
            Origins::List(list)
        };
        let allow_headers = match pick("cors_allow_headers") {
            Some(e) if e.value.trim() == "*" => AllowHeaders::Any,
            Some(e) => {
                let mut l = Vec::new();
                for h in e.value.split([',', ' ']).filter(|h| !h.is_empty()) {
                    match HeaderName::from_bytes(h.as_bytes()) {
                        Ok(n) => l.push(n.as_str().to_owned()),
                        Err(_) => {
                            self.err(e, format!("cors_allow_headers = {h}: not a header name"))
                        }
                    }
                }
                AllowHeaders::List(l)
            }
            None => AllowHeaders::List(
                DEFAULT_ALLOW_HEADERS
                    .iter()
                    .map(|h| h.to_string())
                    .collect(),
            ),
        };
        let expose_headers = pick("cors_expose_headers").and_then(|e| self.header_value(e));
        let max_age = match pick("cors_max_age") {
            Some(e) => self.value(e, parse_seconds).unwrap_or(CORS_MAX_AGE),
            None => CORS_MAX_AGE,
        };
        Some(Cors {
            origins,
            allow_headers,
            expose_headers,
            max_age,
        })
    }

    /// `allow`/`deny` rules in file order (global section).
    pub(super) fn access_rules(&mut self, g: Keys<'_>) -> Vec<AccessRule> {
        let mut rules = Vec::new();
        for e in g.0.iter().filter(|e| e.key == "allow" || e.key == "deny") {
            let allow = e.key == "allow";
            for item in e.value.split([',', ' ']).filter(|i| !i.is_empty()) {
                if item == "all" {
                    rules.push(AccessRule { allow, range: None });
                    continue;
                }
                match item.parse::<Cidr>() {
                    Ok(c) => rules.push(AccessRule {
                        allow,
                        range: Some(c),
                    }),
                    Err(why) => self.err(e, format!("{} = {item}: {why}", e.key)),
                }
            }
            if e.value.trim().is_empty() {
                self.err(e, format!("{}: empty value", e.key));
            }
        }
        rules
    }
}

/// Seconds with nginx's units (`ms` refused): `30`, `30s`, `15m`, `12h`,
/// `30d`, `1w`, `1M` (30 days), `1y` (365 days).
fn parse_seconds(s: &str) -> Result<u64, super::values::ValueError> {
    use super::values::ValueError;
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| ValueError::NotDuration)?;
    let mul = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(ValueError::NotDuration),
    };
    let v = n.checked_mul(mul).ok_or(ValueError::NotDuration)?;
    if v > MAX_SECONDS {
        return Err(ValueError::OutOfRange {
            min: 0,
            max: MAX_SECONDS as i64,
        });
    }
    Ok(v)
}

/// `expires`: `off` (`None`), `max`, `epoch`, or a time from now.
fn parse_expires(s: &str) -> Result<Option<Expires>, super::values::ValueError> {
    match s.trim() {
        "off" => Ok(None),
        "max" => Ok(Some(Expires::Max)),
        "epoch" => Ok(Some(Expires::Epoch)),
        v => parse_seconds(v).map(|n| Some(Expires::After(n))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_nginx_units() {
        assert_eq!(parse_seconds("30d"), Ok(30 * 86_400));
        assert_eq!(parse_seconds("90"), Ok(90));
        assert_eq!(parse_seconds("1y"), Ok(365 * 86_400));
        assert!(parse_seconds("11y").is_err());
        assert!(parse_seconds("5ms").is_err());
        assert!(parse_seconds("-1").is_err());
        assert_eq!(parse_expires("off"), Ok(None));
        assert_eq!(parse_expires("max"), Ok(Some(Expires::Max)));
        assert_eq!(parse_expires("12h"), Ok(Some(Expires::After(43_200))));
    }
}
