//! The upload API's keys (docs/upload.md §1): `upload.enabled`,
//! `upload.prefix`, `upload.public_base_url`, `upload.max_concurrent`,
//! `upload.stall_timeout`, `upload.temp_dir` and one `upload.app` line per
//! application. Keys are never put in a diagnostic or a `Debug` output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::apps::{
    AppKey, UploadApp, UploadConfig, DEFAULT_UPLOAD_PREFIX, MAX_APP_ID_LEN, MAX_EXT_LEN,
    MAX_KEY_LEN, MIN_KEY_LEN,
};
use super::build::Builder;
use super::ini::Entry;
use super::keys::Keys;
use super::storage_ids::MAX_GROUP_NAME_LEN;
use super::values::{parse_size, split_list, Cidr};

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_APP_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn valid_prefix(s: &str) -> bool {
    s.len() >= 2
        && s.len() <= 64
        && s.starts_with('/')
        && !s.ends_with('/')
        && !s.contains("//")
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'))
        && !s.split('/').any(|seg| seg == "." || seg == "..")
        && !shadows_file_urls(s)
}

/// Whether a prefix would take over file URLs (`/groupN/…`, `/Mxx/…`).
fn shadows_file_urls(prefix: &str) -> bool {
    let first = prefix.split('/').nth(1).unwrap_or("");
    let group = first
        .strip_prefix("group")
        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let store = first.len() == 3
        && first.starts_with('M')
        && first.bytes().skip(1).all(|b| b.is_ascii_hexdigit());
    group || store
}

/// What an `upload.app` line says before its key file is read.
struct AppLine {
    app: UploadApp,
    key_file: Option<PathBuf>,
}

/// Parses `<id> key=…|key_file=… [rights=…] [max_size=…] [ext=…] [group=…]
/// [networks=…] [auth=…]`. Errors never contain the key.
fn parse_app_line(v: &str, base: &dyn Fn(&str) -> PathBuf) -> Result<AppLine, String> {
    let mut words = v.split_whitespace();
    let id = words.next().ok_or("missing application id")?;
    if id.contains('=') || !valid_id(id) {
        return Err(format!(
            "application id \"{}\" must be 1-{MAX_APP_ID_LEN} characters of A-Z a-z 0-9 _ - .",
            id.escape_debug()
        ));
    }
    let mut app = UploadApp {
        id: id.to_owned(),
        key: AppKey::new(b""),
        upload: true,
        delete: false,
        max_size: 100 << 20,
        extensions: Vec::new(),
        group: None,
        networks: Vec::new(),
        key_auth: true,
    };
    let (mut key, mut key_file, mut seen) = (None, None, Vec::new());
    for w in words {
        let (name, value) = w
            .split_once('=')
            .ok_or_else(|| format!("app {id}: \"{}\" is not name=value", w.escape_debug()))?;
        if seen.contains(&name) {
            return Err(format!("app {id}: {name} given twice"));
        }
        seen.push(name);
        match name {
            "key" => key = Some(value.as_bytes().to_vec()),
            "key_file" => key_file = Some(base(value)),
            "rights" => {
                app.upload = false;
                for r in split_list(value) {
                    match r {
                        "upload" => app.upload = true,
                        "delete" => app.delete = true,
                        _ => {
                            return Err(format!(
                                "app {id}: right \"{}\" is not upload or delete",
                                r.escape_debug()
                            ))
                        }
                    }
                }
            }
            "max_size" => {
                app.max_size = parse_size(value)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("app {id}: max_size = {value}: not a size above 0"))?;
            }
            "ext" => {
                for x in split_list(value) {
                    let x = x.trim_start_matches('.').to_ascii_lowercase();
                    if x.is_empty()
                        || x.len() > MAX_EXT_LEN
                        || !x.bytes().all(|b| b.is_ascii_alphanumeric())
                    {
                        return Err(format!(
                            "app {id}: extension \"{}\" must be 1-{MAX_EXT_LEN} letters or digits",
                            x.escape_debug()
                        ));
                    }
                    app.extensions.push(x);
                }
            }
            "group" => {
                if value.is_empty()
                    || value.len() > MAX_GROUP_NAME_LEN
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(format!(
                        "app {id}: group \"{}\" is not a FastDFS group name",
                        value.escape_debug()
                    ));
                }
                app.group = Some(value.to_owned());
            }
            "networks" => {
                for n in split_list(value) {
                    app.networks.push(
                        n.parse::<Cidr>()
                            .map_err(|e| format!("app {id}: networks: {n}: {e}"))?,
                    );
                }
            }
            "auth" => {
                let mut k = false;
                for m in split_list(value) {
                    match m {
                        "key" => k = true,
                        "hmac" => {}
                        _ => {
                            return Err(format!(
                                "app {id}: auth \"{}\" is not key or hmac",
                                m.escape_debug()
                            ))
                        }
                    }
                }
                app.key_auth = k;
            }
            _ => {
                return Err(format!(
                    "app {id}: unknown setting \"{}\"",
                    name.escape_debug()
                ))
            }
        }
    }
    match (key, &key_file) {
        (Some(_), Some(_)) => Err(format!("app {id}: give key or key_file, not both")),
        (None, None) => Err(format!("app {id}: key or key_file is required")),
        (Some(k), None) => {
            check_key(id, &k)?;
            app.key = AppKey::new(&k);
            Ok(AppLine { app, key_file })
        }
        (None, Some(_)) => Ok(AppLine { app, key_file }),
    }
}

fn check_key(id: &str, k: &[u8]) -> Result<(), String> {
    if k.len() < MIN_KEY_LEN || k.len() > MAX_KEY_LEN {
        return Err(format!(
            "app {id}: the key must be {MIN_KEY_LEN}-{MAX_KEY_LEN} bytes"
        ));
    }
    if !k.iter().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "app {id}: the key must be printable ASCII without spaces"
        ));
    }
    Ok(())
}

impl Builder<'_> {
    /// The upload API, `None` unless `upload.enabled = true`. `listen`: the
    /// plain listeners, for the warning about keys sent in clear.
    pub(super) fn upload(
        &mut self,
        g: Keys<'_>,
        listen: &[SocketAddr],
    ) -> Option<Arc<UploadConfig>> {
        // The other upload.* keys are read only when enabled (the sample
        // documents them all, commented out).
        if !self.flag(g, "upload.enabled") {
            return None;
        }
        let prefix = match g.get("upload.prefix") {
            Some(e) if valid_prefix(&e.value) => e.value.clone(),
            Some(e) => {
                self.err(e, format!("upload.prefix = {}: must be /segment[/segment…] of A-Z a-z 0-9 _ - . without a trailing /, not starting like a file URL (/groupN, /Mxx)", e.value));
                DEFAULT_UPLOAD_PREFIX.to_owned()
            }
            None => DEFAULT_UPLOAD_PREFIX.to_owned(),
        };
        let public_base_url = match g.get("upload.public_base_url") {
            Some(e) => {
                let v = e.value.trim_end_matches('/');
                let ok = (v.starts_with("http://") || v.starts_with("https://"))
                    && v.parse::<http::Uri>().is_ok_and(|u| u.host().is_some());
                if ok {
                    Some(v.to_owned())
                } else {
                    self.err(
                        e,
                        format!(
                            "upload.public_base_url = {}: not an http:// or https:// URL",
                            e.value
                        ),
                    );
                    None
                }
            }
            None => None,
        };
        let max_concurrent = self.number(g, "upload.max_concurrent").unsigned_abs() as usize;
        let stall_timeout = self.span(g, "upload.stall_timeout");
        let temp_dir = g.get("upload.temp_dir").and_then(|e| {
            let p = self.resolve_path(&e.value);
            match self.env.check_dir(&p) {
                Ok(()) => Some(p),
                Err(why) => {
                    self.err(e, format!("upload.temp_dir = {}: {why}", e.value));
                    None
                }
            }
        });
        let mut apps: Vec<UploadApp> = Vec::new();
        let entries: Vec<&Entry> = g.all("upload.app").collect();
        for e in entries {
            let base_dir = self.base_dir.to_path_buf();
            let line = match parse_app_line(&e.value, &|p| base_dir.join(p)) {
                Ok(l) => l,
                Err(msg) => {
                    self.err(e, format!("upload.app: {msg}"));
                    continue;
                }
            };
            let mut app = line.app;
            if let Some(path) = line.key_file {
                match self.env.read(&path) {
                    Ok(text) => {
                        let k = text.trim_end_matches(['\n', '\r']);
                        if let Err(msg) = check_key(&app.id, k.as_bytes()) {
                            self.err(e, format!("upload.app: {msg} ({})", path.display()));
                            continue;
                        }
                        if self.env.readable_by_others(&path) {
                            self.warn(e, format!("upload.app: app {}: key file {} is readable by other users (chmod 600)", app.id, path.display()));
                        }
                        app.key = AppKey::new(k.as_bytes());
                        self.files.push(path);
                    }
                    Err(err) => {
                        self.err(
                            e,
                            format!(
                                "upload.app: app {}: key_file {}: {err}",
                                app.id,
                                path.display()
                            ),
                        );
                        continue;
                    }
                }
            }
            if apps.iter().any(|a| a.id == app.id) {
                self.err(e, format!("upload.app: app {} defined twice", app.id));
                continue;
            }
            apps.push(app);
        }
        if g.all("upload.app").next().is_none() {
            if let Some(e) = g.get("upload.enabled") {
                self.err(e, "upload.enabled = true needs at least one upload.app");
            }
        }
        let open = listen.iter().find(|a| !a.ip().is_loopback());
        if let (Some(a), Some(app)) = (open, apps.iter().find(|a| a.key_auth)) {
            if let Some(e) = g
                .all("upload.app")
                .find(|e| e.value.split_whitespace().next() == Some(app.id.as_str()))
            {
                self.warn(e, format!("upload.app: app {} may send its key in clear on the plain HTTP listener {a} (use auth=hmac, TLS or a loopback listener)", app.id));
            }
        }
        Some(Arc::new(UploadConfig {
            prefix,
            public_base_url,
            max_concurrent,
            stall_timeout,
            temp_dir,
            apps,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<AppLine, String> {
        parse_app_line(v, &|p| PathBuf::from("/etc/fdfs").join(p))
    }

    #[test]
    fn app_line() {
        let l = parse("shop key=0123456789abcdef0123 rights=upload,delete max_size=2M ext=.JPG,png group=group1 networks=10.0.0.0/8 auth=hmac").unwrap();
        let a = l.app;
        assert_eq!(a.id, "shop");
        assert_eq!(a.key.expose(), b"0123456789abcdef0123");
        assert!(a.upload && a.delete && !a.key_auth);
        assert_eq!(a.max_size, 2 << 20);
        assert_eq!(a.extensions, ["jpg", "png"]);
        assert_eq!(a.group.as_deref(), Some("group1"));
        assert_eq!(a.networks.len(), 1);
        assert!(!format!("{a:?}").contains("0123456789abcdef"));
        let l = parse("cms key_file=cms.key").unwrap();
        assert_eq!(l.key_file, Some(PathBuf::from("/etc/fdfs/cms.key")));
        assert!(l.app.upload && !l.app.delete && l.app.key_auth);
    }

    #[test]
    fn app_line_errors_never_show_the_key() {
        for (line, want) in [
            ("", "missing application id"),
            ("a/b key=0123456789abcdef", "application id"),
            ("shop", "key or key_file is required"),
            ("shop key=short", "16-1024 bytes"),
            ("shop key=0123456789abcdef key_file=x", "not both"),
            ("shop key=0123456789abcdef rights=read", "right \"read\""),
            ("shop key=0123456789abcdef max_size=0", "max_size"),
            ("shop key=0123456789abcdef ext=jpeg2000", "extension"),
            ("shop key=0123456789abcdef group=a/b", "group"),
            ("shop key=0123456789abcdef networks=10.0.0.0/99", "networks"),
            ("shop key=0123456789abcdef colour=red", "unknown setting"),
            (
                "shop key=0123456789abcdef key=0123456789abcdef",
                "given twice",
            ),
            ("shop key=0123456789abcdef auth=password", "auth"),
        ] {
            let err = parse(line).err().unwrap_or_default();
            assert!(err.contains(want), "{line}: {err}");
            assert!(!err.contains("0123456789abcdef"), "{err}");
        }
    }

    #[test]
    fn prefixes() {
        for ok in ["/api", "/fdfs/v1", "/a"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "api",
            "/api/",
            "/a//b",
            "/a/../b",
            "/a b",
            "/a?x",
            "/group1",
            "/group1/api",
            "/M00",
            "/M0A/x",
        ] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }
}
