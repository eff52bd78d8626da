//! Loading real and example configuration files end to end
//! (docs/config-keys.md, docs/file-id.md §7).

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fdfs_httpd::config::{
    AccessLog, Config, Diagnostic, Loaded, MimeTable, ProxyVia, ResponseMode, RwMode, Scheme,
    StorageIds, DEFAULT_CONTENT_TYPE,
};
use tempfile::TempDir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Replaces the value of every `key = ...` line (commented or not stays as is).
fn set_key(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|l| match l.split_once('=') {
            Some((k, _)) if k.trim() == key => format!("{key} = {value}"),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A temp dir with a store directory inside.
struct Site {
    dir: TempDir,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("store")).unwrap();
        fs::create_dir(dir.path().join("base")).unwrap();
        Site { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, text).unwrap();
        p
    }
    fn store(&self) -> String {
        self.path("store").display().to_string()
    }
    /// Writes `mod_fastdfs.conf` (store_path0 set to the temp store) and loads it.
    fn load(&self, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
        let p = self.write("mod_fastdfs.conf", text);
        Config::load(&p)
    }
    fn main(&self) -> String {
        self.path("mod_fastdfs.conf").display().to_string()
    }
    /// A minimal valid main file followed by `extra`.
    fn minimal(&self, extra: &str) -> String {
        format!(
            "group_name = group1\nstore_path0 = {}\n{extra}",
            self.store()
        )
    }
}

fn ok(r: Result<Loaded, Vec<Diagnostic>>) -> Loaded {
    match r {
        Ok(l) => l,
        Err(e) => panic!("unexpected errors: {e:#?}"),
    }
}

fn errs(r: Result<Loaded, Vec<Diagnostic>>) -> Vec<String> {
    match r {
        Ok(l) => panic!("expected errors, got {:#?}", l.config),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn warns(l: &Loaded) -> Vec<String> {
    l.warnings.iter().map(ToString::to_string).collect()
}

/// Copies a recorded config directory (mod_fastdfs.conf + http.conf) and the
/// mime.types next to it, pointing store_path0/base_path at temp dirs.
fn recorded(site: &Site, dir: &Path, mime: Option<&Path>) -> PathBuf {
    let main = fs::read_to_string(dir.join("mod_fastdfs.conf")).unwrap();
    let main = set_key(&main, "store_path0", &site.store());
    let main = set_key(&main, "base_path", &site.path("base").display().to_string());
    site.write("mod_fastdfs.conf", &main);
    fs::copy(dir.join("http.conf"), site.path("http.conf")).unwrap();
    if let Some(m) = mime {
        fs::copy(m, site.path("mime.types")).unwrap();
    }
    site.path("mod_fastdfs.conf")
}

#[test]
fn real_configs_a_and_b_load() {
    for (name, alias) in [("A", "lo:A"), ("B", "lo:B")] {
        let site = Site::new();
        let dir = fixtures().join("real/configs").join(name);
        let main = recorded(
            &site,
            &dir,
            Some(&fixtures().join("real/configs/mime.types")),
        );
        let l = ok(Config::load(&main));
        assert!(l.warnings.is_empty(), "{name}: {:?}", warns(&l));
        let c = &l.config;
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.network_timeout, Duration::from_secs(30));
        assert!(c.load_fdfs_parameters_from_tracker);
        assert_eq!(c.storage_sync_file_max_delay, 86400);
        assert!(!c.use_storage_id && c.storage_ids.is_empty());
        assert_eq!(c.tracker_servers.len(), 1);
        assert_eq!(c.tracker_servers[0].to_string(), "127.0.0.4:22122");
        assert!(c.url_have_group_name && !c.multi_group);
        assert_eq!(c.groups.len(), 1);
        let g = c.group("group1").unwrap();
        assert_eq!(g.storage_server_port, 23000);
        assert_eq!(g.store_paths, [site.path("store")]);
        assert!(g.anti_steal.is_none());
        assert_eq!(c.response_mode, ResponseMode::Proxy);
        assert_eq!(c.if_alias_prefix, [alias]);
        assert_eq!(c.flv_extension.as_deref(), Some("flv"));
        assert_eq!(
            c.log_filename,
            Some(PathBuf::from(format!(
                "/data/fdfs/mod{name}/mod_fastdfs.log"
            )))
        );
        assert!(c.anti_steal.is_none());
        assert!(c.multi_range_enabled);
        assert_eq!(c.default_content_type, "application/octet-stream");
        assert_eq!(
            c.files,
            [
                main.clone(),
                site.path("http.conf"),
                site.path("mime.types")
            ]
        );
        // Built-in (nginx) table extended by the Apache table.
        assert_eq!(c.content_type(Some("flv")), "video/x-flv");
        assert_eq!(c.content_type(Some("log")), "text/plain");
        assert_eq!(c.content_type(Some("JPG")), "image/jpeg");
        assert_eq!(
            c.content_type(Some("docx")),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(c.content_type(Some("unknownext")), DEFAULT_CONTENT_TYPE);
        assert_eq!(c.content_type(None), DEFAULT_CONTENT_TYPE);
        // New keys keep their defaults.
        assert_eq!(c.listen, ["0.0.0.0:8888".parse().unwrap()]);
        assert_eq!(c.proxy_via, [ProxyVia::Http]);
        assert_eq!(c.peer_scheme, Scheme::Http);
        assert_eq!(c.access_log, AccessLog::Off);
    }
}

#[test]
fn trunk_configs_c_and_d_load_with_storage_ids() {
    for name in ["C", "D"] {
        let site = Site::new();
        let dir = fixtures().join("trunk/configs").join(name);
        let main = recorded(
            &site,
            &dir,
            Some(&fixtures().join("trunk/configs/mime.types")),
        );
        let l = ok(Config::load(&main));
        assert!(l.warnings.is_empty(), "{name}: {:?}", warns(&l));
        assert_eq!(l.config.tracker_servers[0].to_string(), "127.0.0.5:22122");
        assert_eq!(l.config.if_alias_prefix, [format!("lo:{name}")]);

        // Same node with the storage ID table read locally.
        fs::copy(
            fixtures().join("trunk/configs/storage_ids.conf"),
            site.path("storage_ids.conf"),
        )
        .unwrap();
        let text = fs::read_to_string(&main).unwrap();
        let text = set_key(&text, "load_fdfs_parameters_from_tracker", "false");
        let text = set_key(&text, "use_storage_id", "true");
        let l = ok(site.load(&text));
        let c = &l.config;
        assert!(c.use_storage_id);
        assert_eq!(c.storage_ids.len(), 2);
        let e = c.storage_ids.get(100001).unwrap();
        assert_eq!(e.hosts, ["127.0.0.6".parse::<IpAddr>().unwrap()]);
        assert_eq!(
            (e.group.as_str(), e.port, e.rw),
            ("group1", 23000, RwMode::Both)
        );
        assert_eq!(
            c.storage_ids.get(100002).unwrap().hosts,
            ["127.0.0.7".parse::<IpAddr>().unwrap()]
        );
        assert!(c.files.contains(&site.path("storage_ids.conf")));
    }
}

#[test]
fn missing_http_conf_and_mime_types_are_warnings() {
    let site = Site::new();
    // A recorded config without its mime.types copy: built-in table, one warning.
    let main = recorded(&site, &fixtures().join("real/configs/A"), None);
    let l = ok(Config::load(&main));
    let w = warns(&l);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(&format!(
            "{}:2: http.mime_types_filename = mime.types:",
            site.path("http.conf").display()
        )),
        "{w:?}"
    );
    assert_eq!(l.config.content_type(Some("flv")), "video/x-flv");
    assert_eq!(l.config.content_type(Some("log")), DEFAULT_CONTENT_TYPE);

    // No http.conf at all (docs/user-reports.md #27): warning naming the include line.
    fs::remove_file(site.path("http.conf")).unwrap();
    let l = ok(Config::load(&main));
    let w = warns(&l);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(&format!("{}:18: #include ", site.main())),
        "{w:?}"
    );
    assert!(w[0].contains("not found"));
    assert_eq!(l.config.default_content_type, DEFAULT_CONTENT_TYPE);
    assert!(l.config.multi_range_enabled);
    assert_eq!(*l.config.mime, MimeTable::builtin());
}

#[test]
fn ini_rules_end_to_end() {
    let site = Site::new();
    // Comments, blank lines, CRLF, spaces around '=', first '=' splits, [] back to global.
    site.write("inc/http.conf", "http.default_content_type = text/x=y\r\n");
    let text = format!(
        "# comment\r\n\r\n   # indented comment\r\n  group_name   =   group1  \r\nstore_path0={}\r\n\
         [unused]\r\nlisten = 1.2.3.4:1\r\n[]\r\nlisten = 127.0.0.1:8081\r\n#include inc/http.conf\r\n",
        site.store()
    );
    let l = ok(site.load(&text));
    let c = &l.config;
    assert_eq!(c.groups[0].name, "group1");
    assert_eq!(c.listen, ["127.0.0.1:8081".parse().unwrap()]);
    assert_eq!(c.default_content_type, "text/x=y");
    assert_eq!(
        warns(&l),
        [format!(
            "{}:6: section [unused] is not used (group_count = 0)",
            site.main()
        )]
    );
    assert_eq!(
        c.files,
        [site.path("mod_fastdfs.conf"), site.path("inc/http.conf")]
    );
}

#[test]
fn include_resolves_against_top_level_dir_and_resets_section() {
    let site = Site::new();
    // inc/a.conf includes "b.conf", which is looked up next to mod_fastdfs.conf.
    site.write("inc/a.conf", "#include b.conf\n[group1]\n");
    site.write("b.conf", "response_mode = redirect\n");
    let text = site.minimal("[somewhere]\n#include inc/a.conf\nflv_support = true\n");
    let l = ok(site.load(&text));
    assert_eq!(l.config.response_mode, ResponseMode::Redirect);
    // flv_support after the include is global even though a.conf opened [group1].
    assert_eq!(l.config.flv_extension.as_deref(), Some("flv"));
    assert_eq!(l.config.files.len(), 3);
}

#[test]
fn bad_boolean_names_file_and_line() {
    let site = Site::new();
    let e = errs(site.load(&site.minimal("url_have_group_name = ture\n")));
    assert_eq!(
        e,
        [format!(
            "{}:3: url_have_group_name = ture: not a boolean (expected true/yes/on/1 or false/no/off/0)",
            site.main()
        )]
    );
    // Inside an included file, the included file is named.
    site.write("http.conf", "\nhttp.multi_range.enabled = enable\n");
    let e = errs(site.load(&site.minimal("#include http.conf\n")));
    assert_eq!(
        e,
        [format!(
            "{}:2: http.multi_range.enabled = enable: not a boolean (expected true/yes/on/1 or false/no/off/0)",
            site.path("http.conf").display()
        )]
    );
}

#[test]
fn warnings_name_file_and_line() {
    let site = Site::new();
    let l = ok(site.load(&site.minimal(
        "http.anti_steal_token = x\nconnect_timeout = 3\nconnect_timeout = 4\nlog_filename = /tmp/x.log # old\nno equals sign\n",
    )));
    let m = site.main();
    assert_eq!(
        warns(&l),
        [
            format!("{m}:6: log_filename: value \"/tmp/x.log # old\" contains '#': inline comments are not supported, the whole text is the value"),
            format!("{m}:7: line \"no equals sign\" has no '=' and is ignored"),
            format!("{m}:3: unknown key \"http.anti_steal_token\" (ignored)"),
            format!("{m}:5: key \"connect_timeout\" repeated (also at {m}:4); this last value is used"),
        ]
    );
    assert_eq!(l.config.connect_timeout, Duration::from_secs(4));
    assert_eq!(
        l.config.log_filename,
        Some(PathBuf::from("/tmp/x.log # old"))
    );
}

#[test]
fn preprocessor_and_url_includes_are_errors() {
    let site = Site::new();
    let e = errs(site.load(&site.minimal(
        "#@if %{LOCAL_IP} in [10.0.0.1]\nlisten = 1\n#@endif\n#include http://example/http.conf\n",
    )));
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with(&format!("{}:3: pre-processor directive", site.main())));
    assert!(e[1].starts_with(&format!("{}:5: ", site.main())));
    assert!(e[2].contains("URL includes are not supported"));
}

#[test]
fn every_problem_is_reported() {
    let site = Site::new();
    let text = "group_name = abcdefghijklmnopqrstuvwxyz\nstore_path0 = /nonexistent/store\n\
                flv_support = maybe\nconnect_timeout = soon\nlisten = nowhere\n\
                group_count = -2\npeer_scheme = gopher\n";
    let e = errs(site.load(text));
    assert_eq!(e.len(), 7, "{e:#?}");
    let lines: Vec<u32> = e
        .iter()
        .map(|s| {
            s.rsplit_once(".conf:")
                .unwrap()
                .1
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn store_path_checks() {
    let site = Site::new();
    site.write("afile", "x");
    let text = format!(
        "group_name = g\nstore_path_count = 3\nstore_path0 = {}/\nstore_path1 = {}\nstore_path2 = /no/such/dir\n",
        site.store(),
        site.path("afile").display()
    );
    let e = errs(site.load(&text));
    assert_eq!(
        e,
        [
            format!(
                "{}:4: store_path1 = {}: is not a directory",
                site.main(),
                site.path("afile").display()
            ),
            format!(
                "{}:5: store_path2 = /no/such/dir: does not exist",
                site.main()
            ),
        ]
    );
    // base_path fallback in single-group mode.
    let l = ok(site.load(&format!(
        "group_name = g\nbase_path = {}\n",
        site.path("base").display()
    )));
    assert_eq!(l.config.groups[0].store_paths, [site.path("base")]);
}

#[test]
fn multi_group_with_two_sections() {
    let site = Site::new();
    fs::create_dir(site.path("store2")).unwrap();
    site.write("fail.png", "png");
    let text = format!(
        "url_have_group_name = true\ngroup_count = 2\n\
         http.anti_steal.check_token = true\nhttp.anti_steal.secret_key = GLOBAL\n\
         [group1]\ngroup_name = group1\nstorage_server_port = 23000\nstore_path0 = {s1}\n\
         [group2]\ngroup_name = group2\nstorage_server_port = 23001\nstore_path0 = {s2}\n\
         http.anti_steal.secret_key = SECRET2\nhttp.anti_steal.token_check_fail = fail.png\n",
        s1 = site.store(),
        s2 = site.path("store2").display()
    );
    let l = ok(site.load(&text));
    assert!(l.warnings.is_empty(), "{:?}", warns(&l));
    let c = &l.config;
    assert!(c.multi_group);
    assert_eq!(c.groups.len(), 2);
    let g1 = c.group("group1").unwrap();
    let g2 = c.group("group2").unwrap();
    assert_eq!(
        (g1.storage_server_port, g2.storage_server_port),
        (23000, 23001)
    );
    assert_eq!(g2.store_paths, [site.path("store2")]);
    assert_eq!(g1.anti_steal.as_ref().unwrap().secret_key, "GLOBAL");
    assert!(g1.anti_steal.as_ref().unwrap().token_check_fail.is_none());
    let a2 = g2.anti_steal.as_ref().unwrap();
    assert_eq!(a2.secret_key, "SECRET2");
    let fail = a2.token_check_fail.as_ref().unwrap();
    assert_eq!(fail.path, site.path("fail.png"));
    assert_eq!(fail.content_type, "image/png");

    // group_count > 0 needs url_have_group_name = true; sections are required.
    let e = errs(
        site.load(
            &text
                .replace("url_have_group_name = true\n", "")
                .replace("[group2]", "[groupX]"),
        ),
    );
    assert_eq!(
        e,
        [
            format!(
                "{}:1: group_count > 0 requires url_have_group_name = true",
                site.main()
            ),
            format!(
                "{}:1: section [group2] is missing (group_count = 2)",
                site.main()
            ),
        ]
    );
}

#[test]
fn anti_steal_fail_file_relative_to_conf_dir() {
    let site = Site::new();
    site.write("anti-steal.jpg", "jpeg");
    let l = ok(site.load(&site.minimal(
        "http.anti_steal.check_token = yes\nhttp.anti_steal.secret_key = FastDFS1234567890\n\
         http.anti_steal.token_ttl = 900\nhttp.anti_steal.token_check_fail = anti-steal.jpg\n",
    )));
    let a = l.config.anti_steal.clone().unwrap();
    assert_eq!(a.token_ttl, 900);
    let f = a.token_check_fail.unwrap();
    assert_eq!(
        (f.path, f.content_type.as_str()),
        (site.path("anti-steal.jpg"), "image/jpeg")
    );
    assert!(l.config.files.contains(&site.path("anti-steal.jpg")));
    let e = errs(site.load(&site.minimal(
        "http.anti_steal.check_token = yes\nhttp.anti_steal.secret_key = k\nhttp.anti_steal.token_check_fail = none.jpg\n",
    )));
    assert_eq!(
        e,
        [format!(
            "{}:5: http.anti_steal.token_check_fail = none.jpg: {} does not exist",
            site.main(),
            site.path("none.jpg").display()
        )]
    );
}

#[test]
fn storage_ids_file() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let ids = StorageIds::parse(
        "# id group addr\n100001 group1 192.168.0.196\n\
         100002\tgroup1\t47.98.10.7,192.168.0.197:23001 rw=readonly\n\
         100003 group2 [2409:8a20:42d:2f40::ad8e]:23001 rw=none\n\
         100004 group2 172.16.0.9,10.0.0.9 RW=Write\n",
        Path::new("storage_ids.conf"),
    )
    .unwrap();
    assert_eq!(ids.len(), 4);
    let e = ids.get(100002).unwrap();
    assert_eq!(
        e.hosts,
        [ip("192.168.0.197"), ip("47.98.10.7")],
        "inner first"
    );
    assert_eq!((e.port, e.rw), (23001, RwMode::Read));
    let e = ids.get(100003).unwrap();
    assert_eq!(
        (e.hosts.clone(), e.port, e.rw),
        (vec![ip("2409:8a20:42d:2f40::ad8e")], 23001, RwMode::None)
    );
    let e = ids.get(100004).unwrap();
    assert_eq!(
        e.hosts,
        [ip("172.16.0.9"), ip("10.0.0.9")],
        "two private kinds keep their order"
    );
    assert_eq!(e.rw, RwMode::Write);
    assert_eq!(
        ids.iter().map(|e| e.id).collect::<Vec<_>>(),
        [100001, 100002, 100003, 100004]
    );

    let e = StorageIds::parse(
        "100001 group1 10.0.0.1\n100001 group1 10.0.0.2\n01 group1 10.0.0.3\nx group1 10.0.0.4\n\
         7 group1 1.1.1.1,2.2.2.2\n8 group1 10.0.0.1 rw=sometimes\n",
        Path::new("ids.conf"),
    )
    .unwrap_err();
    let e: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(e.len(), 5, "{e:?}");
    assert_eq!(
        e[0],
        "ids.conf:2: storage id 100001 already defined on line 1"
    );
    assert!(e[1].starts_with("ids.conf:3: storage id \"01\" is invalid"));
    assert!(e[2].starts_with("ids.conf:4: storage id \"x\" is invalid"));
    assert!(e[3].starts_with("ids.conf:5: addresses 1.1.1.1 and 2.2.2.2"));
    assert!(e[4].starts_with("ids.conf:6: \"rw=sometimes\""));

    // Errors in the ID file fail the load and name the ID file.
    let site = Site::new();
    site.write("ids.conf", "5 g 10.0.0.1\n5 g 10.0.0.2\n");
    let e =
        errs(site.load(&site.minimal("use_storage_id = true\nstorage_ids_filename = ids.conf\n")));
    assert_eq!(
        e,
        [format!(
            "{}:2: storage id 5 already defined on line 1",
            site.path("ids.conf").display()
        )]
    );
}

#[test]
fn mime_precedence() {
    let nginx = fs::read_to_string(fixtures().join("real/configs/mime.types.nginx")).unwrap();
    assert_eq!(
        MimeTable::builtin(),
        MimeTable::parse(&nginx),
        "built-in table = nginx's"
    );
    let conf = fs::read_to_string(repo().join("conf/mime.types")).unwrap();
    assert_eq!(MimeTable::parse(&conf), MimeTable::builtin());

    let apache = fs::read_to_string(fixtures().join("real/configs/mime.types")).unwrap();
    let mut t = MimeTable::builtin();
    t.extend(MimeTable::parse(&apache));
    assert_eq!(
        t.lookup("flv"),
        Some("video/x-flv"),
        "absent from Apache: built-in fills"
    );
    assert_eq!(t.lookup("log"), Some("text/plain"), "from the Apache file");
    assert_eq!(t.lookup("JPG"), Some("image/jpeg"), "lowercase fallback");
    assert_eq!(t.lookup("jpe"), Some("image/jpeg"));
    assert_eq!(t.lookup("nosuchext"), None);
    // The file overrides the built-in entry for extensions it names.
    let mut t = MimeTable::builtin();
    t.extend(MimeTable::parse("text/x-custom html\n"));
    assert_eq!(t.lookup("html"), Some("text/x-custom"));
    assert_eq!(t.lookup("htm"), Some("text/html"));
}

#[test]
fn new_keys_parse_and_fail() {
    let site = Site::new();
    site.write("tls/cert.pem", "c");
    site.write("tls/key.pem", "k");
    site.write("tls/ca.pem", "ca");
    fs::create_dir(site.path("logs")).unwrap();
    let l = ok(site.load(&site.minimal(
        "listen = 127.0.0.1:8080, [::1]:8080\nlisten = 9090\nlocal_ip_addrs = 10.0.0.5, 192.168.1.5\n\
         peer_ip_addrs = 10.0.0.6\npeer_http_port = 8888\npeer_scheme = https\nproxy_via = http, storage\n\
         peer_ca_file = tls/ca.pem\n\
         tls_listen = 0.0.0.0:8443\ntls_cert_file = tls/cert.pem\ntls_key_file = tls/key.pem\n\
         http2_cleartext = true\nwatch_config = yes\nrate_limit_per_ip = 100/s\nrate_limit_burst = 50\n\
         max_connections = 10000\nmax_proxy_per_peer = 64\nheader_read_timeout = 10s\nmax_header_size = 32K\n\
         keepalive_timeout = 2m\ntrusted_proxies = 10.0.0.0/8, ::1/128, 192.168.0.1\naccess_log = logs/access.log\n\
         access_log_format = json\nadmin_listen = 127.0.0.1:9100\nshutdown_grace = 5s\nread_strategy = threads\n\
         worker_threads = 4\n",
    )));
    assert!(l.warnings.is_empty(), "{:?}", warns(&l));
    let c = &l.config;
    assert_eq!(c.listen.len(), 3);
    assert_eq!(c.local_ip_addrs.as_ref().map(Vec::len), Some(2));
    assert_eq!(c.peer_ip_addrs, ["10.0.0.6".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        (c.peer_http_port, c.peer_scheme),
        (Some(8888), Scheme::Https)
    );
    assert_eq!(c.proxy_via, [ProxyVia::Http, ProxyVia::Storage]);
    let tls = c.tls.as_ref().expect("tls_listen with its files");
    assert_eq!(tls.listen, ["0.0.0.0:8443".parse().unwrap()]);
    assert_eq!(tls.cert_file, site.path("tls/cert.pem"));
    assert_eq!(tls.key_file, site.path("tls/key.pem"));
    assert!(c.http2_cleartext && c.watch_config);
    assert_eq!(
        (c.rate_limit_per_ip(), c.rate_limit_burst()),
        (Some(100), Some(50))
    );
    assert_eq!(
        (c.max_connections, c.max_proxy_per_peer),
        (Some(10000), Some(64))
    );
    assert_eq!(c.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.max_header_size, 32 * 1024);
    assert_eq!(c.keepalive_timeout, Duration::from_secs(120));
    assert_eq!(c.trusted_proxies.len(), 3);
    assert!(c
        .trusted_proxies
        .iter()
        .any(|p| p.contains("10.20.30.40".parse().unwrap())));
    assert_eq!(c.access_log, AccessLog::File(site.path("logs/access.log")));
    assert_eq!(c.admin_listen, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(c.shutdown_grace, Duration::from_secs(5));
    assert_eq!(c.worker_threads, Some(4));

    let bad = [
        ("listen = 1.2.3.4", "listen = 1.2.3.4: not an address"),
        (
            "local_ip_addrs = ten",
            "local_ip_addrs = ten: not an IP address",
        ),
        (
            "peer_ip_addrs = 10.0.0",
            "peer_ip_addrs = 10.0.0: not an IP address",
        ),
        (
            "peer_http_port = 65536",
            "peer_http_port = 65536: must be between 1 and 65535",
        ),
        (
            "peer_scheme = ftp",
            "peer_scheme = ftp: expected one of: http, https",
        ),
        (
            "proxy_via = carrier-pigeon",
            "proxy_via = carrier-pigeon: expected one of: http, storage",
        ),
        (
            "tls_listen = 0.0.0.0:443",
            "tls_listen requires both tls_cert_file and tls_key_file",
        ),
        (
            "http2_cleartext = sure",
            "http2_cleartext = sure: not a boolean",
        ),
        ("watch_config = 2", "watch_config = 2: not a boolean"),
        (
            "rate_limit_per_ip = 10/min",
            "rate_limit_per_ip = 10/min: not a rate",
        ),
        (
            "rate_limit_burst = -1",
            "rate_limit_burst = -1: must be between 1",
        ),
        (
            "max_connections = many",
            "max_connections = many: not an integer",
        ),
        (
            "max_proxy_per_peer = 0",
            "max_proxy_per_peer = 0: must be between 1",
        ),
        (
            "header_read_timeout = 0s",
            "header_read_timeout = 0s: must be between 1 and 86400",
        ),
        (
            "max_header_size = 4K",
            "max_header_size = 4K: must be between 8192 and 67108864",
        ),
        (
            "keepalive_timeout = 1d",
            "keepalive_timeout = 1d: not a duration",
        ),
        (
            "trusted_proxies = 10.0.0.0/40",
            "trusted_proxies = 10.0.0.0/40: bad prefix length",
        ),
        (
            "access_log = /no/such/dir/a.log",
            "access_log = /no/such/dir/a.log: directory /no/such/dir does not exist",
        ),
        (
            "access_log_format = xml",
            "access_log_format = xml: expected one of: combined, json",
        ),
        (
            "admin_listen = localhost:9100",
            "admin_listen = localhost:9100: not an address",
        ),
        (
            "shutdown_grace = forever",
            "shutdown_grace = forever: not a duration",
        ),
        (
            "read_strategy = mmap",
            "read_strategy = mmap: expected one of: inline, threads",
        ),
        (
            "worker_threads = 0",
            "worker_threads = 0: must be between 1",
        ),
        // Durations have upper bounds: never an Instant overflow at run time.
        (
            "keepalive_timeout = 99999999999h",
            "keepalive_timeout = 99999999999h: must be between 0 and 86400",
        ),
        (
            "header_read_timeout = 25h",
            "header_read_timeout = 25h: must be between 1 and 86400",
        ),
        (
            "shutdown_grace = 18446744073709551615ms",
            "shutdown_grace = 18446744073709551615ms: must be between 0 and 86400",
        ),
        (
            "network_timeout = 9223372036854775807",
            "network_timeout = 9223372036854775807: must be between 1 and 86400",
        ),
        (
            "connect_timeout = 86401",
            "connect_timeout = 86401: must be between 1 and 86400",
        ),
        (
            "peer_response_timeout = 0",
            "peer_response_timeout = 0: must be between 1 and 86400",
        ),
        (
            "peer_idle_timeout = 2d",
            "peer_idle_timeout = 2d: not a duration",
        ),
    ];
    for (line, msg) in bad {
        let e = errs(site.load(&site.minimal(&format!("{line}\n"))));
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        let want = format!("{}:3: {msg}", site.main());
        assert!(
            e[0].starts_with(&want),
            "{line}: {} does not start with {want}",
            e[0]
        );
    }
}

#[test]
fn from_str_resolves_against_origin() {
    let site = Site::new();
    site.write("mime.types", "text/x-demo demo\n");
    let text = site.minimal("http.mime_types_filename = mime.types\n");
    // origin = a (virtual) file in the site.
    let l = ok(Config::from_str(&text, &site.path("virtual.conf")));
    assert_eq!(l.config.content_type(Some("demo")), "text/x-demo");
    assert_eq!(l.config.files, [site.path("mime.types")]);
    // origin = the directory itself.
    let l = ok(Config::from_str(&text, site.dir.path()));
    assert_eq!(l.config.content_type(Some("demo")), "text/x-demo");
    let e = errs(Config::from_str("store_path0 = /x\n", site.dir.path()));
    assert!(e[0].starts_with(&format!("{}:", site.main())), "{e:?}");
}

#[test]
fn load_missing_file() {
    let e = errs(Config::load(Path::new("/no/such/mod_fastdfs.conf")));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("/no/such/mod_fastdfs.conf: cannot read: "),
        "{e:?}"
    );
}

/// Copies conf/{mod_fastdfs.conf,http.conf,mime.types} with store paths in a temp dir.
fn example_site(transform: impl Fn(&str) -> String) -> (Site, PathBuf) {
    let site = Site::new();
    let main = fs::read_to_string(repo().join("conf/mod_fastdfs.conf")).unwrap();
    let main = set_key(&main, "store_path0", &site.store());
    let main = set_key(&main, "base_path", &site.path("base").display().to_string());
    site.write("mod_fastdfs.conf", &transform(&main));
    fs::copy(repo().join("conf/http.conf"), site.path("http.conf")).unwrap();
    fs::copy(repo().join("conf/mime.types"), site.path("mime.types")).unwrap();
    let p = site.path("mod_fastdfs.conf");
    (site, p)
}

#[test]
fn example_conf_loads_cleanly() {
    let (site, main) = example_site(|s| s.to_owned());
    let l = ok(Config::load(&main));
    assert!(l.warnings.is_empty(), "{:?}", warns(&l));
    let c = &l.config;
    assert_eq!(c.groups[0].store_paths, [site.path("store")]);
    assert_eq!(c.files.len(), 3);
    assert_eq!(c.content_type(Some("flv")), "video/x-flv");
    assert!(c.anti_steal.is_none());
}

#[test]
fn example_conf_commented_keys_are_valid() {
    // Uncomment every documented "#key = value" outside the multi-group block.
    let (site, main) = example_site(|s| {
        let head = s.split("# Multi-group mode").next().unwrap_or(s);
        head.lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest)
                    if rest.contains(" = ")
                        && !rest.starts_with(' ')
                        && !rest.starts_with("store_path1") =>
                {
                    rest.to_owned()
                }
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    site.write("tls/cert.pem", "c");
    site.write("tls/key.pem", "k");
    site.write("tls/peer-ca.pem", "c");
    let text = fs::read_to_string(&main)
        .unwrap()
        .replace("/etc/fdfs/tls/", "tls/");
    assert!(text.contains("\nworker_threads = 4"), "uncommenting failed");
    let l = ok(site.load(&text));
    assert!(l.warnings.is_empty(), "{:?}", warns(&l));
    assert!(l.config.bypass_header.is_some());
    assert_eq!(l.config.rate_limit_per_ip(), Some(100));
}
