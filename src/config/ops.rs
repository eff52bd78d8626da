//! This project's operational keys (docs/config-keys.md §6, §7): listeners,
//! peers, TLS, limits, timeouts, logs, admin listener.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::build::Builder;
use super::keys::Keys;
use super::model::*;
use super::values::{parse_duration, parse_rate, parse_socket_addr, split_list, Cidr, ValueError};

/// Operational keys (not in the module).
pub(super) struct Ops {
    pub(super) listen: Vec<SocketAddr>,
    pub(super) local_ip_addrs: Option<Vec<IpAddr>>,
    pub(super) peer_ip_addrs: Vec<IpAddr>,
    pub(super) peer_http_port: Option<u16>,
    pub(super) peer_scheme: Scheme,
    pub(super) peer_ca_file: Option<PathBuf>,
    pub(super) proxy_via: Vec<ProxyVia>,
    pub(super) tls: Option<TlsListen>,
    pub(super) http2_cleartext: bool,
    pub(super) watch_config: bool,
    pub(super) rate_limit: Option<RateLimit>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_proxy_per_peer: Option<usize>,
    pub(super) header_read_timeout: Duration,
    pub(super) peer_response_timeout: Duration,
    pub(super) peer_idle_timeout: Duration,
    pub(super) max_header_size: usize,
    pub(super) keepalive_timeout: Duration,
    pub(super) trusted_proxies: Vec<Cidr>,
    pub(super) access_log: AccessLog,
    pub(super) access_log_format: AccessLogFormat,
    pub(super) admin_listen: Option<SocketAddr>,
    pub(super) shutdown_grace: Duration,
    pub(super) read_strategy: ReadStrategy,
    pub(super) worker_threads: Option<usize>,
}

impl Builder<'_> {
    /// Items of a repeatable, comma-separated key, each parsed; reports
    /// duplicates and empty values.
    pub(super) fn list<T: PartialEq + fmt::Display>(
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

    pub(super) fn duration(
        &mut self,
        k: Keys<'_>,
        key: &str,
        default: u64,
        allow_zero: bool,
    ) -> Duration {
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
    pub(super) fn checked_file(&mut self, k: Keys<'_>, key: &str) -> Option<PathBuf> {
        let e = k.get(key).filter(|e| !e.value.is_empty())?;
        let path = self.resolve_path(&e.value);
        match self.env.check_file(&path) {
            Ok(()) => self.files.push(path.clone()),
            Err(p) => self.err(e, format!("{key} = {}: {} {p}", e.value, path.display())),
        }
        Some(path)
    }

    pub(super) fn operations(&mut self, g: Keys<'_>) -> Ops {
        let mut listen = self.socket_addrs(g, "listen");
        if listen.is_empty() {
            listen.push(DEFAULT_LISTEN);
        }
        let local_ip_addrs = g
            .get("local_ip_addrs")
            .is_some()
            .then(|| self.ips(g, "local_ip_addrs"));
        let peer_ip_addrs = self.ips(g, "peer_ip_addrs");
        let peer_http_port = self.port(g, "peer_http_port");
        let peer_scheme = self.word(g, "peer_scheme", [Scheme::Http, Scheme::Https]);
        let peer_ca_file = self.file(g, "peer_ca_file");
        let proxy_via = self.proxy_via(g);
        // docs/replication-lag.md "HTTPS peers": proxying over HTTPS without a
        // CA could only ever fail, so the pair is refused at load; redirect
        // mode and proxy_via = storage need no CA.
        let redirect = g
            .get("response_mode")
            .is_some_and(|e| e.value == "redirect");
        if let Some(e) = g.get("peer_scheme") {
            if peer_scheme == Scheme::Https
                && peer_ca_file.is_none()
                && !redirect
                && proxy_via.contains(&ProxyVia::Http)
            {
                self.err(
                    e,
                    "peer_scheme = https needs peer_ca_file (a PEM CA bundle) to proxy over HTTP; set it, or proxy_via = storage, or response_mode = redirect",
                );
            }
        }

        let tls_listen = self.socket_addrs(g, "tls_listen");
        for e in g.all("tls_listen") {
            for a in split_list(&e.value).filter_map(|v| parse_socket_addr(v).ok()) {
                if listen.contains(&a) {
                    self.err(e, format!("tls_listen {a} is also a plain listen address"));
                }
            }
        }
        let tls_cert_file = self.file(g, "tls_cert_file");
        let tls_key_file = self.file(g, "tls_key_file");
        let mut tls = None;
        if let Some(e) = g.all("tls_listen").next() {
            match (tls_cert_file, tls_key_file) {
                (Some(cert_file), Some(key_file)) => {
                    tls = Some(TlsListen {
                        listen: tls_listen.clone(),
                        cert_file,
                        key_file,
                    });
                }
                _ => self.err(e, "tls_listen requires both tls_cert_file and tls_key_file"),
            }
        } else if let Some(e) = g.get("tls_cert_file").or_else(|| g.get("tls_key_file")) {
            self.warn(e, format!("{} is unused without tls_listen", e.key));
        }

        let http2_cleartext = self.flag(g, "http2_cleartext");
        let watch_config = self.flag(g, "watch_config");
        let rate_limit_per_ip = self.opt(g, "rate_limit_per_ip", parse_rate);
        let rate_limit_burst = self
            .count(g, "rate_limit_burst")
            .and_then(|v| u32::try_from(v).ok());
        if rate_limit_per_ip.is_none() {
            if let Some(e) = g.get("rate_limit_burst") {
                self.warn(e, "rate_limit_burst is unused without rate_limit_per_ip");
            }
        }
        let rate_limit = rate_limit_per_ip.map(|per_ip| RateLimit {
            per_ip,
            burst: rate_limit_burst,
        });
        let max_connections = self.count(g, "max_connections");
        let max_proxy_per_peer = self.count(g, "max_proxy_per_peer");
        let worker_threads = self.count(g, "worker_threads");
        let header_read_timeout = self.span(g, "header_read_timeout");
        let peer_response_timeout = self.span(g, "peer_response_timeout");
        let peer_idle_timeout = self.span(g, "peer_idle_timeout");
        let keepalive_timeout = self.span(g, "keepalive_timeout");
        let shutdown_grace = self.span(g, "shutdown_grace");
        let max_header_size =
            usize::try_from(self.size(g, "max_header_size")).unwrap_or(usize::MAX);
        let trusted_proxies = self.cidrs(g, "trusted_proxies");
        let access_log = self.access_log(g);
        let access_log_format = self.word(
            g,
            "access_log_format",
            [AccessLogFormat::Combined, AccessLogFormat::Json],
        );
        let admin_listen = self.socket_addr(g, "admin_listen");
        if let (Some(a), Some(e)) = (admin_listen, g.get("admin_listen")) {
            if listen.contains(&a) || tls_listen.contains(&a) {
                self.err(
                    e,
                    format!("admin_listen {a} is also an HTTP listen address"),
                );
            }
        }
        let read_strategy = self.word(
            g,
            "read_strategy",
            [ReadStrategy::Inline, ReadStrategy::Threads],
        );
        Ops {
            listen,
            local_ip_addrs,
            peer_ip_addrs,
            peer_http_port,
            peer_scheme,
            peer_ca_file,
            proxy_via,
            tls,
            http2_cleartext,
            watch_config,
            rate_limit,
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

    pub(super) fn proxy_via(&mut self, g: Keys<'_>) -> Vec<ProxyVia> {
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

    pub(super) fn access_log(&mut self, g: Keys<'_>) -> AccessLog {
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
