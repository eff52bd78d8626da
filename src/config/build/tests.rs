//! Unit tests of the builder over an in-memory file system.

use super::*;
use crate::config::fs::PathProblem;
use crate::config::ini::parse_document;
use crate::config::keys::store_path_key;
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    assert!(c.tls.is_none() && c.tls_listen().is_empty());
    assert!(!c.http2_cleartext && !c.watch_config);
    assert_eq!(c.rate_limit, None);
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
    assert_eq!(
        error("store_path0_readonly=ture\n"),
        "3: store_path0_readonly = ture: not a boolean (expected true/yes/on/1 or false/no/off/0)"
    );
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
    let c = ok("anti_steal_bypass_header_name=X-Internal\nanti_steal_bypass_header_value=MARK\n");
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
    let c = ok("listen=127.0.0.1:8080\nlisten=[::1]:8080, 9000\nlocal_ip_addrs=10.0.0.1, ::1\npeer_ip_addrs=10.0.0.2\npeer_ip_addrs=10.0.0.3\npeer_http_port=8888\npeer_scheme=HTTPS\nresponse_mode=redirect\nproxy_via=storage, http\n");
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
    let c = ok("tls_listen=0.0.0.0:443\ntls_cert_file=cert.pem\ntls_key_file=/etc/fdfs/key.pem\n");
    assert_eq!(c.tls_listen(), ["0.0.0.0:443".parse().unwrap()]);
    let tls = c.tls.as_ref().expect("tls_listen with its files");
    assert_eq!(tls.cert_file, PathBuf::from("/etc/fdfs/cert.pem"));
    assert_eq!(tls.key_file, PathBuf::from("/etc/fdfs/key.pem"));
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
        (c.rate_limit_per_ip(), c.rate_limit_burst()),
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
    assert_eq!(ok("rate_limit_per_ip=5\n").rate_limit_per_ip(), Some(5));
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
fn https_peers_without_ca_are_refused_at_load() {
    let e = error("peer_scheme=https\n");
    assert!(e.contains("peer_scheme = https needs peer_ca_file"), "{e}");
    assert!(error("peer_scheme=https\nproxy_via=storage,http\n").contains("needs peer_ca_file"));
    assert!(warnings("peer_scheme=https\nresponse_mode=redirect\n").is_empty());
    assert!(warnings("peer_scheme=https\nproxy_via=storage\n").is_empty());
    assert!(warnings("peer_scheme=https\npeer_ca_file=cert.pem\n").is_empty());
}

/// The key table's parser column is what reads each typed key: a value
/// no parser of any kind accepts is an error at that key's line, for every
/// row that is not read by composite rules.
#[test]
fn every_typed_row_is_read_by_its_parser() {
    use super::super::keys::{Value, KEYS};
    let mut typed = 0;
    for def in KEYS.iter().filter(|d| d.value != Value::Rules) {
        typed += 1;
        // The other upload.* keys are read only with the API on.
        let (on, line) = match def.key.strip_prefix("upload.") {
            Some(k) if k != "enabled" => ("upload.enabled=true\n", 4),
            _ => ("", 3),
        };
        let (_, d) = run(&format!("{on}{}=%%bad%%\n", def.key));
        assert!(
            d.errors
                .iter()
                .any(|e| e.line == Some(line) && e.message.starts_with(def.key)),
            "{}: {:?}",
            def.key,
            d.errors
        );
        assert!(
            !d.errors.iter().any(|e| e.message.starts_with("internal")),
            "{:?}",
            d.errors
        );
    }
    assert!(typed >= 35, "{typed}");
}

#[test]
fn directives_default_to_none() {
    let c = ok("");
    assert!(c.directives.is_empty() && !c.has_directives());
    assert!(c.access_rules.is_empty());
    assert!(c.groups[0].directives.is_none());
}

#[test]
fn directives_are_typed() {
    let c = ok("cache_control = public, max-age=60\nexpires = 1d\nadd_header = X-A: 1\nadd_header = X-B: two words\n\
cors_allow_origin = https://a.example, http://b.example:8080\ncors_max_age = 10m\nvalid_referers = none blocked *.example.com\n\
limit_rate = 512k\nlimit_rate_after = 1M\ngzip = on\ngzip_types = text/plain, application/json\ngzip_comp_level = 6\n\
deny = 10.0.0.9\nallow = 10.0.0.0/8, ::1\ndeny = all\n");
    let d = &c.directives;
    assert_eq!(d.cache.file.as_ref().unwrap(), "public, max-age=60");
    assert_eq!(
        d.cache.expires,
        Some(crate::http::cache_policy::Expires::After(86_400))
    );
    let names: Vec<_> = d
        .add_headers
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    assert_eq!(names, ["x-a=\"1\"", "x-b=\"two words\""]);
    let cors = d.cors.as_ref().unwrap();
    assert_eq!(
        cors.origins,
        crate::http::cors::Origins::List(vec![
            "https://a.example".into(),
            "http://b.example:8080".into()
        ])
    );
    assert_eq!(cors.max_age, 600);
    assert!(d.valid_referers.as_ref().unwrap().admits(None));
    assert_eq!(
        d.limit_rate,
        Some(crate::pace::RateSpec {
            bytes_per_sec: 512 * 1024,
            after: 1 << 20
        })
    );
    let g = d.gzip.as_ref().unwrap();
    assert_eq!((g.types.len(), g.level, g.min_length), (2, 6, 20));
    let rules: Vec<String> = c.access_rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        rules,
        [
            "deny 10.0.0.9/32",
            "allow 10.0.0.0/8",
            "allow ::1/128",
            "deny all"
        ]
    );
    assert!(ok("limit_rate = 0").directives.limit_rate.is_none());
    assert!(ok("expires = off").directives.is_empty());
}

#[test]
fn bad_directive_values_are_errors_at_their_line() {
    for (text, want) in [
        ("expires = soon", "3: expires = soon"),
        (
            "add_header = X-A",
            "3: add_header = X-A: expected \"Name: value\"",
        ),
        (
            "add_header = Content-Length: 1",
            "3: add_header = Content-Length: 1: content-length is set by the server itself",
        ),
        (
            "cors_allow_origin = example.com",
            "3: cors_allow_origin = example.com: not * nor an origin",
        ),
        ("valid_referers = a.*.com", "3: valid_referers = a.*.com"),
        (
            "valid_referers = server_names",
            "3: valid_referers: server_names is not supported",
        ),
        ("deny = nowhere", "3: deny = nowhere"),
        ("gzip_comp_level = 0", "3: gzip_comp_level = 0"),
        (
            "gzip_types = text",
            "3: gzip_types = text: not a media type",
        ),
        (
            "cache_control = a\u{1}b",
            "3: cache_control = a\u{1}b: not a valid header value",
        ),
    ] {
        let e = error(text);
        assert!(e.starts_with(want), "{text}: {e}");
    }
}

#[test]
fn a_group_section_layers_its_directives_over_the_global_ones() {
    let text = format!(
        "cache_control = max-age=5\nadd_header = X-G: global\nallow = 10.0.0.0/8\n{MULTI}\
cors_allow_origin = *\nadd_header = X-G: two\nallow = 1.2.3.4\n"
    );
    let (c, d) = run_env(&text, &env());
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.message.contains("\"allow\" is a global key")),
        "{:?}",
        d.warnings
    );
    assert!(c.groups[0].directives.is_none());
    let g2 = c.groups[1].directives.as_ref().expect("group2 has its own");
    assert_eq!(g2.cache.file.as_ref().unwrap(), "max-age=5", "inherited");
    assert!(g2.cors.is_some());
    assert_eq!(g2.add_headers.len(), 1);
    assert_eq!(
        g2.add_headers[0].1, "two",
        "the section's list replaces the global one"
    );
    assert_eq!(
        c.directives_for(Some(&c.groups[0])).add_headers[0].1,
        "global"
    );
    assert_eq!(c.access_rules.len(), 1, "allow/deny are global");
}

#[test]
fn upload_api_is_off_by_default_and_validated() {
    assert!(ok("").upload.is_none());
    // Without upload.enabled the other keys are not read.
    assert!(ok("upload.prefix = bad\n").upload.is_none());

    let mut e = env();
    e.files
        .insert("/etc/fdfs/cms.key".into(), "fedcba9876543210fedc\n".into());
    let (c, d) = run_env(
        &format!(
            "{BASE}listen = 127.0.0.1:8888\nupload.enabled = true\nupload.prefix = /fdfs\n\
             upload.public_base_url = https://files.example.com/\nupload.max_concurrent = 4\n\
             upload.stall_timeout = 5s\nupload.temp_dir = /var/log\n\
             upload.app = shop key=0123456789abcdef0123 rights=upload,delete max_size=1M\n\
             upload.app = cms key_file=cms.key ext=jpg\n"
        ),
        &e,
    );
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let u = c.upload.expect("enabled");
    assert_eq!(u.prefix, "/fdfs");
    assert_eq!(
        u.public_base_url.as_deref(),
        Some("https://files.example.com")
    );
    assert_eq!(
        (u.max_concurrent, u.stall_timeout),
        (4, Duration::from_secs(5))
    );
    assert_eq!(u.temp_dir.as_deref(), Some(Path::new("/var/log")));
    assert_eq!(u.apps.len(), 2);
    assert_eq!(
        u.app("cms").map(|a| a.key.expose()),
        Some(&b"fedcba9876543210fedc"[..])
    );
    assert!(c.files.contains(&PathBuf::from("/etc/fdfs/cms.key")));
    assert_eq!(u.largest_max_size(), 100 << 20);
}

#[test]
fn upload_api_errors_name_the_line() {
    let on = "upload.enabled = true\n";
    let app = "upload.app = shop key=0123456789abcdef0123\n";
    assert_eq!(
        error(on),
        "3: upload.enabled = true needs at least one upload.app"
    );
    assert!(
        error(&format!("{on}{app}upload.prefix = api/\n")).starts_with("5: upload.prefix = api/")
    );
    assert!(
        error(&format!("{on}{app}upload.public_base_url = ftp://x\n"))
            .starts_with("5: upload.public_base_url")
    );
    assert!(error(&format!("{on}{app}upload.max_concurrent = 0\n"))
        .starts_with("5: upload.max_concurrent"));
    assert!(error(&format!("{on}{app}upload.temp_dir = /nope\n")).contains("does not exist"));
    assert!(
        error(&format!("{on}upload.app = shop key_file=missing.key\n"))
            .contains("key_file /etc/fdfs/missing.key")
    );
    let dup = error(&format!("{on}{app}{app}"));
    assert!(
        dup.starts_with("5: upload.app: app shop defined twice"),
        "{dup}"
    );
    let bad = error(&format!(
        "{on}upload.app = shop key=0123456789abcdef0123 max_size=lots\n"
    ));
    assert!(
        bad.starts_with("4: upload.app: app shop: max_size"),
        "{bad}"
    );
    assert!(!bad.contains("0123456789abcdef"), "{bad}");
    // Keys in clear on a listener reachable from the network: a warning.
    let w = warnings(&format!("{on}{app}"));
    assert!(
        w.iter()
            .any(|m| m.starts_with("4: upload.app: app shop may send its key in clear")),
        "{w:?}"
    );
    let w = warnings(&format!(
        "{on}upload.app = shop key=0123456789abcdef0123 auth=hmac\n"
    ));
    assert!(w.is_empty(), "{w:?}");
}
